//! [`LazyStore`]: a [`TokenStore`] opened on first use, so a service starts (and its other
//! providers work) while the database is down; token requests answer 503 until it opens. It is
//! also the opened store's [`ChainStore`] (openid-offline's refresh-token chains).

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;

use super::format::TokenHash;
use super::store::{
    Broadcaster, Invalidation, Invalidations, NewToken, Owner, PortalStore, Rotation, Session,
    SessionKey, StoreError, TokenId, TokenRecord, TokenStore, UnixTime,
};
use crate::provider::BoxFuture;
use crate::provider::chain::{ChainError, ChainKey, ChainState, ChainStore};

/// Why opening failed, as the opener reports it.
pub type OpenFailure = Box<dyn std::error::Error + Send + Sync>;

type Opener =
    Box<dyn Fn() -> BoxFuture<'static, Result<Arc<dyn TokenStore>, OpenFailure>> + Send + Sync>;

/// How long a failed open is remembered before the next attempt: a flood of token requests
/// against a down database costs one connection attempt per second, not one per request.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// A store opened by `opener` on first use (or [`open`](Self::open)), retried after failures.
pub struct LazyStore {
    what: String,
    opener: Opener,
    store: OnceCell<Arc<dyn TokenStore>>,
    failed_at: Mutex<Option<Instant>>,
    events: Broadcaster,
}

impl fmt::Debug for LazyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LazyStore")
            .field("what", &self.what)
            .field("open", &self.store.initialized())
            .finish_non_exhaustive()
    }
}

impl LazyStore {
    /// A store described as `what` in logs (a redacted URL), opened by `opener`.
    pub fn new<F>(what: impl Into<String>, opener: F) -> Self
    where
        F: Fn() -> BoxFuture<'static, Result<Arc<dyn TokenStore>, OpenFailure>>
            + Send
            + Sync
            + 'static,
    {
        LazyStore {
            what: what.into(),
            opener: Box::new(opener),
            store: OnceCell::new(),
            failed_at: Mutex::new(None),
            events: Broadcaster::new(),
        }
    }

    /// The open store, opening it now if needed.
    pub async fn open(&self) -> Result<&Arc<dyn TokenStore>, StoreError> {
        if let Some(s) = self.store.get() {
            return Ok(s);
        }
        if self
            .failed_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some_and(|t| t.elapsed() < RETRY_AFTER)
        {
            return Err(StoreError::Unavailable(
                format!("{} could not be opened; retrying", self.what).into(),
            ));
        }
        self.store
            .get_or_try_init(|| async {
                match (self.opener)().await {
                    Ok(store) => {
                        tracing::info!(event_name = "tokens.store.opened", store = %self.what);
                        self.forward(&*store);
                        Ok(store)
                    }
                    Err(e) => {
                        tracing::warn!(event_name = "tokens.store.open_failed", store = %self.what, error = %e);
                        *self.failed_at.lock().unwrap_or_else(PoisonError::into_inner) =
                            Some(Instant::now());
                        Err(StoreError::Unavailable(e))
                    }
                }
            })
            .await
    }

    /// Passes the opened store's invalidations on to this store's subscribers (who subscribed
    /// before it opened).
    fn forward(&self, store: &dyn TokenStore) {
        let Some(mut inner) = store.subscribe() else {
            return;
        };
        let events = self.events.clone();
        tokio::spawn(async move {
            while let Some(i) = inner.recv().await {
                events.send(i);
            }
        });
        // Anything cached before the store opened came from nowhere: nothing to flush, but a
        // subscriber that missed reports while it waited is told to start clean.
        self.events.send(Invalidation::FlushAll);
    }
}

macro_rules! delegate {
    ($self:ident, |$s:ident| $call:expr) => {
        Box::pin(async move {
            let $s = $self.open().await?;
            $call.await
        })
    };
}

impl TokenStore for LazyStore {
    fn create(&self, token: NewToken) -> BoxFuture<'_, Result<TokenRecord, StoreError>> {
        delegate!(self, |s| s.create(token))
    }

    fn find_by_hash<'a>(
        &'a self,
        hash: &'a TokenHash,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<Option<TokenRecord>, StoreError>> {
        delegate!(self, |s| s.find_by_hash(hash, now))
    }

    fn list<'a>(&'a self, owner: &'a Owner) -> BoxFuture<'a, Result<Vec<TokenRecord>, StoreError>> {
        delegate!(self, |s| s.list(owner))
    }

    fn get<'a>(
        &'a self,
        owner: &'a Owner,
        id: &'a TokenId,
    ) -> BoxFuture<'a, Result<Option<TokenRecord>, StoreError>> {
        delegate!(self, |s| s.get(owner, id))
    }

    fn revoke<'a>(
        &'a self,
        owner: &'a Owner,
        id: &'a TokenId,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        delegate!(self, |s| s.revoke(owner, id, now))
    }

    fn revoke_id<'a>(
        &'a self,
        id: &'a TokenId,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<Option<Owner>, StoreError>> {
        delegate!(self, |s| s.revoke_id(id, now))
    }

    fn revoke_all<'a>(
        &'a self,
        owner: &'a Owner,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        delegate!(self, |s| s.revoke_all(owner, now))
    }

    fn rotate<'a>(
        &'a self,
        owner: &'a Owner,
        id: &'a TokenId,
        rotation: Rotation,
    ) -> BoxFuture<'a, Result<Option<TokenRecord>, StoreError>> {
        delegate!(self, |s| s.rotate(owner, id, rotation))
    }

    fn prune(&self, before: UnixTime) -> BoxFuture<'_, Result<u64, StoreError>> {
        delegate!(self, |s| s.prune(before))
    }

    fn record_last_used<'a>(
        &'a self,
        uses: &'a [(TokenId, UnixTime)],
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        delegate!(self, |s| s.record_last_used(uses))
    }

    fn subscribe(&self) -> Option<Invalidations> {
        Some(self.events.subscribe())
    }

    fn portal(&self) -> Option<&dyn PortalStore> {
        Some(self)
    }
}

/// The opened store's portal part; a store without one is a configuration the portal cannot
/// run on, reported as unavailable.
fn portal_of(store: &Arc<dyn TokenStore>) -> Result<&dyn PortalStore, StoreError> {
    store
        .portal()
        .ok_or_else(|| StoreError::Unavailable("this token store keeps no portal sessions".into()))
}

macro_rules! delegate_portal {
    ($self:ident, |$s:ident| $call:expr) => {
        Box::pin(async move {
            let $s = portal_of($self.open().await?)?;
            $call.await
        })
    };
}

impl PortalStore for LazyStore {
    fn create_session<'a>(
        &'a self,
        key: &'a SessionKey,
        session: &'a Session,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        delegate_portal!(self, |s| s.create_session(key, session))
    }

    fn session<'a>(
        &'a self,
        key: &'a SessionKey,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<Option<Session>, StoreError>> {
        delegate_portal!(self, |s| s.session(key, now))
    }

    fn touch_session<'a>(
        &'a self,
        key: &'a SessionKey,
        now: UnixTime,
        idle_until: UnixTime,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        delegate_portal!(self, |s| s.touch_session(key, now, idle_until))
    }

    fn delete_session<'a>(
        &'a self,
        key: &'a SessionKey,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        delegate_portal!(self, |s| s.delete_session(key))
    }

    fn trim_sessions<'a>(
        &'a self,
        username: &'a str,
        realm: &'a str,
        keep: u32,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        delegate_portal!(self, |s| s.trim_sessions(username, realm, keep))
    }

    fn put_login<'a>(
        &'a self,
        key: &'a SessionKey,
        data: &'a str,
        expires_at: UnixTime,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        delegate_portal!(self, |s| s.put_login(key, data, expires_at))
    }

    fn take_login<'a>(
        &'a self,
        key: &'a SessionKey,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<Option<String>, StoreError>> {
        delegate_portal!(self, |s| s.take_login(key, now))
    }

    fn prune_portal(&self, now: UnixTime) -> BoxFuture<'_, Result<u64, StoreError>> {
        delegate_portal!(self, |s| s.prune_portal(now))
    }

    fn all_tokens(&self) -> BoxFuture<'_, Result<Vec<TokenRecord>, StoreError>> {
        delegate_portal!(self, |s| s.all_tokens())
    }
}

/// openid-offline's chains in the same database, once it opens (503 until then, like tokens).
impl ChainStore for LazyStore {
    fn load<'a>(
        &'a self,
        chain: &'a ChainKey,
    ) -> BoxFuture<'a, Result<Option<ChainState>, ChainError>> {
        Box::pin(async move { self.chain_store().await?.load(chain).await })
    }

    fn claim<'a>(
        &'a self,
        chain: &'a ChainKey,
        seen: Option<i64>,
        now: i64,
        until: i64,
    ) -> BoxFuture<'a, Result<Option<i64>, ChainError>> {
        Box::pin(async move {
            self.chain_store()
                .await?
                .claim(chain, seen, now, until)
                .await
        })
    }

    fn release<'a>(
        &'a self,
        chain: &'a ChainKey,
        generation: i64,
        sealed: Option<&'a [u8]>,
        now: i64,
    ) -> BoxFuture<'a, Result<bool, ChainError>> {
        Box::pin(async move {
            self.chain_store()
                .await?
                .release(chain, generation, sealed, now)
                .await
        })
    }

    fn now(&self) -> BoxFuture<'_, Result<i64, ChainError>> {
        Box::pin(async move { self.chain_store().await?.now().await })
    }

    fn prune(&self, before: i64) -> BoxFuture<'_, Result<u64, ChainError>> {
        Box::pin(async move { self.chain_store().await?.prune(before).await })
    }
}

impl LazyStore {
    async fn chain_store(&self) -> Result<&dyn ChainStore, ChainError> {
        self.open()
            .await
            .map_err(ChainError::new)?
            .chains()
            .ok_or_else(|| ChainError::new("this token store keeps no refresh-token chains"))
    }
}
