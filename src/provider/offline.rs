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
//! provider therefore remembers, in memory and keyed by a hash of the client's original token,
//! the latest token of the chain, and uses that one for the next introspection and exchange.
//! The client keeps sending its original token and keeps working. The exchange runs in a task
//! of its own, so a rotated token is stored even when the request that triggered it is
//! cancelled or times out, and it is sent once, never retried. The chain lives in this
//! process: behind several replicas, route a client to one replica, or turn rotation off for
//! the offline client.

use std::hash::Hasher as _;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use serde_json::Value;
use siphasher::sip128::{Hasher128, SipHasher13};

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
    /// Maximum refresh-token chains remembered (rotation).
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
    chains: moka::sync::Cache<u128, Secret>,
    key: (u64, u64),
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
        let mut k = [0u8; 16];
        getrandom::fill(&mut k).map_err(|e| BuildError::Setup(e.to_string()))?;
        let key = (
            u64::from_le_bytes(k[..8].try_into().expect("8 bytes")),
            u64::from_le_bytes(k[8..].try_into().expect("8 bytes")),
        );
        let chains = moka::sync::Cache::builder()
            .max_capacity(settings.max_chains)
            .time_to_idle(Duration::from_secs(30 * 86_400))
            .build();
        Ok(OfflineProvider {
            info: ProviderInfo::new(name, "openid-offline", realm, Scheme::Bearer)
                .cache_ttl(Some(settings.jwt.cache_ttl)),
            settings: Arc::new(settings),
            client,
            jwt,
            resolved: Arc::new(RwLock::new(resolved)),
            chains,
            key,
        })
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

    fn chain_key(&self, original: &str) -> u128 {
        let mut h = SipHasher13::new_with_keys(self.key.0, self.key.1);
        h.write(original.as_bytes());
        h.finish128().as_u128()
    }

    async fn check(&self, original: &str) -> Result<Identity, ProviderError> {
        let s = &self.settings;
        let ep = self.endpoints().await?;
        let chain = self.chain_key(original);
        let current: Secret = self.chains.get(&chain).unwrap_or_else(|| original.into());

        // 1. Introspect the refresh token.
        let req = self
            .client
            .inner()
            .post(&ep.introspect)
            .basic_auth(&s.private_client_id, Some(s.private_client_secret.expose()))
            .form(&[("token", current.expose())]);
        let res = self.client.send("introspection", req).await?;
        res.check_status("introspection", &[], "")?;
        let doc: Value = res.json("introspection")?;
        super::client::require_active(&doc, "introspection", "refresh token is not active")?;
        if !word(
            doc.get("scope").and_then(Value::as_str).unwrap_or(""),
            "offline_access",
        ) {
            return Err(ProviderError::invalid("not an offline_access token"));
        }

        // 2. Exchange it for an access token, in a task of its own: if this request is cancelled
        // or times out mid-exchange, the IdP may already have rotated the refresh token, and
        // the new one must still be stored or the chain is lost.
        let exchange = tokio::spawn(exchange(
            self.client.clone(),
            self.settings.clone(),
            ep,
            self.chains.clone(),
            chain,
            current,
        ));
        let access = exchange
            .await
            .map_err(|_| ProviderError::unavailable("token exchange: task failed"))??;

        // 3. Validate the access token like any JWT.
        self.jwt.check_issued(&access).await
    }
}

/// Exchanges `current` at the token endpoint (sent once, never retried: a repeated exchange of a
/// rotating token would trip the IdP's reuse detection) and stores a rotated refresh token under
/// `chain`. Returns the access token.
async fn exchange(
    client: HttpClient,
    s: Arc<OfflineSettings>,
    ep: Arc<Resolved>,
    chains: moka::sync::Cache<u128, Secret>,
    chain: u128,
    current: Secret,
) -> Result<String, ProviderError> {
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
    if let Some(rotated) = tokens.get("refresh_token").and_then(Value::as_str)
        && rotated != current.expose()
    {
        chains.insert(chain, rotated.into());
    }
    tokens
        .get("access_token")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| ProviderError::unavailable("token exchange: no access_token"))
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
}
