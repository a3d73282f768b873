//! The single fetch: one task per flight, joined by every request that needs a token, and a
//! guard that clears the flight however the task ends.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::FutureExt;
use http::HeaderValue;
use tokio::time::Instant;
use tower::util::rng::{HasherRng, Rng};

use super::Current;
use super::credential::{Flight, Inner, State, lock};
use super::{TokenErrorKind, Unrecoverable};
use crate::{Token, TokenError};

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

    /// A jittered backoff between the stale-backoff bounds, after a failed refresh of a cached
    /// token.
    fn stale_backoff(&self) -> Duration {
        let (min, max) = (self.config.stale_backoff_min, self.config.stale_backoff_max);
        min + (max - min).mul_f64(HasherRng::new().next_f64())
    }

    /// Records a failed fetch, sets the backoff before the next one, and decides what the
    /// waiting requests get; the caller holds the lock.
    ///
    /// - Unrecoverable: the cached token (worthless now) is dropped and the error is answered
    ///   again, without a fetch, for a few seconds; no long backoff, so a fixed configuration
    ///   recovers within seconds.
    /// - A cached token that may still be sent (static stability, or not yet expired): it keeps
    ///   serving, and the next refresh waits the stale backoff.
    /// - Nothing to serve: the error, and the short exponential backoff.
    pub(super) fn fail(
        &self,
        state: &mut State,
        err: TokenError,
    ) -> Result<Arc<Current>, TokenError> {
        let now = Instant::now();
        state.last_error = Some(err.clone());
        if err.kind() == TokenErrorKind::Unrecoverable {
            tracing::error!(error = %err, "access token fetch failed, and retrying cannot fix it");
            self.clear(state);
            state.failures = 0;
            state.not_before = None;
            state.unrecoverable = Some((err.clone(), now + self.config.unrecoverable_hold));
            return Err(err);
        }
        // Without static stability, only a token that is neither expired nor rejected serves on.
        let current = self.current.load_full().filter(|current| {
            self.config.static_stability || !(current.expired(now) || current.invalidated())
        });
        if let Some(current) = current {
            let backoff = self.stale_backoff();
            state.not_before = Some(now + backoff);
            tracing::warn!(
                error = %err,
                ?backoff,
                generation = current.generation,
                "refreshing the access token failed; the cached one keeps serving"
            );
            current.warn_if_stale(now);
            return Ok(current);
        }
        // Nothing to serve: a token that may not be sent any more is dropped, so that requests
        // wait for the next fetch instead of sending it.
        self.clear(state);
        state.failures = state.failures.saturating_add(1);
        let backoff = self.backoff(state.failures);
        state.not_before = Some(now + backoff);
        tracing::warn!(error = %err, failures = state.failures, ?backoff, "access token fetch failed");
        Err(err)
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
        let fetch = fetch(&inner);
        #[cfg(feature = "token-store")]
        if let Some(store) = &inner.store {
            let floor = match inner.current.load_full() {
                Some(current) => super::store::Floor {
                    generation: current.stored,
                    value: Some(current.value.clone()),
                },
                None => super::store::Floor::default(),
            };
            let obtained = store.obtain(&inner.rules.placement, floor, fetch).await;
            return self.land(obtained.result, obtained.stored, obtained.fallback);
        }
        let result = fetch.await;
        self.land(result, None, None)
    }

    /// Installs the fetched token (or records the failure) and ends the flight, under one lock.
    ///
    /// `stored` is the token's generation in the token store; `fallback`, a stored token past
    /// its expiry, served (static stability) if the fetch failed with nothing cached.
    fn land(
        &mut self,
        result: Result<(HeaderValue, Token), TokenError>,
        stored: Option<u64>,
        fallback: Option<(HeaderValue, u64)>,
    ) -> Result<Arc<Current>, TokenError> {
        self.landed = true;
        let inner = &self.inner;
        let mut state = lock(&inner.state);
        state.flight = None;
        if let (Err(err), Some((value, generation))) = (&result, fallback) {
            if inner.config.static_stability
                && err.kind() != TokenErrorKind::Unrecoverable
                && inner.current.load().is_none()
            {
                // A stored token past its expiry, and the fetch failed: it serves as a cached
                // one would (`fail` keeps it and backs off).
                // Installed as expiring now, so that it is shown, sent and refreshed as the
                // expired token it is.
                let after_rejection = state.flight_after_rejection;
                inner.install(
                    &mut state,
                    value,
                    Some(Duration::ZERO),
                    after_rejection,
                    Some(generation),
                );
            }
        }
        let result = result.and_then(|(value, token)| match inner.current.load_full() {
            // A refresh whose answer is no better than the cached token failed.
            Some(current) if !state.swapped_in_flight && no_refresh(&token, &value, &current) => {
                Err(TokenError::new(
                    TokenErrorKind::Fetch,
                    Some(STALE_ANSWER.into()),
                ))
            }
            _ => Ok((value, token.remaining())),
        });
        match result {
            Ok((value, remaining)) => {
                state.failures = 0;
                state.not_before = None;
                state.unrecoverable = None;
                state.last_error = None;
                if state.swapped_in_flight {
                    // A token swapped in meanwhile wins: it was chosen by hand, after this
                    // fetch started.
                    if let Some(current) = inner.current.load_full() {
                        return Ok(current);
                    }
                }
                let after_rejection = state.flight_after_rejection;
                let current = inner.install(&mut state, value, remaining, after_rejection, stored);
                tracing::debug!(
                    generation = current.generation,
                    expires_in = ?remaining,
                    "access token fetched"
                );
                Ok(current)
            }
            Err(err) => inner.fail(&mut state, err),
        }
    }
}

/// The source's fetch, counted, bounded by the fetch timeout, its token checked.
fn fetch(inner: &Arc<Inner>) -> impl Future<Output = Result<(HeaderValue, Token), TokenError>> {
    let inner = Arc::clone(inner);
    async move {
        inner.fetches.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let fetched = tokio::time::timeout(inner.config.fetch_timeout, inner.source.fetch()).await;
        let result = match fetched {
            Ok(Ok(token)) => match inner.rules.placement.header_value(&token.secret) {
                Ok(value) => Ok((value, token)),
                Err(err) => Err(TokenError::new(
                    TokenErrorKind::InvalidToken,
                    Some(err.into()),
                )),
            },
            // The kind says it is unrecoverable; the source is the source's own error.
            Ok(Err(err)) => match err.downcast::<Unrecoverable>() {
                Ok(unrecoverable) => Err(TokenError::new(
                    TokenErrorKind::Unrecoverable,
                    Some(unrecoverable.into_inner()),
                )),
                Err(err) => Err(TokenError::new(TokenErrorKind::Fetch, Some(err))),
            },
            Err(_elapsed) => Err(TokenError::new(TokenErrorKind::Timeout, None)),
        };
        let error = result.as_ref().err().map(|err| err.kind().label());
        crate::metrics::token_fetch(error, started.elapsed());
        result
    }
}

const STALE_ANSWER: &str =
    "the token source answered a token already expired, or the cached one again";

/// Whether an answer is no refresh of `current`: a token already expired, or the same token
/// again expiring no later (an intermediary answering from its own stale cache). A different
/// token is a refresh even when it lives shorter: the provider may have shortened lifetimes.
fn no_refresh(token: &Token, value: &HeaderValue, current: &Current) -> bool {
    if token.already_expired() {
        return true;
    }
    if *value != current.value {
        return false;
    }
    match (token.remaining(), current.expires_at) {
        (Some(remaining), Some(expires_at)) => Instant::now() + remaining <= expires_at,
        (None, _) => true,
        (Some(_), None) => false,
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
            // Nobody waits for this result any more (the task is gone): only the state matters.
            let _ = self.inner.fail(&mut state, err);
        }
    }
}
