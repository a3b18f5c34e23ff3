//! Security catalog (`shared/notes/security.md` §2) cases of the `jwt` provider that
//! `tests/jwt_security.rs` does not already cover: algorithm confusion with real RSA keys,
//! header-named key material (jku/x5u/jwk/x5c), JWKS hygiene and rotation, issuer binding
//! across providers, claim mapping, and the cache/mint/error behaviour a JWT user sees.
//! Tokens come from a raw signer; keys are served by an in-process IdP with a hit counter.
#![cfg(feature = "remote")]

mod common;
#[path = "security_support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use auth_o_tron::guard::Requirement;
use auth_o_tron::guard::extract::Guarded;
use auth_o_tron::mint::{MintedToken, Minter, SigningKey};
use auth_o_tron::provider::{JwtProvider, KeySource};
use auth_o_tron::{AuthError, AuthLayer, Authenticator, Principal};
use axum::Router;
use axum::routing::get;
use common::fake_api::{FakeApi, Fault};
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::json;
use support::*;

auth_o_tron::guard!(Admin = Requirement::role("admin"));

fn two(a: &Signer, b: &Signer) -> Vec<serde_json::Value> {
    vec![a.jwk.clone(), b.jwk.clone()]
}

fn hs256(secret: &[u8], header: &str, payload: &str) -> String {
    let m = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
    let key = EncodingKey::from_secret(secret).unwrap();
    let sig = jsonwebtoken::crypto::sign(m.as_bytes(), &key, Algorithm::HS256).unwrap();
    format!("{m}.{sig}")
}

#[tokio::test]
async fn alg_02_hs256_keyed_with_the_rsa_public_key_is_refused_in_every_encoding() {
    let rsa = rsa(2048, "rsa1", Algorithm::RS256);
    let idp = jwks(vec![rsa.jwk.clone()]).await;
    let auth = authenticator(jwt_provider("idp", idp.url(), |_| {}));
    let p = claims("");
    assert!(
        check(&auth, &rsa.token(&p)).await.is_ok(),
        "the genuine RS256 token"
    );
    let n = rsa.jwk["n"].as_str().unwrap();
    let n_bytes =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, n).unwrap();
    let secrets: Vec<(&str, Vec<u8>)> = vec![
        (
            "SPKI PEM",
            std::fs::read(fixture("rsa2048.pub.pem")).unwrap(),
        ),
        (
            "PKCS#1 PEM",
            std::fs::read(fixture("rsa2048.pkcs1.pub.pem")).unwrap(),
        ),
        ("DER", std::fs::read(fixture("rsa2048.pub.der")).unwrap()),
        ("JWK text", rsa.jwk.to_string().into_bytes()),
        ("n text", n.as_bytes().to_vec()),
        ("n bytes", n_bytes),
    ];
    for (what, secret) in secrets {
        for header in [
            r#"{"alg":"HS256","kid":"rsa1"}"#,
            r#"{"alg":"HS256","kid":"rsa1","typ":"JWT"}"#,
            r#"{"alg":"HS256"}"#,
        ] {
            refused(&auth, &hs256(&secret, header, &p), what).await;
        }
    }
}

#[tokio::test]
async fn alg_03_hs256_keyed_with_ec_public_key_bytes_is_refused() {
    let ec = es256(9, "ec1");
    let idp = jwks(vec![ec.jwk.clone()]).await;
    let auth = authenticator(jwt_provider("idp", idp.url(), |_| {}));
    let p = claims("");
    let dec = |s: &str| {
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, s).unwrap()
    };
    let (x, y) = (
        dec(ec.jwk["x"].as_str().unwrap()),
        dec(ec.jwk["y"].as_str().unwrap()),
    );
    let sec1 = [&[4u8][..], &x, &y].concat();
    for (what, secret) in [
        ("x||y", [x.clone(), y.clone()].concat()),
        ("SEC1", sec1),
        ("JWK text", ec.jwk.to_string().into_bytes()),
        ("x text", ec.jwk["x"].as_str().unwrap().as_bytes().to_vec()),
    ] {
        refused(
            &auth,
            &hs256(&secret, r#"{"alg":"HS256","kid":"ec1"}"#, &p),
            what,
        )
        .await;
    }
}

#[tokio::test]
async fn alg_05_a_header_alg_other_than_the_jwk_alg_is_refused() {
    // JWK says RS256; the token is PS256, validly signed with the same RSA key.
    let rsa = rsa(2048, "rsa1", Algorithm::RS256);
    let idp = jwks(vec![rsa.jwk.clone()]).await;
    let auth = authenticator(jwt_provider("idp", idp.url(), |_| {}));
    let p = claims("");
    assert!(check(&auth, &rsa.token(&p)).await.is_ok());
    for alg in [Algorithm::PS256, Algorithm::RS384, Algorithm::RS512] {
        let t = rsa.raw_with(alg, &format!(r#"{{"alg":"{alg:?}","kid":"rsa1"}}"#), &p);
        refused(&auth, &t, &format!("{alg:?}")).await;
    }
}

#[tokio::test]
async fn alg_06_a_jwks_with_rsa_and_ec_keys_verifies_both_families() {
    let (rsa, ec) = (rsa(2048, "rsa1", Algorithm::RS256), es256(9, "ec1"));
    let idp = jwks(two(&rsa, &ec)).await;
    let auth = authenticator(jwt_provider("idp", idp.url(), |_| {}));
    assert!(check(&auth, &rsa.token(&claims(""))).await.is_ok());
    assert!(check(&auth, &ec.token(&claims(""))).await.is_ok());
    assert_eq!(idp.fake.hits(), 1);
}

/// `n − s` for the P-256 group order `n`, big-endian 32 bytes.
fn negate_s(s: &[u8]) -> Vec<u8> {
    const N: [u8; 32] = [
        0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        0xFF, 0xBC, 0xE6, 0xFA, 0xAD, 0xA7, 0x17, 0x9E, 0x84, 0xF3, 0xB9, 0xCA, 0xC2, 0xFC, 0x63,
        0x25, 0x51,
    ];
    let mut out = vec![0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let mut d = N[i] as i16 - s[i] as i16 - borrow;
        borrow = if d < 0 {
            d += 256;
            1
        } else {
            0
        };
        out[i] = d as u8;
    }
    out
}

#[tokio::test]
async fn alg_09_a_high_s_twin_verifies_and_is_only_a_separate_cache_entry() {
    let ec = es256(9, "ec1");
    let idp = jwks(vec![ec.jwk.clone()]).await;
    let auth = authenticator(jwt_provider("idp", idp.url(), |_| {}));
    let t = ec.token(&claims(""));
    let (msg, sig) = t.rsplit_once('.').unwrap();
    let raw =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, sig).unwrap();
    let twin = format!(
        "{msg}.{}",
        b64(&[&raw[..32], &negate_s(&raw[32..])].concat())
    );
    assert_ne!(twin, t);
    // The library accepts the twin (catalog L20); nothing here keys trust by token bytes.
    assert!(check(&auth, &t).await.is_ok());
    assert!(check(&auth, &twin).await.is_ok());
    assert_eq!(auth.stats().providers()[0].success(), 2);
    assert_eq!(auth.cached_entries(), 2);
    // Dropping a user drops every cached credential of that user, twins included.
    auth.invalidate_user("idp", "alice");
    assert_eq!(auth.cached_entries(), 0);
}

#[tokio::test]
async fn alg_12_rsa_keys_under_2048_bits_are_ignored() {
    let (small, ec) = (rsa(1024, "small", Algorithm::RS256), es256(9, "ec1"));
    let idp = jwks(two(&small, &ec)).await;
    let auth = authenticator(jwt_provider("idp", idp.url(), |_| {}));
    assert!(check(&auth, &ec.token(&claims(""))).await.is_ok());
    refused(&auth, &small.token(&claims("")), "1024-bit key").await;
    let only_small = jwks(vec![small.jwk.clone()]).await;
    let auth = authenticator(jwt_provider("idp", only_small.url(), |_| {}));
    assert_eq!(
        check(&auth, &small.token(&claims(""))).await.unwrap_err(),
        AuthError::Unavailable,
        "a JWKS with no usable key cannot decide"
    );
}

#[tokio::test]
async fn alg_13_unsupported_algorithms_are_refused_without_panicking() {
    let ec = es256(9, "ec1");
    let idp = jwks(vec![ec.jwk.clone()]).await;
    let auth = authenticator(jwt_provider("idp", idp.url(), |_| {}));
    let p = claims("");
    let (msg, sig) = ec
        .token(&p)
        .rsplit_once('.')
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .unwrap();
    let _ = msg;
    for alg in [
        "ES512",
        "Ed448",
        "ML-DSA-44",
        "EdDSA",
        "ES256K",
        "RSA-OAEP",
        "dir",
        "",
    ] {
        let header = format!(r#"{{"alg":"{alg}","kid":"ec1"}}"#);
        let t = format!("{}.{}.{sig}", b64(header.as_bytes()), b64(p.as_bytes()));
        refused(&auth, &t, alg).await;
    }
}

#[tokio::test]
async fn alg_14_exactly_one_crypto_backend_is_compiled_in_and_verifies() {
    let manifest =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).unwrap();
    let line = manifest
        .lines()
        .find(|l| l.starts_with("jsonwebtoken"))
        .expect("jsonwebtoken dependency");
    let backends = ["rust_crypto", "aws_lc_rs"]
        .iter()
        .filter(|b| line.contains(*b))
        .count();
    assert_eq!(backends, 1, "{line}");
    assert!(line.contains("default-features = false"), "{line}");
    // And the first verification in this process works (no provider panic).
    let ec = es256(9, "ec1");
    let idp = jwks(vec![ec.jwk.clone()]).await;
    let auth = authenticator(jwt_provider("idp", idp.url(), |_| {}));
    assert!(check(&auth, &ec.token(&claims(""))).await.is_ok());
}

async fn attacker(key: &Signer) -> FakeApi {
    let doc = json!({ "keys": [key.jwk.clone()] }).to_string();
    FakeApi::start(Arc::new(move |_: &str, _: &str| (200, doc.clone()))).await
}

#[tokio::test]
async fn hdr_04_jku_is_never_fetched() {
    let (good, evil) = (es256(9, "k1"), es256(77, "evil"));
    let idp = jwks(vec![good.jwk.clone()]).await;
    let bad = attacker(&evil).await;
    let auth = authenticator(jwt_provider("idp", idp.url(), |_| {}));
    for kid in ["evil", "k1"] {
        let h = format!(
            r#"{{"alg":"ES256","kid":"{kid}","jku":"{}"}}"#,
            bad.url("/jwks")
        );
        refused(&auth, &evil.raw(&h, &claims("")), kid).await;
    }
    assert_eq!(bad.hits(), 0, "the attacker's server saw nothing");
}

#[tokio::test]
async fn hdr_05_x5u_is_never_fetched() {
    let (good, evil) = (es256(9, "k1"), es256(77, "evil"));
    let idp = jwks(vec![good.jwk.clone()]).await;
    let bad = attacker(&evil).await;
    let auth = authenticator(jwt_provider("idp", idp.url(), |_| {}));
    for kid in ["evil", "k1"] {
        let h = format!(
            r#"{{"alg":"ES256","kid":"{kid}","x5u":"{}"}}"#,
            bad.url("/cert.pem")
        );
        refused(&auth, &evil.raw(&h, &claims("")), kid).await;
    }
    assert_eq!(bad.hits(), 0);
}

#[tokio::test]
async fn hdr_06_an_embedded_jwk_is_ignored() {
    let (good, evil) = (es256(9, "k1"), es256(77, "evil"));
    let idp = jwks(vec![good.jwk.clone()]).await;
    let auth = authenticator(jwt_provider("idp", idp.url(), |_| {}));
    for kid in ["k1", "evil"] {
        let h = json!({"alg":"ES256","kid":kid,"jwk":evil.jwk}).to_string();
        refused(&auth, &evil.raw(&h, &claims("")), kid).await;
    }
    let h = json!({"alg":"ES256","jwk":evil.jwk}).to_string();
    refused(&auth, &evil.raw(&h, &claims("")), "no kid").await;
}

#[tokio::test]
async fn hdr_07_an_x5c_chain_is_never_a_trust_source() {
    let (good, evil) = (es256(9, "k1"), es256(77, "evil"));
    let idp = jwks(vec![good.jwk.clone()]).await;
    let auth = authenticator(jwt_provider("idp", idp.url(), |_| {}));
    let der = std::fs::read(fixture("rsa2048.pub.der")).unwrap();
    let chain = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, der);
    for kid in ["k1", "evil"] {
        let h = json!({"alg":"ES256","kid":kid,"x5c":[chain]}).to_string();
        refused(&auth, &evil.raw(&h, &claims("")), kid).await;
    }
}

#[tokio::test]
async fn hdr_12_jwe_algorithms_and_five_segment_tokens_are_refused() {
    let ec = es256(9, "k1");
    let idp = jwks(vec![ec.jwk.clone()]).await;
    let auth = authenticator(jwt_provider("idp", idp.url(), |_| {}));
    let p = claims("");
    for h in [
        r#"{"alg":"PBES2-HS256+A128KW","kid":"k1","p2c":1000000000,"enc":"A128GCM"}"#,
        r#"{"alg":"RSA-OAEP","enc":"A256GCM","kid":"k1"}"#,
        r#"{"alg":"dir","enc":"A256GCM","zip":"DEF","kid":"k1"}"#,
    ] {
        refused(&auth, &ec.raw(h, &p), h).await;
    }
    let jwe = format!(
        "{}.{}.{}.{}.{}",
        b64(br#"{"alg":"RSA-OAEP","enc":"A256GCM"}"#),
        "a",
        "b",
        "c",
        "d"
    );
    refused(&auth, &jwe, "5-segment JWE").await;
}

#[tokio::test]
async fn hdr_12_jws_headers_with_jwe_members_are_refused() {
    let ec = es256(9, "k1");
    let idp = jwks(vec![ec.jwk.clone()]).await;
    let auth = authenticator(jwt_provider("idp", idp.url(), |_| {}));
    let p = claims("");
    let mut accepted = Vec::new();
    for h in [
        r#"{"alg":"ES256","kid":"k1","enc":"A128GCM"}"#,
        r#"{"alg":"ES256","kid":"k1","zip":"DEF"}"#,
        r#"{"alg":"ES256","kid":"k1","p2c":1000000000}"#,
    ] {
        if check(&auth, &ec.raw(h, &p)).await.is_ok() {
            accepted.push(h);
        }
    }
    assert!(accepted.is_empty(), "accepted: {accepted:?}");
}

#[tokio::test]
async fn clm_03_exp_equal_to_now_is_expired_with_zero_leeway() {
    let ec = es256(9, "k1");
    let idp = jwks(vec![ec.jwk.clone()]).await;
    let auth = authenticator(jwt_provider("idp", idp.url(), |s| s.leeway = 0));
    // Warm the keys so the check below runs within the same second as `now`.
    assert!(check(&auth, &ec.token(&claims(""))).await.is_ok());
    for _ in 0..3 {
        let n = now();
        let t = ec.token(&format!(
            r#"{{"sub":"b","iss":"{ISSUER}","aud":"api","exp":{n}}}"#
        ));
        refused(&auth, &t, "exp == now").await;
    }
}

#[tokio::test]
async fn clm_16_duplicate_custom_claims_never_resolve_to_the_first_value() {
    let ec = es256(9, "k1");
    let idp = jwks(vec![ec.jwk.clone()]).await;
    let auth = authenticator(jwt_provider("idp", idp.url(), |s| {
        s.roles_claim = Some(vec!["roles".into()])
    }));
    let t = ec.token(&claims(r#""roles":["user"],"roles":["admin"]"#));
    match check(&auth, &t).await {
        Err(AuthError::Invalid | AuthError::Malformed(_)) => {}
        Ok(p) => assert_eq!(
            p.roles,
            ["admin"],
            "documented last-wins, the same in the pre-check and the verified decode"
        ),
        Err(e) => panic!("{e:?}"),
    }
    let t = ec.token(&claims(r#""roles":["admin"],"roles":["user"]"#));
    if let Ok(p) = check(&auth, &t).await {
        assert_eq!(p.roles, ["user"]);
    }
}

#[tokio::test]
async fn clm_21_id_logout_and_refresh_tokens_are_not_access_tokens() {
    let ec = es256(9, "k1");
    let idp = jwks(vec![ec.jwk.clone()]).await;
    let auth = authenticator(jwt_provider("idp", idp.url(), |s| {
        s.typ = Some("at+jwt".into())
    }));
    let n = now();
    let id_token = format!(
        r#"{{"sub":"alice","iss":"{ISSUER}","aud":"client-app","nonce":"n","at_hash":"x","iat":{n},"exp":{}}}"#,
        n + 300
    );
    let logout = format!(
        r#"{{"sub":"alice","iss":"{ISSUER}","aud":"api","events":{{"http://schemas.openid.net/event/backchannel-logout":{{}}}},"iat":{n},"exp":{}}}"#,
        n + 300
    );
    for (typ, payload) in [
        ("JWT", id_token.as_str()),
        ("at+jwt", id_token.as_str()),
        ("logout+jwt", logout.as_str()),
        ("Refresh", claims("").leak() as &str),
        ("JWT", claims("").leak() as &str),
    ] {
        let h = format!(r#"{{"alg":"ES256","kid":"k1","typ":"{typ}"}}"#);
        refused(&auth, &ec.raw(&h, payload), typ).await;
    }
    assert!(check(&auth, &ec.token(&claims(""))).await.is_ok());
}

#[tokio::test]
async fn jwks_01_unknown_key_types_are_skipped_and_the_good_key_still_verifies() {
    let ec = es256(9, "k1");
    let idp = jwks(vec![
        json!({"kty":"OKP","crv":"Ed448","x":"AAAA","kid":"ed448"}),
        json!({"kty":"OKP","crv":"X25519","x":"AAAA","kid":"x25519"}),
        json!({"kty":"EC","crv":"secp256k1","x":"AAAA","y":"AAAA","kid":"k256"}),
        json!({"kty":"AKP","alg":"ML-DSA-44","pub":"AAAA","kid":"mldsa"}),
        json!({"kty":"RSA","kid":"x5c-only","x5c":["MIIBIjANBg"]}),
        json!({"kty":"RSA","kid":5,"n":"AQAB","e":"AQAB"}),
        ec.jwk.clone(),
    ])
    .await;
    let auth = authenticator(jwt_provider("idp", idp.url(), |_| {}));
    assert!(check(&auth, &ec.token(&claims(""))).await.is_ok());
}

#[tokio::test]
async fn jwks_02_encryption_keys_are_never_used_to_verify() {
    let (enc, ops, good) = (es256(11, "enc"), es256(12, "ops"), es256(9, "k1"));
    let mut enc_jwk = enc.jwk.clone();
    enc_jwk["use"] = "enc".into();
    let mut ops_jwk = ops.jwk.clone();
    ops_jwk.as_object_mut().unwrap().remove("use");
    ops_jwk["key_ops"] = json!(["encrypt"]);
    let idp = jwks(vec![enc_jwk, ops_jwk, good.jwk.clone()]).await;
    let auth = authenticator(jwt_provider("idp", idp.url(), |_| {}));
    refused(&auth, &enc.token(&claims("")), "use=enc").await;
    refused(&auth, &ops.token(&claims("")), "key_ops=[encrypt]").await;
    assert!(check(&auth, &good.token(&claims(""))).await.is_ok());
}

/// EMSA-PKCS1-v1_5 encoding of SHA-256(`msg`) for a 2048-bit modulus.
fn pkcs1_encoding(msg: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    let digest: [u8; 32] = sha2::Sha256::digest(msg).into();
    let prefix = [
        0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
        0x05, 0x00, 0x04, 0x20,
    ];
    let t = [&prefix[..], &digest].concat();
    let mut em = vec![0x00, 0x01];
    em.extend(std::iter::repeat_n(0xff, 256 - 3 - t.len()));
    em.push(0x00);
    em.extend(t);
    em
}

#[tokio::test]
async fn jwks_03_inconsistent_keys_are_rejected_at_load() {
    let good = es256(9, "k1");
    let mislabelled = es256(21, "mis");
    let mut mis = mislabelled.jwk.clone();
    mis["alg"] = "ES384".into();
    let wrong_crv = es256(22, "crv");
    let mut crv = wrong_crv.jwk.clone();
    crv["crv"] = "P-384".into();
    // RSA with e = 1: "verification" is the identity, so anyone could forge.
    let rsa = rsa(2048, "e1", Algorithm::RS256);
    let mut e1 = rsa.jwk.clone();
    e1["e"] = "AQ".into();
    let idp = jwks(vec![mis, crv, e1, good.jwk.clone()]).await;
    let auth = authenticator(jwt_provider("idp", idp.url(), |_| {}));
    let p = claims("");
    refused(
        &auth,
        &mislabelled.token(&p),
        "JWK alg ES384 on a P-256 key",
    )
    .await;
    refused(
        &auth,
        &mislabelled.raw(r#"{"alg":"ES384","kid":"mis"}"#, &p),
        "ES384 header",
    )
    .await;
    refused(
        &auth,
        &wrong_crv.token(&p),
        "P-384 label on P-256 coordinates",
    )
    .await;
    let m = format!(
        "{}.{}",
        b64(br#"{"alg":"RS256","kid":"e1"}"#),
        b64(p.as_bytes())
    );
    let forged = format!("{m}.{}", b64(&pkcs1_encoding(m.as_bytes())));
    refused(&auth, &forged, "e = 1 forgery").await;
    assert!(check(&auth, &good.token(&p)).await.is_ok());
}

#[tokio::test]
async fn jwks_04_symmetric_keys_are_never_taken_and_ambiguous_kids_are_refused() {
    let good = es256(9, "k1");
    let secret = b"0123456789abcdef0123456789abcdef";
    let oct = json!({"kty":"oct","kid":"k1","k":b64(secret),"alg":"HS256"});
    let (a, b) = (es256(31, "dup"), es256(32, "dup"));
    let idp = jwks(vec![oct, good.jwk.clone(), a.jwk.clone(), b.jwk.clone()]).await;
    let auth = authenticator(jwt_provider("idp", idp.url(), |_| {}));
    let p = claims("");
    refused(
        &auth,
        &hs256(secret, r#"{"alg":"HS256","kid":"k1"}"#, &p),
        "oct key",
    )
    .await;
    assert!(
        check(&auth, &good.token(&p)).await.is_ok(),
        "the RSA/EC key with that kid"
    );
    refused(&auth, &a.token(&p), "two keys for kid dup").await;
    refused(&auth, &b.token(&p), "two keys for kid dup").await;
}

#[tokio::test]
async fn jwks_05_keys_with_private_material_are_ignored() {
    let (leaky, good) = (es256(41, "priv"), es256(9, "k1"));
    let mut jwk = leaky.jwk.clone();
    jwk["d"] = b64(&[41u8; 32]).into();
    let idp = jwks(vec![jwk.clone(), good.jwk.clone()]).await;
    let auth = authenticator(jwt_provider("idp", idp.url(), |_| {}));
    refused(&auth, &leaky.token(&claims("")), "published private key").await;
    assert!(check(&auth, &good.token(&claims(""))).await.is_ok());
    let only = jwks(vec![jwk]).await;
    let cold = authenticator(jwt_provider("idp", only.url(), |_| {}));
    assert_eq!(
        check(&cold, &leaky.token(&claims(""))).await.unwrap_err(),
        AuthError::Unavailable
    );
}

#[tokio::test]
async fn jwks_07_rotation_costs_one_refetch_and_removed_keys_stop_working() {
    let (k1, k2, k3) = (es256(9, "k1"), es256(51, "k2"), es256(52, "k3"));
    let idp = jwks(vec![k1.jwk.clone()]).await;
    let auth = authenticator(jwt_provider("idp", idp.url(), |s| {
        s.min_refetch = Duration::from_millis(200)
    }));
    assert!(check(&auth, &k1.token(&claims(r#""n":1"#))).await.is_ok());
    assert_eq!(idp.fake.hits(), 1);
    idp.set(two(&k1, &k2));
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(check(&auth, &k2.token(&claims(r#""n":2"#))).await.is_ok());
    assert_eq!(idp.fake.hits(), 2, "exactly one refetch for the new kid");
    assert!(check(&auth, &k2.token(&claims(r#""n":3"#))).await.is_ok());
    assert_eq!(idp.fake.hits(), 2);
    // K1 is withdrawn: still valid until the keys are refreshed, refused after.
    idp.set(vec![k2.jwk.clone()]);
    assert!(check(&auth, &k1.token(&claims(r#""n":4"#))).await.is_ok());
    tokio::time::sleep(Duration::from_millis(250)).await;
    refused(
        &auth,
        &k3.token(&claims(r#""n":5"#)),
        "unknown kid, triggers the refresh",
    )
    .await;
    assert_eq!(idp.fake.hits(), 3);
    refused(
        &auth,
        &k1.token(&claims(r#""n":6"#)),
        "K1 after the refresh",
    )
    .await;
}

/// A JWKS server that answers with a `Cache-Control` header, counting requests.
async fn jwks_with_cache_control(
    doc: String,
    cache_control: &'static str,
) -> (SocketAddr, Arc<AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            let (doc, h) = (doc.clone(), h.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                h.fetch_add(1, Ordering::SeqCst);
                let reply = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nCache-Control: {cache_control}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{doc}",
                    doc.len()
                );
                let _ = s.write_all(reply.as_bytes()).await;
            });
        }
    });
    (addr, hits)
}

#[tokio::test]
async fn jwks_11_cache_headers_cannot_move_the_refresh_interval_out_of_its_bounds() {
    let ec = es256(9, "k1");
    let doc = json!({"keys":[ec.jwk.clone()]}).to_string();
    for cc in ["max-age=0, no-store", "max-age=31536000"] {
        let (addr, hits) = jwks_with_cache_control(doc.clone(), cc).await;
        let auth = authenticator(jwt_provider("idp", format!("http://{addr}/jwks"), |s| {
            s.max_key_age = Duration::from_millis(1000);
            s.min_refetch = Duration::from_millis(200);
        }));
        for i in 0..20 {
            assert!(
                check(&auth, &ec.token(&claims(&format!(r#""i":{i}"#))))
                    .await
                    .is_ok()
            );
        }
        assert_eq!(hits.load(Ordering::SeqCst), 1, "{cc}: no refetch storm");
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert!(
            check(&auth, &ec.token(&claims(r#""late":1"#)))
                .await
                .is_ok()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            hits.load(Ordering::SeqCst),
            2,
            "{cc}: refreshed after max_key_age"
        );
    }
}

#[tokio::test]
async fn jwks_12_a_discovery_document_for_another_issuer_loads_no_keys() {
    let ec = es256(9, "k1");
    let idp = jwks(vec![ec.jwk.clone()]).await;
    let issuer = format!("http://{}", idp.fake.addr);
    *idp.discovery_issuer.lock().unwrap() = "https://evil.example".into();
    let p = JwtProvider::new(
        "idp",
        "idp",
        KeySource::Discovery(issuer.clone()),
        http_client(),
        auth_o_tron::provider::JwtSettings {
            issuer: Some(issuer.clone()),
            ..settings()
        },
    )
    .unwrap();
    let auth = authenticator(p);
    let t = ec.token(&claims_for(&issuer, ""));
    assert_eq!(check(&auth, &t).await.unwrap_err(), AuthError::Unavailable);
    assert!(
        idp.fake
            .targets()
            .iter()
            .all(|t| t.starts_with("/.well-known/")),
        "the JWKS was never fetched: {:?}",
        idp.fake.targets()
    );
    // The matching document works.
    *idp.discovery_issuer.lock().unwrap() = issuer.clone();
    let auth = authenticator(
        JwtProvider::new(
            "idp",
            "idp",
            KeySource::Discovery(issuer.clone()),
            http_client(),
            auth_o_tron::provider::JwtSettings {
                issuer: Some(issuer.clone()),
                ..settings()
            },
        )
        .unwrap(),
    );
    assert!(check(&auth, &t).await.is_ok());
}

async fn two_providers(a: &Signer, b: &Signer) -> (Authenticator, support::Jwks, support::Jwks) {
    let (ja, jb) = (
        jwks(vec![a.jwk.clone()]).await,
        jwks(vec![b.jwk.clone()]).await,
    );
    let pa = jwt_provider("A", ja.url(), |s| s.issuer = Some("https://a".into()));
    let pb = jwt_provider("B", jb.url(), |s| s.issuer = Some("https://b".into()));
    let auth = Authenticator::builder()
        .provider(pa)
        .provider(pb)
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    (auth, ja, jb)
}

#[tokio::test]
async fn iss_01_a_key_of_one_issuer_cannot_sign_for_another() {
    let (a, b) = (es256(9, "ka"), es256(10, "kb"));
    let (auth, _ja, _jb) = two_providers(&a, &b).await;
    assert_eq!(
        check(&auth, &a.token(&claims_for("https://a", "")))
            .await
            .unwrap()
            .provider(),
        "A"
    );
    refused(
        &auth,
        &a.token(&claims_for("https://b", "")),
        "A's key, B's iss",
    )
    .await;
    let kb_header = r#"{"alg":"ES256","kid":"kb"}"#;
    refused(
        &auth,
        &a.raw(kb_header, &claims_for("https://b", "")),
        "A's key, B's kid",
    )
    .await;
}

#[tokio::test]
async fn iss_02_the_same_kid_at_two_providers_is_never_cross_used() {
    let (a, b) = (es256(9, "1"), es256(10, "1"));
    let (auth, _ja, _jb) = two_providers(&a, &b).await;
    let pa = check(&auth, &a.token(&claims_for("https://a", "")))
        .await
        .unwrap();
    assert_eq!((pa.provider(), pa.realm.as_str()), ("A", "A"));
    let pb = check(&auth, &b.token(&claims_for("https://b", "")))
        .await
        .unwrap();
    assert_eq!(pb.provider(), "B");
    refused(
        &auth,
        &a.token(&claims_for("https://b", "")),
        "A's key as B",
    )
    .await;
    refused(
        &auth,
        &b.token(&claims_for("https://a", "")),
        "B's key as A",
    )
    .await;
}

#[tokio::test]
async fn iss_03_another_tenant_of_a_shared_jwks_is_refused() {
    let k = es256(9, "shared");
    let idp = jwks(vec![k.jwk.clone()]).await;
    let auth = authenticator(jwt_provider("t1", idp.url(), |s| {
        s.issuer = Some("https://idp/realms/tenant1".into())
    }));
    assert!(
        check(
            &auth,
            &k.token(&claims_for("https://idp/realms/tenant1", ""))
        )
        .await
        .is_ok()
    );
    for iss in [
        "https://idp/realms/tenant2",
        "https://idp/realms/tenant1/../tenant2",
        "https://idp/realms/Tenant1",
    ] {
        refused(&auth, &k.token(&claims_for(iss, "")), iss).await;
    }
}

#[tokio::test]
async fn iss_06_each_provider_maps_roles_with_its_own_layout() {
    let (a, b) = (es256(9, "ka"), es256(10, "kb"));
    let (ja, jb) = (
        jwks(vec![a.jwk.clone()]).await,
        jwks(vec![b.jwk.clone()]).await,
    );
    let pa = jwt_provider("A", ja.url(), |s| {
        s.issuer = Some("https://a".into());
        s.roles_claim = Some(vec!["groups".into()]);
    });
    let pb = jwt_provider("B", jb.url(), |s| {
        s.issuer = Some("https://b".into());
        s.roles_claim = Some(vec!["roles".into()]);
    });
    let auth = Authenticator::builder()
        .provider(pa)
        .provider(pb)
        .build()
        .unwrap();
    let t = a.token(&claims_for(
        "https://a",
        r#""groups":["a-user"],"roles":["admin"]"#,
    ));
    let p = check(&auth, &t).await.unwrap();
    assert_eq!(p.provider(), "A");
    assert_eq!(p.roles, ["a-user"], "B's layout means nothing to A");
}

#[tokio::test]
async fn iss_07_one_provider_down_leaves_the_others_fast() {
    let (a, b) = (es256(9, "ka"), es256(10, "kb"));
    let (ja, jb) = (
        jwks(vec![a.jwk.clone()]).await,
        jwks(vec![b.jwk.clone()]).await,
    );
    ja.fake.set(Fault::Delay(Duration::from_secs(5)));
    let pa = jwt_provider("A", ja.url(), |s| s.issuer = Some("https://a".into()));
    let pb = jwt_provider("B", jb.url(), |s| s.issuer = Some("https://b".into()));
    let auth = Authenticator::builder()
        .provider(pa)
        .provider(pb)
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    for i in 0..5 {
        let started = Instant::now();
        let t = b.token(&claims_for("https://b", &format!(r#""i":{i}"#)));
        assert_eq!(check(&auth, &t).await.unwrap().provider(), "B");
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "{:?}",
            started.elapsed()
        );
    }
    let started = Instant::now();
    let t = a.token(&claims_for("https://a", ""));
    assert_eq!(check(&auth, &t).await.unwrap_err(), AuthError::Unavailable);
    assert!(started.elapsed() < Duration::from_millis(2500));
}

#[tokio::test]
async fn rbac_03_scope_is_a_space_delimited_string_only() {
    let ec = es256(9, "k1");
    let idp = jwks(vec![ec.jwk.clone()]).await;
    let auth = authenticator(jwt_provider("idp", idp.url(), |_| {}));
    for (extra, read, write) in [
        (r#""scope":"read write""#, true, true),
        (r#""scope":"read  write""#, true, true),
        (r#""scope":" read ""#, true, false),
        (r#""scope":"read,write""#, false, false),
        (r#""scope":["read"]"#, false, false),
        (r#""scp":["read"]"#, false, false),
        (r#""scope":"READ""#, false, false),
    ] {
        let p = check(&auth, &ec.token(&claims(extra))).await.unwrap();
        assert_eq!(p.scopes.allows("idp", "read"), read, "{extra}");
        assert_eq!(p.scopes.allows("idp", "write"), write, "{extra}");
        assert!(!p.scopes.allows("idp", ""), "{extra}: empty words dropped");
    }
}

#[tokio::test]
async fn rbac_04_missing_or_wrongly_typed_role_claims_mean_no_roles_and_403() {
    let ec = es256(9, "k1");
    let idp = jwks(vec![ec.jwk.clone()]).await;
    let auth = authenticator(jwt_provider("idp", idp.url(), |s| {
        s.roles_claim = Some(vec!["roles".into()])
    }));
    let router = Router::new()
        .route(
            "/admin",
            get(|a: Guarded<Admin>| async move { a.username.clone() }),
        )
        .route_layer(AuthLayer::new(auth));
    let addr = common::serve(router).await;
    for extra in [
        "",
        r#""roles":"admin""#,
        r#""roles":{"admin":true}"#,
        r#""roles":[1,null,{"a":"admin"}]"#,
        r#""realm_access":{"roles":"admin"}"#,
        r#""entitlements":"admin""#,
    ] {
        let res = common::client()
            .get(format!("http://{addr}/admin"))
            .bearer_auth(ec.token(&claims(extra)))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403, "{extra}");
    }
    let res = common::client()
        .get(format!("http://{addr}/admin"))
        .bearer_auth(ec.token(&claims(r#""roles":["admin"]"#)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

async fn jwt_app(auth: Authenticator) -> SocketAddr {
    let router = Router::new()
        .route("/me", get(|p: Principal| async move { p.username.clone() }))
        .route_layer(AuthLayer::new(auth));
    common::serve(router).await
}

async fn answer(addr: SocketAddr, token: &str) -> (u16, String, String) {
    let res = common::client()
        .get(format!("http://{addr}/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let challenge = res
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, challenge, res.text().await.unwrap())
}

#[tokio::test]
async fn err_02_the_challenge_is_static_whatever_the_token_contains() {
    let ec = es256(9, "k1");
    let idp = jwks(vec![ec.jwk.clone()]).await;
    let addr = jwt_app(authenticator(jwt_provider("idp", idp.url(), |_| {}))).await;
    let nasty = r#"a\"b\\c\r\nX-Injected: 1\u001b[31m"#;
    for (h, p) in [
        (format!(r#"{{"alg":"ES256","kid":"{nasty}"}}"#), claims("")),
        (
            ec.header(),
            claims(&format!(r#""iss2":"{nasty}","exp2":"{nasty}""#))
                .replace(r#""iss":"https://idp""#, &format!(r#""iss":"{nasty}""#)),
        ),
        (
            ec.header(),
            format!(r#"{{"sub":"{nasty}","iss":"{ISSUER}","aud":"api","exp":1}}"#),
        ),
    ] {
        let (status, challenge, body) = answer(addr, &ec.raw(&h, &p)).await;
        assert_eq!(status, 401);
        assert_eq!(challenge, r#"Bearer realm="idp", error="invalid_token""#);
        assert!(!challenge.contains("error_description"));
        assert!(
            !body.contains("Injected") && !body.contains("a\\\"b"),
            "{body}"
        );
    }
}

#[tokio::test]
async fn err_03_unknown_kid_bad_signature_and_expiry_look_the_same() {
    let (ec, other) = (es256(9, "k1"), es256(10, "k1"));
    let idp = jwks(vec![ec.jwk.clone()]).await;
    let addr = jwt_app(authenticator(jwt_provider("idp", idp.url(), |_| {}))).await;
    let expired = format!(
        r#"{{"sub":"a","iss":"{ISSUER}","aud":"api","exp":{}}}"#,
        now() - 3600
    );
    let answers = [
        answer(
            addr,
            &ec.raw(r#"{"alg":"ES256","kid":"nope"}"#, &claims("")),
        )
        .await,
        answer(addr, &other.token(&claims(""))).await,
        answer(addr, &ec.token(&expired)).await,
        answer(
            addr,
            &ec.token(&claims(r#""aud":"x""#).replace(r#""aud":"api","#, "")),
        )
        .await,
    ];
    for a in &answers {
        assert_eq!(a.0, 401);
        assert_eq!(
            a, &answers[0],
            "one public answer for every validation failure"
        );
    }
}

#[tokio::test]
async fn cache_02_a_token_cached_by_one_configuration_is_refused_by_another() {
    let ec = es256(9, "k1");
    let idp = jwks(vec![ec.jwk.clone()]).await;
    let a = authenticator(jwt_provider("idp", idp.url(), |_| {}));
    let b = authenticator(jwt_provider("idp", idp.url(), |s| {
        s.audience = Some(vec!["other-api".into()])
    }));
    let t = ec.token(&claims(""));
    assert!(check(&a, &t).await.is_ok());
    assert!(check(&a, &t).await.is_ok());
    assert_eq!(a.cached_entries(), 1);
    refused(&b, &t, "aud is for A only").await;
}

#[tokio::test]
async fn cache_03_the_cache_never_outlives_the_token() {
    let ec = es256(9, "k1");
    let idp = jwks(vec![ec.jwk.clone()]).await;
    let auth = authenticator(jwt_provider("idp", idp.url(), |s| {
        s.leeway = 0;
        s.cache_ttl = Duration::from_secs(300);
    }));
    let t = ec.token(&format!(
        r#"{{"sub":"a","iss":"{ISSUER}","aud":"api","exp":{}}}"#,
        now() + 2
    ));
    assert!(check(&auth, &t).await.is_ok());
    assert!(check(&auth, &t).await.is_ok());
    assert_eq!(auth.stats().cache_hits(), 1);
    tokio::time::sleep(Duration::from_millis(3100)).await;
    refused(&auth, &t, "past exp, whatever the cache TTL").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_07_a_stampede_on_one_new_token_or_one_unknown_kid_costs_one_fetch() {
    let ec = es256(9, "k1");
    let idp = jwks(vec![ec.jwk.clone()]).await;
    idp.fake.set(Fault::Delay(Duration::from_millis(150)));
    for (token, ok) in [
        (ec.token(&claims("")), true),
        (
            ec.raw(r#"{"alg":"ES256","kid":"unknown"}"#, &claims("")),
            false,
        ),
    ] {
        let before = idp.fake.hits();
        let auth = authenticator(jwt_provider("idp", idp.url(), |_| {}));
        let barrier = Arc::new(tokio::sync::Barrier::new(100));
        let mut tasks = Vec::new();
        for _ in 0..100 {
            let (auth, b, t) = (auth.clone(), barrier.clone(), token.clone());
            tasks.push(tokio::spawn(async move {
                b.wait().await;
                check(&auth, &t).await.is_ok()
            }));
        }
        for task in tasks {
            assert_eq!(task.await.unwrap(), ok);
        }
        assert_eq!(idp.fake.hits() - before, 1, "one JWKS fetch (ok = {ok})");
        let validations =
            auth.stats().providers()[0].success() + auth.stats().providers()[0].invalid();
        assert_eq!(
            validations, 1,
            "one validation for 100 requests (ok = {ok})"
        );
    }
}

#[tokio::test]
async fn mint_02_source_claims_cannot_override_the_minted_claims() {
    let ec = es256(9, "k1");
    let idp = jwks(vec![ec.jwk.clone()]).await;
    let auth = authenticator(jwt_provider("idp", idp.url(), |_| {}));
    let key = SigningKey::generate_es256("m").unwrap();
    let minter = Minter::builder("layer", key)
        .audience("backend")
        .build()
        .unwrap();
    let router = Router::new()
        .route(
            "/mint",
            get(|m: axum::Extension<MintedToken>| async move { m.0.as_str().to_owned() }),
        )
        .layer(AuthLayer::new(auth).mint(minter.clone()));
    let addr = common::serve(router).await;
    let big = "x".repeat(5000);
    let source = claims(&format!(
        r#""roles":["admin"],"admin":true,"username":"root","realm":"root","jti":"fixed","nbf":1,"big":"{big}""#
    ));
    let minted = common::client()
        .get(format!("http://{addr}/mint"))
        .bearer_auth(ec.token(&source))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let jwks = minter.jwks();
    let mut v = jsonwebtoken::Validation::new(Algorithm::ES256);
    v.set_audience(&["backend"]);
    let c = jsonwebtoken::decode::<serde_json::Value>(
        &minted,
        &jsonwebtoken::DecodingKey::from_jwk(&jwks.keys[0]).unwrap(),
        &v,
    )
    .unwrap()
    .claims;
    assert_eq!(c["iss"], "layer");
    assert_eq!(c["aud"], "backend");
    assert_eq!(c["username"], "alice");
    assert_eq!(c["realm"], "idp");
    assert_eq!(
        c["roles"],
        json!([]),
        "an unmapped `roles` claim grants nothing"
    );
    assert_ne!(c["jti"], "fixed");
    assert!(
        c.get("admin").is_none(),
        "no top-level claim from the source"
    );
    assert!(
        c["attributes"].get("big").is_none(),
        "oversized values are left out"
    );
    assert!(minted.len() < 4096, "{} bytes", minted.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn avail_05_a_hanging_refresh_does_not_block_known_keys() {
    let ec = es256(9, "k1");
    let idp = jwks(vec![ec.jwk.clone()]).await;
    let auth = authenticator(jwt_provider("idp", idp.url(), |s| {
        s.min_refetch = Duration::from_millis(1)
    }));
    assert!(check(&auth, &ec.token(&claims(""))).await.is_ok());
    idp.fake.set(Fault::Delay(Duration::from_secs(3)));
    tokio::time::sleep(Duration::from_millis(5)).await;
    let a = auth.clone();
    let unknown = ec.raw(r#"{"alg":"ES256","kid":"rotated"}"#, &claims(""));
    let stuck = tokio::spawn(async move { check(&a, &unknown).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    for i in 0..5 {
        let started = Instant::now();
        assert!(
            check(&auth, &ec.token(&claims(&format!(r#""i":{i}"#))))
                .await
                .is_ok()
        );
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "{:?}",
            started.elapsed()
        );
    }
    assert!(stuck.await.unwrap().is_err());
}

#[tokio::test]
async fn avail_09_random_signatures_for_a_known_kid_cost_no_network() {
    let ec = es256(9, "k1");
    let idp = jwks(vec![ec.jwk.clone()]).await;
    let auth = authenticator(jwt_provider("idp", idp.url(), |_| {}));
    let good = ec.token(&claims(""));
    assert!(check(&auth, &good).await.is_ok());
    let (msg, _) = good.rsplit_once('.').unwrap();
    let started = Instant::now();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..200 {
        let sig: Vec<u8> = (0..64)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let msg = if i % 2 == 0 {
            msg.to_owned()
        } else {
            ec.token(&claims(&format!(r#""i":{i}"#)))
                .rsplit_once('.')
                .unwrap()
                .0
                .to_owned()
        };
        refused(&auth, &format!("{msg}.{}", b64(&sig)), "random signature").await;
    }
    assert_eq!(idp.fake.hits(), 1, "a bad signature never refetches keys");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn avail_12_an_unresolvable_idp_gives_503_within_the_timeout() {
    let ec = es256(9, "k1");
    let auth = authenticator(jwt_provider(
        "idp",
        "http://no-such-idp.invalid/jwks".into(),
        |_| {},
    ));
    let started = Instant::now();
    assert_eq!(
        check(&auth, &ec.token(&claims(""))).await.unwrap_err(),
        AuthError::Unavailable
    );
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn alg_01_every_spelling_of_alg_none_is_refused() {
    let ec = es256(9, "k1");
    let idp = jwks(vec![ec.jwk.clone()]).await;
    let auth = authenticator(jwt_provider("idp", idp.url(), |_| {}));
    let p = b64(claims("").as_bytes());
    let sig = ec.token(&claims("")).rsplit('.').next().unwrap().to_owned();
    for alg in ["none", "NONE", "nOnE", "None"] {
        let h = b64(format!(r#"{{"alg":"{alg}","kid":"k1"}}"#).as_bytes());
        for token in [
            format!("{h}.{p}."),
            format!("{h}.{p}.{sig}"),
            format!("{h}.{p}"),
        ] {
            refused(&auth, &token, alg).await;
        }
    }
    let h = b64(br#"{"kid":"k1"}"#);
    refused(&auth, &format!("{h}.{p}.{sig}"), "no alg at all").await;
}

#[tokio::test]
async fn alg_07_special_case_ecdsa_signatures_are_refused() {
    const N: [u8; 32] = [
        0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        0xFF, 0xBC, 0xE6, 0xFA, 0xAD, 0xA7, 0x17, 0x9E, 0x84, 0xF3, 0xB9, 0xCA, 0xC2, 0xFC, 0x63,
        0x25, 0x51,
    ];
    let mut n_minus_1 = N;
    n_minus_1[31] -= 1;
    let mut one = [0u8; 32];
    one[31] = 1;
    let ec = es256(9, "k1");
    let idp = jwks(vec![ec.jwk.clone()]).await;
    let auth = authenticator(jwt_provider("idp", idp.url(), |_| {}));
    let good = ec.token(&claims(""));
    let (msg, _) = good.rsplit_once('.').unwrap();
    for (case, r, s) in [
        ("r=s=0", [0u8; 32], [0u8; 32]),
        ("r=s=n", N, N),
        ("r=0,s=1", [0u8; 32], one),
        ("r=1,s=0", one, [0u8; 32]),
        ("r=n-1,s=n", n_minus_1, N),
        ("r=s=n-1", n_minus_1, n_minus_1),
        ("r=s=0xff..", [0xff; 32], [0xff; 32]),
    ] {
        let sig = [&r[..], &s[..]].concat();
        refused(&auth, &format!("{msg}.{}", b64(&sig)), case).await;
    }
    assert!(check(&auth, &good).await.is_ok());
}

#[tokio::test]
async fn alg_08_der_and_wrong_length_ecdsa_signatures_are_refused() {
    let ec = es256(9, "k1");
    let idp = jwks(vec![ec.jwk.clone()]).await;
    let auth = authenticator(jwt_provider("idp", idp.url(), |_| {}));
    let good = ec.token(&claims(""));
    let (msg, sig) = good.rsplit_once('.').unwrap();
    let raw =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, sig).unwrap();
    // The same (r, s) as an ASN.1 DER SEQUENCE of two INTEGERs.
    let int = |x: &[u8]| {
        let x: Vec<u8> = x.iter().copied().skip_while(|b| *b == 0).collect();
        let x = if x[0] & 0x80 != 0 {
            [&[0u8][..], &x].concat()
        } else {
            x
        };
        [&[0x02, x.len() as u8][..], &x].concat()
    };
    let body = [int(&raw[..32]), int(&raw[32..])].concat();
    let der = [&[0x30, body.len() as u8][..], &body].concat();
    for (case, bytes) in [
        ("DER", der),
        ("63 bytes", raw[..63].to_vec()),
        ("65 bytes", [&raw[..], &[0u8]].concat()),
        ("96 bytes", [&raw[..], &raw[..32]].concat()),
        ("empty", vec![]),
    ] {
        refused(&auth, &format!("{msg}.{}", b64(&bytes)), case).await;
    }
}

#[tokio::test]
async fn hdr_03_hostile_kids_are_refused_without_any_fetch() {
    let ec = es256(9, "k1");
    let idp = jwks(vec![ec.jwk.clone()]).await;
    let auth = authenticator(jwt_provider("idp", idp.url(), |_| {}));
    assert!(check(&auth, &ec.token(&claims(""))).await.is_ok());
    let hits = idp.fake.hits();
    let huge = "k".repeat(5000);
    for kid in [
        json!("k1\r\nX-Injected: 1"),
        json!("k1\u{0}"),
        json!("\u{1b}[31mk1"),
        json!(huge),
        json!(123),
        json!(["k1"]),
    ] {
        let h = json!({"alg":"ES256","kid":kid}).to_string();
        refused(&auth, &ec.raw(&h, &claims("")), &h[..h.len().min(40)]).await;
    }
    assert!(
        idp.fake.hits() <= hits + 1,
        "at most one rate-limited refetch"
    );
}

#[tokio::test]
async fn hdr_08_critical_extensions_are_refused() {
    let ec = es256(9, "k1");
    let idp = jwks(vec![ec.jwk.clone()]).await;
    let auth = authenticator(jwt_provider("idp", idp.url(), |_| {}));
    for h in [
        r#"{"alg":"ES256","kid":"k1","crit":["exp-ext"],"exp-ext":"x"}"#,
        r#"{"alg":"ES256","kid":"k1","crit":[]}"#,
        r#"{"alg":"ES256","kid":"k1","crit":["alg"]}"#,
        r#"{"alg":"ES256","kid":"k1","crit":"exp-ext"}"#,
    ] {
        refused(&auth, &ec.raw(h, &claims("")), h).await;
    }
}

#[tokio::test]
async fn hdr_14_headers_that_are_not_a_utf8_json_object_are_refused() {
    let ec = es256(9, "k1");
    let idp = jwks(vec![ec.jwk.clone()]).await;
    let auth = authenticator(jwt_provider("idp", idp.url(), |_| {}));
    let p = b64(claims("").as_bytes());
    let json = r#"{"alg":"ES256","kid":"k1"}"#;
    let utf16: Vec<u8> = json.encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
    let bom = [&[0xEF, 0xBB, 0xBF][..], json.as_bytes()].concat();
    for (case, header) in [
        ("UTF-16", utf16),
        ("BOM", bom),
        ("array", b"[]".to_vec()),
        ("string", b"\"x\"".to_vec()),
        ("number", b"1".to_vec()),
        (
            "latin-1",
            b"{\"alg\":\"ES256\",\"kid\":\"k\xe91\"}".to_vec(),
        ),
    ] {
        let m = format!("{}.{p}", b64(&header));
        let sig = jsonwebtoken::crypto::sign(m.as_bytes(), &ec.key, Algorithm::ES256).unwrap();
        refused(&auth, &format!("{m}.{sig}"), case).await;
    }
}

#[tokio::test]
async fn clm_15_duplicate_registered_claims_are_refused() {
    let ec = es256(9, "k1");
    let idp = jwks(vec![ec.jwk.clone()]).await;
    let auth = authenticator(jwt_provider("idp", idp.url(), |_| {}));
    let n = now() + 300;
    for p in [
        format!(r#"{{"sub":"a","iss":"{ISSUER}","aud":"api","exp":1,"exp":{n}}}"#),
        format!(r#"{{"sub":"a","sub":"admin","iss":"{ISSUER}","aud":"api","exp":{n}}}"#),
        format!(r#"{{"sub":"a","iss":"https://evil","iss":"{ISSUER}","aud":"api","exp":{n}}}"#),
        format!(r#"{{"sub":"a","iss":"{ISSUER}","aud":"other","aud":"api","exp":{n}}}"#),
    ] {
        refused(&auth, &ec.token(&p), &p).await;
    }
}

#[tokio::test]
async fn clm_18_deep_or_wide_claims_are_bounded() {
    let ec = es256(9, "k1");
    let idp = jwks(vec![ec.jwk.clone()]).await;
    let auth = authenticator(jwt_provider("idp", idp.url(), |_| {}));
    let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
    refused(
        &auth,
        &ec.token(&claims(&format!(r#""x":{deep}"#))),
        "depth 200",
    )
    .await;
    // As wide as fits in the 8 KiB header cap: decided quickly either way, never a panic.
    let wide: Vec<String> = (0..600).map(|i| format!(r#""k{i}":0"#)).collect();
    let t = ec.token(&claims(&wide.join(",")));
    assert!(t.len() < 8 * 1024, "{}", t.len());
    let started = Instant::now();
    let _ = check(&auth, &t).await;
    assert!(started.elapsed() < Duration::from_secs(1));
}
