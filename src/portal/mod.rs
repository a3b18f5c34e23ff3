//! The token portal (feature `portal`): server-rendered pages where people log in with the
//! credentials the API accepts (or an OpenID Connect IdP) and list, create, copy, rotate and
//! revoke their API tokens; administrators also see and revoke everyone's.
//!
//! [`router`] gives an axum [`Router`] to mount in-process (it needs no `AuthLayer`: its pages
//! are the login) and the sidecar mounts it for a `portal:` section. Log-in goes through the
//! [`Authenticator`], so realm choice, augmenters and the result cache apply exactly as for the
//! API, and a scope-limited credential (an API token, a scoped access token) is refused.
//! Create, rotate and revoke run the same code as the JSON API (`token::manage`).
//!
//! Security properties: sessions live in the token store (the SHA-256 of an opaque id; replicas
//! share them), with idle and absolute timeouts, a new id at every login, and deletion at
//! logout; the cookie is `HttpOnly; SameSite=Strict` (`__Host-` and `Secure` over HTTPS).
//! Every POST passes a Fetch Metadata and `Origin` check and (once logged in) a per-session
//! form token compared in constant time. Every answer carries a strict CSP with no inline
//! script or style, `frame-ancestors 'none'`, `nosniff` and `Referrer-Policy: same-origin`; pages carry
//! `Cache-Control: no-store`. Failed logins are limited per username and per client address.
//! A secret appears only in the answer to the POST that made it; a reloaded create form
//! mints nothing (its single-use nonce is a `UNIQUE` column).

mod guard;
mod login;
mod oidc;
mod pages;
mod session;
mod tokens;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use crate::Authenticator;
use crate::provider::client::HttpClient;
use crate::secret::Secret;
use crate::token::{TokenSettings, TokenStore};

pub use login::DEFAULT_LOGIN_ATTEMPTS_PER_MINUTE;

/// Default base path.
pub const DEFAULT_PATH: &str = "/portal";

/// An OpenID Connect IdP for `Log in with <name>`.
#[derive(Clone)]
#[non_exhaustive]
pub struct OidcSettings {
    /// The issuer (discovery at `{issuer}/.well-known/openid-configuration`), exact `iss`.
    pub issuer: String,
    /// Our client id at the IdP (and the ID token's required audience).
    pub client_id: String,
    /// Our client secret (sent to the token endpoint with HTTP Basic).
    pub client_secret: Secret,
    /// Button text: "Log in with {name}".
    pub name: String,
    /// Realm of users logged in this way (their augmenters run).
    pub realm: String,
    /// The ID token claim that names the user (and owns their tokens). Default `sub`: stable
    /// and never reassigned, where `preferred_username` may be changed by its user at some
    /// IdPs (and so take over someone else's tokens). Opaque at some IdPs.
    pub username_claim: String,
    /// The client for discovery, keys and the token endpoint.
    pub client: HttpClient,
}

impl fmt::Debug for OidcSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcSettings")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("name", &self.name)
            .field("realm", &self.realm)
            .field("username_claim", &self.username_claim)
            .finish_non_exhaustive()
    }
}

impl OidcSettings {
    /// An IdP named "OpenID Connect", whose users are in realm `oidc`, named by `sub`.
    pub fn new(
        issuer: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: Secret,
        client: HttpClient,
    ) -> Self {
        OidcSettings {
            issuer: issuer.into(),
            client_id: client_id.into(),
            client_secret,
            name: "OpenID Connect".into(),
            realm: "oidc".into(),
            username_claim: "sub".into(),
            client,
        }
    }

    /// Sets the button's name.
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Sets the claim naming the user (default `sub`).
    #[must_use]
    pub fn username_claim(mut self, claim: impl Into<String>) -> Self {
        self.username_claim = claim.into();
        self
    }

    /// Sets the realm of its users.
    #[must_use]
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = realm.into();
        self
    }
}

/// How the portal behaves.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PortalSettings {
    /// Base path, e.g. `/portal` (no trailing slash).
    pub path: String,
    /// Holders of any of these roles see the administrators' page.
    pub admin_roles: Vec<String>,
    /// A session ends after this long without a request. Default 30 minutes.
    pub session_idle: Duration,
    /// A session ends this long after login whatever happens. Default 12 hours.
    pub session_max: Duration,
    /// The portal's origin as browsers see it (`https://tokens.example.org`): the only
    /// `Origin` accepted on POSTs, the base of the OIDC `redirect_uri`, and (when `https`) the
    /// reason for a `__Host-` `Secure` cookie. Required with `oidc`. Without it, the portal is
    /// plain HTTP on the `Host` header's authority (`http://{Host}` is the accepted `Origin`).
    pub public_origin: Option<String>,
    /// The OpenID Connect login, if any.
    pub oidc: Option<OidcSettings>,
    /// Failed logins allowed per minute, per username and per client address.
    pub login_attempts_per_minute: u32,
}

impl Default for PortalSettings {
    fn default() -> Self {
        PortalSettings {
            path: DEFAULT_PATH.into(),
            admin_roles: Vec::new(),
            session_idle: Duration::from_secs(30 * 60),
            session_max: Duration::from_secs(12 * 3600),
            public_origin: None,
            oidc: None,
            login_attempts_per_minute: DEFAULT_LOGIN_ATTEMPTS_PER_MINUTE,
        }
    }
}

/// Why [`router`] cannot build a portal.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PortalError {
    /// The token store keeps no portal sessions ([`TokenStore::portal`] is `None`).
    NoSessions,
    /// The path is not `/` followed by a non-empty path without a trailing slash.
    BadPath(String),
    /// `public_origin` is not `http(s)://host[:port]` (no path).
    BadOrigin(String),
    /// A zero timeout or attempt limit.
    Zero(&'static str),
    /// The OpenID Connect settings cannot work (e.g. a plain-HTTP issuer the client refuses).
    Oidc(String),
}

impl fmt::Display for PortalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortalError::NoSessions => f.write_str("the token store keeps no portal sessions"),
            PortalError::BadPath(p) => write!(
                f,
                "path {p:?} must start with / and have no trailing slash, query or spaces"
            ),
            PortalError::BadOrigin(o) => {
                write!(
                    f,
                    "public origin {o:?} must be http(s)://host[:port], no path"
                )
            }
            PortalError::Zero(what) => write!(f, "{what} must be greater than zero"),
            PortalError::Oidc(why) => write!(f, "oidc: {why}"),
        }
    }
}

impl std::error::Error for PortalError {}

/// What every handler shares.
pub(crate) struct Portal {
    pub(crate) store: Arc<dyn TokenStore>,
    pub(crate) tokens: TokenSettings,
    pub(crate) authenticator: Authenticator,
    pub(crate) settings: PortalSettings,
    pub(crate) limiter: login::Limiter,
    pub(crate) oidc: Option<oidc::Oidc>,
}

pub(crate) type Shared = Arc<Portal>;

impl Portal {
    /// The store's session part (`router` refused a store without one).
    pub(crate) fn sessions(
        &self,
    ) -> Result<&dyn crate::token::store::PortalStore, crate::token::StoreError> {
        self.store.portal().ok_or_else(|| {
            crate::token::StoreError::Unavailable("the token store keeps no sessions".into())
        })
    }

    /// `path` under the portal's base path.
    pub(crate) fn at(&self, path: &str) -> String {
        format!("{}{path}", self.settings.path)
    }

    /// Whether the session cookie is `__Host-` and `Secure`.
    pub(crate) fn https(&self) -> bool {
        self.settings
            .public_origin
            .as_deref()
            .is_some_and(|o| o.starts_with("https://"))
    }
}

impl PortalSettings {
    /// Refuses settings [`router`] cannot work with.
    pub fn validate(&self) -> Result<(), PortalError> {
        check(self)
    }
}

fn check(settings: &PortalSettings) -> Result<(), PortalError> {
    let p = &settings.path;
    if !p.starts_with('/')
        || p.len() < 2
        || p.ends_with('/')
        || p.contains("//")
        || !p
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-_.~".contains(&b))
    {
        return Err(PortalError::BadPath(p.clone()));
    }
    if let Some(o) = &settings.public_origin {
        let rest = o
            .strip_prefix("https://")
            .or_else(|| o.strip_prefix("http://"));
        let ok = rest.is_some_and(|r| {
            !r.is_empty() && !r.contains(['/', '?', '#', '@', ' ']) && r.is_ascii()
        });
        if !ok {
            return Err(PortalError::BadOrigin(o.clone()));
        }
    }
    if settings.oidc.is_some() && settings.public_origin.is_none() {
        return Err(PortalError::Oidc(
            "needs the public origin (the redirect URI is built from it, never from Host)".into(),
        ));
    }
    if settings.session_idle.is_zero() {
        return Err(PortalError::Zero("session idle timeout"));
    }
    if settings.session_max.is_zero() {
        return Err(PortalError::Zero("session maximum lifetime"));
    }
    if settings.login_attempts_per_minute == 0 {
        return Err(PortalError::Zero("login attempts per minute"));
    }
    Ok(())
}

/// The portal's routes under `settings.path`, over `store` (which must keep sessions: the
/// memory, SQLite and PostgreSQL stores do). `authenticator` is the one that serves the tokens
/// (its cache is evicted on revoke and rotate) and checks logins. The client address for
/// rate limits and audit lines is the connection's
/// ([`ConnectInfo`](axum::extract::ConnectInfo)`<SocketAddr>`, as
/// `into_make_service_with_connect_info` provides); without it every client shares one limit.
pub fn router(
    store: Arc<dyn TokenStore>,
    tokens: TokenSettings,
    authenticator: &Authenticator,
    settings: PortalSettings,
) -> Result<Router, PortalError> {
    check(&settings)?;
    if store.portal().is_none() {
        return Err(PortalError::NoSessions);
    }
    let base = settings.path.clone();
    let portal = Arc::new(Portal {
        limiter: login::Limiter::new(settings.login_attempts_per_minute),
        oidc: settings.oidc.clone().map(oidc::Oidc::new).transpose()?,
        store,
        tokens,
        authenticator: authenticator.clone(),
        settings,
    });
    prune_in_background(&portal);
    let at = |p: &str| format!("{base}{p}");
    let routes = Router::new()
        .route(&base, get(login::root))
        .route(&at("/"), get(login::root))
        .route(&at("/login"), get(login::page).post(login::password))
        .route(&at("/login/key"), post(login::api_key))
        .route(&at("/logout"), post(login::logout))
        .route(&at("/oidc/start"), get(oidc::start))
        .route(&at("/oidc/callback"), get(oidc::callback))
        .route(&at("/tokens"), get(tokens::list).post(tokens::create))
        .route(
            &at("/tokens/{id}/rotate"),
            get(tokens::confirm_rotate).post(tokens::rotate),
        )
        .route(
            &at("/tokens/{id}/revoke"),
            get(tokens::confirm_revoke).post(tokens::revoke),
        )
        .route(&at("/admin"), get(tokens::admin))
        .route(
            &at("/admin/{id}/revoke"),
            get(tokens::confirm_admin_revoke).post(tokens::admin_revoke),
        )
        .route(&at("/static/portal.css"), get(guard::stylesheet))
        .route(&at("/static/portal.js"), get(guard::script))
        .with_state(portal);
    Ok(routes
        // Forms are small; nothing a browser sends here comes near this.
        .layer(DefaultBodyLimit::max(16 * 1024))
        .layer(axum::middleware::map_response(guard::security_headers)))
}

/// How often ended sessions and login states are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// Deletes ended sessions and login states every [`PRUNE_EVERY`] while the router lives (the
/// task holds only a weak reference and ends with it). Outside a Tokio runtime nothing runs;
/// `tokens prune` still does it.
fn prune_in_background(portal: &Shared) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let weak = Arc::downgrade(portal);
    runtime.spawn(async move {
        let mut tick = tokio::time::interval(PRUNE_EVERY);
        loop {
            tick.tick().await;
            let Some(portal) = weak.upgrade() else {
                return;
            };
            let pruned = match portal.sessions() {
                Ok(s) => s.prune_portal(crate::token::last_used_now()).await,
                Err(e) => Err(e),
            };
            match pruned {
                Ok(n) if n > 0 => tracing::debug!(event_name = "portal.pruned", count = n),
                Ok(_) => {}
                Err(e) => tracing::warn!(event_name = "portal.prune.failed", error = %e),
            }
        }
    });
}

pub(crate) use crate::token::api::client;

/// A form-urlencoded body (or query), fields in order.
pub(crate) struct Form(Vec<(String, String)>);

impl Form {
    pub(crate) fn parse(body: &[u8]) -> Self {
        Form(url::form_urlencoded::parse(body).into_owned().collect())
    }

    /// The first value of `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every field.
    pub(crate) fn all(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}
