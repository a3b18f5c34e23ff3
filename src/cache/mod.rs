//! The result cache: bounded, keyed by a keyed hash of the credential, holding the provider
//! that accepted it and the augmented user (what the pipeline stores, generic here) until
//! min(provider TTL, credential expiry).
//!
//! One entry per credential (and `X-Auth-Realm` filter, see [`KeyHasher::entry`]), not one per
//! (provider, credential): a hit is one probe whichever provider it belongs to (an ECMWF key or
//! an API token used to miss the `jwt` provider's key first, ~1 100 instructions per probe),
//! and the caller checks that the entry's provider is eligible for the request.
//!
//! Storage is `moka::sync::Cache` because its lookup is synchronous: the hot path (a cache hit)
//! runs inside `Service::call` without building a future. Concurrent misses of one credential
//! are coalesced by [`flight::Flights`], so exactly one provider call is made.

use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant};

use moka::Expiry;
use siphasher::sip128::{Hasher128, SipHasher13};

use crate::credentials::{Credential, Scheme};

pub(crate) mod flight;
pub(crate) mod invalidation;

/// A keyed digest of one credential: never the credential itself.
pub(crate) type Digest = [u8; 16];

/// Hashes credentials with SipHash-1-3 (128-bit output) under a random per-authenticator key.
///
/// Why not HMAC-SHA-256: on a 1 KB bearer token it costs ~0.68 µs on our bench machine, more
/// than half of the hot path's 1 µs budget; SipHash-2-4 costs ~0.37 µs and SipHash-1-3
/// ~0.21 µs. SipHash is a keyed pseudorandom function made for exactly this threat: an attacker
/// who does not know the key (random, never leaves the process, never output) can neither
/// predict a digest nor find two credentials that collide. The 1-3 round count is the one
/// Rust's `HashMap` relies on against the same adversary; 128-bit output keeps accidental
/// collisions out of reach, so the cache never hands one credential's user to another. Digests
/// are not reversible without the key, so a cache dump or a `Debug` print reveals no credential.
#[derive(Clone)]
pub(crate) struct KeyHasher {
    k0: u64,
    k1: u64,
}

impl KeyHasher {
    pub(crate) fn random() -> Self {
        let mut key = [0u8; 16];
        getrandom::fill(&mut key).expect("the operating system provides randomness");
        let (a, b) = key.split_at(8);
        KeyHasher {
            k0: u64::from_le_bytes(a.try_into().expect("8 bytes")),
            k1: u64::from_le_bytes(b.try_into().expect("8 bytes")),
        }
    }

    fn start(&self) -> SipHasher13 {
        SipHasher13::new_with_keys(self.k0, self.k1)
    }

    pub(crate) fn credential(&self, credential: &Credential<'_>) -> Digest {
        self.secret(credential.scheme(), credential.secret().as_bytes())
    }

    /// The digest of a credential of `scheme` whose secret is `secret`.
    pub(crate) fn secret(&self, scheme: Scheme, secret: &[u8]) -> Digest {
        let mut h = self.start();
        // A tag, then length-prefixed fields: no two (scheme, secret) pairs feed the same bytes,
        // not even a custom scheme named like a built-in one.
        h.write_u8(match scheme {
            Scheme::Basic => 0,
            Scheme::Bearer => 1,
            Scheme::EmailKey => 2,
            Scheme::Custom(_) => 3,
        });
        h.write_usize(scheme.name().len());
        h.write(scheme.name().as_bytes());
        h.write(secret);
        h.finish128().as_bytes()
    }

    /// The cache key of a credential on a request with `realm`'s filter (`X-Auth-Realm`): the
    /// credential digest itself when there is none, else a digest of both. So an answer given
    /// under one filter is never another filter's, and requests alternating between filters
    /// keep an entry each instead of replacing one another's. Only filters naming a
    /// provider's realm are ever filled (no other has an eligible provider), so a credential
    /// has at most one key per configured realm, plus one.
    pub(crate) fn entry(&self, digest: &Digest, realm: Option<&str>) -> Digest {
        let Some(r) = realm else { return *digest };
        let mut h = self.start();
        h.write(b"realm");
        h.write(digest);
        h.write(r.as_bytes());
        h.finish128().as_bytes()
    }

    /// The single-flight key: the credential digest plus the realm filter of the request.
    pub(crate) fn flight(&self, digest: &Digest, realm: Option<&str>) -> Digest {
        let mut h = self.start();
        h.write(b"flight");
        h.write(digest);
        match realm {
            Some(r) => {
                h.write_u8(1);
                h.write(r.as_bytes());
            }
            None => h.write_u8(0),
        }
        h.finish128().as_bytes()
    }
}

/// Hashes a [`Digest`] for moka's table by folding its bytes: a digest is already the output of
/// a keyed pseudorandom function, uniform in every bit, so moka's default (a second SipHash per
/// probe, ~300 instructions) adds nothing but time.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct DigestHash;

/// The [`Hasher`] of [`DigestHash`].
#[derive(Debug, Default)]
pub(crate) struct DigestHasher(u64);

impl BuildHasher for DigestHash {
    type Hasher = DigestHasher;

    fn build_hasher(&self) -> DigestHasher {
        DigestHasher::default()
    }
}

impl Hasher for DigestHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(29) ^ u64::from_le_bytes(word);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[derive(Clone)]
struct Entry<V> {
    provider: usize,
    value: V,
    ttl: Duration,
}

struct EntryExpiry;

impl<V> Expiry<Digest, Entry<V>> for EntryExpiry {
    fn expire_after_create(&self, _: &Digest, value: &Entry<V>, _: Instant) -> Option<Duration> {
        Some(value.ttl)
    }

    // An entry replaced under its key (another provider's answer, a refill) gets its own TTL,
    // not what was left of the old one's (moka's default).
    fn expire_after_update(
        &self,
        _: &Digest,
        value: &Entry<V>,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// The bounded store of authenticated principals (with what the pipeline keeps beside them).
#[derive(Clone)]
pub(crate) struct Store<V> {
    inner: moka::sync::Cache<Digest, Entry<V>, DigestHash>,
}

impl<V: Clone + Send + Sync + 'static> Store<V> {
    pub(crate) fn new(capacity: u64) -> Self {
        Store {
            inner: moka::sync::Cache::builder()
                .max_capacity(capacity)
                .expire_after(EntryExpiry)
                .support_invalidation_closures()
                .build_with_hasher(DigestHash),
        }
    }

    /// The entry under `key` ([`KeyHasher::entry`]): the position of the provider that
    /// accepted the credential, and what was stored.
    pub(crate) fn get(&self, key: &Digest) -> Option<(usize, V)> {
        self.inner.get(key).map(|e| (e.provider, e.value))
    }

    /// Remembers under `key` that provider `provider` accepted the credential, for `ttl`.
    pub(crate) fn insert(&self, key: Digest, provider: usize, value: V, ttl: Duration) {
        if !ttl.is_zero() {
            self.inner.insert(
                key,
                Entry {
                    provider,
                    value,
                    ttl,
                },
            );
        }
    }

    pub(crate) fn remove(&self, key: &Digest) {
        self.inner.invalidate(key);
    }

    pub(crate) fn clear(&self) {
        self.inner.invalidate_all();
    }

    /// Drops every entry `doomed` picks.
    pub(crate) fn remove_if(&self, doomed: impl Fn(&V) -> bool + Send + Sync + 'static) {
        // Only fails when invalidation closures are not enabled, and they are.
        let _ = self
            .inner
            .invalidate_entries_if(move |_, e| doomed(&e.value));
    }

    /// Entries currently held (after pending maintenance).
    pub(crate) fn len(&self) -> u64 {
        self.inner.run_pending_tasks();
        self.inner.entry_count()
    }
}
