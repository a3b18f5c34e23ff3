//! Shared by the benches: a provider that accepts one fixed bearer token, so the benches
//! measure the pipeline, not a provider.
#![allow(dead_code)]

use auth_o_tron::User;
use auth_o_tron::credentials::{Credential, Scheme};
use auth_o_tron::provider::{BoxFuture, Identity, Provider, ProviderError, ProviderInfo};

/// Accepts exactly this bearer token, as user `bench` in realm `bench`.
pub(crate) struct OneToken {
    token: String,
    info: ProviderInfo,
}

impl OneToken {
    pub(crate) fn new(token: String) -> Self {
        OneToken {
            token,
            info: ProviderInfo::new("tokens", "bench", "bench", Scheme::Bearer),
        }
    }
}

impl Provider for OneToken {
    fn info(&self) -> &ProviderInfo {
        &self.info
    }
    fn authenticate<'a>(
        &'a self,
        c: Credential<'a>,
    ) -> BoxFuture<'a, Result<Identity, ProviderError>> {
        let ok = c.secret() == self.token;
        Box::pin(async move {
            if ok {
                Ok(Identity::new(
                    User::new("bench", "bench").with_roles(["a", "b"]),
                ))
            } else {
                Err(ProviderError::invalid("no"))
            }
        })
    }
}
