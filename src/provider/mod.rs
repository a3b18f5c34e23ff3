//! Providers decide whether a credential is valid and who it belongs to.
//!
//! A provider answers with an [`Identity`], or with a [`ProviderError`] that separates an
//! **invalid** credential (401) from a provider that **could not decide** (503, fail closed).
//! Providers never see the cache: the pipeline hashes, caches and coalesces around them.
//!
//! Each provider holds one [`ProviderInfo`] (name, type, realm, scheme, cache lifetime) and
//! returns it from [`Provider::info`]. Adding a built-in provider the sidecar can load (one
//! file here and one entry in `sidecar::config::entries`) is described in `CONTRIBUTING.md`.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

use crate::credentials::Scheme;
use crate::user::User;

pub mod chain;
#[cfg(feature = "remote")]
pub mod client;
#[cfg(feature = "remote")]
pub mod ecmwf_api;
#[cfg(feature = "remote")]
pub mod efas_api;
#[cfg(feature = "remote")]
pub mod introspection;
#[cfg(feature = "remote")]
pub mod jwks;
#[cfg(feature = "remote")]
pub mod jwt;
#[cfg(feature = "remote")]
pub mod offline;
pub mod plain;
#[cfg(feature = "remote")]
pub mod token_generator;

#[cfg(feature = "remote")]
pub use ecmwf_api::EcmwfApiProvider;
#[cfg(feature = "remote")]
pub use efas_api::EfasApiProvider;
#[cfg(feature = "remote")]
pub use introspection::{IntrospectionProvider, IntrospectionSettings};
#[cfg(feature = "remote")]
pub use jwks::KeySource;
#[cfg(feature = "remote")]
pub use jwt::{JwtProvider, JwtSettings};
#[cfg(feature = "remote")]
pub use offline::{OfflineEndpoints, OfflineProvider, OfflineSettings};
pub use plain::PlainProvider;
#[cfg(feature = "remote")]
pub use token_generator::{TokenGeneratorProvider, TokenGeneratorSettings};

/// Where a provider decides, which sets the order in which the pipeline asks providers.
///
/// A credential goes to a [`Remote`](Locality::Remote) provider (whose check sends it to
/// another service) only after every eligible [`Local`](Locality::Local) one refused it, so a
/// token one of our own verifiers accepts never leaves the process.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Locality {
    /// Decides in this process (static users, signature checks against cached keys).
    Local,
    /// Sends the credential to another service (introspection, API-key lookups, exchanges).
    /// The default: a provider that does not say is assumed to send credentials away.
    #[default]
    Remote,
}

/// Latest instant an outside timestamp maps to (9999-12-31T23:59:59Z); later ones are clamped
/// to it. Such an instant is "far future", never "forever": cache lifetimes and minted tokens
/// are still bounded by their own limits.
#[cfg(any(feature = "remote", feature = "tokens"))]
const MAX_UNIX_SECS: u64 = 253_402_300_799;

/// A Unix time from outside (a token's `exp`, an introspection answer) as a [`SystemTime`],
/// without overflow: values past the year 9999 are clamped to its end. Remote providers and
/// API tokens read such times.
#[cfg(any(feature = "remote", feature = "tokens"))]
pub(crate) fn unix_time(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs.min(MAX_UNIX_SECS))
}

/// A boxed, sendable future (the miss path is async and dynamic; the hit path never builds one).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Who a valid credential belongs to.
#[derive(Clone, Debug)]
pub struct Identity {
    /// The user, before augmentation.
    pub user: User,
    /// When the credential itself stops being valid (a token's `exp`). Caps the cache TTL and
    /// the minted JWT's `exp`.
    pub expires_at: Option<SystemTime>,
}

impl Identity {
    /// An identity without an expiry of its own.
    pub fn new(user: User) -> Self {
        Identity {
            user,
            expires_at: None,
        }
    }
}

/// Why a provider or augmenter could not be built: which of its settings is wrong, and how.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// The URL in `field` is one this provider will not call.
    Url {
        /// The setting, e.g. `uri` or `cert_uri`.
        field: &'static str,
        /// The URL as given.
        url: String,
        /// The schemes accepted, e.g. `https://`.
        expected: &'static str,
    },
    /// `field` has a value that is not allowed.
    Value {
        /// The setting, e.g. `leeway`.
        field: &'static str,
        /// What is wrong with it.
        reason: Cow<'static, str>,
    },
    /// Something outside the settings failed (the TLS backend, the random source).
    Setup(String),
}

impl BuildError {
    /// The setting the error belongs to, if it belongs to one.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            BuildError::Url { field, .. } | BuildError::Value { field, .. } => Some(field),
            BuildError::Setup(_) => None,
        }
    }

    /// A [`Value`](BuildError::Value) error: `field` has a value that is not allowed.
    pub fn value(field: &'static str, reason: impl Into<Cow<'static, str>>) -> Self {
        BuildError::Value {
            field,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::Url { url, expected, .. } => write!(f, "{url} is not an {expected} URL"),
            BuildError::Value { reason, .. } => f.write_str(reason),
            BuildError::Setup(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for BuildError {}

/// A provider's refusal.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProviderError {
    /// The credential is not valid here (wrong password, bad signature, expired).
    Invalid(Cow<'static, str>),
    /// The provider could not decide (upstream down, timed out, garbage answer).
    Unavailable(Cow<'static, str>),
}

impl ProviderError {
    /// An invalid credential.
    pub fn invalid(why: impl Into<Cow<'static, str>>) -> Self {
        ProviderError::Invalid(why.into())
    }

    /// A provider that could not decide.
    pub fn unavailable(why: impl Into<Cow<'static, str>>) -> Self {
        ProviderError::Unavailable(why.into())
    }
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProviderError::Invalid(why) => write!(f, "invalid credential: {why}"),
            ProviderError::Unavailable(why) => write!(f, "provider unavailable: {why}"),
        }
    }
}

impl std::error::Error for ProviderError {}

/// Who a provider is: its configured name and type, the realm of its users, the scheme it is
/// challenged with, and how long its successes may be cached. One value per provider, built
/// once and returned by [`Provider::info`], so the pipeline, challenges, metrics and the
/// sidecar's `/providers` all read the same facts.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProviderInfo {
    /// The configured name (unique within an authenticator; scopes are keyed by it).
    pub name: String,
    /// The configuration type, e.g. `plain` or `jwt`.
    pub kind: &'static str,
    /// The realm users of this provider belong to.
    pub realm: String,
    /// The credential scheme this provider is challenged with in `WWW-Authenticate`.
    pub scheme: Scheme,
    /// How long a success may be cached; `None` disables caching. The pipeline further caps it
    /// by the credential's own expiry.
    pub cache_ttl: Option<Duration>,
}

/// How long a success is cached unless a provider says otherwise (auth-o-tron's value).
pub const DEFAULT_PROVIDER_CACHE_TTL: Duration = Duration::from_secs(60);

impl ProviderInfo {
    /// A provider `name` of type `kind` for `realm`, challenged with `scheme`, whose successes
    /// are cached [`DEFAULT_PROVIDER_CACHE_TTL`].
    pub fn new(
        name: impl Into<String>,
        kind: &'static str,
        realm: impl Into<String>,
        scheme: Scheme,
    ) -> Self {
        ProviderInfo {
            name: name.into(),
            kind,
            realm: realm.into(),
            scheme,
            cache_ttl: Some(DEFAULT_PROVIDER_CACHE_TTL),
        }
    }

    /// Sets how long a success may be cached (`None`: never).
    #[must_use]
    pub fn cache_ttl(mut self, ttl: Option<Duration>) -> Self {
        self.cache_ttl = ttl;
        self
    }
}

/// Something that turns a credential into an [`Identity`].
///
/// Implementations must treat the credential as untrusted input (bounded, never logged) and must
/// not panic on it.
///
/// A provider of API keys sent in an `X-API-Key` header: a
/// [`HeaderSource`](crate::credentials::HeaderSource) reads the header as a credential of a
/// scheme of our own, and the provider accepts that scheme (its [`ProviderInfo::scheme`], also
/// the scheme of the 401 challenge). Only hashes of the keys are kept.
///
/// ```
/// # #[cfg(feature = "axum")]
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use auth_o_tron::credentials::{Credential, HeaderSource, Scheme};
/// use auth_o_tron::http::HeaderName;
/// use auth_o_tron::provider::{BoxFuture, Identity, Locality, Provider, ProviderError, ProviderInfo};
/// use auth_o_tron::{AuthLayer, Authenticator, User};
/// use axum::{Router, body::Body, http::Request, routing::get};
/// use sha2::{Digest, Sha256};
/// use tower::ServiceExt;
///
/// const API_KEY: Scheme = Scheme::Custom("ApiKey");
///
/// struct ApiKeys {
///     info: ProviderInfo,
///     /// SHA-256 of each key, with its owner.
///     keys: Vec<([u8; 32], User)>,
/// }
///
/// impl Provider for ApiKeys {
///     fn info(&self) -> &ProviderInfo {
///         &self.info
///     }
///     // Decides in this process: asked before any provider that calls out.
///     fn locality(&self) -> Locality {
///         Locality::Local
///     }
///     fn authenticate<'a>(
///         &'a self,
///         credential: Credential<'a>,
///     ) -> BoxFuture<'a, Result<Identity, ProviderError>> {
///         let hash: [u8; 32] = Sha256::digest(credential.secret()).into();
///         let found = self.keys.iter().find(|(h, _)| *h == hash);
///         Box::pin(async move {
///             match found {
///                 Some((_, user)) => Ok(Identity::new(user.clone())),
///                 None => Err(ProviderError::invalid("unknown API key")),
///             }
///         })
///     }
/// }
///
/// let keys = ApiKeys {
///     info: ProviderInfo::new("api-keys", "api-key", "machines", API_KEY),
///     keys: vec![(
///         Sha256::digest("k-7f3a9c").into(),
///         User::new("ci-bot", "machines").with_roles(["deploy"]),
///     )],
/// };
/// let auth = Authenticator::builder()
///     .source(HeaderSource::new(HeaderName::from_static("x-api-key"), API_KEY))
///     .provider(keys)
///     .build()?;
/// let app = Router::new()
///     .route("/deploy", get(|user: User| async move { user.username }))
///     .route_layer(AuthLayer::new(auth));
///
/// let call = |key: &str| {
///     let req = Request::get("/deploy").header("x-api-key", key);
///     app.clone().oneshot(req.body(Body::empty()).unwrap())
/// };
/// assert_eq!(call("k-7f3a9c").await?.status(), 200);
/// let refused = call("k-guessed").await?;
/// assert_eq!(refused.status(), 401);
/// assert!(refused.headers()["www-authenticate"].to_str()?.starts_with("ApiKey"));
/// # Ok(()) }
/// # #[cfg(not(feature = "axum"))]
/// # fn main() {}
/// ```
pub trait Provider: Send + Sync + 'static {
    /// Its name, type, realm, scheme and cache lifetime.
    fn info(&self) -> &ProviderInfo;
    /// Where this provider decides (default [`Locality::Remote`]). Local providers are asked
    /// first; remote ones only when every local one refused.
    fn locality(&self) -> Locality {
        Locality::Remote
    }
    /// Whether `credential` is bound to this provider alone (a JWT whose `kid` names one of its
    /// keys): then no other provider, local or remote, ever sees it. Must be cheap and must not
    /// wait (it runs before any provider is asked). Default: never.
    fn owns(&self, credential: crate::credentials::Credential<'_>) -> bool {
        let _ = credential;
        false
    }
    /// Whether credentials of `scheme` are offered to this provider (default: only
    /// [`ProviderInfo::scheme`]).
    fn accepts(&self, scheme: Scheme) -> bool {
        scheme == self.info().scheme
    }
    /// Whether the provider is initialised (keys loaded, ...), for readiness checks.
    fn is_ready(&self) -> bool {
        true
    }
    /// Loads what the provider needs before the first request (keys, discovery). Failures are
    /// logged by the provider and retried on demand; a service starts even when an IdP is down.
    fn warm_up(&self) -> BoxFuture<'_, ()> {
        Box::pin(std::future::ready(()))
    }
    /// Checks `credential` (its scheme and the part after the scheme).
    fn authenticate<'a>(
        &'a self,
        credential: crate::credentials::Credential<'a>,
    ) -> BoxFuture<'a, Result<Identity, ProviderError>>;
}
