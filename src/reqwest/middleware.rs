//! `reqwest_middleware` middleware: a static credential ([`AuthMiddleware`]), a fetched token
//! with one replay on a rejection ([`TokenAuthMiddleware`]), and retries that honour
//! `Retry-After` and never repeat a request that may have been processed ([`RetryMiddleware`]).
//! Each is the tower layer's logic, reused: the credential's rules, the token credential's
//! single flight and rejection handling, the classifiers,
//! [`RetryPolicy`](crate::outcome::RetryPolicy)'s rules.

use http::response::Parts;
use http::{Extensions, StatusCode, Uri};
use reqwest_middleware::{Middleware, Next};

use crate::body::{Peek, worth_peeking};
use crate::outcome::Outcome;
use crate::token::{Acquire, Current, Rejection};
use crate::{Credential, TokenCredential, TokenError};

type Result<T> = reqwest_middleware::Result<T>;

mod retry;

pub use self::retry::RetryMiddleware;

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
    let (url, mut head, whole, body) = take_apart(response, Rejection::BODY_LIMIT, |head| {
        rejection.wants_body(head)
    })
    .await?;
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

/// A response taken apart to be judged: its URL, its head, the whole body when `wants_body`
/// says so and it is JSON of at most `limit` bytes (read ahead), and the body to hand on.
async fn take_apart(
    response: reqwest::Response,
    limit: usize,
    wants_body: impl FnOnce(&Parts) -> bool,
) -> Result<(reqwest::Url, Parts, Option<bytes::Bytes>, reqwest::Body)> {
    let url = response.url().clone();
    let (head, body): (Parts, reqwest::Body) = http::Response::from(response).into_parts();
    if !(wants_body(&head) && worth_peeking(&head, &body, limit)) {
        return Ok((url, head, None, body));
    }
    let peeked = Peek::new(body, limit)
        .await
        .map_err(reqwest_middleware::Error::Reqwest)?;
    Ok((url, head, peeked.whole, reqwest::Body::wrap(peeked.body)))
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
