//! Raw request targets, byte for byte, through real nginx (`examples/nginx.conf`), Caddy
//! (`examples/Caddyfile`) and Traefik (`examples/traefik.yml`) in front of the shipped sidecar
//! binary and a raw-socket app that records the request line it receives. A target that a router
//! could read two ways must never reach the app, whoever asks; a plain one reaches it unchanged.
//! Traefik normalises targets before anything sees them: there, whatever reaches the app must be
//! exactly the target the sidecar decided on. Feature `e2e`.
#![cfg(all(feature = "e2e", feature = "sidecar"))]

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::basic;
use common::process::{SidecarProcess, caddy, nginx, traefik};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const SECRET: &str = "a-raw-target-e2e-secret-of-32-bytes-plus";

/// The app: answers 200 to anything and records each request line exactly as received.
async fn recording_app() -> (u16, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            let log = log.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    while let Some(end) = find(&head, b"\r\n\r\n") {
                        let text = String::from_utf8_lossy(&head[..end]).into_owned();
                        log.lock()
                            .unwrap()
                            .push(text.lines().next().unwrap_or("").to_owned());
                        head.drain(..end + 4);
                        let body = "seen";
                        let res = format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if s.write_all(res.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
            });
        }
    });
    (port, seen)
}

fn find(h: &[u8], needle: &[u8]) -> Option<usize> {
    h.windows(needle.len()).position(|w| w == needle)
}

/// Sends `GET <target>` byte for byte and returns the status code.
async fn send(proxy: SocketAddr, target: &[u8], user: &str, pass: &str) -> u16 {
    send_method(proxy, "GET", target, user, pass).await
}

async fn send_method(
    proxy: SocketAddr,
    method: &str,
    target: &[u8],
    user: &str,
    pass: &str,
) -> u16 {
    let mut req = format!("{method} ").into_bytes();
    req.extend_from_slice(target);
    req.extend_from_slice(
        format!(
            " HTTP/1.1\r\nHost: {proxy}\r\nAuthorization: {}\r\nConnection: close\r\n\r\n",
            basic(user, pass)
        )
        .as_bytes(),
    );
    let mut s = TcpStream::connect(proxy).await.unwrap();
    s.write_all(&req).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out);
    text.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
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
logging: {{level: info, format: json}}
rules:
  - {{path: /admin, methods: [GET, POST], roles: [admin]}}
"#
    ))
}

/// Targets with two readings: refused (403 from the sidecar, or 400 from the proxy itself),
/// never forwarded, for a user without `admin` and for an admin alike.
const AMBIGUOUS: &[&[u8]] = &[
    b"/admin/../public",
    b"/admin/%2e%2e/public",
    b"/admin/%2E%2E/public",
    b"/admin/..%2fpublic",
    b"/admin/.%2e/public",
    b"/public/..%2fadmin",
    b"/public/..%2Fadmin/secret",
    b"/public%5c..%5cadmin",
    b"/public/..\\admin",
    b"//admin",
    b"/admin;x",
    b"/admin/..;/public",
    b"/admin%3bx",
    b"/admin%0d%0aX-Injected:%20yes",
    b"/admin%09",
    b"/%252e%252e/admin",
    b"/admin%3fx",
    b"/admin%23x",
    b"/admin#frag",
    b"/admin.",
    b"/admin%20",
    b"/adm%c0%aein",
    b"/../admin",
    b"/%2e%2e/admin",
    b"/admin%00",
    b"/bad%zz",
    b"http://127.0.0.1/admin/../public",
];

async fn run(proxy: SocketAddr, seen: &Mutex<Vec<String>>, name: &str) {
    // Plain targets reach the app byte for byte.
    for (target, user, pass, want) in [
        ("/public/a", "alice", "alicepass", 200),
        ("/public/a%20b?x=/../admin", "alice", "alicepass", 200),
        ("/admin/x", "alice", "alicepass", 403),
        ("/ADMIN/x", "alice", "alicepass", 403),
        ("/%61dmin/x", "alice", "alicepass", 403),
        ("/administrator", "alice", "alicepass", 200),
        ("/admin/x", "adam", "adampass", 200),
    ] {
        let before = seen.lock().unwrap().len();
        assert_eq!(
            send(proxy, target.as_bytes(), user, pass).await,
            want,
            "{name} {user} {target}"
        );
        let after = seen.lock().unwrap().clone();
        if want == 200 {
            assert_eq!(
                after.last().map(String::as_str),
                Some(format!("GET {target} HTTP/1.1").as_str()),
                "{name}: the app got the target unchanged"
            );
        } else {
            assert_eq!(after.len(), before, "{name} {target}: not forwarded");
        }
    }
    // HEAD is GET to the app's router: the GET rule on /admin covers it.
    let before = seen.lock().unwrap().len();
    assert_eq!(
        send_method(proxy, "HEAD", b"/admin/x", "alice", "alicepass").await,
        403,
        "{name}: HEAD"
    );
    assert_eq!(
        seen.lock().unwrap().len(),
        before,
        "{name}: HEAD not forwarded"
    );
    let mut refused_by_sidecar = 0;
    for target in AMBIGUOUS {
        for (user, pass) in [("alice", "alicepass"), ("adam", "adampass")] {
            let before = seen.lock().unwrap().len();
            let status = send(proxy, target, user, pass).await;
            let shown = String::from_utf8_lossy(target);
            assert!(
                status == 403 || status == 400,
                "{name} {user} {shown}: {status}"
            );
            if status == 403 {
                refused_by_sidecar += 1;
            }
            assert_eq!(
                seen.lock().unwrap().len(),
                before,
                "{name} {user} {shown}: reached the app as {:?}",
                seen.lock().unwrap().last()
            );
        }
    }
    assert!(
        refused_by_sidecar >= 2 * 18,
        "{name}: most forms pass the proxy and are refused by the sidecar ({refused_by_sidecar})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_never_forwards_an_ambiguous_target() {
    let (app, seen) = recording_app().await;
    let side = sidecar();
    let (_nginx, _dir, proxy) = nginx(side.addr.port(), app);
    run(proxy, &seen, "nginx").await;
    let log = side.log();
    assert!(log.contains("original URI has a dot segment"), "{log}");
    assert!(log.contains("original URI has an encoded slash"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caddy_never_forwards_an_ambiguous_target() {
    let (app, seen) = recording_app().await;
    let side = sidecar();
    let (_caddy, _dir, proxy) = caddy(side.addr.port(), app);
    run(proxy, &seen, "caddy").await;
}

/// The path of the sidecar's latest audit line (JSON logs).
fn last_decided(side: &SidecarProcess) -> Option<String> {
    side.log()
        .lines()
        .rev()
        .filter(|l| l.contains("\"auth.decision\""))
        .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .and_then(|v| v["attributes"]["path"].as_str().map(str::to_owned))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traefik_forwards_only_the_target_the_sidecar_decided_on() {
    let (app, seen) = recording_app().await;
    let side = sidecar();
    let (_traefik, _dir, proxy) = traefik(side.addr.port(), app);
    // Plain targets: the same answers as behind nginx and Caddy, and the app gets them as sent.
    for (target, user, pass, want) in [
        ("/public/a", "alice", "alicepass", 200),
        ("/public/a%20b?x=/../admin", "alice", "alicepass", 200),
        ("/admin/x", "alice", "alicepass", 403),
        ("/ADMIN/x", "alice", "alicepass", 403),
        ("/%61dmin/x", "alice", "alicepass", 403),
        ("/administrator", "alice", "alicepass", 200),
        ("/admin/x", "adam", "adampass", 200),
    ] {
        assert_eq!(
            send(proxy, target.as_bytes(), user, pass).await,
            want,
            "traefik {user} {target}"
        );
        if want == 200 {
            assert_eq!(
                seen.lock().unwrap().last().map(String::as_str),
                Some(format!("GET {target} HTTP/1.1").as_str()),
                "traefik: the app got the target unchanged"
            );
        }
    }
    let mut forwarded = 0;
    let mut refused = 0;
    for target in AMBIGUOUS {
        for (user, pass) in [("alice", "alicepass"), ("adam", "adampass")] {
            let before = seen.lock().unwrap().len();
            let status = send(proxy, target, user, pass).await;
            let shown = String::from_utf8_lossy(target);
            let after = seen.lock().unwrap().clone();
            if status == 200 {
                forwarded += 1;
                let line = after.last().cloned().unwrap_or_default();
                let got = line
                    .strip_prefix("GET ")
                    .and_then(|l| l.strip_suffix(" HTTP/1.1"))
                    .unwrap_or_default()
                    .to_owned();
                assert_eq!(after.len(), before + 1, "traefik {user} {shown}");
                assert_eq!(
                    last_decided(&side).as_deref(),
                    Some(got.as_str()),
                    "traefik {user} {shown}: the app got another target than the one decided on"
                );
                assert!(
                    user == "adam" || !got.to_ascii_lowercase().starts_with("/admin"),
                    "traefik {user} {shown}: reached the app as {got}"
                );
            } else {
                refused += 1;
                assert!(
                    status == 403 || status == 400,
                    "traefik {user} {shown}: {status}"
                );
                assert_eq!(after.len(), before, "traefik {user} {shown}: forwarded");
            }
        }
    }
    // Traefik resolves dot segments and `//` (those reach the app resolved); the rest are
    // refused by Traefik (400) or the sidecar (403).
    assert!(forwarded > 0 && refused >= 2 * 18, "{forwarded} {refused}");
}
