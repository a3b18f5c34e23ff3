//! `efas-api`: EFAS user tokens, checked with `GET {uri}?token=<token>`.
//!
//! The answer's `username` (required), `roles` and `email` become the user, in the configured
//! realm (auth-o-tron's hard-coded `"efas"` realm is not copied). 401 and 403 mean an invalid
//! token; any other failure means the service could not decide.

use serde::Deserialize;

use super::client::HttpClient;
use super::{BoxFuture, BuildError, Identity, Provider, ProviderError, ProviderInfo};
use crate::credentials::{Credential, Scheme};
use crate::user::User;

#[derive(Deserialize)]
struct Details {
    username: String,
    #[serde(default)]
    roles: Vec<String>,
    email: Option<String>,
}

/// Checks EFAS tokens.
#[derive(Clone)]
pub struct EfasApiProvider {
    info: ProviderInfo,
    uri: String,
    client: HttpClient,
}

impl std::fmt::Debug for EfasApiProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EfasApiProvider")
            .field("name", &self.info.name)
            .field("realm", &self.info.realm)
            .finish_non_exhaustive()
    }
}

impl EfasApiProvider {
    /// A provider calling `uri`. Successes are cached 60 s (auth-o-tron's value).
    pub fn new(
        name: impl Into<String>,
        realm: impl Into<String>,
        uri: impl Into<String>,
        client: HttpClient,
    ) -> Result<Self, BuildError> {
        let uri = uri.into();
        client.check_url("uri", &uri)?;
        Ok(EfasApiProvider {
            info: ProviderInfo::new(name, "efas-api", realm, Scheme::Bearer),
            uri,
            client,
        })
    }

    async fn check(&self, token: &str) -> Result<Identity, ProviderError> {
        let req = self
            .client
            .inner()
            .get(&self.uri)
            .query(&[("token", token)]);
        let res = self.client.send("EFAS user details", req).await?;
        res.check_status("EFAS user details", &[401, 403], "Invalid API token")?;
        self.answer(&res)
    }

    /// Turns a 2xx answer into an identity or a refusal (no I/O).
    pub(crate) fn answer(&self, res: &super::client::Fetched) -> Result<Identity, ProviderError> {
        let d: Details = res.json("EFAS user details")?;
        if d.username.is_empty() {
            return Err(ProviderError::unavailable(
                "EFAS user details: empty username",
            ));
        }
        let mut user = User::new(d.username, self.info.realm.clone()).with_roles(d.roles);
        if let Some(e) = d.email {
            user.attributes.insert("email".into(), e);
        }
        Ok(Identity::new(user))
    }
}

impl Provider for EfasApiProvider {
    fn info(&self) -> &ProviderInfo {
        &self.info
    }
    fn authenticate<'a>(
        &'a self,
        credential: Credential<'a>,
    ) -> BoxFuture<'a, Result<Identity, ProviderError>> {
        Box::pin(self.check(credential.secret()))
    }
}
