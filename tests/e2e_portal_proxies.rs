//! The token portal and the `/tokens` API behind the real proxies, on the shipped configs
//! (`examples/nginx.conf`, `Caddyfile`, `traefik-dynamic.yml`): a user logs in through the
//! proxy, creates a token with one scope, and that token then passes the proxy's own
//! `auth_request` / `forward_auth` for a route needing the scope and is refused on a route
//! needing another; the Origin check holds with the proxy's `Host`; each proxy's client
//! address reaches the login rate limit (one client's failures do not lock out another);
//! and raw request targets that a proxy sends to the sidecar's pages never hand the client a
//! minted JWT. Needs nginx, Caddy and Traefik (the README's test command installs them);
//! feature `e2e`.
#![cfg(all(feature = "e2e", feature = "sidecar"))]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::portal::Browser;
use common::process::{Proc, Scratch, SidecarProcess, caddy, nginx, traefik};
use reqwest::StatusCode;

/// The upstream app: counts requests and answers 200.
async fn upstream(hits: Arc<AtomicUsize>) -> u16 {
    let app = axum::Router::new().fallback(move || {
        let hits = hits.clone();
        async move {
            hits.fetch_add(1, Ordering::SeqCst);
            "app"
        }
    });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    port
}

fn sidecar(dir: &Scratch) -> SidecarProcess {
    let db = dir.path().join("tokens.db");
    SidecarProcess::start(&format!(
        r#"
version: "2.0.0"
server: {{host: 127.0.0.1, port: {{port}}}}
metrics: {{enabled: false}}
providers:
  - type: plain
    name: users
    realm: demo
    users:
      - {{username: alice, password: alicepass, roles: [user]}}
      - {{username: bob, password: bobpass, roles: [user]}}
jwt: {{iss: e2e, exp: 300, secret: an-e2e-secret-that-is-at-least-32-bytes}}
logging: {{level: warn, format: console}}
services:
  - name: polytope
    scopes: [read, write]
tokens:
  enabled: true
  store: "sqlite://{}"
portal:
  enabled: true
rules:
  - {{path: /read, scopes: {{polytope: [read]}}}}
  - {{path: /write, scopes: {{polytope: [write]}}}}
"#,
        db.display()
    ))
}

/// Sends `target` byte for byte (no client normalisation) with alice's password.
async fn raw_target(proxy: SocketAddr, target: &str) -> String {
    let request = format!(
        "GET {target} HTTP/1.1\r\nHost: {proxy}\r\nAuthorization: {}\r\nConnection: close\r\n\r\n",
        common::basic("alice", "alicepass")
    );
    common::raw(proxy, &request).await
}

async fn bearer(proxy: SocketAddr, path: &str, secret: &str) -> StatusCode {
    common::client()
        .get(format!("http://{proxy}{path}"))
        .header("authorization", format!("Bearer {secret}"))
        .send()
        .await
        .unwrap()
        .status()
}

async fn portal_through(proxy: SocketAddr, hits: &AtomicUsize, name: &str) {
    // Log in through the proxy: the Origin the browser sends is the proxy's, and the sidecar
    // sees the Host the proxy forwards.
    let mut browser = Browser::new(proxy);
    let page = browser.get("/portal/login").await;
    assert_eq!(page.status, StatusCode::OK, "{name}: {}", page.text);
    let page = browser.login("alice", "alicepass").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{name}: {}", page.text);
    let (created, _) = browser.create("ci", &[("polytope", "read")]).await;
    assert_eq!(
        created.status,
        StatusCode::CREATED,
        "{name}: {}",
        created.text
    );
    assert_eq!(created.header("cache-control"), "no-store", "{name}");
    let secret = created.secret().expect("the secret on the created page");

    // The token passes the proxy's own check where its scope suffices, and only there.
    let before = hits.load(Ordering::SeqCst);
    assert_eq!(
        bearer(proxy, "/read/x", &secret).await,
        StatusCode::OK,
        "{name}"
    );
    assert_eq!(hits.load(Ordering::SeqCst), before + 1, "{name}");
    assert_eq!(
        bearer(proxy, "/write/x", &secret).await,
        StatusCode::FORBIDDEN,
        "{name}"
    );
    assert_eq!(
        hits.load(Ordering::SeqCst),
        before + 1,
        "{name}: 403 reached the app"
    );

    // The JSON API through the proxy lists it for its owner; the token itself may list too.
    let list = common::client()
        .get(format!("http://{proxy}/tokens"))
        .header("authorization", common::basic("alice", "alicepass"))
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), StatusCode::OK, "{name}");
    let list: serde_json::Value = list.json().await.unwrap();
    assert_eq!(list["tokens"][0]["name"], "ci", "{name}: {list}");

    // A form posted from another site through the proxy is refused and creates nothing.
    let page = browser.get("/portal/tokens").await;
    let csrf = page.hidden("csrf");
    let nonce = page.hidden("nonce");
    let req = browser
        .client
        .post(format!("http://{proxy}/portal/tokens"))
        .header("origin", "http://localhost:1")
        .header("sec-fetch-site", "cross-site")
        .form(&[
            ("csrf", csrf.as_str()),
            ("nonce", nonce.as_str()),
            ("name", "evil"),
            ("scope:polytope", "write"),
            ("expires", "30"),
        ]);
    let refused = browser.send(req).await;
    assert_eq!(
        refused.status,
        StatusCode::FORBIDDEN,
        "{name}: {}",
        refused.text
    );
    let page = browser.get("/portal/tokens").await;
    assert!(
        !page.text.contains("evil"),
        "{name}: a cross-site form created a token"
    );

    // The login rate limit sees the client the proxy names, not the proxy: one client's
    // failures (with a forged X-Forwarded-For, which the proxy must not pass on as the
    // client) block that client only; another client still logs in.
    let attacker: std::net::IpAddr = [127, 0, 0, 2].into();
    for n in 0..8 {
        let mut b = Browser::from_address(proxy, attacker);
        let user = format!("nobody{n}");
        b.login(&user, "wrong").await;
    }
    let mut b = Browser::from_address(proxy, attacker);
    let req = b
        .client
        .post(format!("http://{proxy}/portal/login"))
        .header("origin", format!("http://{proxy}"))
        .header("sec-fetch-site", "same-origin")
        .header("x-forwarded-for", "192.0.2.7")
        .header("x-real-ip", "192.0.2.7")
        .form(&[("username", "bob"), ("password", "bobpass")]);
    let page = b.send(req).await;
    assert_eq!(
        page.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{name}: a forged X-Forwarded-For escaped the limit: {}",
        page.text
    );
    let mut other = Browser::from_address(proxy, [127, 0, 0, 3].into());
    let page = other.login("bob", "bobpass").await;
    assert_eq!(
        page.status,
        StatusCode::SEE_OTHER,
        "{name}: one client's failures locked out another: {}",
        page.text
    );

    // Raw targets that the proxy may route to the sidecar's pages: whatever the answer, no
    // minted JWT reaches the client in a response header.
    for target in [
        "/portal/..%2fauthenticate",
        "/portal/%2e%2e/authenticate",
        "/tokens/../authenticate",
        "/portal/..;/authenticate",
        "/portal%2f..%2fauthenticate",
        "/tokens/..%5cauthenticate",
        "/portal/./../authenticate?x=1",
        "//portal/../authenticate",
    ] {
        let answer = raw_target(proxy, target).await;
        let head = answer
            .split("\r\n\r\n")
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        assert!(
            !head.contains("\r\nauthorization:") && !head.contains("\r\nx-auth-username:"),
            "{name}: {target} handed the client a decision:\n{head}"
        );
    }
}

async fn run(start: fn(u16, u16) -> (Proc, Scratch, SocketAddr), name: &str) {
    let hits = Arc::new(AtomicUsize::new(0));
    let app = upstream(hits.clone()).await;
    let dir = Scratch::new("portal-proxy");
    let side = sidecar(&dir);
    let (_proxy, _pdir, proxy) = start(side.addr.port(), app);
    portal_through(proxy, &hits, name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portal_behind_nginx() {
    run(nginx, "nginx").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portal_behind_caddy() {
    run(caddy, "caddy").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portal_behind_traefik() {
    run(traefik, "traefik").await;
}
