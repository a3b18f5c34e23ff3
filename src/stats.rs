//! Counters the pipeline keeps (cache hits and misses, provider and augmenter outcomes), read by
//! the sidecar's `/metrics` and by anyone who wants them.
//!
//! Read through methods: the counters themselves stay private, so only the pipeline counts and
//! the representation (relaxed atomics today) can change without breaking readers.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Outcome counters of one provider.
#[derive(Debug, Default)]
pub struct ProviderCounters {
    pub(crate) success: AtomicU64,
    pub(crate) invalid: AtomicU64,
    pub(crate) unavailable: AtomicU64,
    pub(crate) timeout: AtomicU64,
    pub(crate) busy: AtomicU64,
}

impl ProviderCounters {
    /// Credentials accepted.
    pub fn success(&self) -> u64 {
        self.success.load(Relaxed)
    }

    /// Credentials refused as invalid.
    pub fn invalid(&self) -> u64 {
        self.invalid.load(Relaxed)
    }

    /// Calls that could not decide (errors).
    pub fn unavailable(&self) -> u64 {
        self.unavailable.load(Relaxed)
    }

    /// Calls that ran out of time.
    pub fn timeout(&self) -> u64 {
        self.timeout.load(Relaxed)
    }

    /// Calls refused at once because the provider's concurrent-call limit was reached (503).
    pub fn busy(&self) -> u64 {
        self.busy.load(Relaxed)
    }
}

/// Outcome counters of one augmenter.
#[derive(Debug, Default)]
pub struct AugmenterCounters {
    pub(crate) success: AtomicU64,
    pub(crate) error: AtomicU64,
}

impl AugmenterCounters {
    /// Successful runs.
    pub fn success(&self) -> u64 {
        self.success.load(Relaxed)
    }

    /// Failed or timed-out runs (never fatal).
    pub fn error(&self) -> u64 {
        self.error.load(Relaxed)
    }
}

/// All counters of an [`Authenticator`](crate::Authenticator).
#[derive(Debug, Default)]
pub struct Stats {
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    providers: Vec<ProviderCounters>,
    augmenters: Vec<AugmenterCounters>,
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

    /// Lookups answered from the cache.
    pub fn cache_hits(&self) -> u64 {
        self.cache_hits.load(Relaxed)
    }

    /// Lookups that had to ask providers.
    pub fn cache_misses(&self) -> u64 {
        self.cache_misses.load(Relaxed)
    }

    /// Per provider, in configuration order (as [`Authenticator::providers`](crate::Authenticator::providers)).
    pub fn providers(&self) -> &[ProviderCounters] {
        &self.providers
    }

    /// Per augmenter, in configuration order (as [`Authenticator::augmenters`](crate::Authenticator::augmenters)).
    pub fn augmenters(&self) -> &[AugmenterCounters] {
        &self.augmenters
    }

    pub(crate) fn hit(&self) {
        Self::bump(&self.cache_hits);
    }

    pub(crate) fn miss(&self) {
        Self::bump(&self.cache_misses);
    }

    pub(crate) fn provider(&self, i: usize) -> &ProviderCounters {
        &self.providers[i]
    }

    pub(crate) fn augmenter(&self, i: usize) -> &AugmenterCounters {
        &self.augmenters[i]
    }

    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }
}
