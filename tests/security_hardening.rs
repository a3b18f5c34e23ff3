//! Security catalog (`shared/notes/security.md` §2) cases whose behaviour came with the
//! hardening work: credential routing, per-provider call limits, equal-cost password checks,
//! clamped outside times, secrets in `Debug`, log-line escaping, trusted proxies, raw-path
//! rules, connection deadlines and an exchange that is never sent twice.
#![cfg(feature = "sidecar")]

mod common;
#[path = "security_support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use auth_o_tron::provider::introspection::ClientAuth;
use auth_o_tron::provider::plain::hash_password;
use auth_o_tron::provider::{
    EcmwfApiProvider, IntrospectionProvider, IntrospectionSettings, OfflineEndpoints,
    OfflineProvider, OfflineSettings, PlainProvider,
};
use auth_o_tron::sidecar::config::Config;
use auth_o_tron::sidecar::{metrics::Metrics, router, server};
use auth_o_tron::{AuthError, AuthLayer, Authenticator, Principal};
use common::fake_api::{FakeApi, Fault, token_param};
use common::{basic, client};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Tests that run many Argon2 verifications take turns, so one cannot skew the other's timings.
static ARGON2: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn ecmwf() -> FakeApi {
    FakeApi::start(Arc::new(|target: &str, _: &str| {
        match token_param(target).as_deref() {
            Some("api-key") => (200, r#"{"uid":"api-user"}"#.into()),
            _ => (403, "{}".into()),
        }
    }))
    .await
}

fn saw(fake: &FakeApi, token: &str) -> bool {
    fake.targets()
        .iter()
        .any(|t| token_param(t).as_deref() == Some(token))
}

fn intro(fake: &FakeApi) -> IntrospectionProvider {
    IntrospectionProvider::new(
        "opaque",
        "sso",
        IntrospectionSettings {
            endpoint: fake.url("/introspect"),
            client_id: "rs".into(),
            client_secret: "introspection-secret-77".into(),
            client_auth: ClientAuth::Basic,
            audience: None,
            issuer: None,
            cache_ttl: Duration::from_secs(60),
        },
        http_client(),
    )
    .unwrap()
}

#[tokio::test]
async fn authz_14_a_malformed_jwt_is_never_offered_to_remote_providers() {
    let ec = es256(9, "k1");
    let idp = jwks(vec![ec.jwk.clone()]).await;
    let remote = ecmwf().await;
    let auth = Authenticator::builder()
        .provider(EcmwfApiProvider::new("ecmwf", "ecmwf", remote.url(""), http_client()).unwrap())
        .provider(jwt_provider("jwt", idp.url(), |_| {}))
        .build()
        .unwrap();
    assert!(check(&auth, &ec.token(&claims(""))).await.is_ok());
    let junk = [
        format!("{}.e30.sig", b64(br#"{"alg":"ES256","kid":"k1"}"#)),
        format!(
            "{}.{}.AAAA",
            b64(br#"{"alg":"ES256","kid":"k1"}"#),
            b64(b"not json")
        ),
    ];
    for t in &junk {
        refused(&auth, t, t).await;
        assert!(!saw(&remote, t), "{t} reached the remote provider");
    }
}

#[tokio::test]
async fn opq_09_a_jwt_of_a_known_key_never_reaches_an_authorization_server() {
    let ec = es256(9, "k1");
    let idp = jwks(vec![ec.jwk.clone()]).await;
    let remote = ecmwf().await;
    let (_, intro_fake) = introspection_fake().await;
    let auth = Authenticator::builder()
        .provider(EcmwfApiProvider::new("ecmwf", "ecmwf", remote.url(""), http_client()).unwrap())
        .provider(intro(&intro_fake))
        .provider(jwt_provider("jwt", idp.url(), |_| {}))
        .build()
        .unwrap();
    let good = ec.token(&claims(""));
    let expired = ec.token(&format!(
        r#"{{"sub":"a","iss":"{ISSUER}","aud":"api","exp":{}}}"#,
        now() - 3600
    ));
    let forged = es256(77, "k1").token(&claims(""));
    assert_eq!(check(&auth, &good).await.unwrap().provider(), "jwt");
    refused(&auth, &expired, "expired").await;
    refused(&auth, &forged, "forged under our kid").await;
    assert_eq!(
        remote.hits() + intro_fake.hits(),
        0,
        "no JWT left the process"
    );
    // An opaque key still reaches the remote providers.
    assert_eq!(check(&auth, "api-key").await.unwrap().provider(), "ecmwf");
}

async fn introspection_fake() -> (Arc<Mutex<u32>>, FakeApi) {
    let n = Arc::new(Mutex::new(0));
    let fake = FakeApi::start(Arc::new(|_: &str, body: &str| {
        if body.contains("token=good") {
            (200, r#"{"active":true,"sub":"olga"}"#.into())
        } else {
            (200, r#"{"active":false}"#.into())
        }
    }))
    .await;
    (n, fake)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opq_10_a_flood_of_random_tokens_is_bounded_by_the_call_limit() {
    let (_, fake) = introspection_fake().await;
    let auth = Authenticator::builder()
        .provider(intro(&fake))
        .provider_max_concurrent_calls("opaque", 2)
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    assert!(check(&auth, "good").await.is_ok());
    fake.set(Fault::Delay(Duration::from_millis(500)));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let a = auth.clone();
        tasks.push(tokio::spawn(async move {
            check(&a, &format!("random{i}")).await
        }));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let t = Instant::now();
    assert!(
        check(&auth, "good").await.is_ok(),
        "cached users are still served"
    );
    assert!(
        t.elapsed() < Duration::from_millis(300),
        "{:?}",
        t.elapsed()
    );
    let mut busy = 0;
    for task in tasks {
        if matches!(task.await.unwrap(), Err(AuthError::Unavailable)) {
            busy += 1;
        }
    }
    assert!(busy >= 18, "{busy} of 20 refused at once");
    assert!(fake.hits() <= 1 + 2, "{} introspection calls", fake.hits());
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bas_05_concurrent_password_checks_are_bounded_and_the_excess_is_503_at_once() {
    let _turn = ARGON2.lock().await;
    let users = PlainProvider::new("local", "local")
        .with_user_hash("alice", &hash_password("wonderland"), ["x"])
        .unwrap();
    let auth = Authenticator::builder()
        .provider(users)
        .provider_max_concurrent_calls("local", 2)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..30 {
        let a = auth.clone();
        tasks.push(tokio::spawn(async move {
            let mut h = http::HeaderMap::new();
            h.insert(
                "authorization",
                basic("alice", &format!("guess{i}")).parse().unwrap(),
            );
            a.authenticate(&h).await
        }));
    }
    let mut busy = 0;
    for task in tasks {
        match task.await.unwrap() {
            Err(AuthError::Unavailable) => busy += 1,
            Err(AuthError::Invalid) => {}
            other => panic!("{other:?}"),
        }
    }
    assert!(busy >= 20, "only {busy} of 30 shed");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "no unbounded queue"
    );
    let mut h = http::HeaderMap::new();
    h.insert(
        "authorization",
        basic("alice", "wonderland").parse().unwrap(),
    );
    assert!(auth.authenticate(&h).await.is_ok());
}

#[tokio::test]
async fn bas_03_unknown_users_and_wrong_passwords_cost_the_same() {
    let _turn = ARGON2.lock().await;
    let users = PlainProvider::new("local", "local")
        .with_user_hash("alice", &hash_password("wonderland"), ["x"])
        .unwrap()
        .with_user_password("legacy", "old-password", ["x"])
        .unwrap();
    let auth = Authenticator::builder().provider(users).build().unwrap();
    let creds = [
        basic("mallory", "wonderland"),
        basic("alice", "wonderlanx"),
        basic("alice", "wonder"),
        basic("legacy", "old-passworx"),
    ];
    let headers: Vec<http::HeaderMap> = creds
        .iter()
        .map(|c| {
            let mut h = http::HeaderMap::new();
            h.insert("authorization", c.parse().unwrap());
            h
        })
        .collect();
    let _ = auth.authenticate(&headers[0]).await; // warm the blocking pool
    // Round-robin, so load from tests running alongside falls on every kind alike.
    let mut times = vec![Vec::new(); headers.len()];
    for _ in 0..11 {
        for (i, h) in headers.iter().enumerate() {
            let t = Instant::now();
            assert!(auth.authenticate(h).await.is_err());
            times[i].push(t.elapsed());
        }
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let unknown = median(&mut times[0]);
    for (what, i) in [
        ("wrong password", 1),
        ("correct prefix", 2),
        ("legacy user", 3),
    ] {
        let d = median(&mut times[i]);
        let ratio = d.as_secs_f64() / unknown.as_secs_f64();
        assert!(
            (0.5..2.0).contains(&ratio),
            "{what}: {d:?} vs unknown {unknown:?}"
        );
    }
}

#[tokio::test]
async fn clm_05_absurd_expiry_times_are_clamped_and_never_panic() {
    let ec = es256(9, "k1");
    let idp = jwks(vec![ec.jwk.clone()]).await;
    let auth = authenticator(jwt_provider("idp", idp.url(), |_| {}));
    let minter = auth_o_tron::mint::Minter::builder(
        "layer",
        auth_o_tron::mint::SigningKey::hs256(&[7; 32]).unwrap(),
    )
    .lifetime(Duration::from_secs(60))
    .build()
    .unwrap();
    for exp in ["253402300799", "18446744073709551615"] {
        let t = ec.token(&format!(
            r#"{{"sub":"a","iss":"{ISSUER}","aud":"api","exp":{exp}}}"#
        ));
        let a = auth.clone();
        let got = tokio::spawn(async move { check(&a, &t).await }).await;
        let p = got.expect("no panic").expect("accepted");
        let minted = minter.mint(&p).unwrap();
        assert!(minted.expires_at() <= now() + 61, "{exp}");
    }
}

#[test]
fn log_02_settings_with_secrets_print_none_of_them() {
    let client = http_client();
    let intro = IntrospectionSettings {
        endpoint: "https://as/introspect".into(),
        client_id: "rs".into(),
        client_secret: "canary-intro-secret".into(),
        client_auth: ClientAuth::Form,
        audience: None,
        issuer: None,
        cache_ttl: Duration::from_secs(1),
    };
    let offline = OfflineSettings {
        endpoints: OfflineEndpoints::Discovery("https://idp".into()),
        public_client_id: "p".into(),
        private_client_id: "q".into(),
        private_client_secret: "canary-offline-secret".into(),
        jwt: settings(),
        max_chains: 1,
    };
    let provider = IntrospectionProvider::new("o", "o", intro.clone(), client.clone()).unwrap();
    let offline_provider = OfflineProvider::new("d", "d", offline.clone(), client).unwrap();
    let text = format!("{intro:?} {offline:?} {provider:?} {offline_provider:?}");
    for s in ["canary-intro-secret", "canary-offline-secret"] {
        assert!(!text.contains(s), "{s} in {text}");
    }
}

#[tokio::test]
async fn log_07_outside_values_cannot_forge_log_lines_or_fields() {
    use auth_o_tron::sidecar::logging::ConsoleFields;
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .fmt_fields(ConsoleFields)
        .with_writer(move || sink.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    // A user name with a line break is refused before it is logged anywhere.
    let ec = es256(9, "k1");
    let idp = jwks(vec![ec.jwk.clone()]).await;
    let auth = authenticator(jwt_provider("idp", idp.url(), |_| {}));
    let t = ec.token(&claims(
        r#""preferred_username":"evil\nINJECTED level=ERROR""#,
    ));
    refused(&auth, &t, "user name with a line break").await;
    // The sidecar's audit line quotes a path that looks like more fields.
    let yaml = r#"
version: "2.0.0"
server: {port: 1}
metrics: {enabled: false}
providers:
  - {type: plain, name: local, realm: local, users: [{username: alice, password: alicepass}]}
jwt: {iss: i, exp: 60, secret: 0123456789abcdef0123456789abcdef}
rules:
  - {path: /admin, roles: [admin]}
"#;
    let loaded = Config::from_yaml(yaml, Vec::<(String, String)>::new()).unwrap();
    let built = loaded.config.build().unwrap();
    let app = router::app(&loaded.config, &built, Metrics::new(&built.authenticator));
    use tower::ServiceExt;
    // Twice: tracing caches per-callsite interest globally, and a callsite first reached by
    // a test on another thread (no subscriber there) can miss this thread's subscriber once.
    for _ in 0..2 {
        let req = http::Request::builder()
            .uri("/authenticate")
            .header("authorization", basic("alice", "alicepass"))
            .header("x-original-uri", "/x\" result=\"success")
            .body(axum::body::Body::empty())
            .unwrap();
        let _ = app.clone().oneshot(req).await.unwrap();
    }
    let text = captured.text();
    assert!(!text.contains("\nINJECTED"), "{text}");
    let decision = text
        .lines()
        .find(|l| l.contains("auth.decision"))
        .unwrap_or_else(|| panic!("an audit line in {text}"));
    assert!(
        decision.contains(r#"path="/x\" result=\"success""#),
        "the path stays one quoted field: {decision}"
    );
}

fn sidecar_yaml(server_extra: &str, rules: &str) -> String {
    format!(
        r#"
version: "2.0.0"
server: {{port: 1 {server_extra}}}
metrics: {{enabled: false}}
providers:
  - type: plain
    name: local
    realm: localrealm
    users:
      - {{username: alice, password: alicepass, roles: [user]}}
      - {{username: adam, password: adampass, roles: [admin]}}
jwt: {{iss: sidecar, exp: 300, secret: a-sidecar-secret-of-at-least-32-bytes}}
rules:
{rules}
"#
    )
}

async fn start(yaml: &str) -> (SocketAddr, Authenticator) {
    let loaded = Config::from_yaml(yaml, Vec::<(String, String)>::new()).unwrap();
    let built = loaded.config.build().unwrap();
    let app = router::app(&loaded.config, &built, Metrics::new(&built.authenticator));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let s = &loaded.config.server;
    let limits = server::Limits {
        idle_timeout: Duration::from_millis(s.idle_timeout_ms),
        header_read_timeout: Duration::from_millis(s.header_read_timeout_ms),
        ..server::Limits::default()
    };
    tokio::spawn(server::serve(l, app, limits, std::future::pending()));
    (addr, built.authenticator.clone())
}

async fn decide(addr: SocketAddr, method: &str, headers: &[(&str, &str)]) -> u16 {
    let mut r = client().request(
        method.parse().unwrap(),
        format!("http://{addr}/authenticate"),
    );
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    r.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn ngx_02_untrusted_peers_and_requests_without_an_original_uri_are_refused() {
    let rules = "  - {path: /admin, roles: [admin]}";
    let alice = basic("alice", "alicepass");
    let (addr, _) = start(&sidecar_yaml(", trusted_proxies: [10.0.0.0/8]", rules)).await;
    assert_eq!(
        decide(
            addr,
            "GET",
            &[("authorization", &alice), ("x-original-uri", "/app")]
        )
        .await,
        403
    );
    let (addr, _) = start(&sidecar_yaml(", trusted_proxies: [127.0.0.1/32]", rules)).await;
    assert_eq!(
        decide(
            addr,
            "GET",
            &[("authorization", &alice), ("x-original-uri", "/app")]
        )
        .await,
        200
    );
    assert_eq!(
        decide(addr, "GET", &[("authorization", &alice)]).await,
        403,
        "no original URI"
    );
}

#[tokio::test]
async fn bas_07_an_untrusted_peer_is_refused_before_any_credential_is_checked() {
    let (addr, auth) = start(&sidecar_yaml(
        ", trusted_proxies: [\"::1\"]",
        "  - {path: /admin, roles: [admin]}",
    ))
    .await;
    for pass in ["alicepass", "wrong"] {
        let code = decide(
            addr,
            "GET",
            &[
                ("authorization", &basic("alice", pass)),
                ("x-original-uri", "/app"),
            ],
        )
        .await;
        assert_eq!(code, 403);
    }
    let c = &auth.stats().providers()[0];
    assert_eq!(
        c.success() + c.invalid(),
        0,
        "the password was never checked"
    );
}

#[tokio::test]
async fn ngx_10_head_is_covered_by_get_rules() {
    let (addr, _) = start(&sidecar_yaml(
        "",
        "  - {path: /reports, methods: [GET], roles: [admin]}",
    ))
    .await;
    let alice = basic("alice", "alicepass");
    for method in ["GET", "HEAD"] {
        let code = decide(
            addr,
            "GET",
            &[
                ("authorization", &alice),
                ("x-original-uri", "/reports/1"),
                ("x-original-method", method),
            ],
        )
        .await;
        assert_eq!(code, 403, "{method}");
    }
    let code = decide(
        addr,
        "GET",
        &[
            ("authorization", &alice),
            ("x-original-uri", "/reports/1"),
            ("x-original-method", "POST"),
        ],
    )
    .await;
    assert_eq!(code, 200);
}

#[tokio::test]
async fn rbac_08_targets_a_router_could_read_two_ways_are_refused() {
    let (addr, _) = start(&sidecar_yaml("", "  - {path: /admin, roles: [admin]}")).await;
    let alice = basic("alice", "alicepass");
    for target in [
        "/admin/../public",
        "/admin/%2e%2e/public",
        "/admin/.%2E/public",
        "/public/..%2fadmin",
        "/admin%2fx",
        "/a%5cb",
        "/admin;x",
        "/ADMIN",
    ] {
        let code = decide(
            addr,
            "GET",
            &[("authorization", &alice), ("x-original-uri", target)],
        )
        .await;
        assert_eq!(code, 403, "{target}");
    }
    let code = decide(
        addr,
        "GET",
        &[("authorization", &alice), ("x-original-uri", "/public/x")],
    )
    .await;
    assert_eq!(code, 200);
}

#[tokio::test]
async fn avail_06_idle_keep_alive_connections_are_closed() {
    let (addr, _) = start(&sidecar_yaml(
        ", idle_timeout_ms: 300",
        "  - {path: /admin, roles: [admin]}",
    ))
    .await;
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 1024];
    let n = s.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let started = Instant::now();
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(3), s.read_to_end(&mut rest))
        .await
        .expect("the idle connection was closed")
        .ok();
    assert!(started.elapsed() < Duration::from_secs(2));
}

/// A Keycloak whose token endpoint resets the connection; counts token calls.
async fn resetting_keycloak() -> (SocketAddr, Arc<AtomicUsize>) {
    let ec = es256(9, "k1");
    let jwks_doc = serde_json::json!({"keys":[ec.jwk]}).to_string();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let token_calls = Arc::new(AtomicUsize::new(0));
    let calls = token_calls.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            let (doc, calls) = (jwks_doc.clone(), calls.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf).to_string();
                let target = head.split_whitespace().nth(1).unwrap_or("").to_owned();
                let body = if target.ends_with("/token") {
                    calls.fetch_add(1, Ordering::SeqCst);
                    #[allow(deprecated)]
                    let _ = s.set_linger(Some(Duration::ZERO));
                    return;
                } else if target.ends_with("/token/introspect") {
                    r#"{"active":true,"scope":"offline_access"}"#.to_owned()
                } else {
                    doc
                };
                let reply = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(reply.as_bytes()).await;
            });
        }
    });
    (addr, token_calls)
}

#[tokio::test]
async fn rt_01_a_failed_exchange_is_never_sent_twice() {
    let (addr, calls) = resetting_keycloak().await;
    let p = OfflineProvider::new(
        "desp",
        "desp",
        OfflineSettings {
            endpoints: OfflineEndpoints::Keycloak {
                iam_url: format!("http://{addr}"),
                realm: "desp".into(),
                cert_uri: format!("http://{addr}/certs"),
            },
            public_client_id: "p".into(),
            private_client_id: "q".into(),
            private_client_secret: "s".into(),
            jwt: settings(),
            max_chains: 10,
        },
        http_client(),
    )
    .unwrap();
    let auth = Authenticator::builder().provider(p).build().unwrap();
    assert_eq!(
        check(&auth, "rt-1").await.unwrap_err(),
        AuthError::Unavailable
    );
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "a rotating refresh token is spent at most once"
    );
}

#[allow(dead_code)]
fn unused(_: Principal, _: AuthLayer) {}

#[tokio::test]
async fn clm_14_a_jwt_provider_without_an_audience_is_reported_and_never_rejects_all() {
    let yaml = |extra: &str| {
        format!(
            r#"
version: "2.0.0"
server: {{port: 8080}}
providers:
  - {{type: jwt, name: kc, realm: kc, cert_uri: "https://idp.example/certs"{extra}}}
jwt: {{iss: i, exp: 60, secret: 0123456789abcdef0123456789abcdef}}
"#
        )
    };
    let load = |extra: &str| {
        Config::from_yaml(&yaml(extra), Vec::<(String, String)>::new())
            .unwrap()
            .config
    };
    let w = auth_o_tron::sidecar::config::warnings(&load(""));
    assert!(
        w.iter()
            .any(|l| l.contains("providers[0]") && l.contains("audience")),
        "{w:?}"
    );
    assert!(auth_o_tron::sidecar::config::warnings(&load(", audience: api")).is_empty());
    // Without an audience, tokens that carry one are not all refused (the library's default).
    let ec = es256(9, "k1");
    let idp = jwks(vec![ec.jwk.clone()]).await;
    let auth = authenticator(jwt_provider("idp", idp.url(), |s| s.audience = None));
    assert!(check(&auth, &ec.token(&claims(""))).await.is_ok());
}
