//! The shipped sidecar binary (`examples/sidecar.rs`, which `cargo test` builds) as its own
//! process, driven over raw sockets: connection deadlines, the connection cap, the audit
//! line of a refused target, `--check`, and the demo's printed curl line.
#![cfg(feature = "sidecar")]

mod common;

use std::io::Read;
use std::net::{SocketAddr, TcpStream as StdStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::process::{SidecarProcess, free_port, sidecar_binary};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SECRET: &str = "a-process-test-secret-of-32-bytes-or-more";

/// The sidecar process with `server_extra` keys in `server` and `rest` at the top level.
fn start(server_extra: &str, rest: &str) -> SidecarProcess {
    SidecarProcess::start(&format!(
        r#"
version: "2.0.0"
server: {{host: 127.0.0.1, port: {{port}}{server_extra}}}
metrics: {{enabled: false}}
providers:
  - type: plain
    name: users
    realm: proc
    users:
      - {{username: alice, password: alicepass, roles: [user]}}
      - {{username: adam, password: adampass, roles: [admin]}}
jwt: {{iss: proc, exp: 300, secret: {SECRET}}}
logging: {{level: info, format: json}}
{rest}
"#
    ))
}

/// Waits until the server closes `s` and returns how long that took, or `None` if it stayed
/// open for `limit`.
async fn closed_within(s: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(
            tokio::time::Instant::from_std(started + limit),
            s.read(&mut buf),
        )
        .await
        {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

fn request(user: &str, pass: &str, uri: &str, close: bool) -> Vec<u8> {
    format!(
        "GET /authenticate HTTP/1.1\r\nHost: s\r\nAuthorization: {}\r\nX-Original-URI: {uri}\r\n{}\r\n",
        common::basic(user, pass),
        if close { "Connection: close\r\n" } else { "" }
    )
    .into_bytes()
}

async fn read_response(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    // One small response: read until the blank line and the short body arrived.
    while !String::from_utf8_lossy(&out).contains("\r\n\r\n") {
        let n = s.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed before answering");
        out.extend_from_slice(&buf[..n]);
    }
    tokio::time::sleep(Duration::from_millis(30)).await;
    if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(50), s.read(&mut buf)).await {
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn silent_half_preface_and_trickling_connections_are_closed() {
    let side = start(", header_read_timeout_ms: 400, idle_timeout_ms: 60000", "");
    let limit = Duration::from_secs(5);
    // Nothing at all.
    let mut s = TcpStream::connect(side.addr).await.unwrap();
    let t = closed_within(&mut s, limit)
        .await
        .expect("silent socket closed");
    assert!(t >= Duration::from_millis(300), "{t:?}");
    // Half the HTTP/2 preface: hyper's own timer never starts here.
    let mut s = TcpStream::connect(side.addr).await.unwrap();
    s.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    assert!(closed_within(&mut s, limit).await.is_some(), "half preface");
    // The whole preface and nothing else (HTTP/2 has no header timeout of its own).
    let mut s = TcpStream::connect(side.addr).await.unwrap();
    s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    assert!(closed_within(&mut s, limit).await.is_some(), "preface");
    // A head trickled one byte every 100 ms never completes in time.
    let mut s = TcpStream::connect(side.addr).await.unwrap();
    let started = Instant::now();
    let mut cut = false;
    for b in
        b"GET /health HTTP/1.1\r\nHost: s\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n"
    {
        if s.write_all(&[*b]).await.is_err() {
            cut = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let closed = cut
        || closed_within(&mut s, Duration::from_millis(500))
            .await
            .is_some();
    assert!(closed, "trickled head was not cut");
    assert!(started.elapsed() < Duration::from_secs(7));
    // The server still answers.
    let mut s = TcpStream::connect(side.addr).await.unwrap();
    s.write_all(b"GET /health HTTP/1.1\r\nHost: s\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    assert!(read_response(&mut s).await.starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn idle_keep_alive_outlives_the_head_deadline_and_then_closes() {
    let side = start(", header_read_timeout_ms: 300, idle_timeout_ms: 1500", "");
    let mut s = TcpStream::connect(side.addr).await.unwrap();
    s.write_all(&request("alice", "alicepass", "/", false))
        .await
        .unwrap();
    assert!(read_response(&mut s).await.starts_with("HTTP/1.1 200"));
    // Idle for longer than the head deadline: still open, a second request works.
    tokio::time::sleep(Duration::from_millis(700)).await;
    s.write_all(&request("alice", "alicepass", "/", false))
        .await
        .unwrap();
    assert!(read_response(&mut s).await.starts_with("HTTP/1.1 200"));
    let t = closed_within(&mut s, Duration::from_secs(6))
        .await
        .expect("idle connection closed");
    assert!(t >= Duration::from_millis(1200), "closed too early: {t:?}");
}

#[tokio::test]
async fn at_the_connection_cap_idle_connections_make_room() {
    let side = start(
        ", header_read_timeout_ms: 20000, idle_timeout_ms: 60000, max_connections: 8",
        "",
    );
    let mut idle = Vec::new();
    for _ in 0..8 {
        idle.push(TcpStream::connect(side.addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let mut s = TcpStream::connect(side.addr).await.unwrap();
    s.write_all(&request("alice", "alicepass", "/", true))
        .await
        .unwrap();
    let res = tokio::time::timeout(Duration::from_secs(5), read_response(&mut s))
        .await
        .expect("a new connection is served while idle ones hold the cap");
    assert!(res.starts_with("HTTP/1.1 200"), "{res}");
    assert!(started.elapsed() < Duration::from_secs(3));
    let mut closed = 0;
    for s in &mut idle {
        if closed_within(s, Duration::from_millis(200)).await.is_some() {
            closed += 1;
        }
    }
    assert!(closed >= 1, "no idle connection was closed");
    assert!(side.log().contains("startup.nofile"), "{}", side.log());
}

#[tokio::test]
async fn at_the_cap_each_newcomer_evicts_one_keep_alive_connection_and_is_served() {
    let side = start(
        ", header_read_timeout_ms: 20000, idle_timeout_ms: 60000, max_connections: 16",
        "",
    );
    let mut idle = Vec::new();
    for _ in 0..16 {
        let mut s = TcpStream::connect(side.addr).await.unwrap();
        s.write_all(&request("alice", "alicepass", "/", false))
            .await
            .unwrap();
        assert!(read_response(&mut s).await.starts_with("HTTP/1.1 200"));
        idle.push(s);
    }
    // Newcomers send their request at once: none may be reset, few keep-alives are lost.
    let mut newcomers = Vec::new();
    for _ in 0..4 {
        let addr = side.addr;
        newcomers.push(tokio::spawn(async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(&request("alice", "alicepass", "/", true))
                .await
                .unwrap();
            tokio::time::timeout(Duration::from_secs(5), read_response(&mut s))
                .await
                .expect("served")
        }));
    }
    for n in newcomers {
        assert!(n.await.unwrap().starts_with("HTTP/1.1 200"));
    }
    let mut closed = 0;
    for s in &mut idle {
        if closed_within(s, Duration::from_millis(100)).await.is_some() {
            closed += 1;
        }
    }
    assert!(
        (1..=8).contains(&closed),
        "{closed} of 16 keep-alive connections evicted"
    );
}

#[tokio::test]
async fn refused_targets_are_audited_and_a_missing_uri_is_logged_once() {
    let side = start("", "rules:\n  - {path: /admin, roles: [admin]}\n");
    for target in ["/admin/..%2fpublic", "/admin/../public"] {
        let mut s = TcpStream::connect(side.addr).await.unwrap();
        s.write_all(&request("adam", "adampass", target, true))
            .await
            .unwrap();
        assert!(read_response(&mut s).await.starts_with("HTTP/1.1 403"));
    }
    for _ in 0..20 {
        let mut s = TcpStream::connect(side.addr).await.unwrap();
        s.write_all(
            format!(
                "GET /authenticate HTTP/1.1\r\nHost: s\r\nConnection: close\r\nAuthorization: {}\r\n\r\n",
                common::basic("adam", "adampass")
            )
            .as_bytes(),
        )
        .await
        .unwrap();
        assert!(read_response(&mut s).await.starts_with("HTTP/1.1 403"));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = side.log();
    assert!(
        log.contains("original URI has an encoded slash or backslash"),
        "{log}"
    );
    assert!(log.contains("original URI has a dot segment"), "{log}");
    let lines = |needle: &str| log.lines().filter(|l| l.contains(needle)).count();
    assert_eq!(lines("auth.proxy.misconfigured"), 1, "rate-limited: {log}");
    assert_eq!(
        log.lines()
            .filter(|l| l.contains("auth.decision")
                && l.contains("no X-Original-URI or X-Forwarded-Uri"))
            .count(),
        20,
        "every denial is audited: {log}"
    );
}

#[test]
fn check_reports_rules_that_can_never_apply() {
    let port = free_port();
    // Removed when dropped, also when the test fails.
    let tmp = tempfile::Builder::new()
        .prefix("aot-proc-check-")
        .tempdir()
        .unwrap();
    let dir = tmp.path();
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        format!(
            r#"
version: "2.0.0"
server: {{host: 127.0.0.1, port: {port}, trusted_proxies: [127.0.0.1/32]}}
providers:
  - {{type: plain, name: u, realm: r, users: [{{username: a, password: b}}]}}
jwt: {{iss: i, exp: 60, secret: {SECRET}}}
rules:
  - {{path: /public/../admin, roles: [admin]}}
  - {{path: /reports, methods: [GET], roles: [admin]}}
  - {{path: /REPORTS/, methods: [get], roles: [ops]}}
"#
        ),
    )
    .unwrap();
    let out = Command::new(sidecar_binary())
        .arg("--check")
        .arg("--config")
        .arg(&config)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    drop(tmp);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("warning: rules[0].path \"/public/../admin\" can never apply"),
        "{text}"
    );
    assert!(
        text.contains("warning: rules[2] matches exactly what rules[1] matches"),
        "{text}"
    );
    assert!(text.contains("trusted proxies: 127.0.0.1/32"), "{text}");
}

/// A one-user config with JSON logs at `info`; `{port}` stands for the port.
fn small_yaml() -> String {
    format!(
        r#"
version: "2.0.0"
server: {{host: 127.0.0.1, port: {{port}}}}
metrics: {{enabled: false}}
providers:
  - {{type: plain, name: u, realm: r, users: [{{username: a, password: b}}]}}
jwt: {{iss: i, exp: 60, secret: {SECRET}}}
logging: {{level: info, format: json}}
"#
    )
}

#[test]
fn a_rust_log_that_does_not_parse_stops_the_start_with_a_clear_error() {
    // Removed when dropped, also when the test fails.
    let dir = tempfile::Builder::new()
        .prefix("aot-proc-rustlog-")
        .tempdir()
        .unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        small_yaml().replace("{port}", &free_port().to_string()),
    )
    .unwrap();
    // The sidecar (with `--check` when `check`) under `rust_log`: how it exited (`None`: still
    // running after 20 s, then killed) and its stderr.
    let run = |check: bool, rust_log: &str| {
        let mut child = Command::new(sidecar_binary())
            .args(check.then_some("--check"))
            .arg("--config")
            .arg(&config)
            .env("RUST_LOG", rust_log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let exited = child.try_wait().unwrap();
        if exited.is_none() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        (exited, err)
    };
    let (status, err) = run(false, "auth_o_tron=loud");
    let status = status.expect("a bad RUST_LOG must stop the start, not be ignored");
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains("error: cannot install the logger: RUST_LOG `auth_o_tron=loud`: "),
        "{err}"
    );
    // `info,` would read as `error` and `warning` as "the target `warning` at trace" (no audit
    // lines either way): refused at start and by `--check`.
    for (check, bad) in [
        (false, "info,"),
        (true, "info,"),
        (false, "warning"),
        (true, "warn, auth_o_tron=debug"),
    ] {
        let (status, err) = run(check, bad);
        assert_eq!(status.and_then(|s| s.code()), Some(1), "{bad}: {err}");
        assert!(err.contains(&format!("RUST_LOG `{bad}`: ")), "{err}");
    }
}

#[tokio::test]
async fn rust_log_can_turn_debug_lines_on() {
    let p = SidecarProcess::start_with_rust_log(
        &small_yaml(),
        Some("warn,auth_o_tron::rejection=debug"),
    );
    let mut s = TcpStream::connect(p.addr).await.unwrap();
    s.write_all(&request("a", "wrong", "/", true))
        .await
        .unwrap();
    let answer = read_response(&mut s).await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    // The debug line is there; the info-level audit line is not (the default is `warn`).
    let text = p.log();
    assert!(text.contains("\"rejected\""), "{text}");
    assert!(!text.contains("auth.decision"), "{text}");
}

#[test]
fn the_demo_curl_lines_work() {
    let port = free_port();
    // Removed when dropped, also when the test fails.
    let tmp = tempfile::Builder::new()
        .prefix("aot-proc-demo-")
        .tempdir()
        .unwrap();
    let dir = tmp.path();
    let mut child = Command::new(sidecar_binary())
        .current_dir(dir)
        .env_remove("AOT_CONFIG_PATH")
        .env("AOT_SERVER__PORT", port.to_string())
        .env("AOT_METRICS__ENABLED", "false")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let started = Instant::now();
    while StdStream::connect(addr).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "demo did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    let _ = child.kill();
    let mut banner = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut banner)
        .unwrap();
    let _ = child.wait();
    drop(tmp);
    let curls: Vec<&str> = banner
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("curl "))
        .collect();
    assert_eq!(curls.len(), 2, "{banner}");
    // Re-run the printed lines (without curl) against a fresh demo on the same port.
    // Its own working directory: the demo keeps its token store (`aot-demo-tokens.db`) there.
    let cwd = tempfile::tempdir().unwrap();
    let mut child = Command::new(sidecar_binary())
        .current_dir(cwd.path())
        .env_remove("AOT_CONFIG_PATH")
        .env("AOT_SERVER__PORT", port.to_string())
        .env("AOT_METRICS__ENABLED", "false")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while StdStream::connect(addr).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "demo did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    for (line, want) in curls.iter().zip(["200", "200"]) {
        let user = line.split("-u ").nth(1).unwrap().split(' ').next().unwrap();
        let (u, p) = user.split_once(':').unwrap();
        let uri = line
            .split("X-Original-URI: ")
            .nth(1)
            .and_then(|r| r.split('\'').next())
            .expect("the printed line names the original URI");
        let mut s = StdStream::connect(addr).unwrap();
        use std::io::Write;
        s.write_all(
            format!(
                "GET /authenticate HTTP/1.1\r\nHost: d\r\nConnection: close\r\nAuthorization: {}\r\nX-Original-URI: {uri}\r\n\r\n",
                common::basic(u, p)
            )
            .as_bytes(),
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        assert!(
            out.starts_with(&format!("HTTP/1.1 {want}")),
            "{line}: {out}"
        );
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test]
async fn an_auth_o_tron_config_with_plain_http_urls_and_a_short_secret_starts_and_answers() {
    // In-cluster URLs (nothing listens there) and a secret shorter than 32 bytes, as ordinary
    // ecmwf/auth-o-tron v2 files have them.
    let side = SidecarProcess::start(
        r#"
version: "2.0.0"
server: {host: 127.0.0.1, port: {port}}
metrics: {enabled: false}
providers:
  - {type: plain, name: local, realm: local, users: [{username: alice, password: alicepass, roles: [user]}]}
  - {type: jwt, name: keycloak, realm: kc, cert_uri: "http://keycloak.internal:8080/realms/x/protocol/openid-connect/certs", iam_realm: x}
  - {type: ecmwf-api, name: ecmwf, realm: ecmwf, uri: "http://ecmwf-api.internal/v1"}
jwt: {iss: migrated, exp: 300, secret: short-secret}
logging: {level: info, format: json}
"#,
    );
    let mut s = TcpStream::connect(side.addr).await.unwrap();
    s.write_all(
        format!(
            "GET /authenticate HTTP/1.1\r\nHost: s\r\nConnection: close\r\nAuthorization: {}\r\n\r\n",
            common::basic("alice", "alicepass")
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let res = read_response(&mut s).await;
    assert!(res.starts_with("HTTP/1.1 200"), "{res}");
    let jwt = res
        .lines()
        .find_map(|l| l.strip_prefix("authorization: Bearer "))
        .expect("a minted token")
        .trim();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    v.validate_aud = false;
    let claims = jsonwebtoken::decode::<serde_json::Value>(
        jwt,
        &jsonwebtoken::DecodingKey::from_secret(b"short-secret").unwrap(),
        &v,
    )
    .expect("signed with the configured secret")
    .claims;
    assert_eq!(claims["username"], "alice");
    let log = side.log();
    assert!(log.contains("jwt.secret has 12 bytes"), "{log}");
    assert!(log.contains("providers[1].cert_uri is plain HTTP"), "{log}");
    assert!(log.contains("providers[2].uri is plain HTTP"), "{log}");
}

#[tokio::test]
async fn console_audit_fields_are_quoted_alike_and_shutdown_is_logged_once() {
    // Metrics on: two listeners drain, and the process still says so once.
    let mport = free_port();
    let mut side = SidecarProcess::start(&format!(
        r#"
version: "2.0.0"
server: {{host: 127.0.0.1, port: {{port}}}}
metrics: {{enabled: true, host: 127.0.0.1, port: {mport}}}
providers:
  - {{type: plain, name: users, realm: proc, users: [{{username: alice, password: alicepass, roles: [user]}}]}}
jwt: {{iss: proc, exp: 300, secret: {SECRET}}}
logging: {{level: info, format: console}}
rules:
  - {{path: /admin, roles: [admin]}}
"#
    ));
    for (user, pass, want) in [("alice", "wrong", "401"), ("alice", "alicepass", "403")] {
        let mut s = TcpStream::connect(side.addr).await.unwrap();
        s.write_all(&request(user, pass, "/admin", true))
            .await
            .unwrap();
        let res = read_response(&mut s).await;
        assert!(res.starts_with(&format!("HTTP/1.1 {want}")), "{res}");
    }
    side.stop();
    let log = side.log();
    let reasons: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("auth.decision") && l.contains("reason="))
        .map(|l| l.split("reason=").nth(1).unwrap_or(""))
        .collect();
    assert_eq!(reasons.len(), 2, "{log}");
    for r in reasons {
        assert!(r.starts_with('"'), "a reason with blanks is quoted: {r}");
    }
    let lines = |needle: &str| log.lines().filter(|l| l.contains(needle)).count();
    assert_eq!(lines("shutdown.signal"), 1, "{log}");
    assert_eq!(lines("shutdown.drained"), 1, "{log}");
}
