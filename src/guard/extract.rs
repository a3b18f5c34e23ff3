//! axum extractors: [`User`], `Option<User>`, [`Principal`], and [`Guarded<G>`] for a
//! requirement named by a type (see [`guard!`](crate::guard!)).
//!
//! They read what [`AuthLayer`](crate::AuthLayer) put into the request extensions. Rejections
//! follow axum's style: a status, a JSON body, and a debug event on the `axum::rejection` target.

use std::marker::PhantomData;

use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
use axum_core::response::{IntoResponse, Response};
use http::header::{CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use http::request::Parts;

use super::Requirement;
use crate::error::{AuthError, Forbidden};
use crate::user::{Principal, User};

/// The rejection of the extractors in this module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardRejection(pub AuthError);

impl IntoResponse for GuardRejection {
    fn into_response(self) -> Response {
        let status = self.0.status();
        tracing::debug!(target: "axum::rejection", status = status.as_u16(), error = %self.0, "rejecting request");
        let body = serde_json::json!({ "error": self.0.to_string() }).to_string();
        let mut res = (status, body).into_response();
        res.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        // 403s for roles and attributes carry no challenge (they are not about credentials).
        if matches!(
            self.0,
            AuthError::Missing | AuthError::Forbidden(Forbidden::Scope(_))
        ) && let Some(v) = crate::reject::realmless().for_error(&self.0)
        {
            res.headers_mut().insert(WWW_AUTHENTICATE, v);
        }
        res
    }
}

fn principal(parts: &Parts) -> Option<&Principal> {
    parts.extensions.get::<Principal>()
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = GuardRejection;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        principal(parts)
            .cloned()
            .ok_or(GuardRejection(AuthError::Missing))
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Principal {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(principal(parts).cloned())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for User {
    type Rejection = GuardRejection;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        principal(parts)
            .map(|p| p.user().clone())
            .ok_or(GuardRejection(AuthError::Missing))
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for User {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(principal(parts).map(|p| p.user().clone()))
    }
}

/// A requirement named by a type, for [`Guarded`]. Define one with [`guard!`](crate::guard!).
pub trait Guard: Send + Sync + 'static {
    /// The requirement.
    fn requirement() -> &'static Requirement;
}

/// Extracts the [`Principal`] if it meets `G`'s requirement; 401 without one, 403 otherwise.
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
        let p = principal(parts).ok_or(GuardRejection(AuthError::Missing))?;
        G::requirement()
            .check(p)
            .map_err(|f| GuardRejection(AuthError::Forbidden(f)))?;
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
