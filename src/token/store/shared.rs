//! The protocol between a credential's flight and its store: read, take the lease, read again,
//! fetch, write, release; every step bounded, every failure a fetch of one's own.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use http::HeaderValue;
use tokio::time::Instant;

use super::record::{self, Fingerprint, Record};
use super::{Lease, Release, StoreError, StoreErrorKind, TokenStore};
use crate::{Placement, Token, TokenError};

/// A store attached to one credential: the store, the credential's fingerprint, and whether
/// the store is failing (to log a failure once, and the recovery once).
pub(crate) struct Attached {
    store: TokenStore,
    fingerprint: Fingerprint,
    key: String,
    degraded: AtomicBool,
    last_error: Mutex<Option<StoreError>>,
}

/// The token a flight replaces, if any: a stored token is taken in its place only if it is of a
/// later generation and another token.
#[derive(Default)]
pub(crate) struct Floor {
    pub(crate) generation: Option<u64>,
    pub(crate) value: Option<HeaderValue>,
}

/// What a flight got through the store.
pub(crate) struct Obtained {
    /// The token (from the store or fetched), or the fetch's error.
    pub(crate) result: Result<(HeaderValue, Token), TokenError>,
    /// The token's generation in the store, when it is stored.
    pub(crate) stored: Option<u64>,
    /// A stored token past its expiry, to serve if the fetch failed (static stability).
    pub(crate) fallback: Option<(HeaderValue, u64)>,
}

/// What a stored record is to this flight.
enum Verdict {
    Use(HeaderValue, Token),
    /// Expired: only a fallback.
    Stale(HeaderValue),
    /// The token being replaced, or an older one.
    Skip,
}

impl Attached {
    pub(crate) fn new(store: TokenStore, fingerprint: Fingerprint) -> Self {
        Self {
            key: fingerprint.hex(),
            store,
            fingerprint,
            degraded: AtomicBool::new(false),
            last_error: Mutex::new(None),
        }
    }

    /// The last problem the store had, for [`TokenStatus`](crate::token::TokenStatus).
    pub(crate) fn last_error(&self) -> Option<StoreError> {
        self.last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// A token for a flight: a usable stored one, or one fetched by `fetch` (under the lease
    /// when the store can give one) and stored.
    pub(crate) async fn obtain<F>(&self, placement: &Placement, floor: Floor, fetch: F) -> Obtained
    where
        F: Future<Output = Result<(HeaderValue, Token), TokenError>>,
    {
        let deadline = Instant::now() + self.store.wait_bound;
        let mut seen = floor.generation.unwrap_or(0);
        let mut fallback = None;
        let mut lease: Option<Box<dyn Release>> = None;
        let mut reachable = true;
        loop {
            match self.read(deadline).await {
                Ok(Some(record)) => {
                    seen = seen.max(record.generation);
                    match self.judge(&record, &floor, placement) {
                        Verdict::Use(value, token) => {
                            if let Some(lease) = lease {
                                self.release(lease).await;
                            }
                            tracing::debug!(
                                store = self.store.backend.describe(),
                                stored_generation = record.generation,
                                "access token taken from the token store"
                            );
                            return Obtained {
                                result: Ok((value, token)),
                                stored: Some(record.generation),
                                fallback: None,
                            };
                        }
                        Verdict::Stale(value) => {
                            fallback = Some((value, record.generation));
                        }
                        Verdict::Skip => {}
                    }
                }
                Ok(None) => {}
                Err(()) => {
                    reachable = false;
                    break;
                }
            }
            if lease.is_some() {
                // Read again under the lease, and still nothing usable: fetch.
                break;
            }
            // Waiters give up after the wait bound: a lease outliving twice that (a holder that
            // died, or a lease set late by a Redis that froze) protects nobody.
            let ttl = self.store.wait_bound * 2;
            match self
                .noted(deadline, self.store.backend.lease(&self.key, ttl))
                .await
            {
                Ok(Lease::Held(held)) => lease = Some(held),
                Ok(Lease::Elsewhere(wait)) => {
                    if tokio::time::timeout_at(deadline, wait).await.is_err() {
                        // Another process holds the lease past the bound: fetch without it.
                        // Not a store failure: nothing is logged beyond DEBUG.
                        tracing::debug!(
                            store = self.store.backend.describe(),
                            "another process's fetch outlasted the wait bound; fetching here"
                        );
                        break;
                    }
                }
                Err(()) => {
                    reachable = false;
                    break;
                }
            }
        }

        let result = fetch.await;
        let mut stored = None;
        if reachable {
            if let Ok((_, token)) = &result {
                let record = Record {
                    generation: seen + 1,
                    token: token.secret.clone(),
                    expires_at: token
                        .remaining()
                        .and_then(|left| std::time::SystemTime::now().checked_add(left)),
                };
                if self.write(&record).await.is_ok() {
                    stored = Some(record.generation);
                }
            }
        }
        if let Some(lease) = lease {
            self.release(lease).await;
        }
        Obtained {
            result,
            stored,
            fallback,
        }
    }

    fn judge(&self, record: &Record, floor: &Floor, placement: &Placement) -> Verdict {
        let Ok(value) = placement.header_value(&record.token) else {
            self.note(StoreError::new(
                StoreErrorKind::Corrupt,
                "the stored token cannot go into a header",
            ));
            return Verdict::Skip;
        };
        if floor.value.as_ref() == Some(&value)
            || floor.generation.is_some_and(|g| record.generation <= g)
        {
            return Verdict::Skip;
        }
        if record.expired() {
            return Verdict::Stale(value);
        }
        Verdict::Use(value, record.token())
    }

    /// Reads and decodes the record; a bad one (corrupt, unsafe permissions, not opening) is
    /// logged and reads as none (the fetch replaces it). `Err` when the store itself failed.
    async fn read(&self, deadline: Instant) -> Result<Option<Record>, ()> {
        let loaded = match self
            .bounded(deadline, self.store.backend.load(&self.key))
            .await
        {
            Ok(loaded) => loaded,
            Err(err) if is_outage(&err) => {
                self.note(err);
                return Err(());
            }
            Err(err) => {
                self.note(err);
                return Ok(None);
            }
        };
        let Some(bytes) = loaded else {
            return Ok(None);
        };
        match self.open(bytes) {
            Ok(record) => Ok(Some(record)),
            Err(err) => {
                self.note(err);
                Ok(None)
            }
        }
    }

    async fn write(&self, record: &Record) -> Result<(), ()> {
        let bytes = self.seal(record::encode(record, &self.fingerprint));
        let deadline = Instant::now() + self.store.wait_bound;
        self.noted(
            deadline,
            self.store.backend.save(&self.key, bytes, record.ttl()),
        )
        .await
    }

    async fn release(&self, lease: Box<dyn Release>) {
        let deadline = Instant::now() + self.store.wait_bound;
        let _ = tokio::time::timeout_at(deadline, lease.release()).await;
    }

    /// Runs one store operation within `deadline`; logs a recovery.
    async fn bounded<T>(
        &self,
        deadline: Instant,
        operation: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let backend = self.store.backend.describe();
        let result = match tokio::time::timeout_at(deadline, operation).await {
            Ok(result) => result.map_err(|err| err.backend(backend)),
            Err(_elapsed) => Err(StoreError::new(
                StoreErrorKind::Timeout,
                "no answer within the wait bound",
            )
            .backend(backend)),
        };
        if result.is_ok() && self.degraded.swap(false, Ordering::Relaxed) {
            tracing::info!(
                store = backend,
                "the token store answers again: tokens are shared again"
            );
        }
        result
    }

    /// Like [`bounded`](Self::bounded), noting a failure.
    async fn noted<T>(
        &self,
        deadline: Instant,
        operation: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, ()> {
        self.bounded(deadline, operation)
            .await
            .map_err(|err| self.note(err))
    }

    /// Logs a store problem: a failing store once until it recovers, a bad record each time
    /// (it is replaced at once, so it is seen once).
    fn note(&self, err: StoreError) {
        let err = err.backend(self.store.backend.describe());
        let kind = err.kind();
        if !is_outage(&err) {
            tracing::warn!(
                error = %err,
                ?kind,
                "a stored token was not used; fetching a new one"
            );
        } else if !self.degraded.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                error = %err,
                ?kind,
                "the token store failed: this process fetches tokens for itself until it \
                 answers again"
            );
        } else {
            tracing::debug!(error = %err, ?kind, "the token store still fails");
        }
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(err);
    }

    #[cfg(feature = "store-encryption")]
    fn seal(&self, bytes: Vec<u8>) -> Vec<u8> {
        match &self.store.seal {
            Some(seal) => seal.seal(self.key.as_bytes(), &bytes),
            None => bytes,
        }
    }

    #[cfg(not(feature = "store-encryption"))]
    fn seal(&self, bytes: Vec<u8>) -> Vec<u8> {
        bytes
    }

    #[cfg(feature = "store-encryption")]
    fn open(&self, bytes: Vec<u8>) -> Result<Record, StoreError> {
        match &self.store.seal {
            Some(seal) => {
                record::decode(&seal.open(self.key.as_bytes(), &bytes)?, &self.fingerprint)
            }
            None => record::decode(&bytes, &self.fingerprint),
        }
    }

    #[cfg(not(feature = "store-encryption"))]
    fn open(&self, bytes: Vec<u8>) -> Result<Record, StoreError> {
        record::decode(&bytes, &self.fingerprint)
    }
}

/// Whether the store itself failed (not one record in it).
fn is_outage(err: &StoreError) -> bool {
    matches!(
        err.kind(),
        StoreErrorKind::Unavailable | StoreErrorKind::Timeout
    )
}
