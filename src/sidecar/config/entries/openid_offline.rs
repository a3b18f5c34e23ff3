//! `openid-offline`: offline refresh tokens exchanged for access tokens ([`OfflineProvider`]).

use std::sync::Arc;

use schemars::JsonSchema;
use serde::Deserialize;

use super::jwt::access_token_checks;
use super::{BuildCtx, ConfigError, OneOrMany, ProviderEntry, setting};
use crate::Secret;
use crate::provider::{OfflineEndpoints, OfflineProvider, OfflineSettings, Provider};

/// `type: openid-offline`: introspect, exchange, validate the access token (Keycloak paths
/// under `iam_url`, the provider's realm as the Keycloak realm).
#[derive(Clone, Debug, Deserialize, JsonSchema)]
pub struct OpenidOfflineEntry {
    /// JWKS URL.
    pub cert_uri: String,
    /// Public client id.
    pub public_client_id: String,
    /// Private client id.
    pub private_client_id: String,
    /// Private client secret.
    pub private_client_secret: Secret,
    /// Keycloak base URL.
    pub iam_url: String,
    /// Ours: required `iss` of the access tokens.
    #[serde(default)]
    pub issuer: Option<String>,
    /// Ours: accepted audiences of the access tokens.
    #[serde(default)]
    pub audience: Option<OneOrMany>,
}

impl ProviderEntry for OpenidOfflineEntry {
    fn build(&self, ctx: &BuildCtx<'_>) -> Result<Arc<dyn Provider>, ConfigError> {
        let settings = OfflineSettings {
            endpoints: OfflineEndpoints::Keycloak {
                iam_url: self.iam_url.clone(),
                realm: ctx.realm.to_owned(),
                cert_uri: self.cert_uri.clone(),
            },
            public_client_id: self.public_client_id.clone(),
            private_client_id: self.private_client_id.clone(),
            private_client_secret: self.private_client_secret.clone(),
            jwt: access_token_checks(&self.issuer, &self.audience),
            max_chains: ctx.cache_capacity,
        };
        let p = OfflineProvider::new(ctx.name, ctx.realm, settings, ctx.http.clone())
            .map_err(|e| setting(e, &[]))?;
        Ok(Arc::new(p))
    }

    fn urls(&self) -> Vec<(&'static str, &str)> {
        vec![("cert_uri", &self.cert_uri), ("iam_url", &self.iam_url)]
    }
}
