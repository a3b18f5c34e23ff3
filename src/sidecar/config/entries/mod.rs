//! One entry per provider and augmenter type: the keys of its `providers[]` or `augmenters[]`
//! item (the entry's serde definition, which is also where unknown keys are found), its checks
//! and how it builds. The loader reads the keys every item has ([`ProviderKeys`],
//! [`AugmenterKeys`]), picks the entry by `type` from [`PROVIDERS`] or [`AUGMENTERS`], and
//! reads the rest with that entry's own `Deserialize`.
//!
//! Adding a provider type is one provider file and one entry here: see `CONTRIBUTING.md`.

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::ConfigError;
use crate::augment::Augmenter;
use crate::provider::Provider;
use crate::provider::chain::ChainStore;
use crate::provider::client::HttpClient;

mod augmenters;
mod jwt;
mod plain;
mod remote;

pub use augmenters::{
    AdvancedAugment, AdvancedMatch, LdapEntry, PlainAdvancedEntry, PlainAugmenterEntry,
};
pub use jwt::{JwtEntry, OpenidOfflineEntry, TokenGeneratorEntry};
pub use plain::{PlainEntry, PlainUser};
pub use remote::{ClientAuthKey, EcmwfApiEntry, EfasApiEntry, IntrospectionEntry};

/// The provider types, by `type`.
pub const PROVIDERS: &[Kind<dyn ProviderEntry>] = &[
    kind::<_, plain::PlainEntry>("plain"),
    kind::<_, jwt::JwtEntry>("jwt"),
    kind::<_, remote::IntrospectionEntry>("introspection"),
    kind::<_, remote::EcmwfApiEntry>("ecmwf-api"),
    kind::<_, remote::EfasApiEntry>("efas-api"),
    kind::<_, jwt::OpenidOfflineEntry>("openid-offline"),
    kind::<_, jwt::TokenGeneratorEntry>("ecmwf-token-generator"),
];

/// The augmenter types, by `type`.
pub const AUGMENTERS: &[Kind<dyn AugmenterEntry>] = &[
    kind::<_, augmenters::PlainAugmenterEntry>("plain"),
    kind::<_, augmenters::PlainAdvancedEntry>("plain_advanced"),
    kind::<_, augmenters::LdapEntry>("ldap"),
];

/// What an entry is built with: its item's common keys and the shared parts.
#[derive(Debug)]
#[non_exhaustive]
pub struct BuildCtx<'a> {
    /// `name`.
    pub name: &'a str,
    /// `realm`.
    pub realm: &'a str,
    /// The HTTP client remote providers share.
    pub http: &'a HttpClient,
    /// `auth.timeout_in_ms`.
    pub timeout: Duration,
    /// `cache.capacity`.
    pub cache_capacity: u64,
    /// Where openid-offline keeps refresh-token chains: the token store when `tokens` is
    /// enabled (shared by replicas), else `None` (each provider's memory).
    pub chains: Option<&'a Arc<dyn ChainStore>>,
}

impl<'a> BuildCtx<'a> {
    /// The context of the item at `at` named `name` in `realm` (neither may be empty).
    pub(super) fn item(
        &self,
        at: &str,
        name: &'a str,
        realm: &'a str,
    ) -> Result<Self, ConfigError> {
        for (key, v) in [("name", name), ("realm", realm)] {
            if v.is_empty() {
                return Err(ConfigError::key(format!("{at}.{key}"), "must not be empty"));
            }
        }
        Ok(BuildCtx {
            name,
            realm,
            ..*self
        })
    }
}

/// A provider type the sidecar can load.
pub trait ProviderEntry: fmt::Debug + Send + Sync + Any {
    /// Builds the provider, checking the entry's keys on the way. Errors name the key inside
    /// the entry (`cert_uri`); the caller adds `providers[i]`.
    fn build(&self, ctx: &BuildCtx<'_>) -> Result<Arc<dyn Provider>, ConfigError>;
    /// The URLs the provider calls, as written, with their keys (plain-HTTP ones are warned
    /// about).
    fn urls(&self) -> Vec<(&'static str, &str)> {
        Vec::new()
    }
    /// Settings that work but deserve a second look, one line each; `key` is `providers[i]`.
    fn warnings(&self, key: &str, name: &str) -> Vec<String> {
        let _ = (key, name);
        Vec::new()
    }
}

/// An augmenter type the sidecar can load.
pub trait AugmenterEntry: fmt::Debug + Send + Sync + Any {
    /// Builds the augmenter, checking the entry's keys on the way. Errors name the key inside
    /// the entry; the caller adds `augmenters[i]`.
    fn build(&self, ctx: &BuildCtx<'_>) -> Result<Arc<dyn Augmenter>, ConfigError>;
}

/// Reads one entry; paths of the keys its definition does not know go to `ignored`.
type Load<E> = fn(&Value, &mut Vec<String>) -> Result<Arc<E>, ConfigError>;

/// One loadable type: its `type` value, its reader and its schema.
pub struct Kind<E: ?Sized> {
    /// The `type` value.
    pub name: &'static str,
    load: Load<E>,
    schema: fn(&mut SchemaGenerator) -> Schema,
}

impl<E: ?Sized> fmt::Debug for Kind<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Kind").field(&self.name).finish()
    }
}

/// An entry type as the trait object its list holds.
trait Erase<E: ?Sized> {
    fn erase(self) -> Arc<E>;
}

impl<T: ProviderEntry> Erase<dyn ProviderEntry> for T {
    fn erase(self) -> Arc<dyn ProviderEntry> {
        Arc::new(self)
    }
}

impl<T: AugmenterEntry> Erase<dyn AugmenterEntry> for T {
    fn erase(self) -> Arc<dyn AugmenterEntry> {
        Arc::new(self)
    }
}

const fn kind<E: ?Sized, T: Erase<E> + DeserializeOwned + JsonSchema>(
    name: &'static str,
) -> Kind<E> {
    fn load<E: ?Sized, T: Erase<E> + DeserializeOwned>(
        v: &Value,
        ignored: &mut Vec<String>,
    ) -> Result<Arc<E>, ConfigError> {
        Ok(read::<T>(v, ignored)?.erase())
    }
    Kind {
        name,
        load: load::<E, T>,
        schema: T::json_schema,
    }
}

/// Deserialises `value` as `T`, naming the key of an error and collecting the keys `T` does not
/// know (as `a.b[0].c`, relative to `value`).
pub(super) fn read<T: DeserializeOwned>(
    value: &Value,
    ignored: &mut Vec<String>,
) -> Result<T, ConfigError> {
    let mut track = |path: serde_ignored::Path<'_>| ignored.push(key_of(&path));
    let de = serde_ignored::Deserializer::new(value, &mut track);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let key = e.path().to_string();
        ConfigError::key(
            if key == "." { String::new() } else { key },
            e.inner().to_string(),
        )
    })
}

/// A serde_ignored path as a config key: `users[0].pasword`.
fn key_of(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", key_of(parent)),
        Path::Map { parent, key } => match key_of(parent) {
            p if p.is_empty() => key.clone(),
            p => format!("{p}.{key}"),
        },
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => key_of(parent),
    }
}

/// The keys every `providers[]` item has.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
pub struct ProviderKeys {
    /// The provider type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Unique name (scopes are keyed by it).
    pub name: String,
    /// Realm of its users.
    pub realm: String,
    /// Ours: calls to this provider at once; beyond it the answer is an immediate 503
    /// (default 64 for providers that call out, unlimited for `plain` and `jwt`).
    #[serde(default)]
    pub max_concurrent_calls: Option<usize>,
}

/// The keys every `augmenters[]` item has.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
pub struct AugmenterKeys {
    /// The augmenter type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Unique name.
    pub name: String,
    /// Realm whose users it augments.
    pub realm: String,
}

/// One list item: the keys every item of its list has, and its type's entry.
#[derive(Debug)]
pub struct Item<K, E: ?Sized> {
    /// `type`, `name`, `realm` (and `max_concurrent_calls` for providers).
    pub keys: K,
    /// The keys of its type.
    pub entry: Arc<E>,
}

impl<K: Clone, E: ?Sized> Clone for Item<K, E> {
    fn clone(&self) -> Self {
        Item {
            keys: self.keys.clone(),
            entry: self.entry.clone(),
        }
    }
}

/// One `providers[]` item.
pub type ProviderConfig = Item<ProviderKeys, dyn ProviderEntry>;
/// One `augmenters[]` item.
pub type AugmenterConfig = Item<AugmenterKeys, dyn AugmenterEntry>;

impl ProviderConfig {
    /// The entry as its concrete type, e.g. `config.providers[0].entry_as::<PlainEntry>()`.
    pub fn entry_as<T: ProviderEntry>(&self) -> Option<&T> {
        (self.entry.as_ref() as &dyn Any).downcast_ref()
    }
}

/// Reads the `list` items of `root` (removing the list), each with the common keys `K` and the
/// entry its `type` names in `kinds`; unknown keys become warnings.
pub(super) fn load_list<K: DeserializeOwned, E: ?Sized>(
    root: &mut serde_json::Map<String, Value>,
    list: &str,
    kinds: &[Kind<E>],
    warnings: &mut Vec<String>,
) -> Result<Vec<Item<K, E>>, ConfigError> {
    let items = match root.remove(list) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(ConfigError::key(list, "must be a list")),
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = format!("{list}[{i}]");
        let ty = item.get("type").and_then(Value::as_str);
        let kind = kinds.iter().find(|k| Some(k.name) == ty).ok_or_else(|| {
            let known: Vec<_> = kinds.iter().map(|k| k.name).collect();
            let what = ty.map_or("missing".to_owned(), |t| {
                format!("{t:?} is not a type here")
            });
            ConfigError::key(
                format!("{at}.type"),
                format!("{what}; use one of {}", known.join(", ")),
            )
        })?;
        let (mut common, mut own) = (Vec::new(), Vec::new());
        let keys = read::<K>(item, &mut common).map_err(|e| e.within(&at))?;
        let entry = (kind.load)(item, &mut own).map_err(|e| e.within(&at))?;
        // A key is unknown when neither the common keys nor the entry know it.
        for key in own {
            let top = key.split(['.', '[']).next().unwrap_or("");
            if common.iter().any(|c| c == top) {
                warnings.push(format!("unknown key `{at}.{key}` is ignored"));
            }
        }
        out.push(Item { keys, entry });
    }
    Ok(out)
}

fn list_schema<K: JsonSchema, E: ?Sized>(g: &mut SchemaGenerator, kinds: &[Kind<E>]) -> Schema {
    let common = g.subschema_for::<K>();
    let one_of: Vec<Schema> = kinds
        .iter()
        .map(|k| {
            let own = (k.schema)(g);
            json_schema!({
                "allOf": [common, own, {"properties": {"type": {"const": k.name}}}]
            })
        })
        .collect();
    json_schema!({ "oneOf": one_of })
}

impl JsonSchema for ProviderConfig {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ProviderConfig".into()
    }
    fn json_schema(g: &mut SchemaGenerator) -> Schema {
        list_schema::<ProviderKeys, _>(g, PROVIDERS)
    }
}

impl JsonSchema for AugmenterConfig {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "AugmenterConfig".into()
    }
    fn json_schema(g: &mut SchemaGenerator) -> Schema {
        list_schema::<AugmenterKeys, _>(g, AUGMENTERS)
    }
}

/// A string or a list of strings.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum OneOrMany {
    /// One value.
    One(String),
    /// Several values.
    Many(Vec<String>),
}

impl OneOrMany {
    /// The values as a list.
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_schema_offers_every_type_with_its_own_keys() {
        let schema = serde_json::to_value(schemars::schema_for!(super::super::Config)).unwrap();
        let kinds = |def: &str| -> Vec<(String, serde_json::Value)> {
            schema["$defs"][def]["oneOf"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| {
                    let name = k["allOf"][2]["properties"]["type"]["const"]
                        .as_str()
                        .unwrap();
                    (name.to_owned(), k["allOf"][1]["properties"].clone())
                })
                .collect()
        };
        let providers = kinds("ProviderConfig");
        let names: Vec<_> = providers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "plain",
                "jwt",
                "introspection",
                "ecmwf-api",
                "efas-api",
                "openid-offline",
                "ecmwf-token-generator"
            ]
        );
        for (name, keys) in &providers[5..] {
            assert!(
                keys.get("issuer").is_some() && keys.get("audience").is_some(),
                "{name}"
            );
        }
        let augmenters = kinds("AugmenterConfig");
        assert_eq!(augmenters[2].0, "ldap");
        assert!(augmenters[2].1.get("filters").is_some());
    }
}
