//! The layer's overhead over a bare service, on the paths that matter.
//!
//! `cargo bench --bench layer`; compare each case with `bare` from the same run, and
//! `api_token_cache_hit` (an `aot_` token of the token provider) with the other providers' hits.

mod common;

use common::OneToken;
use std::convert::Infallible;
use std::hint::black_box;
use std::sync::Arc;

use auth_o_tron::provider::PlainProvider;
use auth_o_tron::provider::Provider;
use auth_o_tron::provider::plain::hash_password;
use auth_o_tron::token::{
    Catalogue, MemoryStore, NewToken, Owner, TokenFormat, TokenProvider, TokenSettings, TokenStore,
};
use auth_o_tron::{AuthLayer, Authenticator};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use http::{Request, Response};
use tower::{Layer, Service, ServiceExt};

async fn bare(_: Request<String>) -> Result<Response<String>, Infallible> {
    Ok(Response::new(String::new()))
}

fn request(authorization: &str) -> Request<String> {
    Request::builder()
        .uri("/")
        .header("authorization", authorization)
        .body(String::new())
        .unwrap()
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // A ~1 KB token, the size of a typical OIDC access token.
    let token = "abcdefghij".repeat(100) + ".sig";
    let tokens: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
    let bearer = format!("Bearer {token}");
    let password = "correct horse battery staple";
    let basic = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("alice:{password}")
        )
    );
    let api_token = format!("Bearer {}", rt.block_on(api_token(&tokens)));
    let auth = Authenticator::builder()
        .provider(OneToken::new(token.clone()))
        .provider(
            PlainProvider::new("local", "bench")
                .with_user_hash("alice", &hash_password(password), ["x"])
                .unwrap(),
        )
        .provider(TokenProvider::new(
            "api-tokens",
            tokens,
            TokenSettings::new(Catalogue::new().service("polytope", ["read"]).unwrap()),
        ))
        .build()
        .unwrap();
    let mut layered = AuthLayer::new(auth.clone()).layer(tower::service_fn(bare));
    // Warm the cache for both credentials.
    rt.block_on(async {
        for h in [&bearer, &basic, &api_token] {
            let res = layered
                .ready()
                .await
                .unwrap()
                .call(request(h))
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
        }
    });

    let mut group = c.benchmark_group("layer");
    let mut svc = tower::service_fn(bare);
    group.bench_function("bare", |b| {
        b.to_async(&rt).iter_batched(
            || request(&bearer),
            |req| {
                let f = svc.call(req);
                async move { black_box(f.await.unwrap()) }
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("bearer_1kb_cache_hit", |b| {
        b.to_async(&rt).iter_batched(
            || request(&bearer),
            |req| {
                let f = layered.call(req);
                async move { black_box(f.await.unwrap()) }
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("basic_plain_cache_hit", |b| {
        b.to_async(&rt).iter_batched(
            || request(&basic),
            |req| {
                let f = layered.call(req);
                async move { black_box(f.await.unwrap()) }
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("api_token_cache_hit", |b| {
        b.to_async(&rt).iter_batched(
            || request(&api_token),
            |req| {
                let f = layered.call(req);
                async move { black_box(f.await.unwrap()) }
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("rejected_no_credentials", |b| {
        b.to_async(&rt).iter_batched(
            || Request::new(String::new()),
            |req| {
                let f = layered.call(req);
                async move { black_box(f.await.unwrap()) }
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();

    // The uncached Basic path: one Argon2id verification with the default parameters.
    let plain = PlainProvider::new("local", "bench")
        .with_user_hash("alice", &hash_password(password), ["x"])
        .unwrap();
    let b64 = basic.trim_start_matches("Basic ").to_owned();
    let mut slow = c.benchmark_group("plain_provider");
    slow.sample_size(10);
    slow.bench_function("argon2id_verify_uncached", |b| {
        b.to_async(&rt).iter(|| async {
            black_box(
                plain
                    .authenticate(auth_o_tron::credentials::Credential::new(
                        auth_o_tron::credentials::Scheme::Basic,
                        &b64,
                    ))
                    .await
                    .unwrap(),
            )
        })
    });
    slow.finish();
}

/// Stores an API token of alice's in `store`; returns its secret.
async fn api_token(store: &Arc<dyn TokenStore>) -> String {
    let t = TokenFormat::default().generate().unwrap();
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    let scopes = [("polytope".to_owned(), vec!["read".to_owned()])].into();
    let token = NewToken::new(
        t.hash,
        t.hint,
        Owner::new("alice", "bench"),
        "bench",
        scopes,
        now,
        now + 86_400,
    );
    store.create(token).await.unwrap();
    t.secret.expose().to_owned()
}

criterion_group!(layer, benches);
criterion_main!(layer);
