//! The token portal over real TCP, as a browser uses it (cookies, forms, redirects): log-in
//! through the authenticator (one failure text, rate limits, no token logins), sessions
//! (cookie attributes, a new id at login, logout ends it in the store), CSRF (Fetch Metadata,
//! Origin, the form token), the one-time secret and the replay guard, rotate and revoke, the
//! administrators' page and its audit line; then the shipped sidecar binary: SQLite sessions
//! survive a restart and the created secret works at `/authenticate`; (feature `e2e`) two
//! replicas on one PostgreSQL share a session.
#![cfg(feature = "sidecar")]

mod common;

use common::portal::Browser;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use auth_o_tron::augment::{AugmentError, Augmentation, Augmenter, AugmenterInfo};
use auth_o_tron::credentials::Scheme;
use auth_o_tron::portal::{self, PortalSettings};
use auth_o_tron::provider::{BoxFuture, PlainProvider, ProviderInfo};
use auth_o_tron::token::{Catalogue, MemoryStore, Owner, TokenProvider, TokenSettings, TokenStore};
use auth_o_tron::{Authenticator, Scopes, User};
use reqwest::StatusCode;

const WRONG: &str = "Wrong username or password.";

struct App {
    addr: SocketAddr,
    store: Arc<MemoryStore>,
    auth: Authenticator,
    /// While set, an augmenter (an LDAP group, say) gives alice the `admin` role.
    alice_admin: Arc<AtomicBool>,
}

struct AdminGroup(Arc<AtomicBool>);

impl Augmenter for AdminGroup {
    fn info(&self) -> &AugmenterInfo {
        static INFO: std::sync::LazyLock<AugmenterInfo> =
            std::sync::LazyLock::new(|| AugmenterInfo::new("admins", "test", "demo"));
        &INFO
    }
    fn augment<'a>(&'a self, u: &'a User) -> BoxFuture<'a, Result<Augmentation, AugmentError>> {
        let on = self.0.load(Ordering::SeqCst) && u.username == "alice";
        let roles = if on { vec!["admin".to_owned()] } else { vec![] };
        Box::pin(async move {
            Ok(Augmentation {
                roles,
                attributes: Default::default(),
            })
        })
    }
}

fn catalogue() -> Catalogue {
    Catalogue::new()
        .service("polytope", ["read", "write"])
        .unwrap()
}

/// API keys of an `ecmwf-api`-kind provider: one plain user, one holding only some scopes.
fn keys() -> common::Tokens {
    let mut keys = common::Tokens::new("keys", "keys");
    keys.info = ProviderInfo::new("keys", "ecmwf-api", "keys", Scheme::Bearer);
    keys.token("good-key", User::new("carol", "keys"), None)
        .token(
            "scoped-key",
            User::new("dave", "keys").with_scopes(Scopes::from_scope_string("keys", "read")),
            None,
        )
}

async fn app() -> App {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    app_on(listener, |_| {}).await
}

/// The portal (admins: role `admin`) served on `listener`, its settings changed by `tweak`.
async fn app_on(listener: tokio::net::TcpListener, tweak: impl FnOnce(&mut PortalSettings)) -> App {
    let store = Arc::new(MemoryStore::new());
    let dyn_store: Arc<dyn TokenStore> = store.clone();
    let settings = TokenSettings::new(catalogue()).lifetime_days(30, 90);
    let users = PlainProvider::new("local", "demo")
        .with_user_password("alice", "wonderland", ["user"])
        .unwrap()
        .with_user_password("bob", "builder", ["user", "admin"])
        .unwrap();
    let alice_admin = Arc::new(AtomicBool::new(false));
    let auth = Authenticator::builder()
        .provider(users)
        .augmenter(AdminGroup(alice_admin.clone()))
        .provider(keys())
        .provider(TokenProvider::new(
            "tokens",
            dyn_store.clone(),
            settings.clone(),
        ))
        .build()
        .unwrap();
    auth_o_tron::token::evict_on_revocation(&*dyn_store, &auth);
    let mut portal_settings = PortalSettings::default();
    portal_settings.admin_roles = vec!["admin".into()];
    tweak(&mut portal_settings);
    let router = portal::router(dyn_store, settings, &auth, portal_settings).unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap()
    });
    App {
        addr,
        store,
        auth,
        alice_admin,
    }
}

fn alice() -> Owner {
    Owner::new("alice", "demo")
}

async fn authenticates(auth: &Authenticator, secret: &str) -> Option<User> {
    let mut h = http::HeaderMap::new();
    h.insert("authorization", format!("Bearer {secret}").parse().unwrap());
    auth.authenticate(&h).await.ok().map(|p| p.user().clone())
}

#[tokio::test]
async fn unknown_user_and_wrong_password_get_one_401_and_success_sets_a_strict_cookie() {
    let app = app().await;
    let mut b = Browser::new(app.addr);
    let root = b.get("/portal").await;
    assert_eq!(root.status, StatusCode::SEE_OTHER);
    assert_eq!(root.header("location"), "/portal/login");
    let page = b.get("/portal/login").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains("<h1>Log in</h1>"));
    assert!(
        page.text.contains("Log in with API key"),
        "key form: {}",
        page.text
    );
    for (user, pass) in [("nobody", "wonderland"), ("alice", "wrong")] {
        let p = b.login(user, pass).await;
        assert_eq!(p.status, StatusCode::UNAUTHORIZED, "{user}");
        assert!(p.text.contains(WRONG), "{user}: {}", p.text);
        assert!(b.cookie.is_none(), "no session for a failed login");
    }
    let ok = b.login("alice", "wonderland").await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    assert_eq!(ok.header("location"), "/portal/tokens");
    let cookie = ok.header("set-cookie");
    assert!(cookie.starts_with("aot_portal="), "{cookie}");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attr), "{attr} in {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    assert!(
        !cookie.contains("Max-Age") && !cookie.contains("Expires"),
        "a session cookie, gone when the browser closes: {cookie}"
    );
    let list = b.get("/portal/tokens").await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.text.contains("<h1>Your tokens</h1>"));
    assert!(list.text.contains("alice"));
    for page in [&page, &list] {
        assert_eq!(
            page.header("content-security-policy"),
            "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
        );
        assert_eq!(page.header("x-content-type-options"), "nosniff");
        assert_eq!(page.header("referrer-policy"), "same-origin");
        assert_eq!(page.header("cache-control"), "no-store");
        assert!(!page.text.contains("<script>"), "no inline script");
        assert!(!page.text.contains("style="), "no inline style");
    }
    let js = b.get("/portal/static/portal.js").await;
    assert_eq!(js.status, StatusCode::OK);
    assert!(js.header("content-type").starts_with("text/javascript"));
    assert!(js.text.contains("clipboard"));
}

/// Chromium sends `Origin: null` on a form POST when the page's policy is `no-referrer`; with
/// `same-origin` it sends the page's origin, which the portal accepts.
#[tokio::test]
async fn the_referrer_policy_keeps_the_browsers_origin_on_same_origin_posts() {
    let app = app().await;
    let mut b = Browser::new(app.addr);
    let page = b.get("/portal/login").await;
    assert_eq!(page.header("referrer-policy"), "same-origin");
    let ok = b.login("alice", "wonderland").await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.text);
    let mut other = Browser::new(app.addr);
    let url = format!("{}/portal/login", other.base);
    let null = other
        .client
        .post(&url)
        .header("origin", "null")
        .header("sec-fetch-site", "same-origin")
        .form(&[("username", "alice"), ("password", "wonderland")]);
    assert_eq!(other.send(null).await.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn over_https_the_cookie_is_host_prefixed_and_secure_and_only_that_origin_may_post() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app = app_on(listener, |s| {
        s.public_origin = Some("https://tokens.example.org".into())
    })
    .await;
    let mut b = Browser::new(app.addr);
    let form = [("username", "alice"), ("password", "wonderland")];
    let url = format!("{}/portal/login", b.base);
    // The Host-derived origin is not enough once the public origin is set.
    let own_host = b.client.post(&url).header("origin", &b.base).form(&form);
    assert_eq!(b.send(own_host).await.status, StatusCode::FORBIDDEN);
    let ok = b
        .send(
            b.client
                .post(&url)
                .header("origin", "https://tokens.example.org")
                .form(&form),
        )
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    let cookie = ok.header("set-cookie");
    assert!(cookie.starts_with("__Host-aot_portal="), "{cookie}");
    for attr in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attr), "{attr} in {cookie}");
    }
    assert!(!cookie.contains("Domain"), "{cookie}");
}

#[tokio::test]
async fn failed_logins_are_limited_per_username_with_retry_after() {
    let app = app().await;
    let mut b = Browser::new(app.addr);
    for i in 0..5 {
        let p = b.login("alice", "wrong").await;
        assert_eq!(p.status, StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    // Even the right password waits now: the limit is checked before the password.
    let p = b.login("alice", "wonderland").await;
    assert_eq!(p.status, StatusCode::TOO_MANY_REQUESTS, "{}", p.text);
    let wait: u64 = p.header("retry-after").parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert!(
        p.text.contains(&format!(
            "Too many login attempts. Try again in {wait} seconds."
        )),
        "{}",
        p.text
    );
    assert!(b.cookie.is_none());
}

/// A browser on another loopback address (127.0.0.`n`): another client for the limits.
fn browser_from(addr: SocketAddr, n: u8) -> Browser {
    let mut b = Browser::new(addr);
    b.client = reqwest::Client::builder()
        .no_proxy()
        .local_address(std::net::IpAddr::from([127, 0, 0, n]))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    b
}

#[tokio::test]
async fn parallel_wrong_passwords_get_at_most_the_limit_of_401s() {
    let first = app().await;
    let b = Browser::new(first.addr);
    let mut tries = tokio::task::JoinSet::new();
    for _ in 0..40 {
        let mut b = b.clone();
        tries.spawn(async move { b.login("alice", "wrong").await.status });
    }
    let statuses = tries.join_all().await;
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let limited = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert!(refused <= 5, "{refused} wrong passwords checked, limit 5");
    assert_eq!(refused + limited, 40, "{statuses:?}");
    // A success gives its attempt back: a user who logs in uses up nothing.
    let fresh = app().await;
    let mut b = Browser::new(fresh.addr);
    for _ in 0..8 {
        assert_eq!(
            b.login("alice", "wonderland").await.status,
            StatusCode::SEE_OTHER
        );
        b.cookie = None;
    }
}

#[tokio::test]
async fn wrong_passwords_from_other_clients_do_not_lock_the_user_out() {
    let app = app().await;
    // Five failures from one address block that address for alice, even the right password.
    let mut attacker = browser_from(app.addr, 2);
    for _ in 0..5 {
        assert_eq!(
            attacker.login("alice", "wrong").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        attacker.login("alice", "wonderland").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Four more addresses, four failures each: alice, from her own address, still logs in.
    for n in 3..7 {
        let mut b = browser_from(app.addr, n);
        for _ in 0..4 {
            assert_eq!(
                b.login("alice", "wrong").await.status,
                StatusCode::UNAUTHORIZED
            );
        }
    }
    let mut alice = browser_from(app.addr, 20);
    assert_eq!(
        alice.login("alice", "wonderland").await.status,
        StatusCode::SEE_OTHER
    );
    // A heavy attack (ten times the limit on one username) stops even a fresh client.
    for n in 7..15 {
        let mut b = browser_from(app.addr, n);
        for _ in 0..4 {
            b.login("alice", "wrong").await;
        }
    }
    let mut late = browser_from(app.addr, 21);
    assert_eq!(
        late.login("alice", "wonderland").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn a_user_keeps_at_most_twenty_sessions_and_oidc_starts_are_limited_per_client() {
    let app = app().await;
    let mut first = Browser::new(app.addr);
    assert_eq!(
        first.login("alice", "wonderland").await.status,
        StatusCode::SEE_OTHER
    );
    // Store times are in seconds: the first session is the oldest once a second has passed.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let mut last = first.clone();
    for _ in 0..20 {
        last = Browser::new(app.addr);
        assert_eq!(
            last.login("alice", "wonderland").await.status,
            StatusCode::SEE_OTHER
        );
    }
    // The 21st login deleted the oldest session.
    assert_eq!(
        first.get("/portal/tokens").await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(last.get("/portal/tokens").await.status, StatusCode::OK);

    // Every start of an OpenID Connect login stores a state: 20 a minute per client (the IdP
    // here is down, so each answers 503), then 429.
    use auth_o_tron::Secret;
    use auth_o_tron::portal::OidcSettings;
    use auth_o_tron::provider::client::HttpClient;
    let http = HttpClient::builder().allow_http(true).build().unwrap();
    let oidc = OidcSettings::new("http://127.0.0.1:1", "portal", Secret::new("s"), http);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let app = app_on(listener, |s| {
        s.oidc = Some(oidc);
        s.public_origin = Some(origin);
    })
    .await;
    let mut b = Browser::new(app.addr);
    for i in 0..20 {
        let p = b.get("/portal/oidc/start").await;
        assert_eq!(p.status, StatusCode::SERVICE_UNAVAILABLE, "start {i}");
    }
    let p = b.get("/portal/oidc/start").await;
    assert_eq!(p.status, StatusCode::TOO_MANY_REQUESTS, "{}", p.text);
    // Another client is not affected.
    let mut other = browser_from(app.addr, 9);
    assert_eq!(
        other.get("/portal/oidc/start").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[tokio::test]
async fn a_session_in_use_outlives_a_short_idle_timeout() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app = app_on(listener, |s| {
        s.session_idle = std::time::Duration::from_secs(4)
    })
    .await;
    let mut b = Browser::new(app.addr);
    assert_eq!(
        b.login("alice", "wonderland").await.status,
        StatusCode::SEE_OTHER
    );
    // A request every 1.2 s for 6 s: past the 4 s idle timeout, still logged in.
    for i in 0..5 {
        tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
        let p = b.get("/portal/tokens").await;
        assert_eq!(p.status, StatusCode::OK, "request {i}");
    }
}

#[tokio::test]
async fn without_a_public_url_only_the_plain_http_origin_of_the_host_may_post() {
    let app = app().await;
    let mut b = Browser::new(app.addr);
    let url = format!("{}/portal/login", b.base);
    let form = [("username", "alice"), ("password", "wonderland")];
    let https = format!("https://{}", app.addr);
    let req = b.client.post(&url).header("origin", &https).form(&form);
    assert_eq!(b.send(req).await.status, StatusCode::FORBIDDEN, "{https}");
    assert_eq!(
        b.login("alice", "wonderland").await.status,
        StatusCode::SEE_OTHER
    );
    // OpenID Connect needs the public origin: the redirect URI is never built from Host.
    use auth_o_tron::Secret;
    use auth_o_tron::portal::OidcSettings;
    use auth_o_tron::provider::client::HttpClient;
    let http = HttpClient::builder().allow_http(true).build().unwrap();
    let mut settings = PortalSettings::default();
    settings.oidc = Some(OidcSettings::new(
        "http://127.0.0.1:1",
        "portal",
        Secret::new("s"),
        http,
    ));
    let err = settings.validate().unwrap_err().to_string();
    assert!(err.contains("public origin"), "{err}");
    use auth_o_tron::sidecar::config::Config;
    let yaml = r#"
version: "2.0.0"
server: {host: 127.0.0.1, port: 8080}
providers:
  - {type: plain, name: users, realm: demo, users: [{username: alice, password: alicepass}]}
jwt: {iss: portal, exp: 300, secret: a-portal-test-secret-of-32-bytes-or-more}
tokens: {enabled: true}
portal:
  enabled: true
  oidc: {issuer: "http://127.0.0.1:1", client_id: portal, client_secret: s}
"#;
    let loaded = Config::from_yaml(yaml, Vec::<(String, String)>::new()).unwrap();
    let err = loaded.config.build().unwrap_err().to_string();
    assert!(err.contains("portal.public_url"), "{err}");
    // With it, the configuration is complete; the owner's claim is configurable (default
    // `sub`, which an IdP never reassigns).
    let yaml = yaml.replace(
        "client_secret: s}",
        "client_secret: s, username_claim: email}\n  public_url: http://127.0.0.1:8080",
    );
    let loaded = Config::from_yaml(&yaml, Vec::<(String, String)>::new()).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let http = HttpClient::builder().allow_http(true).build().unwrap();
    let oidc = OidcSettings::new("http://127.0.0.1:1", "portal", Secret::new("s"), http);
    assert_eq!(oidc.username_claim, "sub");
}

#[tokio::test]
async fn a_failed_login_is_audited_with_the_attempted_username() {
    let (logs, _guard) = common::logs::Captured::start();
    let app = app().await;
    let mut b = Browser::new(app.addr);
    assert_eq!(
        b.login("alice", "wrong").await.status,
        StatusCode::UNAUTHORIZED
    );
    let forged = format!(
        "mallory\nevent_name=portal.login user=admin{}",
        "x".repeat(100)
    );
    assert_eq!(
        b.login(&forged, "wrong").await.status,
        StatusCode::UNAUTHORIZED
    );
    let audit = strip_ansi(&logs.text());
    let failed: Vec<&str> = audit
        .lines()
        .filter(|l| l.contains("portal.login.failed"))
        .collect();
    assert_eq!(failed.len(), 2, "{audit}");
    assert!(
        failed[0].contains("user=alice") && failed[0].contains("client=127.0.0.1"),
        "{}",
        failed[0]
    );
    assert!(
        failed[1].contains("user=mallory\\nevent_name"),
        "escaped: {}",
        failed[1]
    );
    assert!(
        !failed[1].contains(&"x".repeat(60)),
        "truncated: {}",
        failed[1]
    );
    assert!(
        !audit
            .lines()
            .any(|l| l.starts_with("event_name=portal.login")),
        "{audit}"
    );
}

#[tokio::test]
async fn a_role_removed_from_the_directory_ends_admin_rights_in_open_sessions() {
    let app = app().await;
    app.alice_admin.store(true, Ordering::SeqCst);
    let mut b = Browser::new(app.addr);
    assert_eq!(
        b.login("alice", "wonderland").await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(b.get("/portal/admin").await.status, StatusCode::OK);
    // The group loses alice: her open session is no longer an administrator's.
    app.alice_admin.store(false, Ordering::SeqCst);
    assert_eq!(b.get("/portal/admin").await.status, StatusCode::FORBIDDEN);
    let list = b.get("/portal/tokens").await;
    assert!(!list.text.contains("All tokens"), "{}", list.text);
}

#[tokio::test]
async fn login_rotates_the_session_id_and_logout_ends_it_in_the_store() {
    let app = app().await;
    let mut b = Browser::new(app.addr);
    b.login("alice", "wonderland").await;
    let first = b.cookie.clone().unwrap();
    let mut old = b.clone();
    b.login("alice", "wonderland").await;
    let second = b.cookie.clone().unwrap();
    assert_ne!(first, second, "a new session id at every login");
    let refused = old.get("/portal/tokens").await;
    assert_eq!(
        refused.status,
        StatusCode::SEE_OTHER,
        "the replaced session is gone"
    );
    assert_eq!(refused.header("location"), "/portal/login");

    let list = b.get("/portal/tokens").await;
    let csrf = list.hidden("csrf");
    let mut copy = b.clone();
    let out = b.post("/portal/logout", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.header("location"), "/portal/login");
    assert!(out.header("set-cookie").contains("Max-Age=0"));
    // The old cookie, replayed by someone who kept it, opens nothing.
    let after = copy.get("/portal/tokens").await;
    assert_eq!(after.status, StatusCode::SEE_OTHER);
    assert_eq!(after.header("location"), "/portal/login");
}

#[tokio::test]
async fn sessions_end_at_the_idle_timeout_and_at_the_absolute_timeout() {
    use std::time::Duration;
    for (idle, max) in [(1, 3600), (3600, 1)] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let app = app_on(listener, |s| {
            s.session_idle = Duration::from_secs(idle);
            s.session_max = Duration::from_secs(max);
        })
        .await;
        let mut b = Browser::new(app.addr);
        b.login("alice", "wonderland").await;
        assert_eq!(b.get("/portal/tokens").await.status, StatusCode::OK);
        tokio::time::sleep(Duration::from_millis(2100)).await;
        let p = b.get("/portal/tokens").await;
        assert_eq!(
            p.status,
            StatusCode::SEE_OTHER,
            "idle {idle} s, max {max} s"
        );
        assert_eq!(p.header("location"), "/portal/login");
    }
}

#[test]
fn the_portal_section_needs_tokens_and_warns_about_unknown_keys() {
    use auth_o_tron::sidecar::config::Config;
    let without_tokens = r#"
version: "2.0.0"
server: {host: 127.0.0.1, port: 8080}
providers:
  - {type: plain, name: users, realm: demo, users: [{username: alice, password: alicepass}]}
jwt: {iss: portal, exp: 300, secret: a-portal-test-secret-of-32-bytes-or-more}
portal: {enabled: true, frobnicate: 1}
"#;
    let loaded = Config::from_yaml(without_tokens, Vec::<(String, String)>::new()).unwrap();
    assert!(
        loaded
            .warnings
            .iter()
            .any(|w| w.contains("portal.frobnicate")),
        "{:?}",
        loaded.warnings
    );
    let err = loaded.config.build().unwrap_err().to_string();
    assert!(
        err.contains("portal.enabled") && err.contains("tokens.enabled"),
        "{err}"
    );
    let bad_path = format!("{without_tokens}tokens: {{enabled: true}}\n").replace(
        "portal: {enabled: true, frobnicate: 1}",
        "portal: {enabled: true, path: /portal/}",
    );
    let loaded = Config::from_yaml(&bad_path, Vec::<(String, String)>::new()).unwrap();
    let err = loaded.config.build().unwrap_err().to_string();
    assert!(
        err.contains("portal") && err.contains("trailing slash"),
        "{err}"
    );
}

#[tokio::test]
async fn cross_site_posts_and_missing_or_wrong_form_tokens_are_refused() {
    let app = app().await;
    let mut b = Browser::new(app.addr);
    b.login("alice", "wonderland").await;
    let list = b.get("/portal/tokens").await;
    let (csrf, nonce) = (list.hidden("csrf"), list.hidden("nonce"));
    let url = format!("{}/portal/tokens", b.base);
    let form = |csrf: &str| {
        vec![
            ("csrf".to_owned(), csrf.to_owned()),
            ("nonce".to_owned(), nonce.clone()),
            ("name".to_owned(), "ci".to_owned()),
            ("scope:polytope".to_owned(), "read".to_owned()),
        ]
    };
    let cases: Vec<(&str, reqwest::RequestBuilder)> = vec![
        (
            "Sec-Fetch-Site: cross-site",
            b.client
                .post(&url)
                .header("sec-fetch-site", "cross-site")
                .form(&form(&csrf)),
        ),
        (
            "Sec-Fetch-Site: same-site",
            b.client
                .post(&url)
                .header("sec-fetch-site", "same-site")
                .form(&form(&csrf)),
        ),
        (
            "a foreign Origin",
            b.client
                .post(&url)
                .header("origin", "http://localhost:1")
                .form(&form(&csrf)),
        ),
        (
            "no csrf field",
            b.client.post(&url).form(&form("")[1..].to_vec()),
        ),
        (
            "a wrong csrf",
            b.client.post(&url).form(&form(&"x".repeat(43))),
        ),
    ];
    for (what, req) in cases {
        let p = b.send(req).await;
        assert_eq!(p.status, StatusCode::FORBIDDEN, "{what}: {}", p.text);
        assert!(p.secret().is_none());
    }
    // Login forms are checked too.
    let p = b
        .send(
            b.client
                .post(format!("{}/portal/login", b.base))
                .header("sec-fetch-site", "cross-site")
                .form(&[("username", "alice"), ("password", "wonderland")]),
        )
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    // A bidi override would make "txt\u{202e}exe.doc" read as something else in the list.
    let (bidi, _) = b
        .create("report\u{202e}cod.exe", &[("polytope", "read")])
        .await;
    assert_eq!(bidi.status, StatusCode::BAD_REQUEST);
    assert!(
        bidi.text
            .contains("Name: must not contain control or format characters"),
        "{}",
        bidi.text
    );
    assert!(app.store.list(&alice()).await.unwrap().is_empty());
}

#[tokio::test]
async fn the_secret_is_shown_once_and_a_replayed_form_creates_nothing() {
    let app = app().await;
    let mut b = Browser::new(app.addr);
    b.login("alice", "wonderland").await;
    let (created, form) = b.create("ci-deploy", &[("polytope", "read")]).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.header("cache-control"), "no-store");
    assert!(
        created
            .text
            .contains("Copy this token now. It will not be shown again.")
    );
    assert!(created.text.contains("aria-live=\"polite\""));
    let secret = created.secret().expect("the secret on the page");
    let user = authenticates(&app.auth, &secret)
        .await
        .expect("the secret works");
    assert_eq!(user.username, "alice");
    assert!(user.scopes.allows("polytope", "read"));
    assert!(!user.scopes.allows("polytope", "write"));

    // A reload re-POSTs the same form.
    let borrowed: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let again = b.post("/portal/tokens", &borrowed).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(again.text.contains("This form was already submitted."));
    assert!(again.secret().is_none());
    assert_eq!(app.store.list(&alice()).await.unwrap().len(), 1);

    // The list shows the hint, never the secret.
    let list = b.get("/portal/tokens").await;
    assert!(list.text.contains("ci-deploy"));
    assert!(list.text.contains("polytope: read"));
    assert!(list.text.contains("never"));
    assert!(!list.text.contains(&secret));
    assert!(
        list.text
            .contains(&format!("aot_…{}", &secret[secret.len() - 4..]))
    );
}

#[tokio::test]
async fn a_form_nonce_used_by_someone_else_spends_nothing_of_the_owners() {
    let app = app().await;
    let mut alice_b = Browser::new(app.addr);
    alice_b.login("alice", "wonderland").await;
    let page = alice_b.get("/portal/tokens").await;
    let nonce = page.hidden("nonce");
    // Bob submits his own form with alice's nonce (seen over her shoulder, or chosen by him).
    let mut bob = Browser::new(app.addr);
    bob.login("bob", "builder").await;
    let csrf = bob.get("/portal/tokens").await.hidden("csrf");
    let form = [
        ("csrf", csrf.as_str()),
        ("nonce", nonce.as_str()),
        ("name", "bobs"),
        ("scope:polytope", "read"),
        ("expires", "30"),
    ];
    assert_eq!(
        bob.post("/portal/tokens", &form).await.status,
        StatusCode::CREATED
    );
    // Alice's form still creates her token; a reload of it still creates nothing more.
    let csrf = page.hidden("csrf");
    let form = [
        ("csrf", csrf.as_str()),
        ("nonce", nonce.as_str()),
        ("name", "alices"),
        ("scope:polytope", "read"),
        ("expires", "30"),
    ];
    let created = alice_b.post("/portal/tokens", &form).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let again = alice_b.post("/portal/tokens", &form).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(app.store.list(&alice()).await.unwrap().len(), 1);
}

#[tokio::test]
async fn bad_create_input_names_the_field_with_400() {
    let app = app().await;
    let mut b = Browser::new(app.addr);
    b.login("alice", "wonderland").await;
    let (empty, _) = b.create("  ", &[("polytope", "read")]).await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);
    assert!(empty.text.contains("role=\"alert\""));
    assert!(
        empty.text.contains("Name: must not be empty"),
        "{}",
        empty.text
    );
    let (none, _) = b.create("ci", &[]).await;
    assert_eq!(none.status, StatusCode::BAD_REQUEST);
    assert!(
        none.text.contains("Scopes: at least one scope is required"),
        "{}",
        none.text
    );
    let (unknown, _) = b.create("ci", &[("mars", "read")]).await;
    assert!(
        unknown.text.contains("Scopes: unknown service"),
        "{}",
        unknown.text
    );
    assert!(app.store.list(&alice()).await.unwrap().is_empty());
}

#[tokio::test]
async fn rotate_and_revoke_go_through_a_confirmation() {
    let app = app().await;
    let mut b = Browser::new(app.addr);
    b.login("alice", "wonderland").await;
    let (created, _) = b.create("ci", &[("polytope", "write")]).await;
    let old = created.secret().unwrap();
    let list = b.get("/portal/tokens").await;
    let id = list.ids("rotate").pop().unwrap();
    let confirm = b.get(&format!("/portal/tokens/{id}/rotate")).await;
    assert_eq!(confirm.status, StatusCode::OK);
    assert!(confirm.text.contains("Yes, rotate ci"));
    assert!(confirm.text.contains(">Cancel<"));
    let rotated = b
        .post(
            &format!("/portal/tokens/{id}/rotate"),
            &[("csrf", &confirm.hidden("csrf"))],
        )
        .await;
    assert_eq!(rotated.status, StatusCode::CREATED, "{}", rotated.text);
    let new = rotated.secret().unwrap();
    assert_ne!(old, new);
    assert!(
        authenticates(&app.auth, &old).await.is_none(),
        "the old secret stops"
    );
    assert!(authenticates(&app.auth, &new).await.is_some());

    let list = b.get("/portal/tokens").await;
    assert!(
        list.text.contains("revoked"),
        "the rotated-away token is marked"
    );
    let id = list.ids("revoke").pop().unwrap();
    let confirm = b.get(&format!("/portal/tokens/{id}/revoke")).await;
    assert!(confirm.text.contains("Yes, revoke ci"));
    let done = b
        .post(
            &format!("/portal/tokens/{id}/revoke"),
            &[("csrf", &confirm.hidden("csrf"))],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert_eq!(done.header("location"), "/portal/tokens");
    assert!(
        authenticates(&app.auth, &new).await.is_none(),
        "revoked at once"
    );
}

#[tokio::test]
async fn api_tokens_and_scope_limited_keys_never_log_in() {
    let app = app().await;
    let mut b = Browser::new(app.addr);
    b.login("alice", "wonderland").await;
    let (created, _) = b.create("ci", &[("polytope", "read")]).await;
    let secret = created.secret().unwrap();
    let mut stranger = Browser::new(app.addr);
    for key in [secret.as_str(), "scoped-key", "unknown-key"] {
        let p = stranger.post("/portal/login/key", &[("key", key)]).await;
        assert_eq!(p.status, StatusCode::UNAUTHORIZED, "{key}");
        assert!(p.text.contains("Wrong API key."), "{key}: {}", p.text);
        assert!(stranger.cookie.is_none(), "{key}");
    }
    // The token as a password of its owner does not work either.
    let p = stranger.login("alice", &secret).await;
    assert_eq!(p.status, StatusCode::UNAUTHORIZED);
    assert!(p.text.contains(WRONG));
    // A real API key does.
    let ok = stranger
        .post("/portal/login/key", &[("key", "good-key")])
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.text);
    let list = stranger.get("/portal/tokens").await;
    assert!(list.text.contains("carol"));
}

#[tokio::test]
async fn only_admins_see_all_tokens_and_an_admin_revocation_is_audited() {
    let (logs, _guard) = common::logs::Captured::start();
    let app = app().await;
    let mut alice_b = Browser::new(app.addr);
    alice_b.login("alice", "wonderland").await;
    let (created, _) = alice_b.create("laptop", &[("polytope", "read")]).await;
    let secret = created.secret().unwrap();
    let list = alice_b.get("/portal/tokens").await;
    assert!(!list.text.contains("All tokens"), "no admin link for alice");
    let denied = alice_b.get("/portal/admin").await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);

    let mut bob = Browser::new(app.addr);
    bob.login("bob", "builder").await;
    let own = bob.get("/portal/tokens").await;
    assert!(own.text.contains("All tokens"));
    let admin = bob.get("/portal/admin").await;
    assert_eq!(admin.status, StatusCode::OK);
    assert!(admin.text.contains("<caption>All tokens</caption>"));
    assert!(admin.text.contains("Revoke laptop of alice"));
    let id = admin.ids("revoke").pop().unwrap();
    let confirm = bob.get(&format!("/portal/admin/{id}/revoke")).await;
    assert!(confirm.text.contains("Yes, revoke laptop of alice"));
    let done = bob
        .post(
            &format!("/portal/admin/{id}/revoke"),
            &[("csrf", &confirm.hidden("csrf"))],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text);
    assert!(authenticates(&app.auth, &secret).await.is_none());
    let audit = strip_ansi(&logs.text());
    let line = audit
        .lines()
        .find(|l| l.contains("token.revoked"))
        .expect("an audit line");
    for part in [
        "user=bob",
        "owner=alice",
        "admin=true",
        &format!("token_id={id}"),
        "client=127.0.0.1",
    ] {
        assert!(line.contains(part), "{part} in {line}");
    }
    assert!(!audit.contains(&secret), "never the secret");
    // alice cannot use the admin revoke either.
    let p = alice_b
        .post(
            &format!("/portal/admin/{id}/revoke"),
            &[("csrf", &list.hidden("csrf"))],
        )
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
}

/// Log text without terminal colours.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn sidecar_config(store: &str) -> String {
    format!(
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
jwt: {{iss: portal, exp: 300, secret: a-portal-test-secret-of-32-bytes-or-more}}
services:
  - name: polytope
    scopes: [read, write]
tokens:
  enabled: true
  store: "{store}"
portal:
  enabled: true
  admin_roles: [admin]
rules:
  - path: /write
    scopes: {{polytope: [write]}}
"#
    )
}

async fn authenticate_at(addr: SocketAddr, secret: &str, uri: &str) -> StatusCode {
    common::client()
        .get(format!("http://{addr}/authenticate"))
        .header("authorization", format!("Bearer {secret}"))
        .header("x-original-uri", uri)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn sidecar_sessions_in_sqlite_survive_a_restart_and_the_secret_works_at_authenticate() {
    use common::process::{Scratch, SidecarProcess};
    let dir = Scratch::new("portal");
    let yaml = sidecar_config(&format!("sqlite://{}/tokens.db", dir.path().display()));
    let mut side = SidecarProcess::start(&yaml);
    let mut b = Browser::new(side.addr);
    let ok = b.login("alice", "alicepass").await;
    assert_eq!(
        ok.status,
        StatusCode::SEE_OTHER,
        "{}\n{}",
        ok.text,
        side.log()
    );
    // The store holds token digests and sessions: its file is the owner's only.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(dir.path().join("tokens.db")).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    }
    let (created, _) = b.create("ci", &[("polytope", "read")]).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let secret = created.secret().unwrap();
    assert_eq!(
        authenticate_at(side.addr, &secret, "/read").await,
        StatusCode::OK
    );
    assert_eq!(
        authenticate_at(side.addr, &secret, "/write").await,
        StatusCode::FORBIDDEN
    );
    // `/authenticate` is not the portal's: no portal cookie opens it.
    let status = common::client()
        .get(format!("http://{}/authenticate", side.addr))
        .header("cookie", b.cookie.clone().unwrap())
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    side.stop();
    assert!(!side.log().contains(&secret), "no secret in the log");

    let side = SidecarProcess::start(&yaml);
    b.base = format!("http://{}", side.addr);
    let list = b.get("/portal/tokens").await;
    assert_eq!(
        list.status,
        StatusCode::OK,
        "the session survived: {}",
        list.text
    );
    assert!(list.text.contains("polytope: read"));
}

#[cfg(feature = "e2e")]
#[tokio::test]
async fn two_replicas_on_postgres_share_a_session() {
    use common::process::SidecarProcess;
    let pg = common::postgres::Postgres::start();
    let yaml = sidecar_config(&pg.url());
    let one = SidecarProcess::start(&yaml);
    let two = SidecarProcess::start(&yaml);
    let mut b = Browser::new(one.addr);
    let ok = b.login("alice", "alicepass").await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", one.log());
    let (created, _) = b.create("ci", &[("polytope", "read")]).await;
    let secret = created.secret().unwrap();
    // The same browser reaches the other replica (a load balancer without sticky sessions).
    b.base = format!("http://{}", two.addr);
    let list = b.get("/portal/tokens").await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    assert!(list.text.contains("ci"));
    let id = list.ids("revoke").pop().unwrap();
    let confirm = b.get(&format!("/portal/tokens/{id}/revoke")).await;
    let done = b
        .post(
            &format!("/portal/tokens/{id}/revoke"),
            &[("csrf", &confirm.hidden("csrf"))],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    // Replica one hears of the revocation (NOTIFY) and refuses the token.
    let started = std::time::Instant::now();
    while authenticate_at(one.addr, &secret, "/read").await != StatusCode::UNAUTHORIZED {
        assert!(
            started.elapsed().as_secs() < 5,
            "replica one still accepts it"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The real OpenID Provider (`tests/fixtures/oidc`, oidc-provider) with a `portal` client whose
/// redirect URI is `redirect`, and its built-in login and consent pages.
#[cfg(feature = "e2e")]
fn start_op(redirect: &str) -> (common::process::Proc, u16) {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/oidc");
    assert!(
        dir.join("node_modules/oidc-provider").exists(),
        "oidc-provider is not installed: run ./scripts/test-all.sh (npm ci in tests/fixtures/oidc)"
    );
    let port = common::process::free_port();
    let keys = common::process::Scratch::new("portal-op");
    let mut cmd = Command::new(common::process::program("node"));
    cmd.arg(dir.join("op.mjs"))
        .env("PORT", port.to_string())
        .env("KEYS_FILE", keys.path().join("keys.json"))
        .env("PORTAL_REDIRECT_URIS", redirect)
        .env("DEV_INTERACTIONS", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut op = common::process::Proc::spawn(&mut cmd);
    let out = op.take_stdout();
    let mut out = std::io::BufReader::new(out);
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(line.starts_with("ready"), "the OP did not start: {line:?}");
    std::thread::spawn(move || for _ in out.lines() {});
    common::process::wait_listening(format!("127.0.0.1:{port}").parse().unwrap());
    (op, port)
}

/// Walks the IdP's pages from `url` as a browser would (cookies, redirects, the login form
/// with `login`, the consent form) until it redirects back under `back`; returns that URL.
#[cfg(feature = "e2e")]
async fn through_idp(url: &str, back: &str, login: &str) -> String {
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut jar: std::collections::BTreeMap<String, String> = Default::default();
    let mut next = reqwest::Url::parse(url).unwrap();
    let mut form: Option<Vec<(String, String)>> = None;
    for _ in 0..20 {
        let cookies: Vec<String> = jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let req = match form.take() {
            Some(f) => client.post(next.clone()).form(&f),
            None => client.get(next.clone()),
        };
        let res = req
            .header("cookie", cookies.join("; "))
            .send()
            .await
            .unwrap();
        for c in res.headers().get_all("set-cookie") {
            let pair = c.to_str().unwrap().split(';').next().unwrap();
            if let Some((k, v)) = pair.split_once('=') {
                jar.insert(k.to_owned(), v.to_owned());
            }
        }
        if let Some(loc) = res.headers().get("location") {
            next = next.join(loc.to_str().unwrap()).unwrap();
            if next.as_str().starts_with(back) {
                return next.to_string();
            }
            continue;
        }
        let html = res.text().await.unwrap();
        let action = html
            .split("action=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap_or_else(|| panic!("no form on the IdP's page: {html}"));
        next = next.join(&action.replace("&amp;", "&")).unwrap();
        let prompt = if html.contains("value=\"consent\"") {
            "consent"
        } else {
            "login"
        };
        form = Some(vec![
            ("prompt".into(), prompt.into()),
            ("login".into(), login.into()),
            ("password".into(), "any".into()),
        ]);
    }
    panic!("the IdP never redirected back");
}

#[cfg(feature = "e2e")]
#[tokio::test]
async fn oidc_login_through_the_real_openid_provider() {
    use auth_o_tron::Secret;
    use auth_o_tron::portal::OidcSettings;
    use auth_o_tron::provider::client::HttpClient;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (_op, op_port) = start_op(&format!("http://{addr}/portal/oidc/callback"));
    let issuer = format!("http://127.0.0.1:{op_port}");
    let http = HttpClient::builder().allow_http(true).build().unwrap();
    let oidc = OidcSettings::new(issuer.clone(), "portal", Secret::new("portal-secret"), http)
        .name("Demo IdP");
    let App { auth, .. } = app_on(listener, |s| {
        s.oidc = Some(oidc);
        s.public_origin = Some(format!("http://{addr}"));
    })
    .await;
    let mut b = Browser::new(addr);
    let login = b.get("/portal/login").await;
    assert!(
        login.text.contains("Log in with Demo IdP"),
        "{}",
        login.text
    );
    let start = b.get("/portal/oidc/start").await;
    assert_eq!(start.status, StatusCode::SEE_OTHER);
    let to_idp = start.header("location").to_owned();
    assert!(to_idp.starts_with(&format!("{issuer}/auth?")), "{to_idp}");
    for part in [
        "code_challenge_method=S256",
        "code_challenge=",
        "state=",
        "nonce=",
        "client_id=portal",
    ] {
        assert!(to_idp.contains(part), "{part} in {to_idp}");
    }
    let back = through_idp(&to_idp, &b.base, "erin").await;
    let path = back.strip_prefix(&b.base).unwrap().to_owned();
    // A stranger who gets the callback URL (login CSRF) logs in nobody.
    let mut stranger = Browser::new(addr);
    let csrf = stranger.get(&path).await;
    assert_eq!(
        csrf.status,
        StatusCode::BAD_REQUEST,
        "{path}: {}",
        csrf.text
    );
    assert!(
        csrf.text.contains("started in another browser"),
        "{}",
        csrf.text
    );
    assert!(stranger.cookie.is_none());
    let done = b.get(&path).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text);
    assert!(
        done.text.contains("url=/portal/tokens"),
        "a same-site step: {}",
        done.text
    );
    let list = b.get("/portal/tokens").await;
    assert!(list.text.contains("erin"), "{}", list.text);
    assert!(list.text.contains("(oidc)"));
    let (created, _) = b.create("from-oidc", &[("polytope", "read")]).await;
    assert_eq!(created.status, StatusCode::CREATED);
    let user = authenticates(&auth, &created.secret().unwrap())
        .await
        .unwrap();
    assert_eq!(
        (user.username.as_str(), user.realm.as_str()),
        ("erin", "oidc")
    );
    // The state works once: replaying the callback, even with its binding cookie, logs nobody in.
    let state = path
        .split("state=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let mut other = Browser::new(addr);
    other.cookie = Some(format!("aot_portal_oidc={state}"));
    let replay = other.get(&path).await;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST);
    assert!(
        replay.text.contains("expired or was already used"),
        "{}",
        replay.text
    );
    assert!(
        !other.cookie.unwrap().starts_with("aot_portal="),
        "no session"
    );
}

#[tokio::test]
async fn behind_a_local_proxy_failed_logins_count_per_forwarded_client() {
    use common::process::{Scratch, SidecarProcess};
    let dir = Scratch::new("portal-xff");
    let side = SidecarProcess::start(&sidecar_config(&format!(
        "sqlite://{}/tokens.db",
        dir.path().display()
    )));
    let b = Browser::new(side.addr);
    let login = |client: &'static str, user: &'static str| {
        let mut b = b.clone();
        async move {
            let req = b
                .client
                .post(format!("{}/portal/login", b.base))
                .header("x-forwarded-for", format!("203.0.113.9, {client}"))
                .form(&[("username", user), ("password", "wrong")]);
            b.send(req).await.status
        }
    };
    // One client spraying usernames uses up its own budget only.
    for user in ["u1", "u2", "u3", "u4", "u5"] {
        assert_eq!(login("198.51.100.1", user).await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        login("198.51.100.1", "u6").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Another user behind the same proxy still gets to try.
    assert_eq!(login("198.51.100.2", "u7").await, StatusCode::UNAUTHORIZED);
}
