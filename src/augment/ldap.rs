//! `ldap`: roles from the `memberOf` groups of the user's directory entry, as auth-o-tron does.
//!
//! The entry is found with `(&(objectClass=person)(cn=<username>))` under `search_base`, the
//! user name escaped per RFC 4515. Each `memberOf` DN gives a role:
//! - with `filters` (DN fragments such as `OU=Teams,OU=Apps`): for each fragment found, case-
//!   insensitively and as a contiguous run, in the DN (either orientation), the path from the
//!   matched ancestor down to the group's CN, e.g. `CN=R,OU=B,OU=A,DC=x` with `OU=A` gives
//!   `/A/B/R`;
//! - with only `filter`: the CN, if the DN contains `filter` as a substring;
//! - with neither: the CN.
//!
//! One connection is bound once and reused (reconnecting after an error); results are cached
//! per user for two minutes. A failure never fails authentication: the pipeline logs it and
//! counts it.

use std::sync::Arc;
use std::time::Duration;

use ldap3::asn1::StructureTag;
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, ResultEntry, Scope};
use tokio::sync::Mutex;

use super::{AugmentError, Augmentation, Augmenter, AugmenterInfo};
use crate::provider::{BoxFuture, BuildError};
use crate::user::User;

/// Settings of an [`LdapAugmenter`].
#[derive(Clone)]
pub struct LdapSettings {
    /// `ldap://` or `ldaps://` URI.
    pub uri: String,
    /// Base of the subtree search.
    pub search_base: String,
    /// DN to bind as.
    pub bind_dn: String,
    /// Its password.
    pub password: crate::Secret,
    /// DN substring filter.
    pub filter: Option<String>,
    /// DN path filters.
    pub filters: Option<Vec<String>>,
    /// Connect and operation timeout.
    pub timeout: Duration,
    /// How long roles are cached per user.
    pub cache_ttl: Duration,
}

impl std::fmt::Debug for LdapSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LdapSettings")
            .field("uri", &self.uri)
            .field("search_base", &self.search_base)
            .field("bind_dn", &self.bind_dn)
            .finish_non_exhaustive()
    }
}

/// Adds `memberOf` groups as roles.
#[derive(Clone, Debug)]
pub struct LdapAugmenter {
    info: AugmenterInfo,
    settings: Arc<LdapSettings>,
    filters: Arc<Vec<Vec<(String, String)>>>,
    conn: Arc<Mutex<Option<Ldap>>>,
    cache: moka::sync::Cache<String, Arc<Vec<String>>>,
}

/// Escapes a value for an LDAP search filter (RFC 4515 §3).
pub fn escape_filter_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'*' | b'(' | b')' | b'\\' | 0 => out.push_str(&format!("\\{b:02x}")),
            _ if b >= 0x80 => out.push_str(&format!("\\{b:02x}")),
            _ => out.push(b as char),
        }
    }
    out
}

/// Splits a DN into `(key, value)` components, honouring `\,` escapes.
fn components(dn: &str) -> Option<Vec<(String, String)>> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut chars = dn.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            ',' => parts.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    parts.push(cur);
    parts
        .into_iter()
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=')?;
            Some((k.trim().to_owned(), v.trim().to_owned()))
        })
        .collect()
}

/// The `memberOf` values of one search result entry. The entry is the server's BER as received:
/// `SearchEntry::construct` panics on a malformed one (a DN that is not UTF-8, a missing
/// attribute list, ...), so the shape is checked here and anything unexpected gives no value.
/// Values that are not UTF-8 are skipped.
fn member_of(entry: ResultEntry) -> Vec<String> {
    // SearchResultEntry ::= [APPLICATION 4] SEQUENCE { objectName, attributes } (RFC 4511 §4.5.2)
    let Some(mut parts) = entry
        .0
        .match_id(4)
        .and_then(StructureTag::expect_constructed)
        .map(Vec::into_iter)
    else {
        return Vec::new();
    };
    let object_name = parts.next().and_then(StructureTag::expect_primitive);
    if object_name.is_none_or(|dn| std::str::from_utf8(&dn).is_err()) {
        return Vec::new();
    }
    let Some(attributes) = parts.next().and_then(StructureTag::expect_constructed) else {
        return Vec::new();
    };
    let mut values = Vec::new();
    for attribute in attributes {
        // PartialAttribute ::= SEQUENCE { type, vals SET OF value }
        let Some(mut attribute) = attribute.expect_constructed().map(Vec::into_iter) else {
            continue;
        };
        let is_member_of = attribute
            .next()
            .and_then(StructureTag::expect_primitive)
            .is_some_and(|t| t == b"memberOf");
        if !is_member_of {
            continue;
        }
        let vals = attribute.next().and_then(StructureTag::expect_constructed);
        for v in vals.into_iter().flatten() {
            if let Some(Ok(dn)) = v.expect_primitive().map(String::from_utf8) {
                values.push(dn);
            }
        }
    }
    values
}

fn same(a: &(String, String), b: &(String, String)) -> bool {
    a.0.eq_ignore_ascii_case(&b.0) && a.1.eq_ignore_ascii_case(&b.1)
}

/// The role(s) one `memberOf` DN gives.
fn roles_of(dn: &str, filter: Option<&str>, filters: &[Vec<(String, String)>]) -> Vec<String> {
    let Some(comps) = components(dn) else {
        return Vec::new();
    };
    // Attribute types are case-insensitive (RFC 4514): OpenLDAP writes `cn=`, AD `CN=`.
    let Some(cn) = comps.iter().position(|(k, _)| k.eq_ignore_ascii_case("CN")) else {
        return Vec::new();
    };
    if !filters.is_empty() {
        let mut roles = Vec::new();
        for f in filters {
            let k = f.len();
            if k == 0 || k > comps.len() {
                continue;
            }
            let reversed: Vec<_> = f.iter().rev().cloned().collect();
            for start in 0..=comps.len() - k {
                let window = &comps[start..start + k];
                let hit = window.iter().zip(f).all(|(a, b)| same(a, b))
                    || window.iter().zip(&reversed).all(|(a, b)| same(a, b));
                let top = start + k - 1;
                if hit && top >= cn {
                    let path: Vec<&str> = comps[cn..=top]
                        .iter()
                        .rev()
                        .map(|(_, v)| v.as_str())
                        .collect();
                    roles.push(format!("/{}", path.join("/")));
                }
            }
        }
        return roles;
    }
    match filter {
        Some(f) if !dn.contains(f) => Vec::new(),
        _ => vec![comps[cn].1.clone()],
    }
}

impl LdapAugmenter {
    /// An augmenter for `realm`. Malformed `filters` entries are a configuration error.
    pub fn new(
        name: impl Into<String>,
        realm: impl Into<String>,
        settings: LdapSettings,
    ) -> Result<Self, BuildError> {
        if !(settings.uri.starts_with("ldap://") || settings.uri.starts_with("ldaps://")) {
            return Err(BuildError::Url {
                field: "uri",
                url: settings.uri.clone(),
                expected: "ldap:// or ldaps://",
            });
        }
        let filters = settings
            .filters
            .iter()
            .flatten()
            .map(|f| {
                components(f).filter(|c| !c.is_empty()).ok_or_else(|| {
                    BuildError::value(
                        "filters",
                        format!("filter {f:?} is not key=value components"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let cache = moka::sync::Cache::builder()
            .max_capacity(10_000)
            .time_to_live(settings.cache_ttl)
            .build();
        Ok(LdapAugmenter {
            info: AugmenterInfo::new(name, "ldap", realm),
            settings: Arc::new(settings),
            filters: Arc::new(filters),
            conn: Arc::new(Mutex::new(None)),
            cache,
        })
    }

    async fn connection(&self) -> Result<Ldap, AugmentError> {
        let mut slot = self.conn.lock().await;
        if let Some(ldap) = slot.as_mut()
            && !ldap.is_closed()
        {
            return Ok(ldap.clone());
        }
        let s = &self.settings;
        let settings = LdapConnSettings::new().set_conn_timeout(s.timeout);
        let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &s.uri)
            .await
            .map_err(|e| AugmentError(format!("ldap connect: {e}")))?;
        ldap3::drive!(conn);
        ldap.with_timeout(s.timeout)
            .simple_bind(&s.bind_dn, s.password.expose())
            .await
            .and_then(|r| r.success())
            .map_err(|e| AugmentError(format!("ldap bind: {e}")))?;
        *slot = Some(ldap.clone());
        Ok(ldap)
    }

    async fn lookup(&self, username: &str) -> Result<Arc<Vec<String>>, AugmentError> {
        if let Some(hit) = self.cache.get(username) {
            return Ok(hit);
        }
        let mut ldap = self.connection().await?;
        let filter = format!(
            "(&(objectClass=person)(cn={}))",
            escape_filter_value(username)
        );
        let result = ldap
            .with_timeout(self.settings.timeout)
            .search(
                &self.settings.search_base,
                Scope::Subtree,
                &filter,
                vec!["memberOf"],
            )
            .await
            .and_then(|r| r.success());
        let (entries, _) = match result {
            Ok(r) => r,
            Err(e) => {
                // Drop the connection; the next lookup reconnects.
                *self.conn.lock().await = None;
                return Err(AugmentError(format!("ldap search: {e}")));
            }
        };
        let roles = Arc::new(self.entry_roles(entries));
        self.cache.insert(username.to_owned(), roles.clone());
        Ok(roles)
    }

    /// The roles the `memberOf` values of the search result `entries` give (no I/O).
    pub(crate) fn entry_roles(&self, entries: Vec<ResultEntry>) -> Vec<String> {
        let mut roles = Vec::new();
        for entry in entries {
            for dn in member_of(entry) {
                roles.extend(roles_of(
                    &dn,
                    self.settings.filter.as_deref(),
                    &self.filters,
                ));
            }
        }
        roles
    }
}

impl Augmenter for LdapAugmenter {
    fn info(&self) -> &AugmenterInfo {
        &self.info
    }
    fn augment<'a>(&'a self, user: &'a User) -> BoxFuture<'a, Result<Augmentation, AugmentError>> {
        Box::pin(async move {
            let roles = self.lookup(&user.username).await?;
            Ok(Augmentation {
                roles: roles.as_ref().clone(),
                attributes: Default::default(),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4515_escaping() {
        assert_eq!(escape_filter_value("*)(uid=*"), "\\2a\\29\\28uid=\\2a");
        assert_eq!(escape_filter_value("a\\b\0"), "a\\5cb\\00");
        assert_eq!(escape_filter_value("é"), "\\c3\\a9");
    }

    #[test]
    fn role_derivation_like_auth_o_tron() {
        let dn = "CN=R,OU=B,OU=A,DC=example,DC=org";
        assert_eq!(roles_of(dn, None, &[]), ["R"]);
        assert_eq!(roles_of(dn, Some("OU=B"), &[]), ["R"]);
        assert!(roles_of(dn, Some("OU=Z"), &[]).is_empty());
        let f = |s: &str| components(s).unwrap();
        assert_eq!(roles_of(dn, None, &[f("OU=A")]), ["/A/B/R"]);
        assert_eq!(roles_of(dn, None, &[f("ou=b,ou=a")]), ["/A/B/R"]);
        assert_eq!(
            roles_of(dn, None, &[f("OU=A,OU=B")]),
            ["/A/B/R"],
            "either orientation"
        );
        assert!(roles_of(dn, None, &[f("OU=C")]).is_empty());
        assert!(
            roles_of("OU=B,DC=x", None, &[]).is_empty(),
            "no CN, no role"
        );
        assert!(
            LdapAugmenter::new(
                "l",
                "r",
                LdapSettings {
                    uri: "ldap://x".into(),
                    search_base: "dc=x".into(),
                    bind_dn: "cn=a".into(),
                    password: "p".into(),
                    filter: None,
                    filters: Some(vec!["nonsense".into()]),
                    timeout: Duration::from_secs(1),
                    cache_ttl: Duration::from_secs(1),
                }
            )
            .is_err()
        );
    }
}
