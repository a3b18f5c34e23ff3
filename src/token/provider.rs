//! [`TokenProvider`]: API tokens as credentials of the ordinary pipeline.
//!
//! A presented Bearer credential is this provider's only when its shape passes the
//! [`TokenFormat`] (prefix, length, alphabet, CRC32): then no other provider sees it, and a
//! look-alike with a wrong checksum is refused before any store access. The store is asked by
//! SHA-256 digest; revoked and expired tokens are refused there. The user is the owner (their
//! username and realm, roles and attributes as they were at creation), acting with only the
//! token's scopes; the realm's augmenters run after this provider as for any user, so a group
//! removed in LDAP takes effect at the next cache miss.
//!
//! Caching is the pipeline's: a success is cached for at most `cache_ttl` and never past the
//! token's expiry. Revocations evict at once: [`evict_on_revocation`] subscribes
//! to the store's invalidations (this process's, and with PostgreSQL every replica's) and drops
//! the cached principals of the revoked token by id ([`Authenticator::invalidate_token`]).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::catalogue::Catalogue;
use super::format::TokenFormat;
use super::last_used::{LastUsed, unix_now};
use super::store::{Invalidation, TokenRecord, TokenStore};
use crate::credentials::{Credential, Scheme};
use crate::provider::{BoxFuture, Identity, Locality, Provider, ProviderError, ProviderInfo};
use crate::{Authenticator, Scopes, User};

/// How tokens look, which scopes exist and how long tokens live: shared by the provider and
/// the API.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct TokenSettings {
    /// Prefix of new tokens and prefixes accepted.
    pub format: TokenFormat,
    /// Services and scopes a token may hold.
    pub catalogue: Catalogue,
    /// Lifetime of a token whose request names none. Default 30 days.
    pub default_lifetime: Duration,
    /// Longest lifetime a request may ask for. Default 365 days.
    pub max_lifetime: Duration,
    /// How long an accepted token is cached (capped by its expiry); zero disables. Default 60 s.
    pub cache_ttl: Duration,
}

const DAY: u64 = 86_400;

impl TokenSettings {
    /// Default lifetimes and format with `catalogue`.
    pub fn new(catalogue: Catalogue) -> Self {
        TokenSettings {
            format: TokenFormat::default(),
            catalogue,
            default_lifetime: Duration::from_secs(30 * DAY),
            max_lifetime: Duration::from_secs(365 * DAY),
            cache_ttl: Duration::from_secs(60),
        }
    }

    /// Sets the format (prefixes).
    #[must_use]
    pub fn format(mut self, format: TokenFormat) -> Self {
        self.format = format;
        self
    }

    /// Sets the default and maximum lifetimes in days.
    #[must_use]
    pub fn lifetime_days(mut self, default: u32, max: u32) -> Self {
        self.default_lifetime = Duration::from_secs(u64::from(default) * DAY);
        self.max_lifetime = Duration::from_secs(u64::from(max) * DAY);
        self
    }

    /// Sets the cache TTL.
    #[must_use]
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl = ttl;
        self
    }
}

/// The provider of API tokens.
pub struct TokenProvider {
    info: ProviderInfo,
    store: Arc<dyn TokenStore>,
    settings: TokenSettings,
    last_used: Option<Arc<LastUsed>>,
}

impl fmt::Debug for TokenProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenProvider")
            .field("name", &self.info.name)
            .field("store", &self.store)
            .field("format", &self.settings.format)
            .finish_non_exhaustive()
    }
}

impl TokenProvider {
    /// A provider named `name` (also its realm in challenges) over `store`.
    pub fn new(
        name: impl Into<String>,
        store: Arc<dyn TokenStore>,
        settings: TokenSettings,
    ) -> Self {
        let name = name.into();
        let ttl = settings.cache_ttl;
        TokenProvider {
            info: ProviderInfo::new(name.clone(), "tokens", name, Scheme::Bearer)
                .cache_ttl((!ttl.is_zero()).then_some(ttl)),
            store,
            settings,
            last_used: None,
        }
    }

    /// Notes each accepted token in `last_used` (written in batches by its flusher). Cache
    /// hits do not reach the provider, so `last_used_at` is as coarse as the cache TTL.
    #[must_use]
    pub fn last_used(mut self, last_used: Arc<LastUsed>) -> Self {
        self.last_used = Some(last_used);
        self
    }

    fn identity(&self, record: TokenRecord) -> Identity {
        let mut user = User::new(record.owner.username, record.owner.realm)
            .with_roles(record.roles)
            .with_scopes(Scopes::Only(self.settings.catalogue.offered(record.scopes)));
        user.attributes = record.attributes;
        user.token_id = Some(record.id.as_str().into());
        Identity {
            user,
            expires_at: Some(crate::provider::unix_time(
                u64::try_from(record.expires_at).unwrap_or(0),
            )),
        }
    }
}

/// Keeps `authenticator`'s cache true to `store`: every revocation or rotation the store
/// reports drops the cached principals of that token; a possibly missed report (a reconnected
/// PostgreSQL listener, a lagging receiver) drops every cached token principal. Spawns a task
/// that runs until the store is dropped. A store that cannot report (`subscribe` gives `None`)
/// leaves only the cache TTL to bound staleness; revocations through [`api`](super::api)
/// evict on their own process either way.
pub fn evict_on_revocation(store: &dyn TokenStore, authenticator: &Authenticator) {
    let Some(mut events) = store.subscribe() else {
        return;
    };
    let authenticator = authenticator.clone();
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            match event {
                Invalidation::Evict(id) => authenticator.invalidate_token(id.as_str()),
                _ => authenticator.invalidate_tokens(),
            }
        }
    });
}

impl Provider for TokenProvider {
    fn info(&self) -> &ProviderInfo {
        &self.info
    }

    fn locality(&self) -> Locality {
        Locality::Local
    }

    fn owns(&self, credential: Credential<'_>) -> bool {
        credential.scheme() == Scheme::Bearer
            && self.settings.format.check(credential.secret()).is_ok()
    }

    fn authenticate<'a>(
        &'a self,
        credential: Credential<'a>,
    ) -> BoxFuture<'a, Result<Identity, ProviderError>> {
        Box::pin(async move {
            // Offline first: a typo or a look-alike never costs a store round trip.
            let hash = self
                .settings
                .format
                .check(credential.secret())
                .map_err(|e| ProviderError::invalid(e.to_string()))?;
            let now = unix_now();
            match self.store.find_by_hash(&hash, now).await {
                Ok(Some(record)) => {
                    if let Some(l) = &self.last_used {
                        l.record(&record.id, now);
                    }
                    Ok(self.identity(record))
                }
                Ok(None) => Err(ProviderError::invalid("unknown, revoked or expired token")),
                // Fail closed: a store that cannot answer (or answers with an unreadable row)
                // is a 503, never a 401, and other providers keep working.
                Err(e) => Err(ProviderError::unavailable(e.to_string())),
            }
        })
    }
}
