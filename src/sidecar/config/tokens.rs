//! The `services` catalogue and the `tokens` section (ours): which scopes exist, and where
//! API tokens are stored and how long they live.

use schemars::JsonSchema;
use serde::Deserialize;

use super::load::ConfigError;
use std::sync::Arc;
use std::time::Duration;

use crate::token::{
    Catalogue, DEFAULT_LAST_USED_INTERVAL, LastUsed, LazyStore, TokenFormat, TokenProvider,
    TokenSettings, TokenStore,
};

/// One entry of `services` (auth-o-tron's shape): a service and the scopes it knows.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
pub struct ServiceConfig {
    /// The service, e.g. `polytope` (the key of `scopes` in tokens, rules and minted JWTs).
    pub name: String,
    /// Its scopes, e.g. `[read, write]`.
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// `tokens` (ours): scoped, revocable API tokens.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
pub struct TokensConfig {
    /// Accept API tokens and serve `/tokens`.
    pub enabled: bool,
    /// `sqlite://PATH` (default `sqlite://tokens.db`) or `postgres://...` (several replicas).
    #[serde(default)]
    pub store: Option<String>,
    /// Prefix of new tokens (default `aot_`).
    #[serde(default)]
    pub prefix: Option<String>,
    /// Older prefixes still accepted (after a prefix change).
    #[serde(default)]
    pub accepted_prefixes: Vec<String>,
    /// Lifetime of a token whose request gives none, days (default 30).
    #[serde(default = "default_lifetime")]
    pub default_lifetime_days: u32,
    /// Longest lifetime a request may ask for, days (default 365).
    #[serde(default = "max_lifetime")]
    pub max_lifetime_days: u32,
    /// How long an accepted token is cached, seconds (default 60). Revocations evict at once
    /// on this replica and, with PostgreSQL, on the others within a second.
    #[serde(default = "cache_ttl")]
    pub cache_ttl_seconds: u64,
}

fn default_lifetime() -> u32 {
    30
}
fn max_lifetime() -> u32 {
    365
}
fn cache_ttl() -> u64 {
    60
}

/// Upper bound of `max_lifetime_days`: 100 years, far from any timestamp overflow.
const MAX_DAYS: u32 = 36_500;

impl TokensConfig {
    /// Refuses values that cannot work, naming the key.
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        if let Some(store) = &self.store
            && !(store.starts_with("sqlite:")
                || store.starts_with("postgres://")
                || store.starts_with("postgresql://"))
        {
            return Err(ConfigError::key(
                "tokens.store",
                "must start with sqlite:// or postgres://",
            ));
        }
        self.format()?;
        if self.max_lifetime_days == 0 || self.max_lifetime_days > MAX_DAYS {
            return Err(ConfigError::key(
                "tokens.max_lifetime_days",
                format!("must be between 1 and {MAX_DAYS}"),
            ));
        }
        if self.default_lifetime_days == 0 || self.default_lifetime_days > self.max_lifetime_days {
            return Err(ConfigError::key(
                "tokens.default_lifetime_days",
                "must be between 1 and tokens.max_lifetime_days",
            ));
        }
        if self.cache_ttl_seconds > 3600 {
            return Err(ConfigError::key(
                "tokens.cache_ttl_seconds",
                "must be at most 3600 (a revoked token must not live on in caches)",
            ));
        }
        Ok(())
    }
}

impl TokensConfig {
    /// The token format: `prefix` (default `aot_`) plus `accepted_prefixes`.
    pub(crate) fn format(&self) -> Result<TokenFormat, ConfigError> {
        let mut format = match &self.prefix {
            Some(p) => {
                TokenFormat::new(p).map_err(|e| ConfigError::key("tokens.prefix", e.to_string()))?
            }
            None => TokenFormat::default(),
        };
        for (i, p) in self.accepted_prefixes.iter().enumerate() {
            format = format.accept(p).map_err(|e| {
                ConfigError::key(format!("tokens.accepted_prefixes[{i}]"), e.to_string())
            })?;
        }
        Ok(format)
    }

    /// Settings of the provider and the API.
    pub(crate) fn settings(&self, catalogue: Catalogue) -> Result<TokenSettings, ConfigError> {
        Ok(TokenSettings::new(catalogue)
            .format(self.format()?)
            .lifetime_days(self.default_lifetime_days, self.max_lifetime_days)
            .cache_ttl(Duration::from_secs(self.cache_ttl_seconds)))
    }

    /// The store URL (default `sqlite://tokens.db`).
    pub fn store_url(&self) -> &str {
        self.store.as_deref().unwrap_or("sqlite://tokens.db")
    }
}

/// The catalogue of `services`, refusing empty or repeated names and scopes.
pub(crate) fn catalogue(services: &[ServiceConfig]) -> Result<Catalogue, ConfigError> {
    let mut catalogue = Catalogue::new();
    for (i, s) in services.iter().enumerate() {
        catalogue = catalogue
            .service(&s.name, s.scopes.iter().map(String::as_str))
            .map_err(|e| ConfigError::key(format!("services[{i}]"), e.to_string()))?;
    }
    Ok(catalogue)
}

/// The name (and challenge realm) of the sidecar's token provider.
pub const TOKEN_PROVIDER: &str = "tokens";

/// The running parts of `tokens`: the store (opened on first use), the settings the API and
/// the provider share, and the last-used batcher.
#[derive(Clone, Debug)]
pub struct BuiltTokens {
    /// The store.
    pub store: Arc<LazyStore>,
    /// Format, catalogue, lifetimes, cache TTL.
    pub settings: TokenSettings,
    /// Last-use times, written in batches.
    pub last_used: Arc<LastUsed>,
}

impl BuiltTokens {
    /// The store of `config`, opened on first use. One per configuration: the token provider,
    /// the API and openid-offline's refresh-token chains share it.
    pub(crate) fn store(config: &TokensConfig) -> Arc<LazyStore> {
        let url = config.store_url().to_owned();
        // Named by its scheme in logs: open errors show the URL with its password redacted.
        let what = format!("{} token store", url.split(':').next().unwrap_or_default());
        Arc::new(LazyStore::new(what, move || {
            let url = url.clone();
            Box::pin(async move { open(&url).await })
        }))
    }

    /// The settings and the provider for `config` over `store`.
    pub(crate) fn new(
        config: &TokensConfig,
        catalogue: Catalogue,
        store: Arc<LazyStore>,
    ) -> Result<(BuiltTokens, TokenProvider), ConfigError> {
        let settings = config.settings(catalogue)?;
        let dyn_store: Arc<dyn TokenStore> = store.clone();
        let last_used = Arc::new(LastUsed::new(dyn_store.clone(), DEFAULT_LAST_USED_INTERVAL));
        let provider = TokenProvider::new(TOKEN_PROVIDER, dyn_store, settings.clone())
            .last_used(last_used.clone());
        Ok((
            BuiltTokens {
                store,
                settings,
                last_used,
            },
            provider,
        ))
    }
}

async fn open(url: &str) -> Result<Arc<dyn TokenStore>, crate::token::OpenFailure> {
    Ok(crate::token::store::open(url).await?)
}
