//! The token format as a user sees it: what `check` refuses before any store access, and what
//! a generated token looks like.

use std::collections::HashSet;

use auth_o_tron::token::{FormatError, TokenFormat, TokenHash};

const ALPHABET: &str = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn valid() -> String {
    TokenFormat::default()
        .generate()
        .unwrap()
        .secret
        .expose()
        .to_owned()
}

#[test]
fn every_single_character_substitution_is_refused() {
    let format = TokenFormat::default();
    for _ in 0..5 {
        let token = valid();
        assert_eq!(format.check(&token), Ok(TokenHash::of(&token)));
        for (i, original) in token.char_indices() {
            for c in ALPHABET.chars().chain(['_', '-', ' ', 'é', '\0']) {
                if c == original {
                    continue;
                }
                let mut mutated = token.clone();
                mutated.replace_range(i..i + 1, c.encode_utf8(&mut [0; 4]));
                let verdict = format.check(&mutated);
                assert!(verdict.is_err(), "{mutated:?} accepted");
                if i >= 4 && c.is_ascii_alphanumeric() {
                    assert_eq!(verdict, Err(FormatError::Checksum), "{mutated:?}");
                }
            }
        }
    }
}

#[test]
fn swapping_two_characters_is_refused() {
    let format = TokenFormat::default();
    let token = valid();
    let bytes = token.as_bytes();
    for i in 4..bytes.len() - 1 {
        if bytes[i] == bytes[i + 1] {
            continue;
        }
        let mut swapped = bytes.to_vec();
        swapped.swap(i, i + 1);
        let swapped = String::from_utf8(swapped).unwrap();
        assert_eq!(
            format.check(&swapped),
            Err(FormatError::Checksum),
            "{swapped}"
        );
    }
}

#[test]
fn every_other_length_is_refused() {
    let format = TokenFormat::default();
    let token = valid();
    for len in 0..=80 {
        let candidate: String = token.chars().cycle().take(len).collect();
        if len == 40 {
            assert!(format.check(&candidate).is_ok());
            continue;
        }
        let expected = if len < 4 {
            FormatError::Prefix
        } else {
            FormatError::Length
        };
        assert_eq!(format.check(&candidate), Err(expected), "length {len}");
    }
}

#[test]
fn wrong_prefixes_and_non_ascii_are_refused() {
    let format = TokenFormat::default();
    let token = valid();
    for prefix in ["AOT_", "aot-", "ghp_", "xaot_", " aot_"] {
        let other = format!("{prefix}{}", &token[4..]);
        assert_eq!(format.check(&other), Err(FormatError::Prefix), "{other}");
    }
    // A multi-byte character keeping the byte length.
    let two_bytes = format!("{}é", &token[..38]);
    assert_eq!(format.check(&two_bytes), Err(FormatError::Alphabet));
    // Same number of characters, more bytes.
    let one_char = format!("{}é", &token[..39]);
    assert_eq!(format.check(&one_char), Err(FormatError::Length));
    assert_eq!(
        format.check(&format!("{token}\n")),
        Err(FormatError::Length)
    );
    assert_eq!(format.check(""), Err(FormatError::Prefix));
}

#[test]
fn a_second_accepted_prefix_keeps_old_tokens_working() {
    let old = TokenFormat::default();
    let old_token = valid();
    let new = TokenFormat::new("acme_").unwrap().accept("aot_").unwrap();
    let fresh = new.generate().unwrap();
    assert!(fresh.secret.expose().starts_with("acme_"));
    assert_eq!(fresh.secret.expose().len(), 41);
    assert_eq!(
        fresh.hint,
        format!("acme_…{}", &fresh.secret.expose()[37..])
    );
    assert_eq!(new.check(&old_token), Ok(TokenHash::of(&old_token)));
    assert_eq!(new.check(fresh.secret.expose()), Ok(fresh.hash));
    assert_eq!(old.check(fresh.secret.expose()), Err(FormatError::Prefix));
    // The checksum covers the prefix: a token cannot be moved to another accepted prefix.
    let moved = format!("aot_{}", &fresh.secret.expose()[5..]);
    assert_eq!(new.check(&moved), Err(FormatError::Checksum));
}

#[test]
fn generated_tokens_are_distinct_and_use_the_whole_alphabet() {
    let mut seen = HashSet::new();
    let mut counts = [0u32; 62];
    for _ in 0..2000 {
        let token = valid();
        for b in token[4..34].bytes() {
            counts[ALPHABET.find(char::from(b)).unwrap()] += 1;
        }
        assert!(seen.insert(token));
    }
    // 60,000 draws, 967.7 expected per character; modulo bias or a dropped range would show as
    // counts far outside these bounds (about ±6 standard deviations).
    for (i, &n) in counts.iter().enumerate() {
        assert!((780..1160).contains(&n), "{}: {n}", &ALPHABET[i..=i]);
    }
}

#[test]
fn debug_output_never_contains_the_secret_or_its_digest() {
    let t = TokenFormat::default().generate().unwrap();
    let shown = format!("{t:?} {:?}", t.hash);
    assert!(!shown.contains(t.secret.expose()), "{shown}");
    assert!(!shown.contains(&t.secret.expose()[4..20]), "{shown}");
    let hex: String = t.hash.as_bytes()[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(!shown.contains(&hex), "{shown}");
}
