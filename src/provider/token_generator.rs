//! `ecmwf-token-generator`: ECMWF's token generator turns an offline token into a short-lived
//! JWT access token.
//!
//! `POST {url}/validate-token` with `{"token", "client_id"}` must answer `{"active": true}`;
//! `POST {url}/admin/refresh-access-token` with `{"client_id", "client_secret",
//! "refresh_token"}` answers `{"access_token", "expires_in"}`; the access token is validated as
//! a `jwt` provider would (keys from `cert_uri`). The pipeline caches the user until the access
//! token expires and coalesces concurrent requests, so one offline token causes one exchange
//! per access-token lifetime. Inactive tokens are not cached (auth-o-tron cached them 240 s).

use serde_json::{Value, json};

use super::client::HttpClient;
use super::jwks::KeySource;
use super::jwt::{JwtProvider, JwtSettings};
use super::{BoxFuture, BuildError, Identity, Provider, ProviderError, ProviderInfo};
use crate::Secret;
use crate::credentials::{Credential, Scheme};

/// Settings of a [`TokenGeneratorProvider`].
#[derive(Clone, Debug)]
pub struct TokenGeneratorSettings {
    /// Base URL of the token generator.
    pub url: String,
    /// JWKS of the access tokens.
    pub cert_uri: String,
    /// Our client id.
    pub client_id: String,
    /// Our client secret.
    pub client_secret: Secret,
    /// Validation of the access token.
    pub jwt: JwtSettings,
}

/// Authenticates offline tokens through the ECMWF token generator.
#[derive(Clone)]
pub struct TokenGeneratorProvider {
    info: ProviderInfo,
    settings: TokenGeneratorSettings,
    client: HttpClient,
    jwt: JwtProvider,
}

impl std::fmt::Debug for TokenGeneratorProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenGeneratorProvider")
            .field("name", &self.info.name)
            .field("realm", &self.info.realm)
            .finish_non_exhaustive()
    }
}

impl TokenGeneratorProvider {
    /// A provider named `name` for `realm`.
    pub fn new(
        name: impl Into<String>,
        realm: impl Into<String>,
        mut settings: TokenGeneratorSettings,
        client: HttpClient,
    ) -> Result<Self, BuildError> {
        let (name, realm) = (name.into(), realm.into());
        settings.url = settings.url.trim_end_matches('/').to_owned();
        client.check_url("url", &settings.url)?;
        let jwt = JwtProvider::new(
            name.clone(),
            realm.clone(),
            KeySource::Uri(settings.cert_uri.clone()),
            client.clone(),
            settings.jwt.clone(),
        )?;
        Ok(TokenGeneratorProvider {
            info: ProviderInfo::new(name, "ecmwf-token-generator", realm, Scheme::Bearer)
                .cache_ttl(Some(settings.jwt.cache_ttl)),
            settings,
            client,
            jwt,
        })
    }

    async fn check(&self, token: &str) -> Result<Identity, ProviderError> {
        let s = &self.settings;
        let req = self
            .client
            .inner()
            .post(format!("{}/validate-token", s.url))
            .json(&json!({"token": token, "client_id": s.client_id}));
        let res = self.client.send("validate-token", req).await?;
        res.check_status("validate-token", &[], "")?;
        super::client::require_active(
            &res.json("validate-token")?,
            "validate-token",
            "token is not active",
        )?;
        let req = self
            .client
            .inner()
            .post(format!("{}/admin/refresh-access-token", s.url))
            .json(&json!({"client_id": s.client_id, "client_secret": s.client_secret.expose(), "refresh_token": token}));
        // Not idempotent (the generator may rotate the offline token): never sent twice.
        let res = self.client.send_once("refresh-access-token", req).await?;
        res.check_status(
            "refresh-access-token",
            &[400, 401, 403],
            "token refused by the token generator",
        )?;
        let v: Value = res.json("refresh-access-token")?;
        let access = v
            .get("access_token")
            .and_then(Value::as_str)
            .ok_or_else(|| ProviderError::unavailable("refresh-access-token: no access_token"))?;
        self.jwt.check_issued(access).await
    }
}

impl Provider for TokenGeneratorProvider {
    fn info(&self) -> &ProviderInfo {
        &self.info
    }
    fn is_ready(&self) -> bool {
        self.jwt.is_ready()
    }
    fn warm_up(&self) -> BoxFuture<'_, ()> {
        self.jwt.warm_up()
    }
    fn authenticate<'a>(
        &'a self,
        credential: Credential<'a>,
    ) -> BoxFuture<'a, Result<Identity, ProviderError>> {
        Box::pin(self.check(credential.secret()))
    }
}
