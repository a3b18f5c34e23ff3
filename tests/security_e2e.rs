//! Security catalog (`shared/notes/security.md` §2.14) cases that need the real proxy: Debian's
//! nginx with the shipped `examples/nginx.conf` in front of the sidecar and an upstream app that
//! records what reaches it. Feature `e2e` (nginx must be installed).
#![cfg(all(feature = "e2e", feature = "sidecar"))]

mod common;
#[path = "security_support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use auth_o_tron::sidecar::config::Config;
use auth_o_tron::sidecar::{metrics::Metrics, router, server};
use axum::http::HeaderMap;
use common::{basic, client};

const SECRET: &str = "an-e2e-secret-that-is-at-least-32-bytes";

/// What the upstream app received: one entry per request, all headers.
type Seen = Arc<Mutex<Vec<HeaderMap>>>;

async fn upstream(seen: Seen) -> u16 {
    let app = axum::Router::new().fallback(move |headers: HeaderMap| {
        let seen = seen.clone();
        async move {
            seen.lock().unwrap().push(headers);
            "app"
        }
    });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    port
}

async fn sidecar(port: u16, idp: &str) -> tokio::sync::oneshot::Sender<()> {
    let roles: Vec<String> = (0..1000).map(|i| format!("role-{i:04}-padding")).collect();
    let yaml = format!(
        r#"
version: "2.0.0"
server: {{host: 127.0.0.1, port: {port}}}
metrics: {{enabled: false}}
http: {{allow_http: true, timeout_ms: 700}}
providers:
  - type: plain
    name: users
    realm: e2e
    users:
      - {{username: alice, password: alicepass, roles: [user]}}
      - {{username: adam, password: adampass, roles: [admin]}}
      - {{username: big, password: bigpass, roles: [{roles}]}}
  - {{type: jwt, name: idp, realm: sso, cert_uri: "{idp}", iam_realm: x, audience: api, issuer: "https://idp"}}
jwt: {{iss: e2e, exp: 300, secret: {SECRET}}}
include_legacy_headers: true
logging: {{level: error, format: console}}
rules:
  - {{path: /admin, roles: [admin]}}
"#,
        roles = roles.join(", ")
    );
    let loaded = Config::from_yaml(&yaml, Vec::<(String, String)>::new()).unwrap();
    let built = loaded.config.build().unwrap();
    let app = router::app(&loaded.config, &built, Metrics::new(&built.authenticator));
    let l = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server::serve(
        l,
        app,
        server::Limits::default(),
        async move {
            let _ = rx.await;
        },
    ));
    tx
}

struct Setup {
    proxy: SocketAddr,
    seen: Seen,
    _nginx: common::process::Proc,
    _dir: common::process::Scratch,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn setup() -> Setup {
    let seen: Seen = Arc::default();
    let app = upstream(seen.clone()).await;
    let side = common::process::free_port();
    // The IdP of the jwt provider is down: its tokens cannot be decided.
    let stop = sidecar(side, "http://127.0.0.1:9/jwks").await;
    let (proc, dir, proxy) = common::process::nginx(side, app);
    Setup {
        proxy,
        seen,
        _nginx: proc,
        _dir: dir,
        _stop: stop,
    }
}

impl Setup {
    async fn get(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut r = client().request(
            method.parse().unwrap(),
            format!("http://{}{path}", self.proxy),
        );
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        r.send().await.unwrap()
    }

    fn hits(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    fn last(&self) -> HeaderMap {
        self.seen.lock().unwrap().last().unwrap().clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ngx_01_nginx_passes_401_challenges_and_fails_closed_on_503() {
    let s = setup().await;
    let res = s
        .get("GET", "/x", &[("authorization", &basic("alice", "nope"))])
        .await;
    assert_eq!(res.status(), 401);
    assert!(
        res.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("Basic realm=\"e2e\"")
    );
    let res = s
        .get(
            "GET",
            "/admin",
            &[("authorization", &basic("alice", "alicepass"))],
        )
        .await;
    assert_eq!(res.status(), 403);
    let ec = support::es256(9, "k1");
    let token = format!("Bearer {}", ec.token(&support::claims("")));
    let res = s.get("GET", "/x", &[("authorization", &token)]).await;
    assert_eq!(
        res.status(),
        500,
        "the sidecar's 503 becomes nginx's 500: closed, never open"
    );
    assert_eq!(s.hits(), 0, "nothing reached the app");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ngx_03_nginx_overwrites_a_spoofed_original_uri() {
    let s = setup().await;
    let alice = basic("alice", "alicepass");
    for spoof in [
        ("x-original-uri", "/public"),
        ("x-forwarded-uri", "/public"),
        ("x-original-method", "GET"),
    ] {
        let res = s
            .get("DELETE", "/admin/x", &[("authorization", &alice), spoof])
            .await;
        assert_eq!(res.status(), 403, "{spoof:?}");
    }
    assert_eq!(s.hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ngx_05_client_copies_of_the_identity_headers_never_reach_the_app() {
    // Also RBAC-07 behind the proxy: spoofed identity headers grant nothing upstream.
    let s = setup().await;
    let res = s
        .get(
            "GET",
            "/x",
            &[
                ("authorization", &basic("alice", "alicepass")),
                ("x-auth-username", "root"),
                ("x-auth-roles", "admin"),
                // (A client-sent X-Auth-Realm only narrows the providers tried: not a spoof.)
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
    let h = s.last();
    assert_eq!(h["x-auth-username"], "alice");
    assert_eq!(h["x-auth-roles"], "user");
    assert_eq!(h["x-auth-realm"], "e2e");
    assert_eq!(h.get_all("x-auth-roles").iter().count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ngx_06_underscore_aliases_are_dropped_by_nginx() {
    let s = setup().await;
    let mut sock = tokio::net::TcpStream::connect(s.proxy).await.unwrap();
    let req = format!(
        "GET /x HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nX_Auth_Username: root\r\nX_Auth_Roles: admin\r\nX_Upstream_Token: forged\r\nConnection: close\r\n\r\n",
        basic("alice", "alicepass")
    );
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    sock.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    sock.read_to_end(&mut out).await.unwrap();
    assert!(String::from_utf8_lossy(&out).starts_with("HTTP/1.1 200"));
    let h = s.last();
    for name in h.keys() {
        assert!(!name.as_str().contains('_'), "{name} reached the app");
    }
    assert_eq!(h["x-auth-username"], "alice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ngx_08_an_oversized_token_is_a_4xx_through_nginx_never_a_500() {
    let s = setup().await;
    for size in [7 * 1024, 9 * 1024, 20 * 1024] {
        let value = format!("Bearer {}", "a".repeat(size));
        let res = s.get("GET", "/x", &[("authorization", &value)]).await;
        assert!(
            [400, 401, 431].contains(&res.status().as_u16()),
            "{size}: {}",
            res.status()
        );
    }
    assert_eq!(s.hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ngx_10_options_and_head_are_authenticated_through_nginx() {
    let s = setup().await;
    for method in ["OPTIONS", "HEAD", "GET", "POST"] {
        let res = s.get(method, "/x", &[]).await;
        assert_eq!(res.status(), 401, "{method}");
    }
    assert_eq!(s.hits(), 0);
    let res = s
        .get(
            "OPTIONS",
            "/x",
            &[("authorization", &basic("alice", "alicepass"))],
        )
        .await;
    assert_eq!(res.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mint_04_the_app_sees_the_minted_token_not_the_clients_credential() {
    let s = setup().await;
    let alice = basic("alice", "alicepass");
    let res = s.get("GET", "/x", &[("authorization", &alice)]).await;
    assert_eq!(res.status(), 200);
    let h = s.last();
    let auth = h["authorization"].to_str().unwrap();
    assert!(auth.starts_with("Bearer ey"), "{auth}");
    assert_eq!(h.get_all("authorization").iter().count(), 1);
    assert!(!format!("{h:?}").contains(alice.trim_start_matches("Basic ")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mint_05_an_identity_too_large_for_the_proxy_fails_closed() {
    let s = setup().await;
    let res = s
        .get("GET", "/x", &[("authorization", &basic("big", "bigpass"))])
        .await;
    assert!(res.status().is_server_error(), "{}", res.status());
    assert_eq!(s.hits(), 0, "never passed on truncated");
}
