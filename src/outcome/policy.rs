use std::sync::Arc;
use std::time::Duration;

use std::any::Any;

use http::{Method, Request, Response, StatusCode};
use tower::BoxError;
use tower::retry::Policy;
use tower::retry::backoff::{Backoff, ExponentialBackoff, ExponentialBackoffMaker, MakeBackoff};
use tower::retry::budget::{Budget, TpsBudget};
use tower::util::rng::HasherRng;

use super::{Outcome, OutcomeKind};
use crate::body::try_copy_request;

/// A [`tower::retry::Policy`] that retries rate-limited and transient failures only — HTTP
/// 429, 408 and 5xx, Akool codes 1005 and 1108 — and never a client error, a forbidden, banned
/// or missing credential (400, 401, 403, 404, 422, Akool 1003/1009/1101/1102/1200).
///
/// **It never pays twice.** A request whose method is not idempotent (RFC 9110: anything but
/// GET, HEAD, OPTIONS, TRACE, PUT and DELETE — a `POST` that creates an Akool job and spends
/// credits) is retried only where the API provably did not process it: a rate limit (429, Akool
/// 1005), a `503` with `Retry-After`, or a connection refused before anything was sent. A
/// transient failure of such a request (a `500`, a `502`) is handed back, unless
/// [`retry_non_idempotent`](Self::retry_non_idempotent) says the API deduplicates (an
/// idempotency key). Other transport errors are never retried: whether the request arrived is
/// unknown.
///
/// It reads the [`Outcome`] that [`ClassifyLayer`](crate::ClassifyLayer) put into the
/// response (so place the retry layer *outside* the classify layer), or the status alone when
/// there is none. The delay is the server's `Retry-After` up to a cap, or an exponential backoff
/// with jitter; attempts are capped per request, and a [`TpsBudget`] shared by every clone
/// keeps retries to a fraction of the traffic.
///
/// An expired credential is not retried here: replaying with a fresh token is
/// [`TokenAuth`](crate::TokenAuth)'s job, which also makes sure it happens once.
///
/// ```
/// use tower::ServiceBuilder;
/// use tower::retry::RetryLayer;
/// use tower_api_auth::ClassifyLayer;
/// use tower_api_auth::outcome::RetryPolicy;
/// use tower_api_auth::providers::akool;
///
/// # fn wrap<S>(client: S) {
/// let client = ServiceBuilder::new()
///     .layer(RetryLayer::new(RetryPolicy::new()))
///     .layer(ClassifyLayer::new(akool::classifier()))
///     .service(client);
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    budget: Arc<TpsBudget>,
    backoff: ExponentialBackoff,
    max_retries: u32,
    max_retry_after: Duration,
    non_idempotent: bool,
    attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::new()
    }
}

impl RetryPolicy {
    /// Up to 3 retries per request, backoff from 100 ms to 10 s, `Retry-After` honoured up to
    /// 60 s, and a budget of 20 % of the traffic (at least 10 retries a second) over 10 s.
    pub fn new() -> Self {
        Self {
            budget: Arc::new(TpsBudget::new(Duration::from_secs(10), 10, 0.2)),
            backoff: backoff(Duration::from_millis(100), Duration::from_secs(10)),
            max_retries: 3,
            max_retry_after: Duration::from_secs(60),
            non_idempotent: false,
            attempts: 0,
        }
    }

    /// At most this many retries per request.
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// The exponential backoff, from `min` to `max` (with jitter), when the server gives no
    /// `Retry-After`.
    pub fn backoff(mut self, min: Duration, max: Duration) -> Self {
        self.backoff = backoff(min, max.max(min));
        self
    }

    /// A `Retry-After` longer than this is not waited for: the failure is returned instead.
    pub fn max_retry_after(mut self, cap: Duration) -> Self {
        self.max_retry_after = cap;
        self
    }

    /// Retries requests of any method on transient failures, as if they were idempotent: only
    /// for APIs that deduplicate them (an idempotency key the caller sets).
    pub fn retry_non_idempotent(mut self) -> Self {
        self.non_idempotent = true;
        self
    }

    /// The retry budget shared by every clone of this policy
    /// ([`tower::retry::budget::TpsBudget`]).
    pub fn budget(mut self, budget: TpsBudget) -> Self {
        self.budget = Arc::new(budget);
        self
    }

    fn outcome<B>(response: &Response<B>) -> Outcome {
        match response.extensions().get::<Outcome>() {
            Some(outcome) => outcome.clone(),
            None => Outcome::new(kind_of(response.status()), response.status()),
        }
    }
}

fn backoff(min: Duration, max: Duration) -> ExponentialBackoff {
    // The only errors are for min > max, max == 0 and jitter outside 0..=100: excluded here.
    let max = max.max(Duration::from_millis(1));
    ExponentialBackoffMaker::new(min.min(max), max, 0.5, HasherRng::default())
        .map(|mut maker| maker.make_backoff())
        .unwrap_or_else(|_| unreachable!("backoff bounds are checked above"))
}

fn kind_of(status: StatusCode) -> OutcomeKind {
    match status {
        StatusCode::TOO_MANY_REQUESTS => OutcomeKind::RateLimited,
        StatusCode::REQUEST_TIMEOUT => OutcomeKind::Transient,
        s if s.is_server_error() => OutcomeKind::Transient,
        _ => OutcomeKind::Success,
    }
}

/// RFC 9110 §9.2.2: sending these twice has the effect of sending them once.
fn idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

/// Whether the API provably did not act on the request: it asked to be called later (429, or
/// 503 with `Retry-After`).
fn not_processed(outcome: &Outcome) -> bool {
    outcome.kind() == OutcomeKind::RateLimited
        || (outcome.status() == StatusCode::SERVICE_UNAVAILABLE && outcome.retry_after().is_some())
}

/// Whether a transport error is a connection refused, before any byte of the request was sent.
/// The crate's layers box their errors, so a boxed error's causes are searched.
fn refused_before_sending<E: 'static>(err: &E) -> bool {
    let Some(err) = (err as &dyn Any).downcast_ref::<BoxError>() else {
        return false;
    };
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&**err);
    while let Some(err) = cause {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return io.kind() == std::io::ErrorKind::ConnectionRefused;
        }
        cause = err.source();
    }
    false
}

impl<B, ResBody, E> Policy<Request<B>, Response<ResBody>, E> for RetryPolicy
where
    B: 'static,
    E: 'static,
{
    type Future = tokio::time::Sleep;

    fn retry(
        &mut self,
        request: &mut Request<B>,
        result: &mut Result<Response<ResBody>, E>,
    ) -> Option<Self::Future> {
        let outcome = match result {
            Ok(response) => Self::outcome(response),
            Err(err) if refused_before_sending(err) => {
                Outcome::new(OutcomeKind::Transient, StatusCode::SERVICE_UNAVAILABLE)
            }
            // Other transport errors are not retried: whether the request reached the API is
            // unknown.
            Err(_) => return None,
        };
        if !outcome.retry_warranted() {
            self.budget.deposit();
            return None;
        }
        let safe = self.non_idempotent
            || idempotent(request.method())
            || result.is_err() // refused before sending
            || not_processed(&outcome);
        if !safe {
            tracing::debug!(
                method = %request.method(),
                status = outcome.status().as_u16(),
                "not retried: the request is not idempotent and may have been processed"
            );
            return None;
        }
        if self.attempts >= self.max_retries {
            return None;
        }
        let delay = match outcome.retry_after() {
            Some(delay) if delay > self.max_retry_after => return None,
            Some(delay) => Some(delay),
            None => None,
        };
        if !self.budget.withdraw() {
            tracing::debug!("retry budget exhausted");
            return None;
        }
        self.attempts += 1;
        crate::metrics::retry(match result {
            Err(_) => "connection_refused",
            Ok(_) => outcome.kind().label(),
        });
        Some(match delay {
            Some(delay) => tokio::time::sleep(delay),
            None => self.backoff.next_backoff(),
        })
    }

    fn clone_request(&mut self, request: &Request<B>) -> Option<Request<B>> {
        try_copy_request(request)
    }
}
