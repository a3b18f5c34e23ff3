#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod augment;
pub mod auth;
mod authenticator;
mod body;
mod cache;
mod challenge;
pub mod credentials;
mod error;
pub mod guard;
pub mod mint;
#[cfg(feature = "portal")]
pub mod portal;
pub mod provider;
pub mod reject;
mod secret;
mod stats;
#[cfg(any(feature = "sidecar", feature = "tokens-api"))]
mod time;
#[cfg(feature = "tokens")]
pub mod token;
mod user;

pub use auth::{Auth, AuthLayer};
pub use authenticator::{
    Authenticator, AuthenticatorBuilder, BuildError, DEFAULT_CACHE_CAPACITY,
    DEFAULT_MAX_CONCURRENT_CALLS, DEFAULT_TIMEOUT, REALM_HEADER,
};
pub use body::AuthBody;
pub use challenge::Challenges;
pub use error::{AuthError, Forbidden};
/// The `http` crate, whose types the API takes ([`HeaderName`](http::HeaderName) for
/// [`HeaderSource`](credentials::HeaderSource), [`HeaderMap`](http::HeaderMap), ...).
pub use http;
pub use secret::Secret;
pub use stats::{AugmenterCounters, ProviderCounters, Stats};
pub use user::{Principal, Scopes, User};
#[cfg(feature = "sidecar")]
pub mod sidecar;

/// Internal entry points for the fuzz targets in `fuzz/`; no stability guarantee.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
#[path = "fuzz_api.rs"]
pub mod __fuzz;
