//! JWKS parsing (`src/provider/jwks.rs`).
//!
//! Input: a JWKS document. It is parsed with the full asymmetric allowlist and with a narrow
//! one (`ES256` only). Properties: nothing panics; an accepted key is never `oct` and never
//! carries private members, has `use` absent or `sig`, `key_ops` (if any) with `verify`, an
//! algorithm from the allowlist that fits its `kty`/`crv` (never HMAC), a string `kid` if any;
//! the set keeps exactly the keys that parse one by one (of the first 100) and is an error
//! when none does.
#![no_main]

use auth_o_tron::__fuzz::{Algorithm, jwks_key, jwks_set};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const ALL: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

fn family_ok(kty: &str, crv: Option<&str>, alg: Algorithm) -> bool {
    use Algorithm::*;
    match alg {
        RS256 | RS384 | RS512 | PS256 | PS384 | PS512 => kty == "RSA",
        ES256 => kty == "EC" && crv == Some("P-256"),
        ES384 => kty == "EC" && crv == Some("P-384"),
        EdDSA => kty == "OKP" && crv == Some("Ed25519"),
        _ => false,
    }
}

fn check(body: &[u8], allowed: &[Algorithm]) {
    let set = jwks_set(body, allowed);
    let Ok(doc) = serde_json::from_slice::<Value>(body) else {
        assert!(set.is_err(), "non-JSON accepted");
        return;
    };
    let Some(list) = doc.get("keys").and_then(Value::as_array) else {
        assert!(set.is_err(), "no keys list, yet accepted");
        return;
    };
    let mut one_by_one = Vec::new();
    for key in list.iter().take(100) {
        let Ok((kid, alg)) = jwks_key(key, allowed) else {
            continue;
        };
        let obj = key.as_object().expect("an accepted key is an object");
        let kty = obj["kty"].as_str().expect("kty is a string");
        assert_ne!(kty, "oct", "symmetric key accepted: {key}");
        assert!(["RSA", "EC", "OKP"].contains(&kty), "kty {kty:?} accepted");
        assert!(
            !matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512),
            "HMAC algorithm bound to a JWKS key"
        );
        assert!(allowed.contains(&alg), "{alg:?} outside the allowlist");
        let crv = obj.get("crv").and_then(Value::as_str);
        assert!(family_ok(kty, crv, alg), "{alg:?} on {kty}/{crv:?}");
        for private in ["d", "p", "q", "dp", "dq", "qi"] {
            assert!(
                !obj.contains_key(private),
                "private member {private} accepted"
            );
        }
        assert!(
            obj.get("use").is_none_or(|u| u == "sig"),
            "use {:?}",
            obj["use"]
        );
        if let Some(ops) = obj.get("key_ops") {
            assert!(
                ops.as_array()
                    .is_some_and(|o| o.iter().any(|x| x == "verify")),
                "key_ops without verify"
            );
        }
        match obj.get("alg") {
            None => {}
            Some(Value::String(a)) => assert_eq!(a.parse::<Algorithm>().ok(), Some(alg)),
            Some(other) => panic!("alg {other} accepted"),
        }
        assert_eq!(kid.as_deref(), obj.get("kid").map(|k| k.as_str().unwrap()));
        one_by_one.push((kid, alg));
    }
    match set {
        Ok(keys) => assert_eq!(keys, one_by_one),
        Err(_) => assert!(one_by_one.is_empty(), "usable keys, yet the set is refused"),
    }
}

fuzz_target!(|data: &[u8]| {
    check(data, ALL);
    check(data, &[Algorithm::ES256]);
});
