//! The sidecar over real TCP: the auth-o-tron wire contract, rules, endpoints, limits, draining.
#![cfg(feature = "sidecar")]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use auth_o_tron::sidecar::config::Config;
use auth_o_tron::sidecar::{metrics::Metrics, router, server};
use common::basic;
use common::client::TestClient;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SECRET: &str = "a-test-secret-of-at-least-32-bytes-long";

fn config(extra: &str) -> String {
    format!(
        r#"
version: "2.0.0"
server: {{port: 1, header_read_timeout_ms: 300}}
providers:
  - type: plain
    name: local_users
    realm: localrealm
    users:
      - {{username: alice, password: alicepass, roles: [user]}}
      - {{username: adam, password: adampass, roles: [admin]}}
augmenters:
  - type: plain_advanced
    name: admins
    realm: localrealm
    match: {{role: [admin]}}
    augment: {{roles: [observer], attributes: {{team: polytope}}}}
jwt: {{iss: test-issuer, exp: 3600, secret: {SECRET}}}
store: {{enabled: false}}
services: []
include_legacy_headers: true
logging: {{level: info, format: json}}
rules:
  - {{path: /admin, roles: [admin]}}
  - {{path: /reports, methods: [DELETE], roles: [admin]}}
  - {{path: /ops, host: admin.example.org, roles: [admin]}}
{extra}
"#
    )
}

async fn start(yaml: &str) -> (SocketAddr, SocketAddr, tokio::sync::oneshot::Sender<()>) {
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
        drain_timeout: Duration::from_secs(5),
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
    (addr, maddr, tx)
}

#[tokio::test]
async fn authenticate_answers_like_auth_o_tron() {
    // auth-o-tron has no rules: without them, no original URI is needed.
    let yaml = config("");
    let (addr, _, _stop) = start(yaml.split("rules:").next().unwrap()).await;
    let c = TestClient::at(addr);
    let res = c.get("/authenticate").basic("adam", "adampass").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.header("x-auth-username"), "adam");
    assert_eq!(res.header("x-auth-realm"), "localrealm");
    assert_eq!(res.header("x-auth-roles"), "admin,observer");
    assert_eq!(res.text(), "Authenticated successfully");
    let jwt = res
        .header("authorization")
        .strip_prefix("Bearer ")
        .unwrap()
        .to_owned();
    let mut v = Validation::new(Algorithm::HS256);
    v.validate_aud = false;
    v.leeway = 5;
    v.set_required_spec_claims(&["exp"]);
    let claims = jsonwebtoken::decode::<serde_json::Value>(
        &jwt,
        &DecodingKey::from_secret(SECRET.as_bytes()).unwrap(),
        &v,
    )
    .unwrap()
    .claims;
    assert_eq!(claims["sub"], "localrealm-adam");
    assert_eq!(claims["iss"], "test-issuer");
    assert_eq!(claims["username"], "adam");
    assert_eq!(claims["realm"], "localrealm");
    assert_eq!(claims["roles"], serde_json::json!(["admin", "observer"]));
    assert_eq!(claims["attributes"]["team"], "polytope");
    assert_eq!(claims["scopes"], serde_json::json!({}));

    // any method: nginx keeps GET, but Traefik/Envoy forward the client's method
    for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"] {
        let res = c
            .request(method.parse().unwrap(), "/authenticate")
            .basic("alice", "alicepass")
            .await;
        assert_eq!(res.status(), 200, "{method}");
    }

    let res = c.get("/authenticate").basic("alice", "bad").await;
    assert_eq!(res.status(), 401);
    assert_eq!(
        res.header("www-authenticate"),
        r#"Basic realm="localrealm", charset="UTF-8""#
    );
    assert_eq!(res.header("content-type"), "application/json");
    assert_eq!(res.text(), r#"{"error":"Unauthorized access"}"#);
    assert_eq!(c.get("/authenticate").await.status(), 401);
    let res = c.get("/authenticate").auth("Bearer x, Bearer y").await;
    assert_eq!(res.status(), 401, "never 400: nginx would turn it into 500");
}

#[tokio::test]
async fn path_rules_use_the_original_request() {
    let (addr, _, _stop) = start(&config("")).await;
    let c = TestClient::at(addr);
    let ask =
        |user: &'static str, pass: &'static str, headers: Vec<(&'static str, &'static str)>| {
            let c = c.clone();
            async move {
                let mut r = c.get("/authenticate").basic(user, pass);
                if !headers.iter().any(|(k, _)| k.ends_with("-method")) {
                    r = r.header("x-original-method", "GET");
                }
                for (k, v) in headers {
                    r = r.header(k, v);
                }
                r.await.status().as_u16()
            }
        };
    assert_eq!(
        ask("alice", "alicepass", vec![("x-original-uri", "/admin/x")]).await,
        403
    );
    assert_eq!(
        ask("adam", "adampass", vec![("x-original-uri", "/admin/x")]).await,
        200
    );
    assert_eq!(
        ask(
            "alice",
            "alicepass",
            vec![("x-original-uri", "/administrator")]
        )
        .await,
        200
    );
    for sneaky in [
        "/public/../admin",
        "//admin",
        "/%61dmin",
        "/admin;x",
        "/admin?x=/public",
    ] {
        assert_eq!(
            ask("alice", "alicepass", vec![("x-original-uri", sneaky)]).await,
            403,
            "{sneaky}"
        );
    }
    assert_eq!(
        ask("alice", "alicepass", vec![("x-forwarded-uri", "/admin")]).await,
        403,
        "Caddy/Traefik headers"
    );
    let del = vec![
        ("x-original-uri", "/reports/1"),
        ("x-original-method", "DELETE"),
    ];
    assert_eq!(ask("alice", "alicepass", del).await, 403);
    let get = vec![
        ("x-original-uri", "/reports/1"),
        ("x-original-method", "GET"),
    ];
    assert_eq!(ask("alice", "alicepass", get).await, 200);
    let fwd = vec![
        ("x-forwarded-uri", "/reports/1"),
        ("x-forwarded-method", "DELETE"),
    ];
    assert_eq!(ask("alice", "alicepass", fwd).await, 403);
    // Host rules: /ops on the admin host needs the admin role; elsewhere it does not; without
    // a host from the proxy, the host rule applies (the stricter choice).
    let admin_host = vec![
        ("x-original-uri", "/ops/x"),
        ("x-forwarded-host", "Admin.Example.org:443"),
    ];
    assert_eq!(ask("alice", "alicepass", admin_host.clone()).await, 403);
    assert_eq!(ask("adam", "adampass", admin_host).await, 200);
    let other_host = vec![
        ("x-original-uri", "/ops/x"),
        ("x-forwarded-host", "www.example.org"),
    ];
    assert_eq!(ask("alice", "alicepass", other_host).await, 200);
    assert_eq!(
        ask("alice", "alicepass", vec![("x-original-uri", "/ops/x")]).await,
        403
    );
    // A client-sent copy of the other header family cannot override the proxy's: conflict denies.
    let spoof = vec![("x-original-uri", "/public"), ("x-forwarded-uri", "/admin")];
    assert_eq!(ask("alice", "alicepass", spoof).await, 403);
    let same = vec![
        ("x-original-uri", "/public"),
        ("x-forwarded-uri", "/public"),
    ];
    assert_eq!(ask("alice", "alicepass", same).await, 200);
}

/// Sends one raw request with the given extra header lines, byte for byte, and returns the
/// status code: no client library normalises the original URI on the way.
async fn raw_status(addr: SocketAddr, user: &str, pass: &str, headers: &[u8]) -> u16 {
    let mut req = format!(
        "GET /authenticate HTTP/1.1\r\nHost: sidecar\r\nConnection: close\r\nAuthorization: {}\r\n",
        basic(user, pass)
    )
    .into_bytes();
    req.extend_from_slice(headers);
    // The proxy names the original method; tests that are about its absence send none.
    let lower = String::from_utf8_lossy(headers).to_ascii_lowercase();
    if !lower.contains("-method:") && !lower.contains("x-no-method") {
        req.extend_from_slice(b"X-Original-Method: GET\r\n");
    }
    req.extend_from_slice(b"\r\n");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(&req).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out);
    text.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn original_uris_with_two_readings_are_refused_even_for_admins() {
    let (addr, _, _stop) = start(&config("")).await;
    for target in [
        "/admin/../public",
        "/public/../admin",
        "/admin/%2e%2e/public",
        "/admin/..%2fpublic",
        "/admin/.%2e/public",
        "/public/..%2Fadmin",
        "/public%5c..%5cadmin",
        "/public\\..\\admin",
        "//admin",
        "/admin;x",
        "/admin/..;/public",
        "/admin%00",
        "/admin%0d%0aX-Injected:%20yes",
        "/%252e%252e/admin",
        "/admin%3fx",
        "/public/%25%32%65%25%32%65/admin",
        "/%25%36%31dmin",
        "/%20admin",
        "/admin#frag",
        "/admin.",
        "/admin%20",
        "/adm%c0%aein",
        "/bad%zz",
        "*",
        "http://evil/admin",
        "admin",
    ] {
        let line = format!("X-Original-URI: {target}\r\n");
        for (user, pass) in [("alice", "alicepass"), ("adam", "adampass")] {
            assert_eq!(
                raw_status(addr, user, pass, line.as_bytes()).await,
                403,
                "{user} {target:?}"
            );
        }
    }
    // A tab inside the header value is a control byte too.
    assert_eq!(
        raw_status(addr, "adam", "adampass", b"X-Original-URI: /public\tx\r\n").await,
        403
    );
    // Plain targets still decide on their path, whatever the case or the escapes.
    for (target, alice) in [
        ("/public", 200),
        ("/public/a%20b.txt?x=/../admin", 200),
        ("/%61dmin", 403),
        ("/ADMIN/x", 403),
        ("/admin.json", 403),
        ("/adm%C4%B1n", 403),
        ("/adm%C4%B0n/x", 403),
        ("/Admin", 403),
    ] {
        let line = format!("X-Original-URI: {target}\r\n");
        assert_eq!(
            raw_status(addr, "alice", "alicepass", line.as_bytes()).await,
            alice,
            "{target}"
        );
        assert_eq!(
            raw_status(addr, "adam", "adampass", line.as_bytes()).await,
            200,
            "{target}"
        );
    }
    // The other header family, and two copies of one header, are checked the same way.
    assert_eq!(
        raw_status(
            addr,
            "adam",
            "adampass",
            b"X-Forwarded-Uri: /a/../admin\r\n"
        )
        .await,
        403
    );
    assert_eq!(
        raw_status(
            addr,
            "adam",
            "adampass",
            b"X-Original-URI: /public\r\nX-Original-URI: /admin\r\n"
        )
        .await,
        403
    );
}

#[tokio::test]
async fn opting_into_normalisation_decides_on_the_normalised_path() {
    let (addr, _, _stop) = start(&config("").replace(
        "header_read_timeout_ms: 300",
        "header_read_timeout_ms: 300, ambiguous_paths: normalize",
    ))
    .await;
    for (target, alice) in [
        ("/admin/../public", 200),
        ("/public/..%2fadmin", 403),
        ("//admin", 403),
    ] {
        let line = format!("X-Original-URI: {target}\r\n");
        assert_eq!(
            raw_status(addr, "alice", "alicepass", line.as_bytes()).await,
            alice,
            "{target}"
        );
    }
}

#[tokio::test]
async fn head_is_get_and_every_matching_rule_must_allow() {
    let yaml = config("").split("rules:").next().unwrap().to_owned()
        + r#"
rules:
  - {path: /reports, methods: [GET], roles: [admin]}
  - {path: /files, methods: [DELETE], any_roles: [user, admin]}
  - {path: /, host: admin.example.org, roles: [admin]}
"#;
    let (addr, _, _stop) = start(&yaml).await;
    let ask = |method: &'static str, uri: &'static str, host: &'static str| {
        let line = format!(
            "X-Original-URI: {uri}\r\nX-Original-Method: {method}\r\nX-Forwarded-Host: {host}\r\n"
        );
        async move { raw_status(addr, "alice", "alicepass", line.as_bytes()).await }
    };
    assert_eq!(ask("GET", "/reports/1", "www.example.org").await, 403);
    assert_eq!(
        ask("HEAD", "/reports/1", "www.example.org").await,
        403,
        "HEAD is GET"
    );
    assert_eq!(ask("POST", "/reports/1", "www.example.org").await, 200);
    assert_eq!(ask("DELETE", "/files/1", "www.example.org").await, 200);
    // The /files rule allows alice, the host rule does not: both apply, so she is denied.
    assert_eq!(ask("DELETE", "/files/1", "admin.example.org").await, 403);
    assert_eq!(
        ask("DELETE", "/files/1", "ADMIN.example.org.:8443").await,
        403
    );
    // Method case, method overrides and host lists cannot dodge a rule.
    assert_eq!(ask("get", "/reports/1", "www.example.org").await, 403);
    let over =
        b"X-Original-URI: /reports/1\r\nX-Original-Method: POST\r\nX-HTTP-Method-Override: get\r\n";
    assert_eq!(raw_status(addr, "alice", "alicepass", over).await, 403);
    let list = b"X-Original-URI: /files/1\r\nX-Original-Method: DELETE\r\nX-Forwarded-Host: www.example.org, admin.example.org\r\n";
    assert_eq!(raw_status(addr, "alice", "alicepass", list).await, 403);
    let twice = b"X-Original-URI: /files/1\r\nX-Original-Method: DELETE\r\nX-Forwarded-Host: www.example.org\r\nX-Forwarded-Host: admin.example.org\r\n";
    assert_eq!(raw_status(addr, "alice", "alicepass", twice).await, 403);
    let query = b"X-Original-URI: /reports/1?x=1&_method=get\r\nX-Original-Method: POST\r\n";
    assert_eq!(raw_status(addr, "alice", "alicepass", query).await, 403);
    for encoded in ["_method=G%45T", "%5Fmethod=get", "%5f%6Dethod=%67et"] {
        let line = format!("X-Original-URI: /reports/1?{encoded}\r\nX-Original-Method: POST\r\n");
        assert_eq!(
            raw_status(addr, "alice", "alicepass", line.as_bytes()).await,
            403,
            "{encoded}"
        );
    }
    let ports = b"X-Original-URI: /files/1\r\nX-Original-Method: DELETE\r\nX-Forwarded-Host: admin.example.org:80:80\r\n";
    assert_eq!(raw_status(addr, "alice", "alicepass", ports).await, 403);
    let fine = b"X-Original-URI: /files/1\r\nX-Original-Method: DELETE\r\nX-Forwarded-Host: www.example.org:8443\r\n";
    assert_eq!(raw_status(addr, "alice", "alicepass", fine).await, 200);
}

#[tokio::test]
async fn rules_without_an_original_uri_deny() {
    let (addr, _, _stop) = start(&config("")).await;
    assert_eq!(raw_status(addr, "adam", "adampass", b"").await, 403);
    assert_eq!(
        raw_status(addr, "adam", "adampass", b"X-Original-Method: GET\r\n").await,
        403
    );
    assert_eq!(
        raw_status(addr, "adam", "adampass", b"X-Original-URI: /\r\n").await,
        200
    );
    // Method rules are configured: without the original method the sidecar would decide on
    // its own request's (nginx's subrequest is always a GET), so it denies.
    assert_eq!(
        raw_status(
            addr,
            "adam",
            "adampass",
            b"X-Original-URI: /\r\nX-No-Method: 1\r\n"
        )
        .await,
        403
    );
    let yaml = config("").replace(
        "  - {path: /reports, methods: [DELETE], roles: [admin]}\n",
        "",
    );
    let (no_method_rules, _, _stop3) = start(&yaml).await;
    assert_eq!(
        raw_status(
            no_method_rules,
            "alice",
            "alicepass",
            b"X-Original-URI: /x\r\nX-No-Method: 1\r\n"
        )
        .await,
        200,
        "no rule names a method, so none is needed"
    );
    // Without rules there is nothing to decide on a path: auth-o-tron's contract.
    let yaml = config("");
    let (plain, _, _stop2) = start(yaml.split("rules:").next().unwrap()).await;
    assert_eq!(raw_status(plain, "alice", "alicepass", b"").await, 200);
}

#[tokio::test]
async fn only_trusted_proxies_get_decisions() {
    let untrusted = config("").replace(
        "header_read_timeout_ms: 300",
        "header_read_timeout_ms: 300, trusted_proxies: [10.0.0.0/8, \"::1\"]",
    );
    let (addr, _, _stop) = start(&untrusted).await;
    assert_eq!(
        raw_status(addr, "adam", "adampass", b"X-Original-URI: /\r\n").await,
        403
    );
    let c = TestClient::at(addr);
    let res = c.get("/whoami").basic("adam", "adampass").await;
    assert_eq!(res.status(), 403);
    assert_eq!(res.text(), r#"{"error":"untrusted peer"}"#);
    assert_eq!(c.get("/health").await.status(), 200);
    let trusted = config("").replace(
        "header_read_timeout_ms: 300",
        "header_read_timeout_ms: 300, trusted_proxies: [127.0.0.0/8]",
    );
    let (addr, _, _stop2) = start(&trusted).await;
    assert_eq!(
        raw_status(addr, "adam", "adampass", b"X-Original-URI: /\r\n").await,
        200
    );
    let bad = config("").replace(
        "header_read_timeout_ms: 300",
        "header_read_timeout_ms: 300, trusted_proxies: [127.0.0.1/40]",
    );
    let e = Config::from_yaml(&bad, Vec::<(String, String)>::new())
        .unwrap()
        .config
        .build()
        .unwrap_err()
        .to_string();
    assert!(e.contains("server.trusted_proxies[0]"), "{e}");
}

#[tokio::test]
async fn informational_endpoints_and_metrics() {
    let (addr, maddr, _stop) = start(&config("")).await;
    let c = TestClient::at(addr);
    let res = c.get("/whoami").basic("alice", "alicepass").await;
    assert_eq!(res.header("cache-control"), "no-store");
    let user: serde_json::Value = res.json();
    assert_eq!(
        user,
        serde_json::json!({"version":1,"username":"alice","realm":"localrealm","roles":["user"],"attributes":{},"scopes":{}})
    );
    let p: serde_json::Value = c.get("/providers").await.json();
    assert_eq!(
        p,
        serde_json::json!({"providers":[{"name":"local_users","type":"plain","realm":"localrealm"}]})
    );
    let a: serde_json::Value = c.get("/augmenters").await.json();
    assert_eq!(a["augmenters"][0]["type"], "plain_advanced");
    assert_eq!(c.get("/health").await.text(), "OK");
    assert_eq!(c.get("/ready").await.status(), 200);
    assert_eq!(
        c.get("/.well-known/jwks.json").await.status(),
        404,
        "no JWKS for HS256"
    );
    assert_eq!(
        c.get("/metrics").await.status(),
        404,
        "metrics only on their port"
    );
    c.get("/authenticate")
        .basic("alice", "alicepass")
        .header("x-original-uri", "/")
        .header("x-original-method", "GET")
        .await;
    let metrics = TestClient::at(maddr).get("/metrics").await;
    let text = metrics.text();
    for family in [
        "authotron_auth_requests_total{realm=\"localrealm\",result=\"success\"}",
        "authotron_http_requests_total{method=\"GET\",route=\"/authenticate\",status_code=\"200\"}",
        "authotron_cache_hits_total 1",
        "authotron_cache_misses_total 1",
        "authotron_auth_provider_attempts_total{provider_name=\"local_users\"",
        "authotron_augmenter_attempts_total{augmenter_name=\"admins\"",
        "authotron_build_info",
        "process_resident_memory_bytes",
    ] {
        assert!(text.contains(family), "{family} missing from\n{text}");
    }
}

#[tokio::test]
async fn es256_minting_publishes_a_jwks_that_verifies_the_token() {
    // Removed when dropped, also when the test fails.
    let tmp = tempfile::Builder::new()
        .prefix("aot-key-")
        .tempdir()
        .unwrap();
    let dir = tmp.path();
    // A P-256 key in PKCS#8 PEM, as an operator would create with openssl.
    let der = {
        use p256::pkcs8::EncodePrivateKey;
        p256::SecretKey::from_slice(&[7u8; 32])
            .unwrap()
            .to_pkcs8_pem(Default::default())
            .unwrap()
            .to_string()
    };
    let key = dir.join("es256.pem");
    std::fs::write(&key, der).unwrap();
    let yaml = config("").replace(
        &format!("jwt: {{iss: test-issuer, exp: 3600, secret: {SECRET}}}"),
        &format!("jwt: {{iss: test-issuer, exp: 60, aud: backend, algorithm: ES256, kid: k1, key_file: {}}}", key.display()),
    );
    let (addr, _, _stop) = start(&yaml).await;
    let c = TestClient::at(addr);
    let jwks: jsonwebtoken::jwk::JwkSet = c.get("/.well-known/jwks.json").await.json();
    let res = c
        .get("/authenticate")
        .basic("alice", "alicepass")
        .header("x-original-uri", "/")
        .header("x-original-method", "GET")
        .await;
    let jwt = res
        .header("authorization")
        .strip_prefix("Bearer ")
        .unwrap()
        .to_owned();
    let kid = jsonwebtoken::decode_header(&jwt).unwrap().kid.unwrap();
    let mut v = Validation::new(Algorithm::ES256);
    v.set_audience(&["backend"]);
    v.set_issuer(&["test-issuer"]);
    let claims = jsonwebtoken::decode::<serde_json::Value>(
        &jwt,
        &DecodingKey::from_jwk(jwks.find(&kid).unwrap()).unwrap(),
        &v,
    )
    .unwrap()
    .claims;
    assert_eq!(claims["username"], "alice");
    assert!(claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap() <= 60);
}

#[tokio::test]
async fn slow_clients_are_cut_off_and_huge_heads_get_431() {
    let (addr, _, _stop) = start(&config("")).await;
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf))
        .await
        .expect("connection closed by the server");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "closed after the 300 ms header timeout"
    );
    let c = TestClient::at(addr);
    let res = c
        .get("/health")
        .header("x-big", "a".repeat(20 * 1024))
        .await;
    assert_eq!(res.status(), 431);
    // The server is still up.
    assert_eq!(c.get("/health").await.status(), 200);
}

#[tokio::test]
async fn shutdown_drains_requests_in_flight() {
    // Shutdown starts once the request is in the handler (not after a fixed sleep, which a
    // loaded machine can outlast before the request even connects).
    let started = std::sync::Arc::new(tokio::sync::Notify::new());
    let in_handler = started.clone();
    let slow = axum::Router::new().route(
        "/slow",
        axum::routing::get(move || async move {
            in_handler.notify_one();
            tokio::time::sleep(Duration::from_millis(500)).await;
            "done"
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(server::serve(
        l,
        slow,
        server::Limits::default(),
        async move {
            let _ = rx.await;
        },
    ));
    let req =
        tokio::spawn(async move { TestClient::at(addr).get("/slow").await.text().to_owned() });
    tokio::time::timeout(Duration::from_secs(30), started.notified())
        .await
        .expect("the request reached the handler");
    tx.send(()).unwrap();
    assert_eq!(req.await.unwrap(), "done");
    assert_eq!(served.await.unwrap(), server::Drain::Closed);
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
}

#[tokio::test]
async fn shutdown_closes_idle_keep_alive_connections_at_once() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = axum::Router::new().route("/x", axum::routing::get(|| async { "x" }));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let limits = server::Limits {
        drain_timeout: Duration::from_secs(20),
        ..server::Limits::default()
    };
    let served = tokio::spawn(server::serve(l, app, limits, async move {
        let _ = rx.await;
    }));
    // One answered request, then the connection sits idle (keep-alive, 60 s by default).
    let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
    c.write_all(b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = c.read(&mut buf).await.unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    tx.send(()).unwrap();
    // The connection is closed by the shutdown itself, not by its idle or drain deadline.
    let eof = tokio::time::timeout(Duration::from_secs(5), c.read(&mut buf))
        .await
        .expect("the idle connection is closed at shutdown");
    assert_eq!(eof.unwrap(), 0);
    let drained = tokio::time::timeout(Duration::from_secs(5), served)
        .await
        .expect("serve returns once the connection closed");
    assert_eq!(drained.unwrap(), server::Drain::Closed);
}

#[tokio::test]
async fn check_and_schema_and_bad_configs() {
    // Removed when dropped, also when the test fails.
    let tmp = tempfile::Builder::new()
        .prefix("aot-check-")
        .tempdir()
        .unwrap();
    let dir = tmp.path();
    let good = dir.join("good.yaml");
    std::fs::write(&good, config("")).unwrap();
    let code = auth_o_tron::sidecar::main([
        "--check".to_owned(),
        "--config".to_owned(),
        good.display().to_string(),
    ])
    .await;
    assert_eq!(
        format!("{code:?}"),
        format!("{:?}", std::process::ExitCode::SUCCESS)
    );
    // A short HS256 secret (auth-o-tron accepts it, and every backend shares it) starts, with a
    // warning; an empty one does not.
    let short = dir.join("short.yaml");
    std::fs::write(&short, config("").replace(SECRET, "short")).unwrap();
    let code = auth_o_tron::sidecar::main([
        "--check".to_owned(),
        "--config".to_owned(),
        short.display().to_string(),
    ])
    .await;
    assert_eq!(
        format!("{code:?}"),
        format!("{:?}", std::process::ExitCode::SUCCESS)
    );
    let cfg = Config::from_yaml(
        &config("").replace(SECRET, "short"),
        Vec::<(String, String)>::new(),
    )
    .unwrap()
    .config;
    cfg.build().unwrap();
    let w = auth_o_tron::sidecar::config::warnings(&cfg);
    assert!(
        w.iter().any(|l| l.starts_with("jwt.secret has 5 bytes")),
        "{w:?}"
    );
    let e = Config::from_yaml(
        &config("").replace(SECRET, "\"\""),
        Vec::<(String, String)>::new(),
    )
    .unwrap()
    .config
    .build()
    .unwrap_err();
    assert!(e.to_string().starts_with("config key `jwt.secret`"), "{e}");
    let code = auth_o_tron::sidecar::main(["--schema".to_owned()]).await;
    assert_eq!(
        format!("{code:?}"),
        format!("{:?}", std::process::ExitCode::SUCCESS)
    );
    let code = auth_o_tron::sidecar::main(["--bogus".to_owned()]).await;
    assert_eq!(
        format!("{code:?}"),
        format!("{:?}", std::process::ExitCode::from(2))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_is_shed_and_panics_become_500() {
    let app = axum::Router::new()
        .route(
            "/slow",
            axum::routing::get(|| async {
                tokio::time::sleep(Duration::from_millis(400)).await;
                "done"
            }),
        )
        .route(
            "/boom",
            axum::routing::get(|| async {
                if std::hint::black_box(true) {
                    panic!("handler bug");
                }
                "unreachable"
            }),
        )
        .route("/ok", axum::routing::get(|| async { "ok" }));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let limits = server::Limits {
        max_concurrent: 1,
        ..server::Limits::default()
    };
    tokio::spawn(server::serve(l, app, limits, std::future::pending()));
    let c = TestClient::at(addr);
    let first = tokio::spawn({
        let c = c.clone();
        async move { c.get("/slow").await.status() }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let second = c.get("/ok").await;
    assert_eq!(second.status(), 503, "shed at once, not queued");
    assert_eq!(second.text(), r#"{"error":"overloaded"}"#);
    assert_eq!(first.await.unwrap(), 200);
    assert_eq!(c.get("/boom").await.status(), 500);
    assert_eq!(c.get("/ok").await.status(), 200, "still up");
}

/// An HTTP/2 app whose answers name the connection (the peer port) they came over.
async fn h2_app(limits: server::Limits) -> SocketAddr {
    use auth_o_tron::sidecar::peers::Peer;
    let app = axum::Router::new()
        .route(
            "/slow",
            axum::routing::get(|axum::Extension(peer): axum::Extension<Peer>| async move {
                tokio::time::sleep(Duration::from_millis(800)).await;
                peer.addr.port().to_string()
            }),
        )
        .route(
            "/port",
            axum::routing::get(|axum::Extension(peer): axum::Extension<Peer>| async move {
                peer.addr.port().to_string()
            }),
        );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(server::serve(l, app, limits, std::future::pending()));
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_http2_connection_is_timed_by_progress_not_by_its_oldest_request() {
    let addr = h2_app(server::Limits {
        request_timeout: Duration::from_millis(1500),
        ..server::Limits::default()
    })
    .await;
    let c = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    // Overlapping 800 ms requests, one every 300 ms for 3 s: the connection is never idle,
    // every request is quicker than the timeout, none may be cut.
    let mut calls = Vec::new();
    for _ in 0..10 {
        let c = c.clone();
        calls.push(tokio::spawn(async move {
            c.get(format!("http://{addr}/slow")).send().await
        }));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let mut ports = std::collections::BTreeSet::new();
    for call in calls {
        let res = call.await.unwrap().expect("no request cut");
        assert_eq!(res.status(), 200);
        assert_eq!(res.version(), reqwest::Version::HTTP_2);
        ports.insert(res.text().await.unwrap());
    }
    assert_eq!(ports.len(), 1, "one connection throughout: {ports:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_pings_after_an_answer_do_not_shorten_the_idle_timeout() {
    let addr = h2_app(server::Limits {
        header_read_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_secs(5),
        ..server::Limits::default()
    })
    .await;
    let c = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .http2_keep_alive_interval(Duration::from_millis(100))
        .http2_keep_alive_while_idle(true)
        .build()
        .unwrap();
    let port = |c: reqwest::Client| async move {
        c.get(format!("http://{addr}/port"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let first = port(c.clone()).await;
    // Idle for three head deadlines, with a PING every 100 ms: the same connection serves.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(port(c.clone()).await, first, "the connection was closed");
}

#[tokio::test]
async fn a_legacy_header_that_cannot_carry_the_value_is_sent_empty_not_left_out() {
    let yaml = config("").split("rules:").next().unwrap().replace(
        "      - {username: alice, password: alicepass, roles: [user]}",
        "      - {username: alice, password: alicepass, roles: [user]}\n      - {username: \"josé\", password: pw, roles: [\"a,b\"]}",
    );
    let (addr, _, _stop) = start(&yaml).await;
    let res = TestClient::at(addr)
        .get("/authenticate")
        .basic("josé", "pw")
        .await;
    assert_eq!(res.status(), 200);
    // Present and empty, so a proxy copying these headers overwrites a client's own copy.
    assert_eq!(res.header("x-auth-username"), "");
    assert_eq!(res.header("x-auth-roles"), "");
    assert_eq!(res.header("x-auth-realm"), "localrealm");
}
