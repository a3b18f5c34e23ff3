//! `ecmwf-api`: ECMWF Web-API keys, checked with `GET {uri}/who-am-i?token=<key>`.
//!
//! Accepts `Bearer <key>` and `EmailKey <email>:<key>` (the key is everything after the first
//! `:`). With `check_email`, the email of an `EmailKey` credential must equal the account's
//! (case-insensitive). 401 and 403 mean an invalid key; any other failure means the service
//! could not decide. The key never lands in the user's attributes.

use serde::Deserialize;

use super::client::HttpClient;
use super::{BoxFuture, BuildError, Identity, Provider, ProviderError, ProviderInfo};
use crate::credentials::{Credential, Scheme};
use crate::user::User;

#[derive(Deserialize)]
struct WhoAmI {
    uid: Option<String>,
    email: Option<String>,
}

/// Checks ECMWF API keys.
#[derive(Clone)]
pub struct EcmwfApiProvider {
    info: ProviderInfo,
    uri: String,
    check_email: bool,
    client: HttpClient,
}

impl std::fmt::Debug for EcmwfApiProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EcmwfApiProvider")
            .field("name", &self.info.name)
            .field("realm", &self.info.realm)
            .finish_non_exhaustive()
    }
}

impl EcmwfApiProvider {
    /// A provider calling `{uri}/who-am-i`. Successes are cached 60 s (auth-o-tron's value).
    pub fn new(
        name: impl Into<String>,
        realm: impl Into<String>,
        uri: impl Into<String>,
        client: HttpClient,
    ) -> Result<Self, BuildError> {
        let uri = uri.into().trim_end_matches('/').to_owned();
        client.check_url("uri", &uri)?;
        Ok(EcmwfApiProvider {
            info: ProviderInfo::new(name, "ecmwf-api", realm, Scheme::Bearer),
            uri,
            check_email: false,
            client,
        })
    }

    /// Requires the email of `EmailKey` credentials to match the account's.
    #[must_use]
    pub fn check_email(mut self, on: bool) -> Self {
        self.check_email = on;
        self
    }

    async fn check(&self, credential: Credential<'_>) -> Result<Identity, ProviderError> {
        let (email, key) = match credential.scheme() {
            Scheme::EmailKey => {
                let (email, key) = credential
                    .secret()
                    .split_once(':')
                    .ok_or_else(|| ProviderError::invalid("EmailKey must be <email>:<key>"))?;
                (Some(email), key)
            }
            _ => (None, credential.secret()),
        };
        if key.is_empty() {
            return Err(ProviderError::invalid("empty API key"));
        }
        let url = format!("{}/who-am-i", self.uri);
        let req = self.client.inner().get(url).query(&[("token", key)]);
        let res = self.client.send("who-am-i", req).await?;
        res.check_status("who-am-i", &[401, 403], "Invalid API token")?;
        self.answer(&res, email)
    }

    /// Turns a 2xx `who-am-i` answer into an identity or a refusal (no I/O); `email` is the
    /// one an `EmailKey` credential gave.
    pub(crate) fn answer(
        &self,
        res: &super::client::Fetched,
        email: Option<&str>,
    ) -> Result<Identity, ProviderError> {
        let who: WhoAmI = res.json("who-am-i")?;
        let uid = who
            .uid
            .filter(|u| !u.is_empty())
            .ok_or_else(|| ProviderError::unavailable("who-am-i: no uid"))?;
        if self.check_email
            && let Some(given) = email
            && !who
                .email
                .as_deref()
                .is_some_and(|e| e.eq_ignore_ascii_case(given))
        {
            return Err(ProviderError::invalid("email does not match the API key"));
        }
        let mut user = User::new(uid, self.info.realm.clone());
        if let Some(e) = who.email {
            user.attributes.insert("ecmwf-email".into(), e);
        }
        Ok(Identity::new(user))
    }
}

impl Provider for EcmwfApiProvider {
    fn info(&self) -> &ProviderInfo {
        &self.info
    }
    fn accepts(&self, scheme: Scheme) -> bool {
        matches!(scheme, Scheme::Bearer | Scheme::EmailKey)
    }
    fn authenticate<'a>(
        &'a self,
        credential: Credential<'a>,
    ) -> BoxFuture<'a, Result<Identity, ProviderError>> {
        Box::pin(self.check(credential))
    }
}
