//! wrk against the sidecar's `/authenticate` on the cache-hit path (Basic and Bearer), next to a
//! bare axum endpoint answering the same headers, in the same run, at 1 and 64 connections.
//!
//! `cargo bench --features sidecar --bench sidecar_wrk` (needs `wrk`: `apt-get install wrk`).
//! Optional: `WRK_SECONDS` per run (default 5), `WRK_ROUNDS` (default 3). Bare and sidecar runs
//! alternate, and each cell is the median of the rounds: the machine is shared and noisy.

mod common;

use common::OneToken;
use std::process::Command;
use std::time::Duration;

use auth_o_tron::provider::PlainProvider;
use auth_o_tron::provider::plain::hash_password;
use auth_o_tron::sidecar::config::{Built, Config};
use auth_o_tron::sidecar::{metrics::Metrics, router, server};
use auth_o_tron::{Authenticator, User};

struct Run {
    rps: f64,
    p50: String,
    p99: String,
}

fn wrk(url: &str, header: &str, conns: u32, secs: u32) -> Run {
    let out = Command::new("wrk")
        .args([
            "-t1",
            &format!("-c{conns}"),
            &format!("-d{secs}s"),
            "--latency",
            "-H",
            header,
            url,
        ])
        .output()
        .expect("wrk is installed (apt-get install wrk)");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let field = |prefix: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(prefix))
            .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
            .unwrap_or_else(|| panic!("no {prefix} in wrk output:\n{text}"))
    };
    assert!(!text.contains("Non-2xx"), "non-2xx answers:\n{text}");
    Run {
        rps: field("Requests/sec:").parse().unwrap(),
        p50: field("50%"),
        p99: field("99%"),
    }
}

/// The run with the median throughput.
fn median(mut runs: Vec<Run>) -> Run {
    runs.sort_by(|a, b| a.rps.total_cmp(&b.rps));
    runs.swap_remove(runs.len() / 2)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let secs: u32 = std::env::var("WRK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let rounds: usize = std::env::var("WRK_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let token = "abcdefghij".repeat(100) + ".sig";
    let yaml = r#"
version: "2.0.0"
server: {port: 1}
metrics: {enabled: false}
providers: [{type: plain, name: p, realm: bench, users: [{username: alice, password: x}]}]
jwt: {iss: bench, exp: 300, secret: bench-secret-bench-secret-bench-secret}
include_legacy_headers: true
logging: {level: error, format: console}
"#;
    let config = Config::from_yaml(yaml, Vec::<(String, String)>::new())
        .unwrap()
        .config;
    let minter = config.build().unwrap().minter;
    let auth = Authenticator::builder()
        .provider(
            PlainProvider::new("local", "bench")
                .with_user_hash("alice", &hash_password("wonderland"), ["user"])
                .unwrap(),
        )
        .provider(OneToken::new(token.clone()))
        .build()
        .unwrap();
    let built = Built {
        authenticator: auth.clone(),
        minter: minter.clone(),
        rules: Default::default(),
        trusted: Default::default(),
        tokens: None,
        portal: None,
    };
    let (side, bare) = rt.block_on(async {
        let app = router::app(&config, &built, Metrics::new(&auth));
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let side = l.local_addr().unwrap();
        tokio::spawn(server::serve(
            l,
            app,
            server::Limits::default(),
            std::future::pending(),
        ));
        // The bare endpoint: the same status, headers and body, no authentication.
        let jwt = minter
            .mint(&auth_o_tron::Principal::new(
                User::new("alice", "bench"),
                "p",
                None,
            ))
            .unwrap();
        let header = jwt.bearer_header();
        let bare_app = axum::Router::new().route(
            "/authenticate",
            axum::routing::any(move || {
                let h = header.clone();
                async move {
                    (
                        [
                            (axum::http::header::AUTHORIZATION, h),
                            (
                                axum::http::header::CACHE_CONTROL,
                                axum::http::HeaderValue::from_static("no-store"),
                            ),
                            (
                                axum::http::HeaderName::from_static("x-auth-username"),
                                axum::http::HeaderValue::from_static("alice"),
                            ),
                            (
                                axum::http::HeaderName::from_static("x-auth-realm"),
                                axum::http::HeaderValue::from_static("bench"),
                            ),
                            (
                                axum::http::HeaderName::from_static("x-auth-roles"),
                                axum::http::HeaderValue::from_static("user"),
                            ),
                        ],
                        "Authenticated successfully",
                    )
                }
            }),
        );
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let bare = l.local_addr().unwrap();
        tokio::spawn(server::serve(
            l,
            bare_app,
            server::Limits::default(),
            std::future::pending(),
        ));
        tokio::time::sleep(Duration::from_millis(100)).await;
        (side, bare)
    });
    let basic = format!(
        "Authorization: Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            "alice:wonderland"
        )
    );
    let bearer = format!("Authorization: Bearer {token}");
    // Warm the cache.
    for h in [&basic, &bearer] {
        wrk(&format!("http://{side}/authenticate"), h, 1, 1);
    }
    println!(
        "| case | conns | bare req/s | sidecar req/s | ratio | bare p50 / p99 | sidecar p50 / p99 |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (name, h) in [("Basic", &basic), ("Bearer 1 KB", &bearer)] {
        for conns in [1, 64] {
            let (mut bs, mut ss) = (Vec::new(), Vec::new());
            for _ in 0..rounds {
                bs.push(wrk(&format!("http://{bare}/authenticate"), h, conns, secs));
                ss.push(wrk(&format!("http://{side}/authenticate"), h, conns, secs));
            }
            let (b, s) = (median(bs), median(ss));
            println!(
                "| {name} | {conns} | {:.0} | {:.0} | {:.1} % | {} / {} | {} / {} |",
                b.rps,
                s.rps,
                100.0 * s.rps / b.rps,
                b.p50,
                b.p99,
                s.p50,
                s.p99
            );
        }
    }
}
