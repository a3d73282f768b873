//! `last_used_at`, written in batches off the request path: a request marks its key used (one
//! relaxed load once the key is marked), a task writes the marked keys every interval.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use super::database::millis;
use super::snapshot::Entry;
use super::{KeyDatabase, SqlStoreError};

/// Keys used since the last write. A key is queued once until its write succeeds: at most one
/// write per key per interval.
#[derive(Default)]
pub(super) struct Usage {
    pending: Mutex<Vec<Arc<Entry>>>,
}

impl Usage {
    /// Marks `entry` used (queues it the first time in an interval).
    pub(super) fn mark(&self, entry: &Arc<Entry>) {
        if !entry.used.load(Relaxed) && !entry.used.swap(true, Relaxed) {
            self.queue().push(Arc::clone(entry));
        }
    }

    /// Writes every queued key's `last_used_at` in one transaction. On failure the keys stay
    /// queued for the next flush.
    pub(super) async fn flush(&self, database: &KeyDatabase) -> Result<usize, SqlStoreError> {
        let batch = std::mem::take(&mut *self.queue());
        if batch.is_empty() {
            return Ok(0);
        }
        let ids: Vec<&str> = batch.iter().map(|entry| &*entry.id).collect();
        match database.touch(&ids, millis(SystemTime::now())).await {
            Ok(()) => {
                for entry in &batch {
                    entry.used.store(false, Relaxed);
                }
                Ok(batch.len())
            }
            Err(error) => {
                self.queue().extend(batch);
                Err(error)
            }
        }
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Entry>>> {
        // A push or a take cannot be left half-done by a panic.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
