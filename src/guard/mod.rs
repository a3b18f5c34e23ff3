//! Authorization checks on an authenticated user: roles, attributes and scopes.
//!
//! A [`Requirement`] is checked by [`AuthLayer::require`](crate::AuthLayer::require), by
//! [`RequireLayer`] (for `route_layer` and tonic services) and by the axum extractors in
//! [`extract`] (feature `axum`). Comparisons are exact byte matches: no case folding, no
//! prefixes.
//!
//! # Order of layers
//!
//! A guard reads the [`Principal`] the [`AuthLayer`](crate::AuthLayer) put into the request,
//! so the `AuthLayer` must run first. In axum the layer added last runs first:
//!
//! ```
//! # #[cfg(feature = "axum")] {
//! use auth_o_tron::guard::{RequireLayer, Requirement};
//! use auth_o_tron::{AuthLayer, Authenticator, Principal, provider::PlainProvider};
//! use axum::{Router, routing::get};
//!
//! let users = PlainProvider::new("local", "demo")
//!     .with_user_password("bob", "builder", ["admin"])
//!     .unwrap();
//! let auth = Authenticator::builder().provider(users).build().unwrap();
//! let app: Router = Router::new()
//!     .route("/admin", get(|p: Principal| async move { p.username.clone() }))
//!     .route_layer(RequireLayer::new(Requirement::role("admin"))) // runs second
//!     .route_layer(AuthLayer::new(auth)); // runs first
//! # }
//! ```
//!
//! With `tower::ServiceBuilder` the first layer named runs first:
//! `ServiceBuilder::new().layer(AuthLayer::new(auth)).layer(RequireLayer::new(..))`.
//!
//! A guard that finds no `AuthLayer` before it (the two `route_layer` calls above swapped)
//! answers 500 and logs an error saying so: a misordered guard is a bug in the application,
//! and answering 401 would send a valid user looking for a credential problem. A request the
//! layer let through without credentials ([`AuthLayer::allow_anonymous`](crate::AuthLayer::allow_anonymous))
//! gets 401 from a guard, with the layer's challenge.
//!
//! # Extractors and `RequireLayer`
//!
//! The same requirement two ways: as an extractor ([`Guarded`](extract::Guarded), for one
//! handler) and as [`RequireLayer`] (for every route of a router, and for tonic services).
//! Both answer 403 when the principal lacks the role (and 401 to a request the layer let through
//! without credentials):
//!
//! ```
//! # #[cfg(feature = "axum")]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use auth_o_tron::guard::{RequireLayer, Requirement, extract::Guarded};
//! use auth_o_tron::{AuthLayer, Authenticator, Principal, provider::PlainProvider};
//! use axum::{Router, body::Body, http::Request, routing::get};
//! use tower::ServiceExt;
//!
//! auth_o_tron::guard!(Admin = Requirement::role("admin"));
//!
//! let users = PlainProvider::new("local", "demo")
//!     .with_user_password("alice", "wonderland", ["user"])?
//!     .with_user_password("bob", "builder", ["user", "admin"])?;
//! let auth = Authenticator::builder().provider(users).build()?;
//! // An extractor: only this handler needs the role.
//! let reports = Router::new()
//!     .route("/reports", get(|admin: Guarded<Admin>| async move { admin.username.clone() }));
//! // A layer: every route of this router needs it.
//! let admin = Router::new()
//!     .route("/admin/users", get(|p: Principal| async move { p.username.clone() }))
//!     .route_layer(RequireLayer::new(Requirement::role("admin")));
//! let app = reports.merge(admin).route_layer(AuthLayer::new(auth));
//!
//! let call = |path: &str, basic: &str| {
//!     let req = Request::get(path).header("authorization", format!("Basic {basic}"));
//!     app.clone().oneshot(req.body(Body::empty()).unwrap())
//! };
//! // base64("bob:builder") and base64("alice:wonderland").
//! let (bob, alice) = ("Ym9iOmJ1aWxkZXI=", "YWxpY2U6d29uZGVybGFuZA==");
//! for path in ["/reports", "/admin/users"] {
//!     assert_eq!(call(path, bob).await?.status(), 200);
//!     assert_eq!(call(path, alice).await?.status(), 403);
//! }
//! # Ok(()) }
//! # #[cfg(not(feature = "axum"))]
//! # fn main() {}
//! ```
//!
//! Guards answer with the default rejection (JSON body, `WWW-Authenticate`, `Cache-Control:
//! no-store`), not with a strategy set by
//! [`AuthLayer::with_rejection`](crate::AuthLayer::with_rejection): to shape every 403 the
//! same way, put the requirement on the layer itself
//! ([`AuthLayer::require`](crate::AuthLayer::require)), which rejects through its strategy.

use std::borrow::Cow;
use std::fmt;

use http::{Extensions, HeaderValue, StatusCode};

use crate::error::{AuthError, Forbidden};
use crate::reject::Rejection;
use crate::user::{Anonymous, Principal, User};

#[cfg(feature = "axum")]
pub mod extract;
mod layer;

pub use layer::{Require, RequireFuture, RequireLayer};

/// Why a guard refused a request: 401 (let through without credentials by
/// [`AuthLayer::allow_anonymous`](crate::AuthLayer::allow_anonymous)), 403 (the principal does
/// not meet the requirement) or 500 (no [`AuthLayer`](crate::AuthLayer) ran before the guard).
/// Rendered by the same code as the layer's own rejections: the JSON body, `Cache-Control:
/// no-store` and, for 401 and scope 403s, a `WWW-Authenticate` challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct GuardRejection {
    error: AuthError,
    challenge: Option<HeaderValue>,
}

impl GuardRejection {
    /// Why: [`AuthError::Missing`], [`AuthError::Forbidden`] or [`AuthError::NoAuthLayer`].
    pub fn error(&self) -> &AuthError {
        &self.error
    }

    /// The HTTP status of the response.
    pub fn status(&self) -> StatusCode {
        self.error.status()
    }

    /// The body of the response (`{"error":"..."}`).
    pub fn body_text(&self) -> String {
        crate::reject::json_body(&self.error)
    }

    /// This rejection as a [`Reject`](crate::reject::Reject) strategy sees it.
    pub(crate) fn rejection(&self, grpc: bool) -> Rejection<'_> {
        Rejection {
            error: &self.error,
            challenge: self.challenge.clone(),
            grpc,
        }
    }
}

impl fmt::Display for GuardRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for GuardRejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// The guards' one decision, for [`RequireLayer`] and the extractors alike: the principal if
/// it meets `requirement` (any principal for `None`).
pub(crate) fn authorize<'a>(
    extensions: &'a Extensions,
    requirement: Option<&Requirement>,
) -> Result<&'a Principal, GuardRejection> {
    let Some(principal) = extensions.get::<Principal>() else {
        return Err(match extensions.get::<Anonymous>() {
            Some(anonymous) => GuardRejection {
                error: AuthError::Missing,
                challenge: anonymous.challenge.clone(),
            },
            None => no_auth_layer(),
        });
    };
    if let Some(requirement) = requirement {
        requirement.check(principal).map_err(|f| {
            let error = AuthError::Forbidden(f);
            // Only a missing scope has a challenge (RFC 6750 `insufficient_scope`); the
            // guard has no authenticator at hand, so it names no realm.
            let challenge = crate::challenge::realmless().for_error(&error);
            GuardRejection { error, challenge }
        })?;
    }
    Ok(principal)
}

/// A guard ran where no [`AuthLayer`](crate::AuthLayer) had been: the layers are in the wrong
/// order (or the layer is missing). Logged as an error each time, with the fix, as axum answers
/// a missing extension.
pub(crate) fn no_auth_layer() -> GuardRejection {
    tracing::error!(
        target: "auth_o_tron::guard",
        event_name = "auth.guard.no_auth_layer",
        "a guard found no AuthLayer before it, so it answers 500: add AuthLayer so that it runs \
         before the guard (axum: `.route_layer(RequireLayer::new(..)).route_layer(AuthLayer::new(auth))`, \
         the layer added last runs first; tower: `ServiceBuilder::new().layer(AuthLayer::new(auth)).layer(RequireLayer::new(..))`)"
    );
    GuardRejection {
        error: AuthError::NoAuthLayer,
        challenge: None,
    }
}

/// A [`MintedToken`](crate::mint::MintedToken) extractor behind a layer that mints nothing:
/// a programming error, answered like a missing layer (500, logged with the fix).
#[cfg(feature = "axum")]
pub(crate) fn no_minter() -> GuardRejection {
    tracing::error!(
        target: "auth_o_tron::guard",
        event_name = "auth.guard.no_minter",
        "MintedToken was extracted, but the AuthLayer before it mints nothing, so it answers \
         500: build the layer with `AuthLayer::new(auth).mint(minter)`"
    );
    GuardRejection {
        error: AuthError::NoAuthLayer,
        challenge: None,
    }
}

type Text = Cow<'static, str>;

/// What an authenticated user must have.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Requirement {
    /// This role.
    Role(Text),
    /// At least one of these roles.
    AnyRole(Vec<Text>),
    /// All of these roles.
    AllRoles(Vec<Text>),
    /// This attribute, with any value (`None`) or exactly this value.
    Attribute(Text, Option<Text>),
    /// This scope of this service (provider name).
    Scope(Text, Text),
    /// Every one of these requirements.
    All(Vec<Requirement>),
}

impl Requirement {
    /// One role.
    pub fn role(role: impl Into<Text>) -> Self {
        Requirement::Role(role.into())
    }

    /// Any of these roles.
    pub fn any_role<I: IntoIterator<Item = T>, T: Into<Text>>(roles: I) -> Self {
        Requirement::AnyRole(roles.into_iter().map(Into::into).collect())
    }

    /// All of these roles.
    pub fn all_roles<I: IntoIterator<Item = T>, T: Into<Text>>(roles: I) -> Self {
        Requirement::AllRoles(roles.into_iter().map(Into::into).collect())
    }

    /// An attribute with any value.
    pub fn attribute(key: impl Into<Text>) -> Self {
        Requirement::Attribute(key.into(), None)
    }

    /// An attribute with exactly this value.
    pub fn attribute_eq(key: impl Into<Text>, value: impl Into<Text>) -> Self {
        Requirement::Attribute(key.into(), Some(value.into()))
    }

    /// A scope of a service (the provider name the scopes are keyed by).
    pub fn scope(service: impl Into<Text>, scope: impl Into<Text>) -> Self {
        Requirement::Scope(service.into(), scope.into())
    }

    /// Checks `user`.
    pub fn check(&self, user: &User) -> Result<(), Forbidden> {
        let ok = match self {
            Requirement::Role(r) => user.has_role(r),
            Requirement::AnyRole(rs) => rs.iter().any(|r| user.has_role(r)),
            Requirement::AllRoles(rs) => rs.iter().all(|r| user.has_role(r)),
            Requirement::Attribute(k, v) => match (user.attributes.get(k.as_ref()), v) {
                (Some(have), Some(want)) => have == want,
                (Some(_), None) => true,
                (None, _) => false,
            },
            Requirement::Scope(service, scope) => {
                if user.scopes.allows(service, scope) {
                    true
                } else {
                    return Err(Forbidden::Scope(scope.to_string()));
                }
            }
            Requirement::All(all) => {
                for r in all {
                    r.check(user)?;
                }
                true
            }
        };
        if ok {
            return Ok(());
        }
        Err(match self {
            Requirement::Attribute(..) => Forbidden::Attribute,
            _ => Forbidden::Role,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::user::Scopes;

    #[test]
    fn roles_are_exact() {
        let u = User::new("a", "r").with_roles(["admin", "user"]);
        assert!(Requirement::role("admin").check(&u).is_ok());
        for near in ["Admin", "admin ", "superadmin", "аdmin", "admin\0"] {
            assert_eq!(
                Requirement::role(near.to_owned()).check(&u),
                Err(Forbidden::Role)
            );
        }
        assert!(Requirement::any_role(["x", "user"]).check(&u).is_ok());
        assert!(Requirement::all_roles(["admin", "user"]).check(&u).is_ok());
        assert!(Requirement::all_roles(["admin", "x"]).check(&u).is_err());
    }

    #[test]
    fn attributes_and_scopes() {
        let u = User::new("a", "r")
            .with_attribute("team", "ops")
            .with_scopes(Scopes::from_scope_string("api", "read"));
        assert!(Requirement::attribute("team").check(&u).is_ok());
        assert!(Requirement::attribute_eq("team", "ops").check(&u).is_ok());
        assert_eq!(
            Requirement::attribute_eq("team", "dev").check(&u),
            Err(Forbidden::Attribute)
        );
        assert!(Requirement::scope("api", "read").check(&u).is_ok());
        assert_eq!(
            Requirement::scope("api", "write").check(&u),
            Err(Forbidden::Scope("write".into()))
        );
        let all = Requirement::All(vec![
            Requirement::attribute("team"),
            Requirement::scope("api", "x"),
        ]);
        assert_eq!(all.check(&u), Err(Forbidden::Scope("x".into())));
    }
}
