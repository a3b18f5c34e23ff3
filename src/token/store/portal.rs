//! [`PortalStore`]: what the token portal keeps beside the tokens, in the same store so that
//! replicas share it: browser sessions, the short-lived state of an OpenID Connect login, and
//! the list of every token for administrators.
//!
//! A session is found by the SHA-256 of its id ([`SessionKey`]), never the id, so a copy of the
//! database logs nobody in. A session ends at `expires_at` (absolute timeout) or at
//! `idle_until` (idle timeout, pushed forward by [`PortalStore::touch_session`]), whichever
//! comes first; lookups filter both in the store, as token lookups filter expiry.

use std::collections::BTreeMap;

use super::{StoreError, TokenRecord, UnixTime};
use crate::provider::BoxFuture;

/// SHA-256 of a session id or of an OpenID Connect `state`.
pub type SessionKey = [u8; 32];

/// A logged-in browser.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Session {
    /// Username as authenticated.
    pub username: String,
    /// Realm of the provider that authenticated the user.
    pub realm: String,
    /// Roles after augmentation (what the portal checks, e.g. admin roles).
    pub roles: Vec<String>,
    /// Attributes after augmentation.
    pub attributes: BTreeMap<String, String>,
    /// Roles as the provider gave them: the snapshot a new token keeps (augmenters run again
    /// at each use of the token).
    pub token_roles: Vec<String>,
    /// Attributes as the provider gave them.
    pub token_attributes: BTreeMap<String, String>,
    /// The form token of this session (compared in constant time).
    pub csrf: String,
    /// Login time.
    pub created_at: UnixTime,
    /// Last request seen (coarse: see [`PortalStore::touch_session`]).
    pub last_seen_at: UnixTime,
    /// End of the idle timeout.
    pub idle_until: UnixTime,
    /// End of the absolute timeout.
    pub expires_at: UnixTime,
}

/// Sessions, login states and the all-tokens list. Object safe, like [`super::TokenStore`],
/// whose [`portal`](super::TokenStore::portal) gives it.
pub trait PortalStore: Send + Sync + std::fmt::Debug {
    /// Stores a new session under `key`.
    fn create_session<'a>(
        &'a self,
        key: &'a SessionKey,
        session: &'a Session,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// The session under `key` if neither timeout has passed at `now`.
    fn session<'a>(
        &'a self,
        key: &'a SessionKey,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<Option<Session>, StoreError>>;

    /// Notes activity at `now` and moves the idle timeout to `idle_until`.
    fn touch_session<'a>(
        &'a self,
        key: &'a SessionKey,
        now: UnixTime,
        idle_until: UnixTime,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Deletes the session under `key` (logout); `false` if there was none.
    fn delete_session<'a>(&'a self, key: &'a SessionKey)
    -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Deletes the sessions of `username` in `realm` but the `keep` most recent (by creation):
    /// one user logging in again and again does not grow the store without bound.
    fn trim_sessions<'a>(
        &'a self,
        username: &'a str,
        realm: &'a str,
        keep: u32,
    ) -> BoxFuture<'a, Result<u64, StoreError>>;

    /// Stores an OpenID Connect login in progress (`data` is opaque to the store) under the
    /// digest of its `state`, until `expires_at`.
    fn put_login<'a>(
        &'a self,
        key: &'a SessionKey,
        data: &'a str,
        expires_at: UnixTime,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Removes and returns the login under `key` if it has not expired at `now`: a `state`
    /// works once.
    fn take_login<'a>(
        &'a self,
        key: &'a SessionKey,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<Option<String>, StoreError>>;

    /// Deletes sessions and logins that ended at or before `now`; returns how many.
    fn prune_portal(&self, now: UnixTime) -> BoxFuture<'_, Result<u64, StoreError>>;

    /// Every token of every owner (revoked and expired ones too, until pruned), oldest first:
    /// the administrators' page.
    fn all_tokens(&self) -> BoxFuture<'_, Result<Vec<TokenRecord>, StoreError>>;
}
