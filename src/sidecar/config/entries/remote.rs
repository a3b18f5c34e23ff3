//! The providers that look a credential up at a service: `introspection` (ours, RFC 7662,
//! [`IntrospectionProvider`]), `ecmwf-api` ([`EcmwfApiProvider`]) and `efas-api`
//! ([`EfasApiProvider`]).

use std::sync::Arc;

use schemars::JsonSchema;
use serde::Deserialize;

use super::{BuildCtx, ConfigError, OneOrMany, ProviderEntry};
use crate::Secret;
use crate::provider::introspection::ClientAuth;
use crate::provider::{
    DEFAULT_PROVIDER_CACHE_TTL, EcmwfApiProvider, EfasApiProvider, IntrospectionProvider,
    IntrospectionSettings, Provider,
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
    pub client_auth: Option<ClientAuthKey>,
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
            client_auth: match self.client_auth.unwrap_or_default() {
                ClientAuthKey::Basic => ClientAuth::Basic,
                ClientAuthKey::Form => ClientAuth::Form,
            },
            audience: self.audience.as_ref().map(OneOrMany::to_vec),
            issuer: self.issuer.clone(),
            cache_ttl: DEFAULT_PROVIDER_CACHE_TTL,
        };
        let p = IntrospectionProvider::new(ctx.name, ctx.realm, settings, ctx.http.clone())?;
        Ok(Arc::new(p))
    }

    fn urls(&self) -> Vec<(&'static str, &str)> {
        vec![("endpoint", &self.endpoint)]
    }
}

/// `type: ecmwf-api`: `Bearer <key>` or `EmailKey <email>:<key>`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
pub struct EcmwfApiEntry {
    /// Base URI, e.g. `https://api.ecmwf.int/v1`.
    pub uri: String,
    /// Ours: require the email of `EmailKey` credentials to match the account's.
    #[serde(default)]
    pub check_email: bool,
}

impl ProviderEntry for EcmwfApiEntry {
    fn build(&self, ctx: &BuildCtx<'_>) -> Result<Arc<dyn Provider>, ConfigError> {
        let p = EcmwfApiProvider::new(ctx.name, ctx.realm, self.uri.clone(), ctx.http.clone())?;
        Ok(Arc::new(p.check_email(self.check_email)))
    }

    fn urls(&self) -> Vec<(&'static str, &str)> {
        vec![("uri", &self.uri)]
    }
}

/// `type: efas-api`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
pub struct EfasApiEntry {
    /// The user-details URI.
    pub uri: String,
}

impl ProviderEntry for EfasApiEntry {
    fn build(&self, ctx: &BuildCtx<'_>) -> Result<Arc<dyn Provider>, ConfigError> {
        let p = EfasApiProvider::new(ctx.name, ctx.realm, self.uri.clone(), ctx.http.clone())?;
        Ok(Arc::new(p))
    }

    fn urls(&self) -> Vec<(&'static str, &str)> {
        vec![("uri", &self.uri)]
    }
}
