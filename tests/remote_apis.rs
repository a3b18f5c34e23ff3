//! `ecmwf-api` and `efas-api` against in-process fakes of the real services over TCP: valid and
//! invalid credentials, outages of every kind, single flight, encoding, EmailKey.
#![cfg(feature = "remote")]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use auth_o_tron::provider::client::HttpClient;
use auth_o_tron::provider::{EcmwfApiProvider, EfasApiProvider, PlainProvider};
use auth_o_tron::{AuthError, Authenticator};
use common::basic;
use common::fake_api::{FakeApi, Fault, token_param};

const KEY: &str = "k3y+with/odd.chars~";

async fn ecmwf() -> FakeApi {
    FakeApi::start(Arc::new(|target: &str, _body: &str| {
        if !target.starts_with("/v1/who-am-i?") {
            return (404, "{}".into());
        }
        match token_param(target).as_deref() {
            Some(KEY) => (200, r#"{"uid":"jdoe","email":"John.Doe@example.int","full_name":"John Doe","code":200}"#.into()),
            _ => (403, r#"{"error":"invalid"}"#.into()),
        }
    }))
    .await
}

async fn efas() -> FakeApi {
    FakeApi::start(Arc::new(|target: &str, _body: &str| match token_param(target).as_deref() {
        Some("efas-token") => (
            200,
            r#"{"username":"erin","roles":["forecaster","forecaster"],"email":"erin@efas.eu","user_id":7,"partner_abbr":"X"}"#.into(),
        ),
        _ => (403, "{}".into()),
    }))
    .await
}

fn client() -> HttpClient {
    HttpClient::builder()
        .allow_http(true)
        .timeout(Duration::from_millis(700))
        .build()
        .unwrap()
}

fn auth(ecmwf: &FakeApi, efas: &FakeApi, check_email: bool) -> Authenticator {
    Authenticator::builder()
        .provider(
            EcmwfApiProvider::new("ecmwf", "ecmwf", ecmwf.url("/v1"), client())
                .unwrap()
                .check_email(check_email),
        )
        .provider(EfasApiProvider::new("efas", "efas", efas.url("/efas/user"), client()).unwrap())
        .provider(
            PlainProvider::new("local", "local")
                .with_user_password("ops", "pw", ["admin"])
                .unwrap(),
        )
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap()
}

fn header(v: &str) -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    h.insert("authorization", v.parse().unwrap());
    h
}

#[tokio::test]
async fn valid_and_invalid_credentials() {
    let (e, f) = (ecmwf().await, efas().await);
    let a = auth(&e, &f, true);
    let p = a
        .authenticate(&header(&format!("Bearer {KEY}")))
        .await
        .unwrap();
    assert_eq!((p.username.as_str(), p.realm.as_str()), ("jdoe", "ecmwf"));
    assert_eq!(p.attributes["ecmwf-email"], "John.Doe@example.int");
    assert!(
        p.attributes.values().all(|v| !v.contains(KEY)),
        "the key never lands in attributes"
    );
    // The key reached the service intact: URL-encoded, decoded to the same bytes.
    assert!(
        e.targets()
            .iter()
            .any(|t| t.contains("k3y%2Bwith%2Fodd.chars")),
        "{:?}",
        e.targets()
    );

    let p = a.authenticate(&header("Bearer efas-token")).await.unwrap();
    assert_eq!(p.username, "erin");
    assert_eq!(p.realm, "efas", "configured realm");
    assert_eq!(p.roles, ["forecaster"]);
    assert_eq!(p.attributes["email"], "erin@efas.eu");

    // Invalid: 401, and never cached (two requests, two calls each).
    let before = (e.hits(), f.hits());
    for _ in 0..2 {
        assert_eq!(
            a.authenticate(&header("Bearer wrong")).await.unwrap_err(),
            AuthError::Invalid
        );
    }
    assert_eq!((e.hits(), f.hits()), (before.0 + 2, before.1 + 2));
    // Valid: cached.
    let hits = e.hits();
    a.authenticate(&header(&format!("Bearer {KEY}")))
        .await
        .unwrap();
    assert_eq!(e.hits(), hits);
}

#[tokio::test]
async fn emailkey_credentials() {
    let (e, f) = (ecmwf().await, efas().await);
    let a = auth(&e, &f, true);
    let p = a
        .authenticate(&header(&format!("EmailKey john.doe@example.int:{KEY}")))
        .await
        .unwrap();
    assert_eq!(p.username, "jdoe");
    assert_eq!(
        a.authenticate(&header(&format!("EmailKey mallory@example.int:{KEY}")))
            .await
            .unwrap_err(),
        AuthError::Invalid,
        "email checked against who-am-i"
    );
    let lax = auth(&e, &f, false);
    assert!(
        lax.authenticate(&header(&format!("EmailKey anyone@x:{KEY}")))
            .await
            .is_ok()
    );
    assert_eq!(
        lax.authenticate(&header("EmailKey no-colon"))
            .await
            .unwrap_err(),
        AuthError::Invalid
    );
}

#[tokio::test]
async fn outages_give_503_within_the_timeout_and_other_providers_serve() {
    let (e, f) = (ecmwf().await, efas().await);
    let a = auth(&e, &f, false);
    for fault in [
        Fault::Delay(Duration::from_secs(5)),
        Fault::Status(500),
        Fault::Status(502),
        Fault::Status(429),
        Fault::Garbage,
        Fault::Huge,
        Fault::Reset,
    ] {
        e.set(fault);
        f.set(fault);
        let started = Instant::now();
        let got = a
            .authenticate(&header(&format!("Bearer {KEY}")))
            .await
            .unwrap_err();
        assert_eq!(got, AuthError::Unavailable, "{fault:?}");
        assert!(
            started.elapsed() < Duration::from_millis(2500),
            "{fault:?} took {:?}",
            started.elapsed()
        );
        // Basic users of another provider are unaffected.
        assert!(
            a.authenticate(&header(&basic("ops", "pw"))).await.is_ok(),
            "{fault:?}"
        );
    }
    // Recovery: nothing was cached as invalid.
    e.set(Fault::None);
    f.set(Fault::None);
    assert!(
        a.authenticate(&header(&format!("Bearer {KEY}")))
            .await
            .is_ok()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_concurrent_misses_make_one_call() {
    let (e, f) = (ecmwf().await, efas().await);
    e.set(Fault::Delay(Duration::from_millis(200)));
    let a = auth(&e, &f, false);
    let barrier = Arc::new(tokio::sync::Barrier::new(100));
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let (a, b) = (a.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            b.wait().await;
            a.authenticate(&header(&format!("Bearer {KEY}")))
                .await
                .is_ok()
        }));
    }
    for t in tasks {
        assert!(t.await.unwrap());
    }
    assert_eq!(e.hits(), 1);
}
