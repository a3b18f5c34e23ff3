//! `ecmwf-api`: ECMWF Web-API keys ([`EcmwfApiProvider`]).

use std::sync::Arc;

use schemars::JsonSchema;
use serde::Deserialize;

use super::{BuildCtx, ConfigError, ProviderEntry, setting};
use crate::provider::{EcmwfApiProvider, Provider};

/// `type: ecmwf-api`: `Bearer <key>` or `EmailKey <email>:<key>`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
pub struct EcmwfApiEntry {
    /// Base URI, e.g. `https://api.ecmwf.int/v1`.
    pub uri: String,
    /// Ours: require the email of `EmailKey` credentials to match the account's.
    #[serde(default)]
    pub check_email: bool,
}

impl ProviderEntry for EcmwfApiEntry {
    fn build(&self, ctx: &BuildCtx<'_>) -> Result<Arc<dyn Provider>, ConfigError> {
        let p = EcmwfApiProvider::new(ctx.name, ctx.realm, self.uri.clone(), ctx.http.clone())
            .map_err(|e| setting(e, &[]))?;
        Ok(Arc::new(p.check_email(self.check_email)))
    }

    fn urls(&self) -> Vec<(&'static str, &str)> {
        vec![("uri", &self.uri)]
    }
}
