//! JWT validation: a first validation by the `jwt` provider (keys cached, result not), the same
//! token again through the pipeline (cache hit), and the same token through plain jsonwebtoken
//! verification with a prepared key (the baseline), in one run, for RS256 and ES256.
//!
//! `cargo bench --features remote --bench jwt`. The RSA key in `benches/keys` is a test key.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use auth_o_tron::Authenticator;
use auth_o_tron::credentials::{Credential, Scheme};
use auth_o_tron::provider::client::HttpClient;
use auth_o_tron::provider::{JwtProvider, JwtSettings, KeySource, Provider};
use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use p256::pkcs8::EncodePrivateKey;

fn claims() -> serde_json::Value {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    serde_json::json!({
        "iss": "https://idp.example", "aud": "api", "sub": "7c1d5a0e-4b8f-4c1e-9f0a-2b6d8e3f1a9c",
        "preferred_username": "alice", "iat": now, "exp": now + 3600, "scope": "openid api:read api:write",
        "realm_access": {"roles": ["user", "reader"]}, "email": "alice@example.org", "azp": "portal",
    })
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let rsa = EncodingKey::from_rsa_pem(include_bytes!("keys/rs256-test-key.pem")).unwrap();
    let ec = EncodingKey::from_ec_der(
        p256::SecretKey::from_slice(&[5u8; 32])
            .unwrap()
            .to_pkcs8_der()
            .unwrap()
            .as_bytes(),
    );
    let mut jwks = Vec::new();
    let mut cases = Vec::new();
    for (name, alg, key) in [
        ("rs256", Algorithm::RS256, rsa),
        ("es256", Algorithm::ES256, ec),
    ] {
        let mut jwk = Jwk::from_encoding_key(&key, alg).unwrap();
        jwk.common.key_id = Some(name.into());
        let mut header = Header::new(alg);
        header.kid = Some(name.into());
        let token = jsonwebtoken::encode(&header, &claims(), &key).unwrap();
        cases.push((name, alg, token, DecodingKey::from_jwk(&jwk).unwrap()));
        jwks.push(jwk);
    }
    let body = serde_json::to_string(&jsonwebtoken::jwk::JwkSet { keys: jwks }).unwrap();
    let url = rt.block_on(async move {
        let app =
            axum::Router::new().route("/jwks", axum::routing::get(move || async move { body }));
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
        format!("http://{addr}/jwks")
    });
    let client = HttpClient::builder().allow_http(true).build().unwrap();
    let settings = JwtSettings {
        issuer: Some("https://idp.example".into()),
        audience: Some(vec!["api".into()]),
        cache_ttl: Duration::from_secs(300),
        ..JwtSettings::default()
    };
    let provider =
        Arc::new(JwtProvider::new("idp", "r", KeySource::Uri(url), client, settings).unwrap());
    rt.block_on(provider.preload()).unwrap();
    let auth = Authenticator::builder()
        .provider_arc(provider.clone())
        .build()
        .unwrap();

    let mut group = c.benchmark_group("jwt");
    for (name, alg, token, key) in &cases {
        let mut v = Validation::new(*alg);
        v.set_audience(&["api"]);
        v.set_issuer(&["https://idp.example"]);
        group.bench_function(format!("{name}/plain_jsonwebtoken"), |b| {
            b.iter(|| black_box(jsonwebtoken::decode::<serde_json::Value>(token, key, &v).unwrap()))
        });
        group.bench_function(format!("{name}/provider_first_validation"), |b| {
            b.to_async(&rt).iter(|| async {
                black_box(
                    provider
                        .authenticate(Credential::new(Scheme::Bearer, token))
                        .await
                        .unwrap(),
                )
            })
        });
        let mut h = http::HeaderMap::new();
        h.insert("authorization", format!("Bearer {token}").parse().unwrap());
        rt.block_on(auth.authenticate(&h)).unwrap();
        group.bench_function(format!("{name}/pipeline_cache_hit"), |b| {
            b.to_async(&rt)
                .iter(|| async { black_box(auth.authenticate(&h).await.unwrap()) })
        });
    }
    group.finish();
}

criterion_group!(jwt, benches);
criterion_main!(jwt);
