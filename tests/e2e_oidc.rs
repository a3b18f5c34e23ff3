//! The `jwt` and `introspection` providers against a real OpenID Provider (npm `oidc-provider`
//! run by Node from `tests/fixtures/oidc`), started and stopped by the tests on free loopback
//! ports. Feature `e2e`; the README's test command installs Node's packages.
#![cfg(all(feature = "e2e", feature = "remote"))]

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use auth_o_tron::credentials::{Credential, Scheme};
use auth_o_tron::provider::client::HttpClient;
use auth_o_tron::provider::introspection::ClientAuth;
use auth_o_tron::provider::{
    IntrospectionProvider, IntrospectionSettings, JwtProvider, JwtSettings, KeySource,
    OfflineEndpoints, OfflineProvider, OfflineSettings,
};
use auth_o_tron::{AuthError, Authenticator, Scopes};

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/oidc")
}

/// The OpenID Provider process, killed on drop.
struct Op {
    child: Child,
    port: u16,
    keys: PathBuf,
    token_path: String,
}

impl Op {
    fn start(port: u16, keys: PathBuf, at_ttl: u32) -> Op {
        Op::start_with(port, keys, at_ttl, &[])
    }

    fn start_with(port: u16, keys: PathBuf, at_ttl: u32, env: &[(&str, &str)]) -> Op {
        let dir = fixture_dir();
        assert!(
            dir.join("node_modules/oidc-provider").exists(),
            "oidc-provider is not installed: run ./scripts/test-all.sh (it runs npm ci in tests/fixtures/oidc)"
        );
        let mut child = Command::new("node")
            .arg(dir.join("op.mjs"))
            .env("PORT", port.to_string())
            .env("KEYS_FILE", &keys)
            .env("AT_TTL", at_ttl.to_string())
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node is installed");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert!(line.starts_with("ready"), "the OP did not start: {line:?}");
        // Keep draining: a closed pipe would kill the OP at its next log line.
        std::thread::spawn(move || for _ in out.lines() {});
        let token_path = match env.iter().find(|(k, _)| *k == "KEYCLOAK_REALM") {
            Some((_, realm)) => format!("/realms/{realm}/protocol/openid-connect/token"),
            None => "/token".to_owned(),
        };
        let op = Op {
            child,
            port,
            keys,
            token_path,
        };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return op;
            }
            std::thread::sleep(Duration::from_millis(30));
        }
        panic!("the OP does not listen on {port}");
    }

    fn fresh(at_ttl: u32) -> Op {
        Op::fresh_with(at_ttl, &[])
    }

    fn fresh_with(at_ttl: u32, env: &[(&str, &str)]) -> Op {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let keys =
            std::env::temp_dir().join(format!("aot-op-keys-{port}-{}.json", std::process::id()));
        let _ = std::fs::remove_file(&keys);
        Op::start_with(port, keys, at_ttl, env)
    }

    /// A refresh token for `user` with `offline_access`, obtained without a browser (CIBA).
    async fn refresh_token(&self, user: &str) -> String {
        let c = reqwest::Client::new();
        let req: serde_json::Value = c
            .post(format!("{}/backchannel", self.issuer()))
            .basic_auth("svc", Some("svc-secret"))
            .form(&[
                ("scope", "openid offline_access api:read"),
                ("login_hint", user),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = req["auth_req_id"]
            .as_str()
            .unwrap_or_else(|| panic!("CIBA: {req}"));
        let tokens: serde_json::Value = c
            .post(format!("{}{}", self.issuer(), self.token_path))
            .basic_auth("svc", Some("svc-secret"))
            .form(&[
                ("grant_type", "urn:openid:params:grant-type:ciba"),
                ("auth_req_id", id),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        tokens["refresh_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no refresh token: {tokens}"))
            .to_owned()
    }

    fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    async fn token(&self, extra: &[(&str, &str)]) -> String {
        let mut form = vec![("grant_type", "client_credentials")];
        form.extend_from_slice(extra);
        if !extra.iter().any(|(k, _)| *k == "scope") {
            form.push(("scope", "api:read"));
        }
        let res: serde_json::Value = reqwest::Client::new()
            .post(format!("{}{}", self.issuer(), self.token_path))
            .basic_auth("svc", Some("svc-secret"))
            .form(&form)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        res["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no token: {res}"))
            .to_owned()
    }
}

impl Drop for Op {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_file(&self.keys);
    }
}

fn client() -> HttpClient {
    HttpClient::builder().allow_http(true).build().unwrap()
}

fn settings() -> JwtSettings {
    JwtSettings {
        min_refetch: Duration::from_millis(200),
        ..JwtSettings::default()
    }
}

fn jwt_auth(source: KeySource, settings: JwtSettings) -> Authenticator {
    let p = JwtProvider::new("keycloak", "sso", source, client(), settings).unwrap();
    Authenticator::builder()
        .provider(p)
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap()
}

fn bearer(token: &str) -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    h.insert("authorization", format!("Bearer {token}").parse().unwrap());
    h
}

#[tokio::test]
async fn jwt_access_tokens_from_cert_uri_and_from_discovery() {
    let op = Op::fresh(300);
    let token = op.token(&[]).await;
    let auth = jwt_auth(KeySource::Uri(format!("{}/jwks", op.issuer())), settings());
    let p = auth.authenticate(&bearer(&token)).await.unwrap();
    assert_eq!(p.username, "svc", "no preferred_username: sub");
    assert_eq!(p.realm, "sso");
    assert_eq!(p.attributes["client_id"], "svc");
    assert_eq!(p.attributes["iss"], op.issuer());
    assert!(p.scopes.allows("keycloak", "api:read") && !p.scopes.allows("keycloak", "api:write"));
    assert!(p.expires_at().is_some());

    let strict = JwtSettings {
        issuer: Some(op.issuer()),
        audience: Some(vec!["api://jwt".into(), "api://jwt-es".into()]),
        typ: Some("at+jwt".into()),
        ..settings()
    };
    let auth = jwt_auth(KeySource::Discovery(op.issuer()), strict.clone());
    assert_eq!(
        auth.authenticate(&bearer(&token)).await.unwrap().username,
        "svc"
    );
    // RSA and EC keys in one JWKS: both families verify.
    let es = op.token(&[("resource", "api://jwt-es")]).await;
    assert_eq!(
        jsonwebtoken::decode_header(&es).unwrap().alg,
        jsonwebtoken::Algorithm::ES256
    );
    assert!(auth.authenticate(&bearer(&es)).await.is_ok());

    for (what, s) in [
        (
            "audience",
            JwtSettings {
                audience: Some(vec!["api://other".into()]),
                ..strict.clone()
            },
        ),
        (
            "issuer",
            JwtSettings {
                issuer: Some(format!("{}/", op.issuer())),
                ..strict.clone()
            },
        ),
        (
            "typ",
            JwtSettings {
                typ: Some("JWT".into()),
                ..strict.clone()
            },
        ),
        (
            "algorithm",
            JwtSettings {
                algorithms: vec![jsonwebtoken::Algorithm::PS256],
                ..strict.clone()
            },
        ),
    ] {
        let auth = jwt_auth(KeySource::Uri(format!("{}/jwks", op.issuer())), s);
        assert_eq!(
            auth.authenticate(&bearer(&token)).await.unwrap_err(),
            AuthError::Invalid,
            "{what}"
        );
    }
    // Discovery of a different issuer is refused: the provider cannot load keys.
    let wrong = jwt_auth(
        KeySource::Discovery(format!("{}/other", op.issuer())),
        settings(),
    );
    assert_eq!(
        wrong.authenticate(&bearer(&token)).await.unwrap_err(),
        AuthError::Unavailable
    );
}

#[tokio::test]
async fn forged_tokens_are_refused() {
    use base64::Engine;
    let b64 = |s: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let op = Op::fresh(300);
    let token = op.token(&[]).await;
    let auth = jwt_auth(KeySource::Uri(format!("{}/jwks", op.issuer())), settings());
    let parts: Vec<&str> = token.split('.').collect();
    let mut forged = Vec::new();
    // One character of the signature changed.
    let mut sig = parts[2].as_bytes().to_vec();
    sig[10] = if sig[10] == b'A' { b'B' } else { b'A' };
    forged.push(format!(
        "{}.{}.{}",
        parts[0],
        parts[1],
        String::from_utf8(sig).unwrap()
    ));
    // alg none, with and without a signature.
    let payload = parts[1];
    let none = b64(br#"{"alg":"none","typ":"JWT"}"#);
    forged.push(format!("{none}.{payload}."));
    forged.push(format!("{none}.{payload}.{}", parts[2]));
    // HS256 keyed with the RSA public key (key confusion).
    let jwks: serde_json::Value = reqwest::get(format!("{}/jwks", op.issuer()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rsa = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kty"] == "RSA")
        .unwrap();
    let hs_header = b64(format!(
        r#"{{"alg":"HS256","kid":"{}"}}"#,
        rsa["kid"].as_str().unwrap()
    )
    .as_bytes());
    let msg = format!("{hs_header}.{payload}");
    let key =
        jsonwebtoken::EncodingKey::from_secret(rsa["n"].as_str().unwrap().as_bytes()).unwrap();
    let sig =
        jsonwebtoken::crypto::sign(msg.as_bytes(), &key, jsonwebtoken::Algorithm::HS256).unwrap();
    forged.push(format!("{msg}.{sig}"));
    // Payload of another token with this token's signature.
    let other = op.token(&[("scope", "api:write")]).await;
    forged.push(format!(
        "{}.{}.{}",
        parts[0],
        other.split('.').nth(1).unwrap(),
        parts[2]
    ));
    // An unknown kid (after one rate-limited refetch).
    let unknown = b64(br#"{"alg":"RS256","kid":"nope"}"#);
    forged.push(format!("{unknown}.{payload}.{}", parts[2]));
    // jku pointing elsewhere is ignored: still verified with the provider's keys, and fails.
    let jku = b64(br#"{"alg":"RS256","kid":"x","jku":"http://127.0.0.1:9/jwks"}"#);
    forged.push(format!("{jku}.{payload}.{}", parts[2]));
    for f in &forged {
        let err = auth.authenticate(&bearer(f)).await.unwrap_err();
        assert!(
            matches!(err, AuthError::Invalid | AuthError::Malformed(_)),
            "{f}: {err:?}"
        );
    }
    assert!(
        auth.authenticate(&bearer(&token)).await.is_ok(),
        "the genuine token still works"
    );
}

#[tokio::test]
async fn expiry_bounds_the_cache() {
    let op = Op::fresh(2);
    let token = op.token(&[]).await;
    let auth = jwt_auth(
        KeySource::Uri(format!("{}/jwks", op.issuer())),
        JwtSettings {
            leeway: 0,
            ..settings()
        },
    );
    assert!(auth.authenticate(&bearer(&token)).await.is_ok());
    assert!(auth.authenticate(&bearer(&token)).await.is_ok());
    assert_eq!(auth.stats().cache_hits(), 1);
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert_eq!(
        auth.authenticate(&bearer(&token)).await.unwrap_err(),
        AuthError::Invalid
    );
}

#[tokio::test]
async fn signing_key_rotation_and_outages() {
    let mut op = Op::fresh(300);
    let old = op.token(&[]).await;
    let auth = jwt_auth(KeySource::Uri(format!("{}/jwks", op.issuer())), settings());
    assert!(auth.authenticate(&bearer(&old)).await.is_ok());
    let unseen = op.token(&[("scope", "api:write")]).await;

    // The IdP goes down: known keys keep serving tokens never seen before.
    op.stop();
    let p = auth.authenticate(&bearer(&unseen)).await.unwrap();
    assert!(p.scopes.allows("keycloak", "api:write"));

    // It comes back with new keys (same port): new tokens trigger one refetch and work; tokens
    // signed with the removed key are refused once the new set is loaded.
    let (port, keys) = (op.port, op.keys.clone());
    std::fs::remove_file(&keys).unwrap();
    drop(op);
    let op = Op::start(port, keys, 300);
    let new = op.token(&[]).await;
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(auth.authenticate(&bearer(&new)).await.is_ok());
    let fresh_auth = jwt_auth(KeySource::Uri(format!("{}/jwks", op.issuer())), settings());
    assert_eq!(
        fresh_auth.authenticate(&bearer(&old)).await.unwrap_err(),
        AuthError::Invalid
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_concurrent_misses_validate_once() {
    let op = Op::fresh(300);
    let token = op.token(&[]).await;
    let auth = jwt_auth(KeySource::Uri(format!("{}/jwks", op.issuer())), settings());
    let barrier = Arc::new(tokio::sync::Barrier::new(100));
    let ok = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let (auth, barrier, ok, h) = (auth.clone(), barrier.clone(), ok.clone(), bearer(&token));
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            if auth.authenticate(&h).await.is_ok() {
                ok.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(ok.load(Ordering::SeqCst), 100);
    assert_eq!(
        auth.stats().providers()[0].success(),
        1,
        "one validation for 100 requests"
    );
}

fn introspection(op: &Op, secret: &str) -> Authenticator {
    let s = IntrospectionSettings {
        endpoint: format!("{}/token/introspection", op.issuer()),
        client_id: "rs".into(),
        client_secret: secret.into(),
        client_auth: ClientAuth::Basic,
        audience: Some(vec!["urn:example:opaque-api".into()]),
        issuer: Some(op.issuer()),
        cache_ttl: Duration::from_secs(60),
    };
    let p = IntrospectionProvider::new("opaque", "sso", s, client()).unwrap();
    Authenticator::builder().provider(p).build().unwrap()
}

#[tokio::test]
async fn opaque_tokens_through_introspection() {
    let op = Op::fresh(300);
    let token = op.token(&[("resource", "urn:example:opaque-api")]).await;
    assert_eq!(token.split('.').count(), 1, "opaque");
    let auth = introspection(&op, "rs-secret");
    let p = auth.authenticate(&bearer(&token)).await.unwrap();
    assert_eq!(p.username, "svc");
    assert_eq!(p.scopes, Scopes::from_scope_string("opaque", "api:read"));
    assert_eq!(
        auth.authenticate(&bearer("not-a-real-token"))
            .await
            .unwrap_err(),
        AuthError::Invalid
    );
    // Our own client refused: 503, and the user's token is not marked invalid.
    let bad_client = introspection(&op, "wrong");
    assert_eq!(
        bad_client.authenticate(&bearer(&token)).await.unwrap_err(),
        AuthError::Unavailable
    );
    // A JWT access token is not introspectable by this OP: refused, never accepted.
    let jwt = op.token(&[]).await;
    assert!(auth.authenticate(&bearer(&jwt)).await.is_err());
    // Revocation is seen once the cache entry is dropped.
    reqwest::Client::new()
        .post(format!("{}/token/revocation", op.issuer()))
        .basic_auth("svc", Some("svc-secret"))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert!(
        auth.authenticate(&bearer(&token)).await.is_ok(),
        "still cached"
    );
    auth.invalidate_credential(Credential::new(Scheme::Bearer, &token));
    assert_eq!(
        auth.authenticate(&bearer(&token)).await.unwrap_err(),
        AuthError::Invalid
    );
}

#[tokio::test]
async fn opaque_token_expiry_bounds_the_cache() {
    let op = Op::fresh(2);
    let token = op.token(&[("resource", "urn:example:opaque-api")]).await;
    let auth = introspection(&op, "rs-secret");
    assert!(auth.authenticate(&bearer(&token)).await.is_ok());
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert_eq!(
        auth.authenticate(&bearer(&token)).await.unwrap_err(),
        AuthError::Invalid
    );
}

#[cfg(feature = "sidecar")]
#[tokio::test]
async fn the_sidecar_serves_jwt_users_with_scopes() {
    use auth_o_tron::sidecar::config::Config;
    use auth_o_tron::sidecar::{metrics::Metrics, router, server};
    let op = Op::fresh(300);
    let yaml = format!(
        r#"
version: "2.0.0"
server: {{port: 1}}
metrics: {{enabled: false}}
http: {{allow_http: true}}
providers:
  - {{type: jwt, name: keycloak, realm: sso, cert_uri: "{iss}/jwks", iam_realm: x, audience: "api://jwt", issuer: "{iss}"}}
jwt: {{iss: sidecar, exp: 600, secret: a-sidecar-secret-of-at-least-32-bytes}}
rules:
  - {{path: /write, scopes: {{keycloak: ["api:write"]}}}}
"#,
        iss = op.issuer()
    );
    let loaded = Config::from_yaml(&yaml, Vec::<(String, String)>::new()).unwrap();
    let built = loaded.config.build().unwrap();
    let app = router::app(&loaded.config, &built, Metrics::new(&built.authenticator));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(server::serve(
        l,
        app,
        server::Limits::default(),
        std::future::pending(),
    ));
    let c = reqwest::Client::new();
    assert_eq!(
        c.get(format!("http://{addr}/ready"))
            .send()
            .await
            .unwrap()
            .status(),
        503,
        "keys not loaded yet"
    );
    for p in built.authenticator.providers() {
        p.warm_up().await;
    }
    assert_eq!(
        c.get(format!("http://{addr}/ready"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let token = op.token(&[]).await;
    let res = c
        .get(format!("http://{addr}/authenticate"))
        .bearer_auth(&token)
        .header("x-original-uri", "/")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let minted = res.headers()["authorization"]
        .to_str()
        .unwrap()
        .strip_prefix("Bearer ")
        .unwrap()
        .to_owned();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    v.validate_aud = false;
    let claims = jsonwebtoken::decode::<serde_json::Value>(
        &minted,
        &jsonwebtoken::DecodingKey::from_secret(b"a-sidecar-secret-of-at-least-32-bytes").unwrap(),
        &v,
    )
    .unwrap()
    .claims;
    assert_eq!(
        claims["scopes"],
        serde_json::json!({"keycloak": ["api:read"]})
    );
    assert_eq!(claims["sub"], "sso-svc");
    assert!(
        claims["exp"].as_u64().unwrap()
            <= claims["attributes"]["exp"]
                .as_str()
                .unwrap()
                .parse::<u64>()
                .unwrap()
    );
    // A scope rule: the token only has api:read.
    let res = c
        .get(format!("http://{addr}/authenticate"))
        .bearer_auth(&token)
        .header("x-original-uri", "/write")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert!(
        res.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("insufficient_scope")
    );
}

fn offline(op: &Op, endpoints: OfflineEndpoints) -> Authenticator {
    let s = OfflineSettings {
        endpoints,
        public_client_id: "svc".into(),
        private_client_id: "svc".into(),
        private_client_secret: "svc-secret".into(),
        jwt: JwtSettings {
            issuer: Some(op.issuer()),
            audience: Some(vec!["api://jwt".into()]),
            ..settings()
        },
        max_chains: 1000,
    };
    let p = OfflineProvider::new("desp", "desp", s, client()).unwrap();
    Authenticator::builder()
        .provider(p)
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap()
}

fn keycloak(op: &Op) -> OfflineEndpoints {
    OfflineEndpoints::Keycloak {
        iam_url: op.issuer(),
        realm: "desp".into(),
        cert_uri: format!("{}/realms/desp/protocol/openid-connect/certs", op.issuer()),
    }
}

#[tokio::test]
async fn offline_refresh_tokens_keycloak_layout_and_discovery() {
    let op = Op::fresh_with(300, &[("KEYCLOAK_REALM", "desp")]);
    let rt = op.refresh_token("alice").await;
    let auth = offline(&op, keycloak(&op));
    let p = auth.authenticate(&bearer(&rt)).await.unwrap();
    assert_eq!((p.username.as_str(), p.realm.as_str()), ("alice", "desp"));
    assert!(p.scopes.allows("desp", "api:read"));
    assert!(auth.authenticate(&bearer(&rt)).await.is_ok());
    assert_eq!(
        auth.stats().providers()[0].success(),
        1,
        "one exchange while the access token lives"
    );
    assert_eq!(
        auth.authenticate(&bearer("not-a-refresh-token"))
            .await
            .unwrap_err(),
        AuthError::Invalid
    );
    // An access token is not an offline token.
    let at = op.token(&[("resource", "urn:example:opaque-api")]).await;
    assert_eq!(
        auth.authenticate(&bearer(&at)).await.unwrap_err(),
        AuthError::Invalid
    );

    let disc = offline(&op, OfflineEndpoints::Discovery(op.issuer()));
    assert_eq!(
        disc.authenticate(&bearer(&rt)).await.unwrap().username,
        "alice"
    );
}

#[tokio::test]
async fn jwt_and_offline_together_each_token_goes_only_where_it_belongs() {
    let op = Op::fresh_with(300, &[("KEYCLOAK_REALM", "desp")]);
    let certs = format!("{}/realms/desp/protocol/openid-connect/certs", op.issuer());
    let jwt = JwtProvider::new(
        "keycloak",
        "sso",
        KeySource::Uri(certs),
        client(),
        JwtSettings {
            audience: Some(vec!["api://jwt".into()]),
            ..settings()
        },
    )
    .unwrap();
    let offline = OfflineProvider::new(
        "desp",
        "desp",
        OfflineSettings {
            endpoints: keycloak(&op),
            public_client_id: "svc".into(),
            private_client_id: "svc".into(),
            private_client_secret: "svc-secret".into(),
            jwt: JwtSettings {
                issuer: Some(op.issuer()),
                audience: Some(vec!["api://jwt".into()]),
                ..settings()
            },
            max_chains: 1000,
        },
        client(),
    )
    .unwrap();
    // The remote provider listed first, as in the configurations that leaked tokens.
    let auth = Authenticator::builder()
        .provider(offline)
        .provider(jwt)
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    let at = op.token(&[("resource", "api://jwt")]).await;
    let p = auth.authenticate(&bearer(&at)).await.unwrap();
    assert_eq!(p.provider(), "keycloak");
    let offline_calls = |auth: &Authenticator| {
        let c = &auth.stats().providers()[0];
        c.success() + c.invalid() + c.unavailable()
    };
    assert_eq!(
        offline_calls(&auth),
        0,
        "the access token was sent to the offline provider"
    );
    // A refresh token still reaches openid-offline.
    let rt = op.refresh_token("alice").await;
    let p = auth.authenticate(&bearer(&rt)).await.unwrap();
    assert_eq!((p.username.as_str(), p.provider()), ("alice", "desp"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_refresh_tokens_keep_working_for_the_original_token() {
    let op = Op::fresh_with(2, &[("KEYCLOAK_REALM", "desp"), ("ROTATE_RT", "1")]);
    let rt = op.refresh_token("bob").await;
    let auth = offline(&op, keycloak(&op));
    // 50 concurrent first requests: one exchange, so no parallel reuse of the token.
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (auth, h) = (auth.clone(), bearer(&rt));
        tasks.push(tokio::spawn(
            async move { auth.authenticate(&h).await.is_ok() },
        ));
    }
    for t in tasks {
        assert!(t.await.unwrap());
    }
    assert_eq!(auth.stats().providers()[0].success(), 1);
    // Past the access token's lifetime, twice: each time a new exchange with the latest token.
    for round in 0..2 {
        tokio::time::sleep(Duration::from_millis(2600)).await;
        let p = auth
            .authenticate(&bearer(&rt))
            .await
            .unwrap_or_else(|e| panic!("round {round}: {e:?}"));
        assert_eq!(p.username, "bob");
    }
    assert_eq!(auth.stats().providers()[0].success(), 3);
    // The original token really was spent: using it directly trips reuse detection, which
    // revokes the grant, and from then on the provider answers 401.
    let res: serde_json::Value = reqwest::Client::new()
        .post(format!(
            "{}/realms/desp/protocol/openid-connect/token",
            op.issuer()
        ))
        .basic_auth("svc", Some("svc-secret"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(res["error"], "invalid_grant");
    tokio::time::sleep(Duration::from_millis(2600)).await;
    assert_eq!(
        auth.authenticate(&bearer(&rt)).await.unwrap_err(),
        AuthError::Invalid
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecmwf_token_generator_flow() {
    use auth_o_tron::provider::{TokenGeneratorProvider, TokenGeneratorSettings};
    use common::fake_api::{FakeApi, Fault};
    let op = Op::fresh(300);
    // The generator hands out real access tokens of the real OP.
    let access = op.token(&[]).await;
    let fake = FakeApi::start(Arc::new(move |target: &str, body: &str| {
        let req: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        match target {
            "/validate-token" => {
                let active = req["token"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("offline-"))
                    && req["client_id"] == "gen";
                (200, serde_json::json!({ "active": active }).to_string())
            }
            "/admin/refresh-access-token" if req["client_secret"] == "gen-secret" => (
                200,
                serde_json::json!({"access_token": access, "expires_in": 300}).to_string(),
            ),
            _ => (400, "{\"error\":\"bad request\"}".into()),
        }
    }))
    .await;
    let s = TokenGeneratorSettings {
        url: fake.url(""),
        cert_uri: format!("{}/jwks", op.issuer()),
        client_id: "gen".into(),
        client_secret: "gen-secret".into(),
        jwt: JwtSettings {
            audience: Some(vec!["api://jwt".into()]),
            ..settings()
        },
    };
    let p = TokenGeneratorProvider::new("ecmwf-tg", "ecmwf", s, client()).unwrap();
    let auth = Authenticator::builder().provider(p).build().unwrap();
    let user = auth.authenticate(&bearer("offline-1")).await.unwrap();
    assert_eq!(user.username, "svc");
    assert!(user.scopes.allows("ecmwf-tg", "api:read"));
    assert_eq!(fake.hits(), 2, "validate, then exchange");
    auth.authenticate(&bearer("offline-1")).await.unwrap();
    assert_eq!(fake.hits(), 2, "cached until the access token expires");
    for _ in 0..2 {
        assert_eq!(
            auth.authenticate(&bearer("revoked-token"))
                .await
                .unwrap_err(),
            AuthError::Invalid
        );
    }
    assert_eq!(fake.hits(), 4, "inactive tokens are not cached");
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let auth = auth.clone();
        tasks.push(tokio::spawn(async move {
            auth.authenticate(&bearer("offline-2")).await.is_ok()
        }));
    }
    for t in tasks {
        assert!(t.await.unwrap());
    }
    assert_eq!(
        fake.hits(),
        6,
        "100 concurrent requests: one validation, one exchange"
    );
    fake.set(Fault::Status(500));
    assert_eq!(
        auth.authenticate(&bearer("offline-3")).await.unwrap_err(),
        AuthError::Unavailable
    );
    fake.set(Fault::Garbage);
    assert_eq!(
        auth.authenticate(&bearer("offline-3")).await.unwrap_err(),
        AuthError::Unavailable
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_and_offline_fail_closed_and_coalesce() {
    let mut op = Op::fresh_with(300, &[("KEYCLOAK_REALM", "desp")]);
    let opaque = op.token(&[("resource", "urn:example:opaque-api")]).await;
    let rt = op.refresh_token("carol").await;
    let intro = {
        let s = IntrospectionSettings {
            endpoint: format!(
                "{}/realms/desp/protocol/openid-connect/token/introspect",
                op.issuer()
            ),
            client_id: "rs".into(),
            client_secret: "rs-secret".into(),
            client_auth: ClientAuth::Form,
            audience: None,
            issuer: None,
            cache_ttl: Duration::from_secs(60),
        };
        Authenticator::builder()
            .provider(IntrospectionProvider::new("opaque", "sso", s, client()).unwrap())
            .build()
            .unwrap()
    };
    // 100 concurrent misses of one opaque token: one introspection.
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let (a, h) = (intro.clone(), bearer(&opaque));
        tasks.push(tokio::spawn(
            async move { a.authenticate(&h).await.is_ok() },
        ));
    }
    for t in tasks {
        assert!(t.await.unwrap());
    }
    assert_eq!(intro.stats().providers()[0].success(), 1);
    let offline = offline(&op, keycloak(&op));
    // The IdP goes away: new credentials get 503 quickly, never 401 and never a pass.
    op.stop();
    let started = std::time::Instant::now();
    let other = "another-opaque-token";
    assert_eq!(
        intro.authenticate(&bearer(other)).await.unwrap_err(),
        AuthError::Unavailable
    );
    assert_eq!(
        offline.authenticate(&bearer(&rt)).await.unwrap_err(),
        AuthError::Unavailable
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    // What was cached keeps working.
    assert!(intro.authenticate(&bearer(&opaque)).await.is_ok());
}
