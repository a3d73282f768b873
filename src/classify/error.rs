use std::fmt;

use http::StatusCode;

use super::{Outcome, OutcomeKind};

/// A response classified as a failure, turned into an error by
/// [`ClassifyLayer::fail_on_failure`](super::ClassifyLayer::fail_on_failure) so that `?` works
/// in client code. It carries the status, the provider's code and message, never a secret.
#[derive(Debug, Clone)]
pub struct ClassifiedError {
    outcome: Outcome,
}

impl ClassifiedError {
    pub(crate) fn new(outcome: Outcome) -> Self {
        Self { outcome }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> OutcomeKind {
        self.outcome.kind()
    }

    /// The HTTP status of the response.
    pub fn status(&self) -> StatusCode {
        self.outcome.status()
    }

    /// The provider's code, if any.
    pub fn code(&self) -> Option<i64> {
        self.outcome.code()
    }

    /// The provider's message, if any.
    pub fn message(&self) -> Option<&str> {
        self.outcome.message()
    }

    /// The whole outcome.
    pub fn outcome(&self) -> &Outcome {
        &self.outcome
    }
}

impl fmt::Display for ClassifiedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the API answered: {}", self.outcome)
    }
}

impl std::error::Error for ClassifiedError {}
