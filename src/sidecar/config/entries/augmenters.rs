//! The augmenter types: `plain`, `plain_advanced` and `ldap`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use super::{AugmenterEntry, BuildCtx, ConfigError};
use crate::Secret;
use crate::augment::{
    Augmentation, Augmenter, LdapAugmenter, LdapSettings, PlainAdvancedAugmenter, PlainAugmenter,
};

/// How long LDAP roles are cached per user (auth-o-tron's value).
const LDAP_CACHE_TTL: Duration = Duration::from_secs(120);

/// `type: plain`: `roles: {role: [usernames]}`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
pub struct PlainAugmenterEntry {
    /// Role to user names.
    pub roles: BTreeMap<String, Vec<String>>,
}

impl AugmenterEntry for PlainAugmenterEntry {
    fn build(&self, ctx: &BuildCtx<'_>) -> Result<Arc<dyn Augmenter>, ConfigError> {
        Ok(Arc::new(PlainAugmenter::new(
            ctx.name,
            ctx.realm,
            self.roles.clone(),
        )))
    }
}

/// `type: plain_advanced`: match users or roles, add roles and attributes.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
pub struct PlainAdvancedEntry {
    /// What matches.
    #[serde(rename = "match")]
    pub matches: AdvancedMatch,
    /// What is added.
    pub augment: AdvancedAugment,
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

impl AugmenterEntry for PlainAdvancedEntry {
    fn build(&self, ctx: &BuildCtx<'_>) -> Result<Arc<dyn Augmenter>, ConfigError> {
        Ok(Arc::new(PlainAdvancedAugmenter::new(
            ctx.name,
            ctx.realm,
            self.matches.username.clone(),
            self.matches.role.clone(),
            Augmentation {
                roles: self.augment.roles.clone(),
                attributes: self.augment.attributes.clone(),
            },
        )))
    }
}

/// `type: ldap`: `memberOf` groups as roles.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
pub struct LdapEntry {
    /// LDAP URI.
    pub uri: String,
    /// Search base.
    pub search_base: String,
    /// Bind password.
    pub ldap_password: Secret,
    /// Bind DN (required to bind to the directory).
    #[serde(default)]
    pub bind_dn: Option<String>,
    /// DN substring filter.
    #[serde(default)]
    pub filter: Option<String>,
    /// DN path filters.
    #[serde(default)]
    pub filters: Option<Vec<String>>,
}

impl AugmenterEntry for LdapEntry {
    fn build(&self, ctx: &BuildCtx<'_>) -> Result<Arc<dyn Augmenter>, ConfigError> {
        let bind_dn = self
            .bind_dn
            .clone()
            .ok_or_else(|| ConfigError::key("bind_dn", "required to bind to the directory"))?;
        let settings = LdapSettings {
            uri: self.uri.clone(),
            search_base: self.search_base.clone(),
            bind_dn,
            password: self.ldap_password.clone(),
            filter: self.filter.clone(),
            filters: self.filters.clone(),
            timeout: ctx.timeout,
            cache_ttl: LDAP_CACHE_TTL,
        };
        let a = LdapAugmenter::new(ctx.name, ctx.realm, settings)?;
        Ok(Arc::new(a))
    }
}
