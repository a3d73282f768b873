//! Refresh ahead of a known expiry: one background task per token generation, from the start of
//! its advisory window until a refresh lands.

use std::sync::{Arc, Weak};

use tokio::task::AbortHandle;
use tokio::time::Instant;
use tower::util::rng::{HasherRng, Rng};

use super::Current;
use super::credential::{Inner, lock};

impl Inner {
    /// Spawns the task that refreshes `current` in its advisory window, while requests keep
    /// using it, and tries again after each failure's backoff. Without static stability it
    /// drops the token at its expiry, should every refresh fail. Without a Tokio runtime (a
    /// `swap` from plain code) there is no background refresh: requests refresh the token in
    /// its mandatory window.
    pub(super) fn arm_refresh(self: &Arc<Self>, current: &Arc<Current>) -> Option<AbortHandle> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let (advisory_at, mandatory_at) = (current.advisory_at?, current.mandatory_at?);
        // Spread the refreshes of processes started together over the first half of the time
        // between the windows.
        let spread = (mandatory_at - advisory_at) / 2;
        let jitter = self
            .config
            .refresh_jitter
            .min(spread)
            .mul_f64(HasherRng::new().next_f64());
        let task = runtime.spawn(refresh_ahead(
            Arc::downgrade(self),
            current.generation,
            advisory_at + jitter,
        ));
        Some(task.abort_handle())
    }

    /// Drops the token of `generation` at its expiry, unless another one replaced it.
    fn expire(&self, generation: u64) {
        let mut state = lock(&self.state);
        if self.holds(generation) {
            self.clear(&mut state);
            // Nothing is cached now: the next fetch follows the short backoff of an empty
            // cache, not the long one of a failed refresh.
            state.not_before = None;
            tracing::debug!(
                generation,
                "access token expired before a refresh succeeded"
            );
        }
    }
}

/// The refresh task of one token generation. It holds the cache weakly, so a dropped cache
/// ends it, and is aborted when another token is installed.
async fn refresh_ahead(inner: Weak<Inner>, generation: u64, refresh_at: Instant) {
    let mut at = refresh_at;
    loop {
        tokio::time::sleep_until(at).await;
        let Some(cache) = inner.upgrade() else { return };
        let Some(current) = cache.current.load_full() else {
            return;
        };
        if current.generation != generation {
            return;
        }
        let static_stability = cache.config.static_stability;
        let expires_at = current.expires_at;
        drop(current);
        let now = Instant::now();
        if !static_stability && expires_at.is_some_and(|expires_at| now >= expires_at) {
            cache.expire(generation);
            return;
        }
        let flight = {
            let mut state = lock(&cache.state);
            match state.not_before.filter(|not_before| now < *not_before) {
                // A failed refresh backs off: try again after it (or, without static
                // stability, drop the token at its expiry if that comes first).
                Some(not_before) => {
                    at = match expires_at.filter(|_| !static_stability) {
                        Some(expires_at) => not_before.min(expires_at),
                        None => not_before,
                    };
                    continue;
                }
                None => cache.start_flight(&mut state, false),
            }
        };
        drop(cache);
        let refreshed = match expires_at.filter(|_| !static_stability) {
            // Without static stability, a refresh that outlasts the token drops it at its
            // expiry, so that requests wait for this same fetch instead of sending it.
            Some(expires_at) => {
                let expiry = std::pin::pin!(tokio::time::sleep_until(expires_at));
                match futures::future::select(flight, expiry).await {
                    futures::future::Either::Left((refreshed, _)) => refreshed,
                    futures::future::Either::Right(((), _)) => {
                        if let Some(cache) = inner.upgrade() {
                            cache.expire(generation);
                        }
                        return;
                    }
                }
            }
            None => flight.await,
        };
        // A new token (its own task took over), or the cached one still serving after a
        // failure: then the failure set a backoff, and the loop waits for it.
        match refreshed {
            Ok(token) if token.generation != generation => return,
            _ => at = Instant::now(),
        }
    }
}
