//! The token portal in a real browser: the shipped sidecar binary as its own process (a plain
//! provider, a services catalogue, tokens on SQLite, the portal on) and headless Chromium
//! (Debian `chromium`) driven through `tests/fixtures/portal/browser.mjs` (npm `playwright-core`
//! and `@axe-core/playwright`). The script only acts in the page; this file decides what to do,
//! asserts what a user sees, and checks every token the page hands out with its own HTTP client.
//! Feature `e2e`: a missing Chromium or missing npm packages fail the tests; the README's test
//! command installs both.
#![cfg(all(feature = "sidecar", feature = "e2e"))]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::client::{TestClient, TestResponse};
use common::process::{Proc, Scratch, SidecarProcess, free_port, program};
use reqwest::StatusCode;
use serde_json::{Value, json};

const SECRET: &str = "a-portal-browser-secret-of-32-bytes-or-more";
/// `jwt.secret` of examples/config.demo.yaml.
const DEMO_SECRET: &str = "demo-secret-do-not-use-in-production-0123456789";
const CSP: &str = "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/portal")
}

/// The sidecar with the portal on, its SQLite store in a scratch directory.
struct Portal {
    side: SidecarProcess,
    /// `http://127.0.0.1:PORT/portal`.
    base: String,
    _store: Scratch,
}

impl Portal {
    /// `extra`: YAML appended after the `portal` section: more of its keys (indented by two
    /// spaces), then top-level ones.
    async fn start(extra: &str) -> Portal {
        let store = Scratch::new("portal-store");
        let side = SidecarProcess::start(&format!(
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
      - {{username: root, password: rootpass, roles: [admin]}}
jwt: {{iss: proc, exp: 300, secret: {SECRET}}}
logging: {{level: debug, format: json}}
services:
  - name: polytope
    scopes: [read, write]
tokens:
  enabled: true
  store: "sqlite://{}/tokens.db"
rules:
  - path: /write
    scopes: {{polytope: [write]}}
portal:
  enabled: true
  admin_roles: [admin]
  public_url: "http://127.0.0.1:{{port}}"
{extra}
"#,
            store.path().display()
        ));
        Portal::running(side, store, ("alice", "alicepass")).await
    }

    /// The portal of `side` once its store is open (the API answers `user`).
    async fn running(side: SidecarProcess, store: Scratch, (user, pass): (&str, &str)) -> Portal {
        let portal = Portal {
            base: format!("http://{}/portal", side.addr),
            side,
            _store: store,
        };
        let started = Instant::now();
        while portal.tokens_of(user, pass).await.is_none() {
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "the sidecar never served /tokens; its log:\n{}",
                portal.side.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        portal
    }

    fn client(&self) -> TestClient {
        TestClient::at(self.side.addr)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The user's tokens as `GET /tokens` lists them, or `None` while the store is not open.
    async fn tokens_of(&self, user: &str, pass: &str) -> Option<Vec<Value>> {
        let res = self.client().get("/tokens").basic(user, pass).await;
        (res.status() == StatusCode::OK).then(|| {
            res.json::<Value>()["tokens"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
    }

    async fn tokens(&self, user: &str, pass: &str) -> Vec<Value> {
        self.tokens_of(user, pass).await.expect("GET /tokens")
    }

    /// `/authenticate` for `uri` with a Bearer token.
    async fn authenticate(&self, token: &str, uri: &str) -> TestResponse {
        self.client()
            .get("/authenticate")
            .bearer(token)
            .header("x-original-uri", uri)
            .await
    }
}

/// The claims of the JWT the sidecar minted into a 200 answer.
fn jwt_claims(res: &TestResponse) -> Value {
    jwt_claims_with(res, SECRET)
}

fn jwt_claims_with(res: &TestResponse, secret: &str) -> Value {
    let jwt = res
        .header("authorization")
        .strip_prefix("Bearer ")
        .expect("a minted JWT");
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    v.validate_aud = false;
    jsonwebtoken::decode::<Value>(
        jwt,
        &jsonwebtoken::DecodingKey::from_secret(secret.as_bytes()).unwrap(),
        &v,
    )
    .unwrap()
    .claims
}

/// Headless Chromium behind `browser.mjs`: one JSON command per line in, one answer per line out.
struct Browser {
    node: Proc,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    /// Leader of Chromium's own process group (Playwright detaches the browser from node's).
    chromium: Option<i64>,
    shots: PathBuf,
    dir: Scratch,
}

impl Browser {
    fn start(portal: &Portal) -> Browser {
        let chromium = program("chromium");
        let fixture = fixture_dir();
        for package in ["playwright-core", "@axe-core/playwright"] {
            assert!(
                fixture.join("node_modules").join(package).exists(),
                "npm package {package} is not installed in tests/fixtures/portal: run \
                 ./scripts/test-all.sh (it runs npm ci there)"
            );
        }
        let dir = Scratch::new("portal-browser");
        // Screenshots go with the scratch directory unless PORTAL_SCREENSHOTS names a place to keep them.
        let shots = std::env::var_os("PORTAL_SCREENSHOTS")
            .map(PathBuf::from)
            .unwrap_or_else(|| dir.path().join("shots"));
        std::fs::create_dir_all(&shots).unwrap();
        let log = std::fs::File::create(dir.path().join("node.log")).unwrap();
        let mut node = Proc::spawn(
            Command::new(program("node"))
                .arg(fixture.join("browser.mjs"))
                .env("CHROMIUM", chromium)
                .env("PORTAL", &portal.base)
                .env("OUT_DIR", &shots)
                // Playwright's throwaway profile lives here, so it goes with the directory.
                .env("TMPDIR", dir.path().join("tmp"))
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(log),
        );
        let stdin = node.child().stdin.take();
        let stdout = node.child().stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut b = Browser {
            node,
            stdin,
            lines,
            chromium: None,
            shots,
            dir,
        };
        let ready = b.next(Duration::from_secs(60));
        assert_eq!(ready["ready"], true, "{ready}");
        b.chromium = ready["pid"].as_i64();
        // Debian's Chromium is not the build playwright-core pins: say which one ran.
        eprintln!("chromium {}", ready["version"]);
        b
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("node.log")).unwrap_or_default()
    }

    fn next(&mut self, timeout: Duration) -> Value {
        match self.lines.recv_timeout(timeout) {
            Ok(line) => serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("browser.mjs printed {line:?} ({e})")),
            Err(e) => panic!("browser.mjs gave no answer ({e}); its log:\n{}", self.log()),
        }
    }

    /// Runs one command; a command the page could not do (no such label, button…) fails the test.
    fn run(&mut self, cmd: Value) -> Value {
        let stdin = self.stdin.as_mut().expect("browser open");
        writeln!(stdin, "{cmd}").unwrap();
        stdin.flush().unwrap();
        let answer = self.next(Duration::from_secs(60));
        assert_eq!(
            answer["ok"],
            true,
            "browser: {cmd} failed: {answer}\n{}",
            self.log()
        );
        answer
    }

    fn goto(&mut self, url: &str) -> Value {
        self.run(json!({"cmd": "goto", "url": url}))
    }

    /// Clicks the link or button with exactly this accessible name and waits for the next page.
    fn click(&mut self, name: &str) -> Value {
        self.run(json!({"cmd": "click", "name": name}))
    }

    fn login(&mut self, username: &str, password: &str) -> Value {
        self.run(json!({"cmd": "login", "username": username, "password": password}))
    }

    fn create(&mut self, name: &str, scopes: &[&str]) -> Value {
        self.run(json!({"cmd": "create", "name": name, "scopes": scopes}))
    }

    fn rows(&mut self) -> u64 {
        self.run(json!({"cmd": "rows"}))["rows"].as_u64().unwrap()
    }

    /// axe-core on the current page: no violation of any rule; and no portal page since the
    /// last scan logged an error (a CSP violation, a failing script).
    fn axe_clean(&mut self, page: &str) {
        let found = self.run(json!({"cmd": "axe"}));
        let violations = found["violations"].as_array().unwrap();
        assert!(
            violations.is_empty(),
            "axe-core on the {page} page: {}",
            serde_json::to_string_pretty(violations).unwrap()
        );
        let errors = found["console_errors"].as_array().unwrap();
        assert!(errors.is_empty(), "up to the {page} page: {errors:?}");
    }

    /// A full-page screenshot, checked to be a real PNG.
    fn screenshot(&mut self, file: &str) -> PathBuf {
        let path = PathBuf::from(
            self.run(json!({"cmd": "screenshot", "file": file}))["path"]
                .as_str()
                .unwrap(),
        );
        let png = std::fs::read(&path).unwrap();
        assert!(
            png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 2000,
            "{}",
            path.display()
        );
        path
    }

    /// The session cookie as the browser holds it.
    fn session_cookie(&mut self) -> Value {
        let cookies = self.run(json!({"cmd": "cookies"}));
        cookies["cookies"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "aot_portal")
            .cloned()
            .unwrap_or_else(|| panic!("no aot_portal cookie: {cookies}"))
    }

    fn shots(&self) -> &Path {
        &self.shots
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ask politely (Chromium and its profile go), then make sure: a test that failed halfway
        // may leave node stuck in a command.
        if let Some(mut stdin) = self.stdin.take() {
            let _ = writeln!(stdin, "{}", json!({"cmd": "close"}));
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut closed = false;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains("\"closed\":true") => {
                    closed = true;
                    break;
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        if !closed && let Some(pid) = self.chromium {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .stderr(Stdio::null())
                .status();
        }
        self.node.stop();
    }
}

/// The portal's audit and warning lines of a sidecar log, for failure messages.
fn portal_events(log: &str) -> String {
    log.lines()
        .filter(|l| l.contains("\"event_name\":\"portal."))
        .collect::<Vec<_>>()
        .join("\n")
}

fn text(page: &Value) -> &str {
    page["text"].as_str().unwrap_or_default()
}

fn assert_page(page: &Value, status: u16, h1: &str) {
    assert_eq!(page["status"], status, "{page}");
    assert_eq!(page["h1"], h1, "{page}");
}

/// Logs `user` in from the login page and lands on "Your tokens".
fn log_in(b: &mut Browser, portal: &Portal, user: &str, pass: &str) {
    let login = b.goto(&portal.url(""));
    assert_page(&login, 200, "Log in");
    let tokens = b.login(user, pass);
    assert_page(&tokens, 200, "Your tokens");
    assert!(
        tokens["url"].as_str().unwrap().ends_with("/portal/tokens"),
        "{tokens}"
    );
}

#[tokio::test]
async fn password_login_create_copy_use_at_authenticate_then_revoke() {
    let portal = Portal::start("").await;
    let mut b = Browser::start(&portal);

    let login = b.goto(&portal.url(""));
    assert_page(&login, 200, "Log in");
    assert!(login["url"].as_str().unwrap().ends_with("/portal/login"));
    assert_eq!(login["csp"], CSP);
    b.axe_clean("login");
    b.screenshot("login.png");
    let wrong = b.login("alice", "not-her-password");
    assert_page(&wrong, 401, "Log in");
    assert!(
        text(&wrong).contains("Wrong username or password."),
        "{wrong}"
    );
    b.axe_clean("failed login");

    let tokens = b.login("alice", "alicepass");
    assert_page(&tokens, 200, "Your tokens");
    assert!(text(&tokens).contains("alice"), "{tokens}");
    b.axe_clean("tokens (none yet)");

    let created = b.create("ci-read", &["polytope read"]);
    assert_eq!(created["status"], 201, "{created}");
    assert!(
        created["cache_control"]
            .as_str()
            .is_some_and(|c| c.contains("no-store")),
        "{created}"
    );
    assert!(
        text(&created).contains("Copy this token now. It will not be shown again."),
        "{created}"
    );
    let token = created["token"]
        .as_str()
        .unwrap_or_else(|| panic!("no New token input: {created}"))
        .to_owned();
    assert!(
        token.starts_with("aot_") && token.len() == 40,
        "{token:?} is not an aot_ token"
    );
    b.axe_clean("created");
    b.screenshot("created.png");
    let copied = b.run(json!({"cmd": "copy"}));
    assert_eq!(copied["clipboard"], token.as_str());
    assert_eq!(copied["live"], "polite");

    // The token from the page works at /authenticate with exactly the scope ticked.
    let ok = portal.authenticate(&token, "/read").await;
    assert_eq!(ok.status(), StatusCode::OK, "{}", ok.text());
    let claims = jwt_claims(&ok);
    assert_eq!(claims["username"], "alice");
    assert_eq!(claims["scopes"], json!({"polytope": ["read"]}));
    assert_eq!(
        portal.authenticate(&token, "/write").await.status(),
        StatusCode::FORBIDDEN
    );

    let list = b.click("Back to your tokens");
    assert_page(&list, 200, "Your tokens");
    let hint = format!("aot_…{}", &token[token.len() - 4..]);
    for shown in ["ci-read", "polytope: read", hint.as_str()] {
        assert!(text(&list).contains(shown), "{shown:?} missing: {list}");
    }
    assert!(!text(&list).contains(&token), "the list shows the secret");
    assert_eq!(b.rows(), 1);
    b.axe_clean("tokens (one)");
    let shot = b.screenshot("tokens.png");

    let confirm = b.click("Revoke ci-read");
    assert_eq!(confirm["status"], 200, "{confirm}");
    b.axe_clean("revoke confirmation");
    let after = b.click("Yes, revoke ci-read");
    assert_page(&after, 200, "Your tokens");
    assert!(after["url"].as_str().unwrap().ends_with("/portal/tokens"));
    assert!(text(&after).contains("revoked"), "{after}");
    b.axe_clean("tokens (revoked)");
    assert_eq!(
        portal.authenticate(&token, "/read").await.status(),
        StatusCode::UNAUTHORIZED
    );
    for file in ["login.png", "created.png", "tokens.png"] {
        assert!(b.shots().join(file).exists(), "{file}");
    }
    assert!(shot.starts_with(b.shots()));
    let log = portal.side.log();
    assert!(!log.contains(&token[4..]), "the log holds the secret");
}

#[tokio::test]
async fn a_reload_creates_no_second_token_and_logout_ends_the_session() {
    let portal = Portal::start("").await;
    let mut b = Browser::start(&portal);
    log_in(&mut b, &portal, "alice", "alicepass");
    let cookie = b.session_cookie();
    assert_eq!(cookie["httpOnly"], true, "{cookie}");
    assert_eq!(cookie["sameSite"], "Strict", "{cookie}");
    assert_eq!(cookie["path"], "/", "{cookie}");

    let created = b.create("once", &["polytope write"]);
    assert_eq!(created["status"], 201, "{created}");
    let token = created["token"].as_str().unwrap().to_owned();
    // A reload re-posts the form: the page says so and creates nothing, showing no secret.
    let again = b.run(json!({"cmd": "reload"}));
    assert_eq!(again["status"], 409, "{again}");
    assert!(
        text(&again).contains("This form was already submitted."),
        "{again}"
    );
    assert!(!text(&again).contains(&token[4..]), "{again}");
    b.axe_clean("already submitted");
    let tokens = portal.tokens("alice", "alicepass").await;
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    assert_page(&b.goto(&portal.url("/tokens")), 200, "Your tokens");
    assert_eq!(b.rows(), 1);

    // The session cookie replayed from elsewhere works while the session lives…
    let replay = format!("aot_portal={}", cookie["value"].as_str().unwrap());
    let res = portal
        .client()
        .get("/portal/tokens")
        .header("cookie", replay.as_str())
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().contains("Your tokens"), "{}", res.text());

    let out = b.click("Log out");
    assert_page(&out, 200, "Log in");
    assert!(out["url"].as_str().unwrap().ends_with("/portal/login"));
    // …and not after logout: the server forgot it.
    let res = portal
        .client()
        .get("/portal/tokens")
        .header("cookie", replay.as_str())
        .await;
    assert!(!res.text().contains("Your tokens"), "{}", res.text());
    assert!(res.text().contains("Log in"), "{}", res.text());
    assert_page(&b.goto(&portal.url("/tokens")), 200, "Log in");
}

#[tokio::test]
async fn a_cross_site_form_post_and_a_post_without_the_csrf_field_are_refused() {
    let portal = Portal::start("").await;
    let mut b = Browser::start(&portal);
    log_in(&mut b, &portal, "alice", "alicepass");

    // Another site posts the create form on the user's behalf: refused, nothing created.
    let forged = b.run(json!({
        "cmd": "attack",
        "action": portal.url("/tokens"),
        "fields": {"name": "evil", "csrf": "guess", "nonce": "guess", "scopes": "polytope:write"},
    }));
    assert_eq!(forged["sec_fetch_site"], "cross-site", "{forged}");
    assert_eq!(forged["status"], 403, "{forged}");
    // Login CSRF (logging the victim into the attacker's account) is refused the same way.
    let forged = b.run(json!({
        "cmd": "attack",
        "action": portal.url("/login"),
        "fields": {"username": "root", "password": "rootpass"},
    }));
    assert_eq!(forged["status"], 403, "{forged}");
    assert!(portal.tokens("alice", "alicepass").await.is_empty());
    assert!(portal.tokens("root", "rootpass").await.is_empty());

    // Same origin, but the hidden csrf field removed from the form: refused.
    assert_page(&b.goto(&portal.url("/tokens")), 200, "Your tokens");
    let stripped = b.run(json!({
        "cmd": "create", "name": "no-csrf", "scopes": ["polytope read"], "drop": ["csrf"],
    }));
    assert_eq!(stripped["status"], 403, "{stripped}");
    assert_eq!(stripped["token"], Value::Null, "{stripped}");
    assert!(portal.tokens("alice", "alicepass").await.is_empty());

    // A script holding the session cookie (no Origin, no Fetch Metadata) still needs the field.
    let cookie = b.session_cookie();
    let res = common::client()
        .post(portal.url("/tokens"))
        .header(
            "cookie",
            format!("aot_portal={}", cookie["value"].as_str().unwrap()),
        )
        .form(&[("name", "scripted"), ("scope:polytope", "read")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(portal.tokens("alice", "alicepass").await.is_empty());

    // The very same form, untouched, works: the refusals were about the forgery.
    assert_page(&b.goto(&portal.url("/tokens")), 200, "Your tokens");
    let created = b.create("with-csrf", &["polytope read"]);
    assert_eq!(created["status"], 201, "{created}");
    assert_eq!(portal.tokens("alice", "alicepass").await.len(), 1);
}

#[tokio::test]
async fn admin_revokes_any_token_and_every_page_passes_axe() {
    let portal = Portal::start("").await;
    // Alice's token, made through the API.
    let res = common::client()
        .post(format!("http://{}/tokens", portal.side.addr))
        .header("authorization", common::basic("alice", "alicepass"))
        .json(&json!({"name": "nightly", "scopes": {"polytope": ["read"]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let alices = res.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        portal.authenticate(&alices, "/read").await.status(),
        StatusCode::OK
    );

    let mut b = Browser::start(&portal);
    log_in(&mut b, &portal, "root", "rootpass");
    // Form errors name the field at the top (inputs the browser's own validation lets through).
    let blank = b.create("   ", &["polytope read"]);
    assert_eq!(blank["status"], 400, "{blank}");
    assert!(text(&blank).contains("Name: must not be empty"), "{blank}");
    b.axe_clean("form error");
    let past = b.run(json!({
        "cmd": "create", "name": "old", "scopes": ["polytope read"],
        "expires": "Custom date", "date": "2001-01-01",
    }));
    assert_eq!(past["status"], 400, "{past}");
    assert!(
        text(&past).contains("Expiry date: must be after today"),
        "{past}"
    );
    assert!(portal.tokens("root", "rootpass").await.is_empty());

    // Rotate behind its confirmation: a new secret, the old one dead.
    assert_page(&b.goto(&portal.url("/tokens")), 200, "Your tokens");
    let own = b.create("deploy", &["polytope write"]);
    let old = own["token"].as_str().unwrap().to_owned();
    b.click("Back to your tokens");
    let confirm = b.click("Rotate deploy");
    assert_eq!(confirm["status"], 200, "{confirm}");
    b.axe_clean("rotate confirmation");
    let rotated = b.click("Yes, rotate deploy");
    assert_eq!(rotated["status"], 201, "{rotated}");
    assert!(
        text(&rotated).contains("Copy this token now. It will not be shown again."),
        "{rotated}"
    );
    let new = rotated["token"].as_str().expect("the rotated secret");
    assert_ne!(new, old);
    let ok = portal.authenticate(new, "/write").await;
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(jwt_claims(&ok)["scopes"], json!({"polytope": ["write"]}));
    assert_eq!(
        portal.authenticate(&old, "/write").await.status(),
        StatusCode::UNAUTHORIZED
    );

    // Every user's tokens, and a revocation of alice's.
    b.goto(&portal.url("/tokens"));
    let admin = b.click("All tokens");
    assert_eq!(admin["status"], 200, "{admin}");
    assert!(
        admin["url"].as_str().unwrap().ends_with("/portal/admin"),
        "{admin}"
    );
    assert!(
        text(&admin).contains("nightly") && text(&admin).contains("alice"),
        "{admin}"
    );
    b.axe_clean("admin");
    let confirm = b.click("Revoke nightly of alice");
    assert_eq!(confirm["status"], 200, "{confirm}");
    b.axe_clean("admin revoke confirmation");
    let after = b.click("Yes, revoke nightly of alice");
    assert_eq!(after["status"], 200, "{after}");
    assert_eq!(
        portal.authenticate(&alices, "/read").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert!(portal.side.log().contains("token.revoked"));

    // A user without the admin role has no link and no page.
    assert_page(&b.click("Log out"), 200, "Log in");
    log_in(&mut b, &portal, "alice", "alicepass");
    let mine = b.goto(&portal.url("/tokens"));
    assert!(!text(&mine).contains("All tokens"), "{mine}");
    let refused = b.goto(&portal.url("/admin"));
    assert_eq!(refused["status"], 403, "{refused}");
    assert!(!text(&refused).contains("nightly"), "{refused}");
}

/// The real OpenID Provider of the provider tests (npm `oidc-provider`, `tests/fixtures/oidc`)
/// on `localhost`, another site than the portal on 127.0.0.1 (as a real IdP is), with a client
/// `portal` whose redirect URI is `redirect` and its development login pages.
fn identity_provider(port: u16, redirect: &str, dir: &Scratch) -> Proc {
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/oidc");
    assert!(
        fixture.join("node_modules/oidc-provider").exists(),
        "oidc-provider is not installed: run ./scripts/test-all.sh (it runs npm ci in tests/fixtures/oidc)"
    );
    let mut op = Proc::spawn(
        Command::new(program("node"))
            .arg(fixture.join("op.mjs"))
            .env("PORT", port.to_string())
            .env("KEYS_FILE", dir.path().join("op-keys.json"))
            .env("ISSUER_HOST", "localhost")
            .env("PORTAL_REDIRECT_URIS", redirect)
            .env("DEV_INTERACTIONS", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
    );
    let mut out = BufReader::new(op.child().stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(line.starts_with("ready"), "the OP did not start: {line:?}");
    // Keep draining: a closed pipe would kill the OP at its next log line.
    std::thread::spawn(move || for _ in out.lines() {});
    common::process::wait_listening(format!("127.0.0.1:{port}").parse().unwrap());
    op
}

#[tokio::test]
async fn oidc_login_through_the_real_provider_then_a_working_token() {
    let op_port = free_port();
    let portal = Portal::start(&format!(
        r#"  oidc:
    issuer: "http://localhost:{op_port}"
    client_id: portal
    client_secret: portal-secret
    name: Demo IdP
http: {{allow_http: true}}"#
    ))
    .await;
    let dir = Scratch::new("portal-op");
    let _op = identity_provider(op_port, &portal.url("/oidc/callback"), &dir);
    let mut b = Browser::start(&portal);

    assert_page(&b.goto(&portal.url("/login")), 200, "Log in");
    b.axe_clean("login with OpenID Connect");
    let back = b.run(json!({"cmd": "oidc", "button": "Log in with Demo IdP", "login": "olivia"}));
    assert!(
        back["url"].as_str().unwrap().ends_with("/portal/tokens"),
        "{back}\nthe sidecar's portal events:\n{}",
        portal_events(&portal.side.log())
    );
    assert_eq!(back["h1"], "Your tokens", "{back}");
    assert!(text(&back).contains("olivia"), "{back}");

    let created = b.create("from-sso", &["polytope read"]);
    assert_eq!(created["status"], 201, "{created}");
    let token = created["token"].as_str().unwrap();
    let ok = portal.authenticate(token, "/read").await;
    assert_eq!(ok.status(), StatusCode::OK);
    let claims = jwt_claims(&ok);
    assert_eq!(claims["username"], "olivia");
    assert_eq!(claims["scopes"], json!({"polytope": ["read"]}));
}

#[tokio::test]
async fn the_demo_config_gives_a_working_portal_to_its_demo_user() {
    // examples/config.demo.yaml as shipped, but on free ports and with its store in a scratch
    // directory instead of the working directory.
    let store = Scratch::new("portal-demo");
    let yaml = common::process::shipped(
        "config.demo.yaml",
        &[
            ("port: 8080", "port: {port}".to_owned()),
            ("port: 9090", format!("port: {}", free_port())),
            (
                "sqlite://aot-demo-tokens.db",
                format!("sqlite://{}/demo.db", store.path().display()),
            ),
        ],
    );
    let side = SidecarProcess::start(&yaml);
    let portal = Portal::running(side, store, ("alice", "wonderland")).await;
    let mut b = Browser::start(&portal);
    log_in(&mut b, &portal, "alice", "wonderland");
    let created = b.create("my-laptop", &["polytope read"]);
    assert_eq!(created["status"], 201, "{created}");
    let token = created["token"].as_str().unwrap().to_owned();
    let ok = portal.authenticate(&token, "/polytope/data").await;
    assert_eq!(ok.status(), StatusCode::OK, "{}", ok.text());
    assert_eq!(jwt_claims_with(&ok, DEMO_SECRET)["username"], "alice");
    let list = b.click("Back to your tokens");
    assert!(text(&list).contains("my-laptop"), "{list}");
    b.screenshot("demo-tokens.png");
}
