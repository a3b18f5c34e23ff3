//! Counters the pipeline keeps (cache hits and misses, provider and augmenter outcomes), read by
//! the sidecar's `/metrics` and by anyone who wants them.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Outcome counters of one provider.
#[derive(Debug, Default)]
pub struct ProviderCounters {
    /// Credentials accepted.
    pub success: AtomicU64,
    /// Credentials refused as invalid.
    pub invalid: AtomicU64,
    /// Calls that could not decide (errors).
    pub unavailable: AtomicU64,
    /// Calls that ran out of time.
    pub timeout: AtomicU64,
    /// Calls refused at once because the provider's concurrent-call limit was reached (503).
    pub busy: AtomicU64,
}

/// Outcome counters of one augmenter.
#[derive(Debug, Default)]
pub struct AugmenterCounters {
    /// Successful runs.
    pub success: AtomicU64,
    /// Failed or timed-out runs (never fatal).
    pub error: AtomicU64,
}

/// All counters of an [`Authenticator`](crate::Authenticator).
#[derive(Debug, Default)]
pub struct Stats {
    /// Lookups answered from the cache.
    pub cache_hits: AtomicU64,
    /// Lookups that had to ask providers.
    pub cache_misses: AtomicU64,
    /// Per provider, in configuration order.
    pub providers: Vec<ProviderCounters>,
    /// Per augmenter, in configuration order.
    pub augmenters: Vec<AugmenterCounters>,
}

impl Stats {
    pub(crate) fn new(providers: usize, augmenters: usize) -> Self {
        Stats {
            cache_hits: AtomicU64::new(0),
            cache_misses: AtomicU64::new(0),
            providers: (0..providers)
                .map(|_| ProviderCounters::default())
                .collect(),
            augmenters: (0..augmenters)
                .map(|_| AugmenterCounters::default())
                .collect(),
        }
    }

    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }
}
