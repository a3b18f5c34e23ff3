//! [`PostgresStore`]: tokens in PostgreSQL, shared by several replicas.
//!
//! Every revocation and rotation calls `pg_notify(NOTIFY_CHANNEL, id)` inside its transaction;
//! PostgreSQL delivers it at COMMIT to every listening replica, whose caches then drop the
//! token. The payload is the token id, never the digest. A background task per store holds a
//! `PgListener` (a direct connection: LISTEN does not survive PgBouncer's transaction mode).
//! When its connection is lost, notifications sent meanwhile are gone, so after reconnecting
//! it yields [`Invalidation::FlushAll`].

use std::fmt;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction};

use super::{
    CHAIN_CLAIM, CHAIN_CLAIM_NEW, CHAIN_FORGET, CHAIN_LOAD, CHAIN_PRUNE, CHAIN_RELEASE, Embedded,
    INSERT, LAST_USED, OpenError, PRUNE, REVOKE, REVOKE_ALL, REVOKE_ID, RecordRow, chain_error,
    decode, encode, inserted, migrate, portal, redact_url, selects, sql_token_store, store_error,
};
use crate::token::store::{Broadcaster, Invalidation, StoreError, TokenId};

/// The LISTEN/NOTIFY channel.
pub const NOTIFY_CHANNEL: &str = "aot_tokens";

/// The database's clock, which every replica reads for refresh-token chain leases.
const CHAIN_NOW: &str = "SELECT CAST(floor(extract(epoch FROM clock_timestamp())) AS BIGINT)";

const MIGRATIONS: Embedded = Embedded(&[
    (
        1,
        "tokens",
        include_str!("../../../../migrations/postgres/0001_tokens.sql"),
    ),
    (
        2,
        "portal",
        include_str!("../../../../migrations/postgres/0002_portal.sql"),
    ),
    (
        3,
        "refresh_chains",
        include_str!("../../../../migrations/postgres/0003_refresh_chains.sql"),
    ),
]);

/// How long an operation waits for a pooled connection before the store reports itself
/// unavailable (requests answer 503 rather than hang).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);
/// Pause between attempts to reconnect the listener.
const RELISTEN_DELAY: Duration = Duration::from_millis(500);

/// Tokens in PostgreSQL.
pub struct PostgresStore {
    pool: PgPool,
    events: Broadcaster,
    url: String,
    listener: tokio::task::JoinHandle<()>,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user:password@host:port/db`), runs the migrations under
    /// sqlx's advisory lock, and starts listening for other replicas' revocations. Must run
    /// inside a Tokio runtime.
    pub async fn connect(url: &str) -> Result<Self, OpenError> {
        let shown = redact_url(url);
        let connect = |source| OpenError::Connect {
            url: shown.clone(),
            source,
        };
        let options: PgConnectOptions = url.parse().map_err(connect)?;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(connect)?;
        migrate(MIGRATIONS, &pool, &shown).await?;
        let mut listener = PgListener::connect_with(&pool).await.map_err(connect)?;
        listener.listen(NOTIFY_CHANNEL).await.map_err(connect)?;
        let events = Broadcaster::new();
        let listener = tokio::spawn(listen(listener, pool.clone(), events.clone()));
        Ok(PostgresStore {
            pool,
            events,
            url: shown,
            listener,
        })
    }

    /// Closes the pool and stops listening.
    pub async fn close(&self) {
        self.listener.abort();
        self.pool.close().await;
    }

    async fn notify_in_tx(
        tx: &mut Transaction<'_, Postgres>,
        ids: &[TokenId],
    ) -> Result<(), StoreError> {
        for id in ids {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(NOTIFY_CHANNEL)
                .bind(id.as_str())
                .execute(&mut **tx)
                .await
                .map_err(store_error)?;
        }
        Ok(())
    }

    /// Nothing: this replica's own listener receives the notification like every other.
    fn after_commit(&self, _: Vec<TokenId>) {}
}

/// Forwards notifications as evictions until the store is dropped.
async fn listen(mut listener: PgListener, pool: PgPool, events: Broadcaster) {
    loop {
        match listener.try_recv().await {
            Ok(Some(n)) => match TokenId::parse(n.payload()) {
                Some(id) => events.send(Invalidation::Evict(id)),
                // Someone else's payload on our channel: be safe.
                None => events.send(Invalidation::FlushAll),
            },
            // The connection dropped and the listener reconnected (eagerly, before returning).
            Ok(None) => events.send(Invalidation::FlushAll),
            Err(e) => {
                tracing::warn!(error = %e, "token store: NOTIFY listener lost, reconnecting");
                listener = loop {
                    tokio::time::sleep(RELISTEN_DELAY).await;
                    if pool.is_closed() {
                        return;
                    }
                    let Ok(mut fresh) = PgListener::connect_with(&pool).await else {
                        continue;
                    };
                    if fresh.listen(NOTIFY_CHANNEL).await.is_ok() {
                        break fresh;
                    }
                };
                events.send(Invalidation::FlushAll);
            }
        }
    }
}

sql_token_store!(PostgresStore, Postgres);
portal::sql_portal_store!(PostgresStore, Postgres);
