//! The layer in a real axum server over TCP: statuses, challenges, bodies, guards, realms.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use auth_o_tron::augment::{
    AugmentError, Augmentation, Augmenter, AugmenterInfo, PlainAdvancedAugmenter, PlainAugmenter,
};
use auth_o_tron::guard::extract::Guarded;
use auth_o_tron::guard::{RequireLayer, Requirement};
use auth_o_tron::provider::{BoxFuture, PlainProvider, plain::hash_password};
use auth_o_tron::{AuthLayer, Authenticator, Principal, Scopes, User};
use axum::Router;
use axum::routing::get;
use common::client::TestClient;
use common::logs::Captured;
use common::{Mode, Tokens, raw};
use reqwest::StatusCode;

auth_o_tron::guard!(Admin = Requirement::role("admin"));
auth_o_tron::guard!(ReadScope = Requirement::scope("tokens", "read"));

struct Failing;
impl Augmenter for Failing {
    fn info(&self) -> &AugmenterInfo {
        static INFO: std::sync::LazyLock<AugmenterInfo> =
            std::sync::LazyLock::new(|| AugmenterInfo::new("broken", "test", "demo"));
        &INFO
    }
    fn augment<'a>(&'a self, _: &'a User) -> BoxFuture<'a, Result<Augmentation, AugmentError>> {
        Box::pin(async { Err(AugmentError("ldap down".into())) })
    }
}

fn tokens() -> Tokens {
    Tokens::new("tokens", "sso")
        .token(
            "reader",
            User::new("rita", "sso").with_scopes(Scopes::from_scope_string("tokens", "read")),
            None,
        )
        .token(
            "writer",
            User::new("wes", "sso").with_scopes(Scopes::from_scope_string("tokens", "write")),
            None,
        )
}

fn authenticator(tokens: Tokens) -> Authenticator {
    let users = PlainProvider::new("local", "demo")
        .with_user_hash("alice", &hash_password("wonderland"), ["user"])
        .unwrap()
        .with_user_password("bob", "builder", ["user"])
        .unwrap();
    Authenticator::builder()
        .provider(users)
        .provider(tokens)
        .augmenter(PlainAugmenter::new(
            "roles",
            "demo",
            BTreeMap::from([("admin".into(), vec!["alice".into()])]),
        ))
        .augmenter(Failing)
        .augmenter(PlainAdvancedAugmenter::new(
            "adv",
            "demo",
            vec![],
            vec!["admin".into()],
            Augmentation {
                roles: vec!["observer".into()],
                attributes: BTreeMap::from([("team".into(), "ops".into())]),
            },
        ))
        .timeout(Duration::from_millis(1000))
        .build()
        .unwrap()
}

fn app(auth: Authenticator) -> Router {
    Router::new()
        .route("/me", get(|user: User| async move { axum::Json(user) }))
        .route(
            "/admin",
            get(|a: Guarded<Admin>| async move { a.username.clone() }),
        )
        .route(
            "/read",
            get(|p: Guarded<ReadScope>| async move { p.username.clone() }),
        )
        .route(
            "/ops",
            get(|p: Principal| async move { p.username.clone() })
                .route_layer(RequireLayer::new(Requirement::attribute_eq("team", "ops"))),
        )
        .route_layer(AuthLayer::new(auth))
}

#[tokio::test]
async fn basic_users_get_through_with_augmented_roles() {
    let c = TestClient::new(app(authenticator(tokens()))).await;
    let res = c.get("/me").basic("alice", "wonderland").await;
    assert_eq!(res.status(), StatusCode::OK);
    let user: serde_json::Value = res.json();
    assert_eq!(user["username"], "alice");
    assert_eq!(user["realm"], "demo");
    // plain then plain_advanced (which matched the role plain added); the failing augmenter is ignored
    assert_eq!(
        user["roles"],
        serde_json::json!(["user", "admin", "observer"])
    );
    assert_eq!(user["attributes"]["team"], "ops");
    let res = c.get("/admin").basic("alice", "wonderland").await;
    assert_eq!(res.text(), "alice");
}

#[tokio::test]
async fn rejections_are_401_with_challenges_and_json() {
    let c = TestClient::new(app(authenticator(tokens()))).await;
    let res = c.get("/me").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        res.header("www-authenticate"),
        r#"Basic realm="demo", charset="UTF-8", Bearer realm="sso""#
    );
    assert_eq!(res.header("content-type"), "application/json");
    let body: serde_json::Value = res.json();
    assert_eq!(body["error"], "Unauthorized access");

    let res = c.get("/me").basic("alice", "nope").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        res.header("www-authenticate"),
        r#"Basic realm="demo", charset="UTF-8", Bearer realm="sso", error="invalid_token""#
    );

    for bad in [
        "Bearer a b",
        "Basic YTpi, Plain YTpi",
        "Bearer x, Basic y, Bearer z, Basic w",
        "Bearer",
    ] {
        let res = c.get("/me").auth(bad).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{bad}");
        assert!(
            res.header("www-authenticate")
                .contains(r#"error="invalid_request""#),
            "{bad}"
        );
    }
    let big = format!("Bearer {}", "a".repeat(9 * 1024));
    assert_eq!(
        c.get("/me").auth(big).await.status(),
        StatusCode::UNAUTHORIZED
    );

    // Two Authorization lines: never "first wins".
    let text = raw(
        c.addr(),
        "GET /me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer reader\r\nAuthorization: Bearer writer\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(text.starts_with("HTTP/1.1 401"), "{text}");
    assert!(text.contains("invalid_request"));
}

#[tokio::test]
async fn guards_give_403_and_scopes_say_insufficient_scope() {
    let c = TestClient::new(app(authenticator(tokens()))).await;
    let res = c.get("/admin").basic("bob", "builder").await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        c.get("/read").bearer("reader").await.status(),
        StatusCode::OK
    );
    let res = c.get("/read").bearer("writer").await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        res.header("www-authenticate"),
        r#"Bearer error="insufficient_scope", scope="read""#
    );
    // A directly authenticated user has every scope.
    let res = c.get("/read").basic("bob", "builder").await;
    assert_eq!(res.status(), StatusCode::OK);
    // RequireLayer on one route
    let res = c.get("/ops").basic("alice", "wonderland").await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = c.get("/ops").basic("bob", "builder").await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // route_layer: unknown paths stay 404
    assert_eq!(c.get("/nowhere").await.status(), StatusCode::NOT_FOUND);
}

/// The headers a rejection carries, for comparing the shape of two rejections.
fn shape(res: &common::client::TestResponse) -> Vec<(String, String)> {
    let mut h: Vec<(String, String)> = res
        .headers()
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "date" | "content-length"))
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
        .collect();
    h.sort();
    h
}

#[tokio::test]
async fn extractor_and_require_layer_rejections_are_the_layers_own() {
    // The layer's 401 and 403, for reference.
    let strict = Router::new()
        .route("/me", get(|user: User| async move { user.username }))
        .layer(AuthLayer::new(authenticator(tokens())).require(Requirement::role("admin")));
    let strict = TestClient::new(strict).await;
    let layer_401 = strict.get("/me").await;
    let layer_403 = strict.get("/me").basic("bob", "builder").await;
    assert_eq!(layer_401.header("cache-control"), "no-store");

    // The same 401 from an extractor (the layer let the request through anonymously) and the
    // same 403 from RequireLayer and from a Guarded extractor.
    let open = Router::new()
        .route("/me", get(|user: User| async move { user.username }))
        .route(
            "/admin",
            get(|a: Guarded<Admin>| async move { a.username.clone() }),
        )
        .route(
            "/ops",
            get(|p: Principal| async move { p.username.clone() })
                .route_layer(RequireLayer::new(Requirement::role("admin"))),
        )
        .layer(AuthLayer::new(authenticator(tokens())).allow_anonymous());
    let open = TestClient::new(open).await;
    let extractor_401 = open.get("/me").await;
    assert_eq!(extractor_401.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(extractor_401.header("cache-control"), "no-store");
    assert_eq!(shape(&extractor_401), shape(&layer_401));
    assert_eq!(extractor_401.text(), layer_401.text());
    let require_401 = open.get("/ops").await;
    assert_eq!(shape(&require_401), shape(&layer_401));
    for path in ["/ops", "/admin"] {
        let res = open.get(path).basic("bob", "builder").await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{path}");
        assert_eq!(res.header("cache-control"), "no-store", "{path}");
        assert_eq!(shape(&res), shape(&layer_403), "{path}");
        assert_eq!(res.text(), layer_403.text(), "{path}");
    }
    assert_eq!(
        open.get("/ops").basic("alice", "wonderland").await.text(),
        "alice"
    );
}

#[tokio::test]
async fn a_guard_outside_the_layer_answers_500_and_logs_the_fix() {
    let (logs, _guard) = Captured::start();
    // The wrong order: in axum the layer added last runs first, so RequireLayer runs before
    // AuthLayer and finds no principal.
    let misordered = Router::new()
        .route(
            "/admin",
            get(|p: Principal| async move { p.username.clone() }),
        )
        .route_layer(AuthLayer::new(authenticator(tokens())))
        .route_layer(RequireLayer::new(Requirement::role("admin")));
    let c = TestClient::new(misordered).await;
    let res = c.get("/admin").basic("alice", "wonderland").await;
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(res.text(), r#"{"error":"Internal server error"}"#);
    assert_eq!(res.header("cache-control"), "no-store");
    assert!(res.headers().get("www-authenticate").is_none());
    let logged = logs.text();
    assert!(
        logged.contains("ERROR") && logged.contains("found no AuthLayer before it"),
        "{logged}"
    );
    assert!(
        logged.contains(".route_layer(RequireLayer::new(..)).route_layer(AuthLayer::new(auth))"),
        "the log names the fix: {logged}"
    );

    // Extractors without any layer: 500 too, never a silent 401 or `None`.
    let bare = Router::new()
        .route("/user", get(|u: User| async move { u.username }))
        .route(
            "/admin",
            get(|a: Guarded<Admin>| async move { a.username.clone() }),
        )
        .route(
            "/maybe",
            get(|u: Option<User>| async move { format!("{u:?}") }),
        );
    let c = TestClient::new(bare).await;
    for path in ["/user", "/admin", "/maybe"] {
        let res = c.get(path).basic("alice", "wonderland").await;
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR, "{path}");
        assert_eq!(res.header("content-type"), "application/json", "{path}");
    }
}

#[tokio::test]
async fn several_credentials_and_the_realm_header() {
    let c = TestClient::new(app(authenticator(tokens()))).await;
    let both = format!("Bearer nope, {}", common::basic("bob", "builder"));
    assert_eq!(c.get("/me").auth(&both).await.status(), StatusCode::OK);
    let res = c
        .get("/me")
        .basic("bob", "builder")
        .header("x-auth-realm", "sso")
        .await;
    assert_eq!(
        res.status(),
        StatusCode::UNAUTHORIZED,
        "realm filter excludes the Basic provider"
    );
    let res = c
        .get("/me")
        .basic("bob", "builder")
        .header("x-auth-realm", "Demo")
        .await;
    assert_eq!(
        res.status(),
        StatusCode::UNAUTHORIZED,
        "realm match is exact"
    );
}

#[tokio::test]
async fn a_provider_that_cannot_decide_gives_503_and_others_still_serve() {
    let slow = tokens().delay(Duration::from_secs(5));
    let c = TestClient::new(app(authenticator(slow.clone()))).await;
    let started = std::time::Instant::now();
    let res = c.get("/me").bearer("reader").await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "bounded by the 1 s timeout"
    );
    let res = c.get("/me").basic("bob", "builder").await;
    assert_eq!(res.status(), StatusCode::OK);

    let down = tokens();
    down.set_mode(Mode::Down);
    let c = TestClient::new(app(authenticator(down.clone()))).await;
    let res = c.get("/me").bearer("reader").await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    // Not cached as invalid: once the provider is back, the same token works.
    down.set_mode(Mode::Normal);
    let res = c.get("/me").bearer("reader").await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn anonymous_requests_reach_option_user_handlers() {
    let auth = authenticator(tokens());
    let router =
        Router::new()
            .route(
                "/hello",
                get(|user: Option<User>| async move {
                    user.map_or("anonymous".to_owned(), |u| u.username)
                }),
            )
            .layer(AuthLayer::new(auth).allow_anonymous());
    let c = TestClient::new(router).await;
    assert_eq!(c.get("/hello").await.text(), "anonymous");
    assert_eq!(c.get("/hello").bearer("reader").await.text(), "rita");
    let res = c.get("/hello").bearer("forged").await;
    assert_eq!(
        res.status(),
        StatusCode::UNAUTHORIZED,
        "invalid credentials are still rejected"
    );
}

#[tokio::test]
async fn a_layer_requirement_holds_for_anonymous_requests_too() {
    // Sending no credential must never get further than a valid one without the role.
    let router =
        Router::new()
            .route(
                "/admin",
                get(|user: Option<User>| async move {
                    user.map_or("anonymous".to_owned(), |u| u.username)
                }),
            )
            .layer(
                AuthLayer::new(authenticator(tokens()))
                    .require(Requirement::role("admin"))
                    .allow_anonymous(),
            );
    let c = TestClient::new(router).await;
    let res = c.get("/admin").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(!res.header("www-authenticate").is_empty());
    assert_eq!(
        c.get("/admin").basic("bob", "builder").await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        c.get("/admin").basic("alice", "wonderland").await.text(),
        "alice"
    );
}

#[tokio::test]
async fn cache_respects_the_credential_expiry() {
    let soon = std::time::SystemTime::now() + Duration::from_secs(1);
    let t = Tokens::new("tokens", "sso").token("short", User::new("s", "sso"), Some(soon));
    let auth = Authenticator::builder()
        .provider(t.clone())
        .build()
        .unwrap();
    let c = TestClient::new(app(auth)).await;
    assert_eq!(c.get("/me").bearer("short").await.status(), StatusCode::OK);
    assert_eq!(c.get("/me").bearer("short").await.status(), StatusCode::OK);
    assert_eq!(t.calls(), 1, "second request is a cache hit");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let res = c.get("/me").bearer("short").await;
    assert_eq!(
        res.status(),
        StatusCode::UNAUTHORIZED,
        "expired credential is not served from the cache"
    );
    assert_eq!(t.calls(), 2);
}

#[tokio::test]
async fn minted_token_is_an_extractor_and_500_without_minting() {
    let key = auth_o_tron::mint::SigningKey::hs256(b"an-axum-test-secret-of-32-bytes-ok").unwrap();
    let minter = auth_o_tron::mint::Minter::builder("iss", key)
        .build()
        .unwrap();
    let handler = get(|t: auth_o_tron::mint::MintedToken| async move { t.as_str().to_owned() });
    let minting = Router::new()
        .route("/jwt", handler.clone())
        .layer(AuthLayer::new(authenticator(tokens())).mint(minter));
    let c = TestClient::new(minting).await;
    let jwt = c.get("/jwt").basic("alice", "wonderland").await;
    assert_eq!(jwt.status(), StatusCode::OK);
    assert_eq!(jwt.text().split('.').count(), 3, "{}", jwt.text());
    let plain = Router::new()
        .route("/jwt", handler)
        .layer(AuthLayer::new(authenticator(tokens())));
    let c = TestClient::new(plain).await;
    let res = c.get("/jwt").basic("alice", "wonderland").await;
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(res.header("cache-control"), "no-store");
}
