//! The `jwt` provider's checks before the key lookup, and the claims → `User` mapping.
//!
//! Input: a selector byte, then
//! - `0`: a compact token, as sent;
//! - `1`: header JSON, NUL, claims JSON, NUL, signature bytes: encoded into a token here, so
//!   mutations reach the header and claim checks instead of dying in base64;
//! - `2..`: a claims object, mapped as after a verified signature.
//!
//! The selector also picks the settings (issuer, `typ`, username and roles claim paths).
//! Properties: nothing panics; a token passing the unverified checks has three parts, an
//! allowed algorithm and no `cty`, an unexpired numeric `exp` and the configured issuer; a
//! mapped user has a non-empty user name taken from the configured claim, the realm, unique
//! roles, scopes under the provider name, attributes without control characters, at most
//! 4 KiB each, none of the claims that are not attributes, and `expires_at` = `exp` (clamped
//! to the end of year 9999).
//!
//! User names with control characters: see `FUZZ_STRICT_USERNAME` in `fuzz/README.md`.
#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use auth_o_tron::__fuzz::{Algorithm, Jwt, PROVIDER, REALM};
use auth_o_tron::Scopes;
use auth_o_tron::provider::JwtSettings;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

const ISSUER: &str = "https://idp.example/realms/r";

fn settings(variant: u8) -> JwtSettings {
    let mut s = JwtSettings::default();
    if variant & 1 != 0 {
        s.issuer = Some(ISSUER.into());
    }
    if variant & 2 != 0 {
        s.typ = Some("at+jwt".into());
    }
    if variant & 4 != 0 {
        s.username_claim = Some(vec!["ext".into(), "login".into()]);
    }
    if variant & 8 != 0 {
        s.roles_claim = Some(vec!["groups".into()]);
    }
    if variant & 16 != 0 {
        s.algorithms = vec![Algorithm::ES256];
    }
    s
}

fn providers() -> &'static Vec<(JwtSettings, Jwt)> {
    static P: OnceLock<Vec<(JwtSettings, Jwt)>> = OnceLock::new();
    P.get_or_init(|| {
        (0..32)
            .map(|v| {
                let s = settings(v);
                (s.clone(), Jwt::new(s).expect("valid settings"))
            })
            .collect()
    })
}

fn strict_username() -> bool {
    static S: OnceLock<bool> = OnceLock::new();
    *S.get_or_init(|| std::env::var_os("FUZZ_STRICT_USERNAME").is_some())
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

fn claim_at<'a>(claims: &'a Map<String, Value>, path: &[String]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    rest.iter()
        .try_fold(claims.get(first)?, |v, seg| v.get(seg))
}

fn check_token(settings: &JwtSettings, jwt: &Jwt, token: &str) {
    let Ok(alg) = jwt.unverified_checks(token) else {
        return;
    };
    assert!(settings.algorithms.contains(&alg), "{alg:?} not allowed");
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    // jsonwebtoken decodes the parts; when this strict decoding disagrees, skip the rest.
    let json = |p: &str| -> Option<Value> {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).ok()?).ok()
    };
    if let Some(header) = json(parts[0]) {
        assert!(header.get("cty").is_none_or(Value::is_null), "cty accepted");
    }
    if let Some(claims) = json(parts[1]) {
        let exp = claims["exp"].as_u64().expect("exp is a number");
        assert!(
            exp.saturating_add(settings.leeway + 5) >= now(),
            "expired token passed"
        );
        if let Some(iss) = &settings.issuer {
            assert_eq!(claims["iss"].as_str(), Some(iss.as_str()));
        }
    }
}

fn check_map(settings: &JwtSettings, jwt: &Jwt, claims: Map<String, Value>) {
    let Ok(id) = jwt.map(claims.clone()) else {
        return;
    };
    let user = id.user;
    assert!(!user.username.is_empty());
    let expected = match &settings.username_claim {
        Some(path) => claim_at(&claims, path).and_then(Value::as_str),
        None => claims
            .get("preferred_username")
            .and_then(Value::as_str)
            .or_else(|| claims.get("sub").and_then(Value::as_str)),
    };
    assert_eq!(Some(user.username.as_str()), expected);
    if strict_username() {
        assert!(
            !user.username.chars().any(char::is_control),
            "user name with a control character: {:?}",
            user.username
        );
    }
    assert_eq!(user.realm, REALM);
    for (i, r) in user.roles.iter().enumerate() {
        assert!(!user.roles[..i].contains(r), "duplicate role {r:?}");
    }
    for (k, v) in &user.attributes {
        assert!(
            ![
                "sub",
                "scope",
                "realm_access",
                "resource_access",
                "entitlements"
            ]
            .contains(&k.as_str()),
            "{k} copied"
        );
        assert!(!v.chars().any(char::is_control), "attribute {k} = {v:?}");
        assert!(v.len() <= 4096);
    }
    let Scopes::Only(map) = &user.scopes else {
        panic!("a token must give scoped access, got {:?}", user.scopes);
    };
    assert_eq!(map.len(), 1);
    assert!(map.contains_key(PROVIDER));
    let exp = claims["exp"].as_u64().expect("mapped claims have exp");
    // Clamped to the end of year 9999 (`provider::unix_time`), never an overflow.
    let clamped = exp.min(253_402_300_799);
    assert_eq!(
        id.expires_at,
        Some(UNIX_EPOCH + Duration::from_secs(clamped))
    );
    assert!(claims.get("iss").is_none_or(Value::is_string));
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let (settings, jwt) = &providers()[(selector >> 3) as usize % 32];
    match selector & 7 {
        0 => {
            if let Ok(token) = std::str::from_utf8(rest) {
                check_token(settings, jwt, token);
            }
        }
        1 => {
            let mut parts = rest.splitn(3, |b| *b == 0);
            let header = parts.next().unwrap_or_default();
            let claims = parts.next().unwrap_or_default();
            let sig = parts.next().unwrap_or_default();
            let token = format!(
                "{}.{}.{}",
                URL_SAFE_NO_PAD.encode(header),
                URL_SAFE_NO_PAD.encode(claims),
                URL_SAFE_NO_PAD.encode(sig)
            );
            check_token(settings, jwt, &token);
        }
        _ => {
            if let Ok(claims) = serde_json::from_slice::<Map<String, Value>>(rest) {
                check_map(settings, jwt, claims);
            }
        }
    }
});
