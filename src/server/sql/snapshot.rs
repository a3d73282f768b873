//! The in-process copy of the keys that requests are checked against, and the revision guard
//! that keeps a late change from undoing a newer one.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;

use super::database::{Row, time};
use crate::server::{KeyDigest, KeyRecord, Principal};

/// How many shards the keys are split into, by a byte of their digest. A change copies only
/// the shards it touches: with a million keys, about 4,000 keys a shard instead of all of them.
const SHARDS: usize = 256;

/// Entries are held in the map itself, not behind a pointer: a lookup among a million keys
/// then reads the probed slot and the principal, as `MemoryKeyStore`'s does, and no third line
/// of memory.
type Shard = HashMap<KeyDigest, Entry>;

/// Every key known, by digest, in shards, and the highest revision applied.
pub(super) struct Snapshot {
    shards: Box<[Arc<Shard>]>,
    pub(super) revision: i64,
}

/// One key: what a lookup answers, the row's revision, and the usage interval in which a use
/// of it was last queued to be written as `last_used_at`.
pub(super) struct Entry {
    pub(super) record: KeyRecord,
    pub(super) revision: i64,
    pub(super) used: AtomicU64,
}

impl Clone for Entry {
    fn clone(&self) -> Self {
        Self {
            record: self.record.clone(),
            revision: self.revision,
            used: AtomicU64::new(self.used.load(Relaxed)),
        }
    }
}

impl Default for Snapshot {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Arc::default()).collect(),
            revision: 0,
        }
    }
}

/// The shard of `digest`: its last byte (the map's hash uses the first eight).
fn shard(digest: &KeyDigest) -> usize {
    usize::from(digest.as_bytes()[31])
}

impl Snapshot {
    /// The key whose digest is `digest`: one index and one probe.
    pub(super) fn get(&self, digest: &KeyDigest) -> Option<&Entry> {
        self.shards[shard(digest)].get(digest)
    }

    /// How many keys the snapshot holds.
    pub(super) fn len(&self) -> usize {
        self.shards.iter().map(|shard| shard.len()).sum()
    }

    /// The snapshot with `rows` applied, or `None` if none of them is news. Shards no row
    /// touches are shared with `self`, not copied.
    ///
    /// The revision guard: a row replaces what is known of its key only if its revision is
    /// higher. Rows read before a revocation and applied after it (a slow load, a late or
    /// repeated event) are older than the revoked row, so they cannot re-admit the key.
    pub(super) fn with(&self, rows: Vec<Row>) -> Option<Self> {
        let newest = rows.iter().map(|row| row.revision).max()?;
        let mut shards = self.shards.to_vec();
        let mut changed = false;
        for row in rows {
            let known = shards[shard(&row.digest)].get(&row.digest);
            if known.is_some_and(|known| known.revision >= row.revision) {
                continue;
            }
            // Copies the shard on its first change here (`self` still holds it), then edits
            // the copy in place.
            let shard = Arc::make_mut(&mut shards[shard(&row.digest)]);
            shard.insert(row.digest, Entry::from(row));
            changed = true;
        }
        let revision = self.revision.max(newest);
        (changed || revision > self.revision).then(|| Self {
            shards: shards.into(),
            revision,
        })
    }
}

impl From<Row> for Entry {
    fn from(row: Row) -> Self {
        let scopes: Result<Vec<String>, _> = serde_json::from_str(&row.scopes);
        let revoked = row.revoked_at.is_some() || scopes.is_err();
        if scopes.is_err() {
            // Refused rather than admitted with scopes nobody can read.
            tracing::error!(
                key = row.id,
                "the key's scopes are not a JSON array of strings"
            );
        }
        let mut principal = Principal::new(row.principal).with_scopes(scopes.unwrap_or_default());
        if let Some(organization) = row.organization {
            principal = principal.with_organization(organization);
        }
        let mut record = KeyRecord::new(principal);
        if let Some(at) = row.expires_at {
            record = record.with_expiry(time(at));
        }
        if revoked {
            record = record.revoked();
        }
        Self {
            record,
            revision: row.revision,
            used: AtomicU64::new(0),
        }
    }
}
