//! [`RetryMiddleware`]: retries by [`RetryPolicy`]'s rules, each answer classified first.

use std::fmt;
use std::time::SystemTime;

use http::Extensions;
use http::response::Parts;
use reqwest_middleware::{Middleware, Next};
use tower::BoxError;
use tower::retry::Policy;

use super::{Result, rebuild, take_apart};
use crate::outcome::{Classifier, Outcome, RetryPolicy, StatusClassifier};

/// Middleware that retries rate-limited and transient failures by [`RetryPolicy`]'s rules:
/// `Retry-After` honoured (up to the policy's cap), exponential backoff otherwise, a budget, a
/// cap on attempts, and **never a request whose method is not idempotent** (a `POST`) unless
/// the API provably did not process it (429, 503 with `Retry-After`, connection refused).
/// reqwest-retry's middleware ignores `Retry-After`; this one reads it.
///
/// Each answer is classified (by its status and `Retry-After`, or by the classifier given,
/// Akool's body codes say), and the [`Outcome`] is put into the response's extensions, unless
/// an inner middleware put one there. Add it before (outside)
/// [`TokenAuthMiddleware`](super::TokenAuthMiddleware): a token rejection is that middleware's
/// to replay, never retried here.
///
/// ```
/// use tower_api_auth::outcome::RetryPolicy;
/// use tower_api_auth::providers::akool;
/// use tower_api_auth::reqwest::RetryMiddleware;
///
/// let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
///     .with(RetryMiddleware::new(RetryPolicy::new()).classifier(akool::classifier()))
///     .build();
/// # let _ = client;
/// ```
#[derive(Clone)]
pub struct RetryMiddleware {
    policy: RetryPolicy,
    classifier: std::sync::Arc<dyn Classifier>,
    outcomes: crate::outcome::OutcomeCounters,
}

impl RetryMiddleware {
    /// Retries as `policy` says; answers are classified by their status and `Retry-After`.
    pub fn new(policy: RetryPolicy) -> Self {
        Self {
            policy,
            classifier: std::sync::Arc::new(StatusClassifier::new()),
            outcomes: Default::default(),
        }
    }

    /// Classifies answers with `classifier` (a provider's, to read body codes).
    pub fn classifier(mut self, classifier: impl Classifier) -> Self {
        self.classifier = std::sync::Arc::new(classifier);
        self
    }

    /// Puts the classifier's outcome into `response`, unless one is there; JSON bodies up to
    /// the classify layer's limit are read ahead when the classifier wants them.
    async fn classify(&self, response: reqwest::Response) -> Result<reqwest::Response> {
        if response.extensions().get::<Outcome>().is_some() {
            return Ok(response);
        }
        let limit = crate::outcome::DEFAULT_BODY_LIMIT;
        let wants_body = |head: &Parts| self.classifier.wants_body(head);
        let (url, mut head, whole, body) = take_apart(response, limit, wants_body).await?;
        let mut outcome = self.classifier.classify(&head, whole.as_deref());
        if outcome.retry_after().is_none() {
            // A provider's classifier may judge by the body alone: the header still counts.
            if let Some(delay) = crate::outcome::retry_after(&head.headers, SystemTime::now()) {
                outcome = outcome.with_retry_after(delay);
            }
        }
        self.outcomes.count(self.classifier.provider(), &outcome);
        head.extensions.insert(outcome);
        Ok(rebuild(url, head, body))
    }
}

impl fmt::Debug for RetryMiddleware {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryMiddleware")
            .field("policy", &self.policy)
            .field("classifier", &self.classifier.provider())
            .finish()
    }
}

/// What `RetryPolicy` sees of an answer: its status and outcome, or the error, boxed so that
/// a connection refused is found among its causes.
fn policy_view(
    result: &Result<reqwest::Response>,
) -> std::result::Result<http::Response<()>, BoxError> {
    match result {
        Ok(response) => {
            let mut view = http::Response::new(());
            *view.status_mut() = response.status();
            if let Some(outcome) = response.extensions().get::<Outcome>() {
                view.extensions_mut().insert(outcome.clone());
            }
            Ok(view)
        }
        Err(reqwest_middleware::Error::Reqwest(error)) => {
            Err(Box::new(ErrorView(error.to_string(), find_io_kind(error))))
        }
        Err(error) => Err(error.to_string().into()),
    }
}

/// A transport error's message and the kind of the I/O error among its causes.
#[derive(Debug)]
struct ErrorView(String, Option<std::io::Error>);

impl fmt::Display for ErrorView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ErrorView {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.1.as_ref().map(|io| io as _)
    }
}

fn find_io_kind(error: &reqwest::Error) -> Option<std::io::Error> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(error);
    while let Some(err) = cause {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return Some(std::io::Error::from(io.kind()));
        }
        cause = err.source();
    }
    None
}

#[async_trait::async_trait]
impl Middleware for RetryMiddleware {
    async fn handle(
        &self,
        request: reqwest::Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> Result<reqwest::Response> {
        // A clone per request, as `tower::retry` makes: attempts counted per request, the
        // budget shared.
        let mut policy = self.policy.clone();
        let mut view = http::Request::new(());
        *view.method_mut() = request.method().clone();
        let mut request = request;
        loop {
            let copy = request.try_clone();
            let mut result = next.clone().run(request, extensions).await;
            if let Ok(response) = result {
                result = self.classify(response).await;
            }
            let Some(copy) = copy else {
                return result;
            };
            let mut seen = policy_view(&result);
            let Some(wait) = Policy::<http::Request<()>, http::Response<()>, BoxError>::retry(
                &mut policy,
                &mut view,
                &mut seen,
            ) else {
                return result;
            };
            drop(result);
            wait.await;
            request = copy;
        }
    }
}
