//! The scopes catalogue: which services exist and which scopes each one knows (auth-o-tron's
//! `services` section). A token holds a subset of it; a direct user holds all of it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// Why a catalogue entry or a token's scopes were refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CatalogueError {
    /// A service or scope name is empty, too long (over 64 bytes) or not printable ASCII.
    BadName(String),
    /// A service is listed twice in the catalogue.
    DuplicateService(String),
    /// A token asks for a service the catalogue does not list.
    UnknownService(String),
    /// A token asks for a scope its service does not list.
    UnknownScope {
        /// The service.
        service: String,
        /// The scope it does not know.
        scope: String,
    },
    /// A token asks for no scope at all.
    Empty,
    /// A token names a service with an empty list of scopes.
    NoScopeFor(String),
}

impl fmt::Display for CatalogueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CatalogueError::BadName(n) => write!(
                f,
                "{n:?} is not a valid name (1 to 64 visible ASCII characters)"
            ),
            CatalogueError::DuplicateService(n) => write!(f, "service {n:?} is listed twice"),
            CatalogueError::UnknownService(n) => write!(f, "unknown service {n:?}"),
            CatalogueError::UnknownScope { service, scope } => {
                write!(f, "unknown scope {scope:?} of service {service:?}")
            }
            CatalogueError::Empty => f.write_str("at least one scope is required"),
            CatalogueError::NoScopeFor(s) => write!(f, "service {s:?} lists no scope"),
        }
    }
}

impl std::error::Error for CatalogueError {}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_graphic())
}

/// The services and their scopes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Catalogue {
    services: BTreeMap<String, BTreeSet<String>>,
}

impl Catalogue {
    /// An empty catalogue (no token can hold any scope).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a service with its scopes (repeated scopes are kept once).
    pub fn service<'a>(
        mut self,
        name: &str,
        scopes: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, CatalogueError> {
        if !valid_name(name) {
            return Err(CatalogueError::BadName(name.to_owned()));
        }
        if self.services.contains_key(name) {
            return Err(CatalogueError::DuplicateService(name.to_owned()));
        }
        let mut set = BTreeSet::new();
        for s in scopes {
            if !valid_name(s) {
                return Err(CatalogueError::BadName(s.to_owned()));
            }
            set.insert(s.to_owned());
        }
        self.services.insert(name.to_owned(), set);
        Ok(self)
    }

    /// Whether no service is listed.
    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }

    /// Checks a token's scopes against the catalogue: every service and scope must be listed,
    /// and every named service needs at least one scope (and at least one service). Returns
    /// them sorted and deduplicated.
    pub fn check(
        &self,
        requested: &BTreeMap<String, Vec<String>>,
    ) -> Result<BTreeMap<String, Vec<String>>, CatalogueError> {
        let mut out = BTreeMap::new();
        for (service, scopes) in requested {
            let Some(known) = self.services.get(service) else {
                return Err(CatalogueError::UnknownService(service.clone()));
            };
            let mut set = BTreeSet::new();
            for scope in scopes {
                if !known.contains(scope) {
                    return Err(CatalogueError::UnknownScope {
                        service: service.clone(),
                        scope: scope.clone(),
                    });
                }
                set.insert(scope.clone());
            }
            if set.is_empty() {
                return Err(CatalogueError::NoScopeFor(service.clone()));
            }
            out.insert(service.clone(), set.into_iter().collect());
        }
        if out.is_empty() {
            return Err(CatalogueError::Empty);
        }
        Ok(out)
    }
    /// Only the scopes of `held` that the catalogue still offers: what a token created before
    /// a service or scope was removed from `services` may still use.
    pub fn offered(
        &self,
        mut held: BTreeMap<String, Vec<String>>,
    ) -> BTreeMap<String, Vec<String>> {
        held.retain(|service, scopes| {
            let Some(known) = self.services.get(service) else {
                return false;
            };
            scopes.retain(|scope| known.contains(scope));
            !scopes.is_empty()
        });
        held
    }

    /// Every service with all its scopes: what a direct user holds.
    pub fn all(&self) -> BTreeMap<String, Vec<String>> {
        self.services
            .iter()
            .map(|(k, v)| (k.clone(), v.iter().cloned().collect()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_hold_a_named_subset_of_the_catalogue() {
        let c = Catalogue::new()
            .service("polytope", ["read", "write"])
            .unwrap()
            .service("mars", ["read"])
            .unwrap();
        let req = |s: &str, v: &[&str]| {
            BTreeMap::from([(s.to_owned(), v.iter().map(|x| (*x).to_owned()).collect())])
        };
        assert_eq!(
            c.check(&req("polytope", &["write", "read", "write"]))
                .unwrap(),
            req("polytope", &["read", "write"])
        );
        assert_eq!(
            c.check(&req("nope", &["read"])).unwrap_err().to_string(),
            "unknown service \"nope\""
        );
        assert_eq!(
            c.check(&req("mars", &["write"])).unwrap_err().to_string(),
            "unknown scope \"write\" of service \"mars\""
        );
        assert_eq!(
            c.check(&req("mars", &[])),
            Err(CatalogueError::NoScopeFor("mars".into()))
        );
        assert_eq!(c.check(&BTreeMap::new()), Err(CatalogueError::Empty));
        assert_eq!(c.all()["polytope"], ["read", "write"]);
        assert!(matches!(
            Catalogue::new()
                .service("a", ["x"])
                .unwrap()
                .service("a", ["y"]),
            Err(CatalogueError::DuplicateService(_))
        ));
        assert!(matches!(
            Catalogue::new().service("a\n", ["x"]),
            Err(CatalogueError::BadName(_))
        ));
    }
}
