//! [`PortalStore`](crate::token::store::PortalStore) for the SQL stores: sessions and login
//! states in `aot_portal_sessions` and `aot_portal_logins` (migration 0002), with one SQL
//! text for SQLite and PostgreSQL, as the token statements.

use std::collections::BTreeMap;

use super::{COLUMNS, StoreError, store_error};
use crate::token::store::{Session, UnixTime};

pub(in crate::token::store) const SESSION_INSERT: &str = "INSERT INTO aot_portal_sessions \
     (id_hash, username, realm, roles, attributes, token_roles, token_attributes, csrf, \
     created_at, last_seen_at, idle_until, expires_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";
pub(in crate::token::store) const SESSION_SELECT: &str = "SELECT username, realm, roles, \
     attributes, token_roles, token_attributes, csrf, created_at, last_seen_at, idle_until, \
     expires_at FROM aot_portal_sessions WHERE id_hash = $1 AND idle_until > $2 AND expires_at > $2";
pub(in crate::token::store) const SESSION_TOUCH: &str =
    "UPDATE aot_portal_sessions SET last_seen_at = $2, idle_until = $3 WHERE id_hash = $1";
pub(in crate::token::store) const SESSION_DELETE: &str =
    "DELETE FROM aot_portal_sessions WHERE id_hash = $1";
/// All of a user's sessions but the `$3` newest (ties broken by key, as the memory store).
pub(in crate::token::store) const SESSION_TRIM: &str = "DELETE FROM aot_portal_sessions \
     WHERE username = $1 AND realm = $2 AND id_hash NOT IN (SELECT id_hash FROM \
     aot_portal_sessions WHERE username = $1 AND realm = $2 \
     ORDER BY created_at DESC, id_hash DESC LIMIT $3)";
pub(in crate::token::store) const LOGIN_INSERT: &str =
    "INSERT INTO aot_portal_logins (id_hash, data, expires_at) VALUES ($1, $2, $3)";
pub(in crate::token::store) const LOGIN_TAKE: &str =
    "DELETE FROM aot_portal_logins WHERE id_hash = $1 RETURNING data, expires_at";
pub(in crate::token::store) const PRUNE_SESSIONS: &str =
    "DELETE FROM aot_portal_sessions WHERE idle_until <= $1 OR expires_at <= $1";
pub(in crate::token::store) const PRUNE_LOGINS: &str =
    "DELETE FROM aot_portal_logins WHERE expires_at <= $1";

/// Every token, oldest first.
pub(in crate::token::store) fn all_tokens() -> &'static str {
    static ALL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ALL.get_or_init(|| format!("SELECT {COLUMNS} FROM aot_tokens ORDER BY created_at, id"))
}

/// A session row as both drivers decode it.
pub(in crate::token::store) type SessionRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    i64,
    i64,
);

pub(in crate::token::store) fn decode_session(row: SessionRow) -> Result<Session, StoreError> {
    let (username, realm, roles, attributes, token_roles, token_attributes, csrf, c, l, i, e) = row;
    let corrupt = |what: &str| StoreError::Corrupt(format!("portal session of {username}: {what}"));
    let list = |s: &str, what| serde_json::from_str::<Vec<String>>(s).map_err(|_| corrupt(what));
    let map = |s: &str, what| {
        serde_json::from_str::<BTreeMap<String, String>>(s).map_err(|_| corrupt(what))
    };
    Ok(Session {
        roles: list(&roles, "roles")?,
        attributes: map(&attributes, "attributes")?,
        token_roles: list(&token_roles, "token_roles")?,
        token_attributes: map(&token_attributes, "token_attributes")?,
        username,
        realm,
        csrf,
        created_at: c,
        last_seen_at: l,
        idle_until: i,
        expires_at: e,
    })
}

/// The JSON columns of a session: roles, attributes, token roles, token attributes.
pub(in crate::token::store) fn encode_session(s: &Session) -> [String; 4] {
    // Vectors and maps of strings always serialise.
    let json = |v: Result<String, serde_json::Error>| v.unwrap_or_default();
    [
        json(serde_json::to_string(&s.roles)),
        json(serde_json::to_string(&s.attributes)),
        json(serde_json::to_string(&s.token_roles)),
        json(serde_json::to_string(&s.token_attributes)),
    ]
}

/// A login state that is still valid at `now`.
pub(in crate::token::store) fn live_login(
    row: Option<(String, i64)>,
    now: UnixTime,
) -> Option<String> {
    row.filter(|(_, exp)| *exp > now).map(|(d, _)| d)
}

pub(in crate::token::store) fn failed(e: sqlx::Error) -> StoreError {
    store_error(e)
}

/// Implements `PortalStore` for a SQL store (`pool` field) over sqlx database `$db`.
macro_rules! sql_portal_store {
    ($store:ty, $db:ty) => {
        impl $crate::token::store::PortalStore for $store {
            fn create_session<'a>(
                &'a self,
                key: &'a $crate::token::store::SessionKey,
                session: &'a $crate::token::store::Session,
            ) -> $crate::provider::BoxFuture<'a, Result<(), $crate::token::store::StoreError>> {
                Box::pin(async move {
                    let [roles, attributes, token_roles, token_attributes] =
                        portal::encode_session(session);
                    sqlx::query::<$db>(portal::SESSION_INSERT)
                        .bind(&key[..])
                        .bind(&session.username)
                        .bind(&session.realm)
                        .bind(roles)
                        .bind(attributes)
                        .bind(token_roles)
                        .bind(token_attributes)
                        .bind(&session.csrf)
                        .bind(session.created_at)
                        .bind(session.last_seen_at)
                        .bind(session.idle_until)
                        .bind(session.expires_at)
                        .execute(&self.pool)
                        .await
                        .map_err(portal::failed)?;
                    Ok(())
                })
            }

            fn session<'a>(
                &'a self,
                key: &'a $crate::token::store::SessionKey,
                now: $crate::token::store::UnixTime,
            ) -> $crate::provider::BoxFuture<
                'a,
                Result<Option<$crate::token::store::Session>, $crate::token::store::StoreError>,
            > {
                Box::pin(async move {
                    sqlx::query_as::<$db, portal::SessionRow>(portal::SESSION_SELECT)
                        .bind(&key[..])
                        .bind(now)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(portal::failed)?
                        .map(portal::decode_session)
                        .transpose()
                })
            }

            fn touch_session<'a>(
                &'a self,
                key: &'a $crate::token::store::SessionKey,
                now: $crate::token::store::UnixTime,
                idle_until: $crate::token::store::UnixTime,
            ) -> $crate::provider::BoxFuture<'a, Result<(), $crate::token::store::StoreError>> {
                Box::pin(async move {
                    sqlx::query::<$db>(portal::SESSION_TOUCH)
                        .bind(&key[..])
                        .bind(now)
                        .bind(idle_until)
                        .execute(&self.pool)
                        .await
                        .map_err(portal::failed)?;
                    Ok(())
                })
            }

            fn delete_session<'a>(
                &'a self,
                key: &'a $crate::token::store::SessionKey,
            ) -> $crate::provider::BoxFuture<'a, Result<bool, $crate::token::store::StoreError>>
            {
                Box::pin(async move {
                    let done = sqlx::query::<$db>(portal::SESSION_DELETE)
                        .bind(&key[..])
                        .execute(&self.pool)
                        .await
                        .map_err(portal::failed)?;
                    Ok(done.rows_affected() > 0)
                })
            }

            fn trim_sessions<'a>(
                &'a self,
                username: &'a str,
                realm: &'a str,
                keep: u32,
            ) -> $crate::provider::BoxFuture<'a, Result<u64, $crate::token::store::StoreError>>
            {
                Box::pin(async move {
                    let done = sqlx::query::<$db>(portal::SESSION_TRIM)
                        .bind(username)
                        .bind(realm)
                        .bind(i64::from(keep))
                        .execute(&self.pool)
                        .await
                        .map_err(portal::failed)?;
                    Ok(done.rows_affected())
                })
            }

            fn put_login<'a>(
                &'a self,
                key: &'a $crate::token::store::SessionKey,
                data: &'a str,
                expires_at: $crate::token::store::UnixTime,
            ) -> $crate::provider::BoxFuture<'a, Result<(), $crate::token::store::StoreError>> {
                Box::pin(async move {
                    sqlx::query::<$db>(portal::LOGIN_INSERT)
                        .bind(&key[..])
                        .bind(data)
                        .bind(expires_at)
                        .execute(&self.pool)
                        .await
                        .map_err(portal::failed)?;
                    Ok(())
                })
            }

            fn take_login<'a>(
                &'a self,
                key: &'a $crate::token::store::SessionKey,
                now: $crate::token::store::UnixTime,
            ) -> $crate::provider::BoxFuture<
                'a,
                Result<Option<String>, $crate::token::store::StoreError>,
            > {
                Box::pin(async move {
                    let row = sqlx::query_as::<$db, (String, i64)>(portal::LOGIN_TAKE)
                        .bind(&key[..])
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(portal::failed)?;
                    Ok(portal::live_login(row, now))
                })
            }

            fn prune_portal(
                &self,
                now: $crate::token::store::UnixTime,
            ) -> $crate::provider::BoxFuture<'_, Result<u64, $crate::token::store::StoreError>>
            {
                Box::pin(async move {
                    let mut n = 0;
                    for statement in [portal::PRUNE_SESSIONS, portal::PRUNE_LOGINS] {
                        n += sqlx::query::<$db>(statement)
                            .bind(now)
                            .execute(&self.pool)
                            .await
                            .map_err(portal::failed)?
                            .rows_affected();
                    }
                    Ok(n)
                })
            }

            fn all_tokens(
                &self,
            ) -> $crate::provider::BoxFuture<
                '_,
                Result<Vec<$crate::token::store::TokenRecord>, $crate::token::store::StoreError>,
            > {
                Box::pin(async move {
                    sqlx::query_as::<$db, RecordRow>(portal::all_tokens())
                        .fetch_all(&self.pool)
                        .await
                        .map_err(portal::failed)?
                        .into_iter()
                        .map(decode)
                        .collect()
                })
            }
        }
    };
}
pub(in crate::token::store) use sql_portal_store;
