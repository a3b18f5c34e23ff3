//! [`LastUsed`]: last-use times collected in memory and written in batches, at most once per
//! token per interval (a minute by default), whatever the request rate.
//!
//! One write per request does not scale (crates.io, Grafana do it); GitLab settled on 10
//! minutes, Gitea on 30 s. The map holds one entry per token used within the interval, so its
//! size is bounded by the number of live tokens, not by requests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use super::store::{StoreError, TokenId, TokenStore, UnixTime};

/// The default interval between two writes for one token.
pub const DEFAULT_LAST_USED_INTERVAL: Duration = Duration::from_secs(60);

/// Batches last-use times for a [`TokenStore`].
#[derive(Debug)]
pub struct LastUsed {
    store: Arc<dyn TokenStore>,
    interval: i64,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Uses not yet written: id → latest time.
    pending: HashMap<TokenId, UnixTime>,
    /// Last written time per id, to hold back the next write for `interval`.
    written: HashMap<TokenId, UnixTime>,
}

impl LastUsed {
    /// Writes to `store` at most once per token per `interval` (whole seconds, at least one).
    pub fn new(store: Arc<dyn TokenStore>, interval: Duration) -> Self {
        LastUsed {
            store,
            interval: i64::try_from(interval.as_secs().max(1)).unwrap_or(i64::MAX),
            state: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Notes a use of `id` at `now`. Cheap: a map insert, no I/O.
    pub fn record(&self, id: &TokenId, now: UnixTime) {
        let mut state = self.lock();
        if let Some(&at) = state.written.get(id)
            && now < at.saturating_add(self.interval)
        {
            return;
        }
        let slot = state.pending.entry(id.clone()).or_insert(now);
        *slot = (*slot).max(now);
    }

    /// Uses waiting to be written.
    pub fn pending(&self) -> usize {
        self.lock().pending.len()
    }

    /// Tokens whose next write is held back (written within the interval).
    #[cfg(test)]
    fn held_back(&self) -> usize {
        self.lock().written.len()
    }

    /// Writes the pending uses in one transaction. On failure they stay pending for the next
    /// flush (a newer use of the same token replaces an older one).
    pub async fn flush(&self, now: UnixTime) -> Result<usize, StoreError> {
        let batch: Vec<(TokenId, UnixTime)> = {
            let mut state = self.lock();
            let interval = self.interval;
            state
                .written
                .retain(|_, at| now < at.saturating_add(interval));
            state.pending.drain().collect()
        };
        if batch.is_empty() {
            return Ok(0);
        }
        match self.store.record_last_used(&batch).await {
            Ok(()) => {
                let mut state = self.lock();
                for (id, at) in &batch {
                    state.written.insert(id.clone(), *at);
                }
                Ok(batch.len())
            }
            Err(e) => {
                let mut state = self.lock();
                for (id, at) in batch {
                    let slot = state.pending.entry(id).or_insert(at);
                    *slot = (*slot).max(at);
                }
                Err(e)
            }
        }
    }

    /// Spawns a task flushing every `period` with the wall clock, until `self` is dropped
    /// elsewhere (the task holds a weak reference). Errors are logged, not fatal: the uses stay
    /// pending.
    pub fn spawn_flusher(self: &Arc<Self>, period: Duration) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(this) = weak.upgrade() else { return };
                if let Err(e) = this.flush(unix_now()).await {
                    tracing::warn!(error = %e, pending = this.pending(), "token last-used flush failed");
                }
            }
        })
    }
}

/// The wall clock in Unix seconds.
pub(crate) fn unix_now() -> UnixTime {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::LastUsed;
    use crate::token::store::{MemoryStore, TokenId};

    #[tokio::test]
    async fn held_back_entries_are_pruned_once_their_interval_is_over() {
        let last = LastUsed::new(Arc::new(MemoryStore::new()), Duration::from_secs(60));
        let ids: Vec<TokenId> = (0..1000).map(|_| TokenId::random().unwrap()).collect();
        for id in &ids {
            last.record(id, 1000);
        }
        assert_eq!(last.flush(1000).await.unwrap(), 1000);
        assert_eq!(last.held_back(), 1000);
        // Used again inside the interval: held back, nothing pending.
        last.record(&ids[0], 1030);
        assert_eq!(last.pending(), 0);
        // The next flush after the interval forgets them all: one entry per token used in the
        // last interval, not per token ever used.
        assert_eq!(last.flush(1060).await.unwrap(), 0);
        assert_eq!(last.held_back(), 0);
    }
}
