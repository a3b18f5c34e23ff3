//! Fixtures shared by the security-catalog tests (`tests/security_*.rs`): signers that sign
//! arbitrary header and payload bytes (EC keys from a seed, RSA keys from
//! `tests/fixtures/security`), a JWKS/discovery server with a hit counter, providers with the
//! catalog's usual settings, and a log capture.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use auth_o_tron::provider::client::HttpClient;
use auth_o_tron::provider::{JwtProvider, JwtSettings, KeySource};
use auth_o_tron::{AuthError, Authenticator, Principal};
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey};
use p256::pkcs8::EncodePrivateKey;
use serde_json::{Value, json};

use crate::common::fake_api::FakeApi;

pub const ISSUER: &str = "https://idp";

pub fn b64(s: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/security")
        .join(name)
}

/// A private key, its algorithm, its `kid` and its public JWK.
pub struct Signer {
    pub kid: String,
    pub alg: Algorithm,
    pub key: EncodingKey,
    pub jwk: Value,
}

/// An ES256 key derived from `seed` (any seed 1..=200 is a valid scalar).
pub fn es256(seed: u8, kid: &str) -> Signer {
    let der = p256::SecretKey::from_slice(&[seed; 32])
        .unwrap()
        .to_pkcs8_der()
        .unwrap();
    let key = EncodingKey::from_ec_der(der.as_bytes());
    let mut jwk = serde_json::to_value(
        jsonwebtoken::jwk::Jwk::from_encoding_key(&key, Algorithm::ES256).unwrap(),
    )
    .unwrap();
    jwk["kid"] = kid.into();
    jwk["use"] = "sig".into();
    Signer {
        kid: kid.into(),
        alg: Algorithm::ES256,
        key,
        jwk,
    }
}

/// The RSA key of `rsa{bits}.pem`, published with JWK `alg` = `alg`.
pub fn rsa(bits: u16, kid: &str, alg: Algorithm) -> Signer {
    let pem = std::fs::read(fixture(&format!("rsa{bits}.pem"))).unwrap();
    let public: Value =
        serde_json::from_slice(&std::fs::read(fixture(&format!("rsa{bits}.json"))).unwrap())
            .unwrap();
    let jwk = json!({"kty":"RSA","n":public["n"],"e":public["e"],"kid":kid,"use":"sig","alg":format!("{alg:?}")});
    Signer {
        kid: kid.into(),
        alg,
        key: EncodingKey::from_rsa_pem(&pem).unwrap(),
        jwk,
    }
}

impl Signer {
    /// Signs `header` and `payload` exactly as given, with this key and `alg`.
    pub fn raw_with(&self, alg: Algorithm, header: &str, payload: &str) -> String {
        let m = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
        let sig = jsonwebtoken::crypto::sign(m.as_bytes(), &self.key, alg).unwrap();
        format!("{m}.{sig}")
    }

    pub fn raw(&self, header: &str, payload: &str) -> String {
        self.raw_with(self.alg, header, payload)
    }

    pub fn header(&self) -> String {
        format!(
            r#"{{"alg":"{:?}","kid":"{}","typ":"at+jwt"}}"#,
            self.alg, self.kid
        )
    }

    /// A token with this key's usual header.
    pub fn token(&self, payload: &str) -> String {
        self.raw(&self.header(), payload)
    }
}

/// Valid claims for issuer [`ISSUER`] and audience `api`, plus `extra` members.
pub fn claims(extra: &str) -> String {
    claims_for(ISSUER, extra)
}

pub fn claims_for(iss: &str, extra: &str) -> String {
    let n = now();
    let base = format!(
        r#""sub":"alice","iss":"{iss}","aud":"api","iat":{n},"exp":{}"#,
        n + 300
    );
    if extra.is_empty() {
        format!("{{{base}}}")
    } else {
        format!("{{{base},{extra}}}")
    }
}

/// An IdP: `/jwks` (a replaceable document) and `/.well-known/openid-configuration`.
pub struct Jwks {
    pub doc: Arc<Mutex<String>>,
    pub discovery_issuer: Arc<Mutex<String>>,
    pub fake: FakeApi,
}

pub async fn jwks(keys: Vec<Value>) -> Jwks {
    let doc = Arc::new(Mutex::new(json!({ "keys": keys }).to_string()));
    let discovery_issuer = Arc::new(Mutex::new(ISSUER.to_owned()));
    let (served, iss) = (doc.clone(), discovery_issuer.clone());
    let addr: Arc<Mutex<String>> = Arc::default();
    let base = addr.clone();
    let fake = FakeApi::start(Arc::new(move |target: &str, _: &str| match target {
        "/jwks" => (200, served.lock().unwrap().clone()),
        "/.well-known/openid-configuration" => (
            200,
            json!({"issuer": *iss.lock().unwrap(), "jwks_uri": format!("{}/jwks", base.lock().unwrap())})
                .to_string(),
        ),
        _ => (404, "{}".into()),
    }))
    .await;
    *addr.lock().unwrap() = format!("http://{}", fake.addr);
    Jwks {
        doc,
        discovery_issuer,
        fake,
    }
}

impl Jwks {
    pub fn url(&self) -> String {
        self.fake.url("/jwks")
    }

    pub fn set(&self, keys: Vec<Value>) {
        *self.doc.lock().unwrap() = json!({ "keys": keys }).to_string();
    }
}

pub fn http_client() -> HttpClient {
    HttpClient::builder()
        .allow_http(true)
        .timeout(Duration::from_millis(800))
        .build()
        .unwrap()
}

pub fn settings() -> JwtSettings {
    JwtSettings {
        issuer: Some(ISSUER.into()),
        audience: Some(vec!["api".into()]),
        leeway: 60,
        min_refetch: Duration::from_secs(10),
        ..JwtSettings::default()
    }
}

pub fn jwt_provider(name: &str, url: String, tweak: impl FnOnce(&mut JwtSettings)) -> JwtProvider {
    let mut s = settings();
    tweak(&mut s);
    JwtProvider::new(name, name, KeySource::Uri(url), http_client(), s).unwrap()
}

pub fn authenticator(p: JwtProvider) -> Authenticator {
    Authenticator::builder()
        .provider(p)
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap()
}

pub fn bearer(token: &str) -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    h.insert("authorization", format!("Bearer {token}").parse().unwrap());
    h
}

pub async fn check(auth: &Authenticator, token: &str) -> Result<Principal, AuthError> {
    auth.authenticate(&bearer(token)).await
}

/// Asserts the token is refused as a bad credential (not "cannot decide").
pub async fn refused(auth: &Authenticator, token: &str, case: &str) {
    let got = check(auth, token).await;
    assert!(
        matches!(got, Err(AuthError::Invalid | AuthError::Malformed(_))),
        "{case}: {got:?}"
    );
}

#[allow(unused_imports)] // not every test binary captures logs
pub use crate::common::logs::Captured;
