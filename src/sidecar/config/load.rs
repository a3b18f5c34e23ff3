//! Reading a configuration: YAML, version conversion, `AOT_*` overrides, unknown keys, checks.

use std::path::Path;

use serde_json::{Map, Value};

pub use crate::sidecar::error::ConfigError;

use super::Config;
use super::entries::{self, AUGMENTERS, PROVIDERS};

/// A loaded configuration and what was noticed on the way.
#[derive(Debug)]
pub struct Loaded {
    /// The configuration.
    pub config: Config,
    /// Unknown keys and ignored settings, one line each (the warnings about values, such as a
    /// plaintext password or a short secret, are [`warnings`](super::warnings)).
    pub warnings: Vec<String>,
}

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
/// `"quoted"`; anything else is a string. A number is one only when it reads back as written
/// (`0123`, `1e3` or `1.50` stay strings), so a secret of digits reaches its key unchanged.
fn parse_env_value(raw: &str) -> Value {
    let t = raw.trim();
    if t == "true" || t == "false" {
        return Value::Bool(t == "true");
    }
    if let Ok(i) = t.parse::<i64>()
        && i.to_string() == t
    {
        return Value::from(i);
    }
    if let Ok(u) = t.parse::<u64>()
        && u.to_string() == t
    {
        return Value::from(u);
    }
    if let Ok(f) = t.parse::<f64>()
        && f.is_finite()
        && f.to_string() == t
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
///
/// Hand-written rather than figment's `Env` or config-rs's `Environment`, after weighing both:
/// our keys reach into lists (`AOT_PROVIDERS__0__CERT_URI` sets `providers[0].cert_uri`), which
/// figment's `Env` cannot (SergioBenitez/Figment#92, #113: a numeric segment is a map key) and
/// config-rs's `Environment` sets a list only whole (`list_separator`, rust-cli/config-rs#102,
/// #117), not one element's key; a value must
/// stay a string where the file has a string (a numeric-looking secret), which neither decides
/// per key; and the overlay has to run on the raw tree before the v1 conversion and before
/// `serde_ignored` reads each entry, so unknown keys and key-named errors keep working. Either
/// crate would add a dependency and still need this code around it.
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

impl Config {
    /// Loads `path`, then applies the process's `AOT_*` environment. This reads the file and
    /// checks its shape and keys; each provider's and augmenter's own checks run in
    /// [`build`](Config::build), as at startup and in `--check`.
    pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Io {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        Self::from_yaml(&text, std::env::vars())
    }

    /// Parses YAML text with the given environment. As with [`load`](Config::load), call
    /// [`build`](Config::build) to validate the providers and augmenters themselves.
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
        let providers = entries::load_list(obj, "providers", PROVIDERS, &mut warnings)?;
        let augmenters = entries::load_list(obj, "augmenters", AUGMENTERS, &mut warnings)?;
        let mut ignored = Vec::new();
        let mut config: Config = entries::read(&root, &mut ignored).map_err(|e| match e {
            ConfigError::Key { key, message } if key.is_empty() => {
                ConfigError::key("(top level)", message)
            }
            other => other,
        })?;
        for key in ignored {
            warnings.push(format!("unknown key `{key}` is ignored"));
        }
        (config.providers, config.augmenters) = (providers, augmenters);
        config.check(&mut warnings)?;
        Ok(Loaded { config, warnings })
    }

    /// The checks that span sections or have no entry of their own (items check themselves
    /// when they build).
    fn check(&self, warnings: &mut Vec<String>) -> Result<(), ConfigError> {
        let (server, level) = (&self.server, self.logging.level.to_ascii_lowercase());
        let positive = "must be greater than zero";
        let refused = [
            (
                self.providers.is_empty(),
                "providers",
                "at least one provider is required",
            ),
            (
                self.metrics.enabled && self.metrics.port == server.port,
                "metrics.port",
                "must differ from server.port",
            ),
            (
                self.store.as_ref().is_some_and(|s| s.enabled),
                "store.enabled",
                "the token store is not supported (auth-o-tron is removing it); set it to false",
            ),
            (
                !(1..=60_000).contains(&self.auth.timeout_in_ms),
                "auth.timeout_in_ms",
                "must be between 1 and 60000",
            ),
            (
                !(1..=86_400).contains(&self.jwt.exp),
                "jwt.exp",
                "must be between 1 and 86400 seconds",
            ),
            (
                !["trace", "debug", "info", "warn", "error"].contains(&level.as_str()),
                "logging.level",
                "must be one of trace, debug, info, warn, error",
            ),
            (self.cache.capacity == 0, "cache.capacity", positive),
            (
                server.idle_timeout_ms == 0,
                "server.idle_timeout_ms",
                positive,
            ),
            (
                server.request_timeout_ms == 0,
                "server.request_timeout_ms",
                positive,
            ),
            (
                server.max_connections == 0,
                "server.max_connections",
                positive,
            ),
            (
                server.header_read_timeout_ms == 0,
                "server.header_read_timeout_ms",
                positive,
            ),
            (
                server.max_header_bytes < 8192,
                "server.max_header_bytes",
                "must be at least 8192",
            ),
        ];
        if let Some((_, key, message)) = refused.into_iter().find(|(bad, ..)| *bad) {
            return Err(ConfigError::key(key, message));
        }
        for (i, r) in self.rules.iter().enumerate() {
            if !r.path.starts_with('/') {
                return Err(ConfigError::key(
                    format!("rules[{i}].path"),
                    "must start with `/`",
                ));
            }
        }
        if self.services.is_some() {
            warnings.push("`services` is accepted for compatibility and ignored".into());
        }
        Ok(())
    }
}
