//! The pipeline shared by the layer and the sidecar: credentials, eligible providers, cache,
//! single flight, providers under a timeout, augmenters.
//!
//! # Who sees a credential
//!
//! A credential is offered only to the providers that accept its scheme (and match
//! `X-Auth-Realm`), in three steps decided here and nowhere else:
//!
//! 1. **Owner.** A provider that [owns](Provider::owns) the credential (a `jwt` provider holding
//!    the key named by a JWT's `kid`) decides alone: no other provider, local or remote, sees
//!    the token. If the owner's answer shows it was not its after all (its keys loaded during
//!    the call and lack the `kid`), the credential goes on to step 2.
//! 2. **Local.** Every eligible [`Locality::Local`] provider (static users, `jwt`), concurrently;
//!    the first success wins.
//! 3. **Remote.** Only when every local provider refused (or none was eligible), the
//!    [`Locality::Remote`] ones (introspection, `ecmwf-api`, `efas-api`, `openid-offline`,
//!    `ecmwf-token-generator`), concurrently. So a token our own verifier accepts is never sent
//!    to another operator's service.
//!
//! A local provider that could not decide (503) does not hold back a credential that is not
//! bound to it: an opaque API key still reaches `ecmwf-api` while the `jwt` provider's IdP is
//! down. A bound one stays: a `jwt` provider that has not loaded its keys yet counts every JWT
//! with a `kid` under an algorithm it accepts as possibly its own, so such a token waits for
//! the keys (503) rather than travel to a remote service.
//!
//! Each provider has a limit on concurrent calls (64 for remote providers by default): a call
//! beyond it is not queued but answered at once as unavailable (503) and counted as
//! [`busy`](crate::ProviderCounters::busy), so one slow upstream cannot pile up requests.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use http::HeaderMap;

use crate::augment::{Augmenter, Stage};
use crate::cache::flight::Flights;
use crate::cache::invalidation::{Invalidations, Target};
use crate::cache::{Digest, KeyHasher, Store};
use crate::challenge::Challenges;
use crate::credentials::{
    Credential, CredentialSource, Credentials, DEFAULT_MAX_HEADER_BYTES, Scheme,
};
use crate::error::AuthError;
use crate::mint::MintCache;
use crate::provider::{Identity, Locality, Provider, ProviderError};
use crate::stats::Stats;
use crate::user::{Principal, User};

/// The request header that limits the providers tried to one realm (exact match).
pub const REALM_HEADER: http::HeaderName = http::HeaderName::from_static("x-auth-realm");

/// The realm `X-Auth-Realm` limits a request to, if any. Two lines are refused, as two
/// `Authorization` lines are: which one a proxy or an app would read is anyone's guess.
fn realm_of(headers: &HeaderMap) -> Result<Option<&str>, AuthError> {
    let mut lines = headers.get_all(&REALM_HEADER).iter();
    let Some(line) = lines.next() else {
        return Ok(None);
    };
    if lines.next().is_some() {
        return Err(AuthError::Malformed("X-Auth-Realm appears more than once"));
    }
    line.to_str()
        .map(Some)
        .map_err(|_| AuthError::Malformed("X-Auth-Realm is not visible ASCII"))
}

/// Default per-provider timeout (auth-o-tron's `auth.timeout_in_ms`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Default limit of concurrent calls to each remote provider (see
/// [`AuthenticatorBuilder::max_concurrent_calls`]).
pub const DEFAULT_MAX_CONCURRENT_CALLS: usize = 64;

/// Default number of cached principals.
pub const DEFAULT_CACHE_CAPACITY: u64 = 10_000;

/// Why an [`Authenticator`] could not be built.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// No provider was configured.
    NoProviders,
    /// Two providers share a name.
    DuplicateProvider(String),
    /// A zero timeout or capacity.
    Zero(&'static str),
    /// A per-provider setting names no configured provider.
    UnknownProvider(String),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::NoProviders => f.write_str("at least one provider is required"),
            BuildError::DuplicateProvider(n) => write!(f, "provider name {n:?} is used twice"),
            BuildError::Zero(what) => write!(f, "{what} must be greater than zero"),
            BuildError::UnknownProvider(n) => write!(f, "no provider is named {n:?}"),
        }
    }
}

impl std::error::Error for BuildError {}

/// Builds an [`Authenticator`].
#[must_use]
pub struct AuthenticatorBuilder {
    providers: Vec<Arc<dyn Provider>>,
    augmenters: Vec<Arc<dyn Augmenter>>,
    sources: Vec<Box<dyn CredentialSource>>,
    timeout: Duration,
    capacity: u64,
    max_header_bytes: usize,
    negative: Option<(Duration, u64)>,
    max_calls: usize,
    provider_max_calls: Vec<(String, usize)>,
}

impl fmt::Debug for AuthenticatorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthenticatorBuilder")
            .field("providers", &self.providers.len())
            .field("augmenters", &self.augmenters.len())
            .finish_non_exhaustive()
    }
}

impl AuthenticatorBuilder {
    /// Adds a provider. Providers are listed in challenges in the order they are added.
    pub fn provider(mut self, provider: impl Provider) -> Self {
        self.providers.push(Arc::new(provider));
        self
    }

    /// Adds a shared provider.
    pub fn provider_arc(mut self, provider: Arc<dyn Provider>) -> Self {
        self.providers.push(provider);
        self
    }

    /// Adds an augmenter.
    pub fn augmenter(mut self, augmenter: impl Augmenter) -> Self {
        self.augmenters.push(Arc::new(augmenter));
        self
    }

    /// Adds a shared augmenter.
    pub fn augmenter_arc(mut self, augmenter: Arc<dyn Augmenter>) -> Self {
        self.augmenters.push(augmenter);
        self
    }

    /// Reads credentials from another place too (an API-key header, a cookie).
    pub fn source(mut self, source: impl CredentialSource) -> Self {
        self.sources.push(Box::new(source));
        self
    }

    /// Per-provider (and per-augmenter) time limit. Default 5 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Also remembers credentials every eligible provider refused, for `ttl` (at most 5 min),
    /// in a separate cache of `capacity` entries, so a flood of bad credentials can neither
    /// reach the providers twice nor evict good entries. Off by default: a refused credential is
    /// asked again every time, so one that becomes valid works at once. Outages are never
    /// remembered.
    pub fn negative_cache(mut self, ttl: Duration, capacity: u64) -> Self {
        self.negative = Some((ttl.min(Duration::from_secs(300)), capacity));
        self
    }

    /// Maximum number of cached principals. Default 10 000.
    pub fn cache_capacity(mut self, capacity: u64) -> Self {
        self.capacity = capacity;
        self
    }

    /// Limit of concurrent calls to each [remote](Locality::Remote) provider. Default 64. A
    /// call beyond it is answered at once as unavailable (503) rather than queued, and counted
    /// as [`busy`](crate::ProviderCounters::busy). Local providers are not limited unless set
    /// with [`provider_max_concurrent_calls`](Self::provider_max_concurrent_calls).
    pub fn max_concurrent_calls(mut self, limit: usize) -> Self {
        self.max_calls = limit;
        self
    }

    /// Limit of concurrent calls to the provider named `name`, local or remote (overrides
    /// [`max_concurrent_calls`](Self::max_concurrent_calls)).
    pub fn provider_max_concurrent_calls(mut self, name: impl Into<String>, limit: usize) -> Self {
        self.provider_max_calls.push((name.into(), limit));
        self
    }

    /// Maximum size of a credential header. Default 8 KiB.
    pub fn max_header_bytes(mut self, bytes: usize) -> Self {
        self.max_header_bytes = bytes;
        self
    }

    /// Builds the authenticator.
    pub fn build(self) -> Result<Authenticator, BuildError> {
        if self.providers.is_empty() {
            return Err(BuildError::NoProviders);
        }
        for (i, p) in self.providers.iter().enumerate() {
            if self.providers[..i]
                .iter()
                .any(|q| q.info().name == p.info().name)
            {
                return Err(BuildError::DuplicateProvider(p.info().name.clone()));
            }
        }
        if self.timeout.is_zero() {
            return Err(BuildError::Zero("timeout"));
        }
        if self.capacity == 0 {
            return Err(BuildError::Zero("cache capacity"));
        }
        if self.max_header_bytes == 0 {
            return Err(BuildError::Zero("max header bytes"));
        }
        if self.max_calls == 0 || self.provider_max_calls.iter().any(|(_, n)| *n == 0) {
            return Err(BuildError::Zero("max concurrent calls"));
        }
        if let Some((name, _)) = self
            .provider_max_calls
            .iter()
            .find(|(n, _)| !self.providers.iter().any(|p| p.info().name == *n))
        {
            return Err(BuildError::UnknownProvider(name.clone()));
        }
        let limits = self
            .providers
            .iter()
            .map(|p| {
                let own = self
                    .provider_max_calls
                    .iter()
                    .rev()
                    .find(|(n, _)| *n == p.info().name)
                    .map(|(_, l)| *l);
                own.or((p.locality() == Locality::Remote).then_some(self.max_calls))
                    .map(|l| {
                        tokio::sync::Semaphore::new(l.min(tokio::sync::Semaphore::MAX_PERMITS))
                    })
            })
            .collect();
        let challenges = Challenges::new(
            self.providers
                .iter()
                .map(|p| (p.info().scheme, p.info().realm.as_str())),
        );
        Ok(Authenticator {
            inner: Arc::new(Inner {
                stats: Stats::new(self.providers.len(), self.augmenters.len()),
                providers: self.providers,
                limits,
                augmenters: self.augmenters,
                sources: self.sources,
                timeout: self.timeout,
                max_header_bytes: self.max_header_bytes,
                hasher: KeyHasher::random(),
                store: Store::new(self.capacity),
                negative: self
                    .negative
                    .filter(|(ttl, cap)| !ttl.is_zero() && *cap > 0)
                    .map(|(ttl, cap)| {
                        moka::sync::Cache::builder()
                            .max_capacity(cap)
                            .time_to_live(ttl)
                            .build()
                    }),
                flights: Flights::new(),
                invalidations: Invalidations::new(),
                challenges,
            }),
        })
    }
}

/// Providers, augmenters and the cache: everything needed to turn request headers into a
/// [`Principal`]. Cheap to clone.
#[derive(Clone)]
pub struct Authenticator {
    inner: Arc<Inner>,
}

struct Inner {
    providers: Vec<Arc<dyn Provider>>,
    /// Per provider: the permits of concurrent calls, `None` when unlimited.
    limits: Vec<Option<tokio::sync::Semaphore>>,
    augmenters: Vec<Arc<dyn Augmenter>>,
    sources: Vec<Box<dyn CredentialSource>>,
    timeout: Duration,
    max_header_bytes: usize,
    hasher: KeyHasher,
    store: Store<Authenticated>,
    negative: Option<moka::sync::Cache<Digest, ()>>,
    /// In-flight fills, each answer with the invalidation sequence its leader started at.
    flights: Flights<(Result<Authenticated, AuthError>, u64)>,
    /// Bumped by every `invalidate_*`: a provider answer obtained across an invalidation of its
    /// principal (a token lookup that read the row before its revocation) is served, never
    /// cached, or it would put back what the invalidation just removed.
    invalidations: Invalidations,
    challenges: Challenges,
    stats: Stats,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field(
                "providers",
                &self
                    .inner
                    .providers
                    .iter()
                    .map(|p| p.info().name.as_str())
                    .collect::<Vec<_>>(),
            )
            .field(
                "augmenters",
                &self
                    .inner
                    .augmenters
                    .iter()
                    .map(|a| a.info().name.as_str())
                    .collect::<Vec<_>>(),
            )
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

/// The pipeline's outcome for an authenticated request: the principal, and beside it (cached
/// with it, so a cache hit reuses the token) the last token minted for it. Kept out of
/// [`Principal`] so the user type knows nothing of minting.
#[derive(Clone)]
pub(crate) struct Authenticated {
    pub(crate) principal: Principal,
    pub(crate) minted: MintCache,
}

/// What a synchronous lookup found.
pub(crate) enum Lookup {
    /// Decided without awaiting anything (cache hit or early rejection).
    Done(Result<Authenticated, AuthError>),
    /// Providers must be asked.
    Miss(Pending),
}

/// Owned copies of what a miss needs, so its future can outlive the request borrow.
pub(crate) struct Pending {
    credentials: Vec<(Scheme, Box<str>, Digest)>,
    realm: Option<Box<str>>,
}

impl Authenticator {
    /// Starts building an authenticator.
    pub fn builder() -> AuthenticatorBuilder {
        AuthenticatorBuilder {
            providers: Vec::new(),
            augmenters: Vec::new(),
            sources: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            capacity: DEFAULT_CACHE_CAPACITY,
            negative: None,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            max_calls: DEFAULT_MAX_CONCURRENT_CALLS,
            provider_max_calls: Vec::new(),
        }
    }

    /// The providers, in configuration order.
    pub fn providers(&self) -> impl Iterator<Item = &Arc<dyn Provider>> {
        self.inner.providers.iter()
    }

    /// The augmenters, in configuration order.
    pub fn augmenters(&self) -> impl Iterator<Item = &Arc<dyn Augmenter>> {
        self.inner.augmenters.iter()
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.inner.stats
    }

    /// The `WWW-Authenticate` challenges built from the providers.
    pub fn challenges(&self) -> &Challenges {
        &self.inner.challenges
    }

    /// Number of cached principals.
    pub fn cached_entries(&self) -> u64 {
        self.inner.store.len()
    }

    /// Drops every cached principal.
    pub fn invalidate_all(&self) {
        self.inner.invalidations.bump(Target::All);
        self.inner.store.clear();
    }

    /// Drops the cached principals of one user (e.g. after a role change).
    pub fn invalidate_user(&self, realm: &str, username: &str) {
        self.inner
            .invalidations
            .bump(Target::User { realm, username });
        let (realm, username) = (realm.to_owned(), username.to_owned());
        self.inner
            .store
            .remove_if(move |a| a.principal.realm == realm && a.principal.username == username);
    }

    /// Drops the cached principals authenticated by the API token `token_id` (after a
    /// revocation or rotation).
    pub fn invalidate_token(&self, token_id: &str) {
        self.inner.invalidations.bump(Target::Token(token_id));
        let token_id: Arc<str> = token_id.into();
        self.inner
            .store
            .remove_if(move |a| a.principal.token_id() == Some(&*token_id));
    }

    /// Drops every cached principal authenticated by an API token (the store may have missed
    /// reporting a revocation).
    pub fn invalidate_tokens(&self) {
        self.inner.invalidations.bump(Target::AllTokens);
        self.inner
            .store
            .remove_if(|a| a.principal.token_id().is_some());
    }

    /// Drops what is cached for one credential (e.g. after a logout or revocation).
    pub fn invalidate_credential(&self, credential: Credential<'_>) {
        let digest = self.inner.hasher.credential(&credential);
        self.inner.invalidations.bump(Target::Credential(&digest));
        // Its entry without a realm filter and under each realm one can be filled for.
        let realms = self
            .inner
            .providers
            .iter()
            .map(|p| Some(p.info().realm.as_str()));
        for realm in std::iter::once(None).chain(realms) {
            self.inner
                .store
                .remove(&self.inner.hasher.entry(&digest, realm));
        }
    }

    /// Authenticates the request described by `headers`.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, AuthError> {
        let outcome = match self.lookup(headers) {
            Lookup::Done(result) => result,
            Lookup::Miss(pending) => self.resolve(pending).await,
        };
        outcome.map(|a| a.principal)
    }

    fn eligible<'a>(
        &'a self,
        scheme: Scheme,
        realm: Option<&'a str>,
    ) -> impl Iterator<Item = usize> + 'a {
        (0..self.inner.providers.len()).filter(move |&i| self.is_eligible(i, scheme, realm))
    }

    /// Whether provider `i` may see a credential of `scheme` on a request for `realm`.
    fn is_eligible(&self, i: usize, scheme: Scheme, realm: Option<&str>) -> bool {
        let p = &self.inner.providers[i];
        p.accepts(scheme) && realm.is_none_or(|r| p.info().realm == r)
    }

    /// The cached answer for `digest`, if the provider that gave it is eligible for `scheme`
    /// and `realm` (a request limited by `X-Auth-Realm` to another provider is a miss).
    fn cached(
        &self,
        digest: &Digest,
        scheme: Scheme,
        realm: Option<&str>,
    ) -> Option<Authenticated> {
        let key = self.inner.hasher.entry(digest, realm);
        let (provider, found) = self.inner.store.get(&key)?;
        if !self.is_eligible(provider, scheme, realm) {
            return None;
        }
        // Read the clock only for credentials that expire on their own.
        let p = &found.principal;
        if p.expires_at().is_some() && p.is_expired(SystemTime::now()) {
            self.inner.store.remove(&key);
            return None;
        }
        Some(found)
    }

    /// The synchronous part: parse, hash, look up. Allocates nothing on a hit or a rejection.
    pub(crate) fn lookup(&self, headers: &HeaderMap) -> Lookup {
        let inner = &*self.inner;
        // The usual hit, a lone bearer token already cached, costs one hash of its bytes: their
        // checks (characters, UTF-8) are skipped because a hit proves they are the bytes of a
        // token that passed them. Not with other sources, whose credentials could make the
        // request ambiguous (a repeated scheme). Anything else takes the full path below, which
        // reuses the digest when it reads the same bytes as the credential.
        let mut raw_digest = None;
        if inner.sources.is_empty()
            && let Some(raw) = crate::credentials::unchecked_bearer(headers, inner.max_header_bytes)
            && let Ok(realm) = realm_of(headers)
        {
            let digest = inner.hasher.secret(Scheme::Bearer, raw);
            if let Some(found) = self.cached(&digest, Scheme::Bearer, realm) {
                inner.stats.hit();
                return Lookup::Done(Ok(found));
            }
            raw_digest = Some((raw, digest));
        }
        let mut creds = match Credentials::from_headers(headers, inner.max_header_bytes) {
            Ok(c) => c,
            Err(e) => return Lookup::Done(Err(AuthError::Malformed(e.0))),
        };
        for source in &inner.sources {
            match source.extract(headers) {
                Ok(Some(c)) => {
                    if let Err(e) = creds.push(c) {
                        return Lookup::Done(Err(AuthError::Malformed(e.0)));
                    }
                }
                Ok(None) => {}
                Err(e) => return Lookup::Done(Err(AuthError::Malformed(e.0))),
            }
        }
        if creds.is_empty() {
            return Lookup::Done(Err(AuthError::Missing));
        }
        let realm = match realm_of(headers) {
            Ok(r) => r,
            Err(e) => return Lookup::Done(Err(e)),
        };
        let mut digests = [Digest::default(); crate::credentials::MAX_CREDENTIALS];
        let mut any_eligible = false;
        for (n, cred) in creds.iter().enumerate() {
            // The very bytes the fast path hashed (the same place in the header): their digest,
            // already looked up, and missed.
            let probed = raw_digest.filter(|&(raw, _)| {
                cred.scheme() == Scheme::Bearer && std::ptr::eq(cred.secret().as_bytes(), raw)
            });
            let digest = probed.map_or_else(|| inner.hasher.credential(&cred), |(_, d)| d);
            digests[n] = digest;
            if self.eligible(cred.scheme(), realm).next().is_none() {
                continue;
            }
            any_eligible = true;
            if probed.is_some() {
                continue;
            }
            if let Some(found) = self.cached(&digest, cred.scheme(), realm) {
                inner.stats.hit();
                return Lookup::Done(Ok(found));
            }
        }
        if !any_eligible {
            return Lookup::Done(Err(AuthError::Invalid));
        }
        if let Some(negative) = &inner.negative {
            let all_refused = creds
                .iter()
                .zip(digests)
                .all(|(_, d)| negative.contains_key(&inner.hasher.flight(&d, realm)));
            if all_refused {
                inner.stats.hit();
                return Lookup::Done(Err(AuthError::Invalid));
            }
        }
        inner.stats.miss();
        Lookup::Miss(Pending {
            credentials: creds
                .iter()
                .zip(digests)
                .map(|(c, d)| (c.scheme(), c.secret().into(), d))
                .collect(),
            realm: realm.map(Into::into),
        })
    }

    /// The asynchronous part: providers (single flight per credential), augmenters, cache fill.
    pub(crate) async fn resolve(&self, pending: Pending) -> Result<Authenticated, AuthError> {
        let realm = pending.realm.as_deref();
        let mut unavailable = false;
        for (scheme, secret, digest) in &pending.credentials {
            let eligible: Vec<usize> = self.eligible(*scheme, realm).collect();
            if eligible.is_empty() {
                continue;
            }
            let flight = self.inner.hasher.flight(digest, realm);
            let credential = Credential::new(*scheme, secret);
            let since = self.inner.invalidations.now();
            let (mut result, leader_since) = self
                .inner
                .flights
                .run(flight, async {
                    (
                        self.fill(&eligible, credential, realm, *digest, since)
                            .await,
                        since,
                    )
                })
                .await;
            // A flight that started before an invalidation of its principal which this request
            // started after (a revocation that had already returned) is not this request's
            // answer: it looks again, on its own.
            if let Ok(found) = &result
                && since > leader_since
                && self
                    .inner
                    .invalidations
                    .stale_since(leader_since, &found.principal, digest)
            {
                result = self
                    .fill(&eligible, credential, realm, *digest, since)
                    .await;
            }
            match result {
                Ok(found) => return Ok(found),
                Err(AuthError::Unavailable) => unavailable = true,
                Err(_) => {
                    if let Some(negative) = &self.inner.negative {
                        negative.insert(flight, ());
                    }
                }
            }
        }
        Err(if unavailable {
            AuthError::Unavailable
        } else {
            AuthError::Invalid
        })
    }

    async fn fill(
        &self,
        eligible: &[usize],
        credential: Credential<'_>,
        realm: Option<&str>,
        digest: Digest,
        since: u64,
    ) -> Result<Authenticated, AuthError> {
        let inner = &*self.inner;
        // A flight that just finished may have filled the cache between our lookup and now.
        if let Some(found) = self.cached(&digest, credential.scheme(), realm) {
            return Ok(found);
        }
        let (provider, identity) = self.ask(eligible, credential).await?;
        let now = SystemTime::now();
        let p = &inner.providers[provider];
        // Kept only when an augmenter may change them (the miss path of realms without
        // augmenters copies nothing).
        let base = inner
            .augmenters
            .iter()
            .any(|a| a.info().realm == identity.user.realm)
            .then(|| {
                (
                    identity.user.roles.clone(),
                    identity.user.attributes.clone(),
                )
            });
        let user = self.augment(identity.user).await;
        let found = Authenticated {
            principal: Principal::augmented(
                user,
                p.info().name.as_str(),
                identity.expires_at,
                base,
            ),
            minted: MintCache::new(),
        };
        // A credential the provider accepted inside its clock leeway, already past its own
        // expiry, is served but never cached: the cache must not outlive the credential.
        if let Some(ttl) = p.info().cache_ttl {
            let ttl = match identity.expires_at {
                Some(exp) => ttl.min(exp.duration_since(now).unwrap_or_default()),
                None => ttl,
            };
            let stale = || {
                inner
                    .invalidations
                    .stale_since(since, &found.principal, &digest)
            };
            let key = inner.hasher.entry(&digest, realm);
            if !stale() {
                inner.store.insert(key, provider, found.clone(), ttl);
                // An invalidation between the check and the insert: undo the insert.
                if stale() {
                    inner.store.remove(&key);
                }
            }
        }
        Ok(found)
    }

    /// Asks the eligible providers in the order the module docs describe: the owner alone,
    /// else the local ones, then (only if they all refused) the remote ones.
    async fn ask(
        &self,
        eligible: &[usize],
        credential: Credential<'_>,
    ) -> Result<(usize, Identity), AuthError> {
        let providers = &self.inner.providers;
        let owns = |i: &usize| providers[*i].owns(credential);
        let owners: Vec<usize> = eligible.iter().copied().filter(owns).collect();
        // A credential that belongs to a provider the realm header excluded goes to nobody
        // else: `X-Auth-Realm` must not turn one provider's secret into another's input.
        if owners.is_empty()
            && eligible.len() < providers.len()
            && (0..providers.len()).any(|i| owns(&i))
        {
            return Err(AuthError::Invalid);
        }
        let mut unavailable = false;
        let mut rest: Vec<usize> = eligible.to_vec();
        if !owners.is_empty() {
            match self.ask_group(&owners, credential).await {
                Ok(found) => return Ok(found),
                // Still bound to an owner: nobody else may see it.
                Err(e) if owners.iter().any(owns) => return Err(e),
                Err(e) => unavailable = e == AuthError::Unavailable,
            }
            rest.retain(|i| !owners.contains(i));
        }
        let (local, remote): (Vec<usize>, Vec<usize>) = rest
            .into_iter()
            .partition(|&i| providers[i].locality() == Locality::Local);
        for group in [local, remote] {
            if group.is_empty() {
                continue;
            }
            match self.ask_group(&group, credential).await {
                Ok(found) => return Ok(found),
                Err(AuthError::Unavailable) => unavailable = true,
                Err(_) => {}
            }
        }
        Err(if unavailable {
            AuthError::Unavailable
        } else {
            AuthError::Invalid
        })
    }

    /// Asks `group` concurrently, each call under the timeout and the provider's call limit;
    /// the first success wins.
    async fn ask_group(
        &self,
        group: &[usize],
        credential: Credential<'_>,
    ) -> Result<(usize, Identity), AuthError> {
        let inner = &*self.inner;
        let mut calls: FuturesUnordered<_> = group
            .iter()
            .map(|&i| async move {
                let p = &inner.providers[i];
                // Held for the whole call; a full provider answers at once instead of queueing.
                let _permit = match &inner.limits[i] {
                    Some(limit) => match limit.try_acquire() {
                        Ok(permit) => Some(permit),
                        Err(_) => return (i, None),
                    },
                    None => None,
                };
                (
                    i,
                    Some(tokio::time::timeout(inner.timeout, p.authenticate(credential)).await),
                )
            })
            .collect();
        let mut unavailable = false;
        while let Some((i, outcome)) = calls.next().await {
            let p = &inner.providers[i];
            let counters = inner.stats.provider(i);
            match outcome {
                None => {
                    Stats::bump(&counters.busy);
                    unavailable = true;
                    tracing::warn!(provider = p.info().name.as_str(), "auth.provider.busy");
                }
                // Decided here for every provider: a name with control characters could forge
                // log lines or header lines wherever it is written.
                Some(Ok(Ok(identity)))
                    if !crate::user::is_valid_username(&identity.user.username) =>
                {
                    Stats::bump(&counters.invalid);
                    tracing::warn!(
                        provider = p.info().name.as_str(),
                        "auth.provider.bad_username: a user name that is empty or contains control characters is refused"
                    );
                }
                Some(Ok(Ok(identity))) => {
                    Stats::bump(&counters.success);
                    tracing::debug!(provider = p.info().name.as_str(), user = %identity.user.username, "auth.provider.success");
                    return Ok((i, identity));
                }
                Some(Ok(Err(ProviderError::Invalid(why)))) => {
                    Stats::bump(&counters.invalid);
                    tracing::debug!(provider = p.info().name.as_str(), reason = %why, "auth.provider.failed");
                }
                Some(Ok(Err(ProviderError::Unavailable(why)))) => {
                    Stats::bump(&counters.unavailable);
                    unavailable = true;
                    tracing::warn!(provider = p.info().name.as_str(), reason = %why, "auth.provider.unavailable");
                }
                Some(Err(_)) => {
                    Stats::bump(&counters.timeout);
                    unavailable = true;
                    tracing::warn!(
                        provider = p.info().name.as_str(),
                        timeout_ms = inner.timeout.as_millis() as u64,
                        "auth.provider.timeout"
                    );
                }
            }
        }
        Err(if unavailable {
            AuthError::Unavailable
        } else {
            AuthError::Invalid
        })
    }

    /// Runs the augmenters of `user`'s realm on a user authenticated outside the pipeline
    /// (the portal's OpenID Connect login).
    #[cfg(feature = "portal")]
    pub(crate) async fn augment_user(&self, user: User) -> User {
        self.augment(user).await
    }

    /// Realm-matched augmenters: concurrent ones first, then sequential ones in order.
    async fn augment(&self, mut user: User) -> User {
        let inner = &*self.inner;
        let matching = || {
            inner
                .augmenters
                .iter()
                .enumerate()
                .filter(|(_, a)| a.info().realm == user.realm)
        };
        let concurrent: Vec<usize> = matching()
            .filter(|(_, a)| a.stage() == Stage::Concurrent)
            .map(|(i, _)| i)
            .collect();
        let sequential: Vec<usize> = matching()
            .filter(|(_, a)| a.stage() == Stage::Sequential)
            .map(|(i, _)| i)
            .collect();
        if !concurrent.is_empty() {
            let snapshot = user.clone();
            let runs = concurrent.iter().map(|&i| {
                let a = &inner.augmenters[i];
                let snapshot = &snapshot;
                async move {
                    (
                        i,
                        tokio::time::timeout(inner.timeout, a.augment(snapshot)).await,
                    )
                }
            });
            // Applied in configuration order, whatever order they finished in.
            for (i, outcome) in futures_util::future::join_all(runs).await {
                self.apply(i, outcome, &mut user);
            }
        }
        for i in sequential {
            let outcome =
                tokio::time::timeout(inner.timeout, inner.augmenters[i].augment(&user)).await;
            self.apply(i, outcome, &mut user);
        }
        user
    }

    fn apply(
        &self,
        i: usize,
        outcome: Result<
            Result<crate::augment::Augmentation, crate::augment::AugmentError>,
            tokio::time::error::Elapsed,
        >,
        user: &mut User,
    ) {
        let a = &self.inner.augmenters[i];
        let counters = self.inner.stats.augmenter(i);
        match outcome {
            Ok(Ok(aug)) => {
                Stats::bump(&counters.success);
                aug.apply(user);
            }
            Ok(Err(e)) => {
                Stats::bump(&counters.error);
                tracing::warn!(augmenter = a.info().name.as_str(), error = %e, "auth.augmenter.failed");
            }
            Err(_) => {
                Stats::bump(&counters.error);
                tracing::warn!(augmenter = a.info().name.as_str(), "auth.augmenter.timeout");
            }
        }
    }
}
