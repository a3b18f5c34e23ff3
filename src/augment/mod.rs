//! Augmenters add roles and attributes to an authenticated user.
//!
//! Only augmenters whose realm equals the user's realm run (exact, case-sensitive). Plain
//! ([`Stage::Concurrent`]) augmenters run concurrently on the provider's user; then
//! [`Stage::Sequential`] ones (`plain_advanced`) run one after another in configuration order,
//! each seeing what came before. Augmenters only add; a failure never fails authentication.

use std::collections::BTreeMap;
use std::fmt;

use crate::provider::BoxFuture;
use crate::user::User;

#[cfg(feature = "ldap")]
pub mod ldap;
pub mod plain;

#[cfg(feature = "ldap")]
pub use ldap::{LdapAugmenter, LdapSettings};
pub use plain::{PlainAdvancedAugmenter, PlainAugmenter};

/// When an augmenter runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Stage {
    /// With the other concurrent augmenters, on the provider's user.
    Concurrent,
    /// After all concurrent ones, in configuration order, on the user augmented so far.
    Sequential,
}

/// What an augmenter adds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Augmentation {
    /// Roles to add (duplicates are skipped).
    pub roles: Vec<String>,
    /// Attributes to set (overwriting).
    pub attributes: BTreeMap<String, String>,
}

impl Augmentation {
    /// Applies this augmentation to `user`.
    pub fn apply(self, user: &mut User) {
        user.add_roles(self.roles);
        user.attributes.extend(self.attributes);
    }
}

/// Why an augmenter failed (logged and counted, never fatal).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AugmentError(pub String);

impl fmt::Display for AugmentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AugmentError {}

/// Who an augmenter is: what logs, metrics and the sidecar's `/augmenters` show of it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AugmenterInfo {
    /// The configured name.
    pub name: String,
    /// The configuration type, e.g. `plain`, `plain_advanced`, `ldap`.
    pub kind: &'static str,
    /// The realm whose users this augmenter applies to.
    pub realm: String,
}

impl AugmenterInfo {
    /// An augmenter `name` of type `kind` for the users of `realm`.
    pub fn new(name: impl Into<String>, kind: &'static str, realm: impl Into<String>) -> Self {
        AugmenterInfo {
            name: name.into(),
            kind,
            realm: realm.into(),
        }
    }
}

/// Adds roles and attributes to users of one realm.
pub trait Augmenter: Send + Sync + 'static {
    /// Its name, type and realm.
    fn info(&self) -> &AugmenterInfo;
    /// When it runs.
    fn stage(&self) -> Stage {
        Stage::Concurrent
    }
    /// Computes what to add to `user`.
    fn augment<'a>(&'a self, user: &'a User) -> BoxFuture<'a, Result<Augmentation, AugmentError>>;
}
