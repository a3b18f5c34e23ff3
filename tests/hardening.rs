//! Issue 7 ("Hardening") in the library and the providers: who sees a credential, call limits,
//! times from outside, user names, JWKS refresh, the `openid-offline` exchange, secrets in
//! configuration. Remote services are in-process HTTP servers over real TCP.
#![cfg(feature = "sidecar")]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use auth_o_tron::credentials::{Credential, Scheme};
use auth_o_tron::mint::{Minter, SigningKey};
use auth_o_tron::provider::client::HttpClient;
use auth_o_tron::provider::{
    EcmwfApiProvider, IntrospectionProvider, IntrospectionSettings, JwtProvider, JwtSettings,
    KeySource, OfflineEndpoints, OfflineProvider, OfflineSettings, Provider, ProviderError,
};
use auth_o_tron::{AuthError, Authenticator, User};
use base64::Engine;
use common::Tokens;
use common::fake_api::{FakeApi, Fault, token_param};
use jsonwebtoken::{Algorithm, EncodingKey};
use p256::pkcs8::EncodePrivateKey;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn client() -> HttpClient {
    HttpClient::builder()
        .allow_http(true)
        .timeout(Duration::from_millis(1500))
        .build()
        .unwrap()
}

/// An ES256 key and its public JWK under `kid`.
fn es256_key(seed: u8, kid: &str) -> (EncodingKey, serde_json::Value) {
    let der = p256::SecretKey::from_slice(&[seed; 32])
        .unwrap()
        .to_pkcs8_der()
        .unwrap();
    let key = EncodingKey::from_ec_der(der.as_bytes());
    let mut jwk = serde_json::to_value(
        jsonwebtoken::jwk::Jwk::from_encoding_key(&key, Algorithm::ES256).unwrap(),
    )
    .unwrap();
    jwk["kid"] = kid.into();
    (key, jwk)
}

/// Signs `payload` (raw JSON text) with `key` under `kid`.
fn sign(key: &EncodingKey, kid: &str, payload: &str) -> String {
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let header = format!(r#"{{"alg":"ES256","kid":"{kid}","typ":"JWT"}}"#);
    let m = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
    let sig = jsonwebtoken::crypto::sign(m.as_bytes(), key, Algorithm::ES256).unwrap();
    format!("{m}.{sig}")
}

fn valid_claims(user: &str) -> String {
    format!(
        r#"{{"sub":"{user}","aud":"api","iat":{},"exp":{}}}"#,
        now(),
        now() + 300
    )
}

/// A fake IdP serving `/jwks` with key `k1`, and a fake ECMWF who-am-i accepting `api-key`.
struct World {
    key: EncodingKey,
    idp: FakeApi,
    /// When set, `/jwks` answers 500.
    jwks_broken: Arc<std::sync::atomic::AtomicBool>,
    ecmwf: FakeApi,
}

async fn world() -> World {
    let (key, jwk) = es256_key(9, "k1");
    let jwks = serde_json::json!({ "keys": [jwk] }).to_string();
    let jwks_broken = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let broken = jwks_broken.clone();
    let idp = FakeApi::start(Arc::new(move |target: &str, _: &str| match target {
        "/jwks" if broken.load(Ordering::SeqCst) => (500, "{}".into()),
        "/jwks" => (200, jwks.clone()),
        _ => (404, "{}".into()),
    }))
    .await;
    let ecmwf = FakeApi::start(Arc::new(|target: &str, _: &str| {
        match token_param(target).as_deref() {
            Some("api-key") => (200, r#"{"uid":"api-user","email":"a@b"}"#.into()),
            _ => (403, "{}".into()),
        }
    }))
    .await;
    World {
        key,
        idp,
        jwks_broken,
        ecmwf,
    }
}

impl World {
    fn jwt(&self) -> JwtProvider {
        JwtProvider::new(
            "kc",
            "kc",
            KeySource::Uri(self.idp.url("/jwks")),
            client(),
            JwtSettings {
                audience: Some(vec!["api".into()]),
                ..JwtSettings::default()
            },
        )
        .unwrap()
    }

    /// ECMWF listed first, as in the configurations that leaked tokens.
    fn auth(&self) -> Authenticator {
        let ecmwf = EcmwfApiProvider::new("ecmwf", "ecmwf", self.ecmwf.url(""), client()).unwrap();
        Authenticator::builder()
            .provider(ecmwf)
            .provider(self.jwt())
            .build()
            .unwrap()
    }

    fn ecmwf_saw(&self, token: &str) -> bool {
        self.ecmwf
            .targets()
            .iter()
            .any(|t| token_param(t).as_deref() == Some(token))
    }
}

async fn bearer(auth: &Authenticator, token: &str) -> Result<auth_o_tron::Principal, AuthError> {
    let mut h = http::HeaderMap::new();
    h.insert("authorization", format!("Bearer {token}").parse().unwrap());
    auth.authenticate(&h).await
}

#[tokio::test]
async fn a_token_a_local_provider_accepts_never_reaches_remote_providers() {
    let w = world().await;
    let auth = w.auth();
    let token = sign(&w.key, "k1", &valid_claims("alice"));
    let p = bearer(&auth, &token).await.unwrap();
    assert_eq!((p.username.as_str(), p.provider()), ("alice", "kc"));
    assert_eq!(w.ecmwf.hits(), 0, "the JWT was sent to ECMWF");
    // Opaque API keys still reach the remote provider once the local one refused.
    let p = bearer(&auth, "api-key").await.unwrap();
    assert_eq!(p.provider(), "ecmwf");
}

#[tokio::test]
async fn a_jwt_whose_kid_a_jwt_provider_holds_is_decided_by_it_alone() {
    let w = world().await;
    let auth = w.auth();
    // Expired, and signed by a stranger under our kid: refused, and never shown to ECMWF.
    let expired = sign(
        &w.key,
        "k1",
        &format!(r#"{{"sub":"a","aud":"api","exp":{}}}"#, now() - 3600),
    );
    let (stranger, _) = es256_key(7, "k1");
    let forged = sign(&stranger, "k1", &valid_claims("alice"));
    // The first request loads the keys.
    assert_eq!(
        bearer(&auth, &expired).await.unwrap_err(),
        AuthError::Invalid
    );
    assert_eq!(
        bearer(&auth, &forged).await.unwrap_err(),
        AuthError::Invalid
    );
    assert!(!w.ecmwf_saw(&expired) && !w.ecmwf_saw(&forged));
    assert_eq!(w.ecmwf.hits(), 0);
}

#[tokio::test]
async fn a_jwt_stays_home_while_its_provider_cannot_load_keys() {
    let w = world().await;
    w.idp.set(Fault::Status(503));
    let auth = w.auth();
    let token = sign(&w.key, "k1", &valid_claims("alice"));
    assert_eq!(
        bearer(&auth, &token).await.unwrap_err(),
        AuthError::Unavailable
    );
    assert_eq!(
        w.ecmwf.hits(),
        0,
        "a JWT went to ECMWF while the IdP was down"
    );
}

#[tokio::test]
async fn a_jwt_under_a_key_no_jwt_provider_holds_still_reaches_remote_providers() {
    // openid-offline's refresh tokens: JWTs under an unpublished key.
    let w = world().await;
    let auth = w.auth();
    let warm = sign(&w.key, "k1", &valid_claims("alice"));
    bearer(&auth, &warm).await.unwrap();
    let (other, _) = es256_key(5, "refresh-key");
    let refresh = sign(&other, "refresh-key", &valid_claims("bob"));
    assert_eq!(
        bearer(&auth, &refresh).await.unwrap_err(),
        AuthError::Invalid
    );
    assert!(w.ecmwf_saw(&refresh), "the remote provider was never asked");
    // Before any key was loaded, too: the jwt provider loads its keys, finds the kid is not
    // its, and passes the token on.
    let fresh = w.auth();
    assert_eq!(
        bearer(&fresh, &refresh).await.unwrap_err(),
        AuthError::Invalid
    );
    assert_eq!(
        w.ecmwf
            .targets()
            .iter()
            .filter(|t| token_param(t).as_deref() == Some(refresh.as_str()))
            .count(),
        2
    );
}

#[tokio::test]
async fn a_busy_remote_provider_answers_503_at_once() {
    let mut slow = Tokens::new("slow", "r").delay(Duration::from_millis(600));
    for t in ["t1", "t2", "t3"] {
        slow = slow.token(t, User::new(t, "r"), None);
    }
    let auth = Authenticator::builder()
        .provider(slow.clone())
        .provider_max_concurrent_calls("slow", 2)
        .build()
        .unwrap();
    let (a, b) = (auth.clone(), auth.clone());
    let first = tokio::spawn(async move { bearer(&a, "t1").await });
    let second = tokio::spawn(async move { bearer(&b, "t2").await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let t = Instant::now();
    assert_eq!(
        bearer(&auth, "t3").await.unwrap_err(),
        AuthError::Unavailable
    );
    assert!(
        t.elapsed() < Duration::from_millis(300),
        "{:?}",
        t.elapsed()
    );
    assert!(first.await.unwrap().is_ok() && second.await.unwrap().is_ok());
    let c = &auth.stats().providers()[0];
    assert_eq!(c.busy(), 1);
    assert_eq!(slow.calls(), 2);
    // Free again once the calls finished.
    assert!(bearer(&auth, "t3").await.is_ok());

    assert_eq!(
        Authenticator::builder()
            .provider(Tokens::new("x", "r"))
            .provider_max_concurrent_calls("nope", 1)
            .build()
            .unwrap_err(),
        auth_o_tron::BuildError::UnknownProvider("nope".into())
    );
}

#[tokio::test]
async fn the_sidecar_config_sets_call_limits_per_provider() {
    let yaml = |limit: &str| {
        format!(
            r#"
version: "2.0.0"
server: {{port: 8080}}
providers:
  - {{type: ecmwf-api, name: ecmwf, realm: ecmwf, uri: "https://api.ecmwf.int/v1", max_concurrent_calls: {limit}}}
jwt: {{iss: i, exp: 60, secret: 0123456789abcdef0123456789abcdef}}
"#
        )
    };
    let loaded =
        auth_o_tron::sidecar::Config::from_yaml(&yaml("8"), Vec::<(String, String)>::new())
            .unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert_eq!(
        loaded.config.providers[0].keys.max_concurrent_calls,
        Some(8)
    );
    loaded.config.build().unwrap();
    let zero = auth_o_tron::sidecar::Config::from_yaml(&yaml("0"), Vec::<(String, String)>::new())
        .unwrap()
        .config
        .build()
        .unwrap_err();
    assert!(zero.to_string().contains("greater than zero"), "{zero}");
}

#[tokio::test]
async fn user_names_with_control_characters_are_refused() {
    let p = Tokens::new("t", "r")
        .token("forger", User::new("alice\nadmin", "r"), None)
        .token("tab", User::new("a\tb", "r"), None)
        .token("ok", User::new("jürgen, the second", "r"), None);
    let auth = Authenticator::builder().provider(p).build().unwrap();
    assert_eq!(
        bearer(&auth, "forger").await.unwrap_err(),
        AuthError::Invalid
    );
    assert_eq!(bearer(&auth, "tab").await.unwrap_err(), AuthError::Invalid);
    assert!(bearer(&auth, "ok").await.is_ok());
}

#[tokio::test]
async fn far_future_times_from_outside_are_clamped_not_a_panic() {
    let w = world().await;
    let auth = Authenticator::builder().provider(w.jwt()).build().unwrap();
    let token = sign(
        &w.key,
        "k1",
        &format!(r#"{{"sub":"alice","aud":"api","exp":{}}}"#, u64::MAX),
    );
    let p = bearer(&auth, &token).await.unwrap();
    let exp = p.expires_at().unwrap();
    assert!(exp > SystemTime::now() + Duration::from_secs(100 * 365 * 86_400));
    // Cached (a hit the second time), and the minted token is bounded by its own lifetime.
    bearer(&auth, &token).await.unwrap();
    assert_eq!(auth.stats().cache_hits(), 1);
    let minter = Minter::builder("iss", SigningKey::hs256(&[7; 32]).unwrap())
        .lifetime(Duration::from_secs(60))
        .build()
        .unwrap();
    let minted = minter.mint(&p).unwrap();
    assert!(minted.expires_at() <= now() + 61);

    // The same from an introspection answer.
    let answer = format!(r#"{{"active":true,"sub":"bob","exp":{}}}"#, u64::MAX);
    let introspect = FakeApi::start(Arc::new(move |_: &str, _: &str| (200, answer.clone()))).await;
    let p = IntrospectionProvider::new(
        "rfc7662",
        "o",
        IntrospectionSettings {
            endpoint: introspect.url("/introspect"),
            client_id: "c".into(),
            client_secret: "s".into(),
            client_auth: Default::default(),
            audience: None,
            issuer: None,
            cache_ttl: Duration::from_secs(60),
        },
        client(),
    )
    .unwrap();
    let id = p
        .authenticate(Credential::new(Scheme::Bearer, "opaque"))
        .await
        .unwrap();
    assert!(id.expires_at.unwrap() > SystemTime::now());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_keys_are_refreshed_by_one_background_fetch() {
    let w = world().await;
    let p = JwtProvider::new(
        "kc",
        "kc",
        KeySource::Uri(w.idp.url("/jwks")),
        client(),
        JwtSettings {
            audience: Some(vec!["api".into()]),
            min_refetch: Duration::from_millis(1),
            max_key_age: Duration::from_millis(100),
            ..JwtSettings::default()
        },
    )
    .unwrap();
    p.preload().await.unwrap();
    assert_eq!(w.idp.hits(), 1);
    tokio::time::sleep(Duration::from_millis(200)).await;
    // A slow, failing IdP: each refresh takes 300 ms and fails.
    w.idp.set(Fault::Delay(Duration::from_millis(300)));
    w.jwks_broken.store(true, Ordering::SeqCst);
    let token = sign(&w.key, "k1", &valid_claims("alice"));
    let calls = (0..20).map(|_| p.authenticate(Credential::new(Scheme::Bearer, &token)));
    for r in futures_util::future::join_all(calls).await {
        assert!(r.is_ok(), "old keys still serve: {r:?}");
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        w.idp.hits(),
        2,
        "20 requests with old keys caused one refresh"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_load_soon_after_an_idp_that_was_down_at_startup() {
    let w = world().await;
    w.idp.set(Fault::Status(503));
    let asked = w.jwt();
    let idle = w.jwt();
    let start = Instant::now();
    asked.warm_up().await;
    idle.warm_up().await;
    assert!(!asked.is_ready());
    let up = {
        let idp = w.idp.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            idp.set(Fault::None);
        })
    };
    let token = sign(&w.key, "k1", &valid_claims("alice"));
    let mut ok = None;
    while start.elapsed() < Duration::from_millis(2500) {
        if asked
            .authenticate(Credential::new(Scheme::Bearer, &token))
            .await
            .is_ok()
        {
            ok = Some(start.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    up.await.unwrap();
    let ok = ok.expect("no success within 2.5 s of start (IdP up after 1 s)");
    assert!(ok >= Duration::from_secs(1), "{ok:?}");
    // The provider nobody asked became ready on its own (readiness probes need no traffic).
    while !idle.is_ready() && start.elapsed() < Duration::from_millis(2500) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        idle.is_ready(),
        "not ready {:?} after start",
        start.elapsed()
    );
    // Backoff, not a busy loop: a handful of fetches in 2.5 s for two providers.
    assert!(w.idp.hits() <= 10, "{} fetches", w.idp.hits());
}

/// What the fake Keycloak does at the token endpoint.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum TokenEndpoint {
    /// Answers after a delay, rotating the refresh token.
    Rotate(Duration),
    /// Resets the connection after reading the request.
    Reset,
}

/// A fake Keycloak realm `r`: introspection accepts any token as `offline_access`, the token
/// endpoint behaves as `mode` says. Records the form bodies of both endpoints.
struct Keycloak {
    base: String,
    introspected: Arc<Mutex<Vec<String>>>,
    exchanges: Arc<AtomicUsize>,
}

async fn keycloak(mode: TokenEndpoint, access: String) -> Keycloak {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let kc = Keycloak {
        base,
        introspected: Arc::default(),
        exchanges: Arc::default(),
    };
    let (introspected, exchanges) = (kc.introspected.clone(), kc.exchanges.clone());
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let (introspected, exchanges, access) =
                (introspected.clone(), exchanges.clone(), access.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let (head, body) = loop {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let len: usize = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if body.len() >= len {
                            break (head.to_owned(), body.to_owned());
                        }
                    }
                };
                let target = head.split_whitespace().nth(1).unwrap_or("").to_owned();
                let reply = if target.ends_with("/token/introspect") {
                    introspected.lock().unwrap().push(body);
                    r#"{"active":true,"scope":"openid offline_access"}"#.to_owned()
                } else if target.ends_with("/token") {
                    exchanges.fetch_add(1, Ordering::SeqCst);
                    match mode {
                        TokenEndpoint::Reset => {
                            #[allow(deprecated)]
                            let _ = sock.set_linger(Some(Duration::ZERO));
                            return;
                        }
                        TokenEndpoint::Rotate(d) => {
                            tokio::time::sleep(d).await;
                            let n = exchanges.load(Ordering::SeqCst);
                            format!(
                                r#"{{"access_token":"{access}","refresh_token":"rotated-{n}"}}"#
                            )
                        }
                    }
                } else {
                    return;
                };
                let res = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                    reply.len()
                );
                let _ = sock.write_all(res.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    kc
}

fn offline(kc: &Keycloak, jwks: &FakeApi) -> OfflineProvider {
    OfflineProvider::new(
        "offline",
        "r",
        OfflineSettings {
            endpoints: OfflineEndpoints::Keycloak {
                iam_url: kc.base.clone(),
                realm: "r".into(),
                cert_uri: jwks.url("/jwks"),
            },
            public_client_id: "public".into(),
            private_client_id: "private".into(),
            private_client_secret: "private-secret".into(),
            jwt: JwtSettings {
                audience: Some(vec!["api".into()]),
                ..JwtSettings::default()
            },
            max_chains: 100,
        },
        client(),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_refresh_token_is_kept_when_the_request_is_cancelled() {
    let w = world().await;
    let access = sign(&w.key, "k1", &valid_claims("carol"));
    let kc = keycloak(TokenEndpoint::Rotate(Duration::from_millis(300)), access).await;
    let p = offline(&kc, &w.idp);
    p.warm_up().await;
    // The caller gives up while the exchange is under way (the IdP has rotated by then).
    let cancelled = tokio::time::timeout(
        Duration::from_millis(150),
        p.authenticate(Credential::new(Scheme::Bearer, "original")),
    )
    .await;
    assert!(cancelled.is_err(), "{cancelled:?}");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(kc.exchanges.load(Ordering::SeqCst), 1);
    // The client keeps presenting its original token; the provider uses the rotated one.
    let id = p
        .authenticate(Credential::new(Scheme::Bearer, "original"))
        .await
        .unwrap();
    assert_eq!(id.user.username, "carol");
    let seen = kc.introspected.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen[1].contains("token=rotated-1"), "{seen:?}");
}

#[tokio::test]
async fn a_token_exchange_is_never_sent_twice() {
    let w = world().await;
    let access = sign(&w.key, "k1", &valid_claims("carol"));
    let kc = keycloak(TokenEndpoint::Reset, access).await;
    let p = offline(&kc, &w.idp);
    let got = p
        .authenticate(Credential::new(Scheme::Bearer, "original"))
        .await;
    assert!(matches!(got, Err(ProviderError::Unavailable(_))), "{got:?}");
    assert_eq!(
        kc.exchanges.load(Ordering::SeqCst),
        1,
        "the exchange was retried"
    );
    // Introspection (idempotent) keeps its one retry: it is not what reset here.
    assert_eq!(kc.introspected.lock().unwrap().len(), 1);
}

#[test]
fn config_debug_shows_no_secret() {
    let yaml = r#"
version: "2.0.0"
server: {port: 8080}
providers:
  - {type: plain, name: local, realm: local, users: [{username: a, password: plain-pass-1}]}
  - {type: openid-offline, name: desp, realm: desp, cert_uri: "https://iam.example/certs", public_client_id: p,
     private_client_id: q, private_client_secret: offline-secret-2, iam_url: "https://iam.example"}
  - {type: ecmwf-token-generator, name: tg, realm: tg, cert_uri: "https://iam.example/certs", client_id: c,
     client_secret: tg-secret-3, token_generator_url: "https://tg.example"}
  - {type: introspection, name: rfc7662, realm: o, endpoint: "https://as.example/introspect", client_id: c,
     client_secret: introspection-secret-4}
augmenters:
  - {type: ldap, name: ldap, realm: local, uri: "ldap://ldap.example", search_base: "dc=x",
     ldap_password: ldap-secret-5, bind_dn: "cn=admin"}
jwt: {iss: i, exp: 60, secret: jwt-secret-6-0123456789abcdef0123456789}
"#;
    let config = auth_o_tron::sidecar::Config::from_yaml(yaml, Vec::<(String, String)>::new())
        .unwrap()
        .config;
    let text = format!("{config:?}");
    for secret in [
        "plain-pass-1",
        "offline-secret-2",
        "tg-secret-3",
        "introspection-secret-4",
        "ldap-secret-5",
        "jwt-secret-6",
    ] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    assert!(text.contains("***"));
}
