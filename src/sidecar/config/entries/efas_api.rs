//! `efas-api`: EFAS user tokens ([`EfasApiProvider`]).

use std::sync::Arc;

use schemars::JsonSchema;
use serde::Deserialize;

use super::{BuildCtx, ConfigError, ProviderEntry, setting};
use crate::provider::{EfasApiProvider, Provider};

/// `type: efas-api`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
pub struct EfasApiEntry {
    /// The user-details URI.
    pub uri: String,
}

impl ProviderEntry for EfasApiEntry {
    fn build(&self, ctx: &BuildCtx<'_>) -> Result<Arc<dyn Provider>, ConfigError> {
        let p = EfasApiProvider::new(ctx.name, ctx.realm, self.uri.clone(), ctx.http.clone())
            .map_err(|e| setting(e, &[]))?;
        Ok(Arc::new(p))
    }

    fn urls(&self) -> Vec<(&'static str, &str)> {
        vec![("uri", &self.uri)]
    }
}
