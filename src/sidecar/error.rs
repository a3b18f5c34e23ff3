//! [`ConfigError`]: why a configuration was refused, named by its key. A leaf module, so that
//! the parts the config builds (rules, trusted proxies) report errors without depending on the
//! config module that builds them.

use std::fmt;
use std::path::PathBuf;

use crate::provider::BuildError;

/// Why a configuration was refused. Every variant names what to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        message: String,
    },
    /// Not valid YAML.
    Yaml(String),
    /// A key has a wrong or missing value.
    Key {
        /// The key, e.g. `providers[0].users`.
        key: String,
        /// What is wrong.
        message: String,
    },
}

impl ConfigError {
    pub(crate) fn key(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Key {
            key: key.into(),
            message: message.into(),
        }
    }

    /// The same error with its key inside `prefix` (`cert_uri` in `providers[2]` becomes
    /// `providers[2].cert_uri`).
    pub(crate) fn within(self, prefix: &str) -> Self {
        match self {
            ConfigError::Key { key, message } => ConfigError::Key {
                key: match key.as_str() {
                    "" => prefix.to_owned(),
                    k if k.starts_with('[') => format!("{prefix}{k}"),
                    k => format!("{prefix}.{k}"),
                },
                message,
            },
            other => other,
        }
    }
}

/// A provider or augmenter error, under the key of the setting it names.
impl From<BuildError> for ConfigError {
    fn from(e: BuildError) -> Self {
        ConfigError::key(e.field().unwrap_or(""), e.to_string())
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Io { path, message } => {
                write!(f, "cannot read {}: {message}", path.display())
            }
            ConfigError::Yaml(m) => write!(f, "invalid YAML: {m}"),
            ConfigError::Key { key, message } => write!(f, "config key `{key}`: {message}"),
        }
    }
}

impl std::error::Error for ConfigError {}
