//! The sidecar's configuration: ecmwf/auth-o-tron's v2 YAML schema, accepted unchanged, plus
//! our additions as new optional keys (marked "ours" below).
//!
//! Loading ([`Config::load`]) reads the file, converts version `1.0.0` files as auth-o-tron does,
//! applies `AOT_*` environment overrides (`__` nests: `AOT_JWT__SECRET` sets `jwt.secret`),
//! reports unknown keys as warnings and names the key of any error.

use std::collections::BTreeMap;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::Secret;

mod build;
mod load;
mod tokens;
mod warnings;

pub use build::Built;
pub use load::{ConfigError, Loaded};
pub use tokens::{BuiltTokens, ServiceConfig, TOKEN_PROVIDER, TokensConfig};
pub use warnings::warnings;

/// The whole configuration file.
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
    /// Providers, tried concurrently per credential scheme.
    pub providers: Vec<ProviderConfig>,
    /// Augmenters, applied by realm.
    #[serde(default)]
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

/// A string or a list of strings.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum OneOrMany {
    /// One value.
    One(String),
    /// Several values.
    Many(Vec<String>),
}

impl OneOrMany {
    /// The values as a list.
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// `http` (ours): the shared client of remote providers.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
pub struct HttpConfig {
    /// Connect timeout, ms (default 2000).
    #[serde(default = "default_connect_ms")]
    pub connect_timeout_ms: u64,
    /// Total timeout per call, ms (default 4000).
    #[serde(default = "default_total_ms")]
    pub timeout_ms: u64,
    /// Largest accepted response body (default 1 MiB).
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Allow `http://` URLs (default false: keys and tokens travel over TLS only).
    #[serde(default)]
    pub allow_http: bool,
}

fn default_connect_ms() -> u64 {
    2000
}
fn default_total_ms() -> u64 {
    4000
}
fn default_max_body() -> usize {
    1024 * 1024
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            connect_timeout_ms: default_connect_ms(),
            timeout_ms: default_total_ms(),
            max_body_bytes: default_max_body(),
            allow_http: false,
        }
    }
}

fn default_host() -> String {
    "0.0.0.0".into()
}
fn default_header_timeout() -> u64 {
    10_000
}
fn default_max_header_bytes() -> usize {
    16 * 1024
}
fn default_max_concurrent() -> usize {
    1024
}
fn default_max_connections() -> usize {
    super::server::Limits::default().max_connections
}
fn default_idle_timeout() -> u64 {
    super::server::Limits::default().idle_timeout.as_millis() as u64
}
fn default_request_timeout() -> u64 {
    super::server::Limits::default().request_timeout.as_millis() as u64
}
fn yes() -> bool {
    true
}
fn default_metrics_port() -> u16 {
    9090
}
fn default_timeout() -> u64 {
    5000
}

impl Config {
    /// The provider URLs written in this file that use plain HTTP, with their keys.
    pub fn plain_http_urls(&self) -> impl Iterator<Item = (String, &str)> {
        self.providers.iter().enumerate().flat_map(|(i, p)| {
            p.urls()
                .into_iter()
                .filter(|(_, u)| u.starts_with("http://"))
                .map(move |(k, u)| (format!("providers[{i}].{k}"), u))
        })
    }
}

impl ProviderConfig {
    /// The URLs the provider calls, as written, with their keys.
    pub fn urls(&self) -> Vec<(&'static str, &str)> {
        let mut out = Vec::new();
        match self {
            ProviderConfig::Jwt {
                cert_uri, issuer, ..
            } => {
                out.extend(cert_uri.as_deref().map(|u| ("cert_uri", u)));
                if cert_uri.is_none() {
                    out.extend(issuer.as_deref().map(|u| ("issuer", u)));
                }
            }
            ProviderConfig::Introspection { endpoint, .. } => out.push(("endpoint", endpoint)),
            ProviderConfig::EcmwfApi { uri, .. } | ProviderConfig::EfasApi { uri, .. } => {
                out.push(("uri", uri));
            }
            ProviderConfig::OpenidOffline {
                cert_uri, iam_url, ..
            } => {
                out.push(("cert_uri", cert_uri));
                out.push(("iam_url", iam_url));
            }
            ProviderConfig::EcmwfTokenGenerator {
                cert_uri,
                token_generator_url,
                ..
            } => {
                out.push(("cert_uri", cert_uri));
                out.push(("token_generator_url", token_generator_url));
            }
            _ => {}
        }
        out
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
pub struct MetricsConfig {
    /// Serve `/metrics` on its own port.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Its port (must differ from `server.port`).
    #[serde(default = "default_metrics_port")]
    pub port: u16,
    /// Ours: address of the metrics listener; default `server.host`.
    #[serde(default)]
    pub host: Option<String>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: true,
            port: 9090,
            host: None,
        }
    }
}

/// `auth`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
pub struct AuthConfig {
    /// Per-provider timeout, ms.
    #[serde(default = "default_timeout")]
    pub timeout_in_ms: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            timeout_in_ms: 5000,
        }
    }
}

/// `cache` (ours).
#[derive(Clone, Debug, Deserialize, JsonSchema)]
pub struct CacheConfig {
    /// Maximum number of cached users.
    #[serde(default = "default_capacity")]
    pub capacity: u64,
    /// Remember refused credentials this many seconds (0, the default, disables; at most 300).
    #[serde(default)]
    pub negative_ttl_seconds: u64,
    /// Size of the separate cache of refused credentials.
    #[serde(default = "default_negative_capacity")]
    pub negative_capacity: u64,
}

fn default_negative_capacity() -> u64 {
    1000
}

fn default_capacity() -> u64 {
    crate::DEFAULT_CACHE_CAPACITY
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            capacity: default_capacity(),
            negative_ttl_seconds: 0,
            negative_capacity: default_negative_capacity(),
        }
    }
}

/// One static user of a `plain` provider.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
pub struct PlainUser {
    /// User name.
    pub username: String,
    /// Legacy plaintext password (deprecated; compared in constant time).
    #[serde(default)]
    pub password: Option<Secret>,
    /// Argon2id PHC string (recommended).
    #[serde(default)]
    pub password_hash: Option<String>,
    /// Roles.
    #[serde(default)]
    pub roles: Vec<String>,
}

/// `providers[]`, tagged by `type`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(tag = "type")]
pub enum ProviderConfig {
    /// Static users for HTTP Basic.
    #[serde(rename = "plain")]
    Plain {
        /// Unique name.
        name: String,
        /// Realm.
        realm: String,
        /// Ours: calls to this provider at once; beyond it the answer is an immediate 503
        /// (default 64 for providers that call out, unlimited for `plain` and `jwt`).
        #[serde(default)]
        max_concurrent_calls: Option<usize>,
        /// The users.
        users: Vec<PlainUser>,
    },
    /// Bearer JWT validated against a JWKS (`cert_uri`) or OIDC discovery (`issuer`).
    #[serde(rename = "jwt")]
    Jwt {
        /// Unique name (scopes are keyed by it).
        name: String,
        /// Realm.
        realm: String,
        /// Ours: calls to this provider at once; beyond it the answer is an immediate 503
        /// (default 64 for providers that call out, unlimited for `plain` and `jwt`).
        #[serde(default)]
        max_concurrent_calls: Option<usize>,
        /// JWKS URL. Either this or `issuer` (discovery).
        #[serde(default)]
        cert_uri: Option<String>,
        /// Shown by `/providers` (auth-o-tron required it and never used it).
        #[serde(default)]
        iam_realm: Option<String>,
        /// Ours: required `iss`; without `cert_uri`, keys come from its discovery document.
        #[serde(default)]
        issuer: Option<String>,
        /// Ours: accepted audiences (a string or a list).
        #[serde(default)]
        audience: Option<OneOrMany>,
        /// Ours: allowed algorithms (default: RS*, PS*, ES256, ES384, EdDSA).
        #[serde(default)]
        algorithms: Option<Vec<String>>,
        /// Ours: clock leeway, seconds (default 60, at most 300).
        #[serde(default)]
        leeway: Option<u64>,
        /// Ours: required `typ` header, e.g. `at+jwt`.
        #[serde(default)]
        typ: Option<String>,
        /// Ours: claim (or claim path) holding the user name (default `preferred_username`,
        /// else `sub`).
        #[serde(default)]
        username_claim: Option<OneOrMany>,
        /// Ours: extra claim path holding roles, e.g. `[groups]` or `[app, roles]`.
        #[serde(default)]
        roles_claim: Option<Vec<String>>,
    },
    /// Ours: opaque tokens checked with RFC 7662 introspection.
    #[serde(rename = "introspection")]
    Introspection {
        /// Unique name (scopes are keyed by it).
        name: String,
        /// Realm.
        realm: String,
        /// Ours: calls to this provider at once; beyond it the answer is an immediate 503
        /// (default 64 for providers that call out, unlimited for `plain` and `jwt`).
        #[serde(default)]
        max_concurrent_calls: Option<usize>,
        /// The introspection endpoint.
        endpoint: String,
        /// Our client id.
        client_id: String,
        /// Our client secret.
        client_secret: Secret,
        /// `basic` (default) or `form`.
        #[serde(default)]
        client_auth: Option<String>,
        /// Accepted audiences.
        #[serde(default)]
        audience: Option<OneOrMany>,
        /// Required issuer.
        #[serde(default)]
        issuer: Option<String>,
    },
    /// ECMWF Web-API keys (`Bearer <key>` or `EmailKey <email>:<key>`).
    #[serde(rename = "ecmwf-api")]
    EcmwfApi {
        /// Unique name.
        name: String,
        /// Realm.
        realm: String,
        /// Ours: calls to this provider at once; beyond it the answer is an immediate 503
        /// (default 64 for providers that call out, unlimited for `plain` and `jwt`).
        #[serde(default)]
        max_concurrent_calls: Option<usize>,
        /// Base URI, e.g. `https://api.ecmwf.int/v1`.
        uri: String,
        /// Ours: require the email of `EmailKey` credentials to match the account's.
        #[serde(default)]
        check_email: bool,
    },
    /// EFAS user tokens.
    #[serde(rename = "efas-api")]
    EfasApi {
        /// Unique name.
        name: String,
        /// Realm.
        realm: String,
        /// Ours: calls to this provider at once; beyond it the answer is an immediate 503
        /// (default 64 for providers that call out, unlimited for `plain` and `jwt`).
        #[serde(default)]
        max_concurrent_calls: Option<usize>,
        /// URI.
        uri: String,
    },
    /// Offline refresh tokens: introspect, exchange, validate the access token (Keycloak paths).
    #[serde(rename = "openid-offline")]
    OpenidOffline {
        /// Unique name.
        name: String,
        /// Realm (also the Keycloak realm).
        realm: String,
        /// Ours: calls to this provider at once; beyond it the answer is an immediate 503
        /// (default 64 for providers that call out, unlimited for `plain` and `jwt`).
        #[serde(default)]
        max_concurrent_calls: Option<usize>,
        /// JWKS URL.
        cert_uri: String,
        /// Public client id.
        public_client_id: String,
        /// Private client id.
        private_client_id: String,
        /// Private client secret.
        private_client_secret: Secret,
        /// Keycloak base URL.
        iam_url: String,
        /// Ours: required `iss` of the access tokens.
        #[serde(default)]
        issuer: Option<String>,
        /// Ours: accepted audiences of the access tokens.
        #[serde(default)]
        audience: Option<OneOrMany>,
    },
    /// ECMWF token generator: validate, exchange, validate the access token.
    #[serde(rename = "ecmwf-token-generator")]
    EcmwfTokenGenerator {
        /// Unique name.
        name: String,
        /// Realm.
        realm: String,
        /// Ours: calls to this provider at once; beyond it the answer is an immediate 503
        /// (default 64 for providers that call out, unlimited for `plain` and `jwt`).
        #[serde(default)]
        max_concurrent_calls: Option<usize>,
        /// JWKS URL.
        cert_uri: String,
        /// Client id.
        client_id: String,
        /// Client secret.
        client_secret: Secret,
        /// Token generator base URL.
        token_generator_url: String,
        /// Ours: required `iss` of the access tokens.
        #[serde(default)]
        issuer: Option<String>,
        /// Ours: accepted audiences of the access tokens.
        #[serde(default)]
        audience: Option<OneOrMany>,
    },
}

impl ProviderConfig {
    /// The `max_concurrent_calls` setting, if given.
    pub fn max_concurrent_calls(&self) -> Option<usize> {
        match self {
            ProviderConfig::Plain {
                max_concurrent_calls,
                ..
            }
            | ProviderConfig::Jwt {
                max_concurrent_calls,
                ..
            }
            | ProviderConfig::Introspection {
                max_concurrent_calls,
                ..
            }
            | ProviderConfig::EcmwfApi {
                max_concurrent_calls,
                ..
            }
            | ProviderConfig::EfasApi {
                max_concurrent_calls,
                ..
            }
            | ProviderConfig::OpenidOffline {
                max_concurrent_calls,
                ..
            }
            | ProviderConfig::EcmwfTokenGenerator {
                max_concurrent_calls,
                ..
            } => *max_concurrent_calls,
        }
    }

    /// `(name, type, realm)`.
    pub fn describe(&self) -> (&str, &'static str, &str) {
        match self {
            ProviderConfig::Plain { name, realm, .. } => (name, "plain", realm),
            ProviderConfig::Jwt { name, realm, .. } => (name, "jwt", realm),
            ProviderConfig::Introspection { name, realm, .. } => (name, "introspection", realm),
            ProviderConfig::EcmwfApi { name, realm, .. } => (name, "ecmwf-api", realm),
            ProviderConfig::EfasApi { name, realm, .. } => (name, "efas-api", realm),
            ProviderConfig::OpenidOffline { name, realm, .. } => (name, "openid-offline", realm),
            ProviderConfig::EcmwfTokenGenerator { name, realm, .. } => {
                (name, "ecmwf-token-generator", realm)
            }
        }
    }
}

/// `match` of a `plain_advanced` augmenter.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
pub struct AdvancedMatch {
    /// User names that match.
    #[serde(default)]
    pub username: Vec<String>,
    /// Roles that match.
    #[serde(default)]
    pub role: Vec<String>,
}

/// `augment` of a `plain_advanced` augmenter.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
pub struct AdvancedAugment {
    /// Roles to add.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Attributes to set.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

/// `augmenters[]`, tagged by `type`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(tag = "type")]
pub enum AugmenterConfig {
    /// `roles: {role: [usernames]}`.
    #[serde(rename = "plain")]
    Plain {
        /// Unique name.
        name: String,
        /// Realm.
        realm: String,
        /// Role to user names.
        roles: BTreeMap<String, Vec<String>>,
    },
    /// Match users or roles, add roles and attributes.
    #[serde(rename = "plain_advanced")]
    PlainAdvanced {
        /// Unique name.
        name: String,
        /// Realm.
        realm: String,
        /// What matches.
        #[serde(rename = "match")]
        matches: AdvancedMatch,
        /// What is added.
        augment: AdvancedAugment,
    },
    /// LDAP `memberOf` groups as roles.
    #[serde(rename = "ldap")]
    Ldap {
        /// Unique name.
        name: String,
        /// Realm.
        realm: String,
        /// LDAP URI.
        uri: String,
        /// Search base.
        search_base: String,
        /// Bind password.
        ldap_password: Secret,
        /// Bind DN.
        #[serde(default)]
        bind_dn: Option<String>,
        /// DN substring filter.
        #[serde(default)]
        filter: Option<String>,
        /// DN path filters.
        #[serde(default)]
        filters: Option<Vec<String>>,
    },
}

impl AugmenterConfig {
    /// `(name, type, realm)`.
    pub fn describe(&self) -> (&str, &'static str, &str) {
        match self {
            AugmenterConfig::Plain { name, realm, .. } => (name, "plain", realm),
            AugmenterConfig::PlainAdvanced { name, realm, .. } => (name, "plain_advanced", realm),
            AugmenterConfig::Ldap { name, realm, .. } => (name, "ldap", realm),
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
pub struct LoggingConfig {
    /// `trace`, `debug`, `info`, `warn` or `error`; `RUST_LOG` overrides it.
    #[serde(default = "default_level")]
    pub level: String,
    /// `json` or `console`.
    #[serde(default)]
    pub format: LogFormat,
    /// `resource.service.name` in JSON logs.
    #[serde(default)]
    pub service_name: Option<String>,
    /// `resource.service.version` in JSON logs.
    #[serde(default)]
    pub service_version: Option<String>,
}

fn default_level() -> String {
    "info".into()
}

impl Default for LoggingConfig {
    fn default() -> Self {
        LoggingConfig {
            level: default_level(),
            format: LogFormat::Console,
            service_name: None,
            service_version: None,
        }
    }
}

/// One path rule (ours): requests whose original path starts with `path` (on a segment
/// boundary), whose method is in `methods` (all methods when empty) and whose host is `host`
/// (any host when unset) must meet every listed requirement. Every matching rule must allow.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
pub struct RuleConfig {
    /// Path prefix, e.g. `/admin` (matches `/admin` and `/admin/...`, not `/administrator`).
    pub path: String,
    /// Only for this host (from `X-Forwarded-Host`; case-insensitive, port ignored). When the
    /// proxy sends no host, host rules apply anyway (the stricter choice).
    #[serde(default)]
    pub host: Option<String>,
    /// Methods, e.g. `[POST, DELETE]`; empty means all.
    #[serde(default)]
    pub methods: Vec<String>,
    /// Every one of these roles.
    #[serde(default)]
    pub roles: Vec<String>,
    /// At least one of these roles.
    #[serde(default)]
    pub any_roles: Vec<String>,
    /// Attributes with exactly these values.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// Scopes per service (provider name).
    #[serde(default)]
    pub scopes: BTreeMap<String, Vec<String>>,
}
