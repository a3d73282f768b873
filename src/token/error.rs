use std::fmt;
use std::sync::Arc;

use tower::BoxError;

/// Why no token could be had. Every request waiting on the same fetch gets a clone of the same
/// error; errors are never cached, so a later request tries again (after a short backoff).
///
/// It carries what failed, never a secret: token sources report codes and messages, not the
/// credentials they sent. `Display` says what failed; the cause (the source's own error) is
/// its [`source`](std::error::Error::source), so that an error report prints it once.
#[derive(Clone)]
pub struct TokenError {
    kind: TokenErrorKind,
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

/// What kind of failure a [`TokenError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenErrorKind {
    /// The token source failed: the endpoint was unreachable, answered an error, or sent
    /// something that is not a token. The source error says which.
    Fetch,
    /// The token source did not answer within the configured fetch timeout.
    Timeout,
    /// The source returned a token that cannot go into a header (empty, whitespace, control
    /// characters, non-ASCII). A [`JsonTokenEndpoint`](super::JsonTokenEndpoint) (and so the
    /// presets) reports an answer without a token, or with an empty one, as a `Fetch` error of
    /// its own.
    InvalidToken,
    /// The API rejected the token, and another rejection-triggered refetch is not allowed yet:
    /// refetches after rejections are rate-limited so a broken account is not a fetch storm.
    Rejected,
    /// The fetch task ended without an answer (it panicked, or the runtime shut down).
    Aborted,
    /// The token source said retrying cannot fix this (wrong client credentials, a revoked
    /// key; see [`Unrecoverable`](super::Unrecoverable)). Repeated without contacting the source
    /// for a few seconds, then the next request tries again.
    Unrecoverable,
}

impl TokenErrorKind {
    /// The kind as a metric label.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Fetch => "fetch",
            Self::Timeout => "timeout",
            Self::InvalidToken => "invalid_token",
            Self::Rejected => "rejected",
            Self::Aborted => "aborted",
            Self::Unrecoverable => "unrecoverable",
        }
    }
}

impl TokenError {
    pub(crate) fn new(kind: TokenErrorKind, source: Option<BoxError>) -> Self {
        Self {
            kind,
            source: source.map(Arc::from),
        }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> TokenErrorKind {
        self.kind
    }
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.kind {
            TokenErrorKind::Fetch => "fetching an access token failed",
            TokenErrorKind::Timeout => "fetching an access token timed out",
            TokenErrorKind::InvalidToken => {
                "the token source returned a token that is not a valid header value"
            }
            TokenErrorKind::Rejected => {
                "the API rejected the access token, and refetching is rate-limited"
            }
            TokenErrorKind::Aborted => "the token fetch ended without an answer",
            TokenErrorKind::Unrecoverable => {
                "fetching an access token failed, and retrying cannot fix it"
            }
        })
    }
}

impl fmt::Debug for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenError")
            .field("kind", &self.kind)
            .field("source", &self.source.as_ref().map(|s| s.to_string()))
            .finish()
    }
}

impl std::error::Error for TokenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}
