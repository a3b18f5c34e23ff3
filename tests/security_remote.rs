//! Security catalog (`shared/notes/security.md` §2) cases of the remote providers: RFC 7662
//! introspection (OPQ), refresh-token exchange with `openid-offline` (RT), the remote user APIs,
//! outbound-call limits (AVAIL), revocation and failure sharing in the cache (CACHE), and
//! credential hygiene in logs (LOG). The authorization server is an in-process fake over TCP
//! whose answers, hit counts and received bodies the tests control and inspect.
#![cfg(feature = "remote")]

mod common;
#[path = "security_support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use auth_o_tron::mint::{MintedToken, Minter, SigningKey};
use auth_o_tron::provider::introspection::ClientAuth;
use auth_o_tron::provider::{
    EcmwfApiProvider, EfasApiProvider, IntrospectionProvider, IntrospectionSettings, KeySource,
    OfflineEndpoints, OfflineProvider, OfflineSettings, PlainProvider,
};
use auth_o_tron::{AuthError, AuthLayer, Authenticator, Principal};
use axum::Router;
use axum::routing::get;
use common::fake_api::{FakeApi, Fault};
use serde_json::json;
use support::*;

const CLIENT_SECRET: &str = "canary-client-secret-5d1e";

/// `application/x-www-form-urlencoded` pairs, decoded.
fn form(body: &str) -> Vec<(String, String)> {
    let dec = |s: &str| {
        let b = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'+' => {
                    out.push(b' ');
                    i += 1;
                }
                b'%' if i + 2 < b.len() + 1 => {
                    out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                    i += 3;
                }
                c => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        String::from_utf8(out).unwrap()
    };
    body.split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (dec(k), dec(v))
        })
        .collect()
}

/// An authorization server: answers per token, records request bodies.
#[derive(Clone, Default)]
struct As {
    answers: Arc<Mutex<HashMap<String, (u16, String)>>>,
    bodies: Arc<Mutex<Vec<String>>>,
}

impl As {
    fn set(&self, token: &str, status: u16, body: serde_json::Value) {
        self.set_raw(token, status, &body.to_string());
    }
    fn set_raw(&self, token: &str, status: u16, body: &str) {
        self.answers
            .lock()
            .unwrap()
            .insert(token.into(), (status, body.into()));
    }
    fn bodies(&self) -> Vec<String> {
        self.bodies.lock().unwrap().clone()
    }
}

async fn introspection_server() -> (As, FakeApi) {
    let state = As::default();
    let s = state.clone();
    let fake = FakeApi::start(Arc::new(move |_target: &str, body: &str| {
        s.bodies.lock().unwrap().push(body.to_owned());
        let token = form(body)
            .into_iter()
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v)
            .unwrap_or_default();
        s.answers
            .lock()
            .unwrap()
            .get(&token)
            .cloned()
            .unwrap_or((200, r#"{"active":false}"#.into()))
    }))
    .await;
    (state, fake)
}

fn active(extra: serde_json::Value) -> serde_json::Value {
    let mut v = json!({"active": true, "sub": "olga", "iss": ISSUER, "aud": "api",
                       "scope": "read", "exp": now() + 300, "token_type": "access_token"});
    for (k, val) in extra.as_object().unwrap() {
        v[k] = val.clone();
    }
    v
}

fn introspection(fake: &FakeApi, ttl: Duration, auth: ClientAuth) -> IntrospectionProvider {
    IntrospectionProvider::new(
        "opaque",
        "sso",
        IntrospectionSettings {
            endpoint: fake.url("/introspect"),
            client_id: "rs".into(),
            client_secret: CLIENT_SECRET.into(),
            client_auth: auth,
            audience: Some(vec!["api".into()]),
            issuer: Some(ISSUER.into()),
            cache_ttl: ttl,
        },
        http_client(),
    )
    .unwrap()
}

fn intro_auth(fake: &FakeApi) -> Authenticator {
    Authenticator::builder()
        .provider(introspection(
            fake,
            Duration::from_secs(60),
            ClientAuth::Basic,
        ))
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap()
}

#[tokio::test]
async fn opq_01_an_inactive_token_is_401_and_may_be_negative_cached() {
    let (_as, fake) = introspection_server().await;
    let auth = intro_auth(&fake);
    assert_eq!(check(&auth, "gone").await.unwrap_err(), AuthError::Invalid);
    let neg = Authenticator::builder()
        .provider(introspection(
            &fake,
            Duration::from_secs(60),
            ClientAuth::Basic,
        ))
        .negative_cache(Duration::from_secs(30), 100)
        .build()
        .unwrap();
    let hits = fake.hits();
    for _ in 0..3 {
        assert_eq!(check(&neg, "gone").await.unwrap_err(), AuthError::Invalid);
    }
    assert_eq!(fake.hits(), hits + 1, "refusal remembered: no-net");
}

#[tokio::test]
async fn opq_02_a_malformed_introspection_answer_is_503_and_never_cached() {
    let (state, fake) = introspection_server().await;
    let auth = intro_auth(&fake);
    for (i, body) in [
        r#"{"sub":"olga"}"#,
        r#"{"active":"true","sub":"olga"}"#,
        r#"{"active":1,"sub":"olga"}"#,
        "<html><body>login</body></html>",
        "",
        "not json",
        "[true]",
    ]
    .into_iter()
    .enumerate()
    {
        let token = format!("tok{i}");
        state.set_raw(&token, 200, body);
        assert_eq!(
            check(&auth, &token).await.unwrap_err(),
            AuthError::Unavailable,
            "{body:?}"
        );
        // Not cached either way: a proper answer is asked for and used at once.
        state.set(&token, 200, active(json!({})));
        assert_eq!(
            check(&auth, &token).await.unwrap().username,
            "olga",
            "{body:?}"
        );
    }
}

#[tokio::test]
async fn opq_03_active_but_unusable_tokens_are_401() {
    let (state, fake) = introspection_server().await;
    let auth = intro_auth(&fake);
    for (token, extra) in [
        ("expired", json!({"exp": now() - 10})),
        ("other-aud", json!({"aud": ["other"]})),
        ("no-aud", json!({"aud": null})),
        ("refresh", json!({"token_type": "refresh_token"})),
        ("other-iss", json!({"iss": "https://evil"})),
        ("no-subject", json!({"sub": null})),
    ] {
        state.set(token, 200, active(extra));
        assert_eq!(
            check(&auth, token).await.unwrap_err(),
            AuthError::Invalid,
            "{token}"
        );
    }
    state.set("fine", 200, active(json!({"aud": ["other", "api"]})));
    assert!(check(&auth, "fine").await.is_ok());
}

#[tokio::test]
async fn opq_04_our_client_refused_is_503_and_users_are_not_marked_invalid() {
    let (state, fake) = introspection_server().await;
    state.set("tok", 200, active(json!({})));
    let auth = Authenticator::builder()
        .provider(introspection(
            &fake,
            Duration::from_secs(60),
            ClientAuth::Basic,
        ))
        .negative_cache(Duration::from_secs(30), 100)
        .build()
        .unwrap();
    for status in [401, 403] {
        fake.set(Fault::Status(status));
        assert_eq!(
            check(&auth, "tok").await.unwrap_err(),
            AuthError::Unavailable,
            "{status}"
        );
    }
    fake.set(Fault::None);
    assert!(check(&auth, "tok").await.is_ok(), "not negative-cached");
}

#[tokio::test]
async fn opq_05_the_token_reaches_the_server_as_exactly_one_exact_form_value() {
    let (state, fake) = introspection_server().await;
    let auth = intro_auth(&fake);
    for token in ["a+b/c=", "x~y.z-_", "YWJj+/==", "tok%2Bx"] {
        state.set(token, 200, active(json!({})));
    }
    for token in ["a+b/c=", "x~y.z-_", "YWJj+/=="] {
        assert!(check(&auth, token).await.is_ok(), "{token}");
        let body = state.bodies().pop().unwrap();
        let params = form(&body);
        let tokens: Vec<_> = params.iter().filter(|(k, _)| k == "token").collect();
        assert_eq!(tokens.len(), 1, "{body}");
        assert_eq!(tokens[0].1, token, "exact bytes");
        assert_eq!(
            params
                .iter()
                .filter(|(k, _)| k == "token_type_hint")
                .count(),
            1
        );
        assert!(
            params
                .iter()
                .all(|(k, _)| k == "token" || k == "token_type_hint"),
            "{body}"
        );
    }
    // Characters that could inject form parameters never leave the process.
    let hits = fake.hits();
    for token in [
        "abc&token_type_hint=refresh_token",
        "x&client_id=evil",
        "tok%2Bx",
        "a;b",
    ] {
        assert!(
            matches!(check(&auth, token).await, Err(AuthError::Malformed(_))),
            "{token}"
        );
    }
    assert_eq!(fake.hits(), hits);
}

#[tokio::test]
async fn opq_06_tokens_and_client_secrets_travel_only_in_the_body() {
    let (state, fake) = introspection_server().await;
    state.set("url-canary-tok", 200, active(json!({})));
    for auth in [ClientAuth::Basic, ClientAuth::Form] {
        let a = Authenticator::builder()
            .provider(introspection(&fake, Duration::from_secs(60), auth))
            .build()
            .unwrap();
        assert!(check(&a, "url-canary-tok").await.is_ok());
    }
    for target in fake.targets() {
        assert_eq!(target, "/introspect", "nothing in the path or query");
    }
    let bodies = state.bodies();
    assert!(
        !bodies[0].contains(CLIENT_SECRET),
        "Basic: the secret is in the header"
    );
    assert!(
        bodies[1].contains("client_secret="),
        "Form: the secret is in the body"
    );
}

#[tokio::test]
async fn opq_07_a_positive_answer_is_not_cached_past_the_token_exp() {
    let (state, fake) = introspection_server().await;
    let auth = Authenticator::builder()
        .provider(introspection(
            &fake,
            Duration::from_secs(300),
            ClientAuth::Basic,
        ))
        .build()
        .unwrap();
    state.set("short", 200, active(json!({"exp": now() + 2})));
    assert!(check(&auth, "short").await.is_ok());
    let hits = fake.hits();
    assert!(check(&auth, "short").await.is_ok());
    assert_eq!(fake.hits(), hits, "cached while it lives");
    state.set("short", 200, json!({"active": false}));
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert_eq!(check(&auth, "short").await.unwrap_err(), AuthError::Invalid);
    assert_eq!(fake.hits(), hits + 1, "asked again after exp");
}

#[tokio::test]
async fn opq_08_remote_user_apis_ignore_extra_fields_and_never_accept_bad_ones() {
    let answer: Arc<Mutex<String>> = Arc::default();
    let a = answer.clone();
    let fake = FakeApi::start(Arc::new(move |_: &str, _: &str| {
        (200, a.lock().unwrap().clone())
    }))
    .await;
    let auth = Authenticator::builder()
        .provider(EfasApiProvider::new("efas", "efas", fake.url("/user"), http_client()).unwrap())
        .build()
        .unwrap();
    *answer.lock().unwrap() =
        json!({"username":"erin","roles":["f"],"admin":true,"x":{"y":[1,2]}}).to_string();
    let p = check(&auth, "t1").await.unwrap();
    assert_eq!(
        (p.username.as_str(), p.roles.clone()),
        ("erin", vec!["f".to_owned()])
    );
    assert!(!p.has_role("admin"));
    for (i, bad) in [
        json!({"username":"erin","roles":"admin"}),
        json!({"username":"erin","roles":[1,2]}),
        json!({"username":7}),
        json!({"username":"","roles":[]}),
        json!({"roles":["admin"]}),
    ]
    .into_iter()
    .enumerate()
    {
        *answer.lock().unwrap() = bad.to_string();
        assert_eq!(
            check(&auth, &format!("bad{i}")).await.unwrap_err(),
            AuthError::Unavailable,
            "{bad}"
        );
    }
    fake.set(Fault::Huge);
    assert_eq!(
        check(&auth, "huge").await.unwrap_err(),
        AuthError::Unavailable
    );
}

#[tokio::test]
async fn opq_11_a_slow_or_broken_authorization_server_gives_503_within_the_timeout() {
    let (state, fake) = introspection_server().await;
    state.set("tok", 200, active(json!({})));
    let auth = Authenticator::builder()
        .provider(introspection(
            &fake,
            Duration::from_secs(60),
            ClientAuth::Basic,
        ))
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    for fault in [
        Fault::Delay(Duration::from_secs(5)),
        Fault::Reset,
        Fault::Status(502),
    ] {
        fake.set(fault);
        let started = Instant::now();
        assert_eq!(
            check(&auth, "tok").await.unwrap_err(),
            AuthError::Unavailable,
            "{fault:?}"
        );
        assert!(started.elapsed() < Duration::from_millis(2500), "{fault:?}");
    }
}

#[tokio::test]
async fn cache_05_a_revoked_token_is_refused_within_the_configured_ttl() {
    let (state, fake) = introspection_server().await;
    let auth = Authenticator::builder()
        .provider(introspection(
            &fake,
            Duration::from_millis(800),
            ClientAuth::Basic,
        ))
        .build()
        .unwrap();
    state.set("tok", 200, active(json!({})));
    assert!(check(&auth, "tok").await.is_ok());
    state.set("tok", 200, json!({"active": false}));
    assert!(
        check(&auth, "tok").await.is_ok(),
        "inside the revocation budget"
    );
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(check(&auth, "tok").await.unwrap_err(), AuthError::Invalid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_09_a_failing_leader_fails_its_waiters_once_and_the_next_request_retries() {
    let (state, fake) = introspection_server().await;
    state.set_raw("tok", 500, r#"{"error":"boom"}"#);
    fake.set(Fault::Delay(Duration::from_millis(300)));
    let auth = intro_auth(&fake);
    let barrier = Arc::new(tokio::sync::Barrier::new(20));
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (a, b) = (auth.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            b.wait().await;
            check(&a, "tok").await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap_err(), AuthError::Unavailable);
    }
    assert_eq!(fake.hits(), 1, "one call for all 20");
    fake.set(Fault::None);
    state.set("tok", 200, active(json!({})));
    assert!(check(&auth, "tok").await.is_ok());
}

#[tokio::test]
async fn avail_01_blackholed_endpoints_give_503_within_the_budget() {
    let (state, fake) = introspection_server().await;
    state.set("tok", 200, active(json!({})));
    fake.set(Fault::Delay(Duration::from_secs(10)));
    let ec = es256(9, "k1");
    let budget = Duration::from_millis(2500);
    let jwt_uri = authenticator(jwt_provider("jwt", fake.url("/jwks"), |_| {}));
    let discovery = authenticator(
        auth_o_tron::provider::JwtProvider::new(
            "disc",
            "disc",
            KeySource::Discovery(format!("http://{}", fake.addr)),
            http_client(),
            settings(),
        )
        .unwrap(),
    );
    let offline = offline_auth(&fake, "desp");
    let intro = intro_auth(&fake);
    for (what, auth, token) in [
        ("jwks", &jwt_uri, ec.token(&claims(""))),
        ("discovery", &discovery, ec.token(&claims(""))),
        ("introspection", &intro, "tok".to_owned()),
        ("openid-offline", &offline, "rt".to_owned()),
    ] {
        let started = Instant::now();
        assert_eq!(
            check(auth, &token).await.unwrap_err(),
            AuthError::Unavailable,
            "{what}"
        );
        assert!(
            started.elapsed() < budget,
            "{what}: {:?}",
            started.elapsed()
        );
    }
}

#[tokio::test]
async fn avail_11_rate_limiting_is_503_and_never_an_invalid_token() {
    let (state, fake) = introspection_server().await;
    state.set("tok", 200, active(json!({})));
    let auth = Authenticator::builder()
        .provider(introspection(
            &fake,
            Duration::from_secs(60),
            ClientAuth::Basic,
        ))
        .negative_cache(Duration::from_secs(30), 100)
        .build()
        .unwrap();
    fake.set(Fault::Status(429));
    assert_eq!(
        check(&auth, "tok").await.unwrap_err(),
        AuthError::Unavailable
    );
    fake.set(Fault::None);
    assert!(check(&auth, "tok").await.is_ok());
}

// ---- openid-offline: a Keycloak-shaped fake issuing real JWT access tokens ----

#[derive(Clone)]
struct Kc {
    fake: FakeApi,
    /// What `/token` answers: status and extra JSON members (the access token is added).
    token_answer: Arc<Mutex<(u16, serde_json::Value)>>,
    /// Whether `/token/introspect` says active with offline_access.
    active: Arc<Mutex<bool>>,
    /// Access-token lifetime in seconds.
    at_ttl: Arc<Mutex<u64>>,
    /// Access tokens handed out.
    issued: Arc<Mutex<Vec<String>>>,
    bodies: Arc<Mutex<Vec<(String, String)>>>,
}

impl Kc {
    fn count(&self, suffix: &str) -> usize {
        self.fake
            .targets()
            .iter()
            .filter(|t| t.ends_with(suffix))
            .count()
    }
    fn bodies_of(&self, suffix: &str) -> Vec<String> {
        self.bodies
            .lock()
            .unwrap()
            .iter()
            .filter(|(t, _)| t.ends_with(suffix))
            .map(|(_, b)| b.clone())
            .collect()
    }
}

async fn keycloak(scope: &'static str) -> Kc {
    let ec = es256(9, "k1");
    let jwks_doc = json!({"keys":[ec.jwk.clone()]}).to_string();
    let token_answer = Arc::new(Mutex::new((200u16, json!({"expires_in": 300}))));
    let active = Arc::new(Mutex::new(true));
    let at_ttl = Arc::new(Mutex::new(300u64));
    let issued: Arc<Mutex<Vec<String>>> = Arc::default();
    let bodies: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let (ta, ac, ttl, iss, bs) = (
        token_answer.clone(),
        active.clone(),
        at_ttl.clone(),
        issued.clone(),
        bodies.clone(),
    );
    let fake = FakeApi::start(Arc::new(move |target: &str, body: &str| {
        bs.lock().unwrap().push((target.to_owned(), body.to_owned()));
        if target.ends_with("/certs") {
            return (200, jwks_doc.clone());
        }
        if target.ends_with("/token/introspect") {
            let a = *ac.lock().unwrap();
            return (
                200,
                json!({"active": a, "scope": "openid offline_access", "typ": "Offline"}).to_string(),
            );
        }
        if target.ends_with("/token") {
            let (status, extra) = ta.lock().unwrap().clone();
            if status != 200 {
                return (status, extra.to_string());
            }
            let n = now();
            let at = match extra.get("access_token") {
                Some(v) => v.as_str().unwrap().to_owned(),
                None => ec.token(&format!(
                    r#"{{"sub":"rick","iss":"{ISSUER}","aud":"api","iat":{n},"exp":{},"scope":"{scope}","jti":"{}"}}"#,
                    n + *ttl.lock().unwrap(),
                    iss.lock().unwrap().len()
                )),
            };
            iss.lock().unwrap().push(at.clone());
            let mut answer = extra.clone();
            answer["access_token"] = at.into();
            answer["token_type"] = "Bearer".into();
            return (200, answer.to_string());
        }
        (404, "{}".into())
    }))
    .await;
    Kc {
        fake,
        token_answer,
        active,
        at_ttl,
        issued,
        bodies,
    }
}

fn offline_provider(fake: &FakeApi, realm: &str) -> OfflineProvider {
    OfflineProvider::new(
        "desp",
        realm,
        OfflineSettings {
            endpoints: OfflineEndpoints::Keycloak {
                iam_url: format!("http://{}", fake.addr),
                realm: realm.into(),
                cert_uri: fake.url(&format!("/realms/{realm}/protocol/openid-connect/certs")),
            },
            public_client_id: "public".into(),
            private_client_id: "private".into(),
            private_client_secret: CLIENT_SECRET.into(),
            jwt: settings(),
            max_chains: 100,
        },
        http_client(),
    )
    .unwrap()
}

fn offline_auth(fake: &FakeApi, realm: &str) -> Authenticator {
    Authenticator::builder()
        .provider(offline_provider(fake, realm))
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rt_01_fifty_concurrent_requests_with_one_refresh_token_make_one_exchange() {
    let kc = keycloak("api:read").await;
    kc.fake.set(Fault::Delay(Duration::from_millis(100)));
    let auth = offline_auth(&kc.fake, "desp");
    let barrier = Arc::new(tokio::sync::Barrier::new(50));
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (a, b) = (auth.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            b.wait().await;
            check(&a, "rt-1").await.map(|p| p.username.clone())
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), "rick");
    }
    assert_eq!(kc.count("/token"), 1, "exactly one token-endpoint call");
    assert_eq!(kc.count("/token/introspect"), 1);
}

#[tokio::test]
async fn rt_02_a_rotated_refresh_token_is_used_for_the_next_exchange_and_repeats_are_no_net() {
    let kc = keycloak("api:read").await;
    *kc.token_answer.lock().unwrap() = (200, json!({"expires_in": 2, "refresh_token": "rt-2"}));
    *kc.at_ttl.lock().unwrap() = 2;
    let auth = offline_auth(&kc.fake, "desp");
    assert!(check(&auth, "rt-1").await.is_ok());
    let hits = kc.fake.hits();
    for _ in 0..3 {
        assert!(check(&auth, "rt-1").await.is_ok());
    }
    assert_eq!(
        kc.fake.hits(),
        hits,
        "inside the access-token lifetime: no-net"
    );
    tokio::time::sleep(Duration::from_millis(2200)).await;
    *kc.token_answer.lock().unwrap() = (200, json!({"expires_in": 2, "refresh_token": "rt-3"}));
    assert!(check(&auth, "rt-1").await.is_ok());
    let exchanges = kc.bodies_of("/token");
    assert_eq!(exchanges.len(), 2);
    let rt = |b: &str| {
        form(b)
            .into_iter()
            .find(|(k, _)| k == "refresh_token")
            .unwrap()
            .1
    };
    assert_eq!(rt(&exchanges[0]), "rt-1");
    assert_eq!(
        rt(&exchanges[1]),
        "rt-2",
        "the spent token is never presented again"
    );
}

#[tokio::test]
async fn rt_03_the_exchange_is_cached_until_the_access_token_expires() {
    let kc = keycloak("api:read").await;
    *kc.at_ttl.lock().unwrap() = 2;
    let auth = offline_auth(&kc.fake, "desp");
    assert!(check(&auth, "rt-1").await.is_ok());
    assert!(check(&auth, "rt-1").await.is_ok());
    assert_eq!(kc.count("/token"), 1);
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert!(check(&auth, "rt-1").await.is_ok());
    assert_eq!(kc.count("/token"), 2, "a new exchange only after expiry");
}

#[tokio::test]
async fn rt_04_invalid_grant_is_401_and_server_trouble_is_503_and_not_cached() {
    let kc = keycloak("api:read").await;
    let auth = Authenticator::builder()
        .provider(offline_provider(&kc.fake, "desp"))
        .negative_cache(Duration::from_secs(30), 100)
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    *kc.token_answer.lock().unwrap() = (400, json!({"error": "invalid_grant"}));
    assert_eq!(
        check(&auth, "rt-dead").await.unwrap_err(),
        AuthError::Invalid
    );
    *kc.active.lock().unwrap() = false;
    assert_eq!(
        check(&auth, "rt-revoked").await.unwrap_err(),
        AuthError::Invalid
    );
    assert_eq!(
        kc.count("/token"),
        1,
        "an inactive refresh token is never exchanged"
    );
    *kc.active.lock().unwrap() = true;
    for answer in [
        (500, json!({"error": "server_error"})),
        (503, json!({})),
        (429, json!({"error": "slow_down"})),
        (400, json!({"error": "invalid_request"})),
        (401, json!({"error": "invalid_client"})),
    ] {
        *kc.token_answer.lock().unwrap() = answer.clone();
        assert_eq!(
            check(&auth, "rt-1").await.unwrap_err(),
            AuthError::Unavailable,
            "{answer:?}"
        );
    }
    *kc.token_answer.lock().unwrap() = (200, json!({"expires_in": 300}));
    assert!(check(&auth, "rt-1").await.is_ok(), "no failure was cached");
}

#[tokio::test]
async fn rt_05_a_refresh_token_of_another_client_is_401_and_our_secret_never_shows() {
    let (logs, _guard) = Captured::install();
    let kc = keycloak("api:read").await;
    let auth = offline_auth(&kc.fake, "desp");
    *kc.token_answer.lock().unwrap() = (
        400,
        json!({"error": "invalid_grant", "error_description": "Token client and authorized client don't match"}),
    );
    let err = check(&auth, "rt-of-client-x").await.unwrap_err();
    assert_eq!(err, AuthError::Invalid);
    assert!(!err.to_string().contains(CLIENT_SECRET));
    assert!(!format!("{auth:?}").contains(CLIENT_SECRET));
    assert!(!logs.text().contains(CLIENT_SECRET), "{}", logs.text());
    assert!(logs.text().contains("auth.provider"), "logging was on");
}

#[tokio::test]
async fn rt_06_scopes_come_from_the_validated_access_token_not_the_token_response() {
    let kc = keycloak("api:read").await;
    *kc.token_answer.lock().unwrap() = (
        200,
        json!({"expires_in": 300, "scope": "api:read api:write admin"}),
    );
    let auth = offline_auth(&kc.fake, "desp");
    let p = check(&auth, "rt-1").await.unwrap();
    assert!(p.scopes.allows("desp", "api:read"));
    assert!(!p.scopes.allows("desp", "api:write"));
    assert!(!p.scopes.allows("desp", "admin"));
    *kc.token_answer.lock().unwrap() = (
        200,
        json!({"expires_in": 300, "access_token": "an-opaque-access-token"}),
    );
    assert_eq!(
        check(&auth, "rt-2").await.unwrap_err(),
        AuthError::Unavailable,
        "a non-JWT access token is never trusted"
    );
}

#[tokio::test]
async fn rt_07_the_new_access_token_is_never_returned_or_logged() {
    let (logs, _guard) = Captured::install();
    let kc = keycloak("api:read").await;
    let auth = offline_auth(&kc.fake, "desp");
    let router = Router::new()
        .route(
            "/me",
            get(|p: Principal| async move { axum::Json(p.user().clone()) }),
        )
        .route_layer(AuthLayer::new(auth));
    let addr = common::serve(router).await;
    let res = common::client()
        .get(format!("http://{addr}/me"))
        .bearer_auth("rt-1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let headers = format!("{:?}", res.headers());
    let body = res.text().await.unwrap();
    let at = kc.issued.lock().unwrap()[0].clone();
    let sig = at.rsplit('.').next().unwrap().to_owned();
    for leak in [&at, &sig] {
        assert!(
            !body.contains(leak.as_str()) && !headers.contains(leak.as_str()),
            "{body}"
        );
        assert!(!logs.text().contains(leak.as_str()));
    }
}

#[tokio::test]
async fn rt_08_a_refresh_token_given_to_a_provider_without_refresh_mode_never_reaches_a_token_endpoint()
 {
    let kc = keycloak("api:read").await;
    let (_state, intro_fake) = introspection_server().await;
    let auth = Authenticator::builder()
        .provider(jwt_provider(
            "jwt",
            kc.fake.url("/realms/desp/protocol/openid-connect/certs"),
            |_| {},
        ))
        .provider(introspection(
            &intro_fake,
            Duration::from_secs(60),
            ClientAuth::Basic,
        ))
        .build()
        .unwrap();
    assert_eq!(check(&auth, "rt-1").await.unwrap_err(), AuthError::Invalid);
    assert_eq!(kc.count("/token"), 0);
}

// ---- logs ----

const CANARY_TOKEN: &str = "canary-opaque-token-4b2a";
const CANARY_PASSWORD: &str = "canary-password-77e1";
const CANARY_RT: &str = "canary-refresh-token-0c3f";
const CANARY_HMAC: &[u8] = b"canary-hmac-secret-0123456789abcdef";
const CANARY_API_KEY: &str = "canary-api-key-91aa";

/// Runs every credential kind, good and bad, through one layer with logging at TRACE and
/// returns the log text, everything else produced, and the secrets that must appear nowhere.
async fn canary_run() -> (String, String, Vec<String>) {
    use base64::Engine;
    let (logs, _guard) = Captured::install();
    let ec = es256(9, "k1");
    let idp = jwks(vec![ec.jwk.clone()]).await;
    let (state, intro_fake) = introspection_server().await;
    state.set(CANARY_TOKEN, 200, active(json!({})));
    let kc = keycloak("api:read").await;
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_url = format!("http://{}/v1", dead.local_addr().unwrap());
    drop(dead);
    let auth = Authenticator::builder()
        .provider(
            PlainProvider::new("local", "local")
                .with_user_password("bob", CANARY_PASSWORD, ["x"])
                .unwrap(),
        )
        .provider(jwt_provider("jwt", idp.url(), |_| {}))
        .provider(introspection(
            &intro_fake,
            Duration::from_secs(60),
            ClientAuth::Form,
        ))
        .provider(offline_provider(&kc.fake, "desp"))
        .provider(EcmwfApiProvider::new("ecmwf", "ecmwf", dead_url, http_client()).unwrap())
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let minter = Minter::builder("layer", SigningKey::hs256(CANARY_HMAC).unwrap())
        .build()
        .unwrap();
    let minted: Arc<Mutex<Vec<String>>> = Arc::default();
    let m = minted.clone();
    let router = Router::new()
        .route(
            "/me",
            get(move |p: Principal, t: axum::Extension<MintedToken>| {
                let m = m.clone();
                async move {
                    m.lock().unwrap().push(t.0.as_str().to_owned());
                    format!("{p:?} {:?}", t.0)
                }
            }),
        )
        .layer(AuthLayer::new(auth.clone()).mint(minter.clone()));
    let addr = common::serve(router).await;
    let jwt = ec.token(&claims(""));
    let mut output = String::new();
    let basic_ok = common::basic("bob", CANARY_PASSWORD);
    for value in [
        format!("Bearer {jwt}"),
        format!("Bearer {jwt}x"),
        format!("Bearer {CANARY_TOKEN}"),
        format!("Bearer {CANARY_TOKEN}x"),
        format!("Bearer {CANARY_RT}"),
        format!("Bearer {CANARY_API_KEY}"),
        format!("EmailKey a@b.c:{CANARY_API_KEY}"),
        basic_ok.clone(),
        common::basic("bob", &format!("{CANARY_PASSWORD}x")),
        format!("Bearer {CANARY_TOKEN}, Bearer {CANARY_TOKEN}"),
        format!("Bearer {CANARY_TOKEN} {CANARY_PASSWORD}"),
    ] {
        let res = common::client()
            .get(format!("http://{addr}/me"))
            .header("authorization", value)
            .send()
            .await
            .unwrap();
        output.push_str(&format!("{:?}", res.headers()));
        output.push_str(&res.text().await.unwrap());
    }
    output.push_str(&format!("{auth:?} {minter:?}"));
    let sig = jwt.rsplit('.').next().unwrap().to_owned();
    let mut secrets = vec![
        jwt.clone(),
        sig,
        CANARY_TOKEN.to_owned(),
        CANARY_PASSWORD.to_owned(),
        CANARY_RT.to_owned(),
        CANARY_API_KEY.to_owned(),
        CLIENT_SECRET.to_owned(),
        String::from_utf8(CANARY_HMAC.to_vec()).unwrap(),
        basic_ok.trim_start_matches("Basic ").to_owned(),
        base64::engine::general_purpose::STANDARD.encode(CLIENT_SECRET),
    ];
    secrets.extend(minted.lock().unwrap().iter().cloned());
    secrets.extend(kc.issued.lock().unwrap().iter().cloned());
    assert!(
        minted.lock().unwrap().len() >= 2,
        "the good credentials got through"
    );
    (logs.text(), output, secrets)
}

#[tokio::test]
async fn log_01_no_credential_or_secret_appears_in_logs_or_output() {
    let (logs, output, secrets) = canary_run().await;
    assert!(logs.contains("auth.provider"), "logging was on");
    for s in &secrets {
        assert!(!logs.contains(s.as_str()), "{s} leaked into the logs");
        assert!(
            !output.contains(s.as_str()),
            "{s} leaked into responses or Debug output"
        );
    }
}

#[tokio::test]
async fn log_08_no_digest_or_encoding_of_a_secret_is_logged_either() {
    use base64::Engine;
    use sha2::Digest;
    let (logs, _, secrets) = canary_run().await;
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    for s in &secrets {
        let d: [u8; 32] = sha2::Sha256::digest(s.as_bytes()).into();
        for form in [
            hex(&d),
            hex(&d[..8]),
            base64::engine::general_purpose::STANDARD.encode(d),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s.as_bytes()),
        ] {
            assert!(
                !logs.contains(&form),
                "a derivative of {s} was logged: {form}"
            );
        }
    }
    let pair: [u8; 32] = sha2::Sha256::digest(format!("bob:{CANARY_PASSWORD}")).into();
    assert!(!logs.contains(&hex(&pair)));
}

#[tokio::test]
async fn log_04_client_errors_never_log_the_url_that_carried_a_credential() {
    let (logs, _guard) = Captured::install();
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", dead.local_addr().unwrap());
    drop(dead);
    let auth = Authenticator::builder()
        .provider(EcmwfApiProvider::new("ecmwf", "ecmwf", url, http_client()).unwrap())
        .provider(
            EfasApiProvider::new(
                "efas",
                "efas",
                "http://no-such-host.invalid/u",
                http_client(),
            )
            .unwrap(),
        )
        .build()
        .unwrap();
    assert_eq!(
        check(&auth, CANARY_API_KEY).await.unwrap_err(),
        AuthError::Unavailable
    );
    let text = logs.text();
    assert!(text.contains("auth.provider.unavailable"), "{text}");
    assert!(!text.contains(CANARY_API_KEY), "{text}");
    assert!(!text.contains("token="), "no URL with its query: {text}");
}

#[tokio::test]
async fn log_05_library_errors_are_logged_by_kind_without_claim_values() {
    let (logs, _guard) = Captured::install();
    let ec = es256(9, "k1");
    let idp = jwks(vec![ec.jwk.clone()]).await;
    let auth = authenticator(jwt_provider("idp", idp.url(), |_| {}));
    assert!(check(&auth, &ec.token(&claims(""))).await.is_ok());
    let n = now() + 300;
    for payload in [
        format!(r#"{{"sub":"a","iss":"{ISSUER}","aud":{{"canary-aud-1":1}},"exp":{n}}}"#),
        format!(r#"{{"sub":"a","iss":"{ISSUER}","aud":["api",{{"canary-aud-2":1}}],"exp":{n}}}"#),
        format!(r#"{{"sub":"a","iss":"{ISSUER}","aud":"api","exp":{n},"nbf":"canary-nbf-3"}}"#),
        format!(r#"{{"sub":{{"canary-sub-4":1}},"iss":"{ISSUER}","aud":"api","exp":{n}}}"#),
        format!(r#"{{"sub":"a","iss":"{ISSUER}","aud":"canary-aud-5","exp":{n}}}"#),
        format!(r#"{{"sub":"a","iss":"{ISSUER}","aud":"canary-aud-7\n","exp":{n}}}"#),
        format!(r#"{{"sub":8675309,"iss":"{ISSUER}","aud":"api","exp":{n}}}"#),
    ] {
        let _ = check(&auth, &ec.token(&payload)).await;
    }
    let text = logs.text();
    assert!(
        text.contains("JWT rejected"),
        "the library's own checks ran: {text}"
    );
    assert!(
        !text.contains("canary") && !text.contains("8675309"),
        "{text}"
    );
}
