//! Nothing panics on input: random and mutated bytes through the header parser, the path
//! normaliser, the config loader and the whole pipeline (the JWKS parser has its own in
//! `src/provider/jwks.rs`). A deterministic
//! xorshift generator keeps failures reproducible.

mod common;

use auth_o_tron::credentials::{Credentials, DEFAULT_MAX_HEADER_BYTES};
use auth_o_tron::provider::PlainProvider;
use auth_o_tron::sidecar::config::Config;
use auth_o_tron::sidecar::rules::{normalize_path, strict_path};
use auth_o_tron::{Authenticator, User};
use common::Tokens;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Bytes biased towards the characters parsers care about.
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        const INTERESTING: &[u8] = b" ,:=.%/\\;?#\t\"{}[]-_~+BbPpEeAaIiNnRrLlCcKkYy0123456789";
        let len = (self.next() as usize) % max;
        (0..len)
            .map(|_| {
                let r = self.next();
                if r.is_multiple_of(3) {
                    (r >> 8) as u8
                } else {
                    INTERESTING[(r >> 8) as usize % INTERESTING.len()]
                }
            })
            .collect()
    }
}

#[test]
fn header_parser_never_panics() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let seeds: [&[u8]; 4] = [
        b"Bearer abc.def.ghi",
        b"Basic YWxpY2U6eA==, Bearer t",
        b"EmailKey a@b:c",
        b"Plain x",
    ];
    for i in 0..20_000 {
        let mut bytes = if i % 2 == 0 {
            rng.bytes(200)
        } else {
            seeds[i % 4].to_vec()
        };
        if i % 2 == 1 {
            // Mutate a seed: flip, insert or delete a few bytes.
            for _ in 0..(rng.next() % 4) {
                let pos = (rng.next() as usize) % (bytes.len() + 1);
                match rng.next() % 3 {
                    0 if pos < bytes.len() => bytes[pos] = rng.next() as u8,
                    1 => bytes.insert(pos, rng.next() as u8),
                    _ if pos < bytes.len() => {
                        bytes.remove(pos);
                    }
                    _ => {}
                }
            }
        }
        if let Ok(v) = http::HeaderValue::from_bytes(&bytes) {
            let mut h = http::HeaderMap::new();
            h.insert("authorization", v);
            let _ = Credentials::from_headers(&h, DEFAULT_MAX_HEADER_BYTES);
        }
    }
}

#[test]
fn path_normaliser_and_config_loader_never_panic() {
    let mut rng = Rng(42);
    for _ in 0..20_000 {
        let b = rng.bytes(120);
        let s = String::from_utf8_lossy(&b);
        let p = normalize_path(&s);
        assert!(p.starts_with('/'), "{s:?} -> {p:?}");
        assert!(
            !p.contains("//") && !p.split('/').any(|seg| seg == ".." || seg == "."),
            "{s:?} -> {p:?}"
        );
        // Whatever the strict check accepts has one reading: no dot or empty segment, no
        // separator or control byte hidden in an escape, and a query never changes it.
        if let Ok(path) = strict_path(&s) {
            assert!(path.starts_with('/'), "{s:?} -> {path:?}");
            let inner = path.strip_suffix('/').unwrap_or(&path);
            assert!(
                inner.is_empty()
                    || !inner[1..]
                        .split('/')
                        .any(|seg| seg.is_empty() || seg == "." || seg == ".."),
                "{s:?} -> {path:?}"
            );
            assert!(
                !path.contains('\\') && !path.chars().any(char::is_control),
                "{s:?}"
            );
            if !s.contains('?') {
                assert_eq!(strict_path(&format!("{s}?x=/../a")).as_deref(), Ok(&*path));
            }
        }
    }
    let base = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/config.demo.yaml"
    ))
    .unwrap();
    // Each successful build hashes a dummy Argon2 password: keep the count modest.
    for _ in 0..300 {
        let mut text = base.clone().into_bytes();
        for _ in 0..(1 + rng.next() % 5) {
            let pos = (rng.next() as usize) % text.len();
            let set = b" :-[]{}\"'\n#&*!|>%@`";
            text[pos] = set[(rng.next() as usize) % set.len()];
        }
        let _ = Config::from_yaml(
            &String::from_utf8_lossy(&text),
            Vec::<(String, String)>::new(),
        )
        .map(|l| l.config.build());
    }
}

#[tokio::test]
async fn the_pipeline_never_panics_and_never_lets_garbage_in() {
    let mut rng = Rng(7);
    let auth = Authenticator::builder()
        .provider(Tokens::new("t", "r").token("good", User::new("u", "r"), None))
        .provider(
            PlainProvider::new("p", "r")
                .with_user_password("alice", "pw", ["x"])
                .unwrap(),
        )
        .build()
        .unwrap();
    for _ in 0..5_000 {
        let b = rng.bytes(120);
        let mut h = http::HeaderMap::new();
        if let Ok(v) = http::HeaderValue::from_bytes(&b) {
            h.insert("authorization", v);
        }
        if let Ok(v) = http::HeaderValue::from_bytes(&rng.bytes(20)) {
            h.insert("x-auth-realm", v);
        }
        assert!(
            auth.authenticate(&h).await.is_err(),
            "{:?} was let in",
            String::from_utf8_lossy(&b)
        );
    }
}
