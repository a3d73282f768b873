//! Attach a fetched access token to outgoing requests, and replay a request once when the API
//! rejects the token.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use bytes::Bytes;
//! use http::{Request, Response, StatusCode};
//! use http_body_util::Full;
//! use tower::{Service, ServiceBuilder, ServiceExt};
//! use tower_api_auth::client::TokenAuthLayer;
//! use tower_api_auth::token::{Token, TokenCredential};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), tower::BoxError> {
//! let fetches = Arc::new(AtomicUsize::new(0));
//! let counter = Arc::clone(&fetches);
//! let tokens = TokenCredential::builder(move || {
//!     let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
//!     async move { Ok::<_, std::io::Error>(Token::new(format!("token-{n}"))) }
//! })
//! .origin("https://api.example.com")
//! .build()?;
//!
//! // Any `Service<Request<B>>`: a hyper-util client in real code. This API has revoked
//! // `token-1`.
//! let api = tower::service_fn(|request: Request<Full<Bytes>>| async move {
//!     let status = match request.headers()["authorization"].to_str()? {
//!         "Bearer token-1" => StatusCode::UNAUTHORIZED,
//!         _ => StatusCode::OK,
//!     };
//!     Ok::<_, tower::BoxError>(Response::builder().status(status).body(())?)
//! });
//! let mut client = ServiceBuilder::new()
//!     .layer(TokenAuthLayer::new(tokens.clone()))
//!     .service(api);
//!
//! // Fetched on first use; rejected; refetched once and replayed once.
//! let request = Request::post("https://api.example.com/v1/things").body(Full::from("{}"))?;
//! let response = client.ready().await?.call(request).await?;
//! assert_eq!(response.status(), StatusCode::OK);
//! assert_eq!(tokens.generation(), Some(2));
//! assert_eq!(fetches.load(Ordering::SeqCst), 2);
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use arc_swap::Cache;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::BodyExt;
use http_body_util::combinators::Collect;
use pin_project_lite::pin_project;
use tower::{BoxError, Layer, Service};

use super::replay::{ReplayBody, clone_with_body, try_clone_request};
use crate::classify::Outcome;
use crate::token::{Acquire, Current, CurrentCell, TokenCredential, TokenError, TokenErrorKind};

/// Layer that applies [`TokenAuth`], which attaches a [`TokenCredential`]'s token to outgoing
/// requests.
///
/// See the [module docs](self) for an example.
#[derive(Clone)]
pub struct TokenAuthLayer {
    tokens: TokenCredential,
    /// `None`: no replay. `Some(limit)`: replay, buffering bodies up to `limit` bytes to do so.
    replay: Option<usize>,
}

/// By default, bodies that cannot be copied are read into memory up to this size to be
/// replayable.
const DEFAULT_REPLAY_BUFFER_LIMIT: usize = 64 * 1024;

impl TokenAuthLayer {
    /// Attaches the tokens of `tokens` to every request bound for one of its origins; a request
    /// whose token the API rejects reports it and is replayed once with a new one. A rejection
    /// is a `401`, or whatever a [`ClassifyLayer`](crate::classify::ClassifyLayer) placed inside
    /// this layer classifies as [`CredentialRejected`](crate::classify::OutcomeKind) (Akool's
    /// code 1101 in an HTTP 200).
    pub fn new(tokens: TokenCredential) -> Self {
        Self {
            tokens,
            replay: Some(DEFAULT_REPLAY_BUFFER_LIMIT),
        }
    }

    /// Attaches tokens only: no request is copied for a replay, and a rejection is the
    /// caller's to handle (see [`TokenCredential::rejected`]). The cheapest setting, for tokens
    /// whose expiry is known and refreshed ahead.
    pub fn without_replay(mut self) -> Self {
        self.replay = None;
        self
    }

    /// A request body that cannot be copied but can be rebuilt from bytes (a `BoxBody`, see
    /// [`ReplayBody`]) is read into memory before it is sent, when its size is known and at most
    /// `limit` bytes (default 64 KiB), so that it can be replayed. A
    /// larger or unsized one is sent as it streams, once. `0` buffers nothing. Setting a limit
    /// turns replay on, undoing an earlier [`without_replay`](Self::without_replay).
    pub fn replay_buffer_limit(mut self, limit: usize) -> Self {
        self.replay = Some(limit);
        self
    }
}

impl<S> Layer<S> for TokenAuthLayer {
    type Service = TokenAuth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TokenAuth {
            current: self.tokens.cached(),
            inner,
            tokens: self.tokens.clone(),
            replay: self.replay,
        }
    }
}

impl fmt::Debug for TokenAuthLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenAuthLayer")
            .field("tokens", &self.tokens)
            .field("replay", &self.replay)
            .finish()
    }
}

/// Middleware that attaches the cached access token to every request bound for one of the
/// credential's origins, fetching one first when none is cached, and replays a request once
/// when the API rejects its token.
///
/// - With a token cached, a request costs a cached pointer check, a header insert, a clock read
///   when the token's expiry is known (a token past it is never sent) and, with replay on, a
///   copy of the request for the replay.
/// - Without one, the request waits for the single fetch that all waiting requests share.
/// - On a rejection (a `401`, or the verdict of a
///   [`ClassifyLayer`](crate::classify::ClassifyLayer) inside this one), the token's generation
///   is reported to the [`TokenCredential`] (one refetch
///   for all the requests rejected with that generation), and the request is replayed once with
///   the new token. A second rejection is a [`TokenErrorKind::RejectedAfterReplay`] error, never
///   a loop; a request whose body cannot be copied fails with
///   [`TokenErrorKind::NotReplayable`].
///
/// Errors are the inner service's, boxed, or a [`TokenError`]. See the [module docs](self) for
/// an example.
#[derive(Clone)]
pub struct TokenAuth<S> {
    inner: S,
    tokens: TokenCredential,
    current: Cache<CurrentCell, Option<Arc<Current>>>,
    replay: Option<usize>,
}

impl<S> TokenAuth<S> {
    /// Wraps `inner`, attaching the tokens of `tokens` to its requests (replay on).
    pub fn new(inner: S, tokens: TokenCredential) -> Self {
        TokenAuthLayer::new(tokens).layer(inner)
    }

    /// Returns a new [`Layer`] that wraps services with a [`TokenAuth`] middleware.
    pub fn layer(tokens: TokenCredential) -> TokenAuthLayer {
        TokenAuthLayer::new(tokens)
    }

    /// Gets a reference to the inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Gets a mutable reference to the inner service.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Consumes `self`, returning the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: fmt::Debug> fmt::Debug for TokenAuth<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenAuth")
            .field("inner", &self.inner)
            .field("tokens", &self.tokens)
            .field("replay", &self.replay)
            .finish()
    }
}

impl<S, B, ResBody> Service<Request<B>> for TokenAuth<S>
where
    S: Service<Request<B>, Response = Response<ResBody>> + Clone,
    S::Error: Into<BoxError>,
    B: ReplayBody,
    B::Error: Into<BoxError>,
{
    type Response = Response<ResBody>;
    type Error = BoxError;
    type Future = ResponseFuture<S, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        if !self.tokens.rules().permits(request.uri()) {
            let future = self.inner.call(request);
            return ResponseFuture::new(State::Final { future });
        }
        let current = match self.current.load() {
            // Past its known expiry, and the refresh task has not dropped it yet (a starved
            // runtime, a clock jump): `acquire` drops it and fetches.
            Some(current) if !current.expired() => current,
            _ => return self.wait_for_token(request),
        };
        let generation = current.generation;
        let rules = self.tokens.rules();
        rules.apply(current.value.clone(), request.headers_mut());
        if self.replay.is_none() {
            // `dispatch` would do the same; inline, the cheapest setting stays cheapest.
            let future = self.inner.call(request);
            return ResponseFuture::new(State::Final { future });
        }
        let state = dispatch(
            &mut self.inner,
            request,
            &self.tokens,
            generation,
            self.replay,
        );
        ResponseFuture::new(state)
    }
}

impl<S> TokenAuth<S> {
    /// The rare path, kept out of line so the cached path stays small: no token is cached.
    #[cold]
    #[inline(never)]
    fn wait_for_token<B>(&mut self, request: Request<B>) -> ResponseFuture<S, B>
    where
        S: Service<Request<B>> + Clone,
        B: ReplayBody,
    {
        // Wait with the service that was made ready, and leave a clone behind for the next
        // call (it is made ready by its own `poll_ready`).
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let first = First {
            inner,
            request,
            tokens: self.tokens.clone(),
            replay: self.replay,
        };
        ResponseFuture::new(match self.tokens.acquire() {
            Acquire::Ready(current) => first.send(&current),
            // Boxed, so that the future stays small for the cached path.
            Acquire::Wait(flight) => State::Fetching {
                flight,
                first: Some(Box::new(first)),
            },
            Acquire::Refused(err) => State::Failed { error: Some(err) },
        })
    }
}

/// A request waiting for the first token, with the (ready) service to send it with.
struct First<S, B> {
    inner: S,
    request: Request<B>,
    tokens: TokenCredential,
    replay: Option<usize>,
}

impl<S, B> First<S, B>
where
    S: Service<Request<B>> + Clone,
    B: ReplayBody,
{
    fn send(self, current: &Current) -> State<S, B> {
        let First {
            mut inner,
            mut request,
            tokens,
            replay,
        } = self;
        tokens
            .rules()
            .apply(current.value.clone(), request.headers_mut());
        dispatch(&mut inner, request, &tokens, current.generation, replay)
    }
}

/// Sends `request`, its token attached, with the ready service `inner`, keeping what a replay
/// will need: a copy of the request, or first the body read into memory when it cannot be
/// copied but can be rebuilt and is small enough.
fn dispatch<S, B>(
    inner: &mut S,
    request: Request<B>,
    tokens: &TokenCredential,
    generation: u64,
    replay: Option<usize>,
) -> State<S, B>
where
    S: Service<Request<B>> + Clone,
    B: ReplayBody,
{
    let Some(limit) = replay else {
        // Nothing to replay: the answer is final, whatever it says.
        return State::Final {
            future: inner.call(request),
        };
    };
    if let Some(copy) = try_clone_request(&request) {
        let pending = Pending {
            inner: inner.clone(),
            request: copy,
            tokens: tokens.clone(),
            generation,
        };
        return State::Sent {
            future: inner.call(request),
            replay: Replay::Ready(pending),
        };
    }
    let small = (request.body().size_hint().upper()).is_some_and(|size| size <= limit as u64);
    if B::FROM_BUFFERED && small {
        // Send the ready service along with the body; a clone stays for the next call.
        let clone = inner.clone();
        let ready = std::mem::replace(inner, clone);
        let (head, body) = request.into_parts();
        return State::Buffering {
            collect: Box::pin(body.collect()),
            pending: Some(Box::new(Buffered {
                inner: ready,
                head,
                tokens: tokens.clone(),
                generation,
            })),
        };
    }
    State::Sent {
        future: inner.call(request),
        replay: Replay::NotReplayable(tokens.clone(), generation),
    }
}

/// What a replay needs, taken before the request is sent.
#[allow(
    clippy::large_enum_variant,
    reason = "inline, the copy costs no allocation per request; it is boxed on a rejection"
)]
enum Replay<S, B> {
    /// Nothing left to replay: taken by the rejection that replays it.
    Taken,
    /// A copy of the request and a service to send it with.
    Ready(Pending<S, B>),
    /// The body cannot be copied: a rejection is reported (so later requests get a new token)
    /// but not replayed.
    NotReplayable(TokenCredential, u64),
}

/// A copy of a request to send again, with the service to send it and the generation of the
/// token it was first sent with.
struct Pending<S, B> {
    inner: S,
    request: Request<B>,
    tokens: TokenCredential,
    generation: u64,
}

/// A request whose body is being read into memory, so that it can be sent twice.
struct Buffered<S> {
    inner: S,
    head: http::request::Parts,
    tokens: TokenCredential,
    generation: u64,
}

type Flight =
    futures::future::Shared<futures::future::BoxFuture<'static, Result<Arc<Current>, TokenError>>>;

pin_project! {
    /// Response future of [`TokenAuth`].
    pub struct ResponseFuture<S, B>
    where
        S: Service<Request<B>>,
        B: Body,
    {
        #[pin]
        state: State<S, B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, B>
    where
        S: Service<Request<B>>,
        B: Body,
    {
        // No token was cached: waiting for the shared fetch.
        Fetching {
            flight: Flight,
            first: Option<Box<First<S, B>>>,
        },
        // Reading a body that cannot be copied into memory, so that it can be replayed. Boxed,
        // so that the future stays small for the cached path.
        Buffering {
            collect: Pin<Box<Collect<B>>>,
            pending: Option<Box<Buffered<S>>>,
        },
        // Sent with a token; a rejection leads to one replay.
        Sent {
            #[pin]
            future: S::Future,
            replay: Replay<S, B>,
        },
        // Rejected: waiting for the token that replaces the rejected generation.
        Refetching {
            flight: Flight,
            pending: Option<Box<Pending<S, B>>>,
        },
        // The new token is known: waiting for the service to be ready for the replay.
        Readying {
            value: HeaderValue,
            pending: Option<Box<Pending<S, B>>>,
        },
        // The one replay: a rejection now is final.
        Replayed {
            #[pin]
            future: S::Future,
        },
        // Sent without a token (outside the credential's origins): the answer is final.
        Final {
            #[pin]
            future: S::Future,
        },
        Failed {
            error: Option<TokenError>,
        },
    }
}

impl<S, B> ResponseFuture<S, B>
where
    S: Service<Request<B>>,
    B: Body,
{
    fn new(state: State<S, B>) -> Self {
        Self { state }
    }
}

/// Whether a response says the API rejected the token (expired, revoked, invalid): the verdict
/// of a [`ClassifyLayer`](crate::classify::ClassifyLayer) inside this layer when there is one
/// (Akool's code 1101 in an HTTP 200), else a `401`.
fn rejected<T>(response: &Response<T>) -> bool {
    match response.extensions().get::<Outcome>() {
        Some(outcome) => outcome.refetch_warranted(),
        None => response.status() == StatusCode::UNAUTHORIZED,
    }
}

fn failure(kind: TokenErrorKind) -> BoxError {
    TokenError::new(kind, None).into()
}

const POLLED_AFTER_COMPLETION: &str = "`ResponseFuture` polled after completion";

impl<S, B, ResBody> Future for ResponseFuture<S, B>
where
    S: Service<Request<B>, Response = Response<ResBody>> + Clone,
    S::Error: Into<BoxError>,
    B: ReplayBody,
    B::Error: Into<BoxError>,
{
    type Output = Result<Response<ResBody>, BoxError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let mut this = self.as_mut().project();
            let next = match this.state.as_mut().project() {
                StateProj::Sent { future, replay } => {
                    let response = ready!(future.poll(cx)).map_err(Into::into)?;
                    if !rejected(&response) {
                        return Poll::Ready(Ok(response));
                    }
                    match std::mem::replace(replay, Replay::Taken) {
                        Replay::Taken => return Poll::Ready(Ok(response)),
                        Replay::NotReplayable(tokens, generation) => {
                            // This request cannot be replayed, but the ones after it get a
                            // new token: the refetch runs in its own task.
                            drop(tokens.reject(generation));
                            return Poll::Ready(Err(failure(TokenErrorKind::NotReplayable)));
                        }
                        Replay::Ready(pending) => {
                            tracing::debug!(
                                generation = pending.generation,
                                "token rejected; replaying the request once with a new token"
                            );
                            // Boxed only now, on the rare path: the states after a
                            // rejection keep the future small.
                            let acquire = pending.tokens.reject(pending.generation);
                            let pending = Some(Box::new(pending));
                            match acquire {
                                Acquire::Ready(current) => State::Readying {
                                    value: current.value.clone(),
                                    pending,
                                },
                                Acquire::Wait(flight) => State::Refetching { flight, pending },
                                Acquire::Refused(err) => return Poll::Ready(Err(err.into())),
                            }
                        }
                    }
                }
                StateProj::Buffering { collect, pending } => {
                    let collected = ready!(collect.as_mut().poll(cx)).map_err(Into::into)?;
                    let trailers = collected.trailers().cloned();
                    let bytes = collected.to_bytes();
                    let Buffered {
                        mut inner,
                        head,
                        tokens,
                        generation,
                    } = *pending.take().expect(POLLED_AFTER_COMPLETION);
                    // `FROM_BUFFERED` promised these; a body type that breaks the promise gets
                    // its request refused rather than sent without its body.
                    let (Some(body), Some(copy)) = (
                        B::from_buffered(bytes.clone(), trailers.clone()),
                        B::from_buffered(bytes, trailers),
                    ) else {
                        return Poll::Ready(Err(failure(TokenErrorKind::NotReplayable)));
                    };
                    let request = Request::from_parts(head, body);
                    let pending = Pending {
                        inner: inner.clone(),
                        request: clone_with_body(&request, copy),
                        tokens,
                        generation,
                    };
                    State::Sent {
                        future: inner.call(request),
                        replay: Replay::Ready(pending),
                    }
                }
                StateProj::Refetching { flight, pending } => {
                    let current = ready!(Pin::new(flight).poll(cx))?;
                    State::Readying {
                        value: current.value.clone(),
                        pending: pending.take(),
                    }
                }
                StateProj::Readying { value, pending } => {
                    let ready = pending.as_mut().expect(POLLED_AFTER_COMPLETION);
                    ready!(ready.inner.poll_ready(cx)).map_err(Into::into)?;
                    let Pending {
                        mut inner,
                        mut request,
                        tokens,
                        ..
                    } = *pending.take().expect(POLLED_AFTER_COMPLETION);
                    tokens.rules().apply(value.clone(), request.headers_mut());
                    State::Replayed {
                        future: inner.call(request),
                    }
                }
                StateProj::Replayed { future } => {
                    let response = ready!(future.poll(cx)).map_err(Into::into)?;
                    if rejected(&response) {
                        tracing::warn!("the replayed request was rejected too");
                        return Poll::Ready(Err(failure(TokenErrorKind::RejectedAfterReplay)));
                    }
                    return Poll::Ready(Ok(response));
                }
                StateProj::Final { future } => {
                    return future.poll(cx).map_err(Into::into);
                }
                StateProj::Fetching { flight, first } => {
                    let current = ready!(Pin::new(flight).poll(cx))?;
                    first.take().expect(POLLED_AFTER_COMPLETION).send(&current)
                }
                StateProj::Failed { error } => {
                    let error = error.take().expect(POLLED_AFTER_COMPLETION);
                    return Poll::Ready(Err(error.into()));
                }
            };
            this.state.set(next);
        }
    }
}

impl<S, B> fmt::Debug for ResponseFuture<S, B>
where
    S: Service<Request<B>>,
    B: Body,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
