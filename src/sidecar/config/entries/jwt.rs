//! The providers that validate JWTs: `jwt` ([`JwtProvider`]), and the two that exchange a
//! long-lived token for an access token and validate that: `openid-offline`
//! ([`OfflineProvider`]) and `ecmwf-token-generator` ([`TokenGeneratorProvider`]).

use std::sync::Arc;

use schemars::JsonSchema;
use serde::Deserialize;

use super::{BuildCtx, ConfigError, OneOrMany, ProviderEntry};
use crate::Secret;
use crate::provider::{
    JwtProvider, JwtSettings, KeySource, OfflineEndpoints, OfflineProvider, OfflineSettings,
    Provider, TokenGeneratorProvider, TokenGeneratorSettings,
};

/// `type: jwt`: keys from `cert_uri`, or from the discovery document of `issuer`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
pub struct JwtEntry {
    /// JWKS URL. Either this or `issuer` (discovery).
    #[serde(default)]
    pub cert_uri: Option<String>,
    /// Shown by `/providers` (auth-o-tron required it and never used it).
    #[serde(default)]
    pub iam_realm: Option<String>,
    /// Ours: required `iss`; without `cert_uri`, keys come from its discovery document.
    #[serde(default)]
    pub issuer: Option<String>,
    /// Ours: accepted audiences (a string or a list).
    #[serde(default)]
    pub audience: Option<OneOrMany>,
    /// Ours: allowed algorithms (default: RS*, PS*, ES256, ES384, EdDSA).
    #[serde(default)]
    pub algorithms: Option<Vec<String>>,
    /// Ours: clock leeway, seconds (default 60, at most 300).
    #[serde(default)]
    pub leeway: Option<u64>,
    /// Ours: required `typ` header, e.g. `at+jwt`.
    #[serde(default)]
    pub typ: Option<String>,
    /// Ours: claim (or claim path) holding the user name (default `preferred_username`,
    /// else `sub`).
    #[serde(default)]
    pub username_claim: Option<OneOrMany>,
    /// Ours: extra claim path holding roles, e.g. `[groups]` or `[app, roles]`.
    #[serde(default)]
    pub roles_claim: Option<Vec<String>>,
}

/// The checks of an access token: `issuer` and `audience` when given, the defaults otherwise.
pub(super) fn access_token_checks(
    issuer: &Option<String>,
    audience: &Option<OneOrMany>,
) -> JwtSettings {
    JwtSettings {
        issuer: issuer.clone(),
        audience: audience.as_ref().map(OneOrMany::to_vec),
        ..JwtSettings::default()
    }
}

impl ProviderEntry for JwtEntry {
    fn build(&self, ctx: &BuildCtx<'_>) -> Result<Arc<dyn Provider>, ConfigError> {
        let mut settings = JwtSettings {
            typ: self.typ.clone(),
            username_claim: self.username_claim.as_ref().map(OneOrMany::to_vec),
            roles_claim: self.roles_claim.clone(),
            ..access_token_checks(&self.issuer, &self.audience)
        };
        if let Some(l) = self.leeway {
            settings.leeway = l;
        }
        if let Some(algs) = &self.algorithms {
            settings.algorithms = algs
                .iter()
                .map(|a| {
                    a.parse().map_err(|_| {
                        ConfigError::key("algorithms", format!("{a:?} is not an algorithm"))
                    })
                })
                .collect::<Result<_, _>>()?;
        }
        let source = match (&self.cert_uri, &self.issuer) {
            (Some(uri), _) => KeySource::Uri(uri.clone()),
            (None, Some(iss)) => KeySource::Discovery(iss.clone()),
            (None, None) => {
                return Err(ConfigError::key(
                    "cert_uri",
                    "give `cert_uri` or `issuer` (OIDC discovery)",
                ));
            }
        };
        let p = JwtProvider::new(ctx.name, ctx.realm, source, ctx.http.clone(), settings)?;
        Ok(Arc::new(p))
    }

    fn urls(&self) -> Vec<(&'static str, &str)> {
        match (&self.cert_uri, &self.issuer) {
            (Some(u), _) => vec![("cert_uri", u)],
            (None, Some(u)) => vec![("issuer", u)],
            (None, None) => Vec::new(),
        }
    }

    fn warnings(&self, key: &str, name: &str) -> Vec<String> {
        if self.audience.is_some() || self.issuer.is_some() {
            return Vec::new();
        }
        vec![format!(
            "{key} (jwt provider {name:?}) checks neither `audience` nor `issuer`: any token \
             signed by these keys is accepted, including tokens issued to other clients; set \
             `audience` (and `issuer`)"
        )]
    }
}

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
        let mut p = OfflineProvider::new(ctx.name, ctx.realm, settings, ctx.http.clone())?;
        if let Some(chains) = ctx.chains {
            p = p.chain_store(chains.clone());
        }
        Ok(Arc::new(p))
    }

    fn urls(&self) -> Vec<(&'static str, &str)> {
        vec![("cert_uri", &self.cert_uri), ("iam_url", &self.iam_url)]
    }
}

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
            .map_err(|e| match e.field() {
                // The library's `url` is the file's `token_generator_url`.
                Some("url") => ConfigError::key("token_generator_url", e.to_string()),
                _ => e.into(),
            })?;
        Ok(Arc::new(p))
    }

    fn urls(&self) -> Vec<(&'static str, &str)> {
        vec![
            ("cert_uri", &self.cert_uri),
            ("token_generator_url", &self.token_generator_url),
        ]
    }
}
