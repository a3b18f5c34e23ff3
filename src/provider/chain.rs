//! [`ChainStore`]: where `openid-offline` keeps its refresh-token chains, and [`MemoryChains`],
//! the in-process default.
//!
//! A chain is keyed by a SHA-256 over the provider's name, its token endpoint and the client's
//! original refresh token (so providers never share a chain) and holds the latest token of the
//! chain, sealed by the provider (the store only ever sees ciphertext), with a
//! generation that every exchange advances. An exchange first *claims* the chain: a
//! compare-and-swap on the generation that also sets a lease. Only the claimant presents the
//! chain's token to the IdP; every other replica (or task) waits for the lease to end and
//! continues with the claimant's new token. So a rotating refresh token is spent exactly once
//! however many replicas share the store, and the IdP's reuse detection is never tripped by us.
//!
//! The token stores (`SqliteStore`, `PostgresStore`, feature `tokens-sqlite` / `tokens-postgres`)
//! implement this trait on their own database, so replicas on one PostgreSQL share chains.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use super::BoxFuture;

/// The SHA-256 naming a chain: of the provider, its token endpoint and the client's original
/// refresh token.
pub type ChainKey = [u8; 32];

/// What a store holds for a chain.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChainState {
    /// Advanced by every claim.
    pub generation: i64,
    /// The latest refresh token of the chain, sealed; `None` while it is still the original.
    pub sealed: Option<Vec<u8>>,
    /// Unix seconds until which a claimant may be exchanging; `None` when nobody is.
    pub claimed_until: Option<i64>,
}

impl ChainState {
    /// A chain at `generation`.
    pub fn new(generation: i64, sealed: Option<Vec<u8>>, claimed_until: Option<i64>) -> Self {
        ChainState {
            generation,
            sealed,
            claimed_until,
        }
    }

    /// Whether a claimant's lease is running at `now`, for claims of at most `lease` seconds.
    /// A lease ending later than `now + lease` was written by a clock that is wrong (or a
    /// writer that is not ours) and counts as over: nothing may hold a chain forever.
    pub fn is_claimed(&self, now: i64, lease: i64) -> bool {
        self.claimed_until
            .is_some_and(|until| until > now && until <= now.saturating_add(lease))
    }
}

/// A chain store that could not answer. The provider fails closed (503).
#[derive(Debug)]
#[non_exhaustive]
pub struct ChainError(Box<dyn std::error::Error + Send + Sync>);

impl ChainError {
    /// Wraps the store's error.
    pub fn new(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        ChainError(e.into())
    }
}

impl fmt::Display for ChainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "refresh-token chain store: {}", self.0)
    }
}

impl std::error::Error for ChainError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.0.as_ref())
    }
}

/// Refresh-token chains, shared by every task (and, in a database, every replica) that
/// exchanges for the same original token. Object safe.
///
/// A row exists only while a claim runs or once the IdP rotated the chain's token: a token that
/// never rotates leaves nothing behind.
pub trait ChainStore: Send + Sync + fmt::Debug + 'static {
    /// The chain's state; `None` if nothing is stored for it.
    fn load<'a>(
        &'a self,
        chain: &'a ChainKey,
    ) -> BoxFuture<'a, Result<Option<ChainState>, ChainError>>;

    /// Claims the chain last seen at generation `seen` (`None`: not stored yet) until
    /// `until`, if nobody else claimed it since and no lease runs at `now` (a lease ending
    /// after `until` counts as over, see [`ChainState::is_claimed`]). `Some(generation)` of the
    /// claim if this caller won, `None` if it lost (then it reloads).
    fn claim<'a>(
        &'a self,
        chain: &'a ChainKey,
        seen: Option<i64>,
        now: i64,
        until: i64,
    ) -> BoxFuture<'a, Result<Option<i64>, ChainError>>;

    /// Ends the claim at `generation`, storing `sealed` as the chain's token if given. Without
    /// `sealed`, a chain that holds a sealed token keeps it and one that holds none (the IdP
    /// never rotated it) is deleted. `false` if the claim was lost meanwhile (its lease ran out
    /// and another caller claimed): then nothing is changed.
    fn release<'a>(
        &'a self,
        chain: &'a ChainKey,
        generation: i64,
        sealed: Option<&'a [u8]>,
        now: i64,
    ) -> BoxFuture<'a, Result<bool, ChainError>>;

    /// Unix seconds by the store's clock, which every replica sharing the store reads, so
    /// leases are judged by one clock. This process's clock by default.
    fn now(&self) -> BoxFuture<'_, Result<i64, ChainError>> {
        Box::pin(async { Ok(unix_now()) })
    }

    /// Deletes chains not used since `before` (Unix seconds); returns how many. A chain idle
    /// longer than its IdP keeps an offline session is dead anyway.
    fn prune(&self, before: i64) -> BoxFuture<'_, Result<u64, ChainError>>;
}

/// How long an idle chain is kept: Keycloak's default offline session idle time (30 days);
/// after it the IdP has ended the session and the chain's token is worthless.
pub const MAX_IDLE: Duration = Duration::from_secs(30 * 86_400);

/// This process's clock in Unix seconds.
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Chains in this process's memory: the default without a token store. Rotated chains are
/// bounded (least recently used go first) and forgotten after [`MAX_IDLE`]; claims of chains
/// that hold no rotated token yet are kept apart (they are as many as exchanges in flight), so
/// tokens that never rotate cannot push live chains out.
#[derive(Debug)]
pub struct MemoryChains {
    /// Chains holding a sealed token.
    rotated: moka::sync::Cache<ChainKey, ChainState>,
    /// Claims of chains without one. Every change to either map holds this lock, so a chain
    /// moves between them atomically.
    pending: Mutex<HashMap<ChainKey, ChainState>>,
}

impl MemoryChains {
    /// At most `capacity` rotated chains.
    pub fn new(capacity: u64) -> Self {
        MemoryChains {
            rotated: moka::sync::Cache::builder()
                .max_capacity(capacity)
                .time_to_idle(MAX_IDLE)
                .build(),
            pending: Mutex::new(HashMap::new()),
        }
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<ChainKey, ChainState>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn get(&self, pending: &HashMap<ChainKey, ChainState>, chain: &ChainKey) -> Option<ChainState> {
        pending
            .get(chain)
            .cloned()
            .or_else(|| self.rotated.get(chain))
    }
}

impl ChainStore for MemoryChains {
    fn load<'a>(
        &'a self,
        chain: &'a ChainKey,
    ) -> BoxFuture<'a, Result<Option<ChainState>, ChainError>> {
        Box::pin(async move { Ok(self.get(&self.pending(), chain)) })
    }

    fn claim<'a>(
        &'a self,
        chain: &'a ChainKey,
        seen: Option<i64>,
        now: i64,
        until: i64,
    ) -> BoxFuture<'a, Result<Option<i64>, ChainError>> {
        Box::pin(async move {
            let mut pending = self.pending();
            let next = match (self.get(&pending, chain), seen) {
                (None, None) => ChainState::new(1, None, Some(until)),
                (Some(c), Some(s)) if c.generation == s && !c.is_claimed(now, until - now) => {
                    ChainState::new(s + 1, c.sealed, Some(until))
                }
                _ => return Ok(None),
            };
            let won = next.generation;
            if next.sealed.is_some() {
                self.rotated.insert(*chain, next);
            } else {
                pending.insert(*chain, next);
            }
            Ok(Some(won))
        })
    }

    fn release<'a>(
        &'a self,
        chain: &'a ChainKey,
        generation: i64,
        sealed: Option<&'a [u8]>,
        _now: i64,
    ) -> BoxFuture<'a, Result<bool, ChainError>> {
        Box::pin(async move {
            let mut pending = self.pending();
            let Some(current) = self
                .get(&pending, chain)
                .filter(|c| c.generation == generation)
            else {
                return Ok(false);
            };
            pending.remove(chain);
            match sealed.map(<[u8]>::to_vec).or(current.sealed) {
                Some(sealed) => {
                    self.rotated
                        .insert(*chain, ChainState::new(generation, Some(sealed), None));
                }
                None => self.rotated.invalidate(chain),
            }
            Ok(true)
        })
    }

    fn prune(&self, _before: i64) -> BoxFuture<'_, Result<u64, ChainError>> {
        // moka forgets idle chains on its own.
        Box::pin(async { Ok(0) })
    }
}
