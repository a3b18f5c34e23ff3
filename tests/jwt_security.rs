//! The JWT cases of the security catalog (`shared/notes/security.md` §2.2-2.5) against the `jwt`
//! provider: tokens are signed by a raw signer over arbitrary header and payload bytes (needed
//! for wrong types, duplicate members and `crit`), keys are served by an in-process JWKS server
//! with a hit counter and fault injection.
#![cfg(feature = "remote")]

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use auth_o_tron::provider::client::HttpClient;
use auth_o_tron::provider::{JwtProvider, JwtSettings, KeySource};
use auth_o_tron::{AuthError, Authenticator};
use base64::Engine;
use common::fake_api::{FakeApi, Fault};
use jsonwebtoken::{Algorithm, EncodingKey};
use p256::pkcs8::EncodePrivateKey;

fn b64(s: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

struct Idp {
    key: EncodingKey,
    jwks: Arc<Mutex<String>>,
    fake: FakeApi,
}

fn es256_key(seed: u8) -> (EncodingKey, serde_json::Value) {
    let der = p256::SecretKey::from_slice(&[seed; 32])
        .unwrap()
        .to_pkcs8_der()
        .unwrap();
    let key = EncodingKey::from_ec_der(der.as_bytes());
    let mut jwk = serde_json::to_value(
        jsonwebtoken::jwk::Jwk::from_encoding_key(&key, Algorithm::ES256).unwrap(),
    )
    .unwrap();
    jwk["kid"] = "k1".into();
    jwk["use"] = "sig".into();
    (key, jwk)
}

async fn idp() -> Idp {
    let (key, jwk) = es256_key(9);
    let jwks = Arc::new(Mutex::new(serde_json::json!({ "keys": [jwk] }).to_string()));
    let served = jwks.clone();
    let fake = FakeApi::start(Arc::new(move |target: &str, _: &str| match target {
        "/jwks" => (200, served.lock().unwrap().clone()),
        _ => (404, "{}".into()),
    }))
    .await;
    Idp { key, jwks, fake }
}

impl Idp {
    fn raw(&self, header: &str, payload: &str) -> String {
        let m = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
        let sig = jsonwebtoken::crypto::sign(m.as_bytes(), &self.key, Algorithm::ES256).unwrap();
        format!("{m}.{sig}")
    }

    fn token(&self, payload: &str) -> String {
        self.raw(r#"{"alg":"ES256","kid":"k1","typ":"at+jwt"}"#, payload)
    }

    fn auth(&self, tweak: impl FnOnce(&mut JwtSettings)) -> Authenticator {
        let mut s = JwtSettings {
            issuer: Some("https://idp".into()),
            audience: Some(vec!["api".into()]),
            leeway: 60,
            min_refetch: Duration::from_secs(10),
            ..JwtSettings::default()
        };
        tweak(&mut s);
        let client = HttpClient::builder()
            .allow_http(true)
            .timeout(Duration::from_millis(800))
            .build()
            .unwrap();
        let p = JwtProvider::new(
            "idp",
            "r",
            KeySource::Uri(self.fake.url("/jwks")),
            client,
            s,
        )
        .unwrap();
        Authenticator::builder()
            .provider(p)
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap()
    }
}

fn claims(extra: &str) -> String {
    let n = now();
    let base = format!(
        r#""sub":"alice","iss":"https://idp","aud":"api","iat":{n},"exp":{}"#,
        n + 300
    );
    if extra.is_empty() {
        format!("{{{base}}}")
    } else {
        format!("{{{base},{extra}}}")
    }
}

async fn check(auth: &Authenticator, token: &str) -> Result<auth_o_tron::Principal, AuthError> {
    let mut h = http::HeaderMap::new();
    match format!("Bearer {token}").parse() {
        Ok(v) => {
            h.insert("authorization", v);
        }
        Err(_) => return Err(AuthError::Malformed("not a header value")),
    }
    auth.authenticate(&h).await
}

async fn refused(auth: &Authenticator, token: &str, case: &str) {
    let got = check(auth, token).await;
    assert!(
        matches!(got, Err(AuthError::Invalid | AuthError::Malformed(_))),
        "{case}: {got:?}"
    );
}

#[tokio::test]
async fn claims_cases() {
    let idp = idp().await;
    let auth = idp.auth(|_| {});
    let ok = check(
        &auth,
        &idp.token(&claims(r#""realm_access":{"roles":"admin"},"scope":"a b""#)),
    )
    .await
    .unwrap();
    assert_eq!(ok.username, "alice");
    // Configured claim paths (RBAC-05: a dotted key is one key, never split).
    let paths = idp.auth(|s| {
        s.username_claim = Some(vec!["ext".into(), "login".into()]);
        s.roles_claim = Some(vec!["a.b".into()]);
    });
    let t = idp.token(&claims(
        r#""ext":{"login":"al"},"a.b":["dotted"],"a":{"b":["split"]}"#,
    ));
    let p = check(&paths, &t).await.unwrap();
    assert_eq!(
        (p.username.as_str(), p.roles.clone()),
        ("al", vec!["dotted".to_owned()])
    );
    assert!(
        ok.roles.is_empty(),
        "a string is never iterated as roles (CLM-19)"
    );
    let n = now();
    let base_no_exp = format!(r#"{{"sub":"alice","iss":"https://idp","aud":"api","iat":{n}}}"#);
    refused(&auth, &idp.token(&base_no_exp), "CLM-01 missing exp").await;
    let with =
        |exp: &str| format!(r#"{{"sub":"alice","iss":"https://idp","aud":"api","exp":{exp}}}"#);
    assert!(
        check(&auth, &idp.token(&with(&(n - 30).to_string())))
            .await
            .is_ok(),
        "CLM-02 inside the leeway"
    );
    let before = auth.stats().providers()[0].success();
    assert!(
        check(&auth, &idp.token(&with(&(n - 30).to_string())))
            .await
            .is_ok()
    );
    assert_eq!(
        auth.stats().providers()[0].success(),
        before + 1,
        "accepted inside the leeway, but never cached past its exp"
    );
    refused(
        &auth,
        &idp.token(&with(&(n - 90).to_string())),
        "CLM-02 beyond the leeway",
    )
    .await;
    for bad in [
        "\"9999999999\"",
        "-1",
        "1e300",
        "18446744073709551616",
        "null",
        "true",
        "[]",
    ] {
        refused(&auth, &idp.token(&with(bad)), &format!("CLM-04 exp {bad}")).await;
    }
    refused(
        &auth,
        &idp.token(&claims(&format!(r#""nbf":{}"#, n + 86_400))),
        "CLM-06 nbf",
    )
    .await;
    refused(
        &auth,
        &idp.token(&claims(&format!(r#""nbf":"{}""#, n - 10))),
        "CLM-04 nbf string",
    )
    .await;
    let iat_future = format!(
        r#"{{"sub":"a","iss":"https://idp","aud":"api","iat":{},"exp":{}}}"#,
        n + 86_400,
        n + 90_000
    );
    refused(&auth, &idp.token(&iat_future), "CLM-07 iat").await;
    let with_iss =
        |iss: &str| format!(r#"{{"sub":"a","iss":{iss},"aud":"api","exp":{}}}"#, n + 300);
    for bad in [
        r#"["https://evil","https://idp"]"#,
        "7",
        "null",
        "{}",
        r#""https://idp/""#,
        r#""HTTPS://idp""#,
    ] {
        refused(
            &auth,
            &idp.token(&with_iss(bad)),
            &format!("CLM-08/09/10 iss {bad}"),
        )
        .await;
    }
    assert!(
        check(&auth, &idp.token(&with_iss(r#""https:\/\/idp""#)))
            .await
            .is_ok(),
        "CLM-08 escaped slash is the same string"
    );
    let with_aud = |aud: &str| {
        format!(
            r#"{{"sub":"a","iss":"https://idp","aud":{aud},"exp":{}}}"#,
            n + 300
        )
    };
    refused(
        &auth,
        &idp.token(&format!(
            r#"{{"sub":"a","iss":"https://idp","exp":{}}}"#,
            n + 300
        )),
        "CLM-11 no aud",
    )
    .await;
    for bad in [
        "123",
        "true",
        "null",
        r#"{"a":"api"}"#,
        "[1,2]",
        r#"["api",1]"#,
        "[]",
        r#"["API"]"#,
        r#""api ""#,
    ] {
        refused(
            &auth,
            &idp.token(&with_aud(bad)),
            &format!("CLM-12/13 aud {bad}"),
        )
        .await;
    }
    assert!(
        check(&auth, &idp.token(&with_aud(r#"["other","api"]"#)))
            .await
            .is_ok(),
        "CLM-13 any-of"
    );
    let dup = format!(
        r#"{{"sub":"a","iss":"https://idp","aud":"api","exp":1,"exp":{}}}"#,
        n + 300
    );
    refused(&auth, &idp.token(&dup), "CLM-15 duplicate exp").await;
    for bad in ["[1,2,3]", "\"str\"", "0", "null", "true"] {
        refused(&auth, &idp.token(bad), &format!("CLM-17 payload {bad}")).await;
    }
    let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
    refused(
        &auth,
        &idp.token(&claims(&format!(r#""x":{deep}"#))),
        "CLM-18 depth",
    )
    .await;
}

#[tokio::test]
async fn header_and_algorithm_cases() {
    let idp = idp().await;
    let auth = idp.auth(|_| {});
    let p = claims("");
    assert!(check(&auth, &idp.token(&p)).await.is_ok());
    for (case, header) in [
        ("ALG-01 none", r#"{"alg":"none","kid":"k1"}"#),
        ("ALG-01 NONE", r#"{"alg":"NONE","kid":"k1"}"#),
        ("ALG-04 not allowed", r#"{"alg":"ES384","kid":"k1"}"#),
        (
            "ALG-05 HS256 with the EC kid",
            r#"{"alg":"HS256","kid":"k1"}"#,
        ),
        (
            "HDR-01 kid traversal",
            r#"{"alg":"ES256","kid":"../../../../dev/null"}"#,
        ),
        (
            "HDR-02 kid injection",
            r#"{"alg":"ES256","kid":"' OR '1'='1"}"#,
        ),
        ("HDR-03 kid number", r#"{"alg":"ES256","kid":123}"#),
        (
            "HDR-04 jku",
            r#"{"alg":"ES256","kid":"x","jku":"http://127.0.0.1:9/jwks"}"#,
        ),
        (
            "HDR-08 crit",
            r#"{"alg":"ES256","kid":"k1","crit":["exp-ext"],"exp-ext":"x"}"#,
        ),
        (
            "HDR-09 b64",
            r#"{"alg":"ES256","kid":"k1","b64":false,"crit":["b64"]}"#,
        ),
        ("HDR-11 nested", r#"{"alg":"ES256","kid":"k1","cty":"JWT"}"#),
        (
            "HDR-13 duplicate alg",
            r#"{"alg":"ES256","alg":"none","kid":"k1"}"#,
        ),
        ("HDR-14 array header", "[]"),
        ("HDR-14 string header", "\"x\""),
    ] {
        refused(&auth, &idp.raw(header, &p), case).await;
    }
    let long_kid = format!(r#"{{"alg":"ES256","kid":"{}"}}"#, "k".repeat(4000));
    refused(&auth, &idp.raw(&long_kid, &p), "HDR-03 long kid").await;
    // A typ check in RFC 9068 mode.
    let strict = idp.auth(|s| s.typ = Some("at+jwt".into()));
    assert!(
        check(
            &strict,
            &idp.raw(
                r#"{"alg":"ES256","kid":"k1","typ":"application/AT+JWT"}"#,
                &p
            )
        )
        .await
        .is_ok()
    );
    for typ in ["JWT", "secevent+jwt", "dpop+jwt"] {
        refused(
            &strict,
            &idp.raw(
                &format!(r#"{{"alg":"ES256","kid":"k1","typ":"{typ}"}}"#),
                &p,
            ),
            "HDR-10",
        )
        .await;
    }
    refused(
        &strict,
        &idp.raw(r#"{"alg":"ES256","kid":"k1"}"#, &p),
        "HDR-10 typ absent",
    )
    .await;
    // Signatures: zero, wrong length, DER, JWE shape, extra segments, dot flood.
    let good = idp.token(&p);
    let (msg, _) = good.rsplit_once('.').unwrap();
    for (case, sig) in [
        ("ALG-07 zero", b64(&[0u8; 64])),
        ("ALG-08 short", b64(&[1u8; 63])),
        ("ALG-08 long", b64(&[1u8; 96])),
    ] {
        refused(&auth, &format!("{msg}.{sig}"), case).await;
    }
    refused(&auth, &format!("{good}.x.y"), "HDR-12 five segments").await;
    refused(&auth, &format!("Bearer {good}"), "AUTHZ-13 prefix").await;
    refused(&auth, &".".repeat(10_000), "AUTHZ-11 dot flood").await;
    // Single-character mutations anywhere are refused (ALG-10, sampled).
    for i in (0..good.len()).step_by(7) {
        let mut b = good.clone().into_bytes();
        if b[i] == b'.' {
            continue;
        }
        b[i] = if b[i] == b'A' { b'B' } else { b'A' };
        let t = String::from_utf8(b).unwrap();
        if t != good {
            refused(&auth, &t, &format!("ALG-10 at {i}")).await;
        }
    }
}

#[tokio::test]
async fn jwks_cases() {
    let idp = idp().await;
    let auth = idp.auth(|s| s.min_refetch = Duration::from_millis(300));
    let p = claims("");
    assert!(check(&auth, &idp.token(&p)).await.is_ok());
    assert_eq!(idp.fake.hits(), 1);
    tokio::time::sleep(Duration::from_millis(350)).await;
    // JWKS-06: a storm of unknown kids makes at most one refetch per interval.
    for i in 0..50 {
        let t = idp.raw(&format!(r#"{{"alg":"ES256","kid":"random-{i}"}}"#), &p);
        refused(&auth, &t, "unknown kid").await;
    }
    assert_eq!(idp.fake.hits(), 2, "one rate-limited refetch");
    // ISS-05: an expired token with an unknown kid is refused without any fetch.
    let fresh = idp.auth(|_| {});
    let expired = format!(
        r#"{{"sub":"a","iss":"https://idp","aud":"api","exp":{}}}"#,
        now() - 3600
    );
    refused(
        &fresh,
        &idp.raw(r#"{"alg":"ES256","kid":"other"}"#, &expired),
        "ISS-05",
    )
    .await;
    let wrong_iss = format!(
        r#"{{"sub":"a","iss":"http://169.254.169.254/","aud":"api","exp":{}}}"#,
        now() + 60
    );
    refused(
        &fresh,
        &idp.raw(r#"{"alg":"ES256","kid":"other"}"#, &wrong_iss),
        "ISS-04",
    )
    .await;
    assert_eq!(idp.fake.hits(), 2, "no network for cheap rejections");
    // JWKS-08: the IdP breaks; the last good keys keep serving known kids.
    for fault in [
        Fault::Status(500),
        Fault::Garbage,
        Fault::Huge,
        Fault::Status(302),
        Fault::Delay(Duration::from_secs(3)),
    ] {
        idp.fake.set(fault);
        let t = idp.token(&claims(&format!(r#""n":"{fault:?}""#)));
        assert!(
            check(&auth, &t).await.is_ok(),
            "{fault:?}: known kid still verifies"
        );
    }
    idp.fake.set(Fault::None);
    *idp.jwks.lock().unwrap() = r#"{"keys":[]}"#.into();
    tokio::time::sleep(Duration::from_millis(50)).await;
    // A fresh provider that never loaded keys cannot decide while the JWKS is empty or broken.
    let cold = idp.auth(|_| {});
    assert_eq!(
        check(&cold, &idp.token(&p)).await.unwrap_err(),
        AuthError::Unavailable,
        "JWKS-08 empty set"
    );
    idp.fake.set(Fault::Huge);
    let cold = idp.auth(|_| {});
    assert_eq!(
        check(&cold, &idp.token(&p)).await.unwrap_err(),
        AuthError::Unavailable,
        "JWKS-09 huge body"
    );
    idp.fake.set(Fault::Status(302));
    let cold = idp.auth(|_| {});
    assert_eq!(
        check(&cold, &idp.token(&p)).await.unwrap_err(),
        AuthError::Unavailable,
        "JWKS-10 redirect"
    );
}

#[test]
fn configuration_cases() {
    let client = HttpClient::builder().build().unwrap();
    let src = || KeySource::Uri("https://idp/jwks".into());
    for (case, s) in [
        (
            "CLM-22 leeway",
            JwtSettings {
                leeway: 86_400,
                ..JwtSettings::default()
            },
        ),
        (
            "ALG-02 HMAC",
            JwtSettings {
                algorithms: vec![Algorithm::HS256],
                ..JwtSettings::default()
            },
        ),
        (
            "empty allowlist",
            JwtSettings {
                algorithms: vec![],
                ..JwtSettings::default()
            },
        ),
    ] {
        assert!(
            JwtProvider::new("p", "r", src(), client.clone(), s).is_err(),
            "{case}"
        );
    }
    assert!(
        JwtProvider::new(
            "p",
            "r",
            KeySource::Uri("http://idp/jwks".into()),
            client,
            JwtSettings::default()
        )
        .is_err(),
        "JWKS-10 http"
    );
}
