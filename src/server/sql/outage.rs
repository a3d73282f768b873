//! What the store does while its database is unreachable: [`OutagePolicy`], and the health
//! state the request path reads.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use super::SqlStoreError;

/// What [`SqlKeyStore`](super::SqlKeyStore) answers while its database cannot be reached.
///
/// Either way the switch is logged once when the database is lost (`WARN`), once when the
/// snapshot becomes too old to serve (`ERROR`), and once when the database is back (`INFO`).
/// The snapshot's age is [`SqlKeyStore::snapshot_age`](super::SqlKeyStore::snapshot_age).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OutagePolicy {
    /// Refuse every request with 503 and `Retry-After` as soon as a sync fails: within 3 s of
    /// the database going away, whether it refuses connections (the pool tries until its 3 s
    /// acquire timeout) or stops answering (every query of the store's is bounded by 3 s,
    /// connection included). Until then the snapshot serves, so a key revoked in those
    /// seconds may still be admitted; after, nothing is.
    FailClosed,
    /// Keep checking keys against the last snapshot until it is `max_age` old (time since the
    /// last successful sync), then fail closed. The age is checked once a sync has failed (up
    /// to the poll interval and 3 s after the database went away), so a `max_age` below that
    /// acts as that.
    ServeSnapshot {
        /// How old the snapshot may get.
        max_age: Duration,
    },
}

impl OutagePolicy {
    /// Serve the snapshot for up to `max_age`.
    pub fn serve_snapshot(max_age: Duration) -> Self {
        Self::ServeSnapshot { max_age }
    }
}

impl Default for OutagePolicy {
    /// Serve the snapshot for up to five minutes.
    fn default() -> Self {
        Self::serve_snapshot(Duration::from_secs(300))
    }
}

/// Whether the database answered lately; read with one relaxed load per request while it does.
pub(super) struct Health {
    epoch: Instant,
    policy: OutagePolicy,
    /// When the last sync succeeded, in milliseconds since `epoch`.
    synced_at: AtomicU64,
    /// Whether the last sync failed.
    failing: AtomicBool,
    /// Whether the switch to failing closed was logged in this outage.
    closed: AtomicBool,
}

impl Health {
    pub(super) fn new(policy: OutagePolicy) -> Self {
        Self {
            epoch: Instant::now(),
            policy,
            synced_at: AtomicU64::new(0),
            failing: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        }
    }

    /// `Ok` if requests may be checked against the snapshot.
    pub(super) fn check(&self) -> Result<(), SqlStoreError> {
        if !self.failing.load(Relaxed) {
            return Ok(());
        }
        let serve = match self.policy {
            OutagePolicy::FailClosed => false,
            OutagePolicy::ServeSnapshot { max_age } => self.age() <= max_age,
        };
        if serve {
            return Ok(());
        }
        if !self.closed.swap(true, Relaxed) {
            tracing::error!(
                age = ?self.age(),
                policy = ?self.policy,
                "the key database is still unreachable: refusing every request (503) until it is back"
            );
        }
        Err(SqlStoreError::Unavailable)
    }

    /// A sync succeeded.
    pub(super) fn synced(&self) {
        self.synced_at.store(self.now(), Relaxed);
        if self.failing.swap(false, Relaxed) {
            self.closed.store(false, Relaxed);
            tracing::info!("the key database is reachable again: the snapshot is current");
        }
    }

    /// A sync failed.
    pub(super) fn failed(&self, error: &SqlStoreError) {
        if !self.failing.swap(true, Relaxed) {
            tracing::warn!(
                %error,
                policy = ?self.policy,
                "the key database is unreachable: the outage policy now applies"
            );
        } else {
            tracing::debug!(%error, "the key database is still unreachable");
        }
    }

    /// Whether the last sync succeeded.
    pub(super) fn reachable(&self) -> bool {
        !self.failing.load(Relaxed)
    }

    /// Time since the last successful sync.
    pub(super) fn age(&self) -> Duration {
        Duration::from_millis(self.now().saturating_sub(self.synced_at.load(Relaxed)))
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}
