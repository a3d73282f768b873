//! `reqwest_middleware` middleware: a static credential ([`AuthMiddleware`]), a fetched token
//! with one replay on a rejection ([`TokenAuthMiddleware`]), and retries that honour
//! `Retry-After` and never repeat a request that may have been processed ([`RetryMiddleware`]).
//! Each is the tower layer's logic, reused: the credential's rules, the token credential's
//! single flight and rejection handling, the classifiers, [`RetryPolicy`]'s rules.

use std::fmt;
use std::time::SystemTime;

use http::response::Parts;
use http::{Extensions, StatusCode, Uri};
use reqwest_middleware::{Middleware, Next};
use tower::BoxError;
use tower::retry::Policy;

use crate::body::{Peek, worth_peeking};
use crate::outcome::{Classifier, Outcome, RetryPolicy, StatusClassifier};
use crate::token::{Acquire, Current, Rejection};
use crate::{Credential, TokenCredential, TokenError};

type Result<T> = reqwest_middleware::Result<T>;

/// The request's URL as an `http::Uri`, for the credential's origin check.
fn uri_of(request: &reqwest::Request) -> Option<Uri> {
    Uri::try_from(request.url().as_str()).ok()
}

/// Middleware that puts a static [`Credential`] on every request bound for one of its origins,
/// as [`AuthLayer`](crate::AuthLayer) does: its header set (replacing any value), conflicting
/// headers removed, nothing sent elsewhere, and [`Credential::rotate`] seen by the next request.
///
/// ```
/// use tower_api_auth::providers::akkio;
/// use tower_api_auth::reqwest::AuthMiddleware;
///
/// let credential = akkio::api_key("akkio-key").build()?;
/// let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
///     .with(AuthMiddleware::new(credential))
///     .build();
/// # let _ = client;
/// # Ok::<(), tower_api_auth::CredentialError>(())
/// ```
#[derive(Clone, Debug)]
pub struct AuthMiddleware {
    credential: Credential,
}

impl AuthMiddleware {
    /// Puts `credential` on the requests bound for its origins.
    pub fn new(credential: Credential) -> Self {
        Self { credential }
    }
}

#[async_trait::async_trait]
impl Middleware for AuthMiddleware {
    async fn handle(
        &self,
        mut request: reqwest::Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> Result<reqwest::Response> {
        if let Some(uri) = uri_of(&request) {
            self.credential.attach_to(&uri, request.headers_mut());
        }
        next.run(request, extensions).await
    }
}

/// Middleware that attaches a [`TokenCredential`]'s token to every request bound for one of its
/// origins, and replays a request once with a new token when the API rejects it, with the
/// guarantees of [`TokenAuthLayer`](crate::TokenAuthLayer):
///
/// - one fetch for all concurrent callers (the credential's single flight), refreshed ahead of
///   a known expiry, served stale while the endpoint fails (static stability);
/// - a rejection is a `401`, or what the credential's
///   [`classifier`](crate::token::TokenCredentialBuilder::classifier) calls one (Akool's code
///   1101 in an HTTP 200, read from the start of the body, which the caller still gets whole);
///   one refetch per rejected token, one replay per request, never a loop;
/// - the classifier's [`Outcome`] is put into the response's extensions
///   (`response.extensions().get::<Outcome>()`);
/// - a request whose body reqwest cannot clone (any streamed body, `reqwest::Body::wrap_stream`
///   or `Body::wrap`, whatever its size; the tower route reads small ones into memory) is sent
///   once: its rejection refetches the token for the next requests and comes back as the API's
///   answer.
///
/// A token that cannot be had is an error: `reqwest_middleware::Error::Middleware` wrapping a
/// [`TokenError`].
///
/// ```
/// use tower_api_auth::providers::akool;
/// use tower_api_auth::reqwest::{ReqwestService, TokenAuthMiddleware};
///
/// let http = reqwest::Client::new();
/// let tokens = akool::client_credentials("client-id", "client-secret")
///     .build(ReqwestService::new(http.clone()))?;
/// let client = reqwest_middleware::ClientBuilder::new(http)
///     .with(TokenAuthMiddleware::new(tokens))
///     .build();
/// # let _ = client;
/// # Ok::<(), tower_api_auth::CredentialError>(())
/// ```
#[derive(Clone, Debug)]
pub struct TokenAuthMiddleware {
    tokens: TokenCredential,
}

impl TokenAuthMiddleware {
    /// Attaches the tokens of `tokens` to the requests bound for its origins, replay on.
    pub fn new(tokens: TokenCredential) -> Self {
        Self { tokens }
    }
}

/// A token for a request: the cached one, or the shared fetch's.
async fn token(
    tokens: &TokenCredential,
) -> std::result::Result<std::sync::Arc<Current>, TokenError> {
    match tokens.acquire() {
        Acquire::Ready(current) => Ok(current),
        Acquire::Wait(flight) => flight.await,
        Acquire::Refused(error) => Err(error),
    }
}

fn token_error(error: TokenError) -> reqwest_middleware::Error {
    reqwest_middleware::Error::middleware(error)
}

/// A response taken apart to be judged, and put back together with its URL.
struct Judged {
    response: reqwest::Response,
    rejected: bool,
}

/// Judges an answer as [`TokenAuth`](crate::TokenAuth) does: reads the start of a JSON body
/// when the classifier wants it, puts the classifier's [`Outcome`] into the extensions (unless
/// one is there), and says whether the token was rejected.
async fn judge(rejection: &Rejection, response: reqwest::Response) -> Result<Judged> {
    let url = response.url().clone();
    let (mut head, body): (Parts, reqwest::Body) = http::Response::from(response).into_parts();
    let limit = Rejection::BODY_LIMIT;
    let (whole, body) = if rejection.wants_body(&head) && worth_peeking(&head, &body, limit) {
        let peeked = Peek::new(body, limit)
            .await
            .map_err(reqwest_middleware::Error::Reqwest)?;
        (peeked.whole, reqwest::Body::wrap(peeked.body))
    } else {
        (None, body)
    };
    let verdict = rejection.classify(&head, whole.as_deref());
    let rejected = match (&verdict, head.extensions.get::<Outcome>()) {
        (_, Some(inner)) if inner.refetch_warranted() => true,
        (Some(outcome), _) => outcome.refetch_warranted(),
        (None, _) => head.status == StatusCode::UNAUTHORIZED,
    };
    if let Some(outcome) = verdict.filter(|_| head.extensions.get::<Outcome>().is_none()) {
        rejection.count(&outcome);
        head.extensions.insert(outcome);
    }
    Ok(Judged {
        response: rebuild(url, head, body),
        rejected,
    })
}

/// A `reqwest::Response` again, with the URL it came from.
fn rebuild(url: reqwest::Url, mut head: Parts, body: reqwest::Body) -> reqwest::Response {
    use reqwest::ResponseBuilderExt;
    let mut with_url = http::Response::builder().url(url);
    if let Some(extensions) = with_url.extensions_mut() {
        head.extensions.extend(std::mem::take(extensions));
    }
    reqwest::Response::from(http::Response::from_parts(head, body))
}

#[async_trait::async_trait]
impl Middleware for TokenAuthMiddleware {
    async fn handle(
        &self,
        mut request: reqwest::Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> Result<reqwest::Response> {
        let tokens = &self.tokens;
        if !uri_of(&request).is_some_and(|uri| tokens.rules().permits(&uri)) {
            return next.run(request, extensions).await;
        }
        let current = token(tokens).await.map_err(token_error)?;
        let generation = current.generation;
        tokens
            .rules()
            .apply(current.value.clone(), request.headers_mut());
        let copy = request.try_clone();
        let answer = next.clone().run(request, extensions).await?;
        let judged = judge(tokens.rejection(), answer).await?;
        if !judged.rejected {
            return Ok(judged.response);
        }
        crate::metrics::token_rejected();
        let Some(mut copy) = copy else {
            tracing::debug!(
                generation,
                "token rejected; the request body cannot be sent again, so it is not replayed"
            );
            drop(tokens.reject(generation));
            return Ok(judged.response);
        };
        let fresh = match tokens.reject(generation) {
            Acquire::Ready(token) => Ok(token),
            Acquire::Wait(flight) => flight.await,
            Acquire::Refused(error) => Err(error),
        };
        let fresh = match fresh {
            Ok(token) if token.generation != generation => token,
            // No new token (refreshing failed and backs off, or refetching is rate-limited):
            // the API's answer is the most useful thing to hand back.
            _ => {
                tracing::debug!(generation, "token rejected; no new token to replay with");
                return Ok(judged.response);
            }
        };
        tracing::debug!(
            generation,
            "token rejected; replaying the request once with a new token"
        );
        drop(judged);
        tokens
            .rules()
            .apply(fresh.value.clone(), copy.headers_mut());
        crate::metrics::token_replayed();
        let answer = next.run(copy, extensions).await?;
        let judged = judge(tokens.rejection(), answer).await?;
        if judged.rejected {
            tracing::warn!(
                generation = fresh.generation,
                "the replayed request was rejected too; handing back the API's answer"
            );
        }
        Ok(judged.response)
    }
}

/// Middleware that retries rate-limited and transient failures by [`RetryPolicy`]'s rules:
/// `Retry-After` honoured (up to the policy's cap), exponential backoff otherwise, a budget, a
/// cap on attempts, and **never a request whose method is not idempotent** (a `POST`) unless
/// the API provably did not process it (429, 503 with `Retry-After`, connection refused).
/// reqwest-retry's middleware ignores `Retry-After`; this one reads it.
///
/// Each answer is classified (by its status and `Retry-After`, or by the classifier given,
/// Akool's body codes say), and the [`Outcome`] is put into the response's extensions, unless
/// an inner middleware put one there. Add it before (outside) [`TokenAuthMiddleware`]: a token
/// rejection is that middleware's to replay, never retried here.
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
        let url = response.url().clone();
        let (mut head, body): (Parts, reqwest::Body) = http::Response::from(response).into_parts();
        let limit = crate::outcome::DEFAULT_BODY_LIMIT;
        let (whole, body) =
            if self.classifier.wants_body(&head) && worth_peeking(&head, &body, limit) {
                let peeked = Peek::new(body, limit)
                    .await
                    .map_err(reqwest_middleware::Error::Reqwest)?;
                (peeked.whole, reqwest::Body::wrap(peeked.body))
            } else {
                (None, body)
            };
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
