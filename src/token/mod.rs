//! Scoped, revocable API tokens (feature `tokens`): the [`format`](mod@format) of a token, the
//! [`TokenStore`] that keeps their digests, and [`LastUsed`], which batches last-use writes.
//!
//! A token is opaque (`aot_` + 36 base62 characters); the store keeps its SHA-256, owner, name,
//! scopes, expiry and the owner's roles and attributes at creation. The SQLite store (feature
//! `tokens-sqlite`) is the embedded default, the PostgreSQL store (feature `tokens-postgres`)
//! serves several replicas and tells each of them about revocations (LISTEN/NOTIFY).
//!
//! [`TokenProvider`] accepts tokens in the ordinary pipeline, the [`Catalogue`] says which
//! scopes exist, and (feature `tokens-api`) [`api::router`] serves `/tokens`.

#[cfg(feature = "tokens-api")]
pub mod api;
pub mod catalogue;
pub mod format;
mod last_used;
mod lazy;
#[cfg(feature = "tokens-api")]
pub(crate) mod manage;
pub mod provider;
pub mod store;

pub use catalogue::{Catalogue, CatalogueError};
#[cfg(any(feature = "sidecar", feature = "portal"))]
pub(crate) use last_used::unix_now as last_used_now;
pub use lazy::{LazyStore, OpenFailure};
pub use provider::{TokenProvider, TokenSettings, evict_on_revocation};

pub use format::{FormatError, GeneratedToken, PrefixError, TokenFormat, TokenHash};
pub use last_used::{DEFAULT_LAST_USED_INTERVAL, LastUsed};
pub use store::{
    Conflict, Invalidation, Invalidations, MemoryStore, NewToken, Owner, Rotation, StoreError,
    TokenId, TokenRecord, TokenScopes, TokenState, TokenStore, UnixTime,
};
