//! Refresh ahead of a known expiry: one background task per token generation.

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::task::AbortHandle;
use tokio::time::Instant;
use tower::util::rng::{HasherRng, Rng};

use super::credential::{Current, Inner, lock};

impl Inner {
    /// Spawns the task that refreshes `current` ahead of its expiry and, should every refresh
    /// fail, drops it at its expiry. Without a Tokio runtime (a `swap` from plain code) the
    /// token is kept until the API rejects it.
    pub(super) fn arm_refresh(
        self: &Arc<Self>,
        current: &Arc<Current>,
        now: Instant,
        lifetime: Duration,
    ) -> Option<AbortHandle> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let jitter = self
            .config
            .refresh_jitter
            .mul_f64(HasherRng::new().next_f64());
        let ahead = (self.config.refresh_margin + jitter).min(lifetime / 2);
        let expires_at = now + lifetime;
        let weak = Arc::downgrade(self);
        let generation = current.generation;
        let task = runtime.spawn(refresh_ahead(
            weak,
            generation,
            expires_at - ahead,
            expires_at,
        ));
        Some(task.abort_handle())
    }

    /// Drops the token of `generation` at its expiry, unless another one replaced it.
    pub(super) fn expire(&self, generation: u64) {
        let mut state = lock(&self.state);
        if self.holds(generation) {
            self.clear(&mut state);
            tracing::debug!(
                generation,
                "access token expired before a refresh succeeded"
            );
        }
    }
}

/// The refresh task of one token generation. It holds the cache weakly, so a dropped cache
/// ends it, and is aborted when another token is installed.
async fn refresh_ahead(
    inner: Weak<Inner>,
    generation: u64,
    refresh_at: Instant,
    expires_at: Instant,
) {
    let mut at = refresh_at;
    loop {
        tokio::time::sleep_until(at).await;
        let Some(cache) = inner.upgrade() else { return };
        if !cache.holds(generation) {
            return;
        }
        if Instant::now() >= expires_at {
            cache.expire(generation);
            return;
        }
        let flight = cache.start_flight(&mut lock(&cache.state), false);
        let expiry = std::pin::pin!(tokio::time::sleep_until(expires_at));
        let refreshed = match futures::future::select(flight, expiry).await {
            futures::future::Either::Left((refreshed, _)) => refreshed,
            // The refresh outlasts the token: drop it at its expiry, so that requests wait for
            // this same fetch instead of sending the expired token meanwhile.
            futures::future::Either::Right(((), _)) => {
                cache.expire(generation);
                return;
            }
        };
        if refreshed.is_ok() {
            return;
        }
        // The failed fetch set a backoff; try again after it, or give up at the expiry.
        let not_before = lock(&cache.state).not_before.unwrap_or_else(Instant::now);
        at = not_before.min(expires_at);
    }
}
