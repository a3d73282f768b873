//! What a stand-in holds and records: the keys and tokens it accepts, the requests it received,
//! the fault and hold it was told to apply.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Uri};

use tower_api_auth::server::{KeyDigest, KeyRecord, KeyStore, MemoryKeyStore, Principal};

use crate::fault::TokenFault;
use crate::hold::HoldState;

/// A request as the stand-in received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// The request method.
    pub method: Method,
    /// The request target (path and query).
    pub uri: Uri,
    /// Every header that arrived, duplicates included.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

#[derive(Debug, Default)]
pub(crate) struct State {
    /// API keys and issued tokens, as the server side holds them; told apart by principal.
    pub(crate) keys: MemoryKeyStore,
    pub(crate) requests: Mutex<Vec<RecordedRequest>>,
    token_requests: AtomicUsize,
    /// The fault, and how many token requests had arrived when it was set.
    pub(crate) token_fault: Mutex<Option<(TokenFault, usize)>>,
    pub(crate) token_ttl: Mutex<Option<Duration>>,
    pub(crate) hold: Mutex<Option<Arc<HoldState>>>,
}

/// The principal of every API key the stand-in accepts.
pub(crate) const API_KEY: &str = "api-key";
/// The principal of every token it issued.
pub(crate) const TOKEN: &str = "token";

impl State {
    /// Whether `key` is an accepted (and not banned) API key: what the token endpoints take.
    pub(crate) fn is_accepted(&self, key: &str) -> bool {
        let found = self.keys.lookup(&KeyDigest::of(key)).into_inner();
        matches!(found, Ok(Some(record)) if !record.is_revoked() && record.principal().id() == API_KEY)
    }

    pub(crate) fn keys(&self) -> &MemoryKeyStore {
        &self.keys
    }

    /// Counts a token request and says which fault, if any, it meets, with the request's
    /// number since that fault was set (1 for the first).
    pub(crate) fn token_request(&self) -> Option<(TokenFault, usize)> {
        let fault = lock(&self.token_fault);
        let n = self.token_requests.fetch_add(1, Ordering::SeqCst) + 1;
        fault.map(|(fault, set_at)| (fault, n - set_at))
    }

    pub(crate) fn issue(&self, token: String) {
        self.keys
            .insert(token, KeyRecord::new(Principal::new(TOKEN)));
    }

    pub(crate) fn token_request_count(&self) -> usize {
        self.token_requests.load(Ordering::SeqCst)
    }

    pub(crate) fn token_ttl(&self) -> Option<Duration> {
        *lock(&self.token_ttl)
    }

    /// Waits here if a hold is set and still has room; the request that fills the hold takes
    /// it down, so later requests (a replay, say) pass freely.
    pub(crate) async fn wait_at_hold(&self) {
        let hold = {
            let mut slot = lock(&self.hold);
            let Some(hold) = slot.clone() else { return };
            let mut full = false;
            hold.arrived.send_modify(|arrived| {
                *arrived += 1;
                full = *arrived == hold.expected;
            });
            if full {
                *slot = None;
            }
            hold
        };
        // The semaphore is never closed: `acquire` only fails on a closed semaphore.
        if let Ok(permit) = hold.release.acquire().await {
            permit.forget();
        }
    }

    pub(crate) fn record(&self, request: RecordedRequest) {
        lock(&self.requests).push(request);
    }
}

/// The stand-in's state stays usable after a panicking handler: a test reads what was recorded.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
