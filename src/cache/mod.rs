//! The result cache: bounded, keyed by a keyed hash of (provider, credential), holding the
//! augmented user until min(provider TTL, credential expiry).
//!
//! Storage is `moka::sync::Cache` because its lookup is synchronous: the hot path (a cache hit)
//! runs inside `Service::call` without building a future. Concurrent misses of one credential
//! are coalesced by [`flight::Flights`], so exactly one provider call is made.

use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use moka::Expiry;
use sha2::Sha256;

use crate::credentials::Credential;
use crate::user::Principal;

pub(crate) mod flight;

/// A keyed digest of one credential: never the credential itself.
pub(crate) type Digest = [u8; 32];

/// Hashes credentials with a random per-process key (HMAC-SHA-256), so a cache dump or a
/// `Debug` print reveals nothing, and low-entropy secrets (passwords) cannot be brute-forced
/// from the keys.
#[derive(Clone)]
pub(crate) struct KeyHasher {
    mac: Hmac<Sha256>,
}

impl KeyHasher {
    pub(crate) fn random() -> Self {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).expect("the operating system provides randomness");
        KeyHasher {
            mac: Hmac::<Sha256>::new_from_slice(&key).expect("HMAC accepts any key length"),
        }
    }

    pub(crate) fn credential(&self, credential: &Credential<'_>) -> Digest {
        let mut mac = self.mac.clone();
        mac.update(credential.scheme().name().as_bytes());
        mac.update(&[0]);
        mac.update(credential.secret().as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The single-flight key: the credential digest plus the realm filter of the request.
    pub(crate) fn flight(&self, digest: &Digest, realm: Option<&str>) -> Digest {
        let mut mac = self.mac.clone();
        mac.update(b"flight\0");
        mac.update(digest);
        match realm {
            Some(r) => {
                mac.update(&[1]);
                mac.update(r.as_bytes());
            }
            None => mac.update(&[0]),
        }
        mac.finalize().into_bytes().into()
    }
}

/// A cache key: the provider's position in the authenticator and the credential digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    pub(crate) provider: u32,
    pub(crate) digest: Digest,
}

#[derive(Clone)]
pub(crate) struct Entry {
    pub(crate) principal: Principal,
    ttl: Duration,
}

struct EntryExpiry;

impl Expiry<Key, Entry> for EntryExpiry {
    fn expire_after_create(&self, _: &Key, value: &Entry, _: Instant) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// The bounded store of authenticated principals.
#[derive(Clone)]
pub(crate) struct Store {
    inner: moka::sync::Cache<Key, Entry>,
}

impl Store {
    pub(crate) fn new(capacity: u64) -> Self {
        Store {
            inner: moka::sync::Cache::builder()
                .max_capacity(capacity)
                .expire_after(EntryExpiry)
                .support_invalidation_closures()
                .build(),
        }
    }

    pub(crate) fn get(&self, key: &Key) -> Option<Principal> {
        self.inner.get(key).map(|e| e.principal)
    }

    pub(crate) fn insert(&self, key: Key, principal: Principal, ttl: Duration) {
        if !ttl.is_zero() {
            self.inner.insert(key, Entry { principal, ttl });
        }
    }

    pub(crate) fn remove(&self, key: &Key) {
        self.inner.invalidate(key);
    }

    pub(crate) fn clear(&self) {
        self.inner.invalidate_all();
    }

    pub(crate) fn remove_user(&self, realm: &str, username: &str) {
        let (realm, username) = (realm.to_owned(), username.to_owned());
        // Only fails when invalidation closures are not enabled, and they are.
        let _ = self.inner.invalidate_entries_if(move |_, e| {
            e.principal.realm == realm && e.principal.username == username
        });
    }

    /// Entries currently held (after pending maintenance).
    pub(crate) fn len(&self) -> u64 {
        self.inner.run_pending_tasks();
        self.inner.entry_count()
    }
}
