//! `introspection`: opaque Bearer tokens checked with an RFC 7662 introspection endpoint.
//!
//! The token travels only in the POST body. `active` must be a JSON boolean (anything else means
//! the server cannot be understood: 503, never cached); `exp`, `token_type`, `aud` and `iss` are
//! checked as well. The user name is `username`, else `sub`, else `client_id`. A positive
//! answer is cached no longer than the token's `exp`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::client::HttpClient;
use super::{BoxFuture, BuildError, Identity, Provider, ProviderError, ProviderInfo};
use crate::Secret;
use crate::credentials::Scheme;
use crate::user::{Scopes, User};

/// How the client authenticates to the introspection endpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientAuth {
    /// HTTP Basic (`client_secret_basic`).
    #[default]
    Basic,
    /// Form fields `client_id` and `client_secret` (`client_secret_post`).
    Form,
}

/// Settings of an [`IntrospectionProvider`].
#[derive(Clone, Debug)]
pub struct IntrospectionSettings {
    /// The endpoint URL.
    pub endpoint: String,
    /// Our client id.
    pub client_id: String,
    /// Our client secret.
    pub client_secret: Secret,
    /// How to send them.
    pub client_auth: ClientAuth,
    /// Accepted audiences (any of); `None` skips the check.
    pub audience: Option<Vec<String>>,
    /// Required issuer, exact match.
    pub issuer: Option<String>,
    /// Maximum cache lifetime of a positive answer.
    pub cache_ttl: Duration,
}

/// Checks opaque tokens with RFC 7662 introspection.
#[derive(Clone)]
pub struct IntrospectionProvider {
    info: ProviderInfo,
    settings: IntrospectionSettings,
    client: HttpClient,
}

impl std::fmt::Debug for IntrospectionProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntrospectionProvider")
            .field("name", &self.info.name)
            .field("realm", &self.info.realm)
            .field("client_id", &self.settings.client_id)
            .finish_non_exhaustive()
    }
}

impl IntrospectionProvider {
    /// A provider named `name` for `realm`.
    pub fn new(
        name: impl Into<String>,
        realm: impl Into<String>,
        settings: IntrospectionSettings,
        client: HttpClient,
    ) -> Result<Self, BuildError> {
        client.check_url("endpoint", &settings.endpoint)?;
        Ok(IntrospectionProvider {
            info: ProviderInfo::new(name, "introspection", realm, Scheme::Bearer)
                .cache_ttl(Some(settings.cache_ttl)),
            settings,
            client,
        })
    }

    async fn check(&self, token: &str) -> Result<Identity, ProviderError> {
        let s = &self.settings;
        let mut form = vec![("token", token), ("token_type_hint", "access_token")];
        let mut req = self.client.inner().post(&s.endpoint);
        match s.client_auth {
            ClientAuth::Basic => req = req.basic_auth(&s.client_id, Some(s.client_secret.expose())),
            ClientAuth::Form => {
                form.push(("client_id", &s.client_id));
                form.push(("client_secret", s.client_secret.expose()));
            }
        }
        let res = self.client.send("introspection", req.form(&form)).await?;
        // 401/403 mean *our* client was refused: nothing is known about the token.
        res.check_status("introspection", &[], "")?;
        self.answer(&res.json("introspection")?)
    }

    /// Turns the endpoint's JSON answer into an identity or a refusal (no I/O).
    pub(crate) fn answer(&self, doc: &Value) -> Result<Identity, ProviderError> {
        let s = &self.settings;
        super::client::require_active(doc, "introspection", "token is not active")?;
        let doc = doc
            .as_object()
            .ok_or_else(|| ProviderError::unavailable("introspection: not a JSON object"))?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let exp = match doc.get("exp") {
            None => None,
            Some(v) => Some(v.as_u64().ok_or_else(|| {
                ProviderError::unavailable("introspection: `exp` is not a number")
            })?),
        };
        if exp.is_some_and(|e| e <= now) {
            return Err(ProviderError::invalid("token expired"));
        }
        if doc.get("token_type").and_then(Value::as_str) == Some("refresh_token") {
            return Err(ProviderError::invalid(
                "a refresh token is not an access token",
            ));
        }
        if let Some(want) = &s.audience {
            let ok = match doc.get("aud") {
                Some(Value::String(a)) => want.contains(a),
                Some(Value::Array(list)) => list
                    .iter()
                    .any(|a| a.as_str().is_some_and(|a| want.iter().any(|w| w == a))),
                _ => false,
            };
            if !ok {
                return Err(ProviderError::invalid("audience not accepted"));
            }
        }
        if let Some(iss) = &s.issuer
            && doc.get("iss").and_then(Value::as_str) != Some(iss.as_str())
        {
            return Err(ProviderError::invalid("issuer not accepted"));
        }
        let username = doc
            .get("username")
            .and_then(Value::as_str)
            .or_else(|| doc.get("sub").and_then(Value::as_str))
            // A client-credentials token has no user: the client is the subject.
            .or_else(|| doc.get("client_id").and_then(Value::as_str))
            .filter(|u| !u.is_empty())
            .ok_or_else(|| ProviderError::invalid("no username, sub or client_id"))?;
        let mut user = User::new(username, self.info.realm.clone());
        super::jwt::copy_attributes(doc, &["active", "scope"], &mut user);
        let scope = doc.get("scope").and_then(Value::as_str).unwrap_or("");
        user.scopes = Scopes::from_scope_string(&self.info.name, scope);
        Ok(Identity {
            user,
            expires_at: exp.map(super::unix_time),
        })
    }
}

impl Provider for IntrospectionProvider {
    fn info(&self) -> &ProviderInfo {
        &self.info
    }
    fn authenticate<'a>(
        &'a self,
        credential: crate::credentials::Credential<'a>,
    ) -> BoxFuture<'a, Result<Identity, ProviderError>> {
        Box::pin(self.check(credential.secret()))
    }
}
