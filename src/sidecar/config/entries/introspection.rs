//! `introspection` (ours): opaque tokens checked with RFC 7662 ([`IntrospectionProvider`]).

use std::sync::Arc;

use schemars::JsonSchema;
use serde::Deserialize;

use super::{BuildCtx, ConfigError, OneOrMany, ProviderEntry, setting};
use crate::Secret;
use crate::provider::introspection::ClientAuth;
use crate::provider::{
    DEFAULT_PROVIDER_CACHE_TTL, IntrospectionProvider, IntrospectionSettings, Provider,
};

/// `type: introspection`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
pub struct IntrospectionEntry {
    /// The introspection endpoint.
    pub endpoint: String,
    /// Our client id.
    pub client_id: String,
    /// Our client secret.
    pub client_secret: Secret,
    /// How we authenticate to the endpoint.
    #[serde(default)]
    pub client_auth: ClientAuthKey,
    /// Accepted audiences.
    #[serde(default)]
    pub audience: Option<OneOrMany>,
    /// Required issuer.
    #[serde(default)]
    pub issuer: Option<String>,
}

/// `client_auth`.
#[derive(Clone, Copy, Debug, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuthKey {
    /// HTTP Basic (`client_secret_basic`).
    #[default]
    Basic,
    /// Form fields (`client_secret_post`).
    Form,
}

impl ProviderEntry for IntrospectionEntry {
    fn build(&self, ctx: &BuildCtx<'_>) -> Result<Arc<dyn Provider>, ConfigError> {
        let settings = IntrospectionSettings {
            endpoint: self.endpoint.clone(),
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            client_auth: match self.client_auth {
                ClientAuthKey::Basic => ClientAuth::Basic,
                ClientAuthKey::Form => ClientAuth::Form,
            },
            audience: self.audience.as_ref().map(OneOrMany::to_vec),
            issuer: self.issuer.clone(),
            cache_ttl: DEFAULT_PROVIDER_CACHE_TTL,
        };
        let p = IntrospectionProvider::new(ctx.name, ctx.realm, settings, ctx.http.clone())
            .map_err(|e| setting(e, &[]))?;
        Ok(Arc::new(p))
    }

    fn urls(&self) -> Vec<(&'static str, &str)> {
        vec![("endpoint", &self.endpoint)]
    }
}
