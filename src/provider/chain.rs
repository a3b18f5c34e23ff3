//! [`ChainStore`]: where `openid-offline` keeps its refresh-token chains, and [`MemoryChains`],
//! the in-process default.
//!
//! A chain is keyed by the SHA-256 of the client's original refresh token and holds the latest
//! token of the chain, sealed by the provider (the store only ever sees ciphertext), with a
//! generation that every exchange advances. An exchange first *claims* the chain: a
//! compare-and-swap on the generation that also sets a lease. Only the claimant presents the
//! chain's token to the IdP; every other replica (or task) waits for the lease to end and
//! continues with the claimant's new token. So a rotating refresh token is spent exactly once
//! however many replicas share the store, and the IdP's reuse detection is never tripped by us.
//!
//! The token stores (`SqliteStore`, `PostgresStore`, feature `tokens-sqlite` / `tokens-postgres`)
//! implement this trait on their own database, so replicas on one PostgreSQL share chains.

use std::fmt;
use std::time::Duration;

use super::BoxFuture;

/// The SHA-256 of a client's original refresh token.
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

    /// Whether a claimant's lease is running at `now`.
    pub fn is_claimed(&self, now: i64) -> bool {
        self.claimed_until.is_some_and(|until| until > now)
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
pub trait ChainStore: Send + Sync + fmt::Debug + 'static {
    /// The chain's state; `None` if it was never claimed.
    fn load<'a>(
        &'a self,
        chain: &'a ChainKey,
    ) -> BoxFuture<'a, Result<Option<ChainState>, ChainError>>;

    /// Claims the chain last seen at generation `seen` (`None`: not stored yet) until
    /// `until`, if nobody else claimed it since and no lease runs at `now`. `Some(generation)`
    /// of the claim if this caller won, `None` if it lost (then it reloads).
    fn claim<'a>(
        &'a self,
        chain: &'a ChainKey,
        seen: Option<i64>,
        now: i64,
        until: i64,
    ) -> BoxFuture<'a, Result<Option<i64>, ChainError>>;

    /// Ends the claim at `generation`, storing `sealed` as the chain's token if given (`None`
    /// keeps it). `false` if the claim was lost meanwhile (its lease ran out and another caller
    /// claimed): then nothing is changed.
    fn release<'a>(
        &'a self,
        chain: &'a ChainKey,
        generation: i64,
        sealed: Option<&'a [u8]>,
        now: i64,
    ) -> BoxFuture<'a, Result<bool, ChainError>>;

    /// Deletes chains untouched since `idle_before` (Unix seconds) and not claimed; returns
    /// how many. A pruned chain starts again from the client's original token, which the IdP
    /// has spent if the chain ever rotated: prune only chains idle for longer than the IdP keeps
    /// an idle offline session (Keycloak: 30 days by default).
    fn prune(&self, idle_before: i64) -> BoxFuture<'_, Result<u64, ChainError>>;
}

/// Chains in this process's memory: the default without a token store. Bounded (least
/// recently used chains go first) and forgetting chains idle for 30 days.
#[derive(Debug)]
pub struct MemoryChains {
    chains: moka::sync::Cache<ChainKey, ChainState>,
}

/// How long an idle chain is remembered in memory.
const IDLE: Duration = Duration::from_secs(30 * 86_400);

impl MemoryChains {
    /// At most `capacity` chains.
    pub fn new(capacity: u64) -> Self {
        MemoryChains {
            chains: moka::sync::Cache::builder()
                .max_capacity(capacity)
                .time_to_idle(IDLE)
                .build(),
        }
    }
}

impl ChainStore for MemoryChains {
    fn load<'a>(
        &'a self,
        chain: &'a ChainKey,
    ) -> BoxFuture<'a, Result<Option<ChainState>, ChainError>> {
        Box::pin(async move { Ok(self.chains.get(chain)) })
    }

    fn claim<'a>(
        &'a self,
        chain: &'a ChainKey,
        seen: Option<i64>,
        now: i64,
        until: i64,
    ) -> BoxFuture<'a, Result<Option<i64>, ChainError>> {
        use moka::ops::compute::Op;
        Box::pin(async move {
            let mut won = None;
            self.chains.entry(*chain).and_compute_with(|current| {
                let next = match (current.map(|e| e.into_value()), seen) {
                    (None, None) => ChainState::new(1, None, Some(until)),
                    (Some(c), Some(s)) if c.generation == s && !c.is_claimed(now) => {
                        ChainState::new(s + 1, c.sealed, Some(until))
                    }
                    _ => return Op::Nop,
                };
                won = Some(next.generation);
                Op::Put(next)
            });
            Ok(won)
        })
    }

    fn release<'a>(
        &'a self,
        chain: &'a ChainKey,
        generation: i64,
        sealed: Option<&'a [u8]>,
        _now: i64,
    ) -> BoxFuture<'a, Result<bool, ChainError>> {
        use moka::ops::compute::Op;
        Box::pin(async move {
            let mut done = false;
            self.chains
                .entry(*chain)
                .and_compute_with(|current| match current {
                    Some(c) if c.value().generation == generation => {
                        let c = c.into_value();
                        done = true;
                        Op::Put(ChainState::new(
                            generation,
                            sealed.map(<[u8]>::to_vec).or(c.sealed),
                            None,
                        ))
                    }
                    _ => Op::Nop,
                });
            Ok(done)
        })
    }

    /// Nothing to do: memory forgets chains idle for 30 days on its own.
    fn prune(&self, _idle_before: i64) -> BoxFuture<'_, Result<u64, ChainError>> {
        Box::pin(async { Ok(0) })
    }
}
