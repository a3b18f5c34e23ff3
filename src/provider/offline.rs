//! `openid-offline`: an OAuth2 `offline_access` refresh token as the credential.
//!
//! auth-o-tron's protocol: introspect the refresh token (`active` and the exact scope word
//! `offline_access`), exchange it at the token endpoint (`grant_type=refresh_token`, the private
//! client authenticating with HTTP Basic, `client_id` = the public client), and validate the
//! access token that comes back as a `jwt` provider would. Endpoints are Keycloak's
//! (`{iam_url}/realms/{realm}/protocol/openid-connect/...`) or come from OIDC discovery.
//!
//! The pipeline caches the resulting user until the access token expires and coalesces
//! concurrent requests, so one refresh token causes one exchange per access-token lifetime.
//!
//! Rotation: when the IdP answers an exchange with a new refresh token, the old one is spent,
//! and presenting it again would trip the IdP's reuse detection and revoke the whole grant. The
//! provider therefore keeps, in a [`ChainStore`] keyed by a SHA-256 over its own name, its token
//! endpoint and the client's original token (providers never share a chain), the latest token
//! of the chain, and uses that one for the next introspection and exchange. The client keeps
//! sending its original token and keeps working. A token with no chain yet is introspected
//! before anything is written, and a chain whose token never rotated is deleted when its claim
//! ends, so only real rotations stay in the store.
//!
//! Each exchange claims the chain first (a compare-and-swap on its generation with a lease
//! covering the HTTP calls made under it, judged by the store's clock), so one chain token is
//! presented once however many tasks or replicas want an access token at the same moment; the
//! others wait, in their own cancellable request, for the claim to end and continue with the
//! new token. The claim, exchange and release run in a task of their own, so a rotated token is
//! stored even when the request that triggered it is cancelled or times out (and even when the
//! IdP's answer is otherwise unusable); it is sent once, never retried, and never with less than
//! one HTTP timeout of the lease left.
//!
//! The stored token is a live credential, so it is sealed (ChaCha20-Poly1305, a random nonce per
//! write) under a key derived from the client's original token and the provider's name
//! (HKDF-SHA256), bound to the chain and provider (associated data): whoever reads the
//! store without the original token can use neither. By default chains live in this process
//! ([`MemoryChains`]); [`OfflineProvider::chain_store`] puts them in a shared store (the sidecar
//! uses its token store when `tokens` is enabled), so any replica continues any chain.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::chain::{ChainError, ChainKey, ChainStore, MemoryChains, unix_now};
use super::client::HttpClient;
use super::jwks::KeySource;
use super::jwt::{JwtProvider, JwtSettings};
use super::{BoxFuture, BuildError, Identity, Provider, ProviderError, ProviderInfo};
use crate::Secret;
use crate::credentials::{Credential, Scheme};

/// Where the endpoints are.
#[derive(Clone, Debug)]
pub enum OfflineEndpoints {
    /// Keycloak's layout under `iam_url` for `realm`, keys from `cert_uri`.
    Keycloak {
        /// Keycloak base URL.
        iam_url: String,
        /// The Keycloak realm (auth-o-tron uses the provider's realm).
        realm: String,
        /// JWKS URL.
        cert_uri: String,
    },
    /// `token_endpoint`, `introspection_endpoint` and `jwks_uri` from this issuer's discovery
    /// document.
    Discovery(String),
}

/// Settings of an [`OfflineProvider`].
#[derive(Clone, Debug)]
pub struct OfflineSettings {
    /// Endpoints.
    pub endpoints: OfflineEndpoints,
    /// The public client id sent as `client_id` in the exchange.
    pub public_client_id: String,
    /// The private (confidential) client id.
    pub private_client_id: String,
    /// The private client's secret.
    pub private_client_secret: Secret,
    /// Validation of the access token.
    pub jwt: JwtSettings,
    /// Maximum refresh-token chains remembered in memory (rotation; without a
    /// [`chain_store`](OfflineProvider::chain_store)).
    pub max_chains: u64,
}

struct Resolved {
    token: String,
    introspect: String,
}

/// Authenticates offline refresh tokens.
#[derive(Clone)]
pub struct OfflineProvider {
    info: ProviderInfo,
    settings: Arc<OfflineSettings>,
    client: HttpClient,
    jwt: JwtProvider,
    resolved: Arc<RwLock<Option<Arc<Resolved>>>>,
    chains: Arc<dyn ChainStore>,
    /// How long a claim on a chain lasts ([`lease_for`] the client).
    lease: Duration,
}

impl std::fmt::Debug for OfflineProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OfflineProvider")
            .field("name", &self.info.name)
            .field("realm", &self.info.realm)
            .finish_non_exhaustive()
    }
}

pub(crate) fn word(scope: &str, w: &str) -> bool {
    scope.split_ascii_whitespace().any(|s| s == w)
}

impl OfflineProvider {
    /// A provider named `name` for `realm`.
    pub fn new(
        name: impl Into<String>,
        realm: impl Into<String>,
        settings: OfflineSettings,
        client: HttpClient,
    ) -> Result<Self, BuildError> {
        let name = name.into();
        let realm = realm.into();
        let (keys, resolved) = match &settings.endpoints {
            OfflineEndpoints::Keycloak {
                iam_url,
                realm: kc,
                cert_uri,
            } => {
                let base = format!(
                    "{}/realms/{kc}/protocol/openid-connect",
                    iam_url.trim_end_matches('/')
                );
                client.check_url("iam_url", &base)?;
                let r = Resolved {
                    token: format!("{base}/token"),
                    introspect: format!("{base}/token/introspect"),
                };
                (KeySource::Uri(cert_uri.clone()), Some(Arc::new(r)))
            }
            OfflineEndpoints::Discovery(issuer) => (KeySource::Discovery(issuer.clone()), None),
        };
        let jwt = JwtProvider::new(
            name.clone(),
            realm.clone(),
            keys,
            client.clone(),
            settings.jwt.clone(),
        )?;
        let chains = Arc::new(MemoryChains::new(settings.max_chains));
        let lease = lease_for(&client);
        Ok(OfflineProvider {
            info: ProviderInfo::new(name, "openid-offline", realm, Scheme::Bearer)
                .cache_ttl(Some(settings.jwt.cache_ttl)),
            settings: Arc::new(settings),
            client,
            jwt,
            resolved: Arc::new(RwLock::new(resolved)),
            chains,
            lease,
        })
    }

    /// Keeps refresh-token chains in `store` instead of this process's memory, so that every
    /// replica sharing `store` continues every chain.
    #[must_use]
    pub fn chain_store(mut self, store: Arc<dyn ChainStore>) -> Self {
        self.chains = store;
        self
    }

    async fn endpoints(&self) -> Result<Arc<Resolved>, ProviderError> {
        if let Some(r) = self
            .resolved
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
        {
            return Ok(r);
        }
        let OfflineEndpoints::Discovery(issuer) = &self.settings.endpoints else {
            return Err(ProviderError::unavailable("no endpoints"));
        };
        let mut urls = self
            .client
            .discover(issuer, &["token_endpoint", "introspection_endpoint"])
            .await?;
        let (introspect, token) = (urls.remove(1), urls.remove(0));
        let r = Arc::new(Resolved { token, introspect });
        *self
            .resolved
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(r.clone());
        Ok(r)
    }

    async fn check(&self, original: &str) -> Result<Identity, ProviderError> {
        let ep = self.endpoints().await?;
        let sealer = Arc::new(Sealer::new(&self.info.name, &ep.token, original));
        let access = self.continue_chain(ep, sealer, original).await?;
        // Validate the access token like any JWT.
        self.jwt.check_issued(&access).await
    }

    /// Waits for other claims on the chain, here in the request's future (a cancelled request
    /// stops waiting and leaves nothing behind), then runs one [`link`] in a task of its own.
    async fn continue_chain(
        &self,
        ep: Arc<Resolved>,
        sealer: Arc<Sealer>,
        original: &str,
    ) -> Result<String, ProviderError> {
        let store_down = |e: ChainError| ProviderError::unavailable(e.to_string());
        let lease = self.lease.as_secs().try_into().unwrap_or(i64::MAX);
        let started = Instant::now();
        let original = Secret::from(original);
        let mut original_checked = false;
        loop {
            let now = self.chains.now().await.map_err(store_down)?;
            let state = self.chains.load(&sealer.chain).await.map_err(store_down)?;
            if state.as_ref().is_some_and(|st| st.is_claimed(now, lease)) {
                // Another task or replica is exchanging this chain's token: wait for its new one.
                if started.elapsed() > self.lease {
                    return Err(ProviderError::unavailable(
                        "refresh-token chain held by another exchange",
                    ));
                }
                tokio::time::sleep(POLL).await;
                continue;
            }
            let (seen, current) = match &state {
                None => {
                    // Nothing stored: introspect before claiming, so a token that is not a
                    // live offline token never writes a row.
                    if !original_checked {
                        introspect(&self.client, &self.settings, &ep, &original).await?;
                        original_checked = true;
                    }
                    (None, original.clone())
                }
                Some(st) => {
                    let current = match st.sealed.as_deref() {
                        Some(sealed) => sealer.open(sealed)?,
                        None => original.clone(),
                    };
                    (Some(st.generation), current)
                }
            };
            // In a task of its own from the claim on: if this request is cancelled or times out
            // mid-exchange, the IdP may already have rotated the refresh token, and the new one
            // must still be stored (and the claim released) or the chain is lost.
            let step = tokio::spawn(link(Link {
                client: self.client.clone(),
                settings: self.settings.clone(),
                ep: ep.clone(),
                chains: self.chains.clone(),
                sealer: sealer.clone(),
                seen,
                current,
                introspected: state.is_none(),
                lease: self.lease,
            }));
            match step
                .await
                .map_err(|_| ProviderError::unavailable("token exchange: task failed"))??
            {
                Some(access) => return Ok(access),
                // Another claim won the race: look again.
                None => continue,
            }
        }
    }
}

/// How often a task waiting for another's claim looks again.
const POLL: Duration = Duration::from_millis(50);
/// Slack on top of the HTTP calls in a lease, and how long a failed release keeps retrying
/// after the lease.
const LEASE_MARGIN: Duration = Duration::from_secs(5);

/// How long a claim on a chain lasts: longer than what runs under it can take, each call bounded
/// by `client`'s timeout: an introspection (sent twice at most), the exchange, a connect, and a
/// margin. A claimant that dies holds the chain this long.
fn lease_for(client: &HttpClient) -> Duration {
    let lease = client.timeout() * 3 + client.connect_timeout() + LEASE_MARGIN;
    // Whole seconds, rounded up: leases are stored in Unix seconds.
    Duration::from_secs(lease.as_secs() + u64::from(lease.subsec_nanos() > 0))
}

/// What one link of a chain needs, owned (it runs in a task of its own).
struct Link {
    client: HttpClient,
    settings: Arc<OfflineSettings>,
    ep: Arc<Resolved>,
    chains: Arc<dyn ChainStore>,
    sealer: Arc<Sealer>,
    /// The generation the claim expects (`None`: nothing stored).
    seen: Option<i64>,
    /// The chain's token now.
    current: Secret,
    /// Whether `current` was introspected already (before the claim).
    introspected: bool,
    lease: Duration,
}

/// One link of a chain: claim it, introspect (unless done) and exchange its current token,
/// store the rotated one and release the claim, on every path. `Ok(None)` when another claim
/// won; else the access token.
async fn link(l: Link) -> Result<Option<String>, ProviderError> {
    let store_down = |e: ChainError| ProviderError::unavailable(e.to_string());
    let claimed_at = Instant::now();
    let lease = l.lease.as_secs().try_into().unwrap_or(i64::MAX);
    let now = l.chains.now().await.map_err(store_down)?;
    let until = now.saturating_add(lease);
    let Some(generation) = l
        .chains
        .claim(&l.sealer.chain, l.seen, now, until)
        .await
        .map_err(store_down)?
    else {
        return Ok(None);
    };
    let (result, rotated) = exchange_under_claim(&l, until).await;
    let sealed = match rotated.filter(|r| r.as_str() != l.current.expose()) {
        Some(rotated) => match l.sealer.seal(&rotated) {
            Ok(sealed) => Some(sealed),
            Err(e) => {
                tracing::error!(error = %e, "openid-offline: a rotated refresh token could not be sealed and is lost");
                None
            }
        },
        None => None,
    };
    release(l.chains, l.sealer, generation, sealed, claimed_at + l.lease).await;
    result.map(Some)
}

/// Introspection (unless done before the claim) and the exchange, the latter only while at least
/// one HTTP timeout of the lease ending at `until` is left (by the store's clock): an exchange
/// outliving its lease could race another replica presenting the same token. Returns the access
/// token and, whatever else happened, the refresh token the IdP answered with.
async fn exchange_under_claim(
    l: &Link,
    until: i64,
) -> (Result<String, ProviderError>, Option<String>) {
    let store_down = |e: ChainError| ProviderError::unavailable(e.to_string());
    let ready = async {
        if !l.introspected {
            introspect(&l.client, &l.settings, &l.ep, &l.current).await?;
        }
        let now = l.chains.now().await.map_err(store_down)?;
        let needed =
            i64::try_from(l.client.timeout().as_secs_f64().ceil() as u64).unwrap_or(i64::MAX);
        if until.saturating_sub(now) < needed {
            return Err(ProviderError::unavailable(
                "refresh-token chain: too little of the claim left for an exchange",
            ));
        }
        Ok(())
    };
    if let Err(e) = ready.await {
        return (Err(e), None);
    }
    match exchange(&l.client, &l.settings, &l.ep, &l.current).await {
        Ok(Exchanged { access, rotated }) => (
            access.ok_or_else(|| ProviderError::unavailable("token exchange: no access_token")),
            rotated,
        ),
        Err(e) => (Err(e), None),
    }
}

/// Ends a claim. If the store fails, retries in the background until `deadline` (the lease
/// plus a margin): a rotated token that is not stored breaks the chain (its predecessor is
/// spent), and an unreleased claim blocks the chain until its lease ends.
async fn release(
    chains: Arc<dyn ChainStore>,
    sealer: Arc<Sealer>,
    generation: i64,
    sealed: Option<Vec<u8>>,
    deadline: Instant,
) {
    let attempt = move |chains: Arc<dyn ChainStore>,
                        sealer: Arc<Sealer>,
                        sealed: Option<Vec<u8>>| async move {
        let now = chains.now().await.unwrap_or_else(|_| unix_now());
        chains
            .release(&sealer.chain, generation, sealed.as_deref(), now)
            .await
    };
    let lost = || {
        tracing::warn!(
            "openid-offline: a claim on a refresh-token chain ran out before its exchange ended"
        );
    };
    match attempt(chains.clone(), sealer.clone(), sealed.clone()).await {
        Ok(true) => return,
        Ok(false) => return lost(),
        Err(e) => {
            tracing::warn!(error = %e, rotated = sealed.is_some(), "openid-offline: releasing a refresh-token chain failed, retrying");
        }
    }
    tokio::spawn(async move {
        let mut pause = Duration::from_millis(100);
        let deadline = deadline + LEASE_MARGIN;
        while Instant::now() + pause < deadline {
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(2));
            match attempt(chains.clone(), sealer.clone(), sealed.clone()).await {
                Ok(true) => return,
                Ok(false) => return lost(),
                Err(_) => {}
            }
        }
        tracing::error!(
            rotated = sealed.is_some(),
            "openid-offline: releasing a refresh-token chain failed until its lease ended"
        );
    });
}

/// Introspects `token`: `active` and the scope word `offline_access`.
async fn introspect(
    client: &HttpClient,
    s: &OfflineSettings,
    ep: &Resolved,
    token: &Secret,
) -> Result<(), ProviderError> {
    let req = client
        .inner()
        .post(&ep.introspect)
        .basic_auth(&s.private_client_id, Some(s.private_client_secret.expose()))
        .form(&[("token", token.expose())]);
    let res = client.send("introspection", req).await?;
    res.check_status("introspection", &[], "")?;
    let doc: Value = res.json("introspection")?;
    super::client::require_active(&doc, "introspection", "refresh token is not active")?;
    if !word(
        doc.get("scope").and_then(Value::as_str).unwrap_or(""),
        "offline_access",
    ) {
        return Err(ProviderError::invalid("not an offline_access token"));
    }
    Ok(())
}

/// What a successful exchange answered.
struct Exchanged {
    access: Option<String>,
    rotated: Option<String>,
}

/// Exchanges `current` at the token endpoint (sent once, never retried: a repeated exchange of
/// a rotating token would trip the IdP's reuse detection).
async fn exchange(
    client: &HttpClient,
    s: &OfflineSettings,
    ep: &Resolved,
    current: &Secret,
) -> Result<Exchanged, ProviderError> {
    let req = client
        .inner()
        .post(&ep.token)
        .basic_auth(&s.private_client_id, Some(s.private_client_secret.expose()))
        .form(&[
            ("client_id", s.public_client_id.as_str()),
            ("grant_type", "refresh_token"),
            ("refresh_token", current.expose()),
        ]);
    let res = client.send_once("token exchange", req).await?;
    match res.status.as_u16() {
        200..=299 => {}
        400 | 401 => {
            let err: Value = serde_json::from_slice(&res.body).unwrap_or_default();
            if err.get("error").and_then(Value::as_str) == Some("invalid_grant") {
                return Err(ProviderError::invalid(
                    "refresh token refused (invalid_grant)",
                ));
            }
            return Err(ProviderError::unavailable(format!(
                "token exchange: status {}",
                res.status.as_u16()
            )));
        }
        other => {
            return Err(ProviderError::unavailable(format!(
                "token exchange: status {other}"
            )));
        }
    }
    let tokens: Value = res.json("token exchange")?;
    let text = |field: &str| tokens.get(field).and_then(Value::as_str).map(str::to_owned);
    // The refresh token first: an answer without an access token may still have spent and
    // rotated the old one.
    let rotated = text("refresh_token");
    Ok(Exchanged {
        access: text("access_token"),
        rotated,
    })
}

/// The chain key and sealing key of one original refresh token.
struct Sealer {
    chain: ChainKey,
    /// Associated data of every seal: the chain key and the provider's name.
    aad: Vec<u8>,
    cipher: ChaCha20Poly1305,
}

/// HKDF salt: fixed, naming what the key is for.
const SEAL_SALT: &[u8] = b"auth-o-tron openid-offline refresh-token chain";
/// Version byte of the sealed format: `1 || nonce (12) || ciphertext and tag`.
const SEAL_V1: u8 = 1;
const NONCE_LEN: usize = 12;

impl Sealer {
    /// The chain of `original` at `provider`'s `token_endpoint`: another provider (or the same
    /// name at another IdP) gets another chain and another key, so it can neither find nor open
    /// this one's token.
    fn new(provider: &str, token_endpoint: &str, original: &str) -> Self {
        let mut h = Sha256::new();
        for part in [provider, "\0", token_endpoint, "\0", original] {
            h.update(part.as_bytes());
        }
        let chain: ChainKey = h.finalize().into();
        let mut key = [0u8; 32];
        hkdf::Hkdf::<Sha256>::new(Some(SEAL_SALT), original.as_bytes())
            .expand_multi_info(&[b"sealing key v1\0", provider.as_bytes()], &mut key)
            .unwrap_or_else(|_| unreachable!("32 bytes is a valid HKDF-SHA256 length"));
        let mut aad = chain.to_vec();
        aad.extend_from_slice(provider.as_bytes());
        Sealer {
            chain,
            aad,
            cipher: ChaCha20Poly1305::new(&Key::from(key)),
        }
    }

    /// Encrypts `token` with a fresh random nonce, bound to this chain (associated data).
    fn seal(&self, token: &str) -> Result<Vec<u8>, ProviderError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce)
            .map_err(|e| ProviderError::unavailable(format!("OS random source failed: {e}")))?;
        let sealed = self
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: token.as_bytes(),
                    aad: &self.aad,
                },
            )
            .map_err(|_| ProviderError::unavailable("sealing a refresh token failed"))?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(SEAL_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Decrypts a stored token; a row that does not open (edited, truncated, another format)
    /// fails closed.
    fn open(&self, sealed: &[u8]) -> Result<Secret, ProviderError> {
        let unreadable = || ProviderError::unavailable("refresh-token chain row unreadable");
        let (&version, rest) = sealed.split_first().ok_or_else(unreadable)?;
        if version != SEAL_V1 || rest.len() < NONCE_LEN {
            return Err(unreadable());
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| unreadable())?;
        let plain = self
            .cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &self.aad,
                },
            )
            .map_err(|_| unreadable())?;
        String::from_utf8(plain)
            .map(Secret::from)
            .map_err(|_| unreadable())
    }
}

impl Provider for OfflineProvider {
    fn info(&self) -> &ProviderInfo {
        &self.info
    }
    fn is_ready(&self) -> bool {
        self.jwt.is_ready()
    }
    fn warm_up(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {
            let _ = self.endpoints().await;
            self.jwt.warm_up().await;
        })
    }
    fn authenticate<'a>(
        &'a self,
        credential: Credential<'a>,
    ) -> BoxFuture<'a, Result<Identity, ProviderError>> {
        Box::pin(self.check(credential.secret()))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn offline_access_is_an_exact_word() {
        assert!(super::word(
            "openid offline_access api:read",
            "offline_access"
        ));
        assert!(!super::word("openid offline_accessx", "offline_access"));
        assert!(!super::word("no_offline_access", "offline_access"));
    }

    const ENDPOINT: &str = "https://idp/realms/r/protocol/openid-connect/token";

    #[test]
    fn a_sealed_token_opens_only_with_its_original_and_never_shows() {
        let sealer = super::Sealer::new("desp", ENDPOINT, "original-refresh-token");
        let a = sealer.seal("rotated-refresh-token").unwrap();
        let b = sealer.seal("rotated-refresh-token").unwrap();
        assert_ne!(a, b, "a fresh nonce per write");
        assert!(!a.windows(7).any(|w| w == b"rotated"), "ciphertext only");
        assert_eq!(sealer.open(&a).unwrap().expose(), "rotated-refresh-token");
        // Another original (another chain) cannot open it, nor can a tampered row.
        assert!(
            super::Sealer::new("desp", ENDPOINT, "other-token")
                .open(&a)
                .is_err()
        );
        let mut tampered = a.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(sealer.open(&tampered).is_err());
        for bad in [&[][..], &[1u8][..], &a[..10], &[2u8; 40][..]] {
            assert!(sealer.open(bad).is_err());
        }
        // The chain key is a SHA-256 over provider, endpoint and original, not the original.
        use sha2::Digest;
        let expected: [u8; 32] =
            sha2::Sha256::digest(format!("desp\0{ENDPOINT}\0original-refresh-token")).into();
        assert_eq!(sealer.chain, expected);
    }

    #[test]
    fn another_provider_neither_finds_nor_opens_a_chain() {
        let a = super::Sealer::new("a", ENDPOINT, "same-token");
        let sealed = a.seal("a-rotated").unwrap();
        for other in [
            super::Sealer::new("b", ENDPOINT, "same-token"),
            super::Sealer::new("a", "https://other/token", "same-token"),
        ] {
            assert_ne!(other.chain, a.chain);
            assert!(other.open(&sealed).is_err());
        }
    }

    #[test]
    fn the_lease_covers_an_introspection_retried_an_exchange_and_a_connect() {
        use std::time::Duration;
        let client = crate::provider::client::HttpClient::builder()
            .timeout(Duration::from_secs(20))
            .connect_timeout(Duration::from_millis(2500))
            .build()
            .unwrap();
        // 3 × 20 s + 2.5 s + 5 s margin, rounded up to whole seconds.
        assert_eq!(super::lease_for(&client), Duration::from_secs(68));
    }
}
