//! API tokens in the shipped sidecar binary: `/tokens` on the app port behind the layer, the
//! token used at `/authenticate` (rules `scopes:`, the minted JWT), SQLite that survives a
//! SIGKILL right after a 201, the admin commands, no secret in the process's log, and (feature
//! `e2e`) two replicas on one PostgreSQL and schemathesis (PyPI) against the served OpenAPI
//! document: no 5xx, every answer conforms, every request the document allows is accepted and
//! every one it forbids refused.
#![cfg(feature = "sidecar")]

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use common::process::{Scratch, SidecarProcess, sidecar_binary};
use common::{basic, client};
use reqwest::StatusCode;
use serde_json::{Value, json};

const SECRET: &str = "a-process-test-secret-of-32-bytes-or-more";

fn config(store: &str) -> String {
    format!(
        r#"
version: "2.0.0"
server: {{host: 127.0.0.1, port: {{port}}}}
metrics: {{enabled: false}}
providers:
  - type: plain
    name: users
    realm: proc
    users:
      - {{username: alice, password: alicepass, roles: [user]}}
      - {{username: bob, password: bobpass, roles: [user]}}
jwt: {{iss: proc, exp: 300, secret: {SECRET}}}
logging: {{level: debug, format: json}}
services:
  - name: polytope
    scopes: [read, write]
tokens:
  enabled: true
  store: "{store}"
  cache_ttl_seconds: 30
rules:
  - path: /write
    scopes: {{polytope: [write]}}
"#
    )
}

fn sqlite(dir: &Scratch) -> String {
    format!("sqlite://{}/tokens.db", dir.path().display())
}

async fn create(addr: SocketAddr, user: &str, pass: &str, scopes: Value) -> Value {
    let r = client()
        .post(format!("http://{addr}/tokens"))
        .header("authorization", basic(user, pass))
        .json(&json!({"name": "ci", "scopes": scopes}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    r.json().await.unwrap()
}

async fn authenticate(addr: SocketAddr, auth: &str, uri: &str) -> reqwest::Response {
    client()
        .get(format!("http://{addr}/authenticate"))
        .header("authorization", auth)
        .header("x-original-uri", uri)
        .send()
        .await
        .unwrap()
}

/// Alice revokes `created` through the API.
async fn revoke(addr: SocketAddr, created: &Value) -> reqwest::Response {
    client()
        .delete(format!(
            "http://{addr}/tokens/{}",
            created["id"].as_str().unwrap()
        ))
        .header("authorization", basic("alice", "alicepass"))
        .send()
        .await
        .unwrap()
}

fn jwt_claims(res: &reqwest::Response) -> Value {
    let h = res.headers()["authorization"].to_str().unwrap();
    let jwt = h.strip_prefix("Bearer ").unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    v.validate_aud = false;
    jsonwebtoken::decode::<Value>(
        jwt,
        &jsonwebtoken::DecodingKey::from_secret(SECRET.as_bytes()).unwrap(),
        &v,
    )
    .unwrap()
    .claims
}

/// Waits until the sidecar answers (the store opens in the background).
async fn ready(addr: SocketAddr) {
    let started = Instant::now();
    loop {
        let r = client()
            .get(format!("http://{addr}/tokens"))
            .header("authorization", basic("alice", "alicepass"))
            .send()
            .await;
        if r.is_ok_and(|r| r.status() == StatusCode::OK) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "store never opened"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_token_works_at_authenticate_and_survives_sigkill_right_after_201() {
    let dir = Scratch::new("tokens-sqlite");
    let yaml = config(&sqlite(&dir));
    let mut a = SidecarProcess::start(&yaml);
    ready(a.addr).await;
    let created = create(a.addr, "alice", "alicepass", json!({"polytope": ["read"]})).await;
    a.kill();
    let b = SidecarProcess::start(&yaml);
    ready(b.addr).await;
    let token = created["token"].as_str().unwrap();
    let bearer = format!("Bearer {token}");
    let r = authenticate(b.addr, &bearer, "/read").await;
    assert_eq!(r.status(), StatusCode::OK);
    let claims = jwt_claims(&r);
    assert_eq!(claims["username"], "alice");
    assert_eq!(claims["realm"], "proc");
    assert_eq!(claims["scopes"], json!({"polytope": ["read"]}));
    assert_eq!(claims["token_id"], created["id"]);
    // Rules: `scopes: {polytope: [write]}` refuses the read token, passes alice herself.
    assert_eq!(
        authenticate(b.addr, &bearer, "/write").await.status(),
        StatusCode::FORBIDDEN
    );
    let r = authenticate(b.addr, &basic("alice", "alicepass"), "/write").await;
    assert_eq!(r.status(), StatusCode::OK);
    let claims = jwt_claims(&r);
    assert_eq!(claims["scopes"], json!({"polytope": ["read", "write"]}));
    assert!(claims.get("token_id").is_none());
    // Revoked through the API: refused at once on this process.
    let r = revoke(b.addr, &created).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        authenticate(b.addr, &bearer, "/read").await.status(),
        StatusCode::UNAUTHORIZED
    );
    // The OpenAPI document is served, 3.1, naming every route.
    let doc: Value = client()
        .get(format!("http://{}/tokens/openapi.json", b.addr))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    for path in ["/tokens", "/tokens/{id}", "/tokens/{id}/rotate"] {
        assert!(doc["paths"][path].is_object(), "{path}");
    }
    let log = format!("{}{}", a.log(), b.log());
    assert!(!log.contains(token) && !log.contains(&token[4..]), "{log}");
    assert!(
        log.contains("token.created") && log.contains("token.revoked"),
        "{log}"
    );
}

fn admin(yaml_path: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(sidecar_binary())
        .arg("--config")
        .arg(yaml_path)
        .arg("tokens")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn admin_commands_list_revoke_and_prune_on_the_configured_store() {
    let dir = Scratch::new("tokens-admin");
    let yaml = config(&sqlite(&dir));
    let mut side = SidecarProcess::start(&yaml);
    ready(side.addr).await;
    let one = create(
        side.addr,
        "alice",
        "alicepass",
        json!({"polytope": ["read"]}),
    )
    .await;
    let two = create(
        side.addr,
        "alice",
        "alicepass",
        json!({"polytope": ["write"]}),
    )
    .await;
    let bobs = create(side.addr, "bob", "bobpass", json!({"polytope": ["read"]})).await;
    side.stop();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, yaml.replace("{port}", "1")).unwrap();
    let id = |v: &Value| v["id"].as_str().unwrap().to_owned();

    let (ok, out, err) = admin(&path, &["list", "alice"]);
    assert!(ok, "{err}");
    assert!(out.contains(&id(&one)) && out.contains(&id(&two)), "{out}");
    assert!(!out.contains(&id(&bobs)), "{out}");
    assert!(!out.contains(one["token"].as_str().unwrap()), "{out}");
    assert_eq!(out.matches("\tactive\t").count(), 2, "{out}");

    // By id alone: the owner is named in the output and the audit line.
    let (ok, out, err) = admin(&path, &["revoke", &id(&one)]);
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!("revoked {} of alice (proc)", id(&one))),
        "{out}"
    );
    // The owner is named as the owner, with the realm; the actor is the operator.
    let line = err
        .lines()
        .find(|l| l.contains("token.revoked"))
        .unwrap_or_else(|| panic!("{err}"));
    for field in ["owner", "realm", "actor"] {
        assert!(line.contains(field), "{field}: {line}");
    }
    assert!(
        line.contains("alice") && line.contains("proc") && line.contains("admin-cli"),
        "{line}"
    );
    assert!(
        !line.contains("user"),
        "`user` means the actor elsewhere: {line}"
    );
    let (ok, _, err) = admin(&path, &["revoke", &id(&one)]);
    assert!(!ok && err.contains("no active token"), "{err}");
    let (ok, _, err) = admin(&path, &["revoke", &id(&one), "--user", "alice"]);
    assert!(!ok && err.contains("no active token"), "{err}");
    let (ok, _, err) = admin(&path, &["revoke", &id(&bobs), "--user", "alice"]);
    assert!(!ok, "{err}");
    let (ok, out, _) = admin(&path, &["revoke-all", "bob", "--realm", "proc"]);
    assert!(ok && out.contains("revoked 1 token(s) of bob"), "{out}");
    let (ok, out, _) = admin(&path, &["prune"]);
    assert!(ok && out.contains("pruned 2 token(s)"), "{out}");
    assert!(
        out.contains("pruned 0 idle refresh-token chain(s)"),
        "{out}"
    );
    let (_, out, _) = admin(&path, &["list", "alice", "--realm", "proc"]);
    assert!(!out.contains(&id(&one)) && out.contains(&id(&two)), "{out}");
    let (ok, _, err) = admin(&path, &["frobnicate"]);
    assert!(!ok && err.contains("unknown tokens command"), "{err}");

    // The revocations hold in a new process: bob's token is refused, alice's second works.
    let side = SidecarProcess::start(&yaml);
    ready(side.addr).await;
    let bearer = |v: &Value| format!("Bearer {}", v["token"].as_str().unwrap());
    assert_eq!(
        authenticate(side.addr, &bearer(&bobs), "/").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        authenticate(side.addr, &bearer(&two), "/write")
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn bad_tokens_config_is_refused_naming_the_key() {
    let dir = Scratch::new("tokens-config");
    let path = dir.path().join("config.yaml");
    for (from, to, key) in [
        (
            "cache_ttl_seconds: 30",
            "cache_ttl_seconds: 99999",
            "tokens.cache_ttl_seconds",
        ),
        (
            "cache_ttl_seconds: 30",
            "max_lifetime_days: 0",
            "tokens.max_lifetime_days",
        ),
        (
            "cache_ttl_seconds: 30",
            "default_lifetime_days: 400",
            "tokens.default_lifetime_days",
        ),
        (
            "cache_ttl_seconds: 30",
            "prefix: \"no separator\"",
            "tokens.prefix",
        ),
        ("store: \"", "store: \"mysql://x", "tokens.store"),
        (
            "scopes: [read, write]",
            "scopes: [read, \"\"]",
            "services[0]",
        ),
    ] {
        let yaml = config(&sqlite(&dir))
            .replace(from, to)
            .replace("{port}", "1");
        std::fs::write(&path, &yaml).unwrap();
        let out = Command::new(sidecar_binary())
            .arg("--config")
            .arg(&path)
            .arg("--check")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{to}");
        assert!(err.contains(&format!("`{key}`")), "{to}: {err}");
    }
    let yaml = config(&sqlite(&dir))
        .replace(
            "cache_ttl_seconds: 30",
            "cache_ttl_seconds: 30\n  colour: blue",
        )
        .replace("{port}", "1");
    std::fs::write(&path, &yaml).unwrap();
    let out = Command::new(sidecar_binary())
        .arg("--config")
        .arg(&path)
        .arg("--check")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("unknown key `tokens.colour`"), "{stdout}");
}

#[cfg(feature = "e2e")]
#[tokio::test]
async fn two_replicas_on_one_postgresql_share_tokens_and_revocations() {
    let pg = common::postgres::Postgres::start();
    let yaml = config(&pg.url());
    let a = SidecarProcess::start(&yaml);
    let b = SidecarProcess::start(&yaml);
    ready(a.addr).await;
    ready(b.addr).await;
    let created = create(a.addr, "alice", "alicepass", json!({"polytope": ["read"]})).await;
    let bearer = format!("Bearer {}", created["token"].as_str().unwrap());
    // Created on A, works on B at once (and is now cached on B).
    assert_eq!(
        authenticate(b.addr, &bearer, "/").await.status(),
        StatusCode::OK
    );
    let r = revoke(a.addr, &created).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let revoked = Instant::now();
    // Revoked on A, refused on B within a second although B's cache TTL is 30 s.
    loop {
        let status = authenticate(b.addr, &bearer, "/").await.status();
        if status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert_eq!(status, StatusCode::OK);
        assert!(
            revoked.elapsed() < Duration::from_secs(1),
            "still accepted on B after {:?}",
            revoked.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!("revocation reached replica B after {:?}", revoked.elapsed());
}

/// schemathesis from `$SCHEMATHESIS` (set by scripts/test-all.sh) or `PATH`.
#[cfg(feature = "e2e")]
fn schemathesis() -> std::path::PathBuf {
    if let Some(p) = std::env::var_os("SCHEMATHESIS") {
        return std::path::PathBuf::from(p);
    }
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("schemathesis"))
        .find(|p| p.exists());
    found.expect(
        "schemathesis is not installed: run ./scripts/test-all.sh (it installs it into a venv), \
         or pip install schemathesis",
    )
}

#[cfg(feature = "e2e")]
#[test]
fn schemathesis_finds_no_server_error_and_no_schema_violation() {
    let st = schemathesis();
    let dir = Scratch::new("tokens-schemathesis");
    let side = SidecarProcess::start(&config(&sqlite(&dir)).replace(
        "    scopes: [read, write]\n",
        "    scopes: [read, write]\n  - {name: mars, scopes: [read]}\n",
    ));
    let out = Command::new(st)
        .arg("run")
        .arg(format!("http://{}/tokens/openapi.json", side.addr))
        .args([
            "--checks",
            "all",
            "--max-time",
            "30",
            "--wait-for-schema",
            "10",
        ])
        .arg("-H")
        .arg(format!("Authorization: {}", basic("alice", "alicepass")))
        .env("NO_COLOR", "1")
        .current_dir(dir.path())
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis failed:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(report.contains("No issues found"), "{report}");
    // Hundreds of tokens were created and rotated: the log holds none of their secrets.
    let log = side.log();
    assert!(log.contains("token.created"), "{log}");
    let leaked = log.match_indices("aot_").any(|(i, _)| {
        log[i + 4..]
            .bytes()
            .take(36)
            .filter(u8::is_ascii_alphanumeric)
            .count()
            == 36
    });
    assert!(!leaked, "a token secret in the log");
}
