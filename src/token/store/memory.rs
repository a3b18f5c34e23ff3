//! [`MemoryStore`]: tokens in a map in this process, for tests and single-process use.
//!
//! Unbounded: one entry per token until [`TokenStore::prune`] deletes it; creation is an
//! authenticated, deliberate act, so the map grows with users, not with requests. Nothing
//! survives a restart.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::portal::{PortalStore, Session, SessionKey};
use super::{
    Broadcaster, Conflict, Invalidation, Invalidations, NewToken, Owner, Rotation, StoreError,
    TokenId, TokenRecord, TokenState, TokenStore, UnixTime,
};
use crate::provider::BoxFuture;
use crate::token::format::TokenHash;

/// Tokens in memory.
#[derive(Debug)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
    events: Broadcaster,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Debug, Default)]
struct Inner {
    rows: Vec<Row>,
    by_hash: HashMap<TokenHash, usize>,
    sessions: HashMap<SessionKey, Session>,
    logins: HashMap<SessionKey, (String, UnixTime)>,
}

#[derive(Debug)]
struct Row {
    hash: TokenHash,
    nonce: Option<String>,
    record: TokenRecord,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore {
            inner: Mutex::default(),
            events: Broadcaster::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every critical section leaves the map consistent, so a panic elsewhere does not
        // poison the data.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn evict(&self, ids: impl IntoIterator<Item = TokenId>) {
        for id in ids {
            self.events.send(Invalidation::Evict(id));
        }
    }
}

impl Inner {
    fn insert(
        &mut self,
        token: NewToken,
        rotated_from: Option<TokenId>,
    ) -> Result<TokenRecord, StoreError> {
        if self.by_hash.contains_key(&token.hash) {
            return Err(StoreError::Conflict(Conflict::Hash));
        }
        if token.create_nonce.is_some() && self.rows.iter().any(|r| r.nonce == token.create_nonce) {
            return Err(StoreError::Conflict(Conflict::Nonce));
        }
        let record = TokenRecord {
            id: TokenId::random()?,
            owner: token.owner,
            name: token.name,
            scopes: token.scopes,
            roles: token.roles,
            attributes: token.attributes,
            created_at: token.created_at,
            expires_at: token.expires_at,
            last_used_at: None,
            revoked_at: None,
            rotated_from,
            hint: token.hint,
        };
        self.by_hash.insert(token.hash, self.rows.len());
        self.rows.push(Row {
            hash: token.hash,
            nonce: token.create_nonce,
            record: record.clone(),
        });
        Ok(record)
    }

    fn owned_mut(&mut self, owner: &Owner, id: &TokenId) -> Option<&mut TokenRecord> {
        self.rows
            .iter_mut()
            .map(|r| &mut r.record)
            .find(|r| &r.id == id && &r.owner == owner)
    }
}

impl TokenStore for MemoryStore {
    fn create(&self, token: NewToken) -> BoxFuture<'_, Result<TokenRecord, StoreError>> {
        let result = self.lock().insert(token, None);
        Box::pin(async move { result })
    }

    fn find_by_hash<'a>(
        &'a self,
        hash: &'a TokenHash,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<Option<TokenRecord>, StoreError>> {
        let inner = self.lock();
        let found = inner
            .by_hash
            .get(hash)
            .map(|&i| &inner.rows[i].record)
            .filter(|r| r.state(now) == TokenState::Active)
            .cloned();
        Box::pin(async move { Ok(found) })
    }

    fn list<'a>(&'a self, owner: &'a Owner) -> BoxFuture<'a, Result<Vec<TokenRecord>, StoreError>> {
        let mut list: Vec<TokenRecord> = self
            .lock()
            .rows
            .iter()
            .filter(|r| &r.record.owner == owner)
            .map(|r| r.record.clone())
            .collect();
        // The SQL stores' order.
        list.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Box::pin(async move { Ok(list) })
    }

    fn get<'a>(
        &'a self,
        owner: &'a Owner,
        id: &'a TokenId,
    ) -> BoxFuture<'a, Result<Option<TokenRecord>, StoreError>> {
        let found = self.lock().owned_mut(owner, id).map(|r| r.clone());
        Box::pin(async move { Ok(found) })
    }

    fn revoke<'a>(
        &'a self,
        owner: &'a Owner,
        id: &'a TokenId,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let revoked = match self.lock().owned_mut(owner, id) {
            Some(r) if r.revoked_at.is_none() => {
                r.revoked_at = Some(now);
                true
            }
            _ => false,
        };
        if revoked {
            self.evict([id.clone()]);
        }
        Box::pin(async move { Ok(revoked) })
    }

    fn revoke_id<'a>(
        &'a self,
        id: &'a TokenId,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<Option<Owner>, StoreError>> {
        let owner = {
            let mut inner = self.lock();
            let row = inner
                .rows
                .iter_mut()
                .map(|r| &mut r.record)
                .find(|r| &r.id == id && r.revoked_at.is_none());
            row.map(|r| {
                r.revoked_at = Some(now);
                r.owner.clone()
            })
        };
        if owner.is_some() {
            self.evict([id.clone()]);
        }
        Box::pin(async move { Ok(owner) })
    }

    fn revoke_all<'a>(
        &'a self,
        owner: &'a Owner,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        let mut ids = Vec::new();
        for row in self.lock().rows.iter_mut() {
            let r = &mut row.record;
            if &r.owner == owner && r.revoked_at.is_none() {
                r.revoked_at = Some(now);
                ids.push(r.id.clone());
            }
        }
        let n = ids.len() as u64;
        self.evict(ids);
        Box::pin(async move { Ok(n) })
    }

    fn rotate<'a>(
        &'a self,
        owner: &'a Owner,
        id: &'a TokenId,
        rotation: Rotation,
    ) -> BoxFuture<'a, Result<Option<TokenRecord>, StoreError>> {
        let result = (|| {
            let mut inner = self.lock();
            let Some(old) = inner
                .owned_mut(owner, id)
                .filter(|r| r.state(rotation.now) == TokenState::Active)
            else {
                return Ok(None);
            };
            let new = NewToken {
                hash: rotation.hash,
                hint: rotation.hint,
                owner: old.owner.clone(),
                name: old.name.clone(),
                scopes: old.scopes.clone(),
                roles: old.roles.clone(),
                attributes: old.attributes.clone(),
                created_at: rotation.now,
                expires_at: rotation.expires_at,
                create_nonce: None,
            };
            // Insert first: if it fails, the old token is untouched (all or nothing).
            let record = inner.insert(new, Some(id.clone()))?;
            if let Some(old) = inner.owned_mut(owner, id) {
                old.revoked_at = Some(rotation.now);
            }
            Ok(Some(record))
        })();
        if matches!(result, Ok(Some(_))) {
            self.evict([id.clone()]);
        }
        Box::pin(async move { result })
    }

    fn prune(&self, before: UnixTime) -> BoxFuture<'_, Result<u64, StoreError>> {
        let mut inner = self.lock();
        let len = inner.rows.len();
        inner.rows.retain(|r| {
            r.record.expires_at > before && r.record.revoked_at.is_none_or(|t| t > before)
        });
        let pruned = (len - inner.rows.len()) as u64;
        let by_hash = inner
            .rows
            .iter()
            .enumerate()
            .map(|(i, r)| (r.hash, i))
            .collect();
        inner.by_hash = by_hash;
        Box::pin(async move { Ok(pruned) })
    }

    fn record_last_used<'a>(
        &'a self,
        uses: &'a [(TokenId, UnixTime)],
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let mut inner = self.lock();
        for (id, at) in uses {
            if let Some(r) = inner
                .rows
                .iter_mut()
                .map(|r| &mut r.record)
                .find(|r| &r.id == id)
            {
                r.last_used_at = r.last_used_at.max(Some(*at));
            }
        }
        Box::pin(async move { Ok(()) })
    }

    fn subscribe(&self) -> Option<Invalidations> {
        Some(self.events.subscribe())
    }

    fn portal(&self) -> Option<&dyn PortalStore> {
        Some(self)
    }
}

fn live(s: &Session, now: UnixTime) -> bool {
    s.idle_until > now && s.expires_at > now
}

impl PortalStore for MemoryStore {
    fn create_session<'a>(
        &'a self,
        key: &'a SessionKey,
        session: &'a Session,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.lock().sessions.insert(*key, session.clone());
        Box::pin(async { Ok(()) })
    }

    fn session<'a>(
        &'a self,
        key: &'a SessionKey,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<Option<Session>, StoreError>> {
        let found = self
            .lock()
            .sessions
            .get(key)
            .filter(|s| live(s, now))
            .cloned();
        Box::pin(async move { Ok(found) })
    }

    fn touch_session<'a>(
        &'a self,
        key: &'a SessionKey,
        now: UnixTime,
        idle_until: UnixTime,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        if let Some(s) = self.lock().sessions.get_mut(key) {
            s.last_seen_at = now;
            s.idle_until = idle_until;
        }
        Box::pin(async { Ok(()) })
    }

    fn delete_session<'a>(
        &'a self,
        key: &'a SessionKey,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let gone = self.lock().sessions.remove(key).is_some();
        Box::pin(async move { Ok(gone) })
    }

    fn trim_sessions<'a>(
        &'a self,
        username: &'a str,
        realm: &'a str,
        keep: u32,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        let mut inner = self.lock();
        let mut mine: Vec<(UnixTime, SessionKey)> = inner
            .sessions
            .iter()
            .filter(|(_, s)| s.username == username && s.realm == realm)
            .map(|(k, s)| (s.created_at, *k))
            .collect();
        // Newest first, as the SQL stores order them.
        mine.sort_by(|a, b| b.cmp(a));
        let keep = usize::try_from(keep).unwrap_or(usize::MAX);
        let mut gone = 0;
        for (_, key) in mine.into_iter().skip(keep) {
            inner.sessions.remove(&key);
            gone += 1;
        }
        Box::pin(async move { Ok(gone) })
    }

    fn put_login<'a>(
        &'a self,
        key: &'a SessionKey,
        data: &'a str,
        expires_at: UnixTime,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.lock()
            .logins
            .insert(*key, (data.to_owned(), expires_at));
        Box::pin(async { Ok(()) })
    }

    fn take_login<'a>(
        &'a self,
        key: &'a SessionKey,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<Option<String>, StoreError>> {
        let found = self
            .lock()
            .logins
            .remove(key)
            .filter(|(_, exp)| *exp > now)
            .map(|(d, _)| d);
        Box::pin(async move { Ok(found) })
    }

    fn prune_portal(&self, now: UnixTime) -> BoxFuture<'_, Result<u64, StoreError>> {
        let mut inner = self.lock();
        let before = inner.sessions.len() + inner.logins.len();
        inner.sessions.retain(|_, s| live(s, now));
        inner.logins.retain(|_, (_, exp)| *exp > now);
        let pruned = (before - inner.sessions.len() - inner.logins.len()) as u64;
        Box::pin(async move { Ok(pruned) })
    }

    fn all_tokens(&self) -> BoxFuture<'_, Result<Vec<TokenRecord>, StoreError>> {
        let mut list: Vec<TokenRecord> =
            self.lock().rows.iter().map(|r| r.record.clone()).collect();
        list.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Box::pin(async move { Ok(list) })
    }
}
