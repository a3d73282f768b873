//! A cached token, as requests see it: its header value, its windows, and whether a refresh is
//! due, read in one load.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use http::header::HeaderValue;
use tokio::time::Instant;

/// A cached token, as requests see it.
#[derive(Debug)]
pub(crate) struct Current {
    pub(crate) generation: u64,
    pub(crate) value: HeaderValue,
    pub(super) expires_at: Option<Instant>,
    /// From here on, requests wait for a refresh (the mandatory window).
    pub(super) mandatory_at: Option<Instant>,
    /// From here on, a background refresh runs (the advisory window).
    pub(super) advisory_at: Option<Instant>,
    /// Fetched because the previous token was rejected: a rejection of this one is rate-limited.
    pub(super) after_rejection: bool,
    /// [`DUE_INVALIDATED`] once rejected or invalidated (the next request waits for a refresh,
    /// and keeps this token if the refresh fails: static stability), [`DUE_TIMED`] when
    /// `mandatory_at` is set: zero, the common case, says "no refresh due" in one load.
    due: AtomicU8,
    /// A request went out with this token past its expiry, and it was logged.
    warned_stale: AtomicBool,
    /// Its generation in the token store, when it is stored there.
    #[cfg_attr(not(feature = "token-store"), allow(dead_code))]
    pub(super) stored: Option<u64>,
}

/// [`Current::due`]: invalidated.
const DUE_INVALIDATED: u8 = 1;
/// [`Current::due`]: a mandatory window is set.
const DUE_TIMED: u8 = 2;

impl Current {
    pub(super) fn new(
        generation: u64,
        value: HeaderValue,
        windows: Option<(Instant, Instant, Instant)>,
        after_rejection: bool,
        stored: Option<u64>,
    ) -> Self {
        Self {
            generation,
            value,
            advisory_at: windows.map(|(advisory, _, _)| advisory),
            mandatory_at: windows.map(|(_, mandatory, _)| mandatory),
            expires_at: windows.map(|(_, _, expires)| expires),
            after_rejection,
            due: AtomicU8::new(if windows.is_some() { DUE_TIMED } else { 0 }),
            warned_stale: AtomicBool::new(false),
            stored,
        }
    }

    /// Whether a request must not use this token without trying to refresh it first: it was
    /// invalidated, or its mandatory window has begun. Reads the clock only for a token whose
    /// expiry is known.
    #[inline]
    pub(crate) fn refresh_due(&self) -> bool {
        let due = self.due.load(Ordering::Relaxed);
        due != 0
            && (due & DUE_INVALIDATED != 0
                || self
                    .mandatory_at
                    .is_some_and(|mandatory_at| Instant::now() >= mandatory_at))
    }

    /// Whether the token was rejected or invalidated.
    pub(super) fn invalidated(&self) -> bool {
        self.due.load(Ordering::Relaxed) & DUE_INVALIDATED != 0
    }

    /// Marks the token rejected or invalidated; returns whether it already was.
    pub(super) fn invalidate(&self) -> bool {
        self.due.fetch_or(DUE_INVALIDATED, Ordering::Relaxed) & DUE_INVALIDATED != 0
    }

    /// Whether the token's known expiry has passed.
    pub(super) fn expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|expires_at| now >= expires_at)
    }

    /// Says once per token, at WARN, that it is being sent past its expiry.
    pub(super) fn warn_if_stale(&self, now: Instant) {
        if self.expired(now) {
            crate::metrics::token_stale_served();
        }
        if self.expired(now) && !self.warned_stale.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                generation = self.generation,
                "no new access token could be fetched: sending the cached one past its expiry \
                 (static stability)"
            );
        }
    }
}
