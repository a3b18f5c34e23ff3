//! Scoped, revocable API tokens (feature `tokens`): the [`format`] of a token, the
//! [`TokenStore`] that keeps their digests, and [`LastUsed`], which batches last-use writes.
//!
//! A token is opaque (`aot_` + 36 base62 characters); the store keeps its SHA-256, owner, name,
//! scopes, expiry and the owner's roles and attributes at creation. The SQLite store (feature
//! `tokens-sqlite`) is the embedded default, the PostgreSQL store (feature `tokens-postgres`)
//! serves several replicas and tells each of them about revocations (LISTEN/NOTIFY).

pub mod format;
mod last_used;
pub mod store;

pub use format::{FormatError, GeneratedToken, PrefixError, TokenFormat, TokenHash};
pub use last_used::{DEFAULT_LAST_USED_INTERVAL, LastUsed};
pub use store::{
    Conflict, Invalidation, Invalidations, MemoryStore, NewToken, Owner, Rotation, StoreError,
    TokenId, TokenRecord, TokenScopes, TokenState, TokenStore, UnixTime,
};
