//! What remote providers make of an answer: RFC 7662 introspection, ECMWF `who-am-i`, EFAS
//! user details, the `openid-offline` introspection answer and the ECMWF token generator's
//! `validate-token` answer. (The token-endpoint answers of `openid-offline` and the token
//! generator are parsed inside their async exchange functions and are not reached here.)
//!
//! Input: a selector byte (low 4 bits: which answer, 0-1 introspection without/with audience
//! and issuer, 2-3 `who-am-i` without/with `check_email`, 4 EFAS, 5 offline introspection,
//! 6-15 `validate-token`; high 4 bits: the HTTP status from a list), then the body; for
//! `who-am-i`, the `EmailKey` email, NUL, the body. Properties: nothing panics; success needs a
//! 2xx status (an `Invalid` refusal only the statuses that mean it, everything else
//! `Unavailable`); introspection success needs `"active": true`, an unexpired `exp`, no
//! refresh token, the configured audience and issuer, and takes the user name from
//! `username`, `sub` or `client_id`; every user has a non-empty name and the configured realm.
//!
//! User names with control characters: see `FUZZ_STRICT_USERNAME` in `fuzz/README.md`.
#![no_main]

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use auth_o_tron::__fuzz::{self as f, AUDIENCE, ISSUER, REALM, Remote};
use auth_o_tron::User;
use auth_o_tron::provider::ProviderError;
use auth_o_tron::provider::client::Fetched;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const STATUSES: [u16; 16] = [
    200, 200, 200, 200, 201, 204, 299, 302, 400, 401, 403, 404, 429, 500, 503, 100,
];

fn remote() -> &'static Remote {
    static R: OnceLock<Remote> = OnceLock::new();
    R.get_or_init(Remote::new)
}

fn strict_username() -> bool {
    static S: OnceLock<bool> = OnceLock::new();
    *S.get_or_init(|| std::env::var_os("FUZZ_STRICT_USERNAME").is_some())
}

fn check_user(user: &User) {
    assert!(!user.username.is_empty());
    assert_eq!(user.realm, REALM);
    if strict_username() {
        assert!(
            !user.username.chars().any(char::is_control),
            "user name with a control character: {:?}",
            user.username
        );
    }
}

/// A refusal fits the status: `Invalid` only for the `refused` ones (or any 2xx, where the body
/// decides), `Unavailable` for every other non-2xx status.
fn check_refusal(status: u16, refused: &[u16], e: &ProviderError) {
    let ok = (200..300).contains(&status);
    match e {
        ProviderError::Invalid(_) => assert!(
            ok || refused.contains(&status),
            "status {status} taken as an invalid credential"
        ),
        ProviderError::Unavailable(_) => assert!(
            ok || !refused.contains(&status),
            "status {status} taken as unavailable"
        ),
        _ => {}
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

fn introspection(body: &[u8], checked: bool) {
    let Ok(doc) = serde_json::from_slice::<Value>(body) else {
        return;
    };
    let got = remote().introspection(&doc, checked);
    if doc.get("active") != Some(&Value::Bool(true)) {
        match (&got, doc.get("active")) {
            (Err(ProviderError::Invalid(_)), Some(Value::Bool(false))) => {}
            (Err(ProviderError::Unavailable(_)), a) if a != Some(&Value::Bool(false)) => {}
            other => panic!("`active` {:?} gave {other:?}", doc.get("active")),
        }
        return;
    }
    let Ok(id) = got else { return };
    check_user(&id.user);
    let want = doc
        .get("username")
        .and_then(Value::as_str)
        .or_else(|| doc.get("sub").and_then(Value::as_str))
        .or_else(|| doc.get("client_id").and_then(Value::as_str));
    assert_eq!(Some(id.user.username.as_str()), want);
    if let Some(exp) = doc.get("exp") {
        assert!(exp.as_u64().is_some_and(|e| e > now()), "exp {exp}");
    }
    assert_ne!(
        doc.get("token_type").and_then(Value::as_str),
        Some("refresh_token")
    );
    assert!(!id.user.attributes.contains_key("active"));
    assert!(!id.user.attributes.contains_key("scope"));
    if checked {
        assert_eq!(doc["iss"].as_str(), Some(ISSUER));
        let aud_ok = match &doc["aud"] {
            Value::String(a) => a == AUDIENCE,
            Value::Array(l) => l.iter().any(|a| a == AUDIENCE),
            _ => false,
        };
        assert!(aud_ok, "aud {} accepted", doc["aud"]);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let status = STATUSES[(selector >> 4) as usize];
    let fetched = |body: &[u8]| Fetched {
        status: http::StatusCode::from_u16(status).expect("valid status"),
        body: bytes_of(body),
    };
    let ok_status = (200..300).contains(&status);
    match selector & 15 {
        0 | 1 => introspection(rest, selector & 1 == 1),
        2 | 3 => {
            let (email, body) = match rest.iter().position(|b| *b == 0) {
                Some(i) => (std::str::from_utf8(&rest[..i]).ok(), &rest[i + 1..]),
                None => (None, rest),
            };
            let check_email = selector & 1 == 1;
            match remote().ecmwf(&fetched(body), email, check_email) {
                Ok(id) => {
                    assert!(ok_status);
                    check_user(&id.user);
                    // serde skips unknown members without checking their UTF-8, so an
                    // accepted answer need not parse as a `Value`.
                    let Ok(who) = serde_json::from_slice::<Value>(body) else {
                        return;
                    };
                    // serde also reads a struct from an array (`["uid", "email"]`).
                    let field = |name: &str, i: usize| match &who {
                        Value::Array(a) => a.get(i).cloned().unwrap_or_default(),
                        other => other[name].clone(),
                    };
                    assert_eq!(field("uid", 0).as_str(), Some(id.user.username.as_str()));
                    if let (true, Some(given)) = (check_email, email) {
                        assert!(
                            field("email", 1)
                                .as_str()
                                .is_some_and(|e| e.eq_ignore_ascii_case(given)),
                            "email {given:?} accepted for {}",
                            field("email", 1)
                        );
                    }
                }
                Err(e) => check_refusal(status, &[401, 403], &e),
            }
        }
        4 => match remote().efas(&fetched(rest)) {
            Ok(id) => {
                assert!(ok_status);
                check_user(&id.user);
            }
            Err(e) => check_refusal(status, &[401, 403], &e),
        },
        5 => match f::offline_introspection(&fetched(rest)) {
            Ok(()) => {
                assert!(ok_status);
                let doc: Value = serde_json::from_slice(rest).expect("JSON");
                assert_eq!(doc["active"], Value::Bool(true));
                let scope = doc["scope"].as_str().expect("scope is a string");
                assert!(
                    scope
                        .split_ascii_whitespace()
                        .any(|w| w == "offline_access")
                );
            }
            Err(e) => check_refusal(status, &[], &e),
        },
        _ => match f::token_generator_validate(&fetched(rest)) {
            Ok(()) => {
                assert!(ok_status);
                let doc: Value = serde_json::from_slice(rest).expect("JSON");
                assert_eq!(doc["active"], Value::Bool(true));
            }
            Err(e) => check_refusal(status, &[], &e),
        },
    }
});

fn bytes_of(b: &[u8]) -> auth_o_tron::__fuzz::Bytes {
    auth_o_tron::__fuzz::Bytes::copy_from_slice(b)
}
