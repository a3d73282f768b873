//! The future of [`ValidateCredential`](crate::ValidateCredential): wait for the lookup, then
//! call the inner service or answer the refusal.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{Either, Full};
use pin_project_lite::pin_project;
use tower::Service;

use super::KeyStore;
use super::layer::Settings;

pin_project! {
    /// The future of [`ValidateCredential`].
    pub struct ResponseFuture<S, K, B>
    where
        S: Service<Request<B>>,
        K: KeyStore,
    {
        #[pin]
        state: State<S, K, B>,
    }
}

/// What waits for the lookup.
pub(super) struct Pending<S, B> {
    pub(super) inner: S,
    pub(super) request: Request<B>,
    pub(super) settings: Arc<Settings>,
}

pin_project! {
    #[project = StateProj]
    pub(super) enum State<S, K, B>
    where
        S: Service<Request<B>>,
        K: KeyStore,
    {
        // Refused before any lookup (no credential, or a malformed one).
        Refused { response: Option<Response<Full<Bytes>>> },
        // Waiting for the key store.
        LookingUp {
            #[pin]
            lookup: K::Lookup,
            pending: Option<Pending<S, B>>,
        },
        // Admitted: the inner service answers.
        Calling {
            #[pin]
            future: S::Future,
        },
    }
}

impl<S, K, B> ResponseFuture<S, K, B>
where
    S: Service<Request<B>>,
    K: KeyStore,
{
    pub(super) fn new(state: State<S, K, B>) -> Self {
        Self { state }
    }
}

const POLLED_AFTER_COMPLETION: &str = "ResponseFuture polled after completion";

impl<S, K, B, ResBody> Future for ResponseFuture<S, K, B>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    K: KeyStore,
{
    type Output = Result<Response<Either<ResBody, Full<Bytes>>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            let next = match this.state.as_mut().project() {
                StateProj::Refused { response } => {
                    let response = response.take().expect(POLLED_AFTER_COMPLETION);
                    return Poll::Ready(Ok(response.map(Either::Right)));
                }
                StateProj::LookingUp { lookup, pending } => {
                    let found = ready!(lookup.poll(cx));
                    let Pending {
                        mut inner,
                        request,
                        settings,
                    } = pending.take().expect(POLLED_AFTER_COMPLETION);
                    match settings.admit(found, request) {
                        Ok(request) => State::Calling {
                            future: inner.call(request),
                        },
                        Err(rejection) => {
                            let response = settings.respond(rejection);
                            return Poll::Ready(Ok(response.map(Either::Right)));
                        }
                    }
                }
                StateProj::Calling { future } => {
                    let response = ready!(future.poll(cx))?;
                    return Poll::Ready(Ok(response.map(Either::Left)));
                }
            };
            this.state.set(next);
        }
    }
}

impl<S, K, B> fmt::Debug for ResponseFuture<S, K, B>
where
    S: Service<Request<B>>,
    K: KeyStore,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
