//! The `ldap` augmenter's mapping of search result entries to roles, and RFC 4515 escaping.
//!
//! Input: a selector byte, then
//! - even: raw BER, parsed as the connection would and handed over as a result entry (what a
//!   hostile or broken directory can send);
//! - odd: text lines: the first is the role filter setup (`filter=<substring>` or
//!   `filters=<fragment>|<fragment>...`, anything else: none), the others `memberOf` DNs,
//!   wrapped into a well-formed entry.
//!
//! Properties: nothing panics on any BER; with path filters every role is `/`-rooted; without
//! filters each DN with a CN gives exactly one role, its first CN value, and `filter` keeps
//! exactly the DNs containing it; escaping leaves only ASCII, no raw `*()` or NUL, every `\`
//! followed by two hex digits, and unescapes back to the input.
#![no_main]

use auth_o_tron::__fuzz::asn1::{PL, StructureTag, TagClass, parse_tag};
use auth_o_tron::__fuzz::{Ldap, ResultEntry};
use auth_o_tron::augment::ldap::escape_filter_value;
use libfuzzer_sys::fuzz_target;

fn octets(b: &[u8]) -> StructureTag {
    StructureTag {
        class: TagClass::Universal,
        id: 4,
        payload: PL::P(b.to_vec()),
    }
}

fn seq(id: u64, class: TagClass, inner: Vec<StructureTag>) -> StructureTag {
    StructureTag {
        class,
        id,
        payload: PL::C(inner),
    }
}

fn entry(dns: &[&str]) -> ResultEntry {
    let values = seq(
        17,
        TagClass::Universal,
        dns.iter().map(|d| octets(d.as_bytes())).collect(),
    );
    let attr = seq(16, TagClass::Universal, vec![octets(b"memberOf"), values]);
    ResultEntry::new(seq(
        4,
        TagClass::Application,
        vec![
            octets(b"cn=u,dc=example"),
            seq(16, TagClass::Universal, vec![attr]),
        ],
    ))
}

fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).expect("two hex digits");
            out.push(u8::from_str_radix(hex, 16).expect("hex"));
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// The first CN value of `dn`, split as the augmenter does (`\` escapes the next character).
fn first_cn(dn: &str) -> Option<String> {
    let mut parts = vec![String::new()];
    let mut chars = dn.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    parts.last_mut().unwrap().push(n);
                }
            }
            ',' => parts.push(String::new()),
            c => parts.last_mut().unwrap().push(c),
        }
    }
    let comps: Option<Vec<(String, String)>> = parts
        .iter()
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=')?;
            Some((k.trim().to_owned(), v.trim().to_owned()))
        })
        .collect();
    comps?
        .into_iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("cn"))
        .map(|(_, v)| v)
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    if selector & 1 == 0 {
        let plain = Ldap::new(None, None).expect("no filters");
        if let Ok((_, tag)) = parse_tag(rest) {
            let _ = plain.entry_roles(vec![ResultEntry::new(tag)]);
        }
        return;
    }
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let escaped = escape_filter_value(text);
    assert!(escaped.is_ascii());
    assert!(!escaped.contains(['*', '(', ')', '\0']));
    assert!(
        escaped
            .match_indices('\\')
            .all(|(i, _)| escaped[i + 1..].len() >= 2)
    );
    assert_eq!(unescape(&escaped), text.as_bytes());

    let mut lines = text.split('\n');
    let setup = lines.next().unwrap_or_default();
    let dns: Vec<&str> = lines.collect();
    let (filter, filters) = if let Some(f) = setup.strip_prefix("filter=") {
        (Some(f.to_owned()), None)
    } else if let Some(f) = setup.strip_prefix("filters=") {
        (None, Some(f.split('|').map(str::to_owned).collect()))
    } else {
        (None, None)
    };
    let Ok(ldap) = Ldap::new(filter.clone(), filters.clone()) else {
        return;
    };
    let roles = ldap.entry_roles(vec![entry(&dns)]);
    match (&filter, &filters) {
        (_, Some(f)) if !f.is_empty() => {
            for r in &roles {
                assert!(r.starts_with('/'), "{r:?}");
            }
        }
        (None, _) => {
            let want: Vec<String> = dns.iter().filter_map(|d| first_cn(d)).collect();
            assert_eq!(roles, want);
        }
        (Some(f), _) => {
            let want: Vec<String> = dns
                .iter()
                .filter(|d| d.contains(f.as_str()))
                .filter_map(|d| first_cn(d))
                .collect();
            assert_eq!(roles, want);
        }
    }
    // Every role, before any filter, came from one of the DNs.
    let unfiltered = Ldap::new(None, None).expect("no filters");
    let all = unfiltered.entry_roles(vec![entry(&dns)]);
    assert!(all.len() <= dns.len());
});
