//! The `Authorization` parser, `HeaderSource` and `CookieSource`.
//!
//! Input: header value bytes; a NUL byte separates header lines (a header value cannot hold
//! one). Properties:
//! - two or more `Authorization` lines are always refused;
//! - an accepted header is visible ASCII and spaces only, at most `MAX_CREDENTIALS`
//!   credentials, one per scheme, each secret a substring of the input in its scheme's alphabet;
//! - round trip: `Scheme secret, ...` re-serialised from the result parses to the same list,
//!   and re-serialising that gives the same text (idempotent on the normalised form);
//! - the size cap is exact.
#![no_main]

use auth_o_tron::credentials::{
    CookieSource, CredentialSource, Credentials, DEFAULT_MAX_HEADER_BYTES, HeaderSource,
    MAX_CREDENTIALS, Scheme,
};
use http::header::{AUTHORIZATION, COOKIE, HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;

fn alphabet_ok(scheme: Scheme, secret: &str) -> bool {
    let b = secret.as_bytes();
    match scheme {
        Scheme::Bearer => {
            let body = secret.trim_end_matches('=');
            !body.is_empty()
                && body
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"-._~+/".contains(&c))
        }
        Scheme::Basic => b
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || b"+/=".contains(c)),
        _ => b.iter().all(u8::is_ascii_graphic),
    }
}

fn parse(map: &HeaderMap, max: usize) -> Result<Vec<(Scheme, String)>, String> {
    Credentials::from_headers(map, max)
        .map(|c| {
            c.iter()
                .map(|c| (c.scheme(), c.secret().to_owned()))
                .collect()
        })
        .map_err(|e| e.to_string())
}

fn serialise(list: &[(Scheme, String)]) -> String {
    list.iter()
        .map(|(s, v)| format!("{} {v}", s.name()))
        .collect::<Vec<_>>()
        .join(", ")
}

fuzz_target!(|data: &[u8]| {
    let lines: Vec<&[u8]> = data.split(|b| *b == 0).collect();
    let values: Vec<HeaderValue> = lines
        .iter()
        .filter_map(|l| HeaderValue::from_bytes(l).ok())
        .collect();
    if values.is_empty() {
        return;
    }
    let mut map = HeaderMap::new();
    for v in &values {
        map.append(AUTHORIZATION, v.clone());
    }
    let got = parse(&map, DEFAULT_MAX_HEADER_BYTES);
    if values.len() > 1 {
        assert!(got.is_err(), "two Authorization lines accepted: {values:?}");
    }

    let value = &values[0];
    let mut one = HeaderMap::new();
    one.insert(AUTHORIZATION, value.clone());
    let text = value.as_bytes();
    // The size cap: exactly at the length passes the cap, one below is refused.
    if !text.is_empty() {
        assert_eq!(
            parse(&one, text.len() - 1),
            Err("Authorization header too large".to_owned())
        );
    }
    if let Ok(list) = parse(&one, text.len()) {
        assert!(
            text.iter().all(|b| (0x20..0x7f).contains(b)),
            "accepted a header with a byte outside visible ASCII: {value:?}"
        );
        assert!(list.len() <= MAX_CREDENTIALS);
        let input = std::str::from_utf8(text).expect("checked ASCII");
        for (i, (scheme, secret)) in list.iter().enumerate() {
            assert!(input.contains(secret.as_str()));
            assert!(alphabet_ok(*scheme, secret), "{scheme:?} {secret:?}");
            assert!(
                list[..i].iter().all(|(s, _)| s != scheme),
                "repeated scheme"
            );
        }
        if !list.is_empty() {
            let again = serialise(&list);
            let mut m = HeaderMap::new();
            m.insert(
                AUTHORIZATION,
                HeaderValue::from_str(&again).expect("re-serialised header is ASCII"),
            );
            let reparsed = parse(&m, DEFAULT_MAX_HEADER_BYTES.max(again.len()))
                .unwrap_or_else(|e| panic!("{again:?} (from {input:?}) is refused: {e}"));
            assert_eq!(reparsed, list, "round trip of {input:?} via {again:?}");
            assert_eq!(serialise(&reparsed), again, "not idempotent");
        }
    }

    // The same bytes as a dedicated header and as cookies.
    let mut h = HeaderMap::new();
    for v in &values {
        h.append(HeaderName::from_static("x-api-key"), v.clone());
        h.append(COOKIE, v.clone());
    }
    let source = HeaderSource::new(HeaderName::from_static("x-api-key"), Scheme::Bearer);
    if let Ok(Some(c)) = source.extract(&h) {
        assert_eq!(values.len(), 1, "a repeated credential header was accepted");
        assert!(alphabet_ok(Scheme::Bearer, c.secret()));
        assert_eq!(c.secret().as_bytes(), values[0].as_bytes());
    }
    let cookie = CookieSource::new("session", Scheme::Custom("Session"));
    if let Ok(Some(c)) = cookie.extract(&h) {
        assert!(!c.secret().is_empty());
        assert!(alphabet_ok(Scheme::Custom("Session"), c.secret()));
    }
});
