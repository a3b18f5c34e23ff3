//! Authorization checks on an authenticated user: roles, attributes and scopes.
//!
//! A [`Requirement`] is checked by [`AuthLayer::require`](crate::AuthLayer::require), by
//! [`RequireLayer`] (for `route_layer` and tonic services) and by the axum extractors in
//! [`extract`] (feature `axum`). Comparisons are exact byte matches: no case folding, no
//! prefixes.

use std::borrow::Cow;

use crate::error::Forbidden;
use crate::user::User;

#[cfg(feature = "axum")]
pub mod extract;
mod layer;

pub use layer::{Require, RequireFuture, RequireLayer};

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
