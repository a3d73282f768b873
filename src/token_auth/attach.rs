//! [`TokenAuthLayer::without_replay`](crate::TokenAuthLayer::without_replay): the token
//! attached, nothing else. The inner service's response comes back as it is, so the cached path
//! costs what the static credential's does, plus the token's cache check.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::Request;
use pin_project_lite::pin_project;
use tower::{BoxError, Layer, Service};

use super::gate::{Blocked, TokenGate, release};
use crate::token::{Acquire, Current, Flight};
use crate::{TokenCredential, TokenError};

/// Layer that applies [`AttachToken`]: a [`TokenCredential`]'s token on every request bound for
/// its origins, without replay; see
/// [`TokenAuthLayer::without_replay`](crate::TokenAuthLayer::without_replay).
///
/// ```
/// use http::{Request, Response};
/// use tower::{Service, ServiceBuilder, ServiceExt};
/// use tower_api_auth::{Token, TokenAuthLayer, TokenCredential};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), tower::BoxError> {
/// let tokens = TokenCredential::builder(|| async { Ok::<_, std::io::Error>(Token::new("t1")) })
///     .origin("https://api.example.com")
///     .build()?;
/// // Any client; its own response type comes back, untouched.
/// let http = tower::service_fn(|request: Request<String>| async move {
///     Ok::<_, std::convert::Infallible>(Response::new(request.headers()["authorization"].clone()))
/// });
/// let mut client = ServiceBuilder::new()
///     .layer(TokenAuthLayer::new(tokens).without_replay())
///     .service(http);
/// let request = Request::get("https://api.example.com/v1").body(String::new())?;
/// let response = client.ready().await?.call(request).await?;
/// assert_eq!(response.body(), "Bearer t1");
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct AttachTokenLayer {
    tokens: TokenCredential,
}

impl AttachTokenLayer {
    /// Attaches the tokens of `tokens`; a rejection is the caller's to handle.
    pub fn new(tokens: TokenCredential) -> Self {
        Self { tokens }
    }
}

impl<S> Layer<S> for AttachTokenLayer {
    type Service = AttachToken<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AttachToken {
            inner,
            gate: TokenGate::new(self.tokens.clone()),
        }
    }
}

impl fmt::Debug for AttachTokenLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AttachTokenLayer")
            .field("tokens", &self.tokens)
            .finish()
    }
}

/// Middleware that attaches the cached access token to every request bound for one of the
/// credential's origins, waiting in `poll_ready` for one when none is cached, as
/// [`TokenAuth`](crate::TokenAuth) does, but never replays: the inner service's response is
/// the answer.
pub struct AttachToken<S> {
    inner: S,
    gate: TokenGate,
}

impl<S> AttachToken<S> {
    /// Wraps `inner`, attaching the tokens of `tokens` to its requests.
    pub fn new(inner: S, tokens: TokenCredential) -> Self {
        AttachTokenLayer::new(tokens).layer(inner)
    }

    /// Returns a new [`Layer`] that wraps services with an [`AttachToken`] middleware.
    pub fn layer(tokens: TokenCredential) -> AttachTokenLayer {
        AttachTokenLayer::new(tokens)
    }

    inner_service_accessors!();
}

impl<S: Clone> Clone for AttachToken<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            gate: self.gate.clone(),
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for AttachToken<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AttachToken")
            .field("inner", &self.inner)
            .field("tokens", &self.gate.tokens)
            .finish()
    }
}

impl<S, B> Service<Request<B>> for AttachToken<S>
where
    S: Service<Request<B>> + Clone,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = AttachFuture<S, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let inner = &mut self.inner;
        self.gate
            .poll_ready(cx, |cx| inner.poll_ready(cx))
            .map_err(Into::into)
    }

    #[inline]
    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        if self.gate.blocked() {
            return self.after_wait(request);
        }
        let rules = self.gate.tokens.rules();
        if rules.permits(request.uri()) {
            let Some((value, _)) = self.gate.token() else {
                return self.wait(request, true);
            };
            self.gate.tokens.rules().apply(value, request.headers_mut());
        }
        AttachFuture {
            state: AttachState::Sent {
                future: self.inner.call(request),
            },
        }
    }
}

impl<S: Clone> AttachToken<S> {
    /// A call after `poll_ready` found the fetch failed, or that skipped `poll_ready`.
    #[cold]
    #[inline(never)]
    fn after_wait<B>(&mut self, request: Request<B>) -> AttachFuture<S, B>
    where
        S: Service<Request<B>>,
    {
        let permitted = self.gate.tokens.rules().permits(request.uri());
        match self.gate.take_blocked() {
            Blocked::Failed(error) if permitted => AttachFuture::pending(Pending::Failed(error)),
            _ => self.wait(request, permitted),
        }
    }

    /// Waits (for a token when `token`, then for an unready clone of the inner service) before
    /// sending: nothing reserved in `poll_ready` is held meanwhile.
    #[cold]
    #[inline(never)]
    fn wait<B>(&mut self, request: Request<B>, token: bool) -> AttachFuture<S, B>
    where
        S: Service<Request<B>>,
    {
        let waiting = Waiting {
            inner: release(&mut self.inner),
            request,
            tokens: self.gate.tokens.clone(),
        };
        let pending = match token.then(|| self.gate.tokens.acquire()) {
            None => Pending::Readying {
                token: None,
                waiting,
            },
            Some(Acquire::Ready(token)) => Pending::Readying {
                token: Some(token),
                waiting,
            },
            Some(Acquire::Wait(flight)) => Pending::Fetching { flight, waiting },
            Some(Acquire::Refused(error)) => Pending::Failed(error),
        };
        AttachFuture::pending(pending)
    }
}

/// A request waiting for its token, with an unready clone of the inner service.
struct Waiting<S, B> {
    inner: S,
    request: Request<B>,
    tokens: TokenCredential,
}

/// What a call that could not send at once waits for, boxed: the future of the cached path is
/// the inner one and a tag.
enum Pending<S, B> {
    /// For the shared fetch of a token.
    Fetching {
        flight: Flight,
        waiting: Waiting<S, B>,
    },
    /// For the inner service's readiness, with the token to attach (`None`: another origin).
    Readying {
        token: Option<Arc<Current>>,
        waiting: Waiting<S, B>,
    },
    /// Nothing: the fetch failed.
    Failed(TokenError),
    /// Sent, or failed and answered.
    Done,
}

pin_project! {
    /// Response future of [`AttachToken`].
    pub struct AttachFuture<S, B>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        state: AttachState<S, B>,
    }
}

pin_project! {
    #[project = AttachProj]
    enum AttachState<S, B>
    where
        S: Service<Request<B>>,
    {
        Sent { #[pin] future: S::Future },
        Pending { pending: Box<Pending<S, B>> },
    }
}

const POLLED_AFTER_COMPLETION: &str = "`AttachFuture` polled after completion";

impl<S, B> AttachFuture<S, B>
where
    S: Service<Request<B>>,
{
    fn pending(pending: Pending<S, B>) -> Self {
        let pending = Box::new(pending);
        AttachFuture {
            state: AttachState::Pending { pending },
        }
    }
}

impl<S, B> Future for AttachFuture<S, B>
where
    S: Service<Request<B>>,
    S::Error: Into<BoxError>,
{
    type Output = Result<S::Response, BoxError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        if let AttachProj::Sent { future } = state.as_mut().project() {
            return future.poll(cx).map_err(Into::into);
        }
        poll_pending(state, cx)
    }
}

/// The rare states, out of line, so that the cached path's `poll` is the inner one.
#[cold]
#[inline(never)]
fn poll_pending<S, B>(
    mut state: Pin<&mut AttachState<S, B>>,
    cx: &mut Context<'_>,
) -> Poll<Result<S::Response, BoxError>>
where
    S: Service<Request<B>>,
    S::Error: Into<BoxError>,
{
    loop {
        let pending = match state.as_mut().project() {
            AttachProj::Sent { future } => return future.poll(cx).map_err(Into::into),
            AttachProj::Pending { pending } => pending,
        };
        match &mut **pending {
            Pending::Fetching { flight, .. } => {
                let token = ready!(Pin::new(flight).poll(cx))?;
                let Pending::Fetching { waiting, .. } =
                    std::mem::replace(&mut **pending, Pending::Done)
                else {
                    unreachable!("matched above")
                };
                **pending = Pending::Readying {
                    token: Some(token),
                    waiting,
                };
            }
            Pending::Readying { waiting, .. } => {
                ready!(waiting.inner.poll_ready(cx)).map_err(Into::into)?;
                let Pending::Readying { token, waiting } =
                    std::mem::replace(&mut **pending, Pending::Done)
                else {
                    unreachable!("matched above")
                };
                let Waiting {
                    mut inner,
                    mut request,
                    tokens,
                } = waiting;
                if let Some(token) = token {
                    tokens
                        .rules()
                        .apply(token.value.clone(), request.headers_mut());
                }
                let future = inner.call(request);
                state.set(AttachState::Sent { future });
            }
            Pending::Failed(_) => {
                let Pending::Failed(error) = std::mem::replace(&mut **pending, Pending::Done)
                else {
                    unreachable!("matched above")
                };
                return Poll::Ready(Err(error.into()));
            }
            Pending::Done => panic!("{POLLED_AFTER_COMPLETION}"),
        }
    }
}

impl<S, B> fmt::Debug for AttachFuture<S, B>
where
    S: Service<Request<B>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AttachFuture").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http::Response;
    use tower::ServiceExt;

    use super::*;
    use crate::Token;
    use crate::token::TokenErrorKind;

    #[tokio::test(start_paused = true)]
    async fn the_token_is_waited_for_in_readiness_and_the_inner_response_is_untouched() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&calls);
        let tokens = TokenCredential::builder(move || {
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                match n {
                    1 => Err("down".into()),
                    _ => Ok::<_, BoxError>(Token::new(format!("t{n}"))),
                }
            }
        })
        .origin("https://api.example.com")
        .build()
        .unwrap();
        let api = AttachTokenLayer::new(tokens).layer(tower::service_fn(
            |request: Request<String>| async move {
                let seen = request.headers().get("authorization").cloned();
                Ok::<_, std::convert::Infallible>(Response::new(seen))
            },
        ));
        let request = || {
            Request::get("https://api.example.com/x")
                .body(String::new())
                .unwrap()
        };

        // The first fetch fails: the call answers its error (not `poll_ready`).
        let mut first = api.clone();
        let ready = first
            .ready()
            .await
            .expect("a failed fetch is no poll_ready error");
        let err = ready.call(request()).await.unwrap_err();
        let err = err.downcast::<TokenError>().unwrap();
        assert_eq!(err.kind(), TokenErrorKind::Fetch);

        // The next one succeeds: the inner response (`Response<Option<HeaderValue>>`) as it is.
        let response = api.clone().oneshot(request()).await.unwrap();
        assert_eq!(response.body().as_ref().unwrap(), "Bearer t2");
        // Another origin: no token, no wait.
        let elsewhere = Request::get("https://elsewhere.example/")
            .body(String::new())
            .unwrap();
        assert!(api.oneshot(elsewhere).await.unwrap().body().is_none());
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }
}
