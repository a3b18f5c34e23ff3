//! Invalidation counters: which cache fills under way an `Authenticator::invalidate_*` made
//! stale.
//!
//! A fill (a provider answer on its way into the cache) that started before an invalidation may
//! hold what the invalidation just removed (a token lookup that read the row before its
//! revocation), so it must be served but not cached. One sequence numbers every invalidation;
//! each kind of target (API token id, user, credential) has a small fixed array of shards that
//! remember the number of the latest invalidation that hit them. A fill notes the sequence when
//! it starts; its answer is stale when, since then, a global invalidation or a shard of its own
//! principal was hit. So one user's revocation spoils the fills of principals sharing its shard
//! (1 in [`SHARDS`]), not every fill of every provider; only `invalidate_all` (everything) and
//! `invalidate_tokens` (every API-token principal) stay global. Shard collisions cost a fill its
//! cache entry, never correctness.

use std::hash::Hasher as _;
use std::sync::atomic::{AtomicU64, Ordering};

use siphasher::sip::SipHasher13;

use super::Digest;
use crate::user::Principal;

/// Shards per kind of target.
pub(crate) const SHARDS: usize = 256;

/// What an invalidation hit.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Target<'a> {
    /// Every cached principal.
    All,
    /// Every principal authenticated by an API token.
    AllTokens,
    /// The principals of one API token id.
    Token(&'a str),
    /// The principals of one user.
    User { realm: &'a str, username: &'a str },
    /// What one credential authenticated.
    Credential(&'a Digest),
}

pub(crate) struct Invalidations {
    seq: AtomicU64,
    all: AtomicU64,
    all_tokens: AtomicU64,
    tokens: [AtomicU64; SHARDS],
    users: [AtomicU64; SHARDS],
    credentials: [AtomicU64; SHARDS],
}

/// The shard of `parts`. Unkeyed on purpose: token ids are random and chosen by the server, and
/// a collision only makes a fill uncacheable, so there is nothing to gain from guessing.
fn shard(parts: &[&[u8]]) -> usize {
    let mut h = SipHasher13::new();
    for p in parts {
        h.write(p);
        h.write_u8(0);
    }
    (h.finish() % SHARDS as u64) as usize
}

impl Invalidations {
    pub(crate) fn new() -> Self {
        Invalidations {
            seq: AtomicU64::new(0),
            all: AtomicU64::new(0),
            all_tokens: AtomicU64::new(0),
            tokens: std::array::from_fn(|_| AtomicU64::new(0)),
            users: std::array::from_fn(|_| AtomicU64::new(0)),
            credentials: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    fn slot(&self, target: Target<'_>) -> &AtomicU64 {
        match target {
            Target::All => &self.all,
            Target::AllTokens => &self.all_tokens,
            Target::Token(id) => &self.tokens[shard(&[id.as_bytes()])],
            Target::User { realm, username } => {
                &self.users[shard(&[realm.as_bytes(), username.as_bytes()])]
            }
            Target::Credential(d) => &self.credentials[shard(&[&d[..]])],
        }
    }

    /// Records an invalidation of `target`. Called before the removal: a fill that checks after
    /// its insert either sees it or was inserted before the removal, which then drops it.
    pub(crate) fn bump(&self, target: Target<'_>) {
        let n = self.seq.fetch_add(1, Ordering::SeqCst) + 1;
        self.slot(target).fetch_max(n, Ordering::SeqCst);
    }

    /// The sequence now: what a fill notes when it starts.
    pub(crate) fn now(&self) -> u64 {
        self.seq.load(Ordering::SeqCst)
    }

    /// Whether an invalidation after `since` concerns `principal`, found for the credential
    /// with `digest`. Token invalidations count for API-token principals only.
    pub(crate) fn stale_since(&self, since: u64, principal: &Principal, digest: &Digest) -> bool {
        let hit = |t: Target<'_>| self.slot(t).load(Ordering::SeqCst) > since;
        hit(Target::All)
            || hit(Target::Credential(digest))
            || hit(Target::User {
                realm: &principal.realm,
                username: &principal.username,
            })
            || principal
                .token_id()
                .is_some_and(|id| hit(Target::AllTokens) || hit(Target::Token(id)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::user::User;

    #[test]
    fn only_invalidations_of_the_principal_or_global_ones_make_a_fill_stale() {
        let inv = Invalidations::new();
        let alice = Principal::augmented(User::new("alice", "r"), "p", None, None);
        let d = [1u8; 16];
        let since = inv.now();
        // Someone else's user, credential and token (alice is no token principal).
        inv.bump(Target::User {
            realm: "r",
            username: "bob",
        });
        inv.bump(Target::Credential(&[2u8; 16]));
        inv.bump(Target::Token("tok-1"));
        inv.bump(Target::AllTokens);
        assert!(!inv.stale_since(since, &alice, &d));
        for t in [
            Target::User {
                realm: "r",
                username: "alice",
            },
            Target::Credential(&d),
            Target::All,
        ] {
            let since = inv.now();
            assert!(!inv.stale_since(since, &alice, &d));
            inv.bump(t);
            assert!(inv.stale_since(since, &alice, &d), "{t:?}");
        }
    }
}
