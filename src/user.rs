//! The authenticated [`User`], serialised exactly like ecmwf/auth-o-tron's `User`, and the
//! [`Principal`] handle the layer puts into request extensions.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use http::HeaderValue;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The scopes a user holds.
///
/// A user who authenticated directly (a password, an API key of their own) acts with all their
/// rights: [`Scopes::All`]. A user who presented a token that carries scopes (an OAuth2 access
/// token) acts with only those: [`Scopes::Only`], keyed by the provider (service) name, as
/// auth-o-tron does.
///
/// On the wire both are auth-o-tron's `scopes` object: `All` is `{}`, and `{}` reads back as
/// `All`. A token that carried no scope words is `Only({"provider": []})`, never `{}`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Scopes {
    /// Authenticated directly: every scope check passes.
    #[default]
    All,
    /// Authenticated by a scoped token: only these scopes, per service.
    Only(BTreeMap<String, Vec<String>>),
}

impl Scopes {
    /// Scopes granted by one service (provider name) from a space-delimited `scope` string.
    pub fn from_scope_string(service: &str, scope: &str) -> Self {
        let words = scope.split_ascii_whitespace().map(str::to_owned).collect();
        Scopes::Only(BTreeMap::from([(service.to_owned(), words)]))
    }

    /// Whether `scope` of `service` is granted. Exact, case-sensitive comparison.
    pub fn allows(&self, service: &str, scope: &str) -> bool {
        match self {
            Scopes::All => true,
            Scopes::Only(map) => map
                .get(service)
                .is_some_and(|s| s.iter().any(|x| x == scope)),
        }
    }
}

impl Serialize for Scopes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Scopes::All => BTreeMap::<String, Vec<String>>::new().serialize(s),
            Scopes::Only(map) => map.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Scopes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = BTreeMap::<String, Vec<String>>::deserialize(d)?;
        Ok(if map.is_empty() {
            Scopes::All
        } else {
            Scopes::Only(map)
        })
    }
}

fn version_one() -> i32 {
    1
}

/// An authenticated user: auth-o-tron's wire shape (`version`, `username`, `realm`, `roles`,
/// `attributes`, `scopes`, in that order).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct User {
    /// Always 1.
    #[serde(default = "version_one")]
    pub version: i32,
    /// The user name as the provider knows it.
    pub username: String,
    /// The realm of the provider that authenticated the user.
    pub realm: String,
    /// Roles, deduplicated, in the order they were granted.
    pub roles: Vec<String>,
    /// String attributes (email, claims, augmenter data).
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// What the user may do: everything, or the scopes of the token they presented.
    #[serde(default)]
    pub scopes: Scopes,
}

impl User {
    /// A user with no roles, no attributes and all scopes.
    pub fn new(username: impl Into<String>, realm: impl Into<String>) -> Self {
        User {
            version: 1,
            username: username.into(),
            realm: realm.into(),
            roles: Vec::new(),
            attributes: BTreeMap::new(),
            scopes: Scopes::All,
        }
    }

    /// Adds roles, skipping ones the user already has.
    #[must_use]
    pub fn with_roles<I, R>(mut self, roles: I) -> Self
    where
        I: IntoIterator<Item = R>,
        R: Into<String>,
    {
        self.add_roles(roles);
        self
    }

    /// Sets the scopes.
    #[must_use]
    pub fn with_scopes(mut self, scopes: Scopes) -> Self {
        self.scopes = scopes;
        self
    }

    /// Sets one attribute.
    #[must_use]
    pub fn with_attribute(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.attributes.insert(key.into(), value.into());
        self
    }

    /// Adds roles, skipping ones the user already has.
    pub fn add_roles<I, R>(&mut self, roles: I)
    where
        I: IntoIterator<Item = R>,
        R: Into<String>,
    {
        for role in roles {
            let role = role.into();
            if !self.roles.contains(&role) {
                self.roles.push(role);
            }
        }
    }

    /// Whether the user has this exact role.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}

/// What the layer inserts into the request extensions: the authenticated [`User`] behind an
/// `Arc` (cloning is a reference-count increment), with what the pipeline knows about how the
/// user authenticated.
#[derive(Clone)]
pub struct Principal(Arc<PrincipalInner>);

struct PrincipalInner {
    user: User,
    provider: Arc<str>,
    expires_at: Option<SystemTime>,
    /// The legacy header values, built (and warned about) once per principal: a cache hit
    /// reuses them.
    legacy: OnceLock<[Option<HeaderValue>; 3]>,
}

impl Principal {
    /// Wraps a user authenticated by `provider`, whose credential expires at `expires_at`.
    pub fn new(user: User, provider: impl Into<Arc<str>>, expires_at: Option<SystemTime>) -> Self {
        Principal(Arc::new(PrincipalInner {
            user,
            provider: provider.into(),
            expires_at,
            legacy: OnceLock::new(),
        }))
    }

    /// The user.
    pub fn user(&self) -> &User {
        &self.0.user
    }

    /// The name of the provider that authenticated the user.
    pub fn provider(&self) -> &str {
        &self.0.provider
    }

    /// When the presented credential stops being valid, if it says so (a JWT's `exp`).
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.0.expires_at
    }

    /// Whether the credential's own expiry has passed.
    pub(crate) fn is_expired(&self, now: SystemTime) -> bool {
        self.0.expires_at.is_some_and(|exp| exp <= now)
    }

    /// Whether both handles are the same principal (not merely equal users).
    pub(crate) fn same(&self, other: &Principal) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// The legacy `X-Auth-Username` value, or `None` (with a warning) when the name cannot be
    /// one header value (not visible ASCII). The pipeline already refuses names with control
    /// characters.
    pub fn legacy_username_header(&self) -> Option<HeaderValue> {
        self.legacy()[0].clone()
    }

    fn legacy(&self) -> &[Option<HeaderValue>; 3] {
        self.0.legacy.get_or_init(|| {
            [
                legacy_value("username", &self.0.user.username),
                legacy_value("realm", &self.0.user.realm),
                self.build_legacy_roles(),
            ]
        })
    }

    /// The legacy `X-Auth-Realm` value, or `None` (with a warning) when the realm cannot be
    /// one header value.
    pub fn legacy_realm_header(&self) -> Option<HeaderValue> {
        self.legacy()[1].clone()
    }

    /// The legacy `X-Auth-Roles` value: the roles joined with `,`. Backends split that header
    /// on commas (and trim blanks), so a role that would split differently or smuggle a line
    /// (one containing `,`, a control character, non-ASCII text, blanks at either end, or
    /// nothing) is left out of the header, with a warning; it stays in the JSON and in the
    /// minted JWT, where it is one string. A user without roles gets an empty value, as
    /// auth-o-tron sends it.
    pub fn legacy_roles_header(&self) -> Option<HeaderValue> {
        self.legacy()[2].clone()
    }

    fn build_legacy_roles(&self) -> Option<HeaderValue> {
        let mut joined = String::new();
        for role in &self.0.user.roles {
            if is_list_safe(role) {
                if !joined.is_empty() {
                    joined.push(',');
                }
                joined.push_str(role);
            } else {
                tracing::warn!(
                    event_name = "auth.legacy_header.role_dropped",
                    user = %self.0.user.username,
                    role = %role,
                    "a role that cannot be one item of X-Auth-Roles is left out of it"
                );
            }
        }
        HeaderValue::from_str(&joined).ok()
    }
}

/// What [`AuthLayer::allow_anonymous`](crate::AuthLayer::allow_anonymous) puts into the request
/// extensions instead of a [`Principal`] when it lets a request without credentials through: a
/// guard that finds it answers 401 with the layer's challenge; a guard that finds neither knows
/// no layer ran before it.
#[derive(Clone, Debug)]
pub(crate) struct Anonymous {
    /// The `WWW-Authenticate` value the layer would have sent.
    pub(crate) challenge: Option<HeaderValue>,
}

/// Whether `item` reads back as exactly itself from a comma-separated header.
fn is_list_safe(item: &str) -> bool {
    !item.is_empty()
        && item.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
        && !item.contains(',')
        && !item.starts_with(' ')
        && !item.ends_with(' ')
}

fn legacy_value(what: &'static str, value: &str) -> Option<HeaderValue> {
    // Visible ASCII and inner spaces only: no control character, no obs-text.
    let ok = !value.is_empty() && value.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
    let v = ok.then(|| HeaderValue::from_str(value).ok()).flatten();
    if v.is_none() {
        tracing::warn!(
            event_name = "auth.legacy_header.dropped",
            field = what,
            value = %value,
            "a value that cannot be a header value is left out of the legacy headers"
        );
    }
    v
}

/// Whether `name` may be a user name: not empty, no control characters (which could forge log
/// lines or header lines anywhere the name is written).
pub(crate) fn is_valid_username(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(char::is_control)
}

impl std::ops::Deref for Principal {
    type Target = User;
    fn deref(&self) -> &User {
        &self.0.user
    }
}

impl fmt::Debug for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Principal")
            .field("user", &self.0.user)
            .field("provider", &self.0.provider)
            .field("expires_at", &self.0.expires_at)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_in_auth_o_tron_field_order() {
        let user = User::new("alice", "localrealm")
            .with_roles(["user", "reader", "user"])
            .with_attribute("team", "polytope");
        assert_eq!(
            serde_json::to_string(&user).unwrap(),
            r#"{"version":1,"username":"alice","realm":"localrealm","roles":["user","reader"],"attributes":{"team":"polytope"},"scopes":{}}"#
        );
    }

    #[test]
    fn reads_auth_o_tron_json_with_defaults() {
        let user: User =
            serde_json::from_str(r#"{"username":"a","realm":"r","roles":[],"extra":1}"#).unwrap();
        assert_eq!(user.version, 1);
        assert_eq!(user.scopes, Scopes::All);
    }

    #[test]
    fn legacy_headers_never_carry_a_role_that_splits() {
        let user = User::new("alice", "r").with_roles([
            "viewer,admin",
            "ok",
            "line\r\nX-Evil: 1",
            " admin",
            "",
            "tab\tx",
            "caf\u{e9}",
            "two words",
        ]);
        let p = Principal::new(user, "p", None);
        assert_eq!(p.legacy_roles_header().unwrap(), "ok,two words");
        // The user keeps every role (JSON, minted JWT).
        assert_eq!(p.roles.len(), 8);
        let only_bad = Principal::new(User::new("a", "r").with_roles(["a,b"]), "p", None);
        assert_eq!(only_bad.legacy_roles_header().unwrap(), "");
        assert_eq!(p.legacy_username_header().unwrap(), "alice");
        assert_eq!(p.legacy_realm_header().unwrap(), "r");
        let odd = Principal::new(User::new("j\u{fc}rgen", "r"), "p", None);
        assert!(odd.legacy_username_header().is_none());
        assert!(
            !is_valid_username("a\nb")
                && !is_valid_username("")
                && is_valid_username("j\u{fc}rgen")
        );
    }

    #[test]
    fn scoped_token_only_allows_its_scopes() {
        let scopes = Scopes::from_scope_string("api", "read  write");
        assert!(scopes.allows("api", "read"));
        assert!(scopes.allows("api", "write"));
        assert!(!scopes.allows("api", "admin"));
        assert!(!scopes.allows("other", "read"));
        assert!(Scopes::All.allows("any", "thing"));
        let none = Scopes::from_scope_string("api", "");
        assert_eq!(serde_json::to_string(&none).unwrap(), r#"{"api":[]}"#);
    }
}
