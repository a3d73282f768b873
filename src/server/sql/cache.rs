//! The lookup-through mode's memory: bounded caches of known keys and of unknown digests, and
//! the revision guard that keeps a database lookup answered before a change from caching what
//! the change undid.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use hashlink::LruCache;

use super::database::Row;
use super::snapshot::Entry;
use crate::server::KeyDigest;

/// How many locks the caches are split into, by a byte of the digest, so that lookups on
/// different keys seldom wait for each other.
const SHARDS: usize = 16;

/// What a lookup-through store holds: see [`SqlKeyStoreBuilder::lookup_through`].
///
/// [`SqlKeyStoreBuilder::lookup_through`]: super::SqlKeyStoreBuilder::lookup_through
pub(super) struct Caches {
    shards: Box<[Mutex<Shard>]>,
    /// The highest revision applied.
    revision: AtomicI64,
    /// Database lookups made (misses of both caches).
    queries: AtomicU64,
}

/// One lock's part of the caches. Each map is bounded and drops its least recently used entry
/// when full.
struct Shard {
    /// Keys found in the database, revoked ones included, with their revision.
    known: Bounded<Arc<Entry>>,
    /// Digests the database did not hold.
    unknown: Bounded<()>,
    /// The revision of the latest change applied to each recently changed digest.
    changed: Bounded<i64>,
    /// The highest revision dropped from `changed`: a digest not in `changed` last changed at
    /// this revision or earlier.
    floor: i64,
}

/// An LRU map holding at most `capacity` entries.
struct Bounded<V> {
    map: LruCache<KeyDigest, V>,
    capacity: usize,
}

impl<V> Bounded<V> {
    fn new(capacity: usize) -> Self {
        Self {
            map: LruCache::new_unbounded(),
            capacity,
        }
    }

    /// Inserts (or refreshes) `key`; returns the entry dropped to stay within the capacity.
    fn insert(&mut self, key: KeyDigest, value: V) -> Option<(KeyDigest, V)> {
        self.map.insert(key, value);
        (self.map.len() > self.capacity)
            .then(|| self.map.remove_lru())
            .flatten()
    }
}

/// What the caches know of a digest.
pub(super) enum Probe {
    /// A key, found earlier (or changed since).
    Known(Arc<Entry>),
    /// The database did not hold it when last asked, and no change since created it.
    Unknown,
    /// Neither: ask the database, and pass `seen` (the revision applied before asking) to
    /// [`Caches::fill`].
    Miss {
        /// The revision applied before the database lookup.
        seen: i64,
    },
}

/// What a database lookup's answer became.
pub(super) enum Fill {
    /// The answer, now cached (or a newer one cached meanwhile).
    Cached(Option<Arc<Entry>>),
    /// A change to the key was applied while the lookup ran and the answer may predate it: it
    /// was not cached. Ask again (or answer it uncached, as a request racing a change).
    Stale(Option<Box<Row>>),
}

impl Caches {
    /// Caches of at most `capacity` known keys and `capacity` unknown digests, at `revision`.
    pub(super) fn new(capacity: usize, revision: i64) -> Self {
        let capacity = capacity.max(1);
        let shards = capacity.min(SHARDS);
        // Shares adding up to `capacity` exactly, so the bound is the one configured.
        let shard = |index: usize| capacity / shards + usize::from(index < capacity % shards);
        Self {
            shards: (0..shards)
                .map(|index| {
                    Mutex::new(Shard {
                        known: Bounded::new(shard(index)),
                        unknown: Bounded::new(shard(index)),
                        changed: Bounded::new(shard(index)),
                        floor: 0,
                    })
                })
                .collect(),
            revision: AtomicI64::new(revision),
            queries: AtomicU64::new(0),
        }
    }

    fn shard(&self, digest: &KeyDigest) -> MutexGuard<'_, Shard> {
        let index = usize::from(digest.as_bytes()[31]) % self.shards.len();
        // Every change to a shard is a few map operations that cannot panic half-way.
        self.shards[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The highest revision applied.
    pub(super) fn revision(&self) -> i64 {
        self.revision.load(Ordering::SeqCst)
    }

    /// What the caches know of `digest`.
    pub(super) fn probe(&self, digest: &KeyDigest) -> Probe {
        // Read before the probe, so before the database lookup that a miss leads to.
        let seen = self.revision();
        let mut shard = self.shard(digest);
        if let Some(entry) = shard.known.map.get(digest) {
            return Probe::Known(Arc::clone(entry));
        }
        if shard.unknown.map.get(digest).is_some() {
            return Probe::Unknown;
        }
        Probe::Miss { seen }
    }

    /// Counts a database lookup.
    pub(super) fn queried(&self) {
        self.queries.fetch_add(1, Ordering::Relaxed);
    }

    /// Caches what a database lookup for `digest` found, unless it may be stale.
    ///
    /// The revision guard: the lookup started when `seen` was applied, so it saw every change
    /// up to `seen`. If a later change to `digest` has been applied since (a revocation, say),
    /// the answer may have been read before it: it is not cached, else it would re-admit the
    /// key until the next change. A found row as new as that change is cached all the same.
    pub(super) fn fill(&self, digest: &KeyDigest, seen: i64, found: Option<Row>) -> Fill {
        let mut shard = self.shard(digest);
        if seen > self.revision() {
            // The caches were emptied since the lookup began: the database's history went
            // back, and its answer may be from before.
            return Fill::Stale(found.map(Box::new));
        }
        // The latest change applied to `digest`, or a revision no earlier than it.
        let changed = shard
            .changed
            .map
            .peek(digest)
            .copied()
            .unwrap_or(shard.floor);
        let current = found.as_ref().map_or(seen, |row| row.revision.max(seen));
        if changed > current {
            return Fill::Stale(found.map(Box::new));
        }
        let Some(row) = found else {
            if let Some(entry) = shard.known.map.get(digest) {
                // Found by a later lookup meanwhile.
                return Fill::Cached(Some(Arc::clone(entry)));
            }
            shard.unknown.insert(*digest, ());
            return Fill::Cached(None);
        };
        if let Some(entry) = shard.known.map.get(digest) {
            if entry.revision >= row.revision {
                return Fill::Cached(Some(Arc::clone(entry)));
            }
        }
        let entry = Arc::new(Entry::from(&row));
        shard.unknown.map.remove(digest);
        shard.known.insert(*digest, Arc::clone(&entry));
        Fill::Cached(Some(entry))
    }

    /// Forgets everything cached, the database being at `revision` (lower than the caches'):
    /// a lookup in flight, having seen a higher revision, is not cached but asked again (see
    /// [`fill`](Self::fill)).
    pub(super) fn forget(&self, revision: i64) {
        self.revision.store(revision, Ordering::SeqCst);
        for shard in &self.shards {
            let mut shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
            shard.known.map.clear();
            shard.unknown.map.clear();
            shard.changed.map.clear();
            shard.floor = revision;
        }
    }

    /// Applies changed rows: a cached key takes its new row (if newer), an unknown digest that
    /// a change created is forgotten, and every changed digest's revision is recorded for
    /// [`fill`](Self::fill)'s guard. Keys not cached are not added.
    pub(super) fn apply(&self, rows: Vec<Row>) {
        let Some(newest) = rows.iter().map(|row| row.revision).max() else {
            return;
        };
        for row in rows {
            let digest = row.digest;
            let mut shard = self.shard(&digest);
            let latest = shard.changed.map.peek(&digest).copied();
            let latest = latest.map_or(row.revision, |latest| latest.max(row.revision));
            if let Some((_, dropped)) = shard.changed.insert(digest, latest) {
                shard.floor = shard.floor.max(dropped);
            }
            shard.unknown.map.remove(&digest);
            if let Some(entry) = shard.known.map.peek_mut(&digest) {
                if entry.revision < row.revision {
                    *entry = Arc::new(Entry::from(&row));
                }
            }
        }
        self.revision.fetch_max(newest, Ordering::SeqCst);
    }

    /// How many known keys and unknown digests are cached, and database lookups made.
    pub(super) fn stats(&self) -> CacheStats {
        let (mut keys, mut unknown) = (0, 0);
        for shard in &self.shards {
            let shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
            keys += shard.known.map.len();
            unknown += shard.unknown.map.len();
        }
        CacheStats {
            keys,
            unknown,
            database_lookups: self.queries.load(Ordering::Relaxed),
        }
    }
}

/// What a lookup-through [`SqlKeyStore`](super::SqlKeyStore) holds in memory, from
/// [`SqlKeyStore::cache_stats`](super::SqlKeyStore::cache_stats): for metrics and health checks.
///
/// ```
/// # use tower_api_auth::server::sql::CacheStats;
/// fn report(stats: CacheStats) -> String {
///     format!("{} keys, {} unknown, {} database lookups", stats.keys, stats.unknown, stats.database_lookups)
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Keys cached, revoked and expired ones included (at most the capacity).
    pub keys: usize,
    /// Digests cached as unknown (at most the capacity).
    pub unknown: usize,
    /// Database lookups made since the store was opened: lookups that neither cache answered.
    pub database_lookups: u64,
}
