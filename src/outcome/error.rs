use std::fmt;

use http::{Response, StatusCode};

use super::{Outcome, OutcomeKind};

/// A response classified as a failure, turned into an error by [`error_for_outcome`] so that
/// `?` works in client code. It carries the status, the provider's code and message, never a
/// secret.
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

/// The response, or a [`ClassifiedError`] when its [`Outcome`] is a failure: `?` for client
/// code, applied to what the whole stack answers.
///
/// It is a function rather than a layer option on purpose: a layer that turned failures into
/// errors would hide them from every retry policy and token replay outside it, so the place to
/// do it is after the stack, where nothing is left to see them.
///
/// ```
/// use http::{Response, StatusCode};
/// use tower_api_auth::outcome::{Outcome, OutcomeKind, error_for_outcome};
///
/// let mut response = Response::new(());
/// response
///     .extensions_mut()
///     .insert(Outcome::new(OutcomeKind::Forbidden, StatusCode::OK).with_code(1009));
/// let err = error_for_outcome(response).unwrap_err();
/// assert_eq!((err.kind(), err.code()), (OutcomeKind::Forbidden, Some(1009)));
/// // A response with no outcome (no `ClassifyLayer` in the stack) is passed through.
/// assert!(error_for_outcome(Response::new(())).is_ok());
/// ```
pub fn error_for_outcome<B>(response: Response<B>) -> Result<Response<B>, ClassifiedError> {
    match response.extensions().get::<Outcome>() {
        Some(outcome) if !outcome.is_success() => Err(ClassifiedError::new(outcome.clone())),
        _ => Ok(response),
    }
}
