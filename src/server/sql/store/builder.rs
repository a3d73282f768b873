//! [`SqlKeyStoreBuilder`]: a [`SqlKeyStore`]'s settings, and its opening (the first load, the
//! background tasks started).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::Notify;

use super::{Keys, Shared, SqlKeyStore};
use crate::server::sql::cache::Caches;
use crate::server::sql::outage::Health;
use crate::server::sql::usage::Usage;
use crate::server::sql::{KeyDatabase, OutagePolicy, SqlStoreError};

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
    /// The defaults: see [`SqlKeyStore::builder`].
    pub(super) fn new(database: KeyDatabase) -> Self {
        Self {
            database,
            poll_interval: Duration::from_secs(1),
            usage_interval: Duration::from_secs(60),
            outage: OutagePolicy::default(),
            lookup_through: None,
        }
    }

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
            let listen =
                super::tasks::listen(pool.clone(), Arc::downgrade(&shared), Arc::clone(&wake));
            shared.tasks().push(tokio::spawn(listen));
        }
        shared.sync().await?;
        let follow = super::tasks::follow(Arc::downgrade(&shared), wake, self.poll_interval);
        let record = super::tasks::record_usage(Arc::downgrade(&shared), self.usage_interval);
        shared
            .tasks()
            .extend([tokio::spawn(follow), tokio::spawn(record)]);
        Ok(SqlKeyStore { shared })
    }
}
