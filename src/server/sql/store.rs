//! [`SqlKeyStore`]: the keys of a [`KeyDatabase`] as an in-process snapshot, kept current by
//! change events, so the database is never on the request path.

use std::fmt;
use std::future::{Ready, ready};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tower::BoxError;

use super::database::Row;
use super::outage::Health;
use super::snapshot::Snapshot;
use super::usage::Usage;
use super::{KeyDatabase, OutagePolicy, SqlStoreError};
use crate::server::{KeyDigest, KeyRecord, KeyStore};

/// The PostgreSQL channel the schema's trigger notifies, with the new revision as payload.
#[cfg(feature = "postgres")]
const CHANNEL: &str = "tower_api_auth_keys";

/// A [`KeyStore`] over a [`KeyDatabase`]; see the [module docs](super) for an example.
///
/// Every key is loaded at start-up into an in-process snapshot; a lookup is one atomic load and
/// one hash-map probe, as with [`MemoryKeyStore`](crate::server::MemoryKeyStore), and never
/// waits for the database. The snapshot is split into 256 shards by digest, and a change copies
/// only the shards it touches, so a revocation applies as fast among a million keys as among
/// ten. A background task applies every change above the snapshot's
/// revision: on PostgreSQL as soon as the schema's trigger `NOTIFY`s it (and at each poll
/// interval, in case a notification was lost), on SQLite at each poll interval. A change
/// replaces what is known of a key only if its revision is higher, so nothing that arrives late
/// re-admits a revoked key.
///
/// While the database is unreachable the [`OutagePolicy`] applies. Uses are written to
/// `last_used_at` in batches, at most once per key per usage interval.
///
/// Cloning is cheap: clones share the snapshot. The background tasks stop when the last clone
/// is dropped. It must be opened inside a Tokio runtime.
#[derive(Clone)]
pub struct SqlKeyStore {
    shared: Arc<Shared>,
}

struct Shared {
    snapshot: ArcSwap<Snapshot>,
    database: KeyDatabase,
    health: Health,
    usage: Usage,
    /// Syncs take turns: each reads the snapshot's revision and applies what is above it.
    sync: tokio::sync::Mutex<()>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

/// Builds a [`SqlKeyStore`]: poll and usage intervals, outage policy.
#[derive(Debug, Clone)]
pub struct SqlKeyStoreBuilder {
    database: KeyDatabase,
    poll_interval: Duration,
    usage_interval: Duration,
    outage: OutagePolicy,
}

impl SqlKeyStoreBuilder {
    /// How often the store asks for changes (default 1 s): SQLite's revocation latency, and on
    /// PostgreSQL the bound on a lost notification and the heartbeat behind
    /// [`SqlKeyStore::snapshot_age`].
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval.max(Duration::from_millis(1));
        self
    }

    /// How often used keys' `last_used_at` is written (default 60 s).
    pub fn usage_interval(mut self, interval: Duration) -> Self {
        self.usage_interval = interval.max(Duration::from_millis(1));
        self
    }

    /// What to do while the database is unreachable (default: serve the snapshot for up to
    /// five minutes).
    pub fn outage(mut self, policy: OutagePolicy) -> Self {
        self.outage = policy;
        self
    }

    /// Loads every key and starts following changes. Fails if the database cannot be read:
    /// a server does not start without its keys.
    pub async fn open(self) -> Result<SqlKeyStore, SqlStoreError> {
        let shared = Arc::new(Shared {
            snapshot: ArcSwap::default(),
            database: self.database,
            health: Health::new(self.outage),
            usage: Usage::default(),
            sync: tokio::sync::Mutex::new(()),
            tasks: Mutex::new(Vec::new()),
        });
        let wake = Arc::new(Notify::new());
        // Listen before loading: a change committed during the load is notified, not missed.
        #[cfg(feature = "postgres")]
        if let Some(pool) = shared.database.postgres_pool() {
            let listen = listen(pool.clone(), Arc::downgrade(&shared), Arc::clone(&wake));
            shared.tasks().push(tokio::spawn(listen));
        }
        shared.sync().await?;
        let follow = follow(Arc::downgrade(&shared), wake, self.poll_interval);
        let record = record_usage(Arc::downgrade(&shared), self.usage_interval);
        shared
            .tasks()
            .extend([tokio::spawn(follow), tokio::spawn(record)]);
        Ok(SqlKeyStore { shared })
    }
}

impl SqlKeyStore {
    /// A store over `database`, to configure.
    pub fn builder(database: KeyDatabase) -> SqlKeyStoreBuilder {
        SqlKeyStoreBuilder {
            database,
            poll_interval: Duration::from_secs(1),
            usage_interval: Duration::from_secs(60),
            outage: OutagePolicy::default(),
        }
    }

    /// A store over `database` with the defaults: see [`builder`](Self::builder).
    pub async fn open(database: KeyDatabase) -> Result<Self, SqlStoreError> {
        Self::builder(database).open().await
    }

    /// The database, to manage keys.
    pub fn database(&self) -> &KeyDatabase {
        &self.shared.database
    }

    /// Time since the snapshot was last confirmed current: up to the poll interval while the
    /// database answers, growing while it does not. For health checks.
    pub fn snapshot_age(&self) -> Duration {
        self.shared.health.age()
    }

    /// Whether the last attempt to read the database succeeded.
    pub fn database_reachable(&self) -> bool {
        self.shared.health.reachable()
    }

    /// The highest revision in the snapshot.
    pub fn revision(&self) -> i64 {
        self.shared.snapshot.load().revision
    }

    /// How many keys the snapshot holds, revoked and expired ones included.
    pub fn len(&self) -> usize {
        self.shared.snapshot.load().len()
    }

    /// Whether the snapshot holds no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Applies every change now, without waiting for an event or the poll interval.
    pub async fn refresh(&self) -> Result<(), SqlStoreError> {
        self.shared.sync().await
    }

    /// Writes the queued `last_used_at` now (before a shutdown, say); how many keys it wrote.
    pub async fn flush_usage(&self) -> Result<usize, SqlStoreError> {
        self.shared.usage.flush(&self.shared.database).await
    }

    /// Applies rows read earlier, as a slow load would: for the revision guard's tests.
    #[cfg(test)]
    pub(super) async fn apply(&self, rows: Vec<Row>) {
        self.shared.apply(rows).await;
    }
}

impl Shared {
    async fn sync(&self) -> Result<(), SqlStoreError> {
        let from = self.snapshot.load().revision;
        match self.database.changes_since(from).await {
            Ok(rows) => {
                self.apply(rows).await;
                self.health.synced();
                Ok(())
            }
            Err(error) => {
                self.health.failed(&error);
                Err(error)
            }
        }
    }

    async fn apply(&self, rows: Vec<Row>) {
        let _turn = self.sync.lock().await;
        // Under the turn: no other change lands between this load and the store.
        if let Some(next) = self.snapshot.load().with(rows) {
            self.snapshot.store(Arc::new(next));
        }
    }

    fn tasks(&self) -> std::sync::MutexGuard<'_, Vec<JoinHandle<()>>> {
        self.tasks.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        for task in self
            .tasks
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
        {
            task.abort();
        }
    }
}

/// Applies changes when woken (a notification) and at every tick, until the store is dropped.
async fn follow(shared: Weak<Shared>, wake: Arc<Notify>, interval: Duration) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        tokio::select! {
            () = wake.notified() => {}
            _ = ticks.tick() => {}
        }
        let Some(shared) = shared.upgrade() else {
            return;
        };
        // A failure is logged and recorded by the health state; the next tick tries again.
        let _ = shared.sync().await;
    }
}

/// Writes `last_used_at` every interval, until the store is dropped.
async fn record_usage(shared: Weak<Shared>, interval: Duration) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    // Said once when writing fails and once when it works again, not at every interval of an
    // outage (which the store reports on its own).
    let mut failing = false;
    loop {
        ticks.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        match shared.usage.flush(&shared.database).await {
            Err(error) if !failing => {
                failing = true;
                tracing::warn!(%error, "could not record keys' last use; will retry");
            }
            Err(_) => {}
            Ok(_) if failing => {
                failing = false;
                tracing::info!("keys' last use recorded again");
            }
            Ok(_) => {}
        }
    }
}

/// Wakes the follower on every notification above the snapshot's revision, and after every
/// (re)connection, until the store is dropped.
#[cfg(feature = "postgres")]
async fn listen(pool: sqlx::PgPool, shared: Weak<Shared>, wake: Arc<Notify>) {
    use sqlx::postgres::PgListener;
    const BACKOFF: Duration = Duration::from_millis(250);
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::debug!(%error, "cannot listen for key changes yet");
                tokio::time::sleep(BACKOFF).await;
                continue;
            }
        };
        if let Err(error) = listener.listen(CHANNEL).await {
            tracing::debug!(%error, "cannot listen for key changes yet");
            tokio::time::sleep(BACKOFF).await;
            continue;
        }
        // Anything committed while not listening.
        wake.notify_one();
        loop {
            match listener.try_recv().await {
                Ok(Some(notification)) => {
                    let Some(shared) = shared.upgrade() else {
                        return;
                    };
                    // A late or repeated event for a revision already applied wakes nobody.
                    let revision = notification.payload().parse::<i64>().ok();
                    if revision.is_none_or(|revision| revision > shared.snapshot.load().revision) {
                        wake.notify_one();
                    }
                }
                // The connection was lost; the next `try_recv` reconnects. Catch up meanwhile.
                Ok(None) => wake.notify_one(),
                Err(error) => {
                    tracing::debug!(%error, "lost the key-change listener; reconnecting");
                    wake.notify_one();
                    tokio::time::sleep(BACKOFF).await;
                    break;
                }
            }
        }
    }
}

impl KeyStore for SqlKeyStore {
    type Lookup = Ready<Result<Option<KeyRecord>, BoxError>>;

    fn lookup(&self, digest: &KeyDigest) -> Self::Lookup {
        let shared = &*self.shared;
        if let Err(error) = shared.health.check() {
            return ready(Err(error.into()));
        }
        let snapshot = shared.snapshot.load();
        let found = snapshot.get(digest).map(|entry| {
            if !entry.record.is_revoked() {
                shared.usage.mark(entry);
            }
            entry.record.clone()
        });
        ready(Ok(found))
    }
}

impl fmt::Debug for SqlKeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlKeyStore")
            .field("database", &self.shared.database)
            .field("keys", &self.len())
            .field("revision", &self.revision())
            .field("snapshot_age", &self.snapshot_age())
            .finish()
    }
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use super::*;
    use crate::server::KeyFormat;
    use crate::server::sql::NewKey;
    use futures::FutureExt;

    fn lookup(store: &SqlKeyStore, digest: &KeyDigest) -> Option<KeyRecord> {
        match store.lookup(digest).now_or_never() {
            Some(Ok(found)) => found,
            other => panic!("{other:?}"),
        }
    }

    /// A key database in a SQLite file of a temporary directory (kept while the handle lives).
    async fn sqlite_database() -> (tempfile::TempDir, KeyDatabase) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("keys.db").display());
        let database = KeyDatabase::connect(&url, KeyFormat::new("acme").unwrap())
            .await
            .unwrap();
        (dir, database)
    }

    /// A load that read the key before its revocation and lands after it (a slow start-up
    /// load, a sync racing the follower, a late event) must not re-admit the key. Without the
    /// revision guard in `Snapshot::with` the stale row overwrites the revoked one and this
    /// fails.
    #[tokio::test]
    async fn an_in_flight_load_cannot_re_admit_a_revoked_key() {
        let (_dir, database) = sqlite_database().await;
        let issued = database.create(NewKey::new("alice")).await.unwrap();
        let digest = KeyDigest::of(issued.key().expose());
        let store = SqlKeyStore::open(database.clone()).await.unwrap();

        // The in-flight load: rows read now, while the key is valid...
        let in_flight = database.changes_since(0).await.unwrap();
        assert!(!lookup(&store, &digest).unwrap().is_revoked());

        // ...the revocation is applied meanwhile...
        database.revoke(issued.info().id()).await.unwrap();
        store.refresh().await.unwrap();
        assert!(lookup(&store, &digest).unwrap().is_revoked());
        let revision = store.revision();

        // ...and the load lands late, twice over (a repeated event too).
        store.apply(in_flight.clone()).await;
        store.apply(in_flight).await;
        assert!(lookup(&store, &digest).unwrap().is_revoked());
        assert_eq!(store.revision(), revision);
    }

    #[tokio::test]
    async fn revoked_keys_are_not_marked_used() {
        let (_dir, database) = sqlite_database().await;
        let issued = database.create(NewKey::new("alice")).await.unwrap();
        database.revoke(issued.info().id()).await.unwrap();
        let store = SqlKeyStore::open(database).await.unwrap();
        assert!(
            lookup(&store, &KeyDigest::of(issued.key().expose()))
                .unwrap()
                .is_revoked()
        );
        assert_eq!(store.flush_usage().await.unwrap(), 0);
    }
}
