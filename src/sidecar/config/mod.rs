//! The sidecar's configuration: ecmwf/auth-o-tron's v2 YAML schema, accepted unchanged, plus
//! our additions as new optional keys (marked "ours" below).
//!
//! Loading ([`Config::load`]) reads the file, converts version `1.0.0` files as auth-o-tron does,
//! applies `AOT_*` environment overrides (`__` nests: `AOT_JWT__SECRET` sets `jwt.secret`),
//! reports unknown keys as warnings and names the key of any error. Each `providers[]` and
//! `augmenters[]` item is read, checked and built by the entry of its `type`
//! ([`entries`]); adding a provider type is described in `CONTRIBUTING.md`.

use std::path::PathBuf;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::Secret;
use crate::provider::client;
pub use crate::sidecar::rules::RuleConfig;
use crate::sidecar::server::Limits;

mod build;
pub mod entries;
mod load;
mod portal;
mod tokens;
mod warnings;

pub use build::Built;
pub use entries::{AugmenterConfig, OneOrMany, ProviderConfig};
pub use load::{ConfigError, Loaded};
pub use portal::{PortalConfig, PortalOidcConfig};
pub use tokens::{BuiltTokens, ServiceConfig, TOKEN_PROVIDER, TokensConfig};
pub use warnings::warnings;

/// Default port of the Prometheus listener (auth-o-tron's).
pub const DEFAULT_METRICS_PORT: u16 = 9090;

/// The whole configuration file. Read it with [`Config::load`] or [`Config::from_yaml`]: a bare
/// `Deserialize` leaves `providers` and `augmenters` empty (the loader reads each item with
/// the entry of its type).
#[derive(Clone, Debug, Deserialize, JsonSchema)]
pub struct Config {
    /// `"2.0.0"` (or `"1.0.0"`, converted at load time).
    pub version: String,
    /// The listener.
    pub server: ServerConfig,
    /// The Prometheus listener.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// Provider timeouts.
    #[serde(default)]
    pub auth: AuthConfig,
    // `providers` and `augmenters` are read by the loader, each item by the entry its `type`
    // names, so that entry's serde definition decides which keys are known.
    /// Providers, tried concurrently per credential scheme.
    #[serde(skip_deserializing)]
    #[schemars(!skip_deserializing)]
    pub providers: Vec<ProviderConfig>,
    /// Augmenters, applied by realm.
    #[serde(skip_deserializing, default)]
    #[schemars(!skip_deserializing)]
    pub augmenters: Vec<AugmenterConfig>,
    /// The minted JWT.
    pub jwt: JwtConfig,
    /// Also answer `X-Auth-Username`, `X-Auth-Realm`, `X-Auth-Roles` on success.
    #[serde(default)]
    pub include_legacy_headers: bool,
    /// auth-o-tron's token store: accepted, but only `enabled: false` is supported.
    #[serde(default)]
    pub store: Option<StoreConfig>,
    /// auth-o-tron's `services`: the scopes catalogue. API tokens hold a subset of it; minted
    /// JWTs of direct users carry all of it in `scopes`.
    #[serde(default)]
    pub services: Option<Vec<ServiceConfig>>,
    /// Ours: scoped, revocable API tokens and the `/tokens` API.
    #[serde(default)]
    pub tokens: Option<TokensConfig>,
    /// Ours: the token portal (needs `tokens`).
    #[serde(default)]
    pub portal: Option<PortalConfig>,
    /// Logging.
    #[serde(default)]
    pub logging: LoggingConfig,
    /// Ours: the result cache.
    #[serde(default)]
    pub cache: CacheConfig,
    /// Ours: per-path and per-method requirements, matched on the original request.
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
    /// Ours: the HTTP client of remote providers.
    #[serde(default)]
    pub http: HttpConfig,
}

/// `http` (ours): the shared client of remote providers.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(default)]
pub struct HttpConfig {
    /// Connect timeout, ms (default 2000).
    pub connect_timeout_ms: u64,
    /// Total timeout per call, ms (default 4000).
    pub timeout_ms: u64,
    /// Largest accepted response body (default 1 MiB).
    pub max_body_bytes: usize,
    /// Allow `http://` URLs (default false: keys and tokens travel over TLS only).
    pub allow_http: bool,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            connect_timeout_ms: millis(client::DEFAULT_CONNECT_TIMEOUT),
            timeout_ms: millis(client::DEFAULT_TOTAL_TIMEOUT),
            max_body_bytes: client::DEFAULT_MAX_BODY,
            allow_http: false,
        }
    }
}

fn millis(d: Duration) -> u64 {
    d.as_millis().try_into().unwrap_or(u64::MAX)
}
fn default_host() -> String {
    "0.0.0.0".into()
}
// The listener's defaults are the server's own.
fn default_header_timeout() -> u64 {
    millis(Limits::default().header_read_timeout)
}
fn default_max_header_bytes() -> usize {
    Limits::default().max_header_bytes
}
fn default_max_concurrent() -> usize {
    Limits::default().max_concurrent
}
fn default_max_connections() -> usize {
    Limits::default().max_connections
}
fn default_idle_timeout() -> u64 {
    millis(Limits::default().idle_timeout)
}
fn default_request_timeout() -> u64 {
    millis(Limits::default().request_timeout)
}

impl Config {
    /// The provider URLs written in this file that use plain HTTP, with their keys.
    pub fn plain_http_urls(&self) -> impl Iterator<Item = (String, &str)> {
        let portal = self
            .portal
            .iter()
            .filter(|p| p.enabled)
            .filter_map(|p| p.oidc.as_ref())
            .map(|o| ("portal.oidc.issuer".to_owned(), o.issuer.as_str()))
            .filter(|(_, u)| u.starts_with("http://"));
        self.providers
            .iter()
            .enumerate()
            .flat_map(|(i, p)| {
                p.entry
                    .urls()
                    .into_iter()
                    .filter(|(_, u)| u.starts_with("http://"))
                    .map(move |(k, u)| (format!("providers[{i}].{k}"), u))
            })
            .chain(portal)
    }
}

/// `server`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
pub struct ServerConfig {
    /// Address to bind; default `0.0.0.0` as auth-o-tron. Prefer `127.0.0.1` behind a proxy.
    #[serde(default = "default_host")]
    pub host: String,
    /// Port.
    pub port: u16,
    /// Ours: time a client has to send its request headers (slow-loris guard), ms.
    #[serde(default = "default_header_timeout")]
    pub header_read_timeout_ms: u64,
    /// Ours: maximum size of the request head, bytes (larger requests get 431).
    #[serde(default = "default_max_header_bytes")]
    pub max_header_bytes: usize,
    /// Ours: requests handled at once; beyond it the answer is an immediate 503.
    #[serde(default = "default_max_concurrent")]
    pub max_concurrent_requests: usize,
    /// Ours: open connections at most; at the cap, idle connections are closed to make room
    /// and new ones wait. Lowered to fit the file-descriptor limit.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Ours: how long a keep-alive connection may sit idle between requests, ms.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout_ms: u64,
    /// Ours: how long one request may take from its head to its answer, ms.
    #[serde(default = "default_request_timeout")]
    pub request_timeout_ms: u64,
    /// Ours: peers (CIDR list, e.g. `[127.0.0.1/32, 10.0.0.0/8]`) allowed to ask for
    /// decisions; requests from any other address get 403. Unset: every peer (bind to
    /// loopback then).
    #[serde(default)]
    pub trusted_proxies: Option<Vec<String>>,
    /// Ours: what to do with an original URI a router could read two ways: `reject` (403,
    /// the default) or `normalize` (decide on a normalised form; unsafe with proxies that
    /// forward the raw target, such as nginx and Caddy).
    #[serde(default)]
    pub ambiguous_paths: crate::sidecar::rules::PathMode,
}

/// `metrics`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(default)]
pub struct MetricsConfig {
    /// Serve `/metrics` on its own port.
    pub enabled: bool,
    /// Its port (must differ from `server.port`; default 9090).
    pub port: u16,
    /// Ours: address of the metrics listener; default `server.host`.
    pub host: Option<String>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: true,
            port: DEFAULT_METRICS_PORT,
            host: None,
        }
    }
}

/// `auth`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(default)]
pub struct AuthConfig {
    /// Per-provider timeout, ms (default 5000).
    pub timeout_in_ms: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            timeout_in_ms: millis(crate::DEFAULT_TIMEOUT),
        }
    }
}

/// `cache` (ours).
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(default)]
pub struct CacheConfig {
    /// Maximum number of cached users.
    pub capacity: u64,
    /// Remember refused credentials this many seconds (0, the default, disables; at most 300).
    pub negative_ttl_seconds: u64,
    /// Size of the separate cache of refused credentials.
    pub negative_capacity: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            capacity: crate::DEFAULT_CACHE_CAPACITY,
            negative_ttl_seconds: 0,
            negative_capacity: 1000,
        }
    }
}

/// Signing algorithm of the minted JWT (ours).
#[derive(Clone, Copy, Debug, Default, Deserialize, JsonSchema, PartialEq, Eq)]
pub enum MintAlgorithm {
    /// HMAC-SHA-256 with `jwt.secret` (auth-o-tron's).
    #[default]
    HS256,
    /// ECDSA P-256 with `jwt.key_file`.
    ES256,
    /// Ed25519 with `jwt.key_file`.
    EdDSA,
}

/// A previous signing key kept in the JWKS during rotation (ours).
#[derive(Clone, Debug, Deserialize, JsonSchema)]
pub struct PreviousKey {
    /// Its key id.
    pub kid: String,
    /// PEM file of the private key.
    pub key_file: PathBuf,
}

/// `jwt`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
pub struct JwtConfig {
    /// `iss` of minted tokens.
    pub iss: String,
    /// `aud` of asymmetric minted tokens (auth-o-tron accepted it and never emitted it).
    #[serde(default)]
    pub aud: Option<String>,
    /// Lifetime of minted tokens, seconds.
    pub exp: i64,
    /// HS256 secret (at least 32 bytes). Prefer `AOT_JWT__SECRET` or `secret_file`.
    #[serde(default)]
    pub secret: Option<Secret>,
    /// Ours: file holding the HS256 secret (trailing newline ignored).
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// Ours: the signing algorithm.
    #[serde(default)]
    pub algorithm: MintAlgorithm,
    /// Ours: PEM private key for ES256 / EdDSA.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// Ours: key id of `key_file`.
    #[serde(default)]
    pub kid: Option<String>,
    /// Ours: previous keys still published in the JWKS.
    #[serde(default)]
    pub previous_keys: Vec<PreviousKey>,
}

/// `store` (auth-o-tron's Mongo token store).
#[derive(Clone, Debug, Deserialize, JsonSchema)]
pub struct StoreConfig {
    /// Must be `false` here.
    pub enabled: bool,
}

/// Log format.
#[derive(Clone, Copy, Debug, Default, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// OpenTelemetry-shaped JSON lines, as auth-o-tron.
    Json,
    /// Human-readable lines.
    #[default]
    Console,
}

/// `logging`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(default)]
pub struct LoggingConfig {
    /// `trace`, `debug`, `info`, `warn` or `error`; `RUST_LOG` overrides it.
    pub level: String,
    /// `json` or `console`.
    pub format: LogFormat,
    /// `resource.service.name` in JSON logs.
    pub service_name: Option<String>,
    /// `resource.service.version` in JSON logs.
    pub service_version: Option<String>,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        LoggingConfig {
            level: "info".into(),
            format: LogFormat::Console,
            service_name: None,
            service_version: None,
        }
    }
}
