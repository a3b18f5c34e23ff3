//! API tokens in-process, over real TCP: an axum app with the token provider in its
//! `Authenticator` and `token::api::router` under its `AuthLayer` (the README's example), on a
//! memory store behind a counting wrapper that can also be switched off.

mod common;
mod security_support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use auth_o_tron::augment::{AugmentError, Augmentation, Augmenter, AugmenterInfo};
use auth_o_tron::guard::{RequireLayer, Requirement};
use auth_o_tron::mint::{MintedToken, Minter, SigningKey};
use auth_o_tron::provider::{BoxFuture, PlainProvider};
use auth_o_tron::token::{
    Catalogue, Invalidations, MemoryStore, NewToken, Owner, Rotation, StoreError, TokenHash,
    TokenId, TokenProvider, TokenRecord, TokenSettings, TokenStore, UnixTime,
};
use auth_o_tron::{AuthLayer, Authenticator, Principal, User};
use axum::Router;
use axum::routing::get;
use common::{basic, client, serve};
use reqwest::StatusCode;
use serde_json::{Value, json};

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

/// A memory store that counts lookups, can be taken down, and can hold a lookup after it read
/// the row (`gate`): a lookup racing a revocation, made deterministic.
#[derive(Debug, Default)]
struct Counting {
    inner: MemoryStore,
    lookups: AtomicUsize,
    down: AtomicBool,
    gate: std::sync::Mutex<Option<Arc<Gate>>>,
}

/// `read` is notified when a held lookup has its answer; it returns once `release` is.
#[derive(Debug, Default)]
struct Gate {
    read: tokio::sync::Notify,
    release: tokio::sync::Notify,
}

impl Counting {
    fn new() -> Self {
        Counting {
            inner: MemoryStore::new(),
            ..Counting::default()
        }
    }
    fn check(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            Err(StoreError::Unavailable("database down".into()))
        } else {
            Ok(())
        }
    }
}

macro_rules! guarded {
    ($self:ident, $call:expr) => {{
        let r = $self.check();
        Box::pin(async move {
            r?;
            $call.await
        })
    }};
}

impl TokenStore for Counting {
    fn create(&self, token: NewToken) -> BoxFuture<'_, Result<TokenRecord, StoreError>> {
        guarded!(self, self.inner.create(token))
    }
    fn find_by_hash<'a>(
        &'a self,
        hash: &'a TokenHash,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<Option<TokenRecord>, StoreError>> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        let gate = self.gate.lock().unwrap().take();
        guarded!(self, async {
            let found = self.inner.find_by_hash(hash, now).await;
            if let Some(g) = gate {
                g.read.notify_one();
                g.release.notified().await;
            }
            found
        })
    }
    fn list<'a>(&'a self, o: &'a Owner) -> BoxFuture<'a, Result<Vec<TokenRecord>, StoreError>> {
        guarded!(self, self.inner.list(o))
    }
    fn get<'a>(
        &'a self,
        o: &'a Owner,
        id: &'a TokenId,
    ) -> BoxFuture<'a, Result<Option<TokenRecord>, StoreError>> {
        guarded!(self, self.inner.get(o, id))
    }
    fn revoke<'a>(
        &'a self,
        o: &'a Owner,
        id: &'a TokenId,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        guarded!(self, self.inner.revoke(o, id, now))
    }
    fn revoke_id<'a>(
        &'a self,
        id: &'a TokenId,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<Option<Owner>, StoreError>> {
        guarded!(self, self.inner.revoke_id(id, now))
    }
    fn revoke_all<'a>(
        &'a self,
        o: &'a Owner,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        guarded!(self, self.inner.revoke_all(o, now))
    }
    fn rotate<'a>(
        &'a self,
        o: &'a Owner,
        id: &'a TokenId,
        r: Rotation,
    ) -> BoxFuture<'a, Result<Option<TokenRecord>, StoreError>> {
        guarded!(self, self.inner.rotate(o, id, r))
    }
    fn prune(&self, before: UnixTime) -> BoxFuture<'_, Result<u64, StoreError>> {
        guarded!(self, self.inner.prune(before))
    }
    fn record_last_used<'a>(
        &'a self,
        uses: &'a [(TokenId, UnixTime)],
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        guarded!(self, self.inner.record_last_used(uses))
    }
    fn subscribe(&self) -> Option<Invalidations> {
        self.inner.subscribe()
    }
}

/// Grants `ops` to alice while `on` (an LDAP group, say).
struct Group(Arc<AtomicBool>);

impl Augmenter for Group {
    fn info(&self) -> &AugmenterInfo {
        static INFO: std::sync::LazyLock<AugmenterInfo> =
            std::sync::LazyLock::new(|| AugmenterInfo::new("group", "test", "demo"));
        &INFO
    }
    fn augment<'a>(&'a self, u: &'a User) -> BoxFuture<'a, Result<Augmentation, AugmentError>> {
        let roles = if self.0.load(Ordering::SeqCst) && u.username == "alice" {
            vec!["ops".to_owned()]
        } else {
            vec![]
        };
        Box::pin(async move {
            Ok(Augmentation {
                roles,
                attributes: BTreeMap::new(),
            })
        })
    }
}

struct App {
    addr: SocketAddr,
    store: Arc<Counting>,
    group: Arc<AtomicBool>,
}

fn catalogue() -> Catalogue {
    Catalogue::new()
        .service("polytope", ["read", "write"])
        .unwrap()
        .service("mars", ["read"])
        .unwrap()
}

async fn app(cache_ttl: Duration) -> App {
    app_on(Arc::new(Counting::new()), catalogue(), cache_ttl).await
}

/// An app on `store` offering `catalogue` (two apps on one store: a restart with a changed
/// `services` section).
async fn app_on(store: Arc<Counting>, catalogue: Catalogue, cache_ttl: Duration) -> App {
    let group = Arc::new(AtomicBool::new(true));
    let settings = TokenSettings::new(catalogue.clone())
        .lifetime_days(30, 90)
        .cache_ttl(cache_ttl);
    let users = PlainProvider::new("local", "demo")
        .with_user_password("alice", "wonderland", ["user"])
        .unwrap()
        .with_user_password("bob", "builder", ["user"])
        .unwrap();
    let dyn_store: Arc<dyn TokenStore> = store.clone();
    let auth = Authenticator::builder()
        .provider(users)
        .provider(TokenProvider::new(
            "tokens",
            dyn_store.clone(),
            settings.clone(),
        ))
        .augmenter(Group(group.clone()))
        .build()
        .unwrap();
    auth_o_tron::token::evict_on_revocation(&*dyn_store, &auth);
    let minter = Minter::builder("aot", SigningKey::hs256(SECRET).unwrap())
        .all_scopes(catalogue.all())
        .build()
        .unwrap();
    let router = Router::new()
        .route(
            "/me",
            get(|p: Principal, m: axum::Extension<MintedToken>| async move {
                axum::Json(json!({"user": p.user(), "jwt": m.as_str()}))
            }),
        )
        .route(
            "/write",
            get(|| async { "written" })
                .route_layer(RequireLayer::new(Requirement::scope("polytope", "write"))),
        )
        .merge(auth_o_tron::token::api::router(dyn_store, settings, &auth))
        .layer(AuthLayer::new(auth).mint(minter));
    App {
        addr: serve(router).await,
        store,
        group,
    }
}

impl App {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn create(&self, auth: &str, body: Value) -> reqwest::Response {
        client()
            .post(self.url("/tokens"))
            .header("authorization", auth)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// A new token of alice's; returns (id, secret).
    async fn token(&self, scopes: Value) -> (String, String) {
        let r = self
            .create(
                &basic("alice", "wonderland"),
                json!({"name": "ci", "scopes": scopes}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let v: Value = r.json().await.unwrap();
        (
            v["id"].as_str().unwrap().to_owned(),
            v["token"].as_str().unwrap().to_owned(),
        )
    }

    async fn get(&self, path: &str, auth: &str) -> reqwest::Response {
        self.send(reqwest::Method::GET, path, auth).await
    }

    async fn delete(&self, id: &str, auth: &str) -> reqwest::Response {
        self.send(reqwest::Method::DELETE, &format!("/tokens/{id}"), auth)
            .await
    }

    async fn rotate(&self, id: &str, auth: &str) -> reqwest::Response {
        self.send(reqwest::Method::POST, &format!("/tokens/{id}/rotate"), auth)
            .await
    }

    async fn send(&self, method: reqwest::Method, path: &str, auth: &str) -> reqwest::Response {
        client()
            .request(method, self.url(path))
            .header("authorization", auth)
            .send()
            .await
            .unwrap()
    }
}

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

fn claims(jwt: &str) -> Value {
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    v.validate_aud = false;
    jsonwebtoken::decode::<Value>(
        jwt,
        &jsonwebtoken::DecodingKey::from_secret(SECRET).unwrap(),
        &v,
    )
    .unwrap()
    .claims
}

#[tokio::test]
async fn a_created_token_authenticates_with_only_its_scopes() {
    let app = app(Duration::from_secs(60)).await;
    let r = app
        .create(
            &basic("alice", "wonderland"),
            json!({"name": "ci deploy", "scopes": {"polytope": ["read"]}, "expires_in_days": 7}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let created: Value = r.json().await.unwrap();
    let token = created["token"].as_str().unwrap();
    assert!(token.starts_with("aot_") && token.len() == 40, "{token}");
    assert_eq!(created["name"], "ci deploy");
    assert_eq!(created["scopes"], json!({"polytope": ["read"]}));
    let (c, e) = (
        created["created_at"].as_str().unwrap(),
        created["expires_at"].as_str().unwrap(),
    );
    assert!(c.ends_with('Z') && c.len() == 20 && e > c, "{c} {e}");

    // The token: alice of realm demo, roles snapshot + augmenter, only polytope:read.
    let me: Value = app.get("/me", &bearer(token)).await.json().await.unwrap();
    assert_eq!(me["user"]["username"], "alice");
    assert_eq!(me["user"]["realm"], "demo");
    assert_eq!(me["user"]["roles"], json!(["user", "ops"]));
    assert_eq!(me["user"]["scopes"], json!({"polytope": ["read"]}));
    let jwt = claims(me["jwt"].as_str().unwrap());
    assert_eq!(jwt["scopes"], json!({"polytope": ["read"]}));
    assert_eq!(jwt["token_id"], created["id"]);
    assert!(
        jwt["exp"].as_u64().unwrap() <= jwt["iat"].as_u64().unwrap() + 60,
        "{jwt}"
    );
    // The guard: write is not held by the token, held by alice herself.
    assert_eq!(
        app.get("/write", &bearer(token)).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.get("/write", &basic("alice", "wonderland"))
            .await
            .status(),
        StatusCode::OK
    );
    // Direct authentication: every catalogue scope in the JWT, no token_id.
    let me: Value = app
        .get("/me", &basic("alice", "wonderland"))
        .await
        .json()
        .await
        .unwrap();
    let jwt = claims(me["jwt"].as_str().unwrap());
    assert_eq!(
        jwt["scopes"],
        json!({"mars": ["read"], "polytope": ["read", "write"]})
    );
    assert!(jwt.get("token_id").is_none());
    let (_, writer) = app.token(json!({"polytope": ["write"]})).await;
    assert_eq!(
        app.get("/write", &bearer(&writer)).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn lists_show_hints_never_secrets_and_only_the_callers_tokens() {
    let app = app(Duration::from_secs(60)).await;
    let (id, secret) = app.token(json!({"mars": ["read"]})).await;
    let r = app.get("/tokens", &basic("alice", "wonderland")).await;
    assert_eq!(r.status(), StatusCode::OK);
    let text = r.text().await.unwrap();
    assert!(!text.contains(&secret), "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    let t = &v["tokens"][0];
    assert_eq!(t["id"], id.as_str());
    assert_eq!(t["hint"], format!("aot_…{}", &secret[36..]));
    assert_eq!(t["scopes"], json!({"mars": ["read"]}));
    assert_eq!(t["last_used_at"], Value::Null);
    let bobs: Value = app
        .get("/tokens", &basic("bob", "builder"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(bobs, json!({"tokens": []}));
    // Bob cannot revoke or rotate alice's token: 404, as for an unknown one.
    for id in [id.clone(), "0".repeat(32), "not-an-id".into()] {
        let r = app.delete(&id, &basic("bob", "builder")).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{id}");
    }
    let r = app.rotate(&id, &basic("bob", "builder")).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        app.get("/me", &bearer(&secret)).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn revoked_is_refused_at_once_and_rotated_replaces_the_old_secret() {
    let app = app(Duration::from_secs(600)).await;
    let (id, secret) = app.token(json!({"polytope": ["read"]})).await;
    // Cached now.
    assert_eq!(
        app.get("/me", &bearer(&secret)).await.status(),
        StatusCode::OK
    );
    let r = app.rotate(&id, &basic("alice", "wonderland")).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let rotated: Value = r.json().await.unwrap();
    let new = rotated["token"].as_str().unwrap();
    assert_ne!(rotated["id"], id.as_str());
    assert_eq!(rotated["name"], "ci");
    assert_eq!(rotated["scopes"], json!({"polytope": ["read"]}));
    assert_eq!(
        app.get("/me", &bearer(&secret)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.get("/me", &bearer(new)).await.status(), StatusCode::OK);
    let new_id = rotated["id"].as_str().unwrap();
    let r = app.delete(new_id, &basic("alice", "wonderland")).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.get("/me", &bearer(new)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // Revoked tokens stay listed (until pruned), with their revocation time.
    let list: Value = app
        .get("/tokens", &basic("alice", "wonderland"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["tokens"].as_array().unwrap().len(), 2);
    assert!(list["tokens"][1]["revoked_at"].is_string(), "{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lookup_under_way_during_a_revocation_does_not_cache_the_revoked_token() {
    let app = app(Duration::from_secs(60)).await;
    let (id, token) = app.token(json!({"polytope": ["read"]})).await;
    // The lookup reads the active row, then the token is revoked (and evicted) before the
    // lookup's answer reaches the cache.
    let gate = Arc::new(Gate::default());
    *app.store.gate.lock().unwrap() = Some(gate.clone());
    let in_flight = tokio::spawn({
        let (url, auth) = (app.url("/me"), bearer(&token));
        async move {
            client()
                .get(url)
                .header("authorization", auth)
                .send()
                .await
                .unwrap()
                .status()
        }
    });
    gate.read.notified().await;
    let r = app.delete(&id, &basic("alice", "wonderland")).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    gate.release.notify_one();
    // The request that started before the revocation is answered as it was looked up...
    assert_eq!(in_flight.await.unwrap(), StatusCode::OK);
    // ...but its answer was not cached: the next use asks the store and is refused.
    let lookups = app.store.lookups.load(Ordering::SeqCst);
    let r = app.get("/me", &bearer(&token)).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.store.lookups.load(Ordering::SeqCst), lookups + 1);
}

#[tokio::test]
async fn rotate_refuses_scopes_removed_from_the_catalogue_naming_them() {
    let before = app(Duration::from_secs(60)).await;
    let (writer, _) = before.token(json!({"polytope": ["read", "write"]})).await;
    let (reader, _) = before.token(json!({"polytope": ["read"]})).await;
    let (mars, _) = before.token(json!({"mars": ["read"]})).await;
    // Restarted with `write` and `mars` gone from `services`.
    let reduced = Catalogue::new().service("polytope", ["read"]).unwrap();
    let after = app_on(before.store.clone(), reduced, Duration::from_secs(60)).await;
    let alice = basic("alice", "wonderland");
    for (id, named) in [(&writer, "\"write\""), (&mars, "\"mars\"")] {
        let r = after.rotate(id, &alice).await;
        assert_eq!(r.status(), StatusCode::CONFLICT);
        let body: Value = r.json().await.unwrap();
        let message = body["error"].as_str().unwrap();
        assert!(message.contains(named), "{message}");
    }
    // Refused means unchanged: the old secret is not revoked, and nothing new was stored.
    let listed: Value = after.get("/tokens", &alice).await.json().await.unwrap();
    assert_eq!(listed["tokens"].as_array().unwrap().len(), 3, "{listed}");
    // A token whose scopes are all still offered rotates.
    assert_eq!(
        after.rotate(&reader, &alice).await.status(),
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn a_scope_removed_from_the_catalogue_stops_working_for_tokens_that_hold_it() {
    let before = app(Duration::from_secs(60)).await;
    let (_, secret) = before.token(json!({"polytope": ["read", "write"]})).await;
    assert_eq!(
        before.get("/write", &bearer(&secret)).await.status(),
        StatusCode::OK
    );
    // Restarted with `write` gone from `services`: the token keeps only what is offered.
    let reduced = Catalogue::new().service("polytope", ["read"]).unwrap();
    let after = app_on(before.store.clone(), reduced, Duration::from_secs(60)).await;
    assert_eq!(
        after.get("/write", &bearer(&secret)).await.status(),
        StatusCode::FORBIDDEN
    );
    let me: Value = after
        .get("/me", &bearer(&secret))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        claims(me["jwt"].as_str().unwrap())["scopes"],
        json!({"polytope": ["read"]})
    );
}

#[tokio::test]
async fn a_token_cannot_create_or_rotate_tokens_but_may_revoke_itself() {
    let app = app(Duration::from_secs(60)).await;
    let (id, secret) = app.token(json!({"polytope": ["read", "write"]})).await;
    let (other, _) = app.token(json!({"mars": ["read"]})).await;
    let r = app
        .create(
            &bearer(&secret),
            json!({"name": "x", "scopes": {"mars": ["read"]}}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let msg = r.text().await.unwrap();
    assert!(msg.contains("cannot create tokens"), "{msg}");
    let r = app.rotate(&id, &bearer(&secret)).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = app.delete(&other, &bearer(&secret)).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // It may list its owner's tokens, and revoke itself.
    assert_eq!(
        app.get("/tokens", &bearer(&secret)).await.status(),
        StatusCode::OK
    );
    let r = app.delete(&id, &bearer(&secret)).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.get("/me", &bearer(&secret)).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn bad_requests_get_400_naming_the_field() {
    let app = app(Duration::from_secs(60)).await;
    let alice = basic("alice", "wonderland");
    let ok = json!({"polytope": ["read"]});
    let cases: Vec<(String, &str)> = vec![
        ("{\"name\": ".into(), "EOF while parsing"),
        ("[]".into(), "body:"),
        (
            json!({"name": "a", "scopes": ok, "extra": 1}).to_string(),
            "unknown field `extra`",
        ),
        (json!({"scopes": ok}).to_string(), "missing field `name`"),
        (
            json!({"name": "", "scopes": ok}).to_string(),
            "name: must not be empty",
        ),
        (
            json!({"name": "  ", "scopes": ok}).to_string(),
            "name: must not be empty",
        ),
        (
            json!({"name": "x".repeat(101), "scopes": ok}).to_string(),
            "name: must be at most 100",
        ),
        (
            json!({"name": "a\u{7}b", "scopes": ok}).to_string(),
            "name: must not contain control",
        ),
        (
            json!({"name": 5, "scopes": ok}).to_string(),
            "name: invalid type",
        ),
        (
            json!({"name": "a", "scopes": {"nope": ["read"]}}).to_string(),
            "scopes: unknown service \"nope\"",
        ),
        (
            json!({"name": "a", "scopes": {"mars": ["write"]}}).to_string(),
            "scopes: unknown scope \"write\" of service \"mars\"",
        ),
        (
            json!({"name": "a", "scopes": {}}).to_string(),
            "scopes: at least one scope",
        ),
        (
            json!({"name": "a", "scopes": {"mars": "read"}}).to_string(),
            "scopes.mars: invalid type",
        ),
        (
            json!({"name": "a", "scopes": ok, "expires_in_days": 91}).to_string(),
            "expires_in_days: must be at most 90",
        ),
        (
            json!({"name": "a", "scopes": ok, "expires_in_days": 0}).to_string(),
            "expires_in_days: must be at least 1",
        ),
        (
            json!({"name": "a", "scopes": ok, "expires_in_days": -1}).to_string(),
            "expires_in_days: -1 is not a whole",
        ),
        (
            json!({"name": "a", "scopes": ok, "expires_in_days": 1.5}).to_string(),
            "expires_in_days: 1.5 is not a whole",
        ),
        (
            json!({"name": "a", "scopes": ok, "expires_in_days": 1e12}).to_string(),
            "expires_in_days: must be at most 90",
        ),
        (
            json!({"name": "a", "scopes": {"mars": []}}).to_string(),
            "scopes: service \"mars\" lists no scope",
        ),
        (
            json!({"name": "a", "scopes": ok}).to_string() + "x",
            "body: trailing characters",
        ),
    ];
    for (body, expected) in cases {
        let r = client()
            .post(app.url("/tokens"))
            .header("authorization", &alice)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{body}");
        let v: Value = r.json().await.unwrap();
        let msg = v["error"].as_str().unwrap();
        assert!(msg.contains(expected), "{body}: {msg}");
    }
    let r = client()
        .post(app.url("/tokens"))
        .header("authorization", &alice)
        .body(json!({"name": "a", "scopes": ok}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // A browser's cross-site request (Basic credentials are ambient) manages nothing.
    let r = client()
        .post(app.url("/tokens"))
        .header("authorization", &alice)
        .header("sec-fetch-site", "cross-site")
        .json(&json!({"name": "a", "scopes": ok}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        app.get("/tokens", &alice)
            .await
            .json::<Value>()
            .await
            .unwrap(),
        json!({"tokens": []})
    );
}

#[tokio::test]
async fn a_wrong_checksum_never_reaches_the_store() {
    let app = app(Duration::from_secs(60)).await;
    let (_, secret) = app.token(json!({"mars": ["read"]})).await;
    let mut forged = secret.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'a' { 'b' } else { 'a' });
    for bad in [forged.as_str(), &secret[..39], "aot_", "aot_!!!!"] {
        assert_eq!(
            app.get("/me", &bearer(bad)).await.status(),
            StatusCode::UNAUTHORIZED,
            "{bad}"
        );
    }
    assert_eq!(app.store.lookups.load(Ordering::SeqCst), 0);
    assert_eq!(
        app.get("/me", &bearer(&secret)).await.status(),
        StatusCode::OK
    );
    assert_eq!(app.store.lookups.load(Ordering::SeqCst), 1);
    // Cached: the second use costs no lookup.
    assert_eq!(
        app.get("/me", &bearer(&secret)).await.status(),
        StatusCode::OK
    );
    assert_eq!(app.store.lookups.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn store_down_is_503_for_tokens_while_basic_still_works() {
    let app = app(Duration::from_secs(60)).await;
    let (_, secret) = app.token(json!({"mars": ["read"]})).await;
    app.store.down.store(true, Ordering::SeqCst);
    assert_eq!(
        app.get("/me", &bearer(&secret)).await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    let alice = basic("alice", "wonderland");
    assert_eq!(app.get("/me", &alice).await.status(), StatusCode::OK);
    let r = app
        .create(&alice, json!({"name": "a", "scopes": {"mars": ["read"]}}))
        .await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        app.get("/tokens", &alice).await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    app.store.down.store(false, Ordering::SeqCst);
    assert_eq!(
        app.get("/me", &bearer(&secret)).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn augmenters_decide_again_at_each_use() {
    let app = app(Duration::from_millis(200)).await;
    let (_, secret) = app.token(json!({"mars": ["read"]})).await;
    let roles = |v: Value| v["user"]["roles"].clone();
    let me = app.get("/me", &bearer(&secret)).await.json().await.unwrap();
    assert_eq!(roles(me), json!(["user", "ops"]));
    // Removed from the group: once the cache entry expires, the token has lost `ops` too.
    app.group.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let me = app.get("/me", &bearer(&secret)).await.json().await.unwrap();
    assert_eq!(roles(me), json!(["user"]));
}

#[tokio::test(flavor = "current_thread")]
async fn secrets_never_reach_logs_or_debug() {
    let (captured, _guard) = security_support::Captured::install();
    let app = app(Duration::from_secs(60)).await;
    let (id, secret) = app.token(json!({"mars": ["read"]})).await;
    assert_eq!(
        app.get("/me", &bearer(&secret)).await.status(),
        StatusCode::OK
    );
    let r = app.rotate(&id, &basic("alice", "wonderland")).await;
    let rotated: Value = r.json().await.unwrap();
    let new = rotated["token"].as_str().unwrap().to_owned();
    let new_id = rotated["id"].as_str().unwrap().to_owned();
    let r = app.delete(&new_id, &bearer(&new)).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let _ = app.get("/me", &bearer(&new)).await;
    let logs = captured.text();
    for s in [&secret, &new] {
        assert!(!logs.contains(s.as_str()), "secret in logs:\n{logs}");
        assert!(!logs.contains(&s[4..]), "secret body in logs:\n{logs}");
    }
    // One audit line per create, rotate and revoke, naming the token and the caller.
    for (event, id) in [
        ("token.created", &id),
        ("token.rotated", &new_id),
        ("token.revoked", &new_id),
    ] {
        let lines: Vec<&str> = logs
            .lines()
            .filter(|l| l.contains(event) && l.contains(id.as_str()))
            .collect();
        assert_eq!(lines.len(), 1, "{event}:\n{logs}");
        assert!(lines[0].contains("alice"), "{}", lines[0]);
    }
    // Debug of what the store and the API hand around carries no secret.
    let records = app.store.list(&Owner::new("alice", "demo")).await.unwrap();
    let debug = format!(
        "{records:?} {:?}",
        auth_o_tron::token::TokenFormat::default()
    );
    assert!(!debug.contains(&secret) && !debug.contains(&new), "{debug}");
}

#[tokio::test]
async fn rotate_refuses_what_a_cross_site_form_can_send() {
    let app = app(Duration::from_secs(60)).await;
    let (id, secret) = app.token(json!({"mars": ["read"]})).await;
    for ct in [
        "application/x-www-form-urlencoded",
        "text/plain;charset=UTF-8",
        "multipart/form-data; boundary=x",
    ] {
        let r = client()
            .post(app.url(&format!("/tokens/{id}/rotate")))
            .header("authorization", basic("alice", "wonderland"))
            .header("content-type", ct)
            .body("a=b")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ct}");
    }
    // Nothing was rotated: the token still works, and a plain rotate does.
    assert_eq!(
        app.get("/me", &bearer(&secret)).await.status(),
        StatusCode::OK
    );
    let r = app.rotate(&id, &basic("alice", "wonderland")).await;
    assert_eq!(r.status(), StatusCode::CREATED);
}
