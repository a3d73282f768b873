//! Where a token credential's cached token stands, for health checks.

use std::time::Duration;

use crate::TokenError;

/// Where a [`TokenCredential`](crate::TokenCredential)'s cached token stands; see [`TokenCredential::status`](crate::TokenCredential::status), and the
/// example of [`Unrecoverable`](super::Unrecoverable) for one read after a failed fetch.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TokenStatus {
    /// The window the cached token is in.
    pub window: Window,
    /// How long until the advisory window begins (zero once it has), when the expiry is known.
    pub advisory_in: Option<Duration>,
    /// How long until the next fetch may start, while a failed one backs off (or an
    /// unrecoverable error is held).
    pub fetch_not_before: Option<Duration>,
    /// The last fetch error, if the last fetch failed.
    pub last_error: Option<TokenError>,
    /// The last problem with the [token store](super::store::TokenStore), if one is configured and
    /// ever failed (kept after it recovers; the log says when it did).
    #[cfg(feature = "token-store")]
    pub store_error: Option<super::store::StoreError>,
}

/// The windows of a token's life; see [`TokenCredentialBuilder::advisory_window`](super::TokenCredentialBuilder::advisory_window) and
/// [`TokenCredentialBuilder::mandatory_window`](super::TokenCredentialBuilder::mandatory_window).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Window {
    /// No token is cached.
    Empty,
    /// Cached and used as it is (or its expiry is unknown).
    Fresh,
    /// Cached and used; a background refresh is due.
    Advisory,
    /// Requests wait for a refresh before using it.
    Mandatory,
    /// Past its expiry: served only while refreshing fails (static stability).
    Expired,
    /// Rejected by the API, or [`invalidate`](crate::TokenCredential::invalidate)d: the next request
    /// waits for a refresh; served only while refreshing fails (static stability).
    Invalidated,
}
