//! The database of keys: [`KeyDatabase`], its connection to SQLite or PostgreSQL, its schema
//! (migrations shipped in the crate) and every query the store and the admin operations run.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::Row as _;

use super::SqlStoreError;
use crate::server::{KeyDigest, KeyFormat};

/// A pool of connections to the keys' database, SQLite or PostgreSQL, with the schema in place
/// and the [`KeyFormat`] keys are issued in.
///
/// Cloning is cheap: clones share the pool. See the [module docs](super) for an example.
#[derive(Clone)]
pub struct KeyDatabase {
    pub(super) backend: Backend,
    pub(super) format: KeyFormat,
}

#[derive(Clone)]
pub(super) enum Backend {
    #[cfg(feature = "sqlite")]
    Sqlite(sqlx::SqlitePool),
    #[cfg(feature = "postgres")]
    Postgres(sqlx::PgPool),
}

/// Runs `$body` with `$pool` bound to whichever pool the database has: the same SQL text serves
/// both (`$1` placeholders are understood by SQLite too), typed for each.
macro_rules! on_pool {
    ($database:expr, $pool:ident => $body:expr) => {
        match &$database.backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite($pool) => $body,
            #[cfg(feature = "postgres")]
            Backend::Postgres($pool) => $body,
        }
    };
}

/// Decodes a row of `COLUMNS` from either database; a digest that is not 32 bytes is an error,
/// never a panic.
macro_rules! decode {
    ($row:expr) => {{
        let row = $row;
        (|| -> Result<Row, sqlx::Error> {
            let digest: Vec<u8> = row.try_get("digest")?;
            let id: String = row.try_get("id")?;
            let digest = <[u8; 32]>::try_from(digest.as_slice()).map_err(|_| {
                sqlx::Error::Decode(format!("key {id}: the digest is not 32 bytes").into())
            })?;
            Ok(Row {
                id,
                start: row.try_get("start")?,
                digest: KeyDigest::from_bytes(digest),
                principal: row.try_get("principal")?,
                organization: row.try_get("organization")?,
                scopes: row.try_get("scopes")?,
                metadata: row.try_get("metadata")?,
                created_at: row.try_get("created_at")?,
                expires_at: row.try_get("expires_at")?,
                revoked_at: row.try_get("revoked_at")?,
                last_used_at: row.try_get("last_used_at")?,
                revision: row.try_get("revision")?,
            })
        })()
        .map_err(SqlStoreError::database)
    }};
}

/// How long a query waits for a connection before the database counts as unreachable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// How long one of the store's queries (a page of changes, a lookup, a usage write) may take,
/// connection included, before the database counts as unreachable. A database that stops
/// answering (a silent network, a hung server) would otherwise hold a sync, and the outage
/// policy with it, for as long as the kernel keeps the connection.
const QUERY_TIMEOUT: Duration = ACQUIRE_TIMEOUT;

/// `query`'s answer, or [`SqlStoreError::TimedOut`] after [`QUERY_TIMEOUT`].
async fn answered<T>(
    query: impl Future<Output = Result<T, SqlStoreError>>,
) -> Result<T, SqlStoreError> {
    tokio::time::timeout(QUERY_TIMEOUT, query)
        .await
        .unwrap_or(Err(SqlStoreError::TimedOut))
}

/// How many times a step of opening a SQLite database is tried while replicas starting at the
/// same moment on a new file are in its way: see [`starting`].
#[cfg(feature = "sqlite")]
const STARTING_ATTEMPTS: u32 = 8;

/// Runs `step` until it succeeds, or fails in a way `retry` does not accept, or
/// [`STARTING_ATTEMPTS`] times (0.56 s of waits in all).
#[cfg(feature = "sqlite")]
async fn starting<T, E, F>(mut step: impl FnMut() -> F, retry: impl Fn(&E) -> bool) -> Result<T, E>
where
    F: Future<Output = Result<T, E>>,
{
    let mut attempt = 1;
    loop {
        match step().await {
            Err(error) if attempt < STARTING_ATTEMPTS && retry(&error) => {
                tokio::time::sleep(Duration::from_millis(20) * attempt).await;
                attempt += 1;
            }
            done => return done,
        }
    }
}

/// Whether `error` is SQLite's `SQLITE_BUSY` or `SQLITE_LOCKED` (any extended code).
#[cfg(feature = "sqlite")]
fn sqlite_busy(error: &sqlx::Error) -> bool {
    const BUSY: i32 = 5;
    const LOCKED: i32 = 6;
    let code = match error {
        sqlx::Error::Database(error) => error.code().and_then(|code| code.parse::<i32>().ok()),
        _ => None,
    };
    code.is_some_and(|code| matches!(code & 0xff, BUSY | LOCKED))
}

/// How many rows one query of [`KeyDatabase::changes_since`] reads at most.
const PAGE: usize = 10_000;

const COLUMNS: &str = "id, start, digest, principal, organization, scopes, metadata, created_at, \
                       expires_at, revoked_at, last_used_at, revision";

impl KeyDatabase {
    /// Connects to `url` and brings its schema up to date: `sqlite://keys.db` (the file is
    /// created if missing) or `postgres://user@host/db`. A schema already up to date is only
    /// read: a server's role needs `SELECT, INSERT, UPDATE` on `api_keys` and
    /// `api_keys_revision` and `SELECT` on `_sqlx_migrations`, no right to change the schema.
    pub async fn connect(url: &str, format: KeyFormat) -> Result<Self, SqlStoreError> {
        let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme);
        let backend = match scheme {
            #[cfg(feature = "sqlite")]
            "sqlite" => {
                use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
                use std::str::FromStr;
                let options = SqliteConnectOptions::from_str(url)
                    .map_err(SqlStoreError::connect(url))?
                    .create_if_missing(true)
                    // Readers never wait for the writer, and several processes may share the
                    // file (a server and the admin tool).
                    .journal_mode(SqliteJournalMode::Wal)
                    .busy_timeout(Duration::from_secs(5));
                let pool = SqlitePoolOptions::new().acquire_timeout(ACQUIRE_TIMEOUT);
                // Turning a new file to WAL takes a lock that SQLite's busy timeout does not
                // wait for: a replica starting at the same moment as another is told "database
                // is locked", and connects when asked again.
                let pool = starting(|| pool.clone().connect_with(options.clone()), sqlite_busy)
                    .await
                    .map_err(SqlStoreError::connect(url))?;
                Backend::Sqlite(pool)
            }
            #[cfg(feature = "postgres")]
            "postgres" | "postgresql" => {
                let pool = sqlx::postgres::PgPoolOptions::new()
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .connect(url)
                    .await
                    .map_err(SqlStoreError::connect(url))?;
                Backend::Postgres(pool)
            }
            _ => return Err(SqlStoreError::UnsupportedUrl),
        };
        let database = Self { backend, format };
        database.migrate().await?;
        Ok(database)
    }

    /// Uses a SQLite pool built elsewhere, bringing its schema up to date.
    #[cfg(feature = "sqlite")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
    pub async fn sqlite(pool: sqlx::SqlitePool, format: KeyFormat) -> Result<Self, SqlStoreError> {
        let database = Self {
            backend: Backend::Sqlite(pool),
            format,
        };
        database.migrate().await?;
        Ok(database)
    }

    /// Uses a PostgreSQL pool built elsewhere, bringing its schema up to date.
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    pub async fn postgres(pool: sqlx::PgPool, format: KeyFormat) -> Result<Self, SqlStoreError> {
        let database = Self {
            backend: Backend::Postgres(pool),
            format,
        };
        database.migrate().await?;
        Ok(database)
    }

    /// The format keys are issued in, and that a server can require
    /// ([`ValidateCredentialLayer::key_format`](crate::ValidateCredentialLayer::key_format)).
    pub fn format(&self) -> &KeyFormat {
        &self.format
    }

    /// Closes every connection of the pool (clones included).
    pub async fn close(&self) {
        on_pool!(self, pool => pool.close().await)
    }

    async fn migrate(&self) -> Result<(), SqlStoreError> {
        // A schema up to date is left alone: a server's role then needs no right to change it
        // (read and write the two tables, read the migrations' table).
        let applied = self.applied_migrations().await;
        let up_to_date = |migrator: &sqlx::migrate::Migrator| {
            migrator
                .iter()
                .all(|migration| applied.contains(&migration.version))
        };
        match &self.backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(pool) => {
                static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
                if up_to_date(&MIGRATOR) {
                    return Ok(());
                }
                // SQLite has no lock a migration could take (on PostgreSQL sqlx takes an
                // advisory lock): replicas starting at once on a new file all find it
                // unmigrated, and all but the first fail on its tables or its write lock. Each
                // migration is one transaction, so a failed one left nothing behind; asked
                // again, the migrator finds what the first applied.
                starting(|| MIGRATOR.run(pool), |_| true)
                    .await
                    .map_err(SqlStoreError::migrate)
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres(pool) => {
                static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");
                if up_to_date(&MIGRATOR) {
                    return Ok(());
                }
                MIGRATOR.run(pool).await.map_err(SqlStoreError::migrate)
            }
        }
    }

    /// The versions of the migrations applied (none if they cannot be read: a new database).
    async fn applied_migrations(&self) -> Vec<i64> {
        let sql = "SELECT version FROM _sqlx_migrations WHERE success";
        let applied: Result<Vec<i64>, sqlx::Error> =
            on_pool!(self, pool => sqlx::query_scalar(sql).fetch_all(pool).await);
        applied.unwrap_or_default()
    }

    /// Every row whose revision is above `revision`, in revision order.
    ///
    /// Read in pages of [`PAGE`] rows (by revision: each row has its own), not in one query: a
    /// SQLite connection that returned a million rows in one result stalled for 2 to 3 s on
    /// its next query, which was the change query of the first revocation after start-up.
    pub(super) async fn changes_since(&self, revision: i64) -> Result<Vec<Row>, SqlStoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM api_keys WHERE revision > $1 ORDER BY revision LIMIT {PAGE}"
        );
        let mut changes = Vec::new();
        let mut from = revision;
        loop {
            let page: Vec<Row> = answered(async {
                on_pool!(self, pool => {
                    let rows = sqlx::query(&sql)
                        .bind(from)
                        .fetch_all(pool)
                        .await
                        .map_err(SqlStoreError::database)?;
                    rows.iter().map(|row| decode!(row)).collect()
                })
            })
            .await?;
            let full = page.len() == PAGE;
            if let Some(last) = page.last() {
                from = last.revision;
            }
            changes.extend(page);
            if !full {
                return Ok(changes);
            }
        }
    }

    /// The row whose digest is `digest` (by the `digest` column's unique index).
    pub(super) async fn row_by_digest(
        &self,
        digest: &KeyDigest,
    ) -> Result<Option<Row>, SqlStoreError> {
        let sql = format!("SELECT {COLUMNS} FROM api_keys WHERE digest = $1");
        answered(async {
            on_pool!(self, pool => {
                let row = sqlx::query(&sql)
                    .bind(digest.as_bytes().as_slice())
                    .fetch_optional(pool)
                    .await
                    .map_err(SqlStoreError::database)?;
                row.as_ref().map(|row| decode!(row)).transpose()
            })
        })
        .await
    }

    /// The revision of the latest change committed: every change up to it is readable.
    pub(super) async fn current_revision(&self) -> Result<i64, SqlStoreError> {
        let sql = "SELECT revision FROM api_keys_revision";
        answered(async {
            on_pool!(self, pool => {
                sqlx::query_scalar::<_, i64>(sql)
                    .fetch_one(pool)
                    .await
                    .map_err(SqlStoreError::database)
            })
        })
        .await
    }

    /// Every row, oldest first.
    pub(super) async fn rows(&self) -> Result<Vec<Row>, SqlStoreError> {
        let sql = format!("SELECT {COLUMNS} FROM api_keys ORDER BY created_at, id");
        on_pool!(self, pool => {
            let rows = sqlx::query(&sql)
                .fetch_all(pool)
                .await
                .map_err(SqlStoreError::database)?;
            rows.iter().map(|row| decode!(row)).collect()
        })
    }

    /// The rows of `principal`'s keys (by the `principal` column's index).
    pub(super) async fn rows_of(&self, principal: &str) -> Result<Vec<Row>, SqlStoreError> {
        self.rows_where("principal", principal).await
    }

    /// The row of key `id`.
    pub(super) async fn row(&self, id: &str) -> Result<Option<Row>, SqlStoreError> {
        Ok(self.rows_where("id", id).await?.pop())
    }

    /// The rows whose `column` (one of ours, indexed) is `value`.
    async fn rows_where(&self, column: &str, value: &str) -> Result<Vec<Row>, SqlStoreError> {
        let sql = format!("SELECT {COLUMNS} FROM api_keys WHERE {column} = $1");
        on_pool!(self, pool => {
            let rows = sqlx::query(&sql)
                .bind(value)
                .fetch_all(pool)
                .await
                .map_err(SqlStoreError::database)?;
            rows.iter().map(|row| decode!(row)).collect()
        })
    }

    /// Inserts `row` (its revision is the database's to assign).
    pub(super) async fn insert_row(&self, row: &Row) -> Result<(), SqlStoreError> {
        let sql = "INSERT INTO api_keys (id, start, digest, principal, organization, scopes, \
                   metadata, created_at, expires_at, revoked_at) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
        on_pool!(self, pool => {
            sqlx::query(sql)
                .bind(&row.id)
                .bind(&row.start)
                .bind(row.digest.as_bytes().as_slice())
                .bind(&row.principal)
                .bind(&row.organization)
                .bind(&row.scopes)
                .bind(&row.metadata)
                .bind(row.created_at)
                .bind(row.expires_at)
                .bind(row.revoked_at)
                .execute(pool)
                .await
                .map_err(SqlStoreError::database)?;
            Ok(())
        })
    }

    /// Marks key `id` revoked at `at` unless it already is; whether a row changed.
    pub(super) async fn mark_revoked(&self, id: &str, at: i64) -> Result<bool, SqlStoreError> {
        let sql = "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL";
        on_pool!(self, pool => {
            let done = sqlx::query(sql)
                .bind(at)
                .bind(id)
                .execute(pool)
                .await
                .map_err(SqlStoreError::database)?;
            Ok(done.rows_affected() == 1)
        })
    }

    /// Makes key `id` expire at `at`, unless it expires earlier already.
    pub(super) async fn expire_by(&self, id: &str, at: i64) -> Result<(), SqlStoreError> {
        let sql = "UPDATE api_keys SET expires_at = $1 \
                   WHERE id = $2 AND (expires_at IS NULL OR expires_at > $1)";
        on_pool!(self, pool => {
            sqlx::query(sql)
                .bind(at)
                .bind(id)
                .execute(pool)
                .await
                .map_err(SqlStoreError::database)?;
            Ok(())
        })
    }

    /// Records that the keys of `digests` were used at `at`, in one transaction. Takes no
    /// revision.
    pub(super) async fn touch(&self, digests: &[KeyDigest], at: i64) -> Result<(), SqlStoreError> {
        let sql = "UPDATE api_keys SET last_used_at = $1 \
                   WHERE digest = $2 AND (last_used_at IS NULL OR last_used_at < $1)";
        // Each statement is bounded, not the batch: a batch of 10,000 keys may take seconds.
        on_pool!(self, pool => {
            let begin = async { pool.begin().await.map_err(SqlStoreError::database) };
            let mut transaction = answered(begin).await?;
            for digest in digests {
                let update = sqlx::query(sql)
                    .bind(at)
                    .bind(digest.as_bytes().as_slice())
                    .execute(&mut *transaction);
                answered(async { update.await.map_err(SqlStoreError::database) }).await?;
            }
            answered(async { transaction.commit().await.map_err(SqlStoreError::database) }).await
        })
    }

    /// The PostgreSQL pool, if this database is PostgreSQL.
    #[cfg(feature = "postgres")]
    pub(super) fn postgres_pool(&self) -> Option<&sqlx::PgPool> {
        match &self.backend {
            Backend::Postgres(pool) => Some(pool),
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(_) => None,
        }
    }

    /// Whether this database is PostgreSQL (changes are pushed) rather than SQLite (polled).
    pub(super) fn is_postgres(&self) -> bool {
        #[cfg(feature = "postgres")]
        if matches!(self.backend, Backend::Postgres(_)) {
            return true;
        }
        false
    }
}

impl fmt::Debug for KeyDatabase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.is_postgres() {
            true => "postgres",
            false => "sqlite",
        };
        f.debug_struct("KeyDatabase")
            .field("backend", &kind)
            .field("format", &self.format)
            .finish()
    }
}

/// One row of `api_keys`, decoded. Times are Unix milliseconds.
#[derive(Clone)]
pub(super) struct Row {
    pub(super) id: String,
    pub(super) start: String,
    pub(super) digest: KeyDigest,
    pub(super) principal: String,
    pub(super) organization: Option<String>,
    /// A JSON array of strings.
    pub(super) scopes: String,
    /// A JSON object.
    pub(super) metadata: String,
    pub(super) created_at: i64,
    pub(super) expires_at: Option<i64>,
    pub(super) revoked_at: Option<i64>,
    pub(super) last_used_at: Option<i64>,
    pub(super) revision: i64,
}

/// `at` in Unix milliseconds (0 before 1970, saturating far in the future).
pub(super) fn millis(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |since| {
        i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
    })
}

/// Unix milliseconds as a time (negative ones as the epoch).
pub(super) fn time(millis: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(millis).unwrap_or(0))
}
