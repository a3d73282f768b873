//! The in-process copy of the keys that requests are checked against, and the revision guard
//! that keeps a late change from undoing a newer one.

use std::collections::HashMap;
use std::collections::hash_map::Entry as Slot;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use super::database::{Row, time};
use crate::server::{KeyDigest, KeyRecord, Principal};

/// Every key known, by digest, and the highest revision applied.
#[derive(Default)]
pub(super) struct Snapshot {
    pub(super) keys: HashMap<KeyDigest, Arc<Entry>>,
    pub(super) revision: i64,
}

/// One key: what a lookup answers, the row's revision, and whether a use is waiting to be
/// written as `last_used_at`.
pub(super) struct Entry {
    pub(super) record: KeyRecord,
    pub(super) id: Box<str>,
    pub(super) revision: i64,
    pub(super) used: AtomicBool,
}

impl Snapshot {
    /// The snapshot with `rows` applied, or `None` if none of them is news.
    ///
    /// The revision guard: a row replaces what is known of its key only if its revision is
    /// higher. Rows read before a revocation and applied after it (a slow load, a late or
    /// repeated event) are older than the revoked row, so they cannot re-admit the key.
    pub(super) fn with(&self, rows: Vec<Row>) -> Option<Self> {
        let newest = rows.iter().map(|row| row.revision).max()?;
        let mut keys = match self.keys.is_empty() {
            true => HashMap::with_capacity(rows.len()),
            false => self.keys.clone(),
        };
        let mut changed = false;
        for row in rows {
            match keys.entry(row.digest) {
                Slot::Occupied(known) if known.get().revision >= row.revision => {}
                Slot::Occupied(mut known) => {
                    known.insert(Arc::new(Entry::from(row)));
                    changed = true;
                }
                Slot::Vacant(slot) => {
                    slot.insert(Arc::new(Entry::from(row)));
                    changed = true;
                }
            }
        }
        let revision = self.revision.max(newest);
        (changed || revision > self.revision).then_some(Self { keys, revision })
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
            id: row.id.into(),
            revision: row.revision,
            used: AtomicBool::new(false),
        }
    }
}
