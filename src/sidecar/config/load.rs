//! Reading a configuration: YAML, version conversion, `AOT_*` overrides, unknown keys, checks.

use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::{Config, ProviderConfig};

/// A loaded configuration and what was noticed on the way.
#[derive(Debug)]
pub struct Loaded {
    /// The configuration.
    pub config: Config,
    /// Unknown keys and deprecated settings, one line each.
    pub warnings: Vec<String>,
}

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

/// Keys of the string type that environment values must never turn into numbers or booleans.
const STRING_KEYS: &[&str] = &[
    "jwt.secret",
    "jwt.iss",
    "jwt.aud",
    "jwt.kid",
    "jwt.secret_file",
    "jwt.key_file",
    "server.host",
    "metrics.host",
    "logging.level",
    "logging.service_name",
    "logging.service_version",
    "version",
];

/// Parses an environment value the way figment does: booleans, numbers, `[a, b]`, `{k=v}`,
/// `"quoted"`; anything else is a string.
fn parse_env_value(raw: &str) -> Value {
    let t = raw.trim();
    if t == "true" || t == "false" {
        return Value::Bool(t == "true");
    }
    if let Ok(i) = t.parse::<i64>() {
        return Value::from(i);
    }
    if let Ok(u) = t.parse::<u64>() {
        return Value::from(u);
    }
    if let Ok(f) = t.parse::<f64>()
        && f.is_finite()
        && t.chars().any(|c| c.is_ascii_digit())
    {
        return Value::from(f);
    }
    if t.len() >= 2 && t.starts_with('"') && t.ends_with('"') {
        return Value::String(t[1..t.len() - 1].to_owned());
    }
    if t.starts_with('[') && t.ends_with(']') {
        let inner = &t[1..t.len() - 1];
        if inner.trim().is_empty() {
            return Value::Array(Vec::new());
        }
        return Value::Array(inner.split(',').map(parse_env_value).collect());
    }
    if t.starts_with('{') && t.ends_with('}') {
        let mut map = Map::new();
        for pair in t[1..t.len() - 1]
            .split(',')
            .filter(|p| !p.trim().is_empty())
        {
            let Some((k, v)) = pair.split_once('=') else {
                return Value::String(raw.to_owned());
            };
            map.insert(k.trim().to_owned(), parse_env_value(v));
        }
        return Value::Object(map);
    }
    Value::String(raw.to_owned())
}

fn set_path(root: &mut Value, path: &[String], value: Value) -> Result<(), String> {
    let (last, parents) = path.split_last().ok_or("empty key")?;
    let mut node = root;
    for seg in parents {
        node = match node {
            Value::Object(m) => m
                .entry(seg.clone())
                .or_insert_with(|| Value::Object(Map::new())),
            Value::Array(a) => {
                let i: usize = seg
                    .parse()
                    .map_err(|_| format!("`{seg}` is not a list index"))?;
                a.get_mut(i)
                    .ok_or_else(|| format!("list index {i} is out of range"))?
            }
            _ => return Err(format!("`{seg}` is inside a value that is not a mapping")),
        };
    }
    match node {
        Value::Object(m) => {
            m.insert(last.clone(), value);
            Ok(())
        }
        Value::Array(a) => {
            let i: usize = last
                .parse()
                .map_err(|_| format!("`{last}` is not a list index"))?;
            let slot = a
                .get_mut(i)
                .ok_or_else(|| format!("list index {i} is out of range"))?;
            *slot = value;
            Ok(())
        }
        _ => Err(format!("`{last}` is inside a value that is not a mapping")),
    }
}

fn get_path<'a>(root: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(root, |node, seg| match node {
        Value::Object(m) => m.get(seg),
        Value::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    })
}

/// Applies `AOT_A__B=v` as `a.b = v` (environment wins over the file).
fn apply_env(
    root: &mut Value,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    let mut vars: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with("AOT_"))
        .collect();
    vars.sort();
    for (key, raw) in vars {
        if key == "AOT_CONFIG_PATH" {
            continue;
        }
        let path: Vec<String> = key["AOT_".len()..]
            .split("__")
            .map(|s| s.to_ascii_lowercase())
            .collect();
        let dotted = path.join(".");
        let mut value = parse_env_value(&raw);
        let existing_is_string = matches!(get_path(root, &path), Some(Value::String(_)));
        if (existing_is_string || STRING_KEYS.contains(&dotted.as_str())) && !value.is_string() {
            value = Value::String(raw.clone());
        }
        set_path(root, &path, value)
            .map_err(|m| ConfigError::key(&dotted, format!("from {key}: {m}")))?;
    }
    Ok(())
}

/// auth-o-tron's v1 → v2 conversion: `bind_address: host:port` becomes `server`.
fn convert_v1(root: &mut Map<String, Value>) -> Result<(), ConfigError> {
    let bind = root
        .remove("bind_address")
        .ok_or_else(|| ConfigError::key("bind_address", "required in version 1.0.0 files"))?;
    let bind = bind
        .as_str()
        .ok_or_else(|| ConfigError::key("bind_address", "must be a string \"host:port\""))?;
    let (host, port) = bind
        .rsplit_once(':')
        .ok_or_else(|| ConfigError::key("bind_address", "must be \"host:port\""))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(ConfigError::key(
            "bind_address",
            "bind_address has empty host",
        ));
    }
    let port: u16 = port.parse().map_err(|_| {
        ConfigError::key(
            "bind_address",
            format!("port {port:?} is not a number from 0 to 65535"),
        )
    })?;
    root.insert(
        "server".into(),
        serde_json::json!({ "host": host, "port": port }),
    );
    root.insert("version".into(), Value::String("2.0.0".into()));
    Ok(())
}

const PROVIDER_KEYS: &[(&str, &[&str])] = &[
    (
        "plain",
        &["type", "name", "realm", "users", "max_concurrent_calls"],
    ),
    (
        "jwt",
        &[
            "type",
            "name",
            "realm",
            "cert_uri",
            "iam_realm",
            "issuer",
            "audience",
            "algorithms",
            "leeway",
            "typ",
            "username_claim",
            "roles_claim",
            "max_concurrent_calls",
        ],
    ),
    (
        "introspection",
        &[
            "type",
            "name",
            "realm",
            "endpoint",
            "client_id",
            "client_secret",
            "client_auth",
            "audience",
            "issuer",
            "max_concurrent_calls",
        ],
    ),
    (
        "ecmwf-api",
        &[
            "type",
            "name",
            "realm",
            "uri",
            "check_email",
            "max_concurrent_calls",
        ],
    ),
    (
        "efas-api",
        &["type", "name", "realm", "uri", "max_concurrent_calls"],
    ),
    (
        "openid-offline",
        &[
            "type",
            "name",
            "realm",
            "cert_uri",
            "public_client_id",
            "private_client_id",
            "private_client_secret",
            "iam_url",
            "issuer",
            "audience",
            "max_concurrent_calls",
        ],
    ),
    (
        "ecmwf-token-generator",
        &[
            "type",
            "name",
            "realm",
            "cert_uri",
            "client_id",
            "client_secret",
            "token_generator_url",
            "issuer",
            "audience",
            "max_concurrent_calls",
        ],
    ),
];

const AUGMENTER_KEYS: &[(&str, &[&str])] = &[
    ("plain", &["type", "name", "realm", "roles"]),
    (
        "plain_advanced",
        &["type", "name", "realm", "match", "augment"],
    ),
    (
        "ldap",
        &[
            "type",
            "name",
            "realm",
            "uri",
            "search_base",
            "ldap_password",
            "bind_dn",
            "filter",
            "filters",
        ],
    ),
];

/// Unknown keys inside tagged list entries (serde cannot report those itself).
fn unknown_in_list(
    root: &Value,
    list: &str,
    known: &[(&str, &[&str])],
    warnings: &mut Vec<String>,
) {
    let Some(Value::Array(items)) = root.get(list) else {
        return;
    };
    for (i, item) in items.iter().enumerate() {
        let Some(obj) = item.as_object() else {
            continue;
        };
        let Some(kind) = obj.get("type").and_then(Value::as_str) else {
            continue;
        };
        let Some((_, keys)) = known.iter().find(|(k, _)| *k == kind) else {
            continue;
        };
        for key in obj.keys().filter(|k| !keys.contains(&k.as_str())) {
            warnings.push(format!("unknown key `{list}[{i}].{key}` is ignored"));
        }
    }
}

impl Config {
    /// Loads `path`, then applies the process's `AOT_*` environment.
    pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Io {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        Self::from_yaml(&text, std::env::vars())
    }

    /// Parses YAML text with the given environment.
    pub fn from_yaml(
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Loaded, ConfigError> {
        let mut root: Value =
            serde_norway::from_str(text).map_err(|e| ConfigError::Yaml(e.to_string()))?;
        if !root.is_object() {
            return Err(ConfigError::Yaml("the top level must be a mapping".into()));
        }
        apply_env(&mut root, env)?;
        let obj = root.as_object_mut().expect("checked above");
        obj.remove("config_path");
        let version = match obj.get("version") {
            Some(Value::String(v)) => v.clone(),
            Some(other) => other.to_string(),
            None => return Err(ConfigError::key("version", "missing; use \"2.0.0\"")),
        };
        let mut warnings = Vec::new();
        match version.as_str() {
            "2.0.0" => {}
            "1.0.0" => {
                convert_v1(obj)?;
                warnings.push(
                    "version 1.0.0 file converted to 2.0.0 (`bind_address` became `server`)".into(),
                );
            }
            other => {
                return Err(ConfigError::key(
                    "version",
                    format!("{other:?} is not supported; use \"2.0.0\""),
                ));
            }
        }
        unknown_in_list(&root, "providers", PROVIDER_KEYS, &mut warnings);
        unknown_in_list(&root, "augmenters", AUGMENTER_KEYS, &mut warnings);
        let mut ignored = Vec::new();
        let mut track = |path: serde_ignored::Path<'_>| ignored.push(path.to_string());
        let de = serde_ignored::Deserializer::new(root, &mut track);
        let config: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            ConfigError::key(
                if key == "." {
                    "(top level)".into()
                } else {
                    key
                },
                e.inner().to_string(),
            )
        })?;
        for key in ignored {
            // serde_ignored writes `?` for the inside of an optional section.
            let key = key.replace(".?.", ".");
            warnings.push(format!("unknown key `{key}` is ignored"));
        }
        config.check(&mut warnings)?;
        Ok(Loaded { config, warnings })
    }

    fn check(&self, warnings: &mut Vec<String>) -> Result<(), ConfigError> {
        if self.providers.is_empty() {
            return Err(ConfigError::key(
                "providers",
                "at least one provider is required",
            ));
        }
        for (i, p) in self.providers.iter().enumerate() {
            let (name, _, realm) = p.describe();
            if name.is_empty() {
                return Err(ConfigError::key(
                    format!("providers[{i}].name"),
                    "must not be empty",
                ));
            }
            if realm.is_empty() {
                return Err(ConfigError::key(
                    format!("providers[{i}].realm"),
                    "must not be empty",
                ));
            }
            if self.providers[..i].iter().any(|q| q.describe().0 == name) {
                return Err(ConfigError::key(
                    format!("providers[{i}].name"),
                    format!("{name:?} is used twice"),
                ));
            }
            if let ProviderConfig::Plain { users, .. } = p {
                for (j, u) in users.iter().enumerate() {
                    let key = format!("providers[{i}].users[{j}]");
                    match (&u.password, &u.password_hash) {
                        (None, None) => return Err(ConfigError::key(key, "needs `password_hash` (or legacy `password`)")),
                        (Some(_), Some(_)) => return Err(ConfigError::key(key, "give `password_hash` or `password`, not both")),
                        (Some(_), None) => warnings.push(format!(
                            "{key}: plaintext `password` is deprecated; use `password_hash` (cargo run --example hash_password)"
                        )),
                        (None, Some(_)) => {}
                    }
                }
            }
        }
        for (i, a) in self.augmenters.iter().enumerate() {
            if a.describe().0.is_empty() {
                return Err(ConfigError::key(
                    format!("augmenters[{i}].name"),
                    "must not be empty",
                ));
            }
        }
        if self.metrics.enabled && self.metrics.port == self.server.port {
            return Err(ConfigError::key(
                "metrics.port",
                "must differ from server.port",
            ));
        }
        if self.store.as_ref().is_some_and(|s| s.enabled) {
            return Err(ConfigError::key(
                "store.enabled",
                "the token store is not supported (auth-o-tron is removing it); set it to false",
            ));
        }
        if self.auth.timeout_in_ms == 0 || self.auth.timeout_in_ms > 60_000 {
            return Err(ConfigError::key(
                "auth.timeout_in_ms",
                "must be between 1 and 60000",
            ));
        }
        if self.jwt.exp <= 0 || self.jwt.exp > 86_400 {
            return Err(ConfigError::key(
                "jwt.exp",
                "must be between 1 and 86400 seconds",
            ));
        }
        if !["trace", "debug", "info", "warn", "error"]
            .contains(&self.logging.level.to_ascii_lowercase().as_str())
        {
            return Err(ConfigError::key(
                "logging.level",
                "must be one of trace, debug, info, warn, error",
            ));
        }
        if self.cache.capacity == 0 {
            return Err(ConfigError::key(
                "cache.capacity",
                "must be greater than zero",
            ));
        }
        for (key, v) in [
            ("server.idle_timeout_ms", self.server.idle_timeout_ms),
            ("server.request_timeout_ms", self.server.request_timeout_ms),
            ("server.max_connections", self.server.max_connections as u64),
        ] {
            if v == 0 {
                return Err(ConfigError::key(key, "must be greater than zero"));
            }
        }
        if self.server.header_read_timeout_ms == 0 {
            return Err(ConfigError::key(
                "server.header_read_timeout_ms",
                "must be greater than zero",
            ));
        }
        if self.server.max_header_bytes < 8192 {
            return Err(ConfigError::key(
                "server.max_header_bytes",
                "must be at least 8192",
            ));
        }
        for (i, r) in self.rules.iter().enumerate() {
            if !r.path.starts_with('/') {
                return Err(ConfigError::key(
                    format!("rules[{i}].path"),
                    "must start with `/`",
                ));
            }
        }
        for (i, p) in self.providers.iter().enumerate() {
            if let ProviderConfig::Jwt {
                cert_uri: None,
                issuer: None,
                ..
            } = p
            {
                return Err(ConfigError::key(
                    format!("providers[{i}].cert_uri"),
                    "give `cert_uri` or `issuer` (OIDC discovery)",
                ));
            }
        }
        super::tokens::catalogue(self.services.as_deref().unwrap_or_default())?;
        if let Some(tokens) = &self.tokens {
            tokens.check()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
version: "2.0.0"
server: {port: 8080}
providers:
  - {type: plain, name: local, realm: localrealm, users: [{username: alice, password: alicepass}]}
jwt: {iss: my-issuer, exp: 3600, secret: change-me}
store: {enabled: false}
services: []
logging: {level: info, format: json}
"#;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn auth_o_tron_minimal_file_loads_with_its_defaults() {
        let l = Config::from_yaml(MINIMAL, env(&[])).unwrap();
        let c = l.config;
        assert_eq!(c.server.host, "0.0.0.0");
        assert_eq!(c.auth.timeout_in_ms, 5000);
        assert!(c.metrics.enabled);
        assert_eq!(c.metrics.port, 9090);
        assert!(l.warnings.iter().any(|w| w.contains("plaintext")));
    }

    #[test]
    fn env_overrides_win_and_keep_strings() {
        let l = Config::from_yaml(
            MINIMAL,
            env(&[
                ("AOT_JWT__ISS", "env-iss"),
                ("AOT_SERVER__PORT", "9000"),
                ("AOT_JWT__SECRET", "12345678901234567890123456789012345"),
                ("AOT_INCLUDE_LEGACY_HEADERS", "true"),
                ("AOT_CONFIG_PATH", "/etc/x.yaml"),
                ("OTHER", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(l.config.jwt.iss, "env-iss");
        assert_eq!(l.config.server.port, 9000);
        assert_eq!(
            l.config.jwt.secret.as_ref().map(crate::Secret::expose),
            Some("12345678901234567890123456789012345")
        );
        assert!(l.config.include_legacy_headers);
        assert!(l.warnings.iter().all(|w| !w.contains("config_path")));
    }

    #[test]
    fn v1_files_are_converted() {
        let v1 = MINIMAL.replace(
            "version: \"2.0.0\"\nserver: {port: 8080}",
            "version: \"1.0.0\"\nbind_address: \"[::1]:8181\"",
        );
        let c = Config::from_yaml(&v1, env(&[])).unwrap().config;
        assert_eq!((c.server.host.as_str(), c.server.port), ("::1", 8181));
        let bad = MINIMAL.replace(
            "version: \"2.0.0\"\nserver: {port: 8080}",
            "version: \"1.0.0\"\nbind_address: \":8181\"",
        );
        assert_eq!(
            Config::from_yaml(&bad, env(&[])).unwrap_err().to_string(),
            "config key `bind_address`: bind_address has empty host"
        );
    }

    #[test]
    fn errors_name_the_key_and_unknown_keys_warn() {
        let e = Config::from_yaml(&MINIMAL.replace("port: 8080", "port: eighty"), env(&[]))
            .unwrap_err();
        assert!(e.to_string().starts_with("config key `server.port`"), "{e}");
        let e = Config::from_yaml(
            &MINIMAL.replace("password: alicepass", "pasword: alicepass"),
            env(&[]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("providers[0].users[0]"), "{e}");
        let l = Config::from_yaml(&format!("{MINIMAL}\nextra_top: 1\n"), env(&[])).unwrap();
        assert!(
            l.warnings.iter().any(|w| w.contains("`extra_top`")),
            "{:?}",
            l.warnings
        );
        let l = Config::from_yaml(
            &MINIMAL.replace("realm: localrealm,", "realm: localrealm, colour: red,"),
            env(&[]),
        )
        .unwrap();
        assert!(
            l.warnings.iter().any(|w| w.contains("providers[0].colour")),
            "{:?}",
            l.warnings
        );
        let e = Config::from_yaml(&MINIMAL.replace("level: info", "level: loud"), env(&[]))
            .unwrap_err();
        assert!(e.to_string().contains("logging.level"));
        let e =
            Config::from_yaml(&MINIMAL.replace("port: 8080", "port: 9090"), env(&[])).unwrap_err();
        assert!(e.to_string().contains("metrics.port"));
        assert!(matches!(
            Config::from_yaml("- a\n- b", env(&[])),
            Err(ConfigError::Yaml(_))
        ));
        assert!(matches!(
            Config::from_yaml("a: [", env(&[])),
            Err(ConfigError::Yaml(_))
        ));
    }

    #[test]
    fn services_and_store_are_optional() {
        let text = MINIMAL.replace("store: {enabled: false}\nservices: []\n", "");
        assert!(Config::from_yaml(&text, env(&[])).is_ok());
        let e = Config::from_yaml(
            &MINIMAL.replace("enabled: false", "enabled: true"),
            env(&[]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("store.enabled"));
    }
}
