//! `last_used_at`, written in batches off the request path: a request queues its key's digest
//! the first time the key is used in a usage interval (one relaxed load per request after
//! that), and a task writes the queued keys every interval.

use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use super::database::millis;
use super::snapshot::Entry;
use super::{KeyDatabase, SqlStoreError};
use crate::server::KeyDigest;

/// Keys used since the last write, and the current interval. A key is queued once per interval
/// (its entry remembers the interval it was queued in) and stays queued until its write
/// succeeds: at most one write per key per interval.
pub(super) struct Usage {
    /// The current interval, never 0 (a new entry's); a successful write starts the next. A
    /// key unused for 2^32 - 1 intervals (136 years of minutes) misses one interval's write.
    interval: AtomicU32,
    pending: Mutex<Vec<KeyDigest>>,
}

impl Default for Usage {
    fn default() -> Self {
        Self {
            interval: AtomicU32::new(1),
            pending: Mutex::default(),
        }
    }
}

impl Usage {
    /// Marks the key of `digest` used (queues it the first time in an interval).
    pub(super) fn mark(&self, digest: &KeyDigest, entry: &Entry) {
        let interval = self.interval.load(Relaxed);
        if entry.used.load(Relaxed) != interval && entry.used.swap(interval, Relaxed) != interval {
            self.queue().push(*digest);
        }
    }

    /// Writes every queued key's `last_used_at` in one transaction. On failure the keys stay
    /// queued for the next flush.
    pub(super) async fn flush(&self, database: &KeyDatabase) -> Result<usize, SqlStoreError> {
        let mut batch = std::mem::take(&mut *self.queue());
        // A key first used while the previous write ran is queued in both intervals.
        batch.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        batch.dedup();
        if batch.is_empty() {
            return Ok(0);
        }
        match database.touch(&batch, millis(SystemTime::now())).await {
            Ok(()) => {
                let next = |interval: u32| Some(interval.checked_add(1).unwrap_or(1));
                let _ = self.interval.fetch_update(Relaxed, Relaxed, next);
                Ok(batch.len())
            }
            Err(error) => {
                self.queue().extend(batch);
                Err(error)
            }
        }
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Vec<KeyDigest>> {
        // A push or a take cannot be left half-done by a panic.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
