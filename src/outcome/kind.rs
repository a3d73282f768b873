use std::fmt;
use std::time::Duration;

use http::StatusCode;

/// What a response means for the caller, as far as authentication and retrying go.
///
/// Put into the response's extensions by [`ClassifyLayer`](crate::ClassifyLayer), read by
/// [`RetryPolicy`](super::RetryPolicy) and by [`TokenAuth`](crate::TokenAuth) (which replays a
/// request once when [`refetch_warranted`](Self::refetch_warranted)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    kind: OutcomeKind,
    status: StatusCode,
    code: Option<i64>,
    message: Option<String>,
    retry_after: Option<Duration>,
}

/// The kinds of [`Outcome`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OutcomeKind {
    /// The call succeeded.
    Success,
    /// The credential was rejected as expired or invalid (HTTP 401, Akool 1101): a fetched token
    /// should be refetched and the request replayed once.
    CredentialRejected,
    /// No credential arrived (Akool 1102): a configuration error, never retried.
    CredentialMissing,
    /// The credential is valid but not allowed this (HTTP 403, Akool 1009): never retried.
    Forbidden,
    /// The account is banned or disabled (Akool 1200): never retried.
    Banned,
    /// Too many requests (HTTP 429, Akool 1005): retry after a delay.
    RateLimited,
    /// A passing upstream failure (HTTP 5xx, 408, Akool 1108): retry after a delay.
    Transient,
    /// The request itself is wrong (other 4xx, Akool 1003/1006/1008, ...): never retried.
    ClientError,
}

impl OutcomeKind {
    /// How many kinds there are: `kind as usize` is below this.
    #[cfg(feature = "metrics")]
    pub(crate) const COUNT: usize = 8;

    /// The kind as a metric label.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::CredentialRejected => "credential_rejected",
            Self::CredentialMissing => "credential_missing",
            Self::Forbidden => "forbidden",
            Self::Banned => "banned",
            Self::RateLimited => "rate_limited",
            Self::Transient => "transient",
            Self::ClientError => "client_error",
        }
    }
}

impl Outcome {
    /// An outcome of `kind` for a response with `status`.
    pub fn new(kind: OutcomeKind, status: StatusCode) -> Self {
        Self {
            kind,
            status,
            code: None,
            message: None,
            retry_after: None,
        }
    }

    /// Adds the provider's own code (Akool's body `code`).
    pub fn with_code(mut self, code: i64) -> Self {
        self.code = Some(code);
        self
    }

    /// Adds the provider's message (`msg`, `detail`, `error`).
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }

    /// Adds the delay the server asked for (`Retry-After`).
    pub fn with_retry_after(mut self, delay: Duration) -> Self {
        self.retry_after = Some(delay);
        self
    }

    /// What kind of outcome this is.
    pub fn kind(&self) -> OutcomeKind {
        self.kind
    }

    /// The HTTP status of the response.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The provider's code, if the body had one.
    pub fn code(&self) -> Option<i64> {
        self.code
    }

    /// The provider's message, if the body had one.
    pub fn message(&self) -> Option<&str> {
        self.message.as_deref()
    }

    /// The delay the server asked for before a retry.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// Whether the call succeeded.
    pub fn is_success(&self) -> bool {
        self.kind == OutcomeKind::Success
    }

    /// Whether a fetched credential should be refetched and the request replayed once: only
    /// for an expired or invalid credential, never for forbidden, banned or missing.
    pub fn refetch_warranted(&self) -> bool {
        self.kind == OutcomeKind::CredentialRejected
    }

    /// Whether sending the same request again later may succeed: rate limits and passing
    /// upstream failures only.
    pub fn retry_warranted(&self) -> bool {
        matches!(self.kind, OutcomeKind::RateLimited | OutcomeKind::Transient)
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            OutcomeKind::Success => "success",
            OutcomeKind::CredentialRejected => "credential expired or invalid",
            OutcomeKind::CredentialMissing => "credential missing",
            OutcomeKind::Forbidden => "forbidden",
            OutcomeKind::Banned => "account banned or disabled",
            OutcomeKind::RateLimited => "rate limited",
            OutcomeKind::Transient => "transient upstream failure",
            OutcomeKind::ClientError => "client error",
        };
        write!(f, "{kind} (HTTP {}", self.status.as_u16())?;
        if let Some(code) = self.code {
            write!(f, ", code {code}")?;
        }
        f.write_str(")")?;
        if let Some(message) = &self.message {
            write!(f, ": {message}")?;
        }
        Ok(())
    }
}
