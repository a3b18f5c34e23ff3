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
    assert!(state.is_claimed(NOW + 1) && state.sealed.is_none());
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
    assert!(!state.is_claimed(NOW + 2));
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
}

/// Pruning (SQL stores), after `chain_suite` (whose chain, last touched at T + 37, is idle
/// too): idle unclaimed chains go, touched or claimed ones stay.
async fn prune_suite(a: &dyn ChainStore) {
    const T: i64 = NOW + 10_000;
    let (idle, claimed, fresh): (ChainKey, ChainKey, ChainKey) = ([1; 32], [2; 32], [3; 32]);
    for chain in [&idle, &claimed, &fresh] {
        assert_eq!(a.claim(chain, None, T, T + 30).await.unwrap(), Some(1));
    }
    assert!(a.release(&idle, 1, Some(b"x"), T).await.unwrap());
    assert!(a.release(&fresh, 1, Some(b"x"), T + 500).await.unwrap());
    // `claimed` was claimed at T + 31 with a lease that runs past the cut-off.
    assert_eq!(
        a.claim(&claimed, Some(1), T + 31, T + 2000).await.unwrap(),
        Some(2)
    );
    assert_eq!(
        a.prune(T + 100).await.unwrap(),
        2,
        "the idle chain and the suite's"
    );
    assert_eq!(a.load(&[7; 32]).await.unwrap(), None);
    assert_eq!(a.load(&idle).await.unwrap(), None);
    assert!(a.load(&claimed).await.unwrap().is_some());
    assert!(a.load(&fresh).await.unwrap().is_some());
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
            g.spent.insert(rt);
            g.current = format!("rt-rotated-{}", g.spent.len());
            let n = now();
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
}

/// One replica: an authenticator whose openid-offline provider keeps chains in `chains`.
fn replica(idp: &Idp, chains: Arc<dyn ChainStore>) -> Authenticator {
    let provider = OfflineProvider::new(
        "desp",
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
        http_client(),
    )
    .unwrap()
    .chain_store(chains);
    Authenticator::builder()
        .provider(provider)
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap()
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
async fn a_refresh_token_the_idp_does_not_know_writes_no_row() {
    use sha2::Digest;
    let dir = tempfile::tempdir().unwrap();
    let [chains, _] = two_sqlite_stores(&dir).await;
    let idp = idp(300).await;
    let a = replica(&idp, chains.clone());
    for made_up in ["rt-made-up-1", "rt-made-up-2"] {
        assert_eq!(
            check(&a, made_up).await.unwrap_err(),
            auth_o_tron::AuthError::Invalid
        );
        let key: ChainKey = sha2::Sha256::digest(made_up.as_bytes()).into();
        assert_eq!(
            chains.load(&key).await.unwrap(),
            None,
            "no row for {made_up}"
        );
    }
    assert!(idp.presented().is_empty(), "never exchanged");
    // A real one is claimed, and stored.
    assert!(check(&a, ORIGINAL).await.is_ok());
    let key: ChainKey = sha2::Sha256::digest(ORIGINAL.as_bytes()).into();
    assert!(chains.load(&key).await.unwrap().is_some());
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
        assert_eq!(row.lines().count(), 1, "{row}");
        let hex = |s: &str| s.bytes().map(|b| format!("{b:02x}")).collect::<String>();
        let latest = idp.current();
        for secret in [ORIGINAL, "rt-rotated-1", latest.as_str()] {
            assert!(
                !row.contains(secret) && !row.contains(&hex(secret)),
                "{row}"
            );
        }
        use sha2::Digest;
        let digest: String = sha2::Sha256::digest(ORIGINAL.as_bytes())
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
