//! The `portal` section (ours): the token portal's path, administrators, session timeouts,
//! public origin and optional OpenID Connect login. It needs `tokens.enabled`.

use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use super::load::ConfigError;
use crate::portal::{OidcSettings, PortalSettings};
use crate::provider::client::HttpClient;
use crate::secret::Secret;

/// `portal` (ours): the web page where users manage their API tokens.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
pub struct PortalConfig {
    /// Serve the portal on the app port.
    pub enabled: bool,
    /// Base path (default `/portal`).
    #[serde(default = "default_path")]
    pub path: String,
    /// Holders of any of these roles (after augmenters) see and revoke every user's tokens.
    #[serde(default)]
    pub admin_roles: Vec<String>,
    /// A session ends after this many minutes without a request (default 30).
    #[serde(default = "default_idle")]
    pub session_idle_minutes: u64,
    /// A session ends this many hours after login (default 12).
    #[serde(default = "default_max")]
    pub session_max_hours: u64,
    /// The portal's origin as browsers see it, e.g. `https://tokens.example.org`: the only
    /// `Origin` accepted on POSTs and the base of the OIDC redirect URI; `https` makes the
    /// cookie `__Host-` and `Secure`. Required with `oidc`. Without it: plain HTTP on the
    /// `Host` header's authority.
    #[serde(default)]
    pub public_url: Option<String>,
    /// Failed logins allowed per minute per username and per client address (default 5).
    #[serde(default = "default_attempts")]
    pub login_attempts_per_minute: u32,
    /// `Log in with <name>` through an OpenID Connect IdP.
    #[serde(default)]
    pub oidc: Option<PortalOidcConfig>,
}

/// `portal.oidc`: the authorization code flow with PKCE.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
pub struct PortalOidcConfig {
    /// Issuer; discovery at `{issuer}/.well-known/openid-configuration`.
    pub issuer: String,
    /// The portal's client id at the IdP (register `{public_url}{path}/oidc/callback` as its
    /// redirect URI).
    pub client_id: String,
    /// Its client secret. Prefer `AOT_PORTAL__OIDC__CLIENT_SECRET`.
    pub client_secret: Secret,
    /// Button text `Log in with <name>` (default "OpenID Connect").
    #[serde(default)]
    pub name: Option<String>,
    /// Realm of users who log in this way; its augmenters run (default `oidc`).
    #[serde(default)]
    pub realm: Option<String>,
    /// The ID token claim naming the user, who owns the tokens (default `sub`: stable;
    /// `preferred_username` reads better but some IdPs let users change it).
    #[serde(default)]
    pub username_claim: Option<String>,
}

fn default_path() -> String {
    crate::portal::DEFAULT_PATH.into()
}
fn default_idle() -> u64 {
    30
}
fn default_max() -> u64 {
    12
}
fn default_attempts() -> u32 {
    crate::portal::DEFAULT_LOGIN_ATTEMPTS_PER_MINUTE
}

impl PortalConfig {
    /// The portal's settings, refusing values that cannot work (naming the key).
    pub(crate) fn settings(&self, http: &HttpClient) -> Result<PortalSettings, ConfigError> {
        if self.session_idle_minutes == 0 || self.session_idle_minutes > 24 * 60 {
            return Err(ConfigError::key(
                "portal.session_idle_minutes",
                "must be between 1 and 1440",
            ));
        }
        if self.session_max_hours == 0 || self.session_max_hours > 24 * 30 {
            return Err(ConfigError::key(
                "portal.session_max_hours",
                "must be between 1 and 720",
            ));
        }
        if self.login_attempts_per_minute == 0 {
            return Err(ConfigError::key(
                "portal.login_attempts_per_minute",
                "must be at least 1",
            ));
        }
        let mut settings = PortalSettings {
            path: self.path.clone(),
            admin_roles: self.admin_roles.clone(),
            session_idle: Duration::from_secs(self.session_idle_minutes * 60),
            session_max: Duration::from_secs(self.session_max_hours * 3600),
            public_origin: self
                .public_url
                .as_ref()
                .map(|u| u.trim_end_matches('/').to_owned()),
            login_attempts_per_minute: self.login_attempts_per_minute,
            ..PortalSettings::default()
        };
        if let Some(o) = &self.oidc {
            if self.public_url.is_none() {
                return Err(ConfigError::key(
                    "portal.public_url",
                    "must be set when portal.oidc is (the OIDC redirect_uri is built from it)",
                ));
            }
            http.check_url("issuer", &o.issuer)
                .map_err(|e| ConfigError::key("portal.oidc.issuer", e.to_string()))?;
            let mut oidc = OidcSettings::new(
                o.issuer.clone(),
                o.client_id.clone(),
                o.client_secret.clone(),
                http.clone(),
            );
            if let Some(n) = &o.name {
                oidc = oidc.name(n.clone());
            }
            if let Some(r) = &o.realm {
                oidc = oidc.realm(r.clone());
            }
            if let Some(c) = &o.username_claim {
                oidc = oidc.username_claim(c.clone());
            }
            settings.oidc = Some(oidc);
        }
        Ok(settings)
    }
}
