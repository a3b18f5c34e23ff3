//! The token stores: memory, SQLite (a temp file) and PostgreSQL (a real cluster, feature
//! `e2e`) pass one suite; then what only one backend can show (a file surviving a reopen,
//! two replicas on one database, NOTIFY evictions, a listener that loses its connection).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use auth_o_tron::token::store::{OpenError, Session, SqliteStore, open};
use auth_o_tron::token::{
    Conflict, Invalidation, Invalidations, LastUsed, MemoryStore, NewToken, Owner, Rotation,
    StoreError, TokenFormat, TokenId, TokenRecord, TokenScopes, TokenState, TokenStore,
};

mod common;

const NOW: i64 = 1_800_000_000;
const DAY: i64 = 86_400;

fn scopes(pairs: &[(&str, &[&str])]) -> TokenScopes {
    pairs
        .iter()
        .map(|(s, v)| (s.to_string(), v.iter().map(|x| x.to_string()).collect()))
        .collect()
}

/// A new token for `owner` created at `at`, expiring a day later, and its secret.
fn new_token(owner: &Owner, name: &str, at: i64) -> (NewToken, String) {
    let t = TokenFormat::default().generate().unwrap();
    let token = NewToken::new(
        t.hash,
        t.hint,
        owner.clone(),
        name,
        scopes(&[("polytope", &["read", "write"]), ("mars", &["read"])]),
        at,
        at + DAY,
    );
    (token, t.secret.expose().to_owned())
}

async fn find(store: &dyn TokenStore, secret: &str, now: i64) -> Option<TokenRecord> {
    let hash = TokenFormat::default().check(secret).unwrap();
    store.find_by_hash(&hash, now).await.unwrap()
}

/// The next eviction of `id` within `within`, skipping unrelated ones.
async fn evicted(events: &mut Invalidations, id: &TokenId, within: Duration) -> bool {
    tokio::time::timeout(within, async {
        loop {
            match events.recv().await {
                Some(Invalidation::Evict(e)) if &e == id => return true,
                Some(_) => continue,
                None => return false,
            }
        }
    })
    .await
    .unwrap_or(false)
}

async fn suite(store: Arc<dyn TokenStore>) {
    create_find_list_get(&*store).await;
    expired_tokens_are_not_found(&*store).await;
    revoke_is_owner_only_and_evicts(&*store).await;
    revoke_all_counts_unrevoked_tokens(&*store).await;
    revoke_by_id_alone_names_the_owner_and_evicts(&*store).await;
    rotate_keeps_name_and_scopes_and_stops_the_old_token(&*store).await;
    nonce_replay_creates_nothing(&*store).await;
    prune_deletes_expired_and_revoked(&*store).await;
    last_used_never_moves_backwards(&*store).await;
    last_used_batches_one_write_per_interval(store.clone()).await;
    portal_sessions_end_at_either_timeout(&*store).await;
    portal_logins_are_taken_once(&*store).await;
    trim_keeps_a_users_newest_sessions(&*store).await;
    all_tokens_lists_every_owner(&*store).await;
}

fn session(csrf: &str, created: i64, idle_until: i64, expires_at: i64) -> Session {
    let mut s = Session::default();
    s.username = "alice".into();
    s.realm = "ldap".into();
    s.roles = vec!["user".into(), "admin".into()];
    s.attributes = BTreeMap::from([("team".to_owned(), "ops".to_owned())]);
    s.token_roles = vec!["user".into()];
    s.csrf = csrf.into();
    s.created_at = created;
    s.last_seen_at = created;
    s.idle_until = idle_until;
    s.expires_at = expires_at;
    s
}

async fn portal_sessions_end_at_either_timeout(store: &dyn TokenStore) {
    let portal = store.portal().expect("the store keeps sessions");
    let (a, b) = ([1u8; 32], [2u8; 32]);
    let s = session("csrf-a", NOW, NOW + 1800, NOW + 12 * 3600);
    portal.create_session(&a, &s).await.unwrap();
    portal
        .create_session(&b, &session("csrf-b", NOW, NOW + 1800, NOW + 60))
        .await
        .unwrap();
    assert_eq!(portal.session(&a, NOW + 10).await.unwrap(), Some(s.clone()));
    assert_eq!(portal.session(&[3u8; 32], NOW).await.unwrap(), None);
    // Idle: gone at idle_until, unless touched before.
    assert_eq!(portal.session(&a, NOW + 1800).await.unwrap(), None);
    portal
        .touch_session(&a, NOW + 1000, NOW + 2800)
        .await
        .unwrap();
    let touched = portal.session(&a, NOW + 1800).await.unwrap().unwrap();
    assert_eq!(
        (touched.last_seen_at, touched.idle_until),
        (NOW + 1000, NOW + 2800)
    );
    // Absolute: gone at expires_at whatever the idle time says.
    assert!(portal.session(&b, NOW + 59).await.unwrap().is_some());
    assert_eq!(portal.session(&b, NOW + 60).await.unwrap(), None);
    // Prune removes the ended one only; delete ends the other.
    assert_eq!(portal.prune_portal(NOW + 100).await.unwrap(), 1);
    assert!(portal.delete_session(&a).await.unwrap());
    assert!(!portal.delete_session(&a).await.unwrap());
    assert_eq!(portal.session(&a, NOW + 10).await.unwrap(), None);
}

async fn trim_keeps_a_users_newest_sessions(store: &dyn TokenStore) {
    let portal = store.portal().expect("the store keeps sessions");
    for i in 0..4u8 {
        let s = session("csrf", NOW + i64::from(i), NOW + 1800, NOW + 3600);
        portal.create_session(&[10 + i; 32], &s).await.unwrap();
    }
    let mut bob = session("csrf", NOW, NOW + 1800, NOW + 3600);
    bob.username = "bob".into();
    portal.create_session(&[20; 32], &bob).await.unwrap();
    assert_eq!(portal.trim_sessions("alice", "ldap", 2).await.unwrap(), 2);
    for (key, live) in [(10, false), (11, false), (12, true), (13, true), (20, true)] {
        let found = portal.session(&[key; 32], NOW + 10).await.unwrap();
        assert_eq!(found.is_some(), live, "session {key}");
    }
    for key in [12, 13, 20] {
        portal.delete_session(&[key; 32]).await.unwrap();
    }
}

async fn portal_logins_are_taken_once(store: &dyn TokenStore) {
    let portal = store.portal().unwrap();
    let (k, old) = ([7u8; 32], [8u8; 32]);
    portal
        .put_login(&k, "{\"nonce\":\"n\"}", NOW + 600)
        .await
        .unwrap();
    portal.put_login(&old, "x", NOW + 10).await.unwrap();
    assert_eq!(
        portal.take_login(&k, NOW).await.unwrap().as_deref(),
        Some("{\"nonce\":\"n\"}")
    );
    assert_eq!(
        portal.take_login(&k, NOW).await.unwrap(),
        None,
        "a state works once"
    );
    assert_eq!(
        portal.take_login(&old, NOW + 10).await.unwrap(),
        None,
        "expired"
    );
}

async fn all_tokens_lists_every_owner(store: &dyn TokenStore) {
    let portal = store.portal().unwrap();
    let (carol, dave) = (Owner::new("carol", "x"), Owner::new("dave", "y"));
    let c = store.create(new_token(&carol, "c", NOW).0).await.unwrap();
    let d = store.create(new_token(&dave, "d", NOW).0).await.unwrap();
    let all = portal.all_tokens().await.unwrap();
    assert!(all.contains(&c) && all.contains(&d));
}

async fn create_find_list_get(store: &dyn TokenStore) {
    let alice = Owner::new("alice", "ldap");
    let bob = Owner::new("bob", "ldap");
    let (token, secret) = new_token(&alice, "ci-deploy", NOW);
    let token = token
        .with_roles(vec!["user".into(), "admin".into()])
        .with_attributes(BTreeMap::from([("email".into(), "a@b.c".into())]));
    let created = store.create(token).await.unwrap();
    assert_eq!(created.name, "ci-deploy");
    assert_eq!(created.roles, ["user", "admin"]);
    assert_eq!(created.attributes["email"], "a@b.c");
    assert_eq!(created.scopes["polytope"], ["read", "write"]);
    assert_eq!((created.created_at, created.expires_at), (NOW, NOW + DAY));
    assert_eq!((created.last_used_at, created.revoked_at), (None, None));
    assert_eq!(created.hint, format!("aot_…{}", &secret[36..]));
    assert_eq!(find(store, &secret, NOW).await.as_ref(), Some(&created));
    let (_, unknown) = new_token(&alice, "never stored", NOW);
    assert_eq!(find(store, &unknown, NOW).await, None);

    let (second, _) = new_token(&alice, "second", NOW + 1);
    let second = store.create(second).await.unwrap();
    assert_eq!(store.list(&alice).await.unwrap(), [created.clone(), second]);
    assert!(store.list(&bob).await.unwrap().is_empty());
    // Same username, other realm: another person.
    assert!(
        store
            .list(&Owner::new("alice", "other"))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.get(&alice, &created.id).await.unwrap(),
        Some(created.clone())
    );
    assert_eq!(store.get(&bob, &created.id).await.unwrap(), None);

    // The same digest twice is refused (only a broken RNG could get here).
    let again = NewToken::new(
        TokenFormat::default().check(&secret).unwrap(),
        "h",
        bob.clone(),
        "dup",
        TokenScopes::new(),
        NOW,
        NOW + DAY,
    );
    assert!(matches!(
        store.create(again).await,
        Err(StoreError::Conflict(Conflict::Hash))
    ));
}

async fn expired_tokens_are_not_found(store: &dyn TokenStore) {
    let owner = Owner::new("erin", "ldap");
    let (token, secret) = new_token(&owner, "short", NOW);
    let record = store.create(token).await.unwrap();
    assert!(find(store, &secret, NOW + DAY - 1).await.is_some());
    assert_eq!(find(store, &secret, NOW + DAY).await, None);
    let listed = store.list(&owner).await.unwrap();
    assert_eq!(listed[0].state(NOW + DAY), TokenState::Expired);
    assert_eq!(record.state(NOW), TokenState::Active);
}

async fn revoke_is_owner_only_and_evicts(store: &dyn TokenStore) {
    let alice = Owner::new("alice2", "ldap");
    let mallory = Owner::new("mallory", "ldap");
    let (token, secret) = new_token(&alice, "to-revoke", NOW);
    let record = store.create(token).await.unwrap();
    let mut events = store
        .subscribe()
        .expect("every store here tells about revocations");
    assert!(!store.revoke(&mallory, &record.id, NOW + 5).await.unwrap());
    assert!(find(store, &secret, NOW + 6).await.is_some());
    assert!(store.revoke(&alice, &record.id, NOW + 7).await.unwrap());
    assert!(evicted(&mut events, &record.id, Duration::from_secs(1)).await);
    assert!(
        !store.revoke(&alice, &record.id, NOW + 8).await.unwrap(),
        "already revoked"
    );
    assert_eq!(find(store, &secret, NOW + 9).await, None);
    let listed = store.get(&alice, &record.id).await.unwrap().unwrap();
    assert_eq!(listed.revoked_at, Some(NOW + 7));
    assert_eq!(listed.state(NOW + 9), TokenState::Revoked);
    let unknown = TokenId::random().unwrap();
    assert!(!store.revoke(&alice, &unknown, NOW).await.unwrap());
}

async fn revoke_by_id_alone_names_the_owner_and_evicts(store: &dyn TokenStore) {
    let erin = Owner::new("erin", "ldap");
    let (token, secret) = new_token(&erin, "by-id", NOW);
    let record = store.create(token).await.unwrap();
    let mut events = store.subscribe().unwrap();
    assert_eq!(
        store.revoke_id(&record.id, NOW + 1).await.unwrap(),
        Some(erin.clone())
    );
    assert!(evicted(&mut events, &record.id, Duration::from_secs(1)).await);
    assert_eq!(find(store, &secret, NOW + 2).await, None);
    assert_eq!(
        store.revoke_id(&record.id, NOW + 3).await.unwrap(),
        None,
        "already revoked"
    );
    let listed = store.get(&erin, &record.id).await.unwrap().unwrap();
    assert_eq!(listed.revoked_at, Some(NOW + 1));
    let unknown = TokenId::random().unwrap();
    assert_eq!(store.revoke_id(&unknown, NOW).await.unwrap(), None);
}

async fn revoke_all_counts_unrevoked_tokens(store: &dyn TokenStore) {
    let carol = Owner::new("carol", "ldap");
    let dave = Owner::new("dave", "ldap");
    let mut secrets = Vec::new();
    let mut ids = Vec::new();
    for i in 0..3 {
        let (token, secret) = new_token(&carol, &format!("t{i}"), NOW + i);
        ids.push(store.create(token).await.unwrap().id);
        secrets.push(secret);
    }
    let (other, other_secret) = new_token(&dave, "dave's", NOW);
    store.create(other).await.unwrap();
    assert!(store.revoke(&carol, &ids[0], NOW + 5).await.unwrap());
    assert_eq!(store.revoke_all(&carol, NOW + 6).await.unwrap(), 2);
    for s in &secrets {
        assert_eq!(find(store, s, NOW + 7).await, None);
    }
    assert!(find(store, &other_secret, NOW + 7).await.is_some());
    assert_eq!(store.revoke_all(&carol, NOW + 8).await.unwrap(), 0);
}

async fn rotate_keeps_name_and_scopes_and_stops_the_old_token(store: &dyn TokenStore) {
    let frank = Owner::new("frank", "ldap");
    let (token, old_secret) = new_token(&frank, "deploy", NOW);
    let old = store
        .create(token.with_roles(vec!["ops".into()]))
        .await
        .unwrap();
    let mut events = store.subscribe().unwrap();
    let fresh = TokenFormat::default().generate().unwrap();
    let rotation = Rotation::new(fresh.hash, fresh.hint.clone(), NOW + 10, NOW + 10 + 7 * DAY);
    // Someone else cannot rotate it.
    let stranger = Owner::new("grace", "ldap");
    assert_eq!(
        store
            .rotate(&stranger, &old.id, rotation.clone())
            .await
            .unwrap(),
        None
    );
    let new = store
        .rotate(&frank, &old.id, rotation.clone())
        .await
        .unwrap()
        .unwrap();
    assert_ne!(new.id, old.id);
    assert_eq!(
        (new.name.as_str(), &new.scopes, &new.roles),
        ("deploy", &old.scopes, &old.roles)
    );
    assert_eq!(
        (new.created_at, new.expires_at),
        (NOW + 10, NOW + 10 + 7 * DAY)
    );
    assert_eq!(new.rotated_from.as_ref(), Some(&old.id));
    assert_eq!(new.hint, fresh.hint);
    assert!(evicted(&mut events, &old.id, Duration::from_secs(1)).await);
    assert_eq!(find(store, &old_secret, NOW + 11).await, None);
    assert_eq!(
        find(store, fresh.secret.expose(), NOW + 11).await,
        Some(new.clone())
    );
    // The old one is spent: a second rotation of it does nothing.
    let again = TokenFormat::default().generate().unwrap();
    let r2 = Rotation::new(again.hash, again.hint, NOW + 12, NOW + DAY);
    assert_eq!(
        store.rotate(&frank, &old.id, r2.clone()).await.unwrap(),
        None
    );
    assert_eq!(find(store, again.secret.expose(), NOW + 12).await, None);
    // An expired token cannot be rotated either.
    let late = Rotation::new(r2.hash, "h", new.expires_at, new.expires_at + DAY);
    assert_eq!(store.rotate(&frank, &new.id, late).await.unwrap(), None);
    assert_eq!(
        store
            .get(&frank, &new.id)
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        None
    );
    // A rotation whose new digest is taken changes nothing (one transaction).
    let taken = Rotation::new(fresh.hash, "h", NOW + 13, NOW + DAY);
    assert!(matches!(
        store.rotate(&frank, &new.id, taken).await,
        Err(StoreError::Conflict(Conflict::Hash))
    ));
    assert!(find(store, fresh.secret.expose(), NOW + 14).await.is_some());
    assert_eq!(store.list(&frank).await.unwrap().len(), 2);
}

async fn nonce_replay_creates_nothing(store: &dyn TokenStore) {
    let heidi = Owner::new("heidi", "ldap");
    let (first, _) = new_token(&heidi, "form", NOW);
    store
        .create(first.with_create_nonce("n-123"))
        .await
        .unwrap();
    let (replay, replay_secret) = new_token(&heidi, "form", NOW);
    let err = store
        .create(replay.with_create_nonce("n-123"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict(Conflict::Nonce)),
        "{err:?}"
    );
    assert_eq!(find(store, &replay_secret, NOW).await, None);
    assert_eq!(store.list(&heidi).await.unwrap().len(), 1);
    // No nonce is no constraint.
    for _ in 0..2 {
        store
            .create(new_token(&heidi, "api", NOW + 1).0)
            .await
            .unwrap();
    }
}

async fn prune_deletes_expired_and_revoked(store: &dyn TokenStore) {
    // Far in the future, so that only this case's rows are old enough.
    let t0 = NOW + 1000 * DAY;
    let ivan = Owner::new("ivan", "ldap");
    let mk = |name: &str, created: i64, expires: i64| {
        let (mut t, secret) = new_token(&ivan, name, created);
        t.expires_at = expires;
        (t, secret)
    };
    let (expired, _) = mk("expired", t0, t0 + 10);
    let (revoked, _) = mk("revoked", t0, t0 + 10 * DAY);
    let (active, active_secret) = mk("active", t0, t0 + 10 * DAY);
    store.create(expired).await.unwrap();
    let revoked = store.create(revoked).await.unwrap();
    store.create(active).await.unwrap();
    store.revoke(&ivan, &revoked.id, t0 + 5).await.unwrap();
    let before = store.prune(t0 + 20).await.unwrap();
    assert!(before >= 2, "pruned {before}");
    let names: Vec<String> = store
        .list(&ivan)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, ["active"]);
    assert!(find(store, &active_secret, t0 + 20).await.is_some());
    assert_eq!(store.prune(t0 + 20).await.unwrap(), 0);
}

async fn last_used_never_moves_backwards(store: &dyn TokenStore) {
    let judy = Owner::new("judy", "ldap");
    let (token, _) = new_token(&judy, "lu", NOW);
    let id = store.create(token).await.unwrap().id;
    store
        .record_last_used(&[(id.clone(), NOW + 100)])
        .await
        .unwrap();
    let get = || async { store.get(&judy, &id).await.unwrap().unwrap().last_used_at };
    assert_eq!(get().await, Some(NOW + 100));
    store
        .record_last_used(&[(id.clone(), NOW + 50)])
        .await
        .unwrap();
    assert_eq!(get().await, Some(NOW + 100));
    let unknown = TokenId::random().unwrap();
    store
        .record_last_used(&[(unknown, NOW), (id.clone(), NOW + 200)])
        .await
        .unwrap();
    assert_eq!(get().await, Some(NOW + 200));
}

async fn last_used_batches_one_write_per_interval(store: Arc<dyn TokenStore>) {
    let ken = Owner::new("ken", "ldap");
    let id = store
        .create(new_token(&ken, "batched", NOW).0)
        .await
        .unwrap()
        .id;
    let lu = LastUsed::new(store.clone(), Duration::from_secs(60));
    for t in 0..100 {
        lu.record(&id, NOW + t / 10);
    }
    assert_eq!(lu.pending(), 1);
    assert_eq!(lu.flush(NOW + 10).await.unwrap(), 1);
    let get = || async { store.get(&ken, &id).await.unwrap().unwrap().last_used_at };
    assert_eq!(get().await, Some(NOW + 9));
    // Within the minute after a write: nothing to write.
    lu.record(&id, NOW + 30);
    assert_eq!(lu.pending(), 0);
    assert_eq!(lu.flush(NOW + 30).await.unwrap(), 0);
    lu.record(&id, NOW + 70);
    assert_eq!(lu.flush(NOW + 70).await.unwrap(), 1);
    assert_eq!(get().await, Some(NOW + 70));
}

#[tokio::test]
async fn the_background_flusher_writes_pending_uses() {
    let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
    let owner = Owner::new("lena", "ldap");
    let id = store
        .create(new_token(&owner, "bg", NOW).0)
        .await
        .unwrap()
        .id;
    let lu = Arc::new(LastUsed::new(store.clone(), Duration::from_secs(60)));
    let task = lu.spawn_flusher(Duration::from_millis(50));
    lu.record(&id, NOW + 5);
    let written = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            let at = store.get(&owner, &id).await.unwrap().unwrap().last_used_at;
            if at.is_some() {
                return at;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert_eq!(written, Ok(Some(NOW + 5)));
    assert_eq!(lu.pending(), 0);
    // The task ends with the last owner of the batcher.
    drop(lu);
    tokio::time::timeout(Duration::from_secs(2), task)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn memory_store_passes_the_suite() {
    suite(Arc::new(MemoryStore::new())).await;
}

fn sqlite_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}", dir.path().join("tokens.db").display())
}

#[tokio::test]
async fn sqlite_store_passes_the_suite() {
    let dir = tempfile::tempdir().unwrap();
    suite(open(&sqlite_url(&dir)).await.unwrap()).await;
}

#[tokio::test]
async fn sqlite_file_keeps_committed_tokens_across_a_reopen_without_close() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(&dir);
    let owner = Owner::new("alice", "ldap");
    let (token, secret) = new_token(&owner, "durable", NOW);
    {
        let store = SqliteStore::open(&url).await.unwrap();
        store.create(token).await.unwrap();
        assert!(dir.path().join("tokens.db-wal").exists(), "WAL mode");
        // Dropped without close(): what a crash leaves behind.
    }
    let reopened = SqliteStore::open(&url).await.unwrap();
    assert_eq!(find(&reopened, &secret, NOW).await.unwrap().name, "durable");
}

/// Two processes (here: two pools) opening one new SQLite file at the same moment, as two
/// sidecars started together or the admin CLI beside a starting sidecar do: both must open, and
/// both must see the other's tokens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_opening_one_new_sqlite_file_together_both_open() {
    for round in 0..8 {
        let dir = tempfile::tempdir().unwrap();
        let url = sqlite_url(&dir);
        let (a, b) = tokio::join!(
            tokio::spawn({
                let url = url.clone();
                async move { SqliteStore::open(&url).await }
            }),
            tokio::spawn({
                let url = url.clone();
                async move { SqliteStore::open(&url).await }
            }),
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        let (a, b) = match (a, b) {
            (Ok(a), Ok(b)) => (a, b),
            (a, b) => panic!("round {round}: {:?} / {:?}", a.err(), b.err()),
        };
        let owner = Owner::new("alice", "ldap");
        let (token, secret) = new_token(&owner, "shared", NOW);
        a.create(token).await.unwrap();
        assert_eq!(find(&b, &secret, NOW).await.unwrap().name, "shared");
    }
}

#[tokio::test]
async fn open_refuses_unknown_schemes_and_hides_passwords() {
    let err = open("mysql://u:hunter2@db/tokens").await.unwrap_err();
    assert!(
        matches!(err, OpenError::UnsupportedScheme { .. }),
        "{err:?}"
    );
    let shown = format!("{err} {err:?}");
    assert!(
        shown.contains("mysql://u:***@db/tokens") && !shown.contains("hunter2"),
        "{shown}"
    );
    // Nothing listens on port 1: a connect error, still without the password.
    let err = open("postgres://u:hunter2@127.0.0.1:1/db?password=hunter2")
        .await
        .unwrap_err();
    assert!(matches!(err, OpenError::Connect { .. }), "{err:?}");
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    let err = open("sqlite:///nonexistent-dir/x/tokens.db")
        .await
        .unwrap_err();
    assert!(matches!(err, OpenError::Connect { .. }), "{err:?}");
}

#[cfg(feature = "e2e")]
mod postgres {
    use super::*;
    use auth_o_tron::token::store::PostgresStore;
    use common::postgres::Postgres;

    #[tokio::test]
    async fn postgres_store_passes_the_suite() {
        let pg = Postgres::start();
        suite(open(&pg.url()).await.unwrap()).await;
    }

    #[tokio::test]
    async fn two_replicas_share_tokens_and_revocations_arrive_within_a_second() {
        let pg = Postgres::start();
        // Both start (and migrate) at once: the advisory lock serialises them.
        let url = pg.url();
        let (a, b) = tokio::join!(PostgresStore::connect(&url), PostgresStore::connect(&url));
        let (a, b) = (a.unwrap(), b.unwrap());
        let owner = Owner::new("alice", "ldap");
        let (token, secret) = new_token(&owner, "shared", NOW);
        let record = a.create(token).await.unwrap();
        assert_eq!(find(&b, &secret, NOW).await, Some(record.clone()));
        let mut on_b = b.subscribe().unwrap();
        assert!(a.revoke(&owner, &record.id, NOW + 1).await.unwrap());
        assert!(evicted(&mut on_b, &record.id, Duration::from_secs(1)).await);
        assert_eq!(find(&b, &secret, NOW + 2).await, None);
        // Rotation on B evicts on A.
        let (token, _) = new_token(&owner, "rotated", NOW);
        let record = b.create(token).await.unwrap();
        let mut on_a = a.subscribe().unwrap();
        let fresh = TokenFormat::default().generate().unwrap();
        let rotation = Rotation::new(fresh.hash, fresh.hint, NOW + 3, NOW + DAY);
        b.rotate(&owner, &record.id, rotation)
            .await
            .unwrap()
            .unwrap();
        assert!(evicted(&mut on_a, &record.id, Duration::from_secs(1)).await);
        assert!(find(&a, fresh.secret.expose(), NOW + 4).await.is_some());
    }

    #[tokio::test]
    async fn a_listener_that_lost_its_connection_flushes_and_listens_again() {
        let pg = Postgres::start();
        let a = PostgresStore::connect(&pg.url()).await.unwrap();
        let b = PostgresStore::connect(&pg.url()).await.unwrap();
        let mut on_b = b.subscribe().unwrap();
        let killed = pg.psql(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid()",
        );
        assert_eq!(killed.trim(), "2", "both listeners found");
        let flushed = tokio::time::timeout(Duration::from_secs(5), on_b.recv()).await;
        assert_eq!(flushed.ok().flatten(), Some(Invalidation::FlushAll));
        // Listening again: a revocation on A still reaches B.
        let owner = Owner::new("alice", "ldap");
        let record = a.create(new_token(&owner, "after", NOW).0).await.unwrap();
        // The reconnect runs in the background; give it its pause.
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(a.revoke(&owner, &record.id, NOW + 1).await.unwrap());
        assert!(evicted(&mut on_b, &record.id, Duration::from_secs(2)).await);
    }

    #[tokio::test]
    async fn a_database_that_is_down_is_unavailable_not_unknown() {
        let mut pg = Postgres::start();
        let store = PostgresStore::connect(&pg.url()).await.unwrap();
        let owner = Owner::new("alice", "ldap");
        let (token, secret) = new_token(&owner, "t", NOW);
        store.create(token).await.unwrap();
        pg.stop();
        let hash = TokenFormat::default().check(&secret).unwrap();
        let err = store.find_by_hash(&hash, NOW).await.unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
        let err = store
            .create(new_token(&owner, "u", NOW).0)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    }
}
