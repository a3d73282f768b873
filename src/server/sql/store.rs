//! [`SqlKeyStore`]: the keys of a [`KeyDatabase`] as an in-process snapshot, kept current by
//! change events, so the database is never on the request path; or, lookup-through, bounded
//! caches kept current by the same events, the database asked on a miss.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::task::JoinHandle;
use tower::BoxError;

use super::cache::{CacheStats, Caches, Fill, Probe};
use super::database::Row;
use super::future::LookupFuture;
use super::outage::Health;
use super::snapshot::{Entry, Snapshot};
use super::usage::Usage;
use super::{KeyDatabase, SqlStoreError};
use crate::server::{KeyDigest, KeyRecord, KeyStore};

mod builder;
mod tasks;

pub use self::builder::SqlKeyStoreBuilder;

/// How many times a lookup-through miss asks the database when changes to its key keep
/// landing while it asks, before it answers the last reading uncached.
const ATTEMPTS: usize = 3;

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
/// While the database is unreachable the [`OutagePolicy`](super::OutagePolicy) applies. Uses
/// are written to `last_used_at` in batches, at most once per key per usage interval.
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

/// What a sync read.
enum Changes {
    /// The rows changed since the revision applied.
    Since(Vec<Row>),
    /// Every row (none for a lookup-through store), the database's history having gone back
    /// to `revision`.
    All { rows: Vec<Row>, revision: i64 },
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

impl SqlKeyStore {
    /// A store over `database`, to configure.
    pub fn builder(database: KeyDatabase) -> SqlKeyStoreBuilder {
        SqlKeyStoreBuilder::new(database)
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
        match self.read_changes().await {
            Ok(Changes::Since(rows)) => self.apply(rows).await,
            Ok(Changes::All { rows, revision }) => self.reload(rows, revision).await,
            Err(error) => {
                self.health.failed(&error);
                return Err(error);
            }
        }
        self.health.synced();
        Ok(())
    }

    /// The changes above the revision applied; or every row, if the database's revision
    /// counter is below it.
    ///
    /// The counter only grows, so a counter below what was applied means the database's
    /// history was wound back: restored from a backup, or failed over to a standby that had not
    /// received the latest changes. Its changes from then on take revisions the store has
    /// applied already, and the revision guard would skip them (a key revoked after the restore
    /// would stay admitted). Everything is read again instead.
    async fn read_changes(&self) -> Result<Changes, SqlStoreError> {
        let from = self.revision();
        let revision = self.database.current_revision().await?;
        if revision >= from {
            return Ok(Changes::Since(self.database.changes_since(from).await?));
        }
        tracing::error!(
            applied = from,
            database = revision,
            "the key database's revision went back (restored from a backup, or failed over to \
             a standby that lagged): reading every key again"
        );
        let rows = match &self.keys {
            Keys::Snapshot(_) => self.database.changes_since(0).await?,
            // Its caches are emptied: keys are asked for again as requests present them.
            Keys::LookupThrough(_) => Vec::new(),
        };
        Ok(Changes::All { rows, revision })
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

    /// Replaces everything known with `rows`, read at `revision` or later (lookup-through:
    /// forgets everything cached).
    async fn reload(&self, rows: Vec<Row>, revision: i64) {
        let _turn = self.sync.lock().await;
        match &self.keys {
            Keys::Snapshot(snapshot) => {
                snapshot.store(Arc::new(Snapshot::reloaded(rows, revision)));
            }
            Keys::LookupThrough(caches) => caches.forget(revision),
        }
    }

    /// What `entry` (the key of `digest`) answers, marking it used if it is not revoked.
    fn answer(&self, digest: &KeyDigest, entry: &Entry) -> KeyRecord {
        if !entry.is_revoked() {
            self.usage.mark(digest, entry);
        }
        entry.record()
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
                Fill::Cached(entry) => return Ok(entry.map(|entry| self.answer(&digest, &entry))),
                Fill::Stale(found) if attempt == ATTEMPTS => {
                    // The key keeps changing: this reading is as new as the revision applied
                    // when it started, as a request racing a change is answered.
                    return Ok(found.map(|row| Entry::from(&*row).record()));
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
                    .map(|entry| shared.answer(digest, entry));
                return LookupFuture::ready(Ok(found));
            }
            Keys::LookupThrough(caches) => caches,
        };
        match caches.probe(digest) {
            Probe::Known(entry) => LookupFuture::ready(Ok(Some(shared.answer(digest, &entry)))),
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
mod tests;
