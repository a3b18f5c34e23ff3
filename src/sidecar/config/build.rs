//! Turning a loaded [`Config`] into the running parts: authenticator, minter, rules. Each
//! provider and augmenter is built (and its keys checked) by its entry.

use std::sync::Arc;
use std::time::Duration;

use super::entries::BuildCtx;
use super::load::ConfigError;
use super::{Config, MintAlgorithm};
use crate::mint::{Minter, SigningKey};
use crate::provider::chain::ChainStore;
use crate::provider::client::HttpClient;
use crate::sidecar::peers::TrustedProxies;
use crate::sidecar::rules::Rules;
use crate::{Authenticator, BuildError};

/// The running parts of a configuration.
#[derive(Debug, Clone)]
pub struct Built {
    /// The pipeline.
    pub authenticator: Authenticator,
    /// The minter of `/authenticate` tokens.
    pub minter: Minter,
    /// Path rules; every matching rule must allow.
    pub rules: Rules,
    /// Who may ask for decisions.
    pub trusted: TrustedProxies,
    /// API tokens, when `tokens.enabled`.
    pub tokens: Option<super::BuiltTokens>,
    /// The token portal's settings, when `portal.enabled`.
    pub portal: Option<crate::portal::PortalSettings>,
}

fn read_file(key: &str, path: &std::path::Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path)
        .map_err(|e| ConfigError::key(key, format!("cannot read {}: {e}", path.display())))
}

impl Config {
    /// Builds the authenticator, minter and rules.
    pub fn build(&self) -> Result<Built, ConfigError> {
        let http = HttpClient::builder()
            .connect_timeout(Duration::from_millis(self.http.connect_timeout_ms))
            .timeout(Duration::from_millis(self.http.timeout_ms))
            .max_body(self.http.max_body_bytes)
            // URLs the operator wrote may be plain HTTP (in-cluster services often are);
            // `warnings` names them. URLs learned at run time are still held to https when
            // their source was https, and redirects stay off.
            .allow_http(self.http.allow_http || self.plain_http_urls().next().is_some())
            .build()
            .map_err(|e| ConfigError::key("http", e.to_string()))?;
        let timeout = Duration::from_millis(self.auth.timeout_in_ms);
        let mut builder = Authenticator::builder()
            .timeout(timeout)
            .cache_capacity(self.cache.capacity);
        if self.cache.negative_ttl_seconds > 0 {
            builder = builder.negative_cache(
                Duration::from_secs(self.cache.negative_ttl_seconds),
                self.cache.negative_capacity,
            );
        }
        // Opened on first use; built first, since openid-offline keeps its chains in it.
        let store = self
            .tokens
            .as_ref()
            .filter(|t| t.enabled)
            .map(super::BuiltTokens::store);
        let chains = store.clone().map(|s| -> Arc<dyn ChainStore> { s });
        let shared = BuildCtx {
            name: "",
            realm: "",
            http: &http,
            timeout,
            cache_capacity: self.cache.capacity,
            chains: chains.as_ref(),
        };
        for (i, p) in self.providers.iter().enumerate() {
            let at = format!("providers[{i}]");
            let ctx = shared.item(&at, &p.keys.name, &p.keys.realm)?;
            let provider = p.entry.build(&ctx).map_err(|e| e.within(&at))?;
            // The `type` an entry is listed under and the kind its provider reports are one name.
            debug_assert_eq!(provider.info().kind, p.keys.kind, "{at}");
            builder = builder.provider_arc(provider);
            if let Some(limit) = p.keys.max_concurrent_calls {
                if limit == 0 {
                    return Err(ConfigError::key(
                        format!("{at}.max_concurrent_calls"),
                        "must be greater than zero",
                    ));
                }
                builder = builder.provider_max_concurrent_calls(&p.keys.name, limit);
            }
        }
        for (i, a) in self.augmenters.iter().enumerate() {
            let at = format!("augmenters[{i}]");
            let ctx = shared.item(&at, &a.keys.name, &a.keys.realm)?;
            builder = builder.augmenter_arc(a.entry.build(&ctx).map_err(|e| e.within(&at))?);
        }
        let catalogue = super::tokens::catalogue(self.services.as_deref().unwrap_or_default())?;
        let tokens = match (&self.tokens, store) {
            (Some(t), Some(store)) => {
                // Scopes are keyed by service, and a provider's own scopes by its name: one
                // name for both would let an identity provider's `write` pass as a token's.
                for (i, p) in self.providers.iter().enumerate() {
                    let clash = self
                        .services
                        .iter()
                        .flatten()
                        .any(|s| s.name == p.keys.name);
                    if clash {
                        return Err(ConfigError::key(
                            format!("providers[{i}].name"),
                            format!(
                                "{:?} is also a service in `services`; rename the provider",
                                p.keys.name
                            ),
                        ));
                    }
                }
                let (tokens, provider) = super::BuiltTokens::new(t, catalogue.clone(), store)?;
                builder = builder.provider(provider);
                Some(tokens)
            }
            _ => None,
        };
        let portal = match &self.portal {
            Some(p) if p.enabled => {
                if tokens.is_none() {
                    return Err(ConfigError::key(
                        "portal.enabled",
                        "the portal needs `tokens.enabled: true` (its sessions live in the token store)",
                    ));
                }
                let settings = p.settings(&http)?;
                settings
                    .validate()
                    .map_err(|e| ConfigError::key("portal", e.to_string()))?;
                Some(settings)
            }
            _ => None,
        };
        let authenticator = builder.build().map_err(|e| match e {
            BuildError::DuplicateProvider(name) => {
                let i = self.providers.iter().rposition(|p| p.keys.name == name);
                ConfigError::key(
                    format!("providers[{}].name", i.unwrap_or_default()),
                    format!("{name:?} is used twice"),
                )
            }
            other => ConfigError::key("providers", other.to_string()),
        })?;
        let minter = self.minter(&catalogue)?;
        let rules = Rules::compile(&self.rules, self.server.ambiguous_paths)?;
        let trusted = TrustedProxies::parse(self.server.trusted_proxies.as_deref())?;
        Ok(Built {
            authenticator,
            minter,
            rules,
            trusted,
            tokens,
            portal,
        })
    }

    fn minter(&self, catalogue: &crate::token::Catalogue) -> Result<Minter, ConfigError> {
        let jwt = &self.jwt;
        let key = match jwt.algorithm {
            MintAlgorithm::HS256 => {
                let secret = match (&jwt.secret, &jwt.secret_file) {
                    (Some(s), _) => s.expose().as_bytes().to_vec(),
                    (None, Some(path)) => {
                        let mut s = read_file("jwt.secret_file", path)?;
                        while s.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                            s.pop();
                        }
                        s
                    }
                    (None, None) => {
                        return Err(ConfigError::key(
                            "jwt.secret",
                            "required for HS256 (or `jwt.secret_file`, or AOT_JWT__SECRET)",
                        ));
                    }
                };
                // Short secrets start (auth-o-tron accepts them and every backend shares the
                // secret); `warnings` says why and how to rotate.
                SigningKey::hs256_weak(&secret)
                    .map_err(|e| ConfigError::key("jwt.secret", e.to_string()))?
            }
            alg => {
                let path = jwt.key_file.as_ref().ok_or_else(|| {
                    ConfigError::key("jwt.key_file", format!("required for {alg:?}"))
                })?;
                let kid = jwt
                    .kid
                    .as_deref()
                    .ok_or_else(|| ConfigError::key("jwt.kid", format!("required for {alg:?}")))?;
                load_key(alg, kid, &read_file("jwt.key_file", path)?)
                    .map_err(|e| ConfigError::key("jwt.key_file", e.to_string()))?
            }
        };
        let mut builder = Minter::builder(jwt.iss.clone(), key)
            .lifetime(Duration::from_secs(jwt.exp as u64))
            .all_scopes(catalogue.all());
        if let Some(aud) = &jwt.aud {
            builder = builder.audience(aud.clone());
        }
        for (i, p) in jwt.previous_keys.iter().enumerate() {
            let key = format!("jwt.previous_keys[{i}]");
            let pem = read_file(&key, &p.key_file)?;
            builder = builder.previous_key(
                load_key(jwt.algorithm, &p.kid, &pem)
                    .map_err(|e| ConfigError::key(key, e.to_string()))?,
            );
        }
        builder
            .build()
            .map_err(|e| ConfigError::key("jwt.exp", e.to_string()))
    }
}

fn load_key(
    alg: MintAlgorithm,
    kid: &str,
    pem: &[u8],
) -> Result<SigningKey, crate::mint::MintError> {
    match alg {
        MintAlgorithm::EdDSA => SigningKey::eddsa_pem(kid, pem),
        _ => SigningKey::es256_pem(kid, pem),
    }
}
