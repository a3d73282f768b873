//! The response future of [`TokenAuth`](crate::TokenAuth): send, judge the answer, and replay
//! once with a new token when the API rejected the old one.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::response::Parts;
use http::{Request, Response};
use http_body::Body;
use http_body_util::BodyExt;
use http_body_util::combinators::Collect;
use pin_project_lite::pin_project;
use tower::{BoxError, Service};

use super::judge::{Verdict, judge};
use crate::body::{Peek, ResponseBody, clone_with_body, rebuild, worth_peeking};
use crate::token::{Acquire, Current, Flight, Rejection};
use crate::{TokenCredential, TokenError};

/// A request on the rare paths (waiting for a token or a body, or sent with a replay in
/// reserve), boxed so that the cached path's future stays small.
pub(super) struct Pending<S, B> {
    /// A clone of the inner service, made ready only when there is something to send.
    pub(super) inner: S,
    /// What to send next, once `inner` is ready.
    pub(super) request: Option<Request<B>>,
    /// A copy to replay if the API rejects the token; `None` when the body cannot be copied,
    /// and once it has been replayed.
    pub(super) copy: Option<Request<B>>,
    pub(super) tokens: TokenCredential,
    /// The generation of the token the request went out with.
    pub(super) generation: u64,
    /// Whether answers are judged (replay on); `false` hands every answer back as it is.
    judge: bool,
    pub(super) replayed: bool,
}

impl<S, B> Pending<S, B> {
    pub(super) fn new(
        inner: S,
        tokens: &TokenCredential,
        request: Request<B>,
        copy: Option<Request<B>>,
        judge: bool,
    ) -> Box<Self> {
        Box::new(Self {
            inner,
            request: Some(request),
            copy,
            tokens: tokens.clone(),
            generation: 0,
            judge,
            replayed: false,
        })
    }

    /// A request already sent with the token of `generation`.
    pub(super) fn sent(
        inner: S,
        tokens: &TokenCredential,
        copy: Option<Request<B>>,
        generation: u64,
    ) -> Box<Self> {
        Box::new(Self {
            inner,
            request: None,
            copy,
            tokens: tokens.clone(),
            generation,
            judge: true,
            replayed: false,
        })
    }
}

/// An answer being read ahead, with the request it answers.
pub(super) struct Checking<S, B, ResBody> {
    peek: Peek<ResBody>,
    head: Parts,
    pending: Box<Pending<S, B>>,
}

/// A request body being read into memory, with the rest of the request.
pub(super) struct Buffering<S, B: Body> {
    collect: Pin<Box<Collect<B>>>,
    head: http::request::Parts,
    pending: Box<Pending<S, B>>,
}

pin_project! {
    /// Response future of [`TokenAuth`](crate::TokenAuth).
    pub struct ResponseFuture<S, B, ResBody>
    where
        S: Service<Request<B>>,
        B: Body,
    {
        #[pin]
        state: State<S, B, ResBody>,
    }
}

pin_project! {
    #[project = StateProj]
    pub(super) enum State<S, B, ResBody>
    where
        S: Service<Request<B>>,
        B: Body,
    {
        // Sent, and the answer is final (replay off, or no token attached): the cached path.
        Final {
            #[pin]
            future: S::Future,
        },
        // Sent. With `pending`, the answer is judged and a rejection replayed once; without,
        // it is final.
        Sent {
            #[pin]
            future: S::Future,
            pending: Option<Box<Pending<S, B>>>,
        },
        // Reading the start of a JSON answer to find a body code (Akool's 1101). Boxed, like
        // every rare state, so that the cached path's future is the inner one and a few words.
        Checking {
            checking: Option<Box<Checking<S, B, ResBody>>>,
        },
        // Reading a request body that cannot be copied into memory, so that it can be replayed.
        Buffering {
            buffering: Option<Box<Buffering<S, B>>>,
        },
        // Waiting for the shared fetch of a token (none was cached, or it was rejected). For a
        // replay, the rejected answer is kept: should no new token come (static stability
        // serves the rejected one while the endpoint fails), it is the answer.
        Waiting {
            flight: Flight,
            pending: Option<Box<Pending<S, B>>>,
            rejected: Option<Box<Response<ResponseBody<ResBody>>>>,
        },
        // The token is known: waiting for the inner service to be ready. `None`: the request
        // goes without one (outside the credential's origins).
        Readying {
            token: Option<Arc<Current>>,
            pending: Option<Box<Pending<S, B>>>,
        },
        Failed {
            error: Option<TokenError>,
        },
    }
}

const POLLED_AFTER_COMPLETION: &str = "`ResponseFuture` polled after completion";

impl<S, B, ResBody> State<S, B, ResBody>
where
    S: Service<Request<B>>,
    B: Body,
{
    pub(super) fn final_answer(future: S::Future) -> Self {
        State::Final { future }
    }

    /// Gets a token for `pending`'s request: ready now, or a fetch to wait for.
    pub(super) fn acquire(pending: Box<Pending<S, B>>) -> Self {
        match pending.tokens.acquire() {
            Acquire::Ready(token) => State::Readying {
                token: Some(token),
                pending: Some(pending),
            },
            Acquire::Wait(flight) => State::Waiting {
                flight,
                pending: Some(pending),
                rejected: None,
            },
            Acquire::Refused(error) => State::Failed { error: Some(error) },
        }
    }

    /// Reads `request`'s body into memory before anything else, so that it can be sent twice.
    pub(super) fn buffering(inner: S, tokens: &TokenCredential, request: Request<B>) -> Self {
        let (head, body) = request.into_parts();
        let pending = Box::new(Pending {
            inner,
            request: None,
            copy: None,
            tokens: tokens.clone(),
            generation: 0,
            judge: true,
            replayed: false,
        });
        State::Buffering {
            buffering: Some(Box::new(Buffering {
                collect: Box::pin(body.collect()),
                head,
                pending,
            })),
        }
    }
}

impl<S, B, ResBody> ResponseFuture<S, B, ResBody>
where
    S: Service<Request<B>>,
    B: Body,
{
    pub(super) fn new(state: State<S, B, ResBody>) -> Self {
        Self { state }
    }
}

impl<S, B, ResBody> Future for ResponseFuture<S, B, ResBody>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    S::Error: Into<BoxError>,
    B: Body<Error: 'static> + 'static,
    B::Error: Into<BoxError>,
    ResBody: Body,
    ResBody::Error: Into<BoxError>,
{
    type Output = Result<Response<ResponseBody<ResBody>>, BoxError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let mut this = self.as_mut().project();
            let next = match this.state.as_mut().project() {
                StateProj::Final { future } => {
                    let response = ready!(future.poll(cx)).map_err(Into::into)?;
                    return Poll::Ready(Ok(response.map(ResponseBody::streaming)));
                }
                StateProj::Sent { future, pending } => {
                    let response = ready!(future.poll(cx)).map_err(Into::into)?;
                    let Some(pending) = pending.take().filter(|pending| pending.judge) else {
                        return Poll::Ready(Ok(response.map(ResponseBody::streaming)));
                    };
                    let (head, body) = response.into_parts();
                    let limit = Rejection::BODY_LIMIT;
                    if pending.tokens.rejection().wants_body(&head)
                        && worth_peeking(&head, &body, limit)
                    {
                        State::Checking {
                            checking: Some(Box::new(Checking {
                                peek: Peek::new(body, limit),
                                head,
                                pending,
                            })),
                        }
                    } else {
                        match judge(head, None, ResponseBody::streaming(body), pending) {
                            Verdict::Answer(response) => return Poll::Ready(Ok(response)),
                            Verdict::Next(state) => state,
                        }
                    }
                }
                StateProj::Checking { checking } => {
                    let reading = checking.as_mut().expect(POLLED_AFTER_COMPLETION);
                    let peeked =
                        ready!(Pin::new(&mut reading.peek).poll(cx)).map_err(Into::into)?;
                    let Checking { head, pending, .. } =
                        *checking.take().expect(POLLED_AFTER_COMPLETION);
                    match judge(head, peeked.whole.as_deref(), peeked.body, pending) {
                        Verdict::Answer(response) => return Poll::Ready(Ok(response)),
                        Verdict::Next(state) => state,
                    }
                }
                StateProj::Buffering { buffering } => {
                    let reading = buffering.as_mut().expect(POLLED_AFTER_COMPLETION);
                    let collected =
                        ready!(reading.collect.as_mut().poll(cx)).map_err(Into::into)?;
                    let trailers = collected.trailers().cloned();
                    let bytes = collected.to_bytes();
                    let Buffering {
                        head, mut pending, ..
                    } = *buffering.take().expect(POLLED_AFTER_COMPLETION);
                    // `rebuildable` said this type can be rebuilt; should it not, the request
                    // is refused rather than sent without its body.
                    let (Some(body), Some(copy)) = (
                        rebuild::<B>(bytes.clone(), trailers.clone()),
                        rebuild::<B>(bytes, trailers),
                    ) else {
                        return Poll::Ready(Err("the request body could not be rebuilt".into()));
                    };
                    let request = Request::from_parts(head, body);
                    pending.copy = Some(clone_with_body(&request, copy));
                    pending.request = Some(request);
                    State::acquire(pending)
                }
                StateProj::Waiting {
                    flight,
                    pending,
                    rejected,
                } => {
                    let fetched = ready!(Pin::new(flight).poll(cx));
                    let same = |token: &Arc<Current>| {
                        pending
                            .as_ref()
                            .is_some_and(|p| p.generation == token.generation)
                    };
                    match (fetched, rejected.take()) {
                        // A replay with no new token: the rejection is the answer (see `judge`).
                        (Ok(token), Some(rejected)) if same(&token) => {
                            return Poll::Ready(Ok(*rejected));
                        }
                        (Err(_), Some(rejected)) => return Poll::Ready(Ok(*rejected)),
                        (Err(err), None) => return Poll::Ready(Err(err.into())),
                        (Ok(token), _) => State::Readying {
                            token: Some(token),
                            pending: pending.take(),
                        },
                    }
                }
                StateProj::Readying { token, pending } => {
                    let ready = pending.as_mut().expect(POLLED_AFTER_COMPLETION);
                    ready!(ready.inner.poll_ready(cx)).map_err(Into::into)?;
                    let mut pending = pending.take().expect(POLLED_AFTER_COMPLETION);
                    let mut request = pending.request.take().expect(POLLED_AFTER_COMPLETION);
                    match token.take() {
                        Some(token) => {
                            let rules = pending.tokens.rules();
                            rules.apply(token.value.clone(), request.headers_mut());
                            pending.generation = token.generation;
                            if pending.replayed {
                                crate::metrics::token_replayed();
                            }
                            let future = pending.inner.call(request);
                            // The same service instance serves the replay: it is made ready
                            // again first, as tower's contract asks.
                            State::Sent {
                                future,
                                pending: Some(pending),
                            }
                        }
                        None => State::final_answer(pending.inner.call(request)),
                    }
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

impl<S, B, ResBody> fmt::Debug for ResponseFuture<S, B, ResBody>
where
    S: Service<Request<B>>,
    B: Body,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
