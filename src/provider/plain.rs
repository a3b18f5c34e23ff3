//! `plain`: static users for HTTP Basic.
//!
//! Passwords are Argon2 PHC strings (`password_hash`, recommended) or legacy plaintext
//! (`password`, compared as SHA-256 digests in constant time). Every check costs the same work,
//! whether the user is unknown, a plaintext user or an Argon2 user: when any Argon2 user is
//! configured, each check runs exactly one Argon2 verification (a dummy one of the same
//! parameters where the user has no hash), so response times do not tell which users exist.
//! Argon2 runs on the blocking pool with at most two verifications at a time, so a flood of
//! Basic requests cannot starve the runtime.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

use super::{BoxFuture, Identity, Locality, Provider, ProviderError, ProviderInfo};
use crate::credentials::Scheme;
use crate::user::User;

/// At most this many Argon2 verifications run at once, per provider.
const ARGON2_CONCURRENCY: usize = 2;

/// A stored password.
#[derive(Clone)]
enum Secret {
    Argon2(Arc<PasswordHash>),
    Plain([u8; 32]),
}

#[derive(Clone)]
struct Entry {
    secret: Secret,
    roles: Vec<String>,
}

/// Why a static user could not be added.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PlainConfigError {
    /// The `password_hash` is not an Argon2 PHC string.
    BadHash(String),
    /// The username is empty or contains `:`.
    BadUsername(String),
    /// The same username twice.
    Duplicate(String),
}

impl fmt::Display for PlainConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlainConfigError::BadHash(u) => {
                write!(
                    f,
                    "user {u:?}: password_hash is not an Argon2 PHC string ($argon2id$...)"
                )
            }
            PlainConfigError::BadUsername(u) => {
                write!(
                    f,
                    "username {u:?} must be non-empty and must not contain ':'"
                )
            }
            PlainConfigError::Duplicate(u) => write!(f, "user {u:?} is listed twice"),
        }
    }
}

impl std::error::Error for PlainConfigError {}

/// Static users checked against HTTP Basic credentials.
#[derive(Clone)]
pub struct PlainProvider {
    info: ProviderInfo,
    users: HashMap<String, Entry>,
    dummy: Option<Arc<PasswordHash>>,
    permits: Arc<Semaphore>,
}

impl fmt::Debug for PlainProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlainProvider")
            .field("name", &self.info.name)
            .field("realm", &self.info.realm)
            .field("users", &self.users.len())
            .finish_non_exhaustive()
    }
}

impl PlainProvider {
    /// A provider named `name` for `realm`, with no users yet.
    pub fn new(name: impl Into<String>, realm: impl Into<String>) -> Self {
        PlainProvider {
            info: ProviderInfo::new(name, "plain", realm, Scheme::Basic),
            users: HashMap::new(),
            dummy: None,
            permits: Arc::new(Semaphore::new(ARGON2_CONCURRENCY)),
        }
    }

    /// Adds a user whose password is an Argon2 PHC string (`$argon2id$v=19$...`).
    pub fn with_user_hash<I, R>(
        mut self,
        username: &str,
        phc: &str,
        roles: I,
    ) -> Result<Self, PlainConfigError>
    where
        I: IntoIterator<Item = R>,
        R: Into<String>,
    {
        let hash = PasswordHash::new(phc)
            .ok()
            .filter(|h| h.algorithm.as_str().starts_with("argon2"))
            .ok_or_else(|| PlainConfigError::BadHash(username.to_owned()))?;
        let hash = Arc::new(hash);
        if self.dummy.is_none() {
            self.dummy = Some(dummy_like(&hash));
        }
        self.insert(username, Secret::Argon2(hash), roles)?;
        Ok(self)
    }

    /// Adds a user with a legacy plaintext password (auth-o-tron's `password`). Prefer
    /// [`with_user_hash`](Self::with_user_hash).
    pub fn with_user_password<I, R>(
        mut self,
        username: &str,
        password: &str,
        roles: I,
    ) -> Result<Self, PlainConfigError>
    where
        I: IntoIterator<Item = R>,
        R: Into<String>,
    {
        self.insert(
            username,
            Secret::Plain(Sha256::digest(password.as_bytes()).into()),
            roles,
        )?;
        Ok(self)
    }

    fn insert<I, R>(
        &mut self,
        username: &str,
        secret: Secret,
        roles: I,
    ) -> Result<(), PlainConfigError>
    where
        I: IntoIterator<Item = R>,
        R: Into<String>,
    {
        if username.is_empty() || username.contains(':') {
            return Err(PlainConfigError::BadUsername(username.to_owned()));
        }
        if self.users.contains_key(username) {
            return Err(PlainConfigError::Duplicate(username.to_owned()));
        }
        let mut unique: Vec<String> = Vec::new();
        for role in roles.into_iter().map(Into::into) {
            if !unique.contains(&role) {
                unique.push(role);
            }
        }
        self.users.insert(
            username.to_owned(),
            Entry {
                secret,
                roles: unique,
            },
        );
        Ok(())
    }

    /// Number of configured users.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether no user is configured.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    async fn check(&self, credential: &str) -> Result<Identity, ProviderError> {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(credential)
            .map_err(|_| ProviderError::invalid("Invalid base64 in Basic auth"))?;
        let text = String::from_utf8(raw)
            .map_err(|_| ProviderError::invalid("Invalid UTF-8 in Basic auth"))?;
        let (username, password) = text
            .split_once(':')
            .ok_or_else(|| ProviderError::invalid("No username in Basic credentials"))?;
        let entry = self.users.get(username);
        // Every check costs the same, so timing tells nothing about which users exist: with any
        // Argon2 user configured, each check runs exactly one Argon2 verification (the user's own
        // hash, else a dummy of the same parameters, also for plaintext users), plus one digest
        // comparison (against the plaintext user's digest, else a dummy one).
        let stored_digest = match entry.map(|e| &e.secret) {
            Some(Secret::Plain(d)) => *d,
            _ => [0; 32],
        };
        let given: [u8; 32] = Sha256::digest(password.as_bytes()).into();
        let digest_ok = bool::from(given.ct_eq(&stored_digest));
        let argon2_target = match entry.map(|e| &e.secret) {
            Some(Secret::Argon2(h)) => Some(h.clone()),
            _ => self.dummy.clone(),
        };
        let argon2_ok = match argon2_target {
            Some(hash) => {
                let _permit = self
                    .permits
                    .acquire()
                    .await
                    .map_err(|_| ProviderError::unavailable("password verifier closed"))?;
                let password = password.as_bytes().to_vec();
                tokio::task::spawn_blocking(move || {
                    Argon2::default().verify_password(&password, &*hash).is_ok()
                })
                .await
                .map_err(|_| ProviderError::unavailable("password verification failed"))?
            }
            None => false,
        };
        let ok = match entry.map(|e| &e.secret) {
            Some(Secret::Plain(_)) => digest_ok,
            Some(Secret::Argon2(_)) => argon2_ok,
            None => false,
        };
        match entry {
            Some(e) if ok => Ok(Identity::new(
                User::new(username, self.info.realm.clone()).with_roles(e.roles.iter().cloned()),
            )),
            _ => Err(ProviderError::invalid("Wrong username or password")),
        }
    }
}

/// A hash of a random password with the same parameters as `like`, so a dummy verification
/// costs what a real one does.
fn dummy_like(like: &PasswordHash) -> Arc<PasswordHash> {
    let params = argon2::Params::try_from(like).unwrap_or_default();
    let algorithm = argon2::Algorithm::new(like.algorithm.as_str()).unwrap_or_default();
    let hasher = Argon2::new(algorithm, argon2::Version::V0x13, params);
    let mut pw = [0u8; 16];
    let _ = getrandom::fill(&mut pw);
    let hash = hasher
        .hash_password(&pw)
        .or_else(|_| Argon2::default().hash_password(&pw))
        .expect("argon2 with default parameters always hashes");
    Arc::new(hash)
}

impl Provider for PlainProvider {
    fn info(&self) -> &ProviderInfo {
        &self.info
    }
    fn locality(&self) -> Locality {
        Locality::Local
    }
    fn authenticate<'a>(
        &'a self,
        credential: crate::credentials::Credential<'a>,
    ) -> BoxFuture<'a, Result<Identity, ProviderError>> {
        Box::pin(self.check(credential.secret()))
    }
}

/// Hashes `password` as an Argon2id PHC string with the default parameters (for configs and
/// tests).
pub fn hash_password(password: &str) -> String {
    Argon2::default()
        .hash_password(password.as_bytes())
        .expect("argon2 with default parameters always hashes")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[tokio::test]
    async fn hashed_and_plaintext_users() {
        let p = PlainProvider::new("local", "r")
            .with_user_hash(
                "alice",
                &hash_password("wonder:land"),
                ["admin", "admin", "user"],
            )
            .unwrap()
            .with_user_password("bob", "builder", Vec::<String>::new())
            .unwrap();
        let id = p.check(&basic("alice:wonder:land")).await.unwrap();
        assert_eq!(id.user.username, "alice");
        assert_eq!(id.user.realm, "r");
        assert_eq!(id.user.roles, ["admin", "user"]);
        assert!(p.check(&basic("bob:builder")).await.is_ok());
        for bad in ["alice:wonder", "bob:Builder", "carol:x", ":builder", "bob"] {
            assert!(
                matches!(p.check(&basic(bad)).await, Err(ProviderError::Invalid(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            p.check("%%%").await,
            Err(ProviderError::Invalid(_))
        ));
        let not_utf8 = base64::engine::general_purpose::STANDARD.encode([0xff, b':', b'x']);
        assert!(matches!(
            p.check(&not_utf8).await,
            Err(ProviderError::Invalid(_))
        ));
    }

    /// Median wall time of `n` checks of each credential, measured round-robin so that load
    /// from other tests or processes falls on all of them alike.
    async fn medians<const N: usize>(
        p: &PlainProvider,
        creds: [&str; N],
        n: usize,
    ) -> [std::time::Duration; N] {
        let mut times = vec![Vec::with_capacity(n); N];
        for _ in 0..n {
            for (i, cred) in creds.iter().enumerate() {
                let t = std::time::Instant::now();
                assert!(p.check(cred).await.is_err());
                times[i].push(t.elapsed());
            }
        }
        std::array::from_fn(|i| {
            times[i].sort();
            times[i][n / 2]
        })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rejection_time_does_not_tell_whether_a_user_exists() {
        let p = PlainProvider::new("local", "r")
            .with_user_hash("alice", &hash_password("secret-a"), ["x"])
            .unwrap()
            .with_user_password("bob", "secret-b", ["x"])
            .unwrap();
        // Warm up the blocking pool.
        let _ = p.check(&basic("alice:nope")).await;
        let [argon2_user, plain_user, unknown] = medians(
            &p,
            [
                &basic("alice:wrong"),
                &basic("bob:wrong"),
                &basic("nobody:wrong"),
            ],
            21,
        )
        .await;
        for (what, t) in [("plaintext user", plain_user), ("unknown user", unknown)] {
            let ratio = t.as_secs_f64() / argon2_user.as_secs_f64();
            assert!(
                (0.5..=2.0).contains(&ratio),
                "{what}: {t:?} vs Argon2 user {argon2_user:?} (ratio {ratio:.2})"
            );
        }
        // Argon2 dominates: far above a digest comparison.
        assert!(
            argon2_user > std::time::Duration::from_millis(1),
            "{argon2_user:?}"
        );
    }

    #[test]
    fn config_errors() {
        assert!(matches!(
            PlainProvider::new("p", "r").with_user_hash("a", "$2y$10$bcrypt", ["x"]),
            Err(PlainConfigError::BadHash(_))
        ));
        assert!(matches!(
            PlainProvider::new("p", "r").with_user_password("a:b", "x", ["x"]),
            Err(PlainConfigError::BadUsername(_))
        ));
        let p = PlainProvider::new("p", "r")
            .with_user_password("a", "x", ["x"])
            .unwrap();
        assert!(matches!(
            p.with_user_password("a", "y", ["x"]),
            Err(PlainConfigError::Duplicate(_))
        ));
    }

    #[test]
    fn debug_hides_secrets() {
        let p = PlainProvider::new("p", "r")
            .with_user_password("a", "hunter2", ["x"])
            .unwrap();
        assert!(!format!("{p:?}").contains("hunter2"));
    }
}
