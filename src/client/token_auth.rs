//! Attach a fetched access token to outgoing requests.
//!
//! # Example
//!
//! ```
//! use http::{Request, Response};
//! use tower::{Service, ServiceBuilder, ServiceExt};
//! use tower_api_auth::client::TokenAuthLayer;
//! use tower_api_auth::token::{Token, TokenCredential};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), tower::BoxError> {
//! let tokens = TokenCredential::builder(|| async { Ok::<_, std::io::Error>(Token::new("t0k3n")) })
//!     .origin("https://api.example.com")
//!     .build()?;
//!
//! // Any `Service<Request<B>>`: a hyper-util client in real code.
//! let client = tower::service_fn(|request: Request<()>| async move {
//!     let auth = request.headers().get("authorization").cloned();
//!     Ok::<_, std::convert::Infallible>(Response::new(auth))
//! });
//! let mut client = ServiceBuilder::new()
//!     .layer(TokenAuthLayer::new(tokens.clone()))
//!     .service(client);
//!
//! let request = Request::get("https://api.example.com/v1/things").body(())?;
//! let response = client.ready().await?.call(request).await?;
//! assert_eq!(response.into_body().unwrap(), "Bearer t0k3n");
//! assert_eq!(tokens.fetch_count(), 1);
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use arc_swap::Cache;
use http::Request;
use pin_project_lite::pin_project;
use tower::{BoxError, Layer, Service};

use crate::token::{Acquire, Current, TokenCredential, TokenError};

/// Layer that applies [`TokenAuth`], which attaches a [`TokenCredential`]'s token to outgoing
/// requests.
///
/// See the [module docs](self) for an example.
#[derive(Clone)]
pub struct TokenAuthLayer {
    tokens: TokenCredential,
}

impl TokenAuthLayer {
    /// Attaches the tokens of `tokens` to every request bound for one of its origins.
    pub fn new(tokens: TokenCredential) -> Self {
        Self { tokens }
    }
}

impl<S> Layer<S> for TokenAuthLayer {
    type Service = TokenAuth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TokenAuth::new(inner, self.tokens.clone())
    }
}

impl fmt::Debug for TokenAuthLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenAuthLayer")
            .field("tokens", &self.tokens)
            .finish()
    }
}

/// Middleware that attaches the cached access token to every request bound for one of the
/// credential's origins, fetching one first when none is cached.
///
/// With a token cached, a request costs a cached pointer check and a header insert, and the
/// response future is the inner service's own (wrapped, not boxed). Without one, the request
/// waits for the single fetch that all waiting requests share. Errors are the inner service's,
/// boxed, or a [`TokenError`].
///
/// See the [module docs](self) for an example.
#[derive(Clone)]
pub struct TokenAuth<S> {
    inner: S,
    tokens: TokenCredential,
    current: Cache<crate::token::CurrentCell, Option<Arc<Current>>>,
}

impl<S> TokenAuth<S> {
    /// Wraps `inner`, attaching the tokens of `tokens` to its requests.
    pub fn new(inner: S, tokens: TokenCredential) -> Self {
        Self {
            current: tokens.cached(),
            inner,
            tokens,
        }
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
            .finish()
    }
}

impl<S, B> Service<Request<B>> for TokenAuth<S>
where
    S: Service<Request<B>> + Clone,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let rules = self.tokens.rules();
        if !rules.permits(request.uri()) {
            return ResponseFuture::called(self.inner.call(request));
        }
        if let Some(current) = self.current.load() {
            rules.apply(current.value.clone(), request.headers_mut());
            return ResponseFuture::called(self.inner.call(request));
        }
        self.wait_for_token(request)
    }
}

impl<S> TokenAuth<S> {
    /// The rare path, kept out of line so the cached path stays small: no token is cached.
    #[cold]
    #[inline(never)]
    fn wait_for_token<B>(&mut self, mut request: Request<B>) -> ResponseFuture<S, B>
    where
        S: Service<Request<B>> + Clone,
    {
        // Wait with the service that was made ready, and leave a clone behind for the next
        // call (it is made ready by its own `poll_ready`).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let state = match self.tokens.acquire() {
            Acquire::Ready(current) => {
                let rules = self.tokens.rules();
                rules.apply(current.value.clone(), request.headers_mut());
                State::Called {
                    future: inner.call(request),
                }
            }
            Acquire::Wait(flight) => State::Acquiring {
                flight,
                // Boxed, so that the future stays small for the cached path.
                pending: Some(Box::new((inner, request, self.tokens.clone()))),
            },
            Acquire::Refused(err) => State::Failed { error: Some(err) },
        };
        ResponseFuture { state }
    }
}

pin_project! {
    /// Response future of [`TokenAuth`].
    pub struct ResponseFuture<S, B>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        state: State<S, B>,
    }
}

type Flight =
    futures::future::Shared<futures::future::BoxFuture<'static, Result<Arc<Current>, TokenError>>>;

pin_project! {
    #[project = StateProj]
    enum State<S, B>
    where
        S: Service<Request<B>>,
    {
        Acquiring {
            flight: Flight,
            pending: Option<Box<(S, Request<B>, TokenCredential)>>,
        },
        Called {
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
{
    fn called(future: S::Future) -> Self {
        Self {
            state: State::Called { future },
        }
    }
}

impl<S, B> Future for ResponseFuture<S, B>
where
    S: Service<Request<B>>,
    S::Error: Into<BoxError>,
{
    type Output = Result<S::Response, BoxError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let mut this = self.as_mut().project();
            let next = match this.state.as_mut().project() {
                StateProj::Called { future } => {
                    return future.poll(cx).map_err(Into::into);
                }
                StateProj::Failed { error } => {
                    let error = error.take().expect("polled after completion");
                    return Poll::Ready(Err(error.into()));
                }
                StateProj::Acquiring { flight, pending } => {
                    let result = ready!(Pin::new(flight).poll(cx));
                    let (mut inner, mut request, tokens) =
                        *pending.take().expect("polled after completion");
                    match result {
                        Ok(current) => {
                            tokens
                                .rules()
                                .apply(current.value.clone(), request.headers_mut());
                            State::Called {
                                future: inner.call(request),
                            }
                        }
                        Err(error) => State::Failed { error: Some(error) },
                    }
                }
            };
            this.state.set(next);
        }
    }
}

impl<S, B> fmt::Debug for ResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
