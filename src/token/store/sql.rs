//! The SQL stores: one SQL text for SQLite and PostgreSQL (`$n` placeholders, `RETURNING`,
//! integer Unix seconds, JSON text columns), versioned migrations per backend, and [`open`],
//! which picks the backend from the URL scheme.
//!
//! Every write transaction starts with its write, so SQLite takes the write lock at once (and
//! waits `busy_timeout` for it) instead of failing when a read lock cannot be upgraded.
//! Migrations are embedded with `include_str!` and fed to sqlx's `Migrator` through a
//! `MigrationSource`, which needs no `sqlx-macros` (a second build of the drivers as a
//! proc-macro); the PostgreSQL migrator holds an advisory lock, so replicas may start together.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};

use super::{Conflict, NewToken, Owner, StoreError, TokenId, TokenRecord, TokenStore};

mod portal;
#[cfg(feature = "tokens-postgres")]
mod postgres;
#[cfg(feature = "tokens-sqlite")]
mod sqlite;

#[cfg(feature = "tokens-postgres")]
pub use postgres::{NOTIFY_CHANNEL, PostgresStore};
#[cfg(feature = "tokens-sqlite")]
pub use sqlite::SqliteStore;

/// The columns of a [`TokenRecord`], in [`RecordRow`] order.
const COLUMNS: &str = "id, username, realm, name, scopes, roles, attributes, created_at, \
                       expires_at, last_used_at, revoked_at, rotated_from, hint";

pub(super) const INSERT: &str = "INSERT INTO aot_tokens (id, hash, username, realm, name, scopes, \
     roles, attributes, created_at, expires_at, hint, create_nonce, rotated_from) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)";
pub(super) const REVOKE: &str = "UPDATE aot_tokens SET revoked_at = $1 \
     WHERE id = $2 AND realm = $3 AND username = $4 AND revoked_at IS NULL RETURNING id";
pub(super) const REVOKE_ID: &str = "UPDATE aot_tokens SET revoked_at = $1 \
     WHERE id = $2 AND revoked_at IS NULL RETURNING username, realm";
pub(super) const REVOKE_ALL: &str = "UPDATE aot_tokens SET revoked_at = $1 \
     WHERE realm = $2 AND username = $3 AND revoked_at IS NULL RETURNING id";
pub(super) const PRUNE: &str = "DELETE FROM aot_tokens WHERE expires_at <= $1 OR revoked_at <= $1";
/// Monotonic: a late batch (another replica, a retried flush) never moves it backwards.
pub(super) const LAST_USED: &str = "UPDATE aot_tokens SET last_used_at = CASE \
     WHEN last_used_at IS NULL OR last_used_at < $2 THEN $2 ELSE last_used_at END WHERE id = $1";

/// Refresh-token chains (`provider::chain`): load, claim (insert or compare-and-swap on the
/// generation, only when no lease runs; a lease beyond this claim's own end counts as over),
/// release (only the claim's generation; a chain never rotated is deleted), prune idle ones.
pub(super) const CHAIN_LOAD: &str =
    "SELECT generation, sealed, claimed_until FROM aot_refresh_chains WHERE chain = $1";
pub(super) const CHAIN_CLAIM_NEW: &str = "INSERT INTO aot_refresh_chains \
     (chain, generation, sealed, claimed_until, updated_at) VALUES ($1, 1, NULL, $2, $3) \
     ON CONFLICT (chain) DO NOTHING";
pub(super) const CHAIN_CLAIM: &str = "UPDATE aot_refresh_chains \
     SET generation = generation + 1, claimed_until = $3, updated_at = $4 \
     WHERE chain = $1 AND generation = $2 \
     AND (claimed_until IS NULL OR claimed_until <= $4 OR claimed_until > $3)";
pub(super) const CHAIN_RELEASE: &str = "UPDATE aot_refresh_chains \
     SET sealed = COALESCE($3, sealed), claimed_until = NULL, updated_at = $4 \
     WHERE chain = $1 AND generation = $2";
pub(super) const CHAIN_FORGET: &str =
    "DELETE FROM aot_refresh_chains WHERE chain = $1 AND generation = $2 AND sealed IS NULL";
pub(super) const CHAIN_PRUNE: &str = "DELETE FROM aot_refresh_chains WHERE updated_at <= $1";

/// `SELECT` statements, built once.
pub(super) struct Selects {
    pub(super) find: String,
    pub(super) list: String,
    pub(super) get: String,
    /// Revokes the old token of a rotation and returns it.
    pub(super) rotate_old: String,
}

pub(super) fn selects() -> &'static Selects {
    static SELECTS: std::sync::OnceLock<Selects> = std::sync::OnceLock::new();
    SELECTS.get_or_init(|| Selects {
        find: format!(
            "SELECT {COLUMNS} FROM aot_tokens \
             WHERE hash = $1 AND revoked_at IS NULL AND expires_at > $2"
        ),
        list: format!(
            "SELECT {COLUMNS} FROM aot_tokens WHERE realm = $1 AND username = $2 \
             ORDER BY created_at, id"
        ),
        get: format!(
            "SELECT {COLUMNS} FROM aot_tokens WHERE id = $1 AND realm = $2 AND username = $3"
        ),
        rotate_old: format!(
            "UPDATE aot_tokens SET revoked_at = $1 WHERE id = $2 AND realm = $3 AND username = $4 \
             AND revoked_at IS NULL AND expires_at > $1 RETURNING {COLUMNS}"
        ),
    })
}

/// A row as the drivers decode it (both decode these types alike).
pub(super) type RecordRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
    Option<String>,
    String,
);

pub(super) fn decode(row: RecordRow) -> Result<TokenRecord, StoreError> {
    let (
        id,
        username,
        realm,
        name,
        scopes,
        roles,
        attributes,
        created_at,
        expires_at,
        last,
        revoked,
        from,
        hint,
    ) = row;
    let corrupt = |what: &str| StoreError::Corrupt(format!("token {id}: {what}"));
    Ok(TokenRecord {
        id: TokenId::parse(&id).ok_or_else(|| corrupt("id"))?,
        owner: Owner { username, realm },
        name,
        scopes: serde_json::from_str(&scopes).map_err(|_| corrupt("scopes"))?,
        roles: serde_json::from_str(&roles).map_err(|_| corrupt("roles"))?,
        attributes: serde_json::from_str(&attributes).map_err(|_| corrupt("attributes"))?,
        created_at,
        expires_at,
        last_used_at: last,
        revoked_at: revoked,
        rotated_from: from
            .map(|f| TokenId::parse(&f).ok_or_else(|| corrupt("rotated_from")))
            .transpose()?,
        hint,
    })
}

/// The JSON columns of a new token.
pub(super) struct Encoded {
    pub(super) scopes: String,
    pub(super) roles: String,
    pub(super) attributes: String,
}

pub(super) fn encode(token: &NewToken) -> Encoded {
    // Maps and vectors of strings always serialise.
    let json = |v: Result<String, serde_json::Error>| v.unwrap_or_default();
    Encoded {
        scopes: json(serde_json::to_string(&token.scopes)),
        roles: json(serde_json::to_string(&token.roles)),
        attributes: json(serde_json::to_string(&token.attributes)),
    }
}

/// The record a successful insert of `token` under `id` stored.
pub(super) fn inserted(id: TokenId, token: NewToken, rotated_from: Option<TokenId>) -> TokenRecord {
    TokenRecord {
        id,
        owner: token.owner,
        name: token.name,
        scopes: token.scopes,
        roles: token.roles,
        attributes: token.attributes,
        created_at: token.created_at,
        expires_at: token.expires_at,
        last_used_at: None,
        revoked_at: None,
        rotated_from,
        hint: token.hint,
    }
}

/// Maps a driver error: unique violations to [`StoreError::Conflict`], decoding to
/// [`StoreError::Corrupt`], everything else (I/O, pool timeout, server errors) to
/// [`StoreError::Unavailable`].
pub(super) fn store_error(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            let about_nonce = db.constraint().is_some_and(|c| c.contains("nonce"))
                || db.message().contains("create_nonce");
            StoreError::Conflict(if about_nonce {
                Conflict::Nonce
            } else {
                Conflict::Hash
            })
        }
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnNotFound(_) => StoreError::Corrupt(e.to_string()),
        _ => StoreError::Unavailable(Box::new(e)),
    }
}

/// A chain store's driver error, as the provider sees it (it fails closed either way).
pub(super) fn chain_error(e: sqlx::Error) -> crate::provider::chain::ChainError {
    crate::provider::chain::ChainError::new(store_error(e))
}

/// Migrations compiled into the binary, one directory per backend. Versions may have gaps
/// (sqlx applies every embedded version the database lacks, in order, and only refuses a
/// database that applied a version this binary does not embed).
#[derive(Debug)]
pub(super) struct Embedded(pub(super) &'static [(i64, &'static str, &'static str)]);

impl<'s> MigrationSource<'s> for Embedded {
    fn resolve(
        self,
    ) -> crate::provider::BoxFuture<'s, Result<Vec<Migration>, sqlx::error::BoxDynError>> {
        let migrations = self
            .0
            .iter()
            .map(|&(version, description, sql)| {
                Migration::new(
                    version,
                    Cow::Borrowed(description),
                    MigrationType::Simple,
                    Cow::Borrowed(sql),
                    false,
                )
            })
            .collect();
        Box::pin(async move { Ok(migrations) })
    }
}

/// Runs a backend's embedded migrations on `pool` (PostgreSQL's take sqlx's advisory lock, so
/// replicas may start together); `url` is the redacted URL the error shows.
pub(super) async fn migrate<DB: sqlx::Database>(
    migrations: Embedded,
    pool: &sqlx::Pool<DB>,
    url: &str,
) -> Result<(), OpenError>
where
    DB::Connection: sqlx::migrate::Migrate,
{
    let failed = |source| OpenError::Migrate {
        url: url.to_owned(),
        source,
    };
    Migrator::new(migrations)
        .await
        .map_err(failed)?
        .run(pool)
        .await
        .map_err(failed)
}

/// Why [`open`] failed. Every variant shows the URL with its password replaced by `***`.
#[derive(Debug)]
#[non_exhaustive]
pub enum OpenError {
    /// The scheme is neither `sqlite:` nor `postgres:`/`postgresql:`.
    UnsupportedScheme {
        /// The URL, redacted.
        url: String,
    },
    /// The scheme's backend is not compiled in.
    NotCompiled {
        /// The URL, redacted.
        url: String,
        /// The cargo feature that adds it.
        feature: &'static str,
    },
    /// The URL does not parse, or the database cannot be reached or created.
    Connect {
        /// The URL, redacted.
        url: String,
        /// The driver's error.
        source: sqlx::Error,
    },
    /// A migration failed (or the database holds migrations this version does not know).
    Migrate {
        /// The URL, redacted.
        url: String,
        /// The migrator's error.
        source: sqlx::migrate::MigrateError,
    },
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::UnsupportedScheme { url } => write!(
                f,
                "token store {url}: unsupported scheme (use sqlite://PATH or postgres://...)"
            ),
            OpenError::NotCompiled { url, feature } => {
                write!(
                    f,
                    "token store {url}: this build lacks the `{feature}` feature"
                )
            }
            OpenError::Connect { url, source } => write!(f, "token store {url}: {source}"),
            OpenError::Migrate { url, source } => {
                write!(f, "token store {url}: migration: {source}")
            }
        }
    }
}

impl std::error::Error for OpenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            OpenError::Connect { source, .. } => Some(source),
            OpenError::Migrate { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Opens the store at `url`, creating and migrating it as needed: `sqlite://PATH` (the file is
/// created if missing; `sqlite:///abs/path` for an absolute path) or
/// `postgres://user:password@host/db` (`postgresql://` too).
pub async fn open(url: &str) -> Result<Arc<dyn TokenStore>, OpenError> {
    let scheme = url
        .split_once(':')
        .map_or("", |(s, _)| s)
        .to_ascii_lowercase();
    match scheme.as_str() {
        "sqlite" => {
            #[cfg(feature = "tokens-sqlite")]
            return Ok(Arc::new(SqliteStore::open(url).await?));
            #[cfg(not(feature = "tokens-sqlite"))]
            return Err(OpenError::NotCompiled {
                url: redact_url(url),
                feature: "tokens-sqlite",
            });
        }
        "postgres" | "postgresql" => {
            #[cfg(feature = "tokens-postgres")]
            return Ok(Arc::new(PostgresStore::connect(url).await?));
            #[cfg(not(feature = "tokens-postgres"))]
            return Err(OpenError::NotCompiled {
                url: redact_url(url),
                feature: "tokens-postgres",
            });
        }
        _ => Err(OpenError::UnsupportedScheme {
            url: redact_url(url),
        }),
    }
}

/// `url` with the password of its user info and any `password=` query value replaced by `***`.
pub(super) fn redact_url(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(start) = out.find("://").map(|i| i + 3) {
        let end = out[start..]
            .find(['/', '?', '#'])
            .map_or(out.len(), |i| start + i);
        if let Some(at) = out[start..end].rfind('@').map(|i| start + i)
            && let Some(colon) = out[start..at].find(':').map(|i| start + i)
        {
            out.replace_range(colon + 1..at, "***");
        }
    }
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let query: Vec<String> = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => kv.to_owned(),
            })
            .collect();
        out = format!("{head}{}", query.join("&"));
    }
    out
}

/// Implements [`TokenStore`] for a SQL store with the shared statements. The store type
/// provides `pool`, `notify_in_tx(&mut tx, &[TokenId])` (PostgreSQL: `pg_notify` before
/// COMMIT, delivered to every replica at commit) and `after_commit(Vec<TokenId>)` (SQLite: a
/// local broadcast), and `$db` is the sqlx database.
macro_rules! sql_token_store {
    ($store:ty, $db:ty) => {
        impl $crate::token::store::TokenStore for $store {
            fn create(
                &self,
                token: $crate::token::store::NewToken,
            ) -> $crate::provider::BoxFuture<
                '_,
                Result<$crate::token::store::TokenRecord, $crate::token::store::StoreError>,
            > {
                Box::pin(async move {
                    let id = $crate::token::store::TokenId::random()?;
                    let mut tx = self.pool.begin().await.map_err(store_error)?;
                    insert(&mut tx, &id, &token, None).await?;
                    tx.commit().await.map_err(store_error)?;
                    Ok(inserted(id, token, None))
                })
            }

            fn find_by_hash<'a>(
                &'a self,
                hash: &'a $crate::token::format::TokenHash,
                now: $crate::token::store::UnixTime,
            ) -> $crate::provider::BoxFuture<
                'a,
                Result<Option<$crate::token::store::TokenRecord>, $crate::token::store::StoreError>,
            > {
                Box::pin(async move {
                    sqlx::query_as::<$db, RecordRow>(&selects().find)
                        .bind(&hash.as_bytes()[..])
                        .bind(now)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(store_error)?
                        .map(decode)
                        .transpose()
                })
            }

            fn list<'a>(
                &'a self,
                owner: &'a $crate::token::store::Owner,
            ) -> $crate::provider::BoxFuture<
                'a,
                Result<Vec<$crate::token::store::TokenRecord>, $crate::token::store::StoreError>,
            > {
                Box::pin(async move {
                    sqlx::query_as::<$db, RecordRow>(&selects().list)
                        .bind(&owner.realm)
                        .bind(&owner.username)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(store_error)?
                        .into_iter()
                        .map(decode)
                        .collect()
                })
            }

            fn get<'a>(
                &'a self,
                owner: &'a $crate::token::store::Owner,
                id: &'a $crate::token::store::TokenId,
            ) -> $crate::provider::BoxFuture<
                'a,
                Result<Option<$crate::token::store::TokenRecord>, $crate::token::store::StoreError>,
            > {
                Box::pin(async move {
                    sqlx::query_as::<$db, RecordRow>(&selects().get)
                        .bind(id.as_str())
                        .bind(&owner.realm)
                        .bind(&owner.username)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(store_error)?
                        .map(decode)
                        .transpose()
                })
            }

            fn revoke<'a>(
                &'a self,
                owner: &'a $crate::token::store::Owner,
                id: &'a $crate::token::store::TokenId,
                now: $crate::token::store::UnixTime,
            ) -> $crate::provider::BoxFuture<'a, Result<bool, $crate::token::store::StoreError>>
            {
                Box::pin(async move {
                    let mut tx = self.pool.begin().await.map_err(store_error)?;
                    let revoked: Option<(String,)> = sqlx::query_as::<$db, (String,)>(REVOKE)
                        .bind(now)
                        .bind(id.as_str())
                        .bind(&owner.realm)
                        .bind(&owner.username)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(store_error)?;
                    if revoked.is_none() {
                        return Ok(false);
                    }
                    let ids = vec![id.clone()];
                    Self::notify_in_tx(&mut tx, &ids).await?;
                    tx.commit().await.map_err(store_error)?;
                    self.after_commit(ids);
                    Ok(true)
                })
            }

            fn revoke_id<'a>(
                &'a self,
                id: &'a $crate::token::store::TokenId,
                now: $crate::token::store::UnixTime,
            ) -> $crate::provider::BoxFuture<
                'a,
                Result<Option<$crate::token::store::Owner>, $crate::token::store::StoreError>,
            > {
                Box::pin(async move {
                    let mut tx = self.pool.begin().await.map_err(store_error)?;
                    let Some((username, realm)) =
                        sqlx::query_as::<$db, (String, String)>(REVOKE_ID)
                            .bind(now)
                            .bind(id.as_str())
                            .fetch_optional(&mut *tx)
                            .await
                            .map_err(store_error)?
                    else {
                        return Ok(None);
                    };
                    let ids = vec![id.clone()];
                    Self::notify_in_tx(&mut tx, &ids).await?;
                    tx.commit().await.map_err(store_error)?;
                    self.after_commit(ids);
                    Ok(Some($crate::token::store::Owner { username, realm }))
                })
            }

            fn revoke_all<'a>(
                &'a self,
                owner: &'a $crate::token::store::Owner,
                now: $crate::token::store::UnixTime,
            ) -> $crate::provider::BoxFuture<'a, Result<u64, $crate::token::store::StoreError>>
            {
                Box::pin(async move {
                    let mut tx = self.pool.begin().await.map_err(store_error)?;
                    let ids = sqlx::query_as::<$db, (String,)>(REVOKE_ALL)
                        .bind(now)
                        .bind(&owner.realm)
                        .bind(&owner.username)
                        .fetch_all(&mut *tx)
                        .await
                        .map_err(store_error)?
                        .into_iter()
                        .filter_map(|(id,)| $crate::token::store::TokenId::parse(&id))
                        .collect::<Vec<_>>();
                    Self::notify_in_tx(&mut tx, &ids).await?;
                    tx.commit().await.map_err(store_error)?;
                    let n = ids.len() as u64;
                    self.after_commit(ids);
                    Ok(n)
                })
            }

            fn rotate<'a>(
                &'a self,
                owner: &'a $crate::token::store::Owner,
                id: &'a $crate::token::store::TokenId,
                rotation: $crate::token::store::Rotation,
            ) -> $crate::provider::BoxFuture<
                'a,
                Result<Option<$crate::token::store::TokenRecord>, $crate::token::store::StoreError>,
            > {
                Box::pin(async move {
                    let mut tx = self.pool.begin().await.map_err(store_error)?;
                    let Some(old) = sqlx::query_as::<$db, RecordRow>(&selects().rotate_old)
                        .bind(rotation.now)
                        .bind(id.as_str())
                        .bind(&owner.realm)
                        .bind(&owner.username)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(store_error)?
                    else {
                        return Ok(None);
                    };
                    let old = decode(old)?;
                    let new_id = $crate::token::store::TokenId::random()?;
                    let token = $crate::token::store::NewToken {
                        hash: rotation.hash,
                        hint: rotation.hint,
                        owner: old.owner,
                        name: old.name,
                        scopes: old.scopes,
                        roles: old.roles,
                        attributes: old.attributes,
                        created_at: rotation.now,
                        expires_at: rotation.expires_at,
                        create_nonce: None,
                    };
                    insert(&mut tx, &new_id, &token, Some(id)).await?;
                    let ids = vec![id.clone()];
                    Self::notify_in_tx(&mut tx, &ids).await?;
                    tx.commit().await.map_err(store_error)?;
                    self.after_commit(ids);
                    Ok(Some(inserted(new_id, token, Some(id.clone()))))
                })
            }

            fn prune(
                &self,
                before: $crate::token::store::UnixTime,
            ) -> $crate::provider::BoxFuture<'_, Result<u64, $crate::token::store::StoreError>>
            {
                Box::pin(async move {
                    let done = sqlx::query::<$db>(PRUNE)
                        .bind(before)
                        .execute(&self.pool)
                        .await
                        .map_err(store_error)?;
                    Ok(done.rows_affected())
                })
            }

            fn record_last_used<'a>(
                &'a self,
                uses: &'a [(
                    $crate::token::store::TokenId,
                    $crate::token::store::UnixTime,
                )],
            ) -> $crate::provider::BoxFuture<'a, Result<(), $crate::token::store::StoreError>> {
                Box::pin(async move {
                    let mut tx = self.pool.begin().await.map_err(store_error)?;
                    for (id, at) in uses {
                        sqlx::query::<$db>(LAST_USED)
                            .bind(id.as_str())
                            .bind(*at)
                            .execute(&mut *tx)
                            .await
                            .map_err(store_error)?;
                    }
                    tx.commit().await.map_err(store_error)
                })
            }

            fn subscribe(&self) -> Option<$crate::token::store::Invalidations> {
                Some(self.events.subscribe())
            }

            fn portal(&self) -> Option<&dyn $crate::token::store::PortalStore> {
                Some(self)
            }
            fn chains(&self) -> Option<&dyn $crate::provider::chain::ChainStore> {
                Some(self)
            }
        }

        impl $crate::provider::chain::ChainStore for $store {
            fn load<'a>(
                &'a self,
                chain: &'a $crate::provider::chain::ChainKey,
            ) -> $crate::provider::BoxFuture<
                'a,
                Result<
                    Option<$crate::provider::chain::ChainState>,
                    $crate::provider::chain::ChainError,
                >,
            > {
                Box::pin(async move {
                    let row =
                        sqlx::query_as::<$db, (i64, Option<Vec<u8>>, Option<i64>)>(CHAIN_LOAD)
                            .bind(&chain[..])
                            .fetch_optional(&self.pool)
                            .await
                            .map_err(chain_error)?;
                    Ok(row.map(|(g, sealed, until)| {
                        $crate::provider::chain::ChainState::new(g, sealed, until)
                    }))
                })
            }

            fn claim<'a>(
                &'a self,
                chain: &'a $crate::provider::chain::ChainKey,
                seen: Option<i64>,
                now: i64,
                until: i64,
            ) -> $crate::provider::BoxFuture<
                'a,
                Result<Option<i64>, $crate::provider::chain::ChainError>,
            > {
                Box::pin(async move {
                    let done = match seen {
                        None => {
                            sqlx::query::<$db>(CHAIN_CLAIM_NEW)
                                .bind(&chain[..])
                                .bind(until)
                                .bind(now)
                                .execute(&self.pool)
                                .await
                        }
                        Some(g) => {
                            sqlx::query::<$db>(CHAIN_CLAIM)
                                .bind(&chain[..])
                                .bind(g)
                                .bind(until)
                                .bind(now)
                                .execute(&self.pool)
                                .await
                        }
                    }
                    .map_err(chain_error)?;
                    Ok((done.rows_affected() == 1).then(|| seen.map_or(1, |g| g + 1)))
                })
            }

            fn release<'a>(
                &'a self,
                chain: &'a $crate::provider::chain::ChainKey,
                generation: i64,
                sealed: Option<&'a [u8]>,
                now: i64,
            ) -> $crate::provider::BoxFuture<'a, Result<bool, $crate::provider::chain::ChainError>>
            {
                Box::pin(async move {
                    if sealed.is_none() {
                        let forgotten = sqlx::query::<$db>(CHAIN_FORGET)
                            .bind(&chain[..])
                            .bind(generation)
                            .execute(&self.pool)
                            .await
                            .map_err(chain_error)?;
                        if forgotten.rows_affected() == 1 {
                            return Ok(true);
                        }
                    }
                    let done = sqlx::query::<$db>(CHAIN_RELEASE)
                        .bind(&chain[..])
                        .bind(generation)
                        .bind(sealed)
                        .bind(now)
                        .execute(&self.pool)
                        .await
                        .map_err(chain_error)?;
                    Ok(done.rows_affected() == 1)
                })
            }

            fn now(
                &self,
            ) -> $crate::provider::BoxFuture<'_, Result<i64, $crate::provider::chain::ChainError>>
            {
                Box::pin(async move {
                    let (now,) = sqlx::query_as::<$db, (i64,)>(CHAIN_NOW)
                        .fetch_one(&self.pool)
                        .await
                        .map_err(chain_error)?;
                    Ok(now)
                })
            }

            fn prune(
                &self,
                before: i64,
            ) -> $crate::provider::BoxFuture<'_, Result<u64, $crate::provider::chain::ChainError>>
            {
                Box::pin(async move {
                    let done = sqlx::query::<$db>(CHAIN_PRUNE)
                        .bind(before)
                        .execute(&self.pool)
                        .await
                        .map_err(chain_error)?;
                    Ok(done.rows_affected())
                })
            }
        }

        /// Inserts `token` as `id` in `tx`.
        async fn insert(
            tx: &mut sqlx::Transaction<'_, $db>,
            id: &$crate::token::store::TokenId,
            token: &$crate::token::store::NewToken,
            rotated_from: Option<&$crate::token::store::TokenId>,
        ) -> Result<(), $crate::token::store::StoreError> {
            let json = encode(token);
            sqlx::query::<$db>(INSERT)
                .bind(id.as_str())
                .bind(&token.hash.as_bytes()[..])
                .bind(&token.owner.username)
                .bind(&token.owner.realm)
                .bind(&token.name)
                .bind(json.scopes)
                .bind(json.roles)
                .bind(json.attributes)
                .bind(token.created_at)
                .bind(token.expires_at)
                .bind(&token.hint)
                .bind(token.create_nonce.as_deref())
                .bind(rotated_from.map(|r| r.as_str().to_owned()))
                .execute(&mut **tx)
                .await
                .map_err(store_error)?;
            Ok(())
        }
    };
}
pub(super) use sql_token_store;

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_are_redacted_in_user_info_and_query() {
        let cases = [
            (
                "postgres://u:hunter2@h:5432/db",
                "postgres://u:***@h:5432/db",
            ),
            ("postgres://u:p@ss:w0rd@h/db", "postgres://u:***@h/db"),
            (
                "postgres://u@h/db?sslmode=require&password=x",
                "postgres://u@h/db?sslmode=require&password=***",
            ),
            (
                "postgres://h/db?PASSWORD=x&user=u",
                "postgres://h/db?PASSWORD=***&user=u",
            ),
            (
                "sqlite:///var/lib/aot/tokens.db",
                "sqlite:///var/lib/aot/tokens.db",
            ),
            ("sqlite://a:b.db", "sqlite://a:b.db"),
        ];
        for (url, shown) in cases {
            assert_eq!(redact_url(url), shown, "{url}");
        }
    }
}
