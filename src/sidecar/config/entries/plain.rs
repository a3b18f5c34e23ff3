//! `plain`: static users for HTTP Basic ([`PlainProvider`]).

use std::sync::Arc;

use schemars::JsonSchema;
use serde::Deserialize;

use super::{BuildCtx, ConfigError, ProviderEntry};
use crate::Secret;
use crate::provider::{PlainProvider, Provider};

/// `type: plain`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
pub struct PlainEntry {
    /// The users.
    pub users: Vec<PlainUser>,
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

impl ProviderEntry for PlainEntry {
    fn build(&self, ctx: &BuildCtx<'_>) -> Result<Arc<dyn Provider>, ConfigError> {
        let mut provider = PlainProvider::new(ctx.name, ctx.realm);
        for (j, u) in self.users.iter().enumerate() {
            let key = format!("users[{j}]");
            let roles = u.roles.iter().cloned();
            provider = match (&u.password_hash, &u.password) {
                (Some(_), Some(_)) => Err(ConfigError::key(
                    &key,
                    "give `password_hash` or `password`, not both",
                ))?,
                (Some(hash), None) => provider.with_user_hash(&u.username, hash, roles),
                (None, Some(pw)) => provider.with_user_password(&u.username, pw.expose(), roles),
                (None, None) => Err(ConfigError::key(
                    &key,
                    "needs `password_hash` (or legacy `password`)",
                ))?,
            }
            .map_err(|e| ConfigError::key(key, e.to_string()))?;
        }
        Ok(Arc::new(provider))
    }

    fn warnings(&self, key: &str, _: &str) -> Vec<String> {
        self.users
            .iter()
            .enumerate()
            .filter(|(_, u)| u.password.is_some())
            .map(|(j, _)| {
                format!(
                    "{key}.users[{j}]: plaintext `password` is deprecated; use `password_hash` \
                     (cargo run --example hash_password)"
                )
            })
            .collect()
    }
}
