use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::response::Parts;
use http::{Request, Response};
use http_body::Body;
use pin_project_lite::pin_project;
use tower::{BoxError, Layer, Service};

use super::{Classifier, Outcome, OutcomeKind};
use crate::body::{Peek, ResponseBody, worth_peeking};

/// By default, JSON bodies up to this size are read to be classified.
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;

/// Layer that applies [`Classify`], which puts an [`Outcome`] into every response's
/// extensions.
///
/// See the [module docs](super) for an example.
pub struct ClassifyLayer<C> {
    classifier: Arc<C>,
    body_limit: usize,
    outcomes: super::OutcomeCounters,
}

impl<C: Classifier> ClassifyLayer<C> {
    /// Classifies responses with `classifier`.
    pub fn new(classifier: C) -> Self {
        Self {
            classifier: Arc::new(classifier),
            body_limit: DEFAULT_BODY_LIMIT,
            outcomes: Default::default(),
        }
    }

    /// Reads JSON bodies up to `limit` bytes to classify them (default
    /// [`DEFAULT_BODY_LIMIT`]). A body is read only when the classifier wants it, its content
    /// type is JSON and it is not announced as larger than the limit; one sent chunked is read
    /// until it ends or passes the limit, and judged by its head alone in the second case. The
    /// caller gets every byte either way.
    pub fn body_limit(mut self, limit: usize) -> Self {
        self.body_limit = limit;
        self
    }
}

impl<C> Clone for ClassifyLayer<C> {
    fn clone(&self) -> Self {
        Self {
            classifier: Arc::clone(&self.classifier),
            body_limit: self.body_limit,
            outcomes: self.outcomes.clone(),
        }
    }
}

impl<C> fmt::Debug for ClassifyLayer<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClassifyLayer")
            .field("body_limit", &self.body_limit)
            .finish_non_exhaustive()
    }
}

impl<S, C> Layer<S> for ClassifyLayer<C> {
    type Service = Classify<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        Classify {
            inner,
            layer: self.clone(),
        }
    }
}

/// Middleware that classifies every response, puts the [`Outcome`] into its extensions, and
/// emits one `tracing` event per failure. Failures stay responses, so that a retry policy or a
/// token replay anywhere in the stack sees them; [`error_for_outcome`](super::error_for_outcome)
/// turns them into errors where the caller wants `?`.
///
/// See the [module docs](super) for an example.
pub struct Classify<S, C> {
    inner: S,
    layer: ClassifyLayer<C>,
}

impl<S, C: Classifier> Classify<S, C> {
    /// Wraps `inner`, classifying its responses with `classifier`.
    pub fn new(inner: S, classifier: C) -> Self {
        ClassifyLayer::new(classifier).layer(inner)
    }

    inner_service_accessors!();
}

impl<S: Clone, C> Clone for Classify<S, C> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            layer: self.layer.clone(),
        }
    }
}

impl<S: fmt::Debug, C> fmt::Debug for Classify<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Classify")
            .field("inner", &self.inner)
            .field("layer", &self.layer)
            .finish()
    }
}

impl<S, C, ReqBody, ResBody> Service<Request<ReqBody>> for Classify<S, C>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Error: Into<BoxError>,
    ResBody: Body,
    ResBody::Error: Into<BoxError>,
    C: Classifier,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, ResBody, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        ResponseFuture {
            state: State::Calling {
                future: self.inner.call(request),
            },
            layer: self.layer.clone(),
        }
    }
}

pin_project! {
    /// Response future of [`Classify`].
    pub struct ResponseFuture<F, B, C>
    where
        B: Body,
    {
        #[pin]
        state: State<F, B>,
        layer: ClassifyLayer<C>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, B>
    where
        B: Body,
    {
        Calling {
            #[pin]
            future: F,
        },
        Reading {
            #[pin]
            peek: Peek<B>,
            head: Option<Parts>,
        },
    }
}

impl<F, B, C, E> Future for ResponseFuture<F, B, C>
where
    F: Future<Output = Result<Response<B>, E>>,
    E: Into<BoxError>,
    B: Body,
    B::Error: Into<BoxError>,
    C: Classifier,
{
    type Output = Result<Response<ResponseBody<B>>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Calling { future } => {
                    let (head, body) = ready!(future.poll(cx)).map_err(Into::into)?.into_parts();
                    let layer = &*this.layer;
                    if worth_peeking(&head, &body, layer.body_limit)
                        && layer.classifier.wants_body(&head)
                    {
                        this.state.set(State::Reading {
                            peek: Peek::new(body, layer.body_limit),
                            head: Some(head),
                        });
                        continue;
                    }
                    let body = ResponseBody::streaming(body);
                    return Poll::Ready(Ok(finish(this.layer, head, body, None)));
                }
                StateProj::Reading { peek, head } => {
                    let peeked = ready!(peek.poll(cx)).map_err(Into::into)?;
                    let head = head
                        .take()
                        .expect("`ResponseFuture` polled after completion");
                    let whole = peeked.whole.as_deref();
                    return Poll::Ready(Ok(finish(this.layer, head, peeked.body, whole)));
                }
            }
        }
    }
}

/// Classifies, reports, and hands the response over.
fn finish<B, C: Classifier>(
    layer: &ClassifyLayer<C>,
    mut head: Parts,
    body_stream: ResponseBody<B>,
    body: Option<&[u8]>,
) -> Response<ResponseBody<B>> {
    let outcome = layer.classifier.classify(&head, body);
    if cfg!(feature = "metrics") && head.extensions.get::<Outcome>().is_none() {
        layer.outcomes.count(layer.classifier.provider(), &outcome);
    }
    if !outcome.is_success() {
        trace_failure(layer.classifier.provider(), &outcome);
    }
    head.extensions.insert(outcome);
    Response::from_parts(head, body_stream)
}

/// One event per failure: provider, status and code; never headers or bodies.
fn trace_failure(provider: &'static str, outcome: &Outcome) {
    let status = outcome.status().as_u16();
    let code = outcome.code();
    let kind = outcome.kind();
    match kind {
        OutcomeKind::RateLimited | OutcomeKind::Transient => {
            tracing::info!(
                provider,
                status,
                code,
                ?kind,
                "API call failed, may be retried"
            );
        }
        _ => tracing::warn!(provider, status, code, ?kind, "API call failed"),
    }
}

impl<F, B: Body, C> fmt::Debug for ResponseFuture<F, B, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
