//! Security catalog (`shared/notes/security.md` §2) cases of the `auth_request` sidecar over
//! real TCP: the status contract, path rules on the original request, header and connection
//! limits, overload and panics, startup with an IdP down, minted-token handling, metrics
//! labels, and the shipped `examples/nginx.conf` (the proxy half of several NGX cases).
#![cfg(feature = "sidecar")]

mod common;
#[path = "security_support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use auth_o_tron::credentials::Scheme;
use auth_o_tron::provider::{BoxFuture, Identity, Provider, ProviderError, ProviderInfo};
use auth_o_tron::sidecar::config::Config;
use auth_o_tron::sidecar::{metrics::Metrics, router, server};
use auth_o_tron::{AuthLayer, Authenticator, Principal, User};
use common::fake_api::{FakeApi, Fault};
use common::{Tokens, basic, client};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SECRET: &str = "a-sidecar-secret-of-at-least-32-bytes";

fn config(extra_providers: &str, extra: &str) -> String {
    format!(
        r#"
version: "2.0.0"
server: {{port: 1, header_read_timeout_ms: 300}}
metrics: {{enabled: false}}
http: {{allow_http: true, timeout_ms: 700}}
providers:
  - type: plain
    name: local
    realm: localrealm
    users:
      - {{username: alice, password: alicepass, roles: [user]}}
      - {{username: adam, password: adampass, roles: [admin]}}
{extra_providers}
jwt: {{iss: sidecar, exp: 300, secret: {SECRET}}}
include_legacy_headers: true
logging: {{level: warn, format: json}}
rules:
  - {{path: /admin, roles: [admin]}}
{extra}
"#
    )
}

struct Sidecar {
    addr: SocketAddr,
    maddr: SocketAddr,
    built: auth_o_tron::sidecar::config::Built,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn start(yaml: &str) -> Sidecar {
    let loaded = Config::from_yaml(yaml, Vec::<(String, String)>::new()).unwrap();
    let built = loaded.config.build().unwrap();
    let metrics = Metrics::new(&built.authenticator);
    let app = router::app(&loaded.config, &built, metrics.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let m = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (addr, maddr) = (l.local_addr().unwrap(), m.local_addr().unwrap());
    let limits = server::Limits {
        header_read_timeout: Duration::from_millis(loaded.config.server.header_read_timeout_ms),
        max_header_bytes: loaded.config.server.max_header_bytes,
        max_concurrent: loaded.config.server.max_concurrent_requests,
        ..server::Limits::default()
    };
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server::serve(l, app, limits, async move {
        let _ = rx.await;
    }));
    tokio::spawn(server::serve(
        m,
        router::metrics_app(metrics),
        limits,
        std::future::pending(),
    ));
    Sidecar {
        addr,
        maddr,
        built,
        _stop: tx,
    }
}

async fn ask(addr: SocketAddr, method: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut r = client().request(
        method.parse().unwrap(),
        format!("http://{addr}/authenticate"),
    );
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    // A proxy always names the request it asks about; with rules configured, a decision
    // request without one is refused.
    if !headers.iter().any(|(k, _)| {
        k.eq_ignore_ascii_case("x-original-uri") || k.eq_ignore_ascii_case("x-forwarded-uri")
    }) {
        r = r.header("x-original-uri", "/app");
    }
    r.send().await.unwrap()
}

fn jwt_provider_yaml(url: &str) -> String {
    format!(
        r#"  - {{type: jwt, name: idp, realm: sso, cert_uri: "{url}", iam_realm: x, audience: api, issuer: "{iss}"}}"#,
        iss = support::ISSUER
    )
}

async fn broken_idp() -> FakeApi {
    let ec = support::es256(9, "k1");
    let doc = serde_json::json!({"keys": [ec.jwk]}).to_string();
    let fake = FakeApi::start(Arc::new(move |_: &str, _: &str| (200, doc.clone()))).await;
    fake.set(Fault::Status(500));
    fake
}

#[tokio::test]
async fn ngx_01_the_sidecar_answers_only_2xx_401_403_or_503() {
    let idp = broken_idp().await;
    let s = start(&config(&jwt_provider_yaml(&idp.url("/jwks")), "")).await;
    let alice = basic("alice", "alicepass");
    let ok = ask(s.addr, "GET", &[("authorization", &alice)]).await;
    assert_eq!(ok.status(), 200);
    let wrong = ask(s.addr, "GET", &[("authorization", &basic("alice", "x"))]).await;
    assert_eq!(wrong.status(), 401);
    assert!(
        wrong.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic realm=\"localrealm\"")
    );
    for bad in ["Bearer a b", "Bearer", "Basic %%", "Bearer a, Bearer b"] {
        assert_eq!(
            ask(s.addr, "GET", &[("authorization", bad)]).await.status(),
            401,
            "{bad}: never 400"
        );
    }
    let forbidden = ask(
        s.addr,
        "GET",
        &[("authorization", &alice), ("x-original-uri", "/admin")],
    )
    .await;
    assert_eq!(forbidden.status(), 403);
    let ec = support::es256(9, "k1");
    let down = ask(
        s.addr,
        "GET",
        &[(
            "authorization",
            &format!("Bearer {}", ec.token(&support::claims(""))),
        )],
    )
    .await;
    assert_eq!(down.status(), 503, "the IdP is down: cannot decide");
}

#[tokio::test]
async fn ngx_03_rules_are_decided_on_the_original_uri_the_proxy_sends() {
    let s = start(&config("", "")).await;
    let alice = basic("alice", "alicepass");
    let res = ask(
        s.addr,
        "GET",
        &[
            ("authorization", &alice),
            ("x-original-uri", "/admin/panel"),
        ],
    )
    .await;
    assert_eq!(res.status(), 403);
    let res = ask(
        s.addr,
        "GET",
        &[("authorization", &alice), ("x-original-uri", "/public")],
    )
    .await;
    assert_eq!(res.status(), 200);
    // A client-added copy of the other header family cannot override what the proxy set.
    let res = ask(
        s.addr,
        "GET",
        &[
            ("authorization", &alice),
            ("x-original-uri", "/public"),
            ("x-forwarded-uri", "/admin/panel"),
        ],
    )
    .await;
    assert_eq!(res.status(), 403);
}

#[tokio::test]
async fn ngx_04_the_sidecar_never_waits_for_a_request_body() {
    let s = start(&config("", "")).await;
    let mut sock = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let head = format!(
        "POST /authenticate HTTP/1.1\r\nHost: x\r\nX-Original-URI: /app\r\nAuthorization: {}\r\nContent-Length: 104857600\r\n\r\n{{\"a\":",
        basic("alice", "alicepass")
    );
    sock.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(3), sock.read(&mut buf))
        .await
        .expect("answered without the 100 MB body")
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(1));
    // And the shipped nginx config never forwards bodies to it.
    let conf = nginx_conf();
    let auth = auth_location(&conf);
    assert!(auth.contains("proxy_pass_request_body off;"), "{auth}");
    assert!(
        auth.contains("proxy_set_header Content-Length \"\";"),
        "{auth}"
    );
}

fn nginx_conf() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/nginx.conf")).unwrap()
}

/// The `location = /_auth { ... }` block of the shipped nginx config.
fn auth_location(conf: &str) -> String {
    let start = conf.find("location = /_auth").expect("an auth location");
    let end = start + conf[start..].find('}').unwrap();
    conf[start..end].to_owned()
}

/// Lines without their `#` comments.
fn directives(conf: &str) -> String {
    conf.lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn ngx_05_the_answer_carries_the_sidecars_identity_whatever_the_client_sent() {
    let s = start(&config("", "")).await;
    let res = ask(
        s.addr,
        "GET",
        &[
            ("authorization", &basic("alice", "alicepass")),
            ("x-auth-username", "root"),
            ("x-auth-roles", "admin"),
            ("x-auth-realm", "localrealm"),
        ],
    )
    .await;
    assert_eq!(res.status(), 200);
    let h = res.headers();
    assert_eq!(h["x-auth-username"], "alice");
    assert_eq!(h["x-auth-roles"], "user");
    let minted = h["authorization"].to_str().unwrap();
    assert!(minted.starts_with("Bearer ey"), "{minted}");
    // nginx copies these answers over whatever the client sent (an empty value removes it).
    let conf = directives(&nginx_conf());
    for name in [
        "Authorization",
        "X-Auth-Username",
        "X-Auth-Realm",
        "X-Auth-Roles",
    ] {
        assert!(
            conf.lines().any(|l| l
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .starts_with(&format!("proxy_set_header {name} $auth_"))),
            "{name} is replaced upstream"
        );
    }
}

#[test]
fn ngx_07_the_decision_is_never_cached_by_nginx() {
    let conf = directives(&nginx_conf());
    assert!(
        !conf.contains("proxy_cache"),
        "no shared decision cache in the shipped config"
    );
    assert!(auth_location(&conf).contains("internal;"));
}

#[tokio::test]
async fn ngx_08_a_9_kib_token_is_a_401_and_the_head_limit_is_431_never_500() {
    let s = start(&config("", "")).await;
    let nine = format!("Bearer {}", "a".repeat(9 * 1024));
    let res = ask(s.addr, "GET", &[("authorization", &nine)]).await;
    assert_eq!(res.status(), 401);
    let big = format!("Bearer {}", "a".repeat(20 * 1024));
    let res = ask(s.addr, "GET", &[("authorization", &big)]).await;
    assert_eq!(res.status(), 431);
}

#[test]
fn ngx_09_the_shipped_nginx_config_never_logs_credentials() {
    let conf = directives(&nginx_conf());
    assert!(!conf.contains("$http_authorization"));
    assert!(!conf.contains("$http_cookie"));
    assert!(conf.contains("access_log off;") || !conf.contains("log_format"));
    assert!(
        !conf
            .lines()
            .any(|l| l.contains("error_log") && l.contains("debug")),
        "error_log not at debug"
    );
}

#[tokio::test]
async fn ngx_10_every_method_is_authenticated() {
    let s = start(&config("", "")).await;
    for method in ["GET", "HEAD", "OPTIONS", "POST", "PUT", "DELETE", "PATCH"] {
        assert_eq!(ask(s.addr, method, &[]).await.status(), 401, "{method}");
        let ok = ask(
            s.addr,
            method,
            &[("authorization", &basic("alice", "alicepass"))],
        )
        .await;
        assert_eq!(ok.status(), 200, "{method}");
    }
}

#[tokio::test]
async fn rbac_08_path_tricks_cannot_slip_past_a_rule() {
    let s = start(&config("", "")).await;
    let alice = basic("alice", "alicepass");
    for sneaky in [
        "/admin",
        "/admin/",
        "/admin?x=/public",
        "/admin#frag",
        "//admin",
        "/./admin",
        "/public/../admin",
        "/public/%2e%2e/admin",
        "/%2fadmin",
        "/%61dmin",
        "/admin;x",
        "/admin;jsessionid=1/users",
        "\\admin",
    ] {
        let res = ask(
            s.addr,
            "GET",
            &[("authorization", &alice), ("x-original-uri", sneaky)],
        )
        .await;
        assert_eq!(res.status(), 403, "{sneaky}");
    }
    // Rules are segment-bounded and match the path only.
    for other in ["/administrator", "/public?next=/admin", "/public/admin"] {
        let res = ask(
            s.addr,
            "GET",
            &[("authorization", &alice), ("x-original-uri", other)],
        )
        .await;
        assert_eq!(res.status(), 200, "{other}");
    }
}

#[tokio::test]
async fn avail_04_the_sidecar_starts_with_an_idp_down_reports_it_and_recovers() {
    let idp = broken_idp().await;
    let s = start(&config(&jwt_provider_yaml(&idp.url("/jwks")), "")).await;
    for p in s.built.authenticator.providers() {
        p.warm_up().await;
    }
    let ready = client()
        .get(format!("http://{}/ready", s.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503, "degraded");
    let alice = basic("alice", "alicepass");
    assert_eq!(
        ask(s.addr, "GET", &[("authorization", &alice)])
            .await
            .status(),
        200
    );
    let ec = support::es256(9, "k1");
    let token = format!("Bearer {}", ec.token(&support::claims("")));
    assert_eq!(
        ask(s.addr, "GET", &[("authorization", &token)])
            .await
            .status(),
        503
    );
    idp.set(Fault::None);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut status = 0;
    for _ in 0..30 {
        status = ask(s.addr, "GET", &[("authorization", &token)])
            .await
            .status()
            .as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(status, 200, "recovered without a restart");
    let ready = client()
        .get(format!("http://{}/ready", s.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn avail_06_slow_loris_connections_are_cut_and_others_served() {
    let s = start(&config("", "")).await;
    let mut slow = Vec::new();
    for _ in 0..50 {
        let mut c = tokio::net::TcpStream::connect(s.addr).await.unwrap();
        c.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: a")
            .await
            .unwrap();
        slow.push(c);
    }
    let res = client()
        .get(format!("http://{}/health", s.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "served while 50 slow clients hang");
    let started = Instant::now();
    for mut c in slow {
        let mut buf = Vec::new();
        tokio::time::timeout(Duration::from_secs(3), c.read_to_end(&mut buf))
            .await
            .expect("closed by the header read timeout")
            .ok();
    }
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn avail_07_too_many_or_too_large_headers_get_431() {
    // Also the sidecar half of AUTHZ-10: oversized credentials never reach the parser.
    let s = start(&config("", "")).await;
    let mut many = String::from("GET /authenticate HTTP/1.1\r\nHost: x\r\n");
    for i in 0..200 {
        many.push_str(&format!("X-H{i}: v\r\n"));
    }
    many.push_str("Connection: close\r\n\r\n");
    let text = common::raw(s.addr, &many).await;
    assert!(
        text.starts_with("HTTP/1.1 431"),
        "{}",
        &text[..text.len().min(200)]
    );
    for size in [64 * 1024, 1024 * 1024] {
        let req = format!(
            "GET /authenticate HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
            "a".repeat(size)
        );
        let mut sock = tokio::net::TcpStream::connect(s.addr).await.unwrap();
        let _ = sock.write_all(req.as_bytes()).await;
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(3), sock.read_to_end(&mut out)).await;
        let text = String::from_utf8_lossy(&out);
        assert!(
            text.starts_with("HTTP/1.1 431") || out.is_empty(),
            "{size}: {}",
            &text[..text.len().min(200)]
        );
    }
    assert_eq!(
        client()
            .get(format!("http://{}/health", s.addr))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn avail_08_overload_is_shed_at_once_with_503() {
    let t = Tokens::new("t", "r")
        .token("tok", User::new("u", "r"), None)
        .delay(Duration::from_millis(1500));
    let auth = Authenticator::builder().provider(t).build().unwrap();
    let app = axum::Router::new()
        .route(
            "/me",
            axum::routing::get(|p: Principal| async move { p.username.clone() }),
        )
        .layer(AuthLayer::new(auth));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let limits = server::Limits {
        max_concurrent: 2,
        ..server::Limits::default()
    };
    tokio::spawn(server::serve(l, app, limits, std::future::pending()));
    let mut slow = Vec::new();
    for i in 0..2 {
        slow.push(tokio::spawn(async move {
            client()
                .get(format!("http://{addr}/me"))
                .bearer_auth(format!("slow{i}"))
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let res = client()
        .get(format!("http://{addr}/me"))
        .bearer_auth("tok")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    assert!(
        started.elapsed() < Duration::from_millis(700),
        "not queued behind the 1.5 s requests: {:?}",
        started.elapsed()
    );
    for s in slow {
        assert_eq!(s.await.unwrap(), 401);
    }
}

/// A provider with a bug: it panics on every call.
struct Panics;
impl Provider for Panics {
    fn info(&self) -> &ProviderInfo {
        static INFO: std::sync::LazyLock<ProviderInfo> =
            std::sync::LazyLock::new(|| ProviderInfo::new("buggy", "test", "r", Scheme::Bearer));
        &INFO
    }
    fn authenticate<'a>(
        &'a self,
        _: auth_o_tron::credentials::Credential<'a>,
    ) -> BoxFuture<'a, Result<Identity, ProviderError>> {
        Box::pin(async {
            if std::hint::black_box(true) {
                panic!("provider bug");
            }
            Err(ProviderError::invalid("unreachable"))
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn avail_02_a_panic_in_the_auth_path_is_a_500_and_never_reaches_the_app() {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let auth = Authenticator::builder().provider(Panics).build().unwrap();
    let app = axum::Router::new()
        .route(
            "/me",
            axum::routing::get(move || {
                h.fetch_add(1, Ordering::SeqCst);
                async { "app" }
            }),
        )
        .layer(AuthLayer::new(auth));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(server::serve(
        l,
        app,
        server::Limits::default(),
        std::future::pending(),
    ));
    for _ in 0..3 {
        let res = client()
            .get(format!("http://{addr}/me"))
            .bearer_auth("x")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 500);
    }
    assert_eq!(hits.load(Ordering::SeqCst), 0);
    let res = client()
        .get(format!("http://{addr}/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "still serving");
}

#[test]
fn avail_10_misconfiguration_fails_at_startup_not_per_request() {
    let idp = "https://idp.example/jwks";
    for (what, yaml) in [
        (
            "leeway",
            config(
                &format!(
                    "  - {{type: jwt, name: j, realm: j, cert_uri: \"{idp}\", iam_realm: x, leeway: 86400}}"
                ),
                "",
            ),
        ),
        (
            "HMAC algorithm",
            config(
                &format!(
                    "  - {{type: jwt, name: j, realm: j, cert_uri: \"{idp}\", iam_realm: x, algorithms: [HS256]}}"
                ),
                "",
            ),
        ),
        (
            "plain http",
            config(
                "  - {type: jwt, name: j, realm: j, cert_uri: \"ftp://idp\", iam_realm: x}",
                "",
            ),
        ),
        // A short secret starts with a warning (drop-in auth-o-tron files); an empty one never.
        ("empty secret", config("", "").replace(SECRET, "\"\"")),
        ("empty rule", config("", "  - {path: /x}")),
        ("relative rule", config("", "  - {path: x, roles: [a]}")),
        (
            "minting lifetime",
            config("", "").replace("exp: 300", "exp: 0"),
        ),
        (
            "RS256 minting",
            config("", "").replace("secret: ", "algorithm: RS256, secret: "),
        ),
    ] {
        let built = Config::from_yaml(&yaml, Vec::<(String, String)>::new())
            .map_err(|e| e.to_string())
            .and_then(|l| l.config.build().map(|_| ()).map_err(|e| e.to_string()));
        assert!(built.is_err(), "{what} was accepted");
    }
}

#[test]
fn mint_07_only_constant_time_friendly_signing_algorithms_are_offered() {
    for alg in ["RS256", "RS512", "PS256", "ES384", "none"] {
        let yaml = config("", "").replace("secret: ", &format!("algorithm: {alg}, secret: "));
        assert!(
            Config::from_yaml(&yaml, Vec::<(String, String)>::new()).is_err(),
            "{alg} minting offered"
        );
    }
    for alg in ["ES256", "EdDSA"] {
        let yaml = config("", "").replace(
            "secret: ",
            &format!("algorithm: {alg}, kid: k, key_file: /nonexistent, secret: "),
        );
        let loaded = Config::from_yaml(&yaml, Vec::<(String, String)>::new());
        assert!(loaded.is_ok(), "{alg} is a known algorithm");
    }
}

#[tokio::test]
async fn mint_03_a_forged_or_copied_minted_token_is_not_a_credential() {
    let s = start(&config("", "")).await;
    let res = ask(
        s.addr,
        "GET",
        &[("authorization", &basic("alice", "alicepass"))],
    )
    .await;
    let minted = res.headers()["authorization"].to_str().unwrap().to_owned();
    let copied = ask(s.addr, "GET", &[("authorization", &minted)]).await;
    assert_eq!(
        copied.status(),
        401,
        "our own minted token is not accepted as a credential"
    );
    let forged = {
        let claims = serde_json::json!({"sub":"localrealm-adam","iss":"sidecar","username":"adam",
            "realm":"localrealm","roles":["admin"],"exp": support::now() + 60});
        let key =
            jsonwebtoken::EncodingKey::from_secret(b"guessed-secret-guessed-secret-000").unwrap();
        jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap()
    };
    let res = ask(
        s.addr,
        "GET",
        &[
            ("authorization", &format!("Bearer {forged}")),
            ("x-original-uri", "/admin"),
        ],
    )
    .await;
    assert_eq!(res.status(), 401);
}

#[tokio::test]
async fn mint_04_the_answer_carries_the_minted_token_never_the_clients_credential() {
    let s = start(&config("", "")).await;
    let alice = basic("alice", "alicepass");
    let res = ask(s.addr, "GET", &[("authorization", &alice)]).await;
    let out = res.headers()["authorization"].to_str().unwrap();
    assert_ne!(out, alice);
    assert!(!format!("{:?}", res.headers()).contains(alice.trim_start_matches("Basic ")));
    let jwt = out.strip_prefix("Bearer ").unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    v.validate_aud = false;
    let c = jsonwebtoken::decode::<serde_json::Value>(
        jwt,
        &jsonwebtoken::DecodingKey::from_secret(SECRET.as_bytes()).unwrap(),
        &v,
    )
    .unwrap()
    .claims;
    assert_eq!(c["username"], "alice");
    assert!(!c.to_string().contains("alicepass"));
}

#[tokio::test]
async fn mint_05_a_large_identity_is_minted_whole_never_truncated() {
    let roles: Vec<String> = (0..500)
        .map(|i| format!("role-{i:04}-{}", "r".repeat(20)))
        .collect();
    let yaml = config("", "").replacen(
        "roles: [admin]}",
        &format!("roles: [{}]}}", roles.join(", ")),
        1,
    );
    let s = start(&yaml).await;
    let res = ask(
        s.addr,
        "GET",
        &[("authorization", &basic("adam", "adampass"))],
    )
    .await;
    assert_eq!(res.status(), 200);
    let jwt = res.headers()["authorization"]
        .to_str()
        .unwrap()
        .strip_prefix("Bearer ")
        .unwrap()
        .to_owned();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    v.validate_aud = false;
    let c = jsonwebtoken::decode::<serde_json::Value>(
        &jwt,
        &jsonwebtoken::DecodingKey::from_secret(SECRET.as_bytes()).unwrap(),
        &v,
    )
    .unwrap()
    .claims;
    assert_eq!(
        c["roles"].as_array().unwrap().len(),
        500,
        "all roles, none dropped"
    );
    assert_eq!(
        res.headers()["x-auth-roles"]
            .to_str()
            .unwrap()
            .split(',')
            .count(),
        500
    );
}

#[tokio::test]
async fn log_03_the_minted_credential_header_is_marked_sensitive() {
    use tower::ServiceExt;
    let yaml = config("", "");
    let loaded = Config::from_yaml(&yaml, Vec::<(String, String)>::new()).unwrap();
    let built = loaded.config.build().unwrap();
    let app = router::app(&loaded.config, &built, Metrics::new(&built.authenticator));
    let req = http::Request::builder()
        .uri("/authenticate")
        .header("authorization", basic("alice", "alicepass"))
        .header("x-original-uri", "/app")
        .body(axum::body::Body::empty())
        .unwrap();
    let res = app.oneshot(req).await.unwrap();
    assert_eq!(res.status(), 200);
    let h = &res.headers()["authorization"];
    assert!(h.is_sensitive(), "so header loggers print `Sensitive`");
    assert!(format!("{h:?}").contains("Sensitive"));
}

#[tokio::test]
async fn log_09_metrics_carry_no_user_token_or_key_labels() {
    let yaml = config("", "").replace(
        "metrics: {enabled: false}",
        "metrics: {enabled: true, port: 2}",
    );
    let s = start(&yaml).await;
    let ec = support::es256(9, "canary-kid");
    for v in [
        basic("alice", "alicepass"),
        basic("canary-user", "canary-pass"),
        format!("Bearer {}", ec.token(&support::claims(""))),
        "Bearer canary-token".to_owned(),
    ] {
        ask(
            s.addr,
            "GET",
            &[("authorization", &v), ("x-original-uri", "/canary-path")],
        )
        .await;
    }
    let text = client()
        .get(format!("http://{}/metrics", s.maddr))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("authotron_auth_requests_total"), "{text}");
    for leak in ["alice", "canary", "eyJ", "sub=", "kid=", "user="] {
        assert!(!text.contains(leak), "{leak} in metrics:\n{text}");
    }
}
