//! The single fetch: one task per flight, joined by every request that needs a token, and a
//! guard that clears the flight however the task ends.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::FutureExt;
use http::HeaderValue;
use tokio::time::Instant;

use super::credential::{Current, Flight, Inner, State, lock};
use super::{TokenError, TokenErrorKind};

impl Inner {
    /// Joins the fetch under way, or starts one in a task of its own: the task, not the
    /// requests waiting on it, owns the fetch, so dropping any of them cancels nothing.
    pub(super) fn start_flight(
        self: &Arc<Self>,
        state: &mut State,
        after_rejection: bool,
    ) -> Flight {
        if let Some(flight) = &state.flight {
            return flight.clone();
        }
        state.flight_id += 1;
        state.flight_after_rejection = after_rejection;
        state.swapped_in_flight = false;
        let guard = FlightGuard {
            inner: Arc::clone(self),
            id: state.flight_id,
            landed: false,
        };
        let task = tokio::spawn(guard.run());
        let flight = async move {
            // A panic's message is not passed on: it may quote whatever the source held.
            task.await
                .unwrap_or_else(|_| Err(TokenError::new(TokenErrorKind::Aborted, None)))
        }
        .boxed()
        .shared();
        state.flight = Some(flight.clone());
        flight
    }

    /// Bounded exponential backoff: `min * 2^(failures - 1)`, at most `max`.
    fn backoff(&self, failures: u32) -> Duration {
        let factor = 1u32
            .checked_shl(failures.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.config
            .backoff_min
            .saturating_mul(factor)
            .min(self.config.backoff_max)
    }

    /// Counts a failed fetch and sets the backoff before the next one; the caller holds the lock.
    fn record_failure(&self, state: &mut State, err: &TokenError) {
        state.failures = state.failures.saturating_add(1);
        let backoff = self.backoff(state.failures);
        state.not_before = Some(Instant::now() + backoff);
        tracing::warn!(error = %err, failures = state.failures, ?backoff, "access token fetch failed");
    }
}

/// Owns one flight's fetch task. Whatever ends the task (an answer, a panic in the source, the
/// runtime shutting down and dropping it), the flight is cleared: on an answer by [`land`], on
/// any other end by `Drop`, which records a failure so that the next request fetches again
/// after the backoff. Without it, a finished flight would be joined forever.
///
/// [`land`]: FlightGuard::land
struct FlightGuard {
    inner: Arc<Inner>,
    id: u64,
    landed: bool,
}

impl FlightGuard {
    async fn run(mut self) -> Result<Arc<Current>, TokenError> {
        let inner = Arc::clone(&self.inner);
        let not_before = lock(&inner.state).not_before;
        if let Some(not_before) = not_before {
            tokio::time::sleep_until(not_before).await;
        }
        inner.fetches.fetch_add(1, Ordering::Relaxed);
        let fetched = tokio::time::timeout(inner.config.fetch_timeout, inner.source.fetch()).await;
        let result = match fetched {
            Ok(Ok(token)) => match inner.rules.placement.header_value(&token.secret) {
                Ok(value) => Ok((value, token.remaining())),
                Err(err) => Err(TokenError::new(
                    TokenErrorKind::InvalidToken,
                    Some(err.into()),
                )),
            },
            Ok(Err(err)) => Err(TokenError::new(TokenErrorKind::Fetch, Some(err))),
            Err(_elapsed) => Err(TokenError::new(TokenErrorKind::Timeout, None)),
        };
        self.land(result)
    }

    /// Installs the fetched token (or records the failure) and ends the flight, under one lock.
    fn land(
        &mut self,
        result: Result<(HeaderValue, Option<Duration>), TokenError>,
    ) -> Result<Arc<Current>, TokenError> {
        self.landed = true;
        let inner = &self.inner;
        let mut state = lock(&inner.state);
        state.flight = None;
        match result {
            Ok((value, remaining)) => {
                state.failures = 0;
                state.not_before = None;
                if state.swapped_in_flight {
                    // A token swapped in meanwhile wins: it was chosen by hand, after this
                    // fetch started.
                    if let Some(current) = inner.current.load_full() {
                        return Ok(current);
                    }
                }
                let after_rejection = state.flight_after_rejection;
                let current = inner.install(&mut state, value, remaining, after_rejection);
                tracing::debug!(
                    generation = current.generation,
                    expires_in = ?remaining,
                    "access token fetched"
                );
                Ok(current)
            }
            Err(err) => {
                inner.record_failure(&mut state, &err);
                Err(err)
            }
        }
    }
}

impl Drop for FlightGuard {
    fn drop(&mut self) {
        if self.landed {
            return;
        }
        let mut state = lock(&self.inner.state);
        if state.flight_id == self.id && state.flight.is_some() {
            state.flight = None;
            let err = TokenError::new(TokenErrorKind::Aborted, None);
            self.inner.record_failure(&mut state, &err);
        }
    }
}
