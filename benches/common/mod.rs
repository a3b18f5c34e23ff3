//! Shared by the benches: a provider that accepts one fixed bearer token, so the benches
//! measure the pipeline, not a provider.
#![allow(dead_code)]

use auth_o_tron::User;
use auth_o_tron::credentials::{Credential, Scheme};
use auth_o_tron::provider::{BoxFuture, Identity, Provider, ProviderError};

/// Accepts exactly this bearer token, as user `bench` in realm `bench`.
pub(crate) struct OneToken(pub(crate) String);

impl Provider for OneToken {
    fn name(&self) -> &str {
        "tokens"
    }
    fn kind(&self) -> &str {
        "bench"
    }
    fn realm(&self) -> &str {
        "bench"
    }
    fn scheme(&self) -> Scheme {
        Scheme::Bearer
    }
    fn authenticate<'a>(
        &'a self,
        c: Credential<'a>,
    ) -> BoxFuture<'a, Result<Identity, ProviderError>> {
        let ok = c.secret() == self.0;
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
