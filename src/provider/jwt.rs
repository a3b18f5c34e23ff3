//! `jwt`: Bearer JWTs validated against a JWKS (from `cert_uri` or OIDC discovery), mapped to a
//! `User` as auth-o-tron does.
//!
//! Checks on top of jsonwebtoken's: an algorithm allowlist (asymmetric only; the key decides the
//! algorithm, never the token), `exp` required, `nbf` checked, `iat` not in the future, a leeway
//! of at most 300 s, optional `iss` (a string, never an array) and `aud` (a string or an array
//! of strings), and an optional `typ` (RFC 9068 `at+jwt`).
//!
//! Mapping: username from `preferred_username`, else `sub` (or a configured claim); roles from
//! `realm_access.roles`, `entitlements`, `resource_access.*.roles` (plus a configured claim
//! path); every other claim becomes a string attribute; scopes are the `scope` words under the
//! provider's name.
//!
//! A `jwt` provider is [local](super::Locality::Local), and it [owns](super::Provider::owns)
//! a JWT whose header names one of its keys' `kid`: the pipeline then shows the token to no
//! other provider.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};

use super::client::HttpClient;
use super::jwks::{KeySource, KeyStore};
use super::{BoxFuture, BuildError, Identity, Locality, Provider, ProviderError, ProviderInfo};
use crate::credentials::Scheme;
use crate::user::{Scopes, User};

/// Largest attribute value copied from a claim; longer ones are left out, never truncated.
const MAX_ATTRIBUTE_BYTES: usize = 4096;
/// Claims that are not copied into attributes.
const NOT_ATTRIBUTES: &[&str] = &[
    "sub",
    "scope",
    "realm_access",
    "resource_access",
    "entitlements",
];

/// Settings of a [`JwtProvider`].
#[derive(Clone, Debug)]
pub struct JwtSettings {
    /// Required `iss`, exact match.
    pub issuer: Option<String>,
    /// Accepted audiences (any of); `None` skips the check.
    pub audience: Option<Vec<String>>,
    /// Allowed algorithms (asymmetric only).
    pub algorithms: Vec<Algorithm>,
    /// Clock leeway in seconds (at most 300).
    pub leeway: u64,
    /// Required `typ` header, e.g. `at+jwt` (case-insensitive, `application/` optional).
    pub typ: Option<String>,
    /// Claim path holding the user name instead of `preferred_username`/`sub`, e.g.
    /// `["email"]` or `["ext", "login"]`. A dotted name is one key, never split.
    pub username_claim: Option<Vec<String>>,
    /// An extra claim path with a list of roles, e.g. `["groups"]` or `["app", "roles"]`.
    pub roles_claim: Option<Vec<String>>,
    /// Minimum time between refetches for an unknown `kid`.
    pub min_refetch: Duration,
    /// Age after which keys are refreshed in the background.
    pub max_key_age: Duration,
    /// How long a validated token may be cached (further capped by its `exp`).
    pub cache_ttl: Duration,
}

impl Default for JwtSettings {
    fn default() -> Self {
        JwtSettings {
            issuer: None,
            audience: None,
            algorithms: vec![
                Algorithm::RS256,
                Algorithm::RS384,
                Algorithm::RS512,
                Algorithm::PS256,
                Algorithm::PS384,
                Algorithm::PS512,
                Algorithm::ES256,
                Algorithm::ES384,
                Algorithm::EdDSA,
            ],
            leeway: 60,
            typ: None,
            username_claim: None,
            roles_claim: None,
            min_refetch: Duration::from_secs(10),
            max_key_age: Duration::from_secs(600),
            cache_ttl: Duration::from_secs(300),
        }
    }
}

/// Validates Bearer JWTs.
#[derive(Clone)]
pub struct JwtProvider {
    info: ProviderInfo,
    keys: Arc<KeyStore>,
    settings: JwtSettings,
}

impl std::fmt::Debug for JwtProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtProvider")
            .field("name", &self.info.name)
            .field("realm", &self.info.realm)
            .finish_non_exhaustive()
    }
}

impl JwtProvider {
    /// A provider named `name` for `realm`, with keys from `source`.
    pub fn new(
        name: impl Into<String>,
        realm: impl Into<String>,
        source: KeySource,
        client: HttpClient,
        settings: JwtSettings,
    ) -> Result<Self, BuildError> {
        if settings.leeway > 300 {
            return Err(BuildError::value(
                "leeway",
                "leeway must be at most 300 seconds",
            ));
        }
        if settings.algorithms.is_empty()
            || settings
                .algorithms
                .iter()
                .any(|a| matches!(a, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512))
        {
            return Err(BuildError::value(
                "algorithms",
                "algorithms must be a non-empty list of asymmetric algorithms",
            ));
        }
        match &source {
            KeySource::Uri(u) => client.check_url("cert_uri", u)?,
            KeySource::Discovery(u) => client.check_url("issuer", u)?,
        }
        let keys = Arc::new(KeyStore::new(
            source,
            client,
            settings.algorithms.clone(),
            settings.min_refetch,
            settings.max_key_age,
        ));
        Ok(JwtProvider {
            info: ProviderInfo::new(name, "jwt", realm, Scheme::Bearer)
                .cache_ttl(Some(settings.cache_ttl)),
            keys,
            settings,
        })
    }

    /// Loads the keys now (for readiness); errors are reported, not fatal.
    pub async fn preload(&self) -> Result<(), ProviderError> {
        self.keys.load().await.map(|_| ())
    }

    /// Validates an access token the IdP itself just issued to us (refresh-token providers).
    /// If it fails, our configuration and the IdP disagree; the user's credential is not at
    /// fault, so the answer is `Unavailable`, not `Invalid`.
    pub(crate) async fn check_issued(&self, token: &str) -> Result<Identity, ProviderError> {
        self.check(token).await.map_err(|e| match e {
            ProviderError::Invalid(why) => ProviderError::unavailable(format!(
                "the IdP's access token failed validation: {why}"
            )),
            other => other,
        })
    }

    /// Validates an ID token the IdP issued to the portal (same checks as a presented JWT).
    #[cfg(feature = "portal")]
    pub(crate) async fn check_id_token(&self, token: &str) -> Result<Identity, ProviderError> {
        self.check(token).await
    }

    /// Whether `token` is a JWT for us alone: its header names a `kid` and an algorithm we
    /// accept, and our keys hold that `kid` (or no keys were loaded yet, so it cannot be ruled
    /// out: until they are, such a token is ours to decide, and a 503 rather than a leak). A
    /// token under an algorithm we never accept (a Keycloak refresh token signed with HS512, say)
    /// is never ours, so `openid-offline` keeps getting its refresh tokens.
    fn binds(&self, token: &str) -> bool {
        if token.bytes().filter(|b| *b == b'.').count() != 2 {
            return false;
        }
        let Ok(header) = jsonwebtoken::decode_header(token) else {
            return false;
        };
        let Some(kid) = header.kid.as_deref() else {
            return false;
        };
        if !self.settings.algorithms.contains(&header.alg) {
            return false;
        }
        match self.keys.snapshot() {
            Some(keys) => keys.keys.iter().any(|k| k.kid.as_deref() == Some(kid)),
            None => true,
        }
    }

    /// Validates `token` and maps its claims.
    async fn check(&self, token: &str) -> Result<Identity, ProviderError> {
        let header = self.unverified_checks(token)?;
        self.verify(token, header).await
    }

    /// Everything decided before a key is looked up: the token's shape, its header (algorithm,
    /// `typ`, no `cty`) and the [`precheck`](Self::precheck) of its claims.
    pub(crate) fn unverified_checks(
        &self,
        token: &str,
    ) -> Result<jsonwebtoken::Header, ProviderError> {
        if token.split('.').count() != 3 {
            return Err(ProviderError::invalid("not a compact JWS"));
        }
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| ProviderError::invalid("malformed JWT header"))?;
        if !self.settings.algorithms.contains(&header.alg) {
            return Err(ProviderError::invalid("algorithm not allowed"));
        }
        if let Some(want) = &self.settings.typ {
            let got = header.typ.as_deref().unwrap_or("");
            let got = got.strip_prefix("application/").unwrap_or(got);
            if !got.eq_ignore_ascii_case(want) {
                return Err(ProviderError::invalid("wrong typ"));
            }
        }
        if header.cty.is_some() {
            return Err(ProviderError::invalid("nested JWTs are not accepted"));
        }
        // A JWS header carrying JWE members (RFC 7516: `enc`, `zip`, PBES2's `p2c`/`p2s`,
        // ECDH's `epk`/`apu`/`apv`, AES-GCM key wrap's `iv`/`tag`) is a JWE/JWS confusion
        // attempt (draft-ietf-oauth-rfc8725bis): refuse it rather than ignore the members.
        if has_jwe_members(token) {
            return Err(ProviderError::invalid("JWE header members in a JWS"));
        }
        self.precheck(token)?;
        Ok(header)
    }

    /// The signature and the standard claims, then [`map`](Self::map).
    async fn verify(
        &self,
        token: &str,
        header: jsonwebtoken::Header,
    ) -> Result<Identity, ProviderError> {
        let (alg, key) = self.keys.key(header.kid.as_deref(), header.alg).await?;
        let mut v = Validation::new(alg);
        v.leeway = self.settings.leeway;
        v.validate_nbf = true;
        let mut required = vec!["exp"];
        match &self.settings.audience {
            Some(aud) => {
                v.set_audience(aud);
                required.push("aud");
            }
            None => v.validate_aud = false,
        }
        if let Some(iss) = &self.settings.issuer {
            v.set_issuer(&[iss]);
            required.push("iss");
        }
        v.set_required_spec_claims(&required);
        // The error kind only: jsonwebtoken's messages may quote claim values.
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &v).map_err(|e| {
            ProviderError::invalid(
                format!("JWT rejected: {:?}", e.kind())
                    .chars()
                    .take(80)
                    .collect::<String>(),
            )
        })?;
        self.map(data.claims)
    }

    /// Cheap checks on the unverified claims, before any key lookup (which may go to the
    /// network for an unknown `kid`). They can only reject; acceptance needs the signature.
    fn precheck(&self, token: &str) -> Result<(), ProviderError> {
        let claims: Map<String, Value> = jsonwebtoken::dangerous::insecure_decode_claims(token)
            .map_err(|_| ProviderError::invalid("claims are not a JSON object"))?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        match claims.get("exp").and_then(Value::as_u64) {
            // RFC 7519 §4.1.4: the current time must be before `exp` (plus leeway).
            Some(exp) if exp.saturating_add(self.settings.leeway) > now => {}
            Some(_) => return Err(ProviderError::invalid("expired")),
            None => return Err(ProviderError::invalid("exp missing or not a number")),
        }
        if let Some(iss) = &self.settings.issuer
            && claims.get("iss").and_then(Value::as_str) != Some(iss.as_str())
        {
            return Err(ProviderError::invalid("issuer not accepted"));
        }
        Ok(())
    }

    pub(crate) fn map(&self, claims: Map<String, Value>) -> Result<Identity, ProviderError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        // Types jsonwebtoken lets through.
        match claims.get("iss") {
            None | Some(Value::String(_)) => {}
            Some(_) => return Err(ProviderError::invalid("iss is not a string")),
        }
        match claims.get("aud") {
            None | Some(Value::String(_)) => {}
            Some(Value::Array(a)) if a.iter().all(Value::is_string) => {}
            Some(_) => {
                return Err(ProviderError::invalid(
                    "aud is not a string or a list of strings",
                ));
            }
        }
        let exp = claims
            .get("exp")
            .and_then(Value::as_u64)
            .ok_or_else(|| ProviderError::invalid("exp is not a number"))?;
        match claims.get("iat") {
            None => {}
            Some(v) => {
                let iat = v
                    .as_u64()
                    .ok_or_else(|| ProviderError::invalid("iat is not a number"))?;
                if iat > now.saturating_add(self.settings.leeway) {
                    return Err(ProviderError::invalid("iat is in the future"));
                }
            }
        }
        let username = match &self.settings.username_claim {
            Some(path) => claim_at(&claims, path).and_then(Value::as_str),
            None => claims
                .get("preferred_username")
                .and_then(Value::as_str)
                .or_else(|| claims.get("sub").and_then(Value::as_str)),
        }
        .filter(|u| !u.is_empty())
        .ok_or_else(|| ProviderError::invalid("no user name claim"))?
        .to_owned();
        let mut user = User::new(username, self.info.realm.clone());
        let strings = |v: Option<&Value>| -> Vec<String> {
            v.and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
        user.add_roles(strings(
            claims.get("realm_access").and_then(|r| r.get("roles")),
        ));
        user.add_roles(strings(claims.get("entitlements")));
        if let Some(Value::Object(clients)) = claims.get("resource_access") {
            for client in clients.values() {
                user.add_roles(strings(client.get("roles")));
            }
        }
        if let Some(path) = &self.settings.roles_claim {
            user.add_roles(strings(claim_at(&claims, path)));
        }
        copy_attributes(&claims, NOT_ATTRIBUTES, &mut user);
        let scope = match claims.get("scope") {
            Some(Value::String(s)) => s.as_str(),
            _ => "",
        };
        user.scopes = Scopes::from_scope_string(&self.info.name, scope);
        Ok(Identity {
            user,
            // Clamped, never an overflow: `exp = 2^64-1` is "far future", and the cache and the
            // minted token are bounded by their own lifetimes anyway.
            expires_at: Some(super::unix_time(exp)),
        })
    }
}

/// Copies every claim not in `skip` into `user.attributes` as auth-o-tron does: strings as
/// they are, anything else as compact JSON, control characters removed. A value over 4 KiB is
/// left out rather than truncated.
pub(crate) fn copy_attributes(claims: &Map<String, Value>, skip: &[&str], user: &mut User) {
    for (k, v) in claims {
        if skip.contains(&k.as_str()) {
            continue;
        }
        let text = match v {
            Value::String(s) => s.chars().filter(|c| !c.is_control()).collect(),
            other => other
                .to_string()
                .chars()
                .filter(|c| !c.is_control())
                .collect::<String>(),
        };
        if text.len() <= MAX_ATTRIBUTE_BYTES {
            user.attributes.insert(k.clone(), text);
        }
    }
}

/// The value at `path` (object keys, one per segment) in `claims`.
fn claim_at<'a>(claims: &'a Map<String, Value>, path: &[String]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    rest.iter()
        .try_fold(claims.get(first)?, |v, seg| v.get(seg))
}

impl Provider for JwtProvider {
    fn info(&self) -> &ProviderInfo {
        &self.info
    }
    fn locality(&self) -> Locality {
        Locality::Local
    }
    fn owns(&self, credential: crate::credentials::Credential<'_>) -> bool {
        credential.scheme() == Scheme::Bearer && self.binds(credential.secret())
    }
    fn is_ready(&self) -> bool {
        self.keys.is_loaded()
    }
    fn warm_up(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {
            let _ = self.preload().await;
        })
    }
    fn authenticate<'a>(
        &'a self,
        credential: crate::credentials::Credential<'a>,
    ) -> BoxFuture<'a, Result<Identity, ProviderError>> {
        Box::pin(self.check(credential.secret()))
    }
}

/// Whether the (unverified) protected header of `token` has a member only JWE defines.
fn has_jwe_members(token: &str) -> bool {
    use base64::Engine;
    const JWE_ONLY: [&str; 9] = ["enc", "zip", "p2c", "p2s", "epk", "apu", "apv", "iv", "tag"];
    let Some(head) = token.split('.').next() else {
        return false;
    };
    let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(head) else {
        return false;
    };
    serde_json::from_slice::<Map<String, Value>>(&bytes)
        .is_ok_and(|h| JWE_ONLY.iter().any(|k| h.contains_key(*k)))
}
