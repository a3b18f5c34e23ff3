//! Properties of the parsers, on stable and without coverage feedback: the same properties the
//! `cargo fuzz` targets in `fuzz/` check, over inputs from deterministic generators that know
//! the grammar (a seeded xorshift keeps any failure reproducible).
//!
//! - the `Authorization` parser round-trips what it accepts and is idempotent on that form;
//! - JWKS parsing never accepts a symmetric key, private material or an unusable algorithm;
//! - the JWT claims mapping and the remote answers never panic on arbitrary JSON and only ever
//!   yield users with a name and without control characters in attributes;
//! - malformed LDAP entries (as a hostile directory can send) give no roles and no panic.
#![cfg(feature = "fuzzing")]

use auth_o_tron::__fuzz::asn1::{PL, StructureTag, TagClass};
use auth_o_tron::__fuzz::{
    Algorithm, Jwt, Ldap, Remote, ResultEntry, jwks_key, jwks_set, offline_introspection,
};
use auth_o_tron::credentials::{Credentials, DEFAULT_MAX_HEADER_BYTES, Scheme};
use auth_o_tron::provider::JwtSettings;
use auth_o_tron::provider::client::Fetched;
use http::{HeaderMap, HeaderValue};
use serde_json::{Map, Value, json};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn string(&mut self, alphabet: &[u8], max: usize) -> String {
        let len = self.below(max + 1);
        (0..len).map(|_| *self.pick(alphabet) as char).collect()
    }

    /// Arbitrary JSON, biased to the shapes claims and answers use.
    fn json(&mut self, depth: u32) -> Value {
        match self.below(if depth == 0 { 5 } else { 8 }) {
            0 => Value::Null,
            1 => Value::Bool(self.next() & 1 == 0),
            2 => match self.below(4) {
                0 => json!(self.next()),
                1 => json!(-(self.below(1000) as i64)),
                2 => json!(self.below(10_000) as f64 / 7.0),
                _ => json!(4_102_444_800u64),
            },
            3 | 4 => Value::String(self.string(b"ab \t\n\x07\x1b,=:/.\\\"{}e\x7f", 12)),
            5 | 6 => Value::Array((0..self.below(4)).map(|_| self.json(depth - 1)).collect()),
            _ => {
                let mut m = Map::new();
                for _ in 0..self.below(4) {
                    let k = self
                        .pick(&["roles", "login", "a", "", "sub", "x"])
                        .to_string();
                    m.insert(k, self.json(depth - 1));
                }
                Value::Object(m)
            }
        }
    }
}

fn parse(value: &str) -> Option<Result<Vec<(Scheme, String)>, String>> {
    let v = HeaderValue::from_str(value).ok()?;
    let mut h = HeaderMap::new();
    h.insert("authorization", v);
    Some(
        Credentials::from_headers(&h, DEFAULT_MAX_HEADER_BYTES)
            .map(|c| {
                c.iter()
                    .map(|c| (c.scheme(), c.secret().to_owned()))
                    .collect()
            })
            .map_err(|e| e.to_string()),
    )
}

fn serialise(list: &[(Scheme, String)]) -> String {
    list.iter()
        .map(|(s, v)| format!("{} {v}", s.name()))
        .collect::<Vec<_>>()
        .join(", ")
}

#[test]
fn accepted_authorization_headers_round_trip() {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let mut accepted = 0;
    for _ in 0..30_000 {
        let parts = 1 + rng.below(4);
        let header = (0..parts)
            .map(|_| {
                let scheme = rng.pick(&[
                    "Bearer", "bearer", "BASIC", "Plain", "EmailKey", "Digest", "", "Bearer\t",
                ]);
                let spaces = " ".repeat(rng.below(3));
                let secret = if rng.below(3) == 0 {
                    rng.string(b"aZ09-._~+/=:@ ,\t\"", 12)
                } else {
                    rng.string(b"aZ09-._~+/=", 12)
                };
                format!(
                    "{spaces}{scheme}{}{secret}{spaces}",
                    " ".repeat(rng.below(3))
                )
            })
            .collect::<Vec<_>>()
            .join(",");
        let Some(Ok(list)) = parse(&header) else {
            continue;
        };
        if list.is_empty() {
            continue;
        }
        accepted += 1;
        assert!(
            header.bytes().all(|b| (0x20..0x7f).contains(&b)),
            "{header:?}"
        );
        let again = serialise(&list);
        let reparsed = parse(&again)
            .expect("ASCII")
            .unwrap_or_else(|e| panic!("{again:?} from {header:?} refused: {e}"));
        assert_eq!(reparsed, list, "{header:?} -> {again:?}");
        assert_eq!(serialise(&reparsed), again);
    }
    assert!(
        accepted > 1_000,
        "the generator must reach the accepting paths: {accepted}"
    );
}

const ALL: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

fn random_jwk(rng: &mut Rng) -> Value {
    let n2048 = "xQ".to_owned() + &"AQIDBAUGBwgJ".repeat(28);
    let members: [(&str, Value); 13] = [
        (
            "kty",
            json!(*rng.pick(&["oct", "RSA", "EC", "OKP", "OCT", "oct ", "rsa"])),
        ),
        (
            "alg",
            json!(*rng.pick(&[
                "HS256", "RS256", "ES256", "EdDSA", "none", "PS512", "ES384", "x"
            ])),
        ),
        (
            "crv",
            json!(*rng.pick(&["P-256", "P-384", "Ed25519", "secp256k1"])),
        ),
        ("k", json!("c2VjcmV0")),
        ("n", json!(n2048)),
        ("e", json!("AQAB")),
        ("x", json!("f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU")),
        ("y", json!("x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0")),
        ("d", json!("c2VjcmV0")),
        ("use", json!(*rng.pick(&["sig", "enc", "SIG"]))),
        (
            "key_ops",
            json!([*rng.pick(&["verify", "sign", "encrypt"])]),
        ),
        (
            "kid",
            rng.pick(&[json!("k1"), json!(7), Value::Null]).clone(),
        ),
        ("x5c", json!(["AAAA"])),
    ];
    let mut obj = Map::new();
    for (k, v) in members {
        // Common members usually present, the dangerous ones sometimes.
        let p = match k {
            "kty" | "n" | "e" | "x" | "y" | "crv" => 85,
            _ => 30,
        };
        if rng.below(100) < p {
            obj.insert(k.to_owned(), v);
        }
    }
    Value::Object(obj)
}

#[test]
fn jwks_never_accepts_symmetric_private_or_unusable_keys() {
    let mut rng = Rng(0xdead_beef_cafe_f00d);
    let mut accepted = 0;
    for _ in 0..20_000 {
        let key = random_jwk(&mut rng);
        let Ok((kid, alg)) = jwks_key(&key, ALL) else {
            continue;
        };
        accepted += 1;
        let kty = key["kty"].as_str().unwrap();
        assert!(["RSA", "EC", "OKP"].contains(&kty), "{key}");
        assert!(ALL.contains(&alg), "{key}");
        assert!(
            key.get("d").is_none() && key.get("k").is_none_or(|_| kty != "oct"),
            "{key}"
        );
        assert!(key.get("use").is_none_or(|u| u == "sig"), "{key}");
        assert_eq!(kid.as_deref(), key.get("kid").and_then(Value::as_str));
        let set = jwks_set(
            json!({"keys": [key, {"kty": "oct", "k": "AAAA"}]})
                .to_string()
                .as_bytes(),
            ALL,
        )
        .expect("one usable key");
        assert_eq!(set, vec![(kid, alg)]);
    }
    assert!(
        accepted > 100,
        "the generator must produce usable keys: {accepted}"
    );
    assert!(jwks_set(br#"{"keys":[{"kty":"oct","k":"AAAA","alg":"RS256"}]}"#, ALL).is_err());
}

#[test]
fn claims_mapping_never_panics_on_arbitrary_json() {
    let mut rng = Rng(0x0bad_5eed_0000_0001);
    let mut settings = JwtSettings::default();
    let plain = Jwt::new(settings.clone()).unwrap();
    settings.username_claim = Some(vec!["ext".into(), "login".into()]);
    settings.roles_claim = Some(vec!["groups".into()]);
    let custom = Jwt::new(settings).unwrap();
    let keys = [
        "sub",
        "preferred_username",
        "exp",
        "iat",
        "iss",
        "aud",
        "scope",
        "realm_access",
        "resource_access",
        "entitlements",
        "groups",
        "ext",
        "email",
        "nbf",
    ];
    let mut mapped = 0;
    for i in 0..20_000 {
        let mut claims = Map::new();
        for _ in 0..rng.below(10) {
            let k = rng.pick(&keys).to_string();
            claims.insert(k, rng.json(3));
        }
        if i % 2 == 0 {
            claims.insert("exp".into(), json!(4_102_444_800u64));
            claims.insert("sub".into(), Value::String(rng.string(b"ab\n\x07", 4)));
        }
        for jwt in [&plain, &custom] {
            let Ok(id) = jwt.map(claims.clone()) else {
                continue;
            };
            mapped += 1;
            assert!(!id.user.username.is_empty());
            assert!(
                id.user
                    .attributes
                    .values()
                    .all(|v| !v.chars().any(char::is_control))
            );
            assert!(
                id.user
                    .attributes
                    .keys()
                    .all(|k| k != "sub" && k != "scope")
            );
            for (i, r) in id.user.roles.iter().enumerate() {
                assert!(!id.user.roles[..i].contains(r));
            }
        }
    }
    assert!(mapped > 1_000, "{mapped}");
}

#[test]
fn remote_answers_never_panic_and_need_success() {
    let mut rng = Rng(77);
    let remote = Remote::new();
    for _ in 0..10_000 {
        let mut doc = Map::new();
        for _ in 0..rng.below(6) {
            let k = rng.pick(&[
                "active",
                "username",
                "sub",
                "client_id",
                "exp",
                "aud",
                "iss",
                "scope",
                "token_type",
                "uid",
                "email",
            ]);
            doc.insert(k.to_string(), rng.json(2));
        }
        if rng.below(2) == 0 {
            doc.insert("active".into(), Value::Bool(true));
        }
        let doc = Value::Object(doc);
        for checked in [false, true] {
            if let Ok(id) = remote.introspection(&doc, checked) {
                assert_eq!(doc["active"], Value::Bool(true));
                assert!(!id.user.username.is_empty());
            }
        }
        let status = *rng.pick(&[200u16, 204, 400, 401, 403, 500]);
        let res = Fetched {
            status: http::StatusCode::from_u16(status).unwrap(),
            body: doc.to_string().into(),
        };
        if remote.ecmwf(&res, Some("a@b"), true).is_ok() || remote.efas(&res).is_ok() {
            assert!((200..300).contains(&status));
        }
        if offline_introspection(&res).is_ok() {
            assert!((200..300).contains(&status));
        }
    }
}

fn octets(b: &[u8]) -> StructureTag {
    StructureTag {
        class: TagClass::Universal,
        id: 4,
        payload: PL::P(b.to_vec()),
    }
}

fn constructed(id: u64, class: TagClass, inner: Vec<StructureTag>) -> StructureTag {
    StructureTag {
        class,
        id,
        payload: PL::C(inner),
    }
}

#[test]
fn malformed_ldap_entries_give_no_roles_and_no_panic() {
    let ldap = Ldap::new(None, None).unwrap();
    let member_of = |vals: Vec<StructureTag>| {
        constructed(
            16,
            TagClass::Universal,
            vec![
                octets(b"memberOf"),
                constructed(17, TagClass::Universal, vals),
            ],
        )
    };
    let entry = |dn: StructureTag, attrs: Vec<StructureTag>| {
        ResultEntry::new(constructed(
            4,
            TagClass::Application,
            vec![dn, constructed(16, TagClass::Universal, attrs)],
        ))
    };
    let good = entry(octets(b"cn=u"), vec![member_of(vec![octets(b"CN=R,DC=x")])]);
    assert_eq!(ldap.entry_roles(vec![good]), ["R"]);
    let malformed = [
        // A DN that is not UTF-8: `SearchEntry::construct` panicked on `expect("dn")`.
        entry(octets(b"\xff"), vec![member_of(vec![octets(b"CN=R")])]),
        // No attribute list.
        ResultEntry::new(constructed(4, TagClass::Application, vec![octets(b"cn=u")])),
        // A primitive where the attribute list belongs.
        ResultEntry::new(constructed(
            4,
            TagClass::Application,
            vec![octets(b"cn=u"), octets(b"x")],
        )),
        // A primitive entry, a partial attribute without values, a value that is a set.
        ResultEntry::new(octets(b"cn=u")),
        entry(
            octets(b"cn=u"),
            vec![constructed(
                16,
                TagClass::Universal,
                vec![octets(b"memberOf")],
            )],
        ),
        entry(
            octets(b"cn=u"),
            vec![member_of(vec![constructed(
                17,
                TagClass::Universal,
                vec![],
            )])],
        ),
        // A referral instead of an entry.
        ResultEntry::new(constructed(
            19,
            TagClass::Application,
            vec![octets(b"ldap://x")],
        )),
    ];
    for e in malformed {
        assert!(ldap.entry_roles(vec![e]).is_empty());
    }
    // Values that are not UTF-8 are skipped, the others kept.
    let mixed = entry(
        octets(b"cn=u"),
        vec![member_of(vec![
            octets(b"\xffCN=bin"),
            octets(b"CN=ok,DC=x"),
        ])],
    );
    assert_eq!(ldap.entry_roles(vec![mixed]), ["ok"]);
}
