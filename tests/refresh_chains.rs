//! openid-offline's refresh-token chains in a shared store: the chain stores (memory, SQLite,
//! PostgreSQL with feature `e2e`) pass one compare-and-swap suite; two replicas over one store
//! continue one chain and, racing, present each refresh token once; with `e2e`, two sidecar
//! processes on one PostgreSQL do, and the stored row holds no token in clear. The IdP is an
//! in-process Keycloak-shaped fake that rotates on every exchange and, like Keycloak with
//! "revoke refresh token" on, revokes the whole grant when a spent token comes back.
#![cfg(feature = "sidecar")]

mod common;
#[path = "security_support/mod.rs"]
mod support;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use auth_o_tron::Authenticator;
use auth_o_tron::provider::chain::{ChainKey, ChainStore, MemoryChains};
use auth_o_tron::provider::{OfflineEndpoints, OfflineProvider, OfflineSettings};
use common::fake_api::{FakeApi, Fault};
use serde_json::json;
use support::*;

const NOW: i64 = 1_800_000_000;
const ORIGINAL: &str = "rt-original-5f1c9a";

// ---- the chain stores ----

/// Sixteen claims at once, alternating between `a` and `b`: the generations won.
async fn race(
    a: &dyn ChainStore,
    b: &dyn ChainStore,
    chain: &ChainKey,
    seen: Option<i64>,
    now: i64,
) -> Vec<i64> {
    let claims = futures_util::future::join_all((0..16).map(|i| {
        let s = if i % 2 == 0 { a } else { b };
        s.claim(chain, seen, now, now + 30)
    }))
    .await;
    claims.into_iter().filter_map(|c| c.unwrap()).collect()
}

/// Two handles (`a`, `b`) on one chain store: what two replicas see.
async fn chain_suite(a: &dyn ChainStore, b: &dyn ChainStore) {
    let chain: ChainKey = [7; 32];
    assert_eq!(a.load(&chain).await.unwrap(), None);
    // Sixteen first claims at once, from both handles: one wins.
    assert_eq!(
        race(a, b, &chain, None, NOW).await,
        [1],
        "exactly one first claim"
    );
    // While the lease runs nobody else claims, even having seen the current generation.
    assert_eq!(
        b.claim(&chain, Some(1), NOW + 1, NOW + 31).await.unwrap(),
        None
    );
    let state = b.load(&chain).await.unwrap().unwrap();
    assert!(state.is_claimed(NOW + 1, 30) && state.sealed.is_none());
    assert!(
        a.release(&chain, 1, Some(b"sealed-1"), NOW + 2)
            .await
            .unwrap()
    );
    let state = b.load(&chain).await.unwrap().unwrap();
    assert_eq!(
        (state.generation, state.sealed.as_deref()),
        (1, Some(&b"sealed-1"[..]))
    );
    assert!(!state.is_claimed(NOW + 2, 30));
    // Released: the next claims race on generation 1, and again one wins.
    assert_eq!(race(a, b, &chain, Some(1), NOW + 3).await, [2]);
    // A stale generation neither claims nor releases.
    assert_eq!(
        a.claim(&chain, Some(1), NOW + 40, NOW + 70).await.unwrap(),
        None
    );
    assert!(!a.release(&chain, 1, Some(b"stale"), NOW + 4).await.unwrap());
    // Released without a new token: the sealed one stays.
    assert!(b.release(&chain, 2, None, NOW + 4).await.unwrap());
    let state = a.load(&chain).await.unwrap().unwrap();
    assert_eq!(
        (state.generation, state.sealed.as_deref()),
        (2, Some(&b"sealed-1"[..]))
    );
    // A claimant that died: its lease runs out and another takes over; its late release is
    // refused and changes nothing.
    assert_eq!(
        a.claim(&chain, Some(2), NOW + 5, NOW + 35).await.unwrap(),
        Some(3)
    );
    assert_eq!(
        b.claim(&chain, Some(3), NOW + 20, NOW + 50).await.unwrap(),
        None
    );
    assert_eq!(
        b.claim(&chain, Some(3), NOW + 35, NOW + 65).await.unwrap(),
        Some(4)
    );
    assert!(!a.release(&chain, 3, Some(b"late"), NOW + 36).await.unwrap());
    assert!(
        b.release(&chain, 4, Some(b"sealed-4"), NOW + 37)
            .await
            .unwrap()
    );
    let state = a.load(&chain).await.unwrap().unwrap();
    assert_eq!(
        (state.generation, state.sealed.as_deref()),
        (4, Some(&b"sealed-4"[..]))
    );
    // Another chain is another row.
    assert_eq!(a.load(&[8; 32]).await.unwrap(), None);

    // A chain the IdP never rotated leaves nothing once released.
    let never: ChainKey = [9; 32];
    assert_eq!(a.claim(&never, None, NOW, NOW + 30).await.unwrap(), Some(1));
    assert!(b.release(&never, 1, None, NOW + 1).await.unwrap());
    assert_eq!(a.load(&never).await.unwrap(), None);

    // A lease ending further away than a lease lasts (a writer with a wrong clock) does not
    // hold the chain.
    let skewed: ChainKey = [10; 32];
    assert_eq!(
        a.claim(&skewed, None, NOW, NOW + 100_000).await.unwrap(),
        Some(1)
    );
    let state = b.load(&skewed).await.unwrap().unwrap();
    assert!(!state.is_claimed(NOW + 1, 30));
    assert_eq!(
        b.claim(&skewed, Some(1), NOW + 1, NOW + 31).await.unwrap(),
        Some(2)
    );
}

/// SQL stores forget chains idle since before the prune time, and only those.
async fn prune_suite(a: &dyn ChainStore) {
    let t = NOW + 1000;
    a.prune(t - 1).await.unwrap();
    let (idle, busy): (ChainKey, ChainKey) = ([20; 32], [21; 32]);
    for (chain, at) in [(idle, t), (busy, t + 100)] {
        assert_eq!(a.claim(&chain, None, at, at + 30).await.unwrap(), Some(1));
        assert!(a.release(&chain, 1, Some(b"sealed"), at).await.unwrap());
    }
    assert_eq!(a.prune(t - 1).await.unwrap(), 0);
    assert_eq!(a.prune(t + 50).await.unwrap(), 1);
    assert_eq!(a.load(&idle).await.unwrap(), None);
    assert!(a.load(&busy).await.unwrap().is_some());
    // The store's clock is the database's: near this process's (same machine).
    let db = a.now().await.unwrap();
    assert!((db - now() as i64).abs() <= 2, "{db}");
}

#[tokio::test]
async fn memory_chains_pass_the_suite() {
    let m = MemoryChains::new(100);
    chain_suite(&m, &m).await;
}

fn sqlite_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}", dir.path().join("tokens.db").display())
}

/// The token store's own chains (`TokenStore::chains`).
async fn chains_of(url: &str) -> Arc<dyn auth_o_tron::token::TokenStore> {
    let store = auth_o_tron::token::store::open(url).await.unwrap();
    assert!(store.chains().is_some(), "{url} keeps chains");
    store
}

#[tokio::test]
async fn sqlite_chains_pass_the_suite_from_two_pools_on_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (
        chains_of(&sqlite_url(&dir)).await,
        chains_of(&sqlite_url(&dir)).await,
    );
    chain_suite(a.chains().unwrap(), b.chains().unwrap()).await;
    prune_suite(a.chains().unwrap()).await;
}

// ---- a rotating IdP with reuse detection ----

#[derive(Default)]
struct Grant {
    /// The refresh token that works now.
    current: String,
    /// Tokens exchanged before (spent).
    spent: HashSet<String>,
    /// Every refresh token presented at the token endpoint, in order.
    presented: Vec<String>,
    /// Set when a spent token came back: the grant is dead.
    revoked: bool,
    /// The IdP answers exchanges without a new refresh token (no rotation).
    no_rotation: bool,
    /// The next exchange rotates but answers without an access token.
    no_access_once: bool,
}

#[derive(Clone)]
struct Idp {
    fake: FakeApi,
    grant: Arc<Mutex<Grant>>,
}

fn form_value(body: &str, key: &str) -> String {
    body.split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v.to_owned())
        .unwrap_or_default()
}

/// Keycloak paths for realm `desp`; access tokens live `at_ttl` seconds.
async fn idp(at_ttl: u64) -> Idp {
    let ec = es256(11, "k1");
    let jwks = json!({"keys": [ec.jwk.clone()]}).to_string();
    let grant = Arc::new(Mutex::new(Grant {
        current: ORIGINAL.into(),
        ..Grant::default()
    }));
    let g = grant.clone();
    let fake = FakeApi::start(Arc::new(move |target: &str, body: &str| {
        let mut g = g.lock().unwrap();
        if target.ends_with("/certs") {
            return (200, jwks.clone());
        }
        if target.ends_with("/token/introspect") {
            // Like Keycloak: a spent token of a live grant still introspects as active; only
            // presenting it at the token endpoint shows the reuse.
            let token = form_value(body, "token");
            let active = !g.revoked && (token == g.current || g.spent.contains(&token));
            let doc = json!({"active": active, "scope": "openid offline_access"});
            return (200, doc.to_string());
        }
        if target.ends_with("/token") {
            let rt = form_value(body, "refresh_token");
            g.presented.push(rt.clone());
            if g.revoked || rt != g.current {
                // Reuse detection: a spent token revokes the grant.
                g.revoked |= g.spent.contains(&rt);
                return (400, json!({"error": "invalid_grant"}).to_string());
            }
            let n = now();
            if g.no_rotation {
                let at = ec.token(&format!(
                    r#"{{"sub":"rick","iss":"{ISSUER}","aud":"api","iat":{n},"exp":{}}}"#,
                    n + at_ttl
                ));
                return (
                    200,
                    json!({"access_token": at, "expires_in": at_ttl}).to_string(),
                );
            }
            g.spent.insert(rt);
            g.current = format!("rt-rotated-{}", g.spent.len());
            if std::mem::take(&mut g.no_access_once) {
                return (200, json!({"refresh_token": g.current}).to_string());
            }
            let at = ec.token(&format!(
                r#"{{"sub":"rick","iss":"{ISSUER}","aud":"api","iat":{n},"exp":{},"jti":"{}"}}"#,
                n + at_ttl,
                g.spent.len()
            ));
            let answer = json!({"access_token": at, "token_type": "Bearer",
                "expires_in": at_ttl, "refresh_token": g.current});
            return (200, answer.to_string());
        }
        (404, "{}".into())
    }))
    .await;
    Idp { fake, grant }
}

impl Idp {
    fn presented(&self) -> Vec<String> {
        self.grant.lock().unwrap().presented.clone()
    }
    fn revoked(&self) -> bool {
        self.grant.lock().unwrap().revoked
    }
    fn current(&self) -> String {
        self.grant.lock().unwrap().current.clone()
    }
    fn with(&self, f: impl FnOnce(&mut Grant)) {
        f(&mut self.grant.lock().unwrap());
    }
}

/// One replica: an authenticator whose openid-offline provider keeps chains in `chains`.
fn replica(idp: &Idp, chains: Arc<dyn ChainStore>) -> Authenticator {
    replica_with(idp, chains, "desp", http_client(), Duration::from_secs(3))
}

fn provider(
    idp: &Idp,
    name: &str,
    client: auth_o_tron::provider::client::HttpClient,
) -> OfflineProvider {
    OfflineProvider::new(
        name,
        "desp",
        OfflineSettings {
            endpoints: OfflineEndpoints::Keycloak {
                iam_url: format!("http://{}", idp.fake.addr),
                realm: "desp".into(),
                cert_uri: idp.fake.url("/realms/desp/protocol/openid-connect/certs"),
            },
            public_client_id: "public".into(),
            private_client_id: "private".into(),
            private_client_secret: "private-secret".into(),
            jwt: settings(),
            max_chains: 100,
        },
        client,
    )
    .unwrap()
}

/// A replica with provider `name`, `client`, and the authenticator's provider `timeout`.
fn replica_with(
    idp: &Idp,
    chains: Arc<dyn ChainStore>,
    name: &str,
    client: auth_o_tron::provider::client::HttpClient,
    timeout: Duration,
) -> Authenticator {
    Authenticator::builder()
        .provider(provider(idp, name, client).chain_store(chains))
        .timeout(timeout)
        .build()
        .unwrap()
}

/// The chain key of `token` at provider `name` of `idp`.
fn chain_key(idp: &Idp, name: &str, token: &str) -> ChainKey {
    use sha2::Digest;
    let endpoint = format!(
        "http://{}/realms/desp/protocol/openid-connect/token",
        idp.fake.addr
    );
    sha2::Sha256::digest(format!("{name}\0{endpoint}\0{token}")).into()
}

/// Two token stores on one SQLite file, as two replicas' chain stores.
async fn two_sqlite_stores(dir: &tempfile::TempDir) -> [Arc<dyn ChainStore>; 2] {
    let url = sqlite_url(dir);
    let (a, b) = (open_chains(&url).await, open_chains(&url).await);
    [a, b]
}

/// A token store as a chain store, as the sidecar has it (`LazyStore`), opened now: SQLite's
/// migrations take no lock, so two pools must not open one new file at the same moment.
async fn open_chains(url: &str) -> Arc<dyn ChainStore> {
    let store = auth_o_tron::token::LazyStore::new("test store", {
        let url = url.to_owned();
        move || {
            let url = url.clone();
            Box::pin(async move { Ok(auth_o_tron::token::store::open(&url).await?) })
        }
    });
    store.open().await.unwrap();
    Arc::new(store)
}

async fn a_chain_continues_on_the_other_replica(stores: [Arc<dyn ChainStore>; 2]) {
    let idp = idp(300).await;
    let [a, b] = stores.map(|s| replica(&idp, s));
    let p = check(&a, ORIGINAL).await.unwrap();
    assert_eq!(p.username, "rick");
    // B has nothing cached: it exchanges, and with the chain's latest token, not the spent one.
    let p = check(&b, ORIGINAL).await.unwrap();
    assert_eq!(p.username, "rick");
    assert_eq!(idp.presented(), [ORIGINAL, "rt-rotated-1"]);
    assert!(!idp.revoked(), "reuse detection never tripped");
    assert_eq!(idp.current(), "rt-rotated-2");
}

async fn racing_replicas_present_each_refresh_token_once(stores: [Arc<dyn ChainStore>; 2]) {
    let idp = idp(300).await;
    // Every answer is slow: both replicas want an exchange while the other's is under way.
    idp.fake.set(Fault::Delay(Duration::from_millis(300)));
    let [a, b] = stores.map(|s| replica(&idp, s));
    let (ra, rb) = tokio::join!(check(&a, ORIGINAL), check(&b, ORIGINAL));
    assert_eq!(ra.unwrap().username, "rick");
    assert_eq!(rb.unwrap().username, "rick");
    let presented = idp.presented();
    assert_eq!(
        presented,
        [ORIGINAL, "rt-rotated-1"],
        "one exchange per token"
    );
    assert!(!idp.revoked());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_one_sqlite_file_continue_one_chain() {
    let dir = tempfile::tempdir().unwrap();
    a_chain_continues_on_the_other_replica(two_sqlite_stores(&dir).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_replicas_on_one_sqlite_file_present_each_refresh_token_once() {
    let dir = tempfile::tempdir().unwrap();
    racing_replicas_present_each_refresh_token_once(two_sqlite_stores(&dir).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_shared_store_a_second_replica_trips_reuse_detection() {
    // What the shared store fixes: each replica with its own memory presents the original.
    let idp = idp(300).await;
    let a = replica(&idp, Arc::new(MemoryChains::new(10)));
    let b = replica(&idp, Arc::new(MemoryChains::new(10)));
    assert!(check(&a, ORIGINAL).await.is_ok());
    assert!(check(&b, ORIGINAL).await.is_err());
    assert!(idp.revoked(), "the spent original came back");
}

// ---- what a chain leaves behind ----

async fn only_rotations_leave_a_chain(chains: Arc<dyn ChainStore>) {
    let idp = idp(300).await;
    let auth = replica(&idp, chains.clone());
    // Bearer tokens that are no live offline token: refused, introspected only, no row.
    let junk: Vec<String> = (0..20).map(|i| format!("junk-{i}")).collect();
    for j in &junk {
        refused(&auth, j, j).await;
        assert_eq!(
            chains.load(&chain_key(&idp, "desp", j)).await.unwrap(),
            None
        );
    }
    assert!(
        idp.presented().is_empty(),
        "junk never reaches the token endpoint"
    );
    // A live token the IdP does not rotate: served, and no row stays.
    idp.with(|g| g.no_rotation = true);
    assert_eq!(check(&auth, ORIGINAL).await.unwrap().username, "rick");
    let key = chain_key(&idp, "desp", ORIGINAL);
    assert_eq!(chains.load(&key).await.unwrap(), None);
    // Rotation: a row holding the sealed token.
    idp.with(|g| g.no_rotation = false);
    let fresh = replica(&idp, chains.clone());
    assert_eq!(check(&fresh, ORIGINAL).await.unwrap().username, "rick");
    assert!(chains.load(&key).await.unwrap().unwrap().sealed.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_rotations_leave_a_chain_in_memory() {
    only_rotations_leave_a_chain(Arc::new(MemoryChains::new(100))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_rotations_leave_a_chain_in_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    only_rotations_leave_a_chain(open_chains(&sqlite_url(&dir)).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_memory_store_keeps_its_live_chain_whatever_else_comes() {
    let idp = idp(300).await;
    let chains: Arc<dyn ChainStore> = Arc::new(MemoryChains::new(1));
    assert!(
        check(&replica(&idp, chains.clone()), ORIGINAL)
            .await
            .is_ok()
    );
    let auth = replica(&idp, chains.clone());
    for i in 0..50 {
        refused(&auth, &format!("junk-{i}"), "junk").await;
    }
    // The chain survived: a fresh replica continues it with the rotated token.
    assert!(check(&replica(&idp, chains), ORIGINAL).await.is_ok());
    assert_eq!(idp.presented(), [ORIGINAL, "rt-rotated-1"]);
    assert!(!idp.revoked());
}

// ---- leases ----

/// A chain store whose clock (the "database's") runs `ahead` seconds after the first claim, and
/// whose releases fail `failing_releases` times.
#[derive(Debug, Default)]
struct Skewed {
    inner: MemoryChainsBox,
    ahead: std::sync::atomic::AtomicI64,
    claimed: std::sync::atomic::AtomicBool,
    leases: Mutex<Vec<i64>>,
    failing_releases: std::sync::atomic::AtomicUsize,
}

#[derive(Debug)]
struct MemoryChainsBox(MemoryChains);

impl Default for MemoryChainsBox {
    fn default() -> Self {
        MemoryChainsBox(MemoryChains::new(100))
    }
}

impl ChainStore for Skewed {
    fn load<'a>(
        &'a self,
        chain: &'a ChainKey,
    ) -> auth_o_tron::provider::BoxFuture<
        'a,
        Result<
            Option<auth_o_tron::provider::chain::ChainState>,
            auth_o_tron::provider::chain::ChainError,
        >,
    > {
        self.inner.0.load(chain)
    }
    fn claim<'a>(
        &'a self,
        chain: &'a ChainKey,
        seen: Option<i64>,
        now: i64,
        until: i64,
    ) -> auth_o_tron::provider::BoxFuture<
        'a,
        Result<Option<i64>, auth_o_tron::provider::chain::ChainError>,
    > {
        use std::sync::atomic::Ordering;
        self.leases.lock().unwrap().push(until - now);
        self.claimed.store(true, Ordering::SeqCst);
        self.inner.0.claim(chain, seen, now, until)
    }
    fn release<'a>(
        &'a self,
        chain: &'a ChainKey,
        generation: i64,
        sealed: Option<&'a [u8]>,
        now: i64,
    ) -> auth_o_tron::provider::BoxFuture<'a, Result<bool, auth_o_tron::provider::chain::ChainError>>
    {
        use std::sync::atomic::Ordering;
        let fail = self
            .failing_releases
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if fail {
            return Box::pin(async {
                Err(auth_o_tron::provider::chain::ChainError::new(
                    "database down",
                ))
            });
        }
        self.inner.0.release(chain, generation, sealed, now)
    }
    fn now(
        &self,
    ) -> auth_o_tron::provider::BoxFuture<'_, Result<i64, auth_o_tron::provider::chain::ChainError>>
    {
        use std::sync::atomic::Ordering;
        let ahead = if self.claimed.load(Ordering::SeqCst) {
            self.ahead.load(Ordering::SeqCst)
        } else {
            0
        };
        Box::pin(async move { Ok(now() as i64 + ahead) })
    }
    fn prune(
        &self,
        before: i64,
    ) -> auth_o_tron::provider::BoxFuture<'_, Result<u64, auth_o_tron::provider::chain::ChainError>>
    {
        self.inner.0.prune(before)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_that_are_no_live_offline_token_never_claim_a_chain() {
    let idp = idp(300).await;
    let store = Arc::new(Skewed::default());
    let auth = replica(&idp, store.clone());
    for i in 0..20 {
        refused(&auth, &format!("junk-{i}"), "junk").await;
    }
    assert!(
        store.leases.lock().unwrap().is_empty(),
        "no claim, no write"
    );
}

fn client_with_timeout(timeout: Duration) -> auth_o_tron::provider::client::HttpClient {
    auth_o_tron::provider::client::HttpClient::builder()
        .allow_http(true)
        .timeout(timeout)
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lease_outlasts_the_calls_made_under_it() {
    let idp = idp(300).await;
    let store = Arc::new(Skewed::default());
    let auth = replica_with(
        &idp,
        store.clone(),
        "desp",
        client_with_timeout(Duration::from_secs(20)),
        Duration::from_secs(3),
    );
    assert!(check(&auth, ORIGINAL).await.is_ok());
    // An introspection sent twice, an exchange, a connect (default 2 s) and a margin.
    let leases = store.leases.lock().unwrap().clone();
    assert!(
        !leases.is_empty() && leases.iter().all(|&l| l >= 3 * 20 + 2),
        "{leases:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_exchange_is_sent_with_less_than_a_timeout_of_lease_left() {
    let idp = idp(300).await;
    let store = Arc::new(Skewed::default());
    // By the store's clock, the lease is all but over right after the claim.
    let lease = 3 * 4 + 2 + 5;
    store
        .ahead
        .store(lease - 3, std::sync::atomic::Ordering::SeqCst);
    let auth = replica_with(
        &idp,
        store.clone(),
        "desp",
        client_with_timeout(Duration::from_secs(4)),
        Duration::from_secs(3),
    );
    assert!(matches!(
        check(&auth, ORIGINAL).await,
        Err(auth_o_tron::AuthError::Unavailable)
    ));
    assert!(idp.presented().is_empty(), "{:?}", idp.presented());
    // The chain is not left claimed nor written.
    store.ahead.store(0, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        store
            .load(&chain_key(&idp, "desp", ORIGINAL))
            .await
            .unwrap(),
        None
    );
}

// ---- chains are per provider ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_providers_on_one_store_never_share_a_chain() {
    // Two IdPs whose grants both start with the same refresh-token string.
    let (ia, ib) = (idp(300).await, idp(300).await);
    let chains: Arc<dyn ChainStore> = Arc::new(MemoryChains::new(100));
    let a = replica_with(
        &ia,
        chains.clone(),
        "a",
        http_client(),
        Duration::from_secs(3),
    );
    let b = replica_with(
        &ib,
        chains.clone(),
        "b",
        http_client(),
        Duration::from_secs(3),
    );
    assert!(check(&a, ORIGINAL).await.is_ok());
    assert!(check(&b, ORIGINAL).await.is_ok());
    // B presented its own grant's token to its own IdP, never A's rotated one.
    assert_eq!(ib.presented(), [ORIGINAL]);
    assert_eq!(ia.presented(), [ORIGINAL]);
    assert!(!ia.revoked() && !ib.revoked());
}

// ---- cancellation ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_cancelled_while_waiting_for_a_claim_exchanges_nothing_later() {
    let idp = idp(300).await;
    let chains: Arc<dyn ChainStore> = Arc::new(MemoryChains::new(100));
    // A chain with a rotated token.
    assert!(
        check(&replica(&idp, chains.clone()), ORIGINAL)
            .await
            .is_ok()
    );
    idp.fake.set(Fault::Delay(Duration::from_millis(300)));
    let slow = replica(&idp, chains.clone());
    let holder = tokio::spawn(async move { check(&slow, ORIGINAL).await.is_ok() });
    tokio::time::sleep(Duration::from_millis(100)).await;
    // This one waits for the claim and gives up (its provider timeout) long before it ends.
    let impatient = replica_with(
        &idp,
        chains.clone(),
        "desp",
        http_client(),
        Duration::from_millis(150),
    );
    assert!(check(&impatient, ORIGINAL).await.is_err());
    assert!(holder.await.unwrap());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        idp.presented(),
        [ORIGINAL, "rt-rotated-1"],
        "nothing exchanged for the cancelled request"
    );
    assert!(!idp.revoked());
}

// ---- error paths keep the rotated token ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_answered_without_an_access_token_is_kept() {
    let idp = idp(300).await;
    let chains: Arc<dyn ChainStore> = Arc::new(MemoryChains::new(100));
    idp.with(|g| g.no_access_once = true);
    assert!(
        check(&replica(&idp, chains.clone()), ORIGINAL)
            .await
            .is_err()
    );
    assert!(check(&replica(&idp, chains), ORIGINAL).await.is_ok());
    assert_eq!(idp.presented(), [ORIGINAL, "rt-rotated-1"]);
    assert!(!idp.revoked());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_release_is_retried_until_the_rotated_token_is_stored() {
    let idp = idp(300).await;
    let store = Arc::new(Skewed::default());
    store
        .failing_releases
        .store(6, std::sync::atomic::Ordering::SeqCst);
    assert!(check(&replica(&idp, store.clone()), ORIGINAL).await.is_ok());
    let key = chain_key(&idp, "desp", ORIGINAL);
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while store
        .load(&key)
        .await
        .unwrap()
        .and_then(|s| s.sealed)
        .is_none()
    {
        assert!(std::time::Instant::now() < deadline, "never stored");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(check(&replica(&idp, store), ORIGINAL).await.is_ok());
    assert_eq!(idp.presented(), [ORIGINAL, "rt-rotated-1"]);
    assert!(!idp.revoked());
}

#[cfg(feature = "e2e")]
mod postgres {
    use super::*;
    use common::postgres::Postgres;
    use common::process::SidecarProcess;
    use reqwest::StatusCode;

    #[tokio::test]
    async fn postgres_chains_pass_the_suite_from_two_stores() {
        let pg = Postgres::start();
        let (a, b) = (chains_of(&pg.url()).await, chains_of(&pg.url()).await);
        chain_suite(a.chains().unwrap(), b.chains().unwrap()).await;
        prune_suite(a.chains().unwrap()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn racing_replicas_on_one_postgresql_present_each_refresh_token_once() {
        let pg = Postgres::start();
        let stores = [open_chains(&pg.url()).await, open_chains(&pg.url()).await];
        racing_replicas_present_each_refresh_token_once(stores).await;
    }

    fn config(pg: &Postgres, idp: &Idp) -> String {
        let fake = format!("http://{}", idp.fake.addr);
        format!(
            r#"
version: "2.0.0"
server: {{host: 127.0.0.1, port: {{port}}}}
metrics: {{enabled: false}}
providers:
  - type: openid-offline
    name: desp
    realm: desp
    cert_uri: "{fake}/realms/desp/protocol/openid-connect/certs"
    iam_url: "{fake}"
    public_client_id: public
    private_client_id: private
    private_client_secret: private-secret
    issuer: "{ISSUER}"
    audience: api
jwt: {{iss: proc, exp: 300, secret: a-process-test-secret-of-32-bytes-or-more}}
logging: {{level: debug, format: json}}
tokens:
  enabled: true
  store: "{}"
"#,
            pg.url()
        )
    }

    async fn authenticate(side: &SidecarProcess) -> StatusCode {
        common::client()
            .get(format!("http://{}/authenticate", side.addr))
            .header("authorization", format!("Bearer {ORIGINAL}"))
            .send()
            .await
            .unwrap()
            .status()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_sidecars_on_one_postgresql_continue_one_chain_and_store_no_token_in_clear() {
        let pg = Postgres::start();
        let idp = idp(300).await;
        let yaml = config(&pg, &idp);
        let a = SidecarProcess::start(&yaml);
        let b = SidecarProcess::start(&yaml);
        assert_eq!(authenticate(&a).await, StatusCode::OK, "{}", a.log());
        assert_eq!(authenticate(&b).await, StatusCode::OK, "{}", b.log());
        assert_eq!(idp.presented(), [ORIGINAL, "rt-rotated-1"]);
        assert!(!idp.revoked(), "reuse detection never tripped");
        // One row, keyed by the SHA-256 of the original; neither the original nor the chain's
        // latest token appears in it, in text or in hex.
        let row = pg.psql(
            "SELECT encode(chain, 'hex') || ' ' || encode(sealed, 'hex') || ' ' || \
             encode(sealed, 'escape') || ' ' || generation FROM aot_refresh_chains",
        );
        // Counted apart: the `escape` rendering of the sealed bytes may hold a newline byte.
        assert_eq!(
            pg.psql("SELECT count(*) FROM aot_refresh_chains").trim(),
            "1",
            "{row}"
        );
        let hex = |s: &str| s.bytes().map(|b| format!("{b:02x}")).collect::<String>();
        let latest = idp.current();
        for secret in [ORIGINAL, "rt-rotated-1", latest.as_str()] {
            assert!(
                !row.contains(secret) && !row.contains(&hex(secret)),
                "{row}"
            );
        }
        let digest: String = chain_key(&idp, "desp", ORIGINAL)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(row.starts_with(&digest), "{row}");
        let log = format!("{}{}", a.log(), b.log());
        assert!(
            !log.contains(ORIGINAL) && !log.contains("rt-rotated"),
            "{log}"
        );
    }
}
