//! Original-URI handling and the rule decision (`src/sidecar/rules.rs`).
//!
//! Input: a selector byte (bit 0: `PathMode::Normalize` instead of `Reject`; bit 1: the user
//! holds `admin`), then a rule path, a newline, and the original target (`X-Original-URI`).
//! Properties:
//! - whatever `strict_path` accepts starts with `/` and has, in the raw target, no `%2f`/`%5c`,
//!   no `\`, no control byte, no `#`; in the decoded path no `.`/`..` segment, no empty segment
//!   but a trailing one, no control byte, no `\`, and no `%XX` left over that a second decoding
//!   would turn into something else; and it equals `normalize_path` up to a trailing `/`;
//! - `normalize_path` always gives `/`-rooted paths without `.`, `..` or empty segments;
//! - the decision is the same for equivalent targets: with a `?query` added, with the letters
//!   of the path in the other case, with a trailing `/` added, with a letter percent-encoded.
#![no_main]

use auth_o_tron::sidecar::config::RuleConfig;
use auth_o_tron::sidecar::rules::{Denial, PathMode, Rules, normalize_path, strict_path};
use auth_o_tron::{Principal, User};
use http::{HeaderMap, HeaderValue, Method};
use libfuzzer_sys::fuzz_target;

fn rule(path: &str, methods: &[&str], roles: &[&str]) -> RuleConfig {
    RuleConfig {
        path: path.to_owned(),
        host: None,
        methods: methods.iter().map(|m| (*m).to_owned()).collect(),
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        any_roles: Vec::new(),
        attributes: Default::default(),
        scopes: Default::default(),
    }
}

fn decide(rules: &Rules, principal: &Principal, target: &str) -> Option<Option<Denial>> {
    let mut h = HeaderMap::new();
    h.insert("x-original-uri", HeaderValue::from_str(target).ok()?);
    Some(rules.decide(&h, &Method::GET, principal).denial)
}

fn has_escape(b: &[u8]) -> bool {
    b.windows(3)
        .any(|w| w[0] == b'%' && w[1].is_ascii_hexdigit() && w[2].is_ascii_hexdigit())
}

fn check_strict(target: &str) {
    let Ok(path) = strict_path(target) else {
        return;
    };
    let raw = target.to_ascii_lowercase();
    let raw_path = raw.split('?').next().unwrap_or_default();
    assert!(path.starts_with('/'), "{target:?} -> {path:?}");
    for bad in ["%2f", "%5c", "\\"] {
        assert!(!raw_path.contains(bad), "{target:?} accepted with {bad}");
    }
    assert!(!raw.contains('#'), "{target:?} accepted with a fragment");
    assert!(
        !target.bytes().any(|b| b < 0x21 || b == 0x7f),
        "control byte accepted in {target:?}"
    );
    assert!(
        !path.bytes().any(|b| b < 0x20 || b == 0x7f || b == b'\\'),
        "{path:?}"
    );
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    for (i, s) in segments.iter().enumerate() {
        assert!(
            *s != "." && *s != "..",
            "dot segment in {path:?} from {target:?}"
        );
        assert!(
            !s.is_empty() || i == segments.len() - 1,
            "empty segment in {path:?}"
        );
    }
    assert!(
        !has_escape(path.as_bytes()),
        "{target:?} passes as {path:?}, which a second decoding changes"
    );
    let normal = normalize_path(target);
    let trimmed = if path.len() > 1 {
        path.trim_end_matches('/')
    } else {
        "/"
    };
    assert_eq!(
        normal, trimmed,
        "strict and normalised readings differ for {target:?}"
    );
}

fn check_normal(target: &str) {
    let p = normalize_path(target);
    assert!(p.starts_with('/'), "{target:?} -> {p:?}");
    assert!(
        p == "/"
            || p.split('/')
                .skip(1)
                .all(|s| !s.is_empty() && s != "." && s != ".."),
        "{target:?} -> {p:?}"
    );
}

/// `target` with its first letter outside an escape percent-encoded.
fn encode_a_letter(target: &str) -> Option<String> {
    let path_end = target.find('?').unwrap_or(target.len());
    let b = target.as_bytes();
    let mut i = 0;
    while i < path_end {
        match b[i] {
            b'%' => i += 3,
            c if c.is_ascii_alphabetic() => {
                return Some(format!("{}%{c:02X}{}", &target[..i], &target[i + 1..]));
            }
            _ => i += 1,
        }
    }
    None
}

/// `target` with the ASCII letters of its path in the other case (escapes keep their value).
fn flip_case(target: &str) -> String {
    let path_end = target.find('?').unwrap_or(target.len());
    let (path, query) = target.split_at(path_end);
    let flipped: String = path
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect();
    flipped + query
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let (rule_path, target) = text.split_once('\n').unwrap_or(("/admin", text));
    check_strict(target);
    check_normal(target);

    let mode = if selector & 1 == 0 {
        PathMode::Reject
    } else {
        PathMode::Normalize
    };
    let configs = [
        rule(rule_path, &[], &["admin"]),
        rule("/admin", &[], &["admin"]),
        rule("/reports", &["delete"], &["admin"]),
        rule("/Public/x", &["get"], &["viewer"]),
    ];
    let Ok(rules) = Rules::compile(&configs, mode) else {
        return;
    };
    let mut user = User::new("u", "r");
    if selector & 2 != 0 {
        user = user.with_roles(["admin"]);
    }
    let principal = Principal::new(user, "p", None);
    let Some(base) = decide(&rules, &principal, target) else {
        return;
    };
    // Which check refuses an ambiguous target first may differ between forms; that it is
    // refused may not.
    let class = |d: &Option<Denial>| match d {
        Some(Denial::Ambiguous(_)) => "ambiguous".to_owned(),
        other => format!("{other:?}"),
    };
    let same = |variant: String, what: &str| {
        if let Some(d) = decide(&rules, &principal, &variant) {
            assert_eq!(
                class(&d),
                class(&base),
                "{what}: {target:?} and {variant:?} are decided differently"
            );
        }
    };
    if !target.contains('#') {
        let q = if target.contains('?') { "&q=1" } else { "?q=1" };
        same(format!("{target}{q}"), "query");
    }
    same(flip_case(target), "case");
    let path_end = target.find(['?', '#']).unwrap_or(target.len());
    if !target[..path_end].ends_with('/') && path_end > 0 {
        same(
            format!("{}/{}", &target[..path_end], &target[path_end..]),
            "trailing slash",
        );
    }
    if let Some(v) = encode_a_letter(target) {
        same(v, "percent-encoded letter");
    }
});
