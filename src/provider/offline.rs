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
//! provider therefore keeps, in a [`ChainStore`] keyed by the SHA-256 of the client's original
//! token, the latest token of the chain, and uses that one for the next introspection and
//! exchange. The client keeps sending its original token and keeps working. Each exchange
//! claims the chain first (a compare-and-swap on its generation), so one chain token is
//! presented once however many tasks or replicas want an access token at the same moment; the
//! others wait for the claim to end and continue with the new token. The claim, introspection,
//! exchange and release run in a task of their own, so a rotated token is stored even when the
//! request that triggered it is cancelled or times out, and it is sent once, never retried.
//!
//! The stored token is a live credential, so it is sealed (ChaCha20-Poly1305, a random nonce per
//! write) under a key derived from the client's original token (HKDF-SHA256): whoever reads the
//! store without the original token can use neither. By default chains live in this process
//! ([`MemoryChains`]); [`OfflineProvider::chain_store`] puts them in a shared store (the sidecar
//! uses its token store when `tokens` is enabled), so any replica continues any chain.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::chain::{ChainError, ChainKey, ChainStore, MemoryChains};
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
        Ok(OfflineProvider {
            info: ProviderInfo::new(name, "openid-offline", realm, Scheme::Bearer)
                .cache_ttl(Some(settings.jwt.cache_ttl)),
            settings: Arc::new(settings),
            client,
            jwt,
            resolved: Arc::new(RwLock::new(resolved)),
            chains,
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
        // In a task of its own: if this request is cancelled or times out mid-exchange, the IdP
        // may already have rotated the refresh token, and the new one must still be stored
        // (and the claim released) or the chain is lost.
        let step = tokio::spawn(step(
            self.client.clone(),
            self.settings.clone(),
            ep,
            self.chains.clone(),
            Sealer::new(original),
            Secret::from(original),
        ));
        let access = step
            .await
            .map_err(|_| ProviderError::unavailable("token exchange: task failed"))??;
        // Validate the access token like any JWT.
        self.jwt.check_issued(&access).await
    }
}

/// How long a claim on a chain lasts: longer than an introspection and an exchange take (each
/// bounded by the HTTP client's timeout). A claimant that dies holds the chain this long.
const LEASE_SECS: i64 = 30;
/// How often a task waiting for another's claim looks again.
const POLL: Duration = Duration::from_millis(50);

/// One link of a chain: claim it, introspect and exchange its current token, store the rotated
/// one and release the claim. Returns the access token.
async fn step(
    client: HttpClient,
    s: Arc<OfflineSettings>,
    ep: Arc<Resolved>,
    chains: Arc<dyn ChainStore>,
    sealer: Sealer,
    original: Secret,
) -> Result<String, ProviderError> {
    let store_down = |e: ChainError| ProviderError::unavailable(e.to_string());
    let started = Instant::now();
    // The token introspected before claiming, if any (see below).
    let mut checked: Option<Secret> = None;
    let (generation, current) = loop {
        let now = unix_now();
        let state = chains.load(&sealer.chain).await.map_err(store_down)?;
        if state.as_ref().is_some_and(|st| st.is_claimed(now)) {
            // Another task or replica is exchanging this chain's token: wait for its new one.
            if started.elapsed() > Duration::from_secs(LEASE_SECS.unsigned_abs()) {
                return Err(ProviderError::unavailable(
                    "refresh-token chain held by another exchange",
                ));
            }
            tokio::time::sleep(POLL).await;
            continue;
        }
        let current = match state.as_ref().and_then(|st| st.sealed.as_deref()) {
            Some(sealed) => sealer.open(sealed)?,
            None => original.clone(),
        };
        // A chain not stored yet is introspected before it is claimed: a claim writes a row,
        // and a bearer credential the IdP does not know (a typo, a flood of made-up ones)
        // must not. Introspection spends nothing, so it may run before the claim.
        if state.is_none() && checked.is_none() {
            introspect(&client, &s, &ep, &current).await?;
            checked = Some(current.clone());
        }
        let seen = state.map(|st| st.generation);
        if let Some(g) = chains
            .claim(&sealer.chain, seen, now, now + LEASE_SECS)
            .await
            .map_err(store_down)?
        {
            break (g, current);
        }
    };
    let result = async {
        if checked.as_ref().map(Secret::expose) != Some(current.expose()) {
            introspect(&client, &s, &ep, &current).await?;
        }
        exchange(&client, &s, &ep, &current).await
    }
    .await;
    let rotated = match &result {
        Ok((_, Some(rotated))) if rotated.as_str() != current.expose() => {
            Some(sealer.seal(rotated)?)
        }
        _ => None,
    };
    release(&*chains, &sealer.chain, generation, rotated.as_deref()).await;
    result.map(|(access, _)| access)
}

/// Ends a claim, retrying a little when a rotated token must be stored: losing it breaks the
/// chain (its predecessor is spent).
async fn release(
    chains: &dyn ChainStore,
    chain: &ChainKey,
    generation: i64,
    sealed: Option<&[u8]>,
) {
    for attempt in 0..3 {
        match chains.release(chain, generation, sealed, unix_now()).await {
            Ok(true) => return,
            Ok(false) => {
                tracing::warn!(
                    "openid-offline: a claim on a refresh-token chain ran out before its exchange ended"
                );
                return;
            }
            Err(e) if sealed.is_some() && attempt < 2 => {
                tracing::warn!(error = %e, "openid-offline: storing a rotated refresh token failed, retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, rotated = sealed.is_some(), "openid-offline: releasing a refresh-token chain failed");
                return;
            }
        }
    }
}

/// Introspects `current`: `active`, with the exact scope word `offline_access`.
async fn introspect(
    client: &HttpClient,
    s: &OfflineSettings,
    ep: &Resolved,
    current: &Secret,
) -> Result<(), ProviderError> {
    let req = client
        .inner()
        .post(&ep.introspect)
        .basic_auth(&s.private_client_id, Some(s.private_client_secret.expose()))
        .form(&[("token", current.expose())]);
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

/// Exchanges `current` at the token endpoint (sent once, never retried: a repeated exchange of
/// a rotating token would trip the IdP's reuse detection). Returns the access token and the
/// refresh token the IdP answered with, if any.
async fn exchange(
    client: &HttpClient,
    s: &OfflineSettings,
    ep: &Resolved,
    current: &Secret,
) -> Result<(String, Option<String>), ProviderError> {
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
    let access = tokens
        .get("access_token")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| ProviderError::unavailable("token exchange: no access_token"))?;
    let rotated = tokens
        .get("refresh_token")
        .and_then(Value::as_str)
        .map(str::to_owned);
    Ok((access, rotated))
}

/// The chain key and sealing key of one original refresh token.
struct Sealer {
    chain: ChainKey,
    cipher: ChaCha20Poly1305,
}

/// HKDF salt: fixed, naming what the key is for.
const SEAL_SALT: &[u8] = b"auth-o-tron openid-offline refresh-token chain";
/// Version byte of the sealed format: `1 || nonce (12) || ciphertext and tag`.
const SEAL_V1: u8 = 1;
const NONCE_LEN: usize = 12;

impl Sealer {
    fn new(original: &str) -> Self {
        let chain: ChainKey = Sha256::digest(original.as_bytes()).into();
        let mut key = [0u8; 32];
        hkdf::Hkdf::<Sha256>::new(Some(SEAL_SALT), original.as_bytes())
            .expand(b"sealing key v1", &mut key)
            .unwrap_or_else(|_| unreachable!("32 bytes is a valid HKDF-SHA256 length"));
        Sealer {
            chain,
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
                    aad: &self.chain,
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
                    aad: &self.chain,
                },
            )
            .map_err(|_| unreadable())?;
        String::from_utf8(plain)
            .map(Secret::from)
            .map_err(|_| unreadable())
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
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

    #[test]
    fn a_sealed_token_opens_only_with_its_original_and_never_shows() {
        let sealer = super::Sealer::new("original-refresh-token");
        let a = sealer.seal("rotated-refresh-token").unwrap();
        let b = sealer.seal("rotated-refresh-token").unwrap();
        assert_ne!(a, b, "a fresh nonce per write");
        assert!(!a.windows(7).any(|w| w == b"rotated"), "ciphertext only");
        assert_eq!(sealer.open(&a).unwrap().expose(), "rotated-refresh-token");
        // Another original (another chain) cannot open it, nor can a tampered row.
        assert!(super::Sealer::new("other-token").open(&a).is_err());
        let mut tampered = a.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(sealer.open(&tampered).is_err());
        for bad in [&[][..], &[1u8][..], &a[..10], &[2u8; 40][..]] {
            assert!(sealer.open(bad).is_err());
        }
        // The chain key is the SHA-256 of the original, not the original.
        assert_eq!(
            sealer.chain[..4],
            [0x7e, 0xfa, 0xee, 0x73][..],
            "{:02x?}",
            sealer.chain
        );
    }
}
