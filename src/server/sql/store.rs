//! [`SqlKeyStore`]: the keys of a [`KeyDatabase`] as an in-process snapshot, kept current by
//! change events, so the database is never on the request path; or, lookup-through, bounded
//! caches kept current by the same events, the database asked on a miss.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tower::BoxError;

use super::cache::{CacheStats, Caches, Fill, Probe};
use super::database::Row;
use super::future::LookupFuture;
use super::outage::Health;
use super::snapshot::{Entry, Snapshot};
use super::usage::Usage;
use super::{KeyDatabase, OutagePolicy, SqlStoreError};
use crate::server::{KeyDigest, KeyRecord, KeyStore};

/// How many times a lookup-through miss asks the database when changes to its key keep
/// landing while it asks, before it answers the last reading uncached.
const ATTEMPTS: usize = 3;

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
/// For key sets too large to hold, [`SqlKeyStoreBuilder::lookup_through`] loads nothing and
/// keeps bounded caches of known and unknown keys instead, asking the database on a miss; the
/// same change events keep the caches current, under the same revision guard.
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
    keys: Keys,
    database: KeyDatabase,
    health: Health,
    usage: Usage,
    /// Syncs take turns: each reads the snapshot's revision and applies what is above it.
    sync: tokio::sync::Mutex<()>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Holds a lookup-through query between the database's answer and the caches, for the
    /// revision guard's test.
    #[cfg(test)]
    hold: Mutex<Option<Hold>>,
}

/// Where the keys are held in memory.
enum Keys {
    /// All of them.
    Snapshot(ArcSwap<Snapshot>),
    /// The ones looked up lately, and digests found unknown.
    LookupThrough(Caches),
}

#[cfg(test)]
struct Hold {
    /// Told when a query has its answer.
    answered: tokio::sync::oneshot::Sender<()>,
    /// Awaited before the answer goes to the caches.
    release: tokio::sync::oneshot::Receiver<()>,
}

/// Builds a [`SqlKeyStore`]: poll and usage intervals, outage policy, snapshot or
/// lookup-through.
#[derive(Debug, Clone)]
pub struct SqlKeyStoreBuilder {
    database: KeyDatabase,
    poll_interval: Duration,
    usage_interval: Duration,
    outage: OutagePolicy,
    lookup_through: Option<usize>,
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

    /// Holds no snapshot: looks keys up in the database on a miss, and keeps up to `capacity`
    /// keys found and `capacity` digests found unknown in memory (each cache drops its least
    /// recently used entry when full; a `capacity` of 0 counts as 1). For key sets too large
    /// to hold.
    ///
    /// A cache hit is answered at once; a miss waits for one indexed query by digest. The
    /// change events of the snapshot mode (PostgreSQL `NOTIFY`, the poll interval) update or
    /// drop cached entries, so a revocation, an expiry or a new key reaches a running store
    /// just as fast. The same revision guard holds: a lookup that read a key before a change
    /// and returns after it is not cached. While the database is unreachable, cached keys are
    /// served as the [`OutagePolicy`] allows a snapshot to be, and a miss is refused with 503.
    ///
    /// ```
    /// # use tower_api_auth::server::sql::{KeyDatabase, SqlKeyStore};
    /// # async fn open(database: KeyDatabase) -> Result<(), tower_api_auth::server::sql::SqlStoreError> {
    /// let store = SqlKeyStore::builder(database).lookup_through(100_000).open().await?;
    /// # let _ = store;
    /// # Ok(())
    /// # }
    /// ```
    pub fn lookup_through(mut self, capacity: usize) -> Self {
        self.lookup_through = Some(capacity);
        self
    }

    /// Loads every key (or, [`lookup_through`](Self::lookup_through), the current revision)
    /// and starts following changes. Fails if the database cannot be read: a server does not
    /// start without its keys.
    pub async fn open(self) -> Result<SqlKeyStore, SqlStoreError> {
        let keys = match self.lookup_through {
            None => Keys::Snapshot(ArcSwap::default()),
            // Changes from this revision on are followed; earlier ones are in the database,
            // where a miss reads them.
            Some(capacity) => Keys::LookupThrough(Caches::new(
                capacity,
                self.database.current_revision().await?,
            )),
        };
        let shared = Arc::new(Shared {
            keys,
            database: self.database,
            health: Health::new(self.outage),
            usage: Usage::default(),
            sync: tokio::sync::Mutex::new(()),
            tasks: Mutex::new(Vec::new()),
            #[cfg(test)]
            hold: Mutex::new(None),
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
            lookup_through: None,
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

    /// The highest revision applied to the snapshot (or the caches).
    pub fn revision(&self) -> i64 {
        self.shared.revision()
    }

    /// How many keys the snapshot holds (or, lookup-through, the cache of known keys),
    /// revoked and expired ones included.
    pub fn len(&self) -> usize {
        match &self.shared.keys {
            Keys::Snapshot(snapshot) => snapshot.load().len(),
            Keys::LookupThrough(caches) => caches.stats().keys,
        }
    }

    /// Whether the snapshot (or the cache of known keys) holds no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What a [lookup-through](SqlKeyStoreBuilder::lookup_through) store's caches hold and
    /// how often it asked the database; `None` for a snapshot.
    pub fn cache_stats(&self) -> Option<CacheStats> {
        match &self.shared.keys {
            Keys::Snapshot(_) => None,
            Keys::LookupThrough(caches) => Some(caches.stats()),
        }
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

    /// Holds the next lookup-through query between the database's answer and the caches:
    /// `answered` is told when it has its answer, and it goes on when `release` is sent to.
    #[cfg(test)]
    pub(super) fn hold_next_query(
        &self,
    ) -> (
        tokio::sync::oneshot::Receiver<()>,
        tokio::sync::oneshot::Sender<()>,
    ) {
        let (answered, answered_rx) = tokio::sync::oneshot::channel();
        let (release_tx, release) = tokio::sync::oneshot::channel();
        *self.shared.hold.lock().unwrap() = Some(Hold { answered, release });
        (answered_rx, release_tx)
    }
}

impl Shared {
    fn revision(&self) -> i64 {
        match &self.keys {
            Keys::Snapshot(snapshot) => snapshot.load().revision,
            Keys::LookupThrough(caches) => caches.revision(),
        }
    }

    async fn sync(&self) -> Result<(), SqlStoreError> {
        let from = self.revision();
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
        match &self.keys {
            // Under the turn: no other change lands between this load and the store.
            Keys::Snapshot(snapshot) => {
                if let Some(next) = snapshot.load().with(rows) {
                    snapshot.store(Arc::new(next));
                }
            }
            Keys::LookupThrough(caches) => caches.apply(rows),
        }
    }

    /// What `entry` answers, marking it used if it is not revoked.
    fn answer(&self, entry: &Arc<Entry>) -> KeyRecord {
        if !entry.record.is_revoked() {
            self.usage.mark(entry);
        }
        entry.record.clone()
    }

    /// A lookup-through miss: asks the database, and caches the answer unless a change to the
    /// key was applied meanwhile (then asks again, from the new revision).
    async fn look_through(
        self: Arc<Self>,
        digest: KeyDigest,
        mut seen: i64,
    ) -> Result<Option<KeyRecord>, BoxError> {
        let Keys::LookupThrough(caches) = &self.keys else {
            unreachable!("only lookup-through stores ask the database on a lookup")
        };
        let mut attempt = 1;
        loop {
            caches.queried();
            let found = match self.database.row_by_digest(&digest).await {
                Ok(found) => found,
                Err(error) => {
                    // The follower's next sync says when the database is back.
                    self.health.failed(&error);
                    return Err(error.into());
                }
            };
            #[cfg(test)]
            self.held().await;
            match caches.fill(&digest, seen, found) {
                Fill::Cached(entry) => return Ok(entry.map(|entry| self.answer(&entry))),
                Fill::Stale(found) if attempt == ATTEMPTS => {
                    // The key keeps changing: this reading is as new as the revision applied
                    // when it started, as a request racing a change is answered.
                    return Ok(found.map(|row| Entry::from(*row).record));
                }
                Fill::Stale(_) => {
                    attempt += 1;
                    seen = caches.revision();
                }
            }
        }
    }

    #[cfg(test)]
    async fn held(&self) {
        let hold = self.hold.lock().unwrap().take();
        if let Some(hold) = hold {
            let _ = hold.answered.send(());
            let _ = hold.release.await;
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
                    if revision.is_none_or(|revision| revision > shared.revision()) {
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
    type Lookup = LookupFuture;

    fn lookup(&self, digest: &KeyDigest) -> Self::Lookup {
        let shared = &*self.shared;
        if let Err(error) = shared.health.check() {
            return LookupFuture::ready(Err(error.into()));
        }
        let caches = match &shared.keys {
            Keys::Snapshot(snapshot) => {
                let found = snapshot
                    .load()
                    .get(digest)
                    .map(|entry| shared.answer(entry));
                return LookupFuture::ready(Ok(found));
            }
            Keys::LookupThrough(caches) => caches,
        };
        match caches.probe(digest) {
            Probe::Known(entry) => LookupFuture::ready(Ok(Some(shared.answer(&entry)))),
            Probe::Unknown => LookupFuture::ready(Ok(None)),
            // While the database is down (and the policy serves what is in memory), a miss is
            // refused at once rather than after the pool's acquire timeout.
            Probe::Miss { .. } if !shared.health.reachable() => {
                LookupFuture::ready(Err(SqlStoreError::Unavailable.into()))
            }
            Probe::Miss { seen } => {
                LookupFuture::query(Arc::clone(&self.shared).look_through(*digest, seen))
            }
        }
    }
}

impl fmt::Debug for SqlKeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlKeyStore")
            .field("database", &self.shared.database)
            .field(
                "mode",
                &match self.shared.keys {
                    Keys::Snapshot(_) => "snapshot",
                    Keys::LookupThrough(_) => "lookup-through",
                },
            )
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

    /// A lookup-through miss reads the key while it is valid; the key is revoked and the
    /// revocation applied before the answer reaches the caches. The answer must not be cached
    /// (it would admit the key until the next change to it) nor be given: the lookup asks
    /// again. Without the guard in `Caches::fill` both assertions fail.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_in_flight_lookup_cannot_cache_a_revoked_key() {
        let (_dir, database) = sqlite_database().await;
        let issued = database.create(NewKey::new("alice")).await.unwrap();
        let digest = KeyDigest::of(issued.key().expose());
        let store = SqlKeyStore::builder(database.clone())
            .lookup_through(16)
            .poll_interval(Duration::from_secs(3600))
            .open()
            .await
            .unwrap();

        let (answered, release) = store.hold_next_query();
        let in_flight = tokio::spawn(store.lookup(&digest));
        // The database has answered: the key, valid.
        answered.await.unwrap();
        database.revoke(issued.info().id()).await.unwrap();
        store.refresh().await.unwrap();
        release.send(()).unwrap();

        let answer = in_flight.await.unwrap().unwrap().unwrap();
        assert!(
            answer.is_revoked(),
            "the in-flight lookup answered a revoked key as valid"
        );
        let cached = store.lookup(&digest).await.unwrap().unwrap();
        assert!(cached.is_revoked(), "the stale answer was cached");
        let stats = store.cache_stats().unwrap();
        assert_eq!(stats.keys, 1);
        assert_eq!(
            stats.database_lookups, 2,
            "asked again once, then answered from the cache"
        );
    }

    /// The same with a key created while a lookup that found nothing was in flight: the
    /// "unknown" answer is not cached, so the key is admitted.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_in_flight_miss_cannot_hide_a_created_key() {
        let (_dir, database) = sqlite_database().await;
        let store = SqlKeyStore::builder(database.clone())
            .lookup_through(16)
            .poll_interval(Duration::from_secs(3600))
            .open()
            .await
            .unwrap();
        let key = database.format().issue();
        let digest = KeyDigest::of(key.expose());

        let (answered, release) = store.hold_next_query();
        let in_flight = tokio::spawn(store.lookup(&digest));
        answered.await.unwrap();
        let row = Row {
            id: "bob-key".into(),
            start: "acme_".into(),
            digest,
            principal: "bob".into(),
            organization: None,
            scopes: "[]".into(),
            metadata: "{}".into(),
            created_at: 0,
            expires_at: None,
            revoked_at: None,
            last_used_at: None,
            revision: 0,
        };
        database.insert_row(&row).await.unwrap();
        store.refresh().await.unwrap();
        release.send(()).unwrap();

        let answer = in_flight.await.unwrap().unwrap();
        assert_eq!(answer.unwrap().principal().id(), "bob");
        let cached = store.lookup(&digest).await.unwrap().unwrap();
        assert_eq!(cached.principal().id(), "bob");
        assert_eq!(store.cache_stats().unwrap().unknown, 0);
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
