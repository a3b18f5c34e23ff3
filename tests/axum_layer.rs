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
use common::{Mode, Tokens, basic, client, raw, serve};
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
    let addr = serve(app(authenticator(tokens()))).await;
    let res = client()
        .get(format!("http://{addr}/me"))
        .header("authorization", basic("alice", "wonderland"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let user: serde_json::Value = res.json().await.unwrap();
    assert_eq!(user["username"], "alice");
    assert_eq!(user["realm"], "demo");
    // plain then plain_advanced (which matched the role plain added); the failing augmenter is ignored
    assert_eq!(
        user["roles"],
        serde_json::json!(["user", "admin", "observer"])
    );
    assert_eq!(user["attributes"]["team"], "ops");
    let res = client()
        .get(format!("http://{addr}/admin"))
        .header("authorization", basic("alice", "wonderland"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.text().await.unwrap(), "alice");
}

#[tokio::test]
async fn rejections_are_401_with_challenges_and_json() {
    let addr = serve(app(authenticator(tokens()))).await;
    let c = client();
    let res = c.get(format!("http://{addr}/me")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        res.headers()["www-authenticate"],
        r#"Basic realm="demo", charset="UTF-8", Bearer realm="sso""#
    );
    assert_eq!(res.headers()["content-type"], "application/json");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], "Unauthorized access");

    let res = c
        .get(format!("http://{addr}/me"))
        .header("authorization", basic("alice", "nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        res.headers()["www-authenticate"],
        r#"Basic realm="demo", charset="UTF-8", Bearer realm="sso", error="invalid_token""#
    );

    for bad in [
        "Bearer a b",
        "Basic YTpi, Plain YTpi",
        "Bearer x, Basic y, Bearer z, Basic w",
        "Bearer",
    ] {
        let res = c
            .get(format!("http://{addr}/me"))
            .header("authorization", bad)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{bad}");
        assert!(
            res.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .contains(r#"error="invalid_request""#),
            "{bad}"
        );
    }
    let big = format!("Bearer {}", "a".repeat(9 * 1024));
    let res = c
        .get(format!("http://{addr}/me"))
        .header("authorization", big)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    // Two Authorization lines: never "first wins".
    let text = raw(
        addr,
        "GET /me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer reader\r\nAuthorization: Bearer writer\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(text.starts_with("HTTP/1.1 401"), "{text}");
    assert!(text.contains("invalid_request"));
}

#[tokio::test]
async fn guards_give_403_and_scopes_say_insufficient_scope() {
    let addr = serve(app(authenticator(tokens()))).await;
    let c = client();
    let res = c
        .get(format!("http://{addr}/admin"))
        .header("authorization", basic("bob", "builder"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = c
        .get(format!("http://{addr}/read"))
        .header("authorization", "Bearer reader")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = c
        .get(format!("http://{addr}/read"))
        .header("authorization", "Bearer writer")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        res.headers()["www-authenticate"],
        r#"Bearer error="insufficient_scope", scope="read""#
    );
    // A directly authenticated user has every scope.
    let res = c
        .get(format!("http://{addr}/read"))
        .header("authorization", basic("bob", "builder"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // RequireLayer on one route
    let res = c
        .get(format!("http://{addr}/ops"))
        .header("authorization", basic("alice", "wonderland"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = c
        .get(format!("http://{addr}/ops"))
        .header("authorization", basic("bob", "builder"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // route_layer: unknown paths stay 404
    let res = c
        .get(format!("http://{addr}/nowhere"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn several_credentials_and_the_realm_header() {
    let addr = serve(app(authenticator(tokens()))).await;
    let c = client();
    let both = format!("Bearer nope, {}", basic("bob", "builder"));
    let res = c
        .get(format!("http://{addr}/me"))
        .header("authorization", &both)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = c
        .get(format!("http://{addr}/me"))
        .header("authorization", basic("bob", "builder"))
        .header("x-auth-realm", "sso")
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::UNAUTHORIZED,
        "realm filter excludes the Basic provider"
    );
    let res = c
        .get(format!("http://{addr}/me"))
        .header("authorization", basic("bob", "builder"))
        .header("x-auth-realm", "Demo")
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::UNAUTHORIZED,
        "realm match is exact"
    );
}

#[tokio::test]
async fn a_provider_that_cannot_decide_gives_503_and_others_still_serve() {
    let slow = tokens().delay(Duration::from_secs(5));
    let addr = serve(app(authenticator(slow.clone()))).await;
    let c = client();
    let started = std::time::Instant::now();
    let res = c
        .get(format!("http://{addr}/me"))
        .header("authorization", "Bearer reader")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "bounded by the 1 s timeout"
    );
    let res = c
        .get(format!("http://{addr}/me"))
        .header("authorization", basic("bob", "builder"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    let down = tokens();
    down.set_mode(Mode::Down);
    let addr = serve(app(authenticator(down.clone()))).await;
    let res = c
        .get(format!("http://{addr}/me"))
        .header("authorization", "Bearer reader")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    // Not cached as invalid: once the provider is back, the same token works.
    down.set_mode(Mode::Normal);
    let res = c
        .get(format!("http://{addr}/me"))
        .header("authorization", "Bearer reader")
        .send()
        .await
        .unwrap();
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
    let addr = serve(router).await;
    let c = client();
    assert_eq!(
        c.get(format!("http://{addr}/hello"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "anonymous"
    );
    let res = c
        .get(format!("http://{addr}/hello"))
        .header("authorization", "Bearer reader")
        .send()
        .await
        .unwrap();
    assert_eq!(res.text().await.unwrap(), "rita");
    let res = c
        .get(format!("http://{addr}/hello"))
        .header("authorization", "Bearer forged")
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::UNAUTHORIZED,
        "invalid credentials are still rejected"
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
    let addr = serve(app(auth)).await;
    let c = client();
    let res = c
        .get(format!("http://{addr}/me"))
        .header("authorization", "Bearer short")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = c
        .get(format!("http://{addr}/me"))
        .header("authorization", "Bearer short")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(t.calls(), 1, "second request is a cache hit");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let res = c
        .get(format!("http://{addr}/me"))
        .header("authorization", "Bearer short")
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::UNAUTHORIZED,
        "expired credential is not served from the cache"
    );
    assert_eq!(t.calls(), 2);
}
