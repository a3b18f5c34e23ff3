//! The layer's overhead over a bare service, on the paths that matter.
//!
//! `cargo bench --bench layer`; compare each case with `bare` from the same run.

mod common;

use common::OneToken;
use std::convert::Infallible;
use std::hint::black_box;

use auth_o_tron::provider::PlainProvider;
use auth_o_tron::provider::Provider;
use auth_o_tron::provider::plain::hash_password;
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
    let bearer = format!("Bearer {token}");
    let password = "correct horse battery staple";
    let basic = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("alice:{password}")
        )
    );
    let auth = Authenticator::builder()
        .provider(OneToken::new(token.clone()))
        .provider(
            PlainProvider::new("local", "bench")
                .with_user_hash("alice", &hash_password(password), ["x"])
                .unwrap(),
        )
        .build()
        .unwrap();
    let mut layered = AuthLayer::new(auth.clone()).layer(tower::service_fn(bare));
    // Warm the cache for both credentials.
    rt.block_on(async {
        for h in [&bearer, &basic] {
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

criterion_group!(layer, benches);
criterion_main!(layer);
