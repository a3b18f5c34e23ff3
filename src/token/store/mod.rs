//! [`TokenStore`]: where API tokens live, and the records it keeps.
//!
//! Backends: [`MemoryStore`] (tests, one process), `SqliteStore` (feature `tokens-sqlite`, the
//! embedded default) and `PostgresStore` (feature `tokens-postgres`, several replicas). All pass
//! the same test suite (`tests/token_store.rs`). Times are Unix seconds, passed in by the
//! caller, so that expiry is decided by one clock and tests need no sleeping.
//!
//! A store keeps the SHA-256 of a token, never the token. Lookups filter revoked and expired
//! rows in the store itself (as crates.io does), so a caller cannot forget to; lists return every
//! row with its [`TokenState`], for a portal that shows revoked and expired tokens.
//!
//! Lookups go through an index on the digest. Its comparisons are not constant-time, and need
//! not be: the presented token is hashed first, so an attacker controls no bits of the compared
//! value, and a timing difference tells nothing about a stored token.

use std::collections::BTreeMap;
use std::fmt;

use tokio::sync::broadcast;

use super::format::TokenHash;
use crate::provider::BoxFuture;

mod memory;
pub mod portal;
#[cfg(any(feature = "tokens-sqlite", feature = "tokens-postgres"))]
mod sql;

pub use memory::MemoryStore;
pub use portal::{PortalStore, Session, SessionKey};
#[cfg(feature = "tokens-sqlite")]
pub use sql::SqliteStore;
#[cfg(feature = "tokens-postgres")]
pub use sql::{NOTIFY_CHANNEL, PostgresStore};
#[cfg(any(feature = "tokens-sqlite", feature = "tokens-postgres"))]
pub use sql::{OpenError, open};

/// Unix seconds.
pub type UnixTime = i64;

/// Scopes held by a token: service name → scopes of that service.
pub type TokenScopes = BTreeMap<String, Vec<String>>;

/// A token's id: 16 random bytes as 32 lowercase hex digits. Public (URLs, audit lines, NOTIFY
/// payloads); unlike the hash it reveals nothing about the secret.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct TokenId(String);

impl TokenId {
    /// A fresh random id. Fails only if the OS has no random source.
    pub fn random() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes)?;
        let mut s = String::with_capacity(32);
        for b in bytes {
            s.push(char::from(HEX[usize::from(b >> 4)]));
            s.push(char::from(HEX[usize::from(b & 15)]));
        }
        Ok(TokenId(s))
    }

    /// Parses an id from a URL or a NOTIFY payload; `None` unless 32 lowercase hex digits.
    pub fn parse(s: &str) -> Option<Self> {
        (s.len() == 32 && s.bytes().all(|b| HEX.contains(&b))).then(|| TokenId(s.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

impl fmt::Display for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who a token belongs to.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Owner {
    /// Username as authenticated.
    pub username: String,
    /// Realm of the provider that authenticated the owner.
    pub realm: String,
}

impl Owner {
    /// `username` in `realm`.
    pub fn new(username: impl Into<String>, realm: impl Into<String>) -> Self {
        Owner {
            username: username.into(),
            realm: realm.into(),
        }
    }
}

/// A token to store.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct NewToken {
    /// Digest of the token.
    pub hash: TokenHash,
    /// Prefix and last four characters.
    pub hint: String,
    /// Owner.
    pub owner: Owner,
    /// Name chosen by the owner.
    pub name: String,
    /// Scopes held.
    pub scopes: TokenScopes,
    /// The owner's roles at creation.
    pub roles: Vec<String>,
    /// The owner's attributes at creation.
    pub attributes: BTreeMap<String, String>,
    /// Creation time.
    pub created_at: UnixTime,
    /// Expiry (required).
    pub expires_at: UnixTime,
    /// Single-use value of the form that asked for this token: a second create with the same
    /// nonce fails with [`StoreError::Conflict`] (a reloaded POST mints nothing), on every
    /// replica since it is a `UNIQUE` column.
    pub create_nonce: Option<String>,
}

impl NewToken {
    /// A token with no roles, attributes or nonce.
    pub fn new(
        hash: TokenHash,
        hint: impl Into<String>,
        owner: Owner,
        name: impl Into<String>,
        scopes: TokenScopes,
        created_at: UnixTime,
        expires_at: UnixTime,
    ) -> Self {
        NewToken {
            hash,
            hint: hint.into(),
            owner,
            name: name.into(),
            scopes,
            roles: Vec::new(),
            attributes: BTreeMap::new(),
            created_at,
            expires_at,
            create_nonce: None,
        }
    }

    /// Snapshot of the owner's roles.
    pub fn with_roles(mut self, roles: Vec<String>) -> Self {
        self.roles = roles;
        self
    }

    /// Snapshot of the owner's attributes.
    pub fn with_attributes(mut self, attributes: BTreeMap<String, String>) -> Self {
        self.attributes = attributes;
        self
    }

    /// The form's single-use nonce.
    pub fn with_create_nonce(mut self, nonce: impl Into<String>) -> Self {
        self.create_nonce = Some(nonce.into());
        self
    }
}

/// The new secret of a [`TokenStore::rotate`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Rotation {
    /// Digest of the new token.
    pub hash: TokenHash,
    /// Its hint.
    pub hint: String,
    /// Time of the rotation: the old token's revocation, the new one's creation.
    pub now: UnixTime,
    /// Expiry of the new token.
    pub expires_at: UnixTime,
}

impl Rotation {
    /// A rotation to `hash` at `now`.
    pub fn new(
        hash: TokenHash,
        hint: impl Into<String>,
        now: UnixTime,
        expires_at: UnixTime,
    ) -> Self {
        Rotation {
            hash,
            hint: hint.into(),
            now,
            expires_at,
        }
    }
}

/// A stored token (never the secret nor its digest).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenRecord {
    /// Id.
    pub id: TokenId,
    /// Owner.
    pub owner: Owner,
    /// Name.
    pub name: String,
    /// Scopes held.
    pub scopes: TokenScopes,
    /// The owner's roles at creation.
    pub roles: Vec<String>,
    /// The owner's attributes at creation.
    pub attributes: BTreeMap<String, String>,
    /// Creation time.
    pub created_at: UnixTime,
    /// Expiry.
    pub expires_at: UnixTime,
    /// Last use, coarse (see `LastUsed`).
    pub last_used_at: Option<UnixTime>,
    /// Revocation time.
    pub revoked_at: Option<UnixTime>,
    /// The token this one replaced by rotation.
    pub rotated_from: Option<TokenId>,
    /// Prefix and last four characters.
    pub hint: String,
}

/// Whether a token works at a given time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenState {
    /// Accepted.
    Active,
    /// Past `expires_at`.
    Expired,
    /// Revoked (wins over expired).
    Revoked,
}

impl TokenRecord {
    /// The state at `now`: expired from `expires_at` on.
    pub fn state(&self, now: UnixTime) -> TokenState {
        if self.revoked_at.is_some() {
            TokenState::Revoked
        } else if self.expires_at <= now {
            TokenState::Expired
        } else {
            TokenState::Active
        }
    }
}

/// What makes a cached token stale.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Invalidation {
    /// This token was revoked or rotated.
    Evict(TokenId),
    /// Notifications may have been missed (listener reconnected, receiver lagged): drop every
    /// cached token.
    FlushAll,
}

/// A stream of [`Invalidation`]s from a store. From PostgreSQL, every replica's revocations
/// (LISTEN/NOTIFY); from SQLite and memory, this process's own.
#[derive(Debug)]
pub struct Invalidations(broadcast::Receiver<Invalidation>);

impl Invalidations {
    /// The next invalidation; `None` once the store is gone. A receiver that fell behind gets
    /// [`Invalidation::FlushAll`], since it missed some.
    pub async fn recv(&mut self) -> Option<Invalidation> {
        match self.0.recv().await {
            Ok(i) => Some(i),
            Err(broadcast::error::RecvError::Lagged(_)) => Some(Invalidation::FlushAll),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }
}

/// The sending half kept by a store.
#[derive(Clone, Debug)]
pub(crate) struct Broadcaster(broadcast::Sender<Invalidation>);

impl Broadcaster {
    pub(crate) fn new() -> Self {
        Broadcaster(broadcast::channel(1024).0)
    }
    pub(crate) fn send(&self, i: Invalidation) {
        // No receiver is not an error: nobody caches.
        let _ = self.0.send(i);
    }
    pub(crate) fn subscribe(&self) -> Invalidations {
        Invalidations(self.0.subscribe())
    }
}

/// Why a store operation failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum StoreError {
    /// The store cannot be reached or failed mid-operation. Callers fail closed: 503, never 401.
    Unavailable(Box<dyn std::error::Error + Send + Sync>),
    /// A unique value is taken.
    Conflict(Conflict),
    /// A row could not be decoded (edited by hand, or written by a newer version).
    Corrupt(String),
    /// The OS random source failed (token ids).
    Random(getrandom::Error),
}

/// Which unique value a [`StoreError::Conflict`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Conflict {
    /// The create nonce was used before: the request is a replay.
    Nonce,
    /// A token with this digest exists (only a broken random source gets here).
    Hash,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Unavailable(e) => write!(f, "token store unavailable: {e}"),
            StoreError::Conflict(Conflict::Nonce) => f.write_str("token create nonce already used"),
            StoreError::Conflict(Conflict::Hash) => f.write_str("token digest already stored"),
            StoreError::Corrupt(what) => write!(f, "token store row unreadable: {what}"),
            StoreError::Random(e) => write!(f, "OS random source failed: {e}"),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Unavailable(e) => Some(e.as_ref()),
            StoreError::Random(e) => Some(e),
            _ => None,
        }
    }
}

impl From<getrandom::Error> for StoreError {
    fn from(e: getrandom::Error) -> Self {
        StoreError::Random(e)
    }
}

/// Where tokens live. Object safe: the provider and the API hold an `Arc<dyn TokenStore>`.
pub trait TokenStore: Send + Sync + fmt::Debug + 'static {
    /// Stores a token with a fresh id. [`StoreError::Conflict`] if its nonce was used before.
    fn create(&self, token: NewToken) -> BoxFuture<'_, Result<TokenRecord, StoreError>>;

    /// The token with this digest if it is active at `now` (neither revoked nor expired).
    fn find_by_hash<'a>(
        &'a self,
        hash: &'a TokenHash,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<Option<TokenRecord>, StoreError>>;

    /// Every token of `owner` (revoked and expired ones too, until pruned), oldest first.
    fn list<'a>(&'a self, owner: &'a Owner) -> BoxFuture<'a, Result<Vec<TokenRecord>, StoreError>>;

    /// The token `id` if it belongs to `owner`, in any state.
    fn get<'a>(
        &'a self,
        owner: &'a Owner,
        id: &'a TokenId,
    ) -> BoxFuture<'a, Result<Option<TokenRecord>, StoreError>>;

    /// Revokes `owner`'s token `id`. `false` if it is unknown, someone else's or already revoked.
    fn revoke<'a>(
        &'a self,
        owner: &'a Owner,
        id: &'a TokenId,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Revokes token `id` whoever owns it (the operator's command); returns its owner, or
    /// `None` if it is unknown or already revoked.
    fn revoke_id<'a>(
        &'a self,
        id: &'a TokenId,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<Option<Owner>, StoreError>>;

    /// Revokes every unrevoked token of `owner`; returns how many.
    fn revoke_all<'a>(
        &'a self,
        owner: &'a Owner,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<u64, StoreError>>;

    /// In one transaction: revokes `owner`'s token `id`, active at `rotation.now`, and stores a
    /// new one with the same name, scopes, roles and attributes (see [`Rotation`]). `None` (and
    /// nothing changed) if `id` is not an active token of `owner`.
    fn rotate<'a>(
        &'a self,
        owner: &'a Owner,
        id: &'a TokenId,
        rotation: Rotation,
    ) -> BoxFuture<'a, Result<Option<TokenRecord>, StoreError>>;

    /// Deletes tokens expired or revoked at or before `before`; returns how many. Pass
    /// `now - retention` to keep revoked and expired tokens visible for a while.
    fn prune(&self, before: UnixTime) -> BoxFuture<'_, Result<u64, StoreError>>;

    /// Sets `last_used_at` for each `(id, time)`, in one transaction, never moving it backwards
    /// (a late batch from another replica cannot undo a newer one). Unknown ids are ignored.
    fn record_last_used<'a>(
        &'a self,
        uses: &'a [(TokenId, UnixTime)],
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Invalidations for caches of this store's tokens; `None` if the store cannot tell
    /// (then only a cache TTL bounds staleness).
    fn subscribe(&self) -> Option<Invalidations>;

    /// The portal's sessions and login states, kept in the same store; `None` if this store
    /// keeps none (the portal then refuses to start). The memory, SQLite and PostgreSQL
    /// stores keep them.
    fn portal(&self) -> Option<&dyn PortalStore> {
        None
    }

    /// The same database as a home for `openid-offline`'s refresh-token chains, so replicas
    /// sharing the store share chains; `None` (the default) if this store keeps none.
    fn chains(&self) -> Option<&dyn crate::provider::chain::ChainStore> {
        None
    }
}
