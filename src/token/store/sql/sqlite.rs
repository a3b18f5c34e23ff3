//! [`SqliteStore`]: the embedded token store, one SQLite file.
//!
//! The file is opened in WAL mode with `synchronous=FULL`: a committed token survives a crash
//! or power loss (WAL with `NORMAL` "might roll back following a power loss"), and token writes
//! are rare enough that the extra fsync costs nothing noticeable. One process per file: the
//! invalidation stream carries this process's revocations only, so replicas need PostgreSQL.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};

use super::{
    CHAIN_CLAIM, CHAIN_CLAIM_NEW, CHAIN_FORGET, CHAIN_LOAD, CHAIN_PRUNE, CHAIN_RELEASE, Embedded,
    INSERT, LAST_USED, OpenError, PRUNE, REVOKE, REVOKE_ALL, REVOKE_ID, RecordRow, chain_error,
    decode, encode, inserted, migrate, portal, redact_url, selects, sql_token_store, store_error,
};
use crate::token::store::{Broadcaster, Invalidation, StoreError, TokenId};

/// The database's clock, which every replica reads for refresh-token chain leases.
const CHAIN_NOW: &str = "SELECT unixepoch()";

const MIGRATIONS: Embedded = Embedded(&[
    (
        1,
        "tokens",
        include_str!("../../../../migrations/sqlite/0001_tokens.sql"),
    ),
    (
        2,
        "portal",
        include_str!("../../../../migrations/sqlite/0002_portal.sql"),
    ),
    (
        3,
        "refresh_chains",
        include_str!("../../../../migrations/sqlite/0003_refresh_chains.sql"),
    ),
]);

/// How long a writer waits for the write lock before the store reports itself unavailable.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Attempts at opening a file another process is creating, and the pause before the first
/// retry (doubling: 50 + 100 + 200 + 400 + 800 ms at most).
const OPEN_ATTEMPTS: u32 = 6;
const OPEN_RETRY: Duration = Duration::from_millis(50);
/// No retry starts this long after the first attempt: a file whose lock is really held (each
/// attempt then waits out the busy timeout) is reported after one or two attempts, not six.
const OPEN_RETRY_WINDOW: Duration = Duration::from_secs(2);

/// Whether opening failed because another connection held the file: a busy or locked database
/// (primary result codes 5 and 6, whatever the extended code), or a migration that failed
/// (what the race looks like from the slower process; a migration that fails for good fails
/// again on the last attempt and is reported then).
fn contended(e: &OpenError) -> bool {
    match e {
        OpenError::Connect {
            source: sqlx::Error::Database(d),
            ..
        } => d
            .code()
            .and_then(|c| c.parse::<i32>().ok())
            .is_some_and(|c| matches!(c & 0xff, 5 | 6)),
        OpenError::Migrate { .. } => true,
        _ => false,
    }
}

/// Tokens in one SQLite file.
pub struct SqliteStore {
    pool: SqlitePool,
    events: Broadcaster,
    url: String,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// Creates a missing database file readable by its owner only (it holds token digests and
/// sessions): mode 0600 whatever the umask. SQLite gives its `-wal` and `-shm` files the
/// database's mode. An existing file is left as it is; on failure, opening reports it.
fn create_private(path: &std::path::Path, url: &str) {
    if url.contains("memory") || path.as_os_str().is_empty() {
        return;
    }
    let mut open = std::fs::OpenOptions::new();
    open.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        open.mode(0o600);
        if open.open(path).is_ok() {
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
    }
    #[cfg(not(unix))]
    let _ = open.open(path);
}

impl SqliteStore {
    /// Opens (creating if missing, owner-only on Unix) and migrates the file at `url` (`sqlite://PATH`).
    ///
    /// Another process opening the same new file at the same moment (two instances started
    /// together, the admin CLI beside a starting sidecar) is waited for, not reported: sqlx's
    /// SQLite migrator takes no lock, so both run the first migration and the slower one's
    /// `CREATE TABLE` fails (its transaction rolls back, and a retry finds the migration
    /// applied), and switching a new file to WAL answers "database is locked" at once, without
    /// the busy timeout, while the other connection holds it.
    pub async fn open(url: &str) -> Result<Self, OpenError> {
        let started = std::time::Instant::now();
        let mut pause = OPEN_RETRY;
        for attempt in 1..OPEN_ATTEMPTS {
            match Self::open_once(url).await {
                Err(e) if contended(&e) && started.elapsed() < OPEN_RETRY_WINDOW => {
                    tracing::info!(
                        event_name = "tokens.store.open_retry", attempt, error = %e,
                        "the token store is being opened by another connection; retrying"
                    );
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                }
                done => return done,
            }
        }
        Self::open_once(url).await
    }

    async fn open_once(url: &str) -> Result<Self, OpenError> {
        let shown = redact_url(url);
        let connect = |source| OpenError::Connect {
            url: shown.clone(),
            source,
        };
        let options = SqliteConnectOptions::from_str(url)
            .map_err(connect)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        create_private(options.get_filename(), url);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(BUSY_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(connect)?;
        migrate(MIGRATIONS, &pool, &shown).await?;
        Ok(SqliteStore {
            pool,
            events: Broadcaster::new(),
            url: shown,
        })
    }

    /// Closes the pool, waiting for open connections (a clean shutdown; dropping is safe too).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn notify_in_tx(
        _: &mut Transaction<'_, Sqlite>,
        _: &[TokenId],
    ) -> Result<(), StoreError> {
        Ok(())
    }

    fn after_commit(&self, ids: Vec<TokenId>) {
        for id in ids {
            self.events.send(Invalidation::Evict(id));
        }
    }
}

sql_token_store!(SqliteStore, Sqlite);
portal::sql_portal_store!(SqliteStore, Sqlite);
