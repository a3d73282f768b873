//! The in-process copy of the keys that requests are checked against, and the revision guard
//! that keeps a late change from undoing a newer one.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU32;
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
///
/// Its fields, not a [`KeyRecord`] (whose expiry is a 16-byte `SystemTime`): 32 bytes, so that
/// with its digest it fills a 64-byte slot of the shard's table, the size of a
/// `MemoryKeyStore` slot. The record is built when a lookup answers.
pub(super) struct Entry {
    principal: Principal,
    /// Unix milliseconds; [`NEVER`] for a key without expiry.
    expires_at: i64,
    pub(super) revision: i64,
    /// See [`Usage`](super::usage::Usage).
    pub(super) used: AtomicU32,
    revoked: bool,
}

/// [`Entry::expires_at`] of a key that never expires.
const NEVER: i64 = i64::MAX;

#[cfg(target_pointer_width = "64")]
const _: () = assert!(std::mem::size_of::<(KeyDigest, Entry)>() == 64);

impl Entry {
    /// Whether the key was revoked (or its row could not be read).
    pub(super) fn is_revoked(&self) -> bool {
        self.revoked
    }

    /// What a lookup of the key answers.
    pub(super) fn record(&self) -> KeyRecord {
        let mut record = KeyRecord::new(self.principal.clone());
        if self.expires_at != NEVER {
            record = record.with_expiry(time(self.expires_at));
        }
        if self.revoked {
            record = record.revoked();
        }
        record
    }
}

impl Clone for Entry {
    fn clone(&self) -> Self {
        Self {
            principal: self.principal.clone(),
            expires_at: self.expires_at,
            revision: self.revision,
            used: AtomicU32::new(self.used.load(Relaxed)),
            revoked: self.revoked,
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

    /// A snapshot of `rows` alone, every row read at `revision` or later.
    pub(super) fn reloaded(rows: Vec<Row>, revision: i64) -> Self {
        let mut snapshot = Self::default().with(rows).unwrap_or_default();
        snapshot.revision = snapshot.revision.max(revision);
        snapshot
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
        // Built from borrowed rows, every row still held, each key's principal is allocated
        // next to the previous one's rather than in the hole the previous row left: a lookup
        // rotating over 10,000 keys of a million was 1.10x the memory store's, and is 1.03x.
        for row in &rows {
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

impl From<&Row> for Entry {
    fn from(row: &Row) -> Self {
        let scopes: Result<Vec<String>, _> = serde_json::from_str(&row.scopes);
        let revoked = row.revoked_at.is_some() || scopes.is_err();
        if scopes.is_err() {
            // Refused rather than admitted with scopes nobody can read.
            tracing::error!(
                key = row.id,
                "the key's scopes are not a JSON array of strings"
            );
        }
        let mut principal =
            Principal::new(row.principal.as_str()).with_scopes(scopes.unwrap_or_default());
        if let Some(organization) = &row.organization {
            principal = principal.with_organization(organization.as_str());
        }
        Self {
            principal,
            expires_at: row.expires_at.unwrap_or(NEVER),
            revision: row.revision,
            used: AtomicU32::new(0),
            revoked,
        }
    }
}
