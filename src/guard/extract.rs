//! axum extractors: [`User`], `Option<User>`, [`Principal`], [`MintedToken`], and
//! [`Guarded<G>`] for a requirement named by a type (see [`guard!`](crate::guard!)).
//!
//! They read what [`AuthLayer`](crate::AuthLayer) put into the request extensions, so the
//! layer must run before them (see the [order of layers](super#order-of-layers)). Rejections
//! ([`GuardRejection`]) follow axum's style (`status()`, `body_text()`, a debug event on the
//! `axum::rejection` target) and are the layer's own responses: JSON body, `Cache-Control:
//! no-store`, challenges.
//!
//! `Option<User>` and `Option<Principal>` are `None` only for a request the layer let through
//! without credentials ([`AuthLayer::allow_anonymous`](crate::AuthLayer::allow_anonymous));
//! without any `AuthLayer` before them they answer 500 like the other guards.

use std::marker::PhantomData;

use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
use axum_core::response::{IntoResponse, Response};
use http::request::Parts;

pub use super::GuardRejection;
use super::{Requirement, authorize, no_auth_layer, no_minter};
use crate::mint::MintedToken;
use crate::user::{Anonymous, Principal, User};

impl IntoResponse for GuardRejection {
    fn into_response(self) -> Response {
        tracing::debug!(target: "axum::rejection", status = self.status().as_u16(), error = %self.error(), "rejecting request");
        // Extractors cannot see the request's content type; gRPC services use RequireLayer.
        self.rejection(false)
            .default_response()
            .map(axum_core::body::Body::from)
    }
}

/// The principal, `None` for a request the layer let through anonymously.
fn optional(parts: &Parts) -> Result<Option<&Principal>, GuardRejection> {
    match parts.extensions.get::<Principal>() {
        Some(p) => Ok(Some(p)),
        None if parts.extensions.get::<Anonymous>().is_some() => Ok(None),
        None => Err(no_auth_layer()),
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = GuardRejection;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        authorize(&parts.extensions, None).cloned()
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Principal {
    type Rejection = GuardRejection;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(optional(parts)?.cloned())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for User {
    type Rejection = GuardRejection;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        authorize(&parts.extensions, None).map(|p| p.user().clone())
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for User {
    type Rejection = GuardRejection;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(optional(parts)?.map(|p| p.user().clone()))
    }
}

/// The JWT the layer minted for this request ([`AuthLayer::mint`](crate::AuthLayer::mint)):
/// 401 without a principal, 500 when the layer mints nothing.
impl<S: Send + Sync> FromRequestParts<S> for MintedToken {
    type Rejection = GuardRejection;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        authorize(&parts.extensions, None)?;
        parts
            .extensions
            .get::<MintedToken>()
            .cloned()
            .ok_or_else(no_minter)
    }
}

/// A requirement named by a type, for [`Guarded`]. Define one with [`guard!`](crate::guard!).
pub trait Guard: Send + Sync + 'static {
    /// The requirement.
    fn requirement() -> &'static Requirement;
}

/// Extracts the [`Principal`] if it meets `G`'s requirement; 401 without one, 403 otherwise
/// (500 without an [`AuthLayer`](crate::AuthLayer) before it).
///
/// ```
/// use auth_o_tron::guard::{Requirement, extract::Guarded};
///
/// auth_o_tron::guard!(pub Admin = Requirement::role("admin"));
///
/// async fn handler(admin: Guarded<Admin>) -> String {
///     format!("hello {}", admin.username)
/// }
/// # let _ = handler;
/// ```
#[derive(Debug, Clone)]
pub struct Guarded<G>(pub Principal, PhantomData<G>);

impl<G> std::ops::Deref for Guarded<G> {
    type Target = Principal;
    fn deref(&self) -> &Principal {
        &self.0
    }
}

impl<S: Send + Sync, G: Guard> FromRequestParts<S> for Guarded<G> {
    type Rejection = GuardRejection;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let p = authorize(&parts.extensions, Some(G::requirement()))?;
        Ok(Guarded(p.clone(), PhantomData))
    }
}

/// Defines a type implementing [`Guard`] for use with [`Guarded`]:
/// `guard!(pub Admin = Requirement::role("admin"));`
#[macro_export]
macro_rules! guard {
    ($(#[$meta:meta])* $vis:vis $name:ident = $requirement:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy)]
        $vis struct $name;
        impl $crate::guard::extract::Guard for $name {
            fn requirement() -> &'static $crate::guard::Requirement {
                static REQUIREMENT: ::std::sync::LazyLock<$crate::guard::Requirement> =
                    ::std::sync::LazyLock::new(|| $requirement);
                &REQUIREMENT
            }
        }
    };
}
