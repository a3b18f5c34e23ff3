//! Cache and single flight through a real server, cache bounds, and credential hygiene in logs.

mod common;

use std::sync::Arc;
use std::time::Duration;

use auth_o_tron::mint::{MintedToken, Minter, SigningKey};
use auth_o_tron::provider::PlainProvider;
use auth_o_tron::{AuthLayer, Authenticator, Principal, User};
use axum::Router;
use axum::routing::get;
use common::client::TestClient;
use common::logs::Captured;
use common::{Mode, Tokens, basic};

fn router(auth: Authenticator) -> Router {
    Router::new()
        .route("/me", get(|p: Principal| async move { p.username.clone() }))
        .layer(AuthLayer::new(auth))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_concurrent_requests_with_one_new_credential_make_one_provider_call() {
    let t = Tokens::new("t", "r")
        .token("fresh", User::new("u", "r"), None)
        .delay(Duration::from_millis(200));
    let auth = Authenticator::builder()
        .provider(t.clone())
        .build()
        .unwrap();
    let c = TestClient::new(router(auth.clone())).await;
    let barrier = Arc::new(tokio::sync::Barrier::new(100));
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let (c, b) = (c.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            b.wait().await;
            c.get("/me").bearer("fresh").await.status()
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), 200);
    }
    assert_eq!(t.calls(), 1);
    assert_eq!(auth.stats().cache_hits() + auth.stats().cache_misses(), 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_share_a_failure_and_the_next_request_retries() {
    let t = Tokens::new("t", "r")
        .token("tok", User::new("u", "r"), None)
        .delay(Duration::from_millis(100));
    t.set_mode(Mode::Down);
    let auth = Authenticator::builder()
        .provider(t.clone())
        .build()
        .unwrap();
    let c = TestClient::new(router(auth)).await;
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            c.get("/me").bearer("tok").await.status()
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), 503);
    }
    assert!(
        t.calls() <= 2,
        "failures are coalesced too, got {} calls",
        t.calls()
    );
    t.set_mode(Mode::Normal);
    assert_eq!(c.get("/me").bearer("tok").await.status(), 200);
}

#[tokio::test]
async fn a_flood_of_distinct_credentials_keeps_the_cache_within_capacity() {
    let mut t = Tokens::new("t", "r");
    for i in 0..3000 {
        t = t.token(&format!("tok{i}"), User::new(format!("u{i}"), "r"), None);
    }
    let auth = Authenticator::builder()
        .provider(t)
        .cache_capacity(100)
        .build()
        .unwrap();
    let mut headers = http::HeaderMap::new();
    for i in 0..3000 {
        headers.insert("authorization", format!("Bearer tok{i}").parse().unwrap());
        auth.authenticate(&headers).await.unwrap();
    }
    let n = auth.cached_entries();
    assert!(n <= 100 && n > 0, "{n} entries cached");
}

#[tokio::test]
async fn invalidation_forces_a_new_provider_call() {
    let t = Tokens::new("t", "r").token("tok", User::new("u", "r"), None);
    let auth = Authenticator::builder()
        .provider(t.clone())
        .build()
        .unwrap();
    let mut h = http::HeaderMap::new();
    h.insert("authorization", "Bearer tok".parse().unwrap());
    auth.authenticate(&h).await.unwrap();
    auth.authenticate(&h).await.unwrap();
    assert_eq!(t.calls(), 1);
    auth.invalidate_user("r", "u");
    auth.authenticate(&h).await.unwrap();
    assert_eq!(t.calls(), 2);
    auth.invalidate_credential(auth_o_tron::credentials::Credential::new(
        auth_o_tron::credentials::Scheme::Bearer,
        "tok",
    ));
    auth.authenticate(&h).await.unwrap();
    assert_eq!(t.calls(), 3);
    auth.invalidate_all();
    auth.authenticate(&h).await.unwrap();
    assert_eq!(t.calls(), 4);
}

#[tokio::test]
async fn invalid_credentials_are_not_cached() {
    let t = Tokens::new("t", "r");
    let auth = Authenticator::builder()
        .provider(t.clone())
        .build()
        .unwrap();
    let mut h = http::HeaderMap::new();
    h.insert("authorization", "Bearer nope".parse().unwrap());
    assert!(auth.authenticate(&h).await.is_err());
    assert!(auth.authenticate(&h).await.is_err());
    assert_eq!(t.calls(), 2);
}

#[tokio::test]
async fn no_raw_credential_in_logs_or_debug_output() {
    let (captured, _guard) = Captured::start();

    const TOKEN: &str = "canary-token-7f3a";
    const PASSWORD: &str = "canary-password-91c2";
    let t = Tokens::new("t", "r").token(TOKEN, User::new("u", "r"), None);
    let users = PlainProvider::new("local", "r")
        .with_user_password("bob", PASSWORD, ["x"])
        .unwrap();
    let key = SigningKey::hs256(b"canary-secret-0123456789abcdef-0123").unwrap();
    let minter = Minter::builder("iss", key).build().unwrap();
    let auth = Authenticator::builder()
        .provider(t)
        .provider(users)
        .build()
        .unwrap();
    let router = Router::new()
        .route(
            "/me",
            get(|p: Principal, m: axum::Extension<MintedToken>| async move {
                format!("{p:?} {:?}", m.0)
            }),
        )
        .layer(AuthLayer::new(auth.clone()).mint(minter.clone()));
    let c = TestClient::new(router).await;
    let mut debug_output = String::new();
    for header in [
        format!("Bearer {TOKEN}"),
        basic("bob", PASSWORD),
        basic("bob", &format!("{PASSWORD}x")),
        format!("Bearer {TOKEN}x"),
        format!("Bearer {TOKEN}, Bearer {TOKEN}"),
    ] {
        debug_output.push_str(c.get("/me").auth(header).await.text());
    }
    debug_output.push_str(&format!("{auth:?} {minter:?}"));
    let logs = captured.text();
    assert!(logs.contains("auth.provider"), "logging is on: {logs}");
    use base64::Engine;
    let b64_password = base64::engine::general_purpose::STANDARD.encode(format!("bob:{PASSWORD}"));
    for secret in [TOKEN, PASSWORD, b64_password.as_str(), "canary-secret"] {
        assert!(!logs.contains(secret), "{secret} leaked into logs");
        assert!(
            !debug_output.contains(secret),
            "{secret} leaked into Debug output"
        );
    }
    assert!(debug_output.contains("MintedToken([redacted]"));
}

#[tokio::test]
async fn a_minted_token_is_reused_while_its_principal_is_cached() {
    let t = Tokens::new("t", "r")
        .token("one", User::new("u1", "r"), None)
        .token("two", User::new("u2", "r"), None);
    let minter = Minter::builder("iss", SigningKey::generate_es256("k").unwrap())
        .build()
        .unwrap();
    let auth = Authenticator::builder().provider(t).build().unwrap();
    let app = Router::new()
        .route(
            "/token",
            get(|m: axum::Extension<MintedToken>| async move { m.as_str().to_owned() }),
        )
        .layer(AuthLayer::new(auth).mint(minter));
    let c = TestClient::new(app).await;
    let first = c.get("/token").bearer("one").await;
    assert_eq!(first.status(), 200);
    let again = c.get("/token").bearer("one").await;
    assert_eq!(again.text(), first.text(), "cache hit, same token");
    let other = c.get("/token").bearer("two").await;
    assert_ne!(other.text(), first.text(), "another user, another token");
}

#[tokio::test]
async fn the_readied_inner_service_is_the_one_called() {
    use tower::{Service, ServiceBuilder, ServiceExt};
    // ConcurrencyLimit panics when `call` reaches a clone that was not made ready.
    let t = Tokens::new("t", "r")
        .token("tok", User::new("u", "r"), None)
        .delay(Duration::from_millis(20));
    let auth = Authenticator::builder().provider(t).build().unwrap();
    let mut svc = ServiceBuilder::new()
        .layer(AuthLayer::new(auth))
        .concurrency_limit(1)
        .service_fn(|_req: http::Request<String>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
        });
    let req = || {
        http::Request::builder()
            .header("authorization", "Bearer tok")
            .body(String::new())
            .unwrap()
    };
    for _ in 0..3 {
        // miss (deferred call), then hits (immediate calls), then a rejection
        let res = svc.ready().await.unwrap().call(req()).await.unwrap();
        assert_eq!(res.status(), 200);
    }
    let res = svc
        .ready()
        .await
        .unwrap()
        .call(http::Request::new(String::new()))
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let res = svc.ready().await.unwrap().call(req()).await.unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn the_optional_negative_cache_remembers_refusals_but_never_outages() {
    let t = Tokens::new("t", "r").token("good", User::new("u", "r"), None);
    let auth = Authenticator::builder()
        .provider(t.clone())
        .negative_cache(Duration::from_secs(30), 10)
        .build()
        .unwrap();
    let h = |v: &str| {
        let mut h = http::HeaderMap::new();
        h.insert("authorization", format!("Bearer {v}").parse().unwrap());
        h
    };
    assert!(auth.authenticate(&h("bad")).await.is_err());
    assert!(auth.authenticate(&h("bad")).await.is_err());
    assert_eq!(
        t.calls(),
        1,
        "the second refusal came from the negative cache"
    );
    // A flood of bad tokens fills only the small negative cache; the good token stays cached.
    auth.authenticate(&h("good")).await.unwrap();
    for i in 0..100 {
        let _ = auth.authenticate(&h(&format!("junk{i}"))).await;
    }
    let calls = t.calls();
    auth.authenticate(&h("good")).await.unwrap();
    assert_eq!(t.calls(), calls, "still a cache hit");
    // Outages are not remembered.
    t.set_mode(Mode::Down);
    assert_eq!(
        auth.authenticate(&h("other")).await.unwrap_err(),
        auth_o_tron::AuthError::Unavailable
    );
    t.set_mode(Mode::Normal);
    let calls = t.calls();
    assert!(auth.authenticate(&h("other")).await.is_err());
    assert_eq!(t.calls(), calls + 1, "asked again after the outage");
}

/// One cache entry per credential and realm filter: a hit from the second provider is served
/// without asking anyone, and a request that `X-Auth-Realm` limits to another provider never
/// gets the cached answer of the first.
#[tokio::test]
async fn a_cached_answer_is_served_only_to_requests_its_provider_is_eligible_for() {
    let a = Tokens::new("a", "ra").token("shared", User::new("from-a", "ra"), None);
    let b = Tokens::new("b", "rb")
        .token("shared", User::new("from-b", "rb"), None)
        .token("only-b", User::new("b-user", "rb"), None);
    let auth = Authenticator::builder()
        .provider(a.clone())
        .provider(b.clone())
        .build()
        .unwrap();
    let request = |token: &str, realm: Option<&str>| {
        let mut h = http::HeaderMap::new();
        h.insert("authorization", format!("Bearer {token}").parse().unwrap());
        if let Some(r) = realm {
            h.insert("x-auth-realm", r.parse().unwrap());
        }
        h
    };
    let user = |p: Principal| (p.username.clone(), p.realm.clone());

    // A refuses `only-b`, B accepts it; the second request is a hit (nobody asked again).
    let h = request("only-b", None);
    assert_eq!(user(auth.authenticate(&h).await.unwrap()).0, "b-user");
    let calls = (a.calls(), b.calls());
    assert_eq!(user(auth.authenticate(&h).await.unwrap()).0, "b-user");
    assert_eq!((a.calls(), b.calls()), calls);
    assert_eq!(auth.stats().cache_hits(), 1);

    // Under each `X-Auth-Realm` filter its own provider's answer, each cached on its own: a
    // request limited to rb never gets A's answer, and does not evict it.
    let limited = |realm: &'static str| {
        let auth = auth.clone();
        async move {
            user(
                auth.authenticate(&request("shared", Some(realm)))
                    .await
                    .unwrap(),
            )
        }
    };
    assert_eq!(limited("ra").await, ("from-a".into(), "ra".into()));
    assert_eq!(limited("rb").await, ("from-b".into(), "rb".into()));
    let calls = (a.calls(), b.calls());
    for _ in 0..3 {
        assert_eq!(limited("ra").await.0, "from-a");
        assert_eq!(limited("rb").await.0, "from-b");
    }
    assert_eq!((a.calls(), b.calls()), calls, "all hits");
    // Invalidating the credential drops it under every filter.
    auth.invalidate_credential(auth_o_tron::credentials::Credential::new(
        auth_o_tron::credentials::Scheme::Bearer,
        "shared",
    ));
    assert_eq!(limited("ra").await.0, "from-a");
    assert_eq!(limited("rb").await.0, "from-b");
    assert_eq!((a.calls(), b.calls()), (calls.0 + 1, calls.1 + 1));
    // A realm no provider has: refused, whatever is cached.
    assert!(
        auth.authenticate(&request("shared", Some("nowhere")))
            .await
            .is_err()
    );
}

/// A cached token is served from its digest alone, but only for the exact header it was
/// accepted in: near misses are parsed (and refused) as before, and with another credential
/// source the full checks run (a repeated scheme is still ambiguous).
#[tokio::test]
async fn a_cached_bearer_token_does_not_let_malformed_or_ambiguous_requests_through() {
    use auth_o_tron::AuthError;
    use auth_o_tron::credentials::{HeaderSource, Scheme};
    let with_source = |t: Tokens| {
        Authenticator::builder()
            .provider(t)
            .source(HeaderSource::new(
                http::HeaderName::from_static("x-api-key"),
                Scheme::Bearer,
            ))
            .build()
            .unwrap()
    };
    let t = Tokens::new("t", "r").token("tok", User::new("u", "r"), None);
    let plain = Authenticator::builder()
        .provider(t.clone())
        .build()
        .unwrap();
    let sourced = with_source(t.clone());
    let headers = |auth: &[u8], key: Option<&str>| {
        let mut h = http::HeaderMap::new();
        h.insert(
            "authorization",
            http::HeaderValue::from_bytes(auth).unwrap(),
        );
        if let Some(k) = key {
            h.insert("x-api-key", k.parse().unwrap());
        }
        h
    };
    for auth in [&plain, &sourced] {
        assert_eq!(
            auth.authenticate(&headers(b"Bearer tok", None))
                .await
                .unwrap()
                .username,
            "u"
        );
        // A hit, served again; other spellings the parser accepts are hits too.
        let calls = t.calls();
        for ok in [
            &b"Bearer tok"[..],
            b"bearer tok",
            b"Bearer  tok ",
            b"BEARER tok",
        ] {
            assert!(auth.authenticate(&headers(ok, None)).await.is_ok());
        }
        assert_eq!(t.calls(), calls, "all hits");
        for bad in [
            &b"Bearer tok\t"[..],
            b"Bearer tok,",
            b"Bearer tok x",
            b"Bearer t\xffok",
        ] {
            assert!(
                matches!(
                    auth.authenticate(&headers(bad, None)).await,
                    Err(AuthError::Malformed(_))
                ),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        // The request-level checks still hold with the token cached: two Authorization lines,
        // a realm header that is not visible ASCII or sent twice.
        let mut two = headers(b"Bearer tok", None);
        two.append("authorization", "Bearer tok".parse().unwrap());
        let mut bad_realm = headers(b"Bearer tok", None);
        bad_realm.insert(
            "x-auth-realm",
            http::HeaderValue::from_bytes(b"r\xff").unwrap(),
        );
        // Two realm lines: which one limits the providers would be anyone's guess.
        let mut two_realms = headers(b"Bearer tok", None);
        two_realms.append("x-auth-realm", "r".parse().unwrap());
        two_realms.append("x-auth-realm", "r".parse().unwrap());
        for h in [two, bad_realm, two_realms] {
            assert!(
                matches!(auth.authenticate(&h).await, Err(AuthError::Malformed(_))),
                "{h:?}"
            );
        }
        // A cached token followed by another credential is still that token's hit, and
        // invalidating the token drops what that request would be answered from.
        let calls = t.calls();
        let both = headers(b"Bearer tok, Basic dTpw", None);
        assert_eq!(auth.authenticate(&both).await.unwrap().username, "u");
        assert_eq!(t.calls(), calls, "a hit");
        auth.invalidate_credential(auth_o_tron::credentials::Credential::new(
            Scheme::Bearer,
            "tok",
        ));
        assert_eq!(auth.authenticate(&both).await.unwrap().username, "u");
        assert_eq!(t.calls(), calls + 1, "asked again after the invalidation");
    }
    assert!(matches!(
        sourced
            .authenticate(&headers(b"Bearer tok", Some("tok")))
            .await,
        Err(AuthError::Malformed(_))
    ));
}
