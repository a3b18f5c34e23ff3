//! `ecmwf-token-generator`: offline tokens exchanged at ECMWF's token generator
//! ([`TokenGeneratorProvider`]).

use std::sync::Arc;

use schemars::JsonSchema;
use serde::Deserialize;

use super::jwt::access_token_checks;
use super::{BuildCtx, ConfigError, OneOrMany, ProviderEntry, setting};
use crate::Secret;
use crate::provider::{Provider, TokenGeneratorProvider, TokenGeneratorSettings};

/// `type: ecmwf-token-generator`: validate, exchange, validate the access token.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
pub struct TokenGeneratorEntry {
    /// JWKS URL.
    pub cert_uri: String,
    /// Client id.
    pub client_id: String,
    /// Client secret.
    pub client_secret: Secret,
    /// Token generator base URL.
    pub token_generator_url: String,
    /// Ours: required `iss` of the access tokens.
    #[serde(default)]
    pub issuer: Option<String>,
    /// Ours: accepted audiences of the access tokens.
    #[serde(default)]
    pub audience: Option<OneOrMany>,
}

impl ProviderEntry for TokenGeneratorEntry {
    fn build(&self, ctx: &BuildCtx<'_>) -> Result<Arc<dyn Provider>, ConfigError> {
        let settings = TokenGeneratorSettings {
            url: self.token_generator_url.clone(),
            cert_uri: self.cert_uri.clone(),
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            jwt: access_token_checks(&self.issuer, &self.audience),
        };
        let p = TokenGeneratorProvider::new(ctx.name, ctx.realm, settings, ctx.http.clone())
            .map_err(|e| setting(e, &[("url", "token_generator_url")]))?;
        Ok(Arc::new(p))
    }

    fn urls(&self) -> Vec<(&'static str, &str)> {
        vec![
            ("cert_uri", &self.cert_uri),
            ("token_generator_url", &self.token_generator_url),
        ]
    }
}
