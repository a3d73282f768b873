use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

pin_project! {
    /// Response body of [`Classify`](crate::Classify) and
    /// [`TokenAuth`](crate::TokenAuth): the inner body untouched, or, when the layer read the
    /// start of it to judge the response, the bytes it read followed by the rest. Either way
    /// the caller reads exactly what the server sent, trailers included.
    ///
    /// See the [module docs](super) for an example.
    #[derive(Debug)]
    pub struct ResponseBody<B> {
        #[pin]
        inner: Inner<B>,
    }
}

pin_project! {
    #[project = InnerProj]
    #[derive(Debug)]
    enum Inner<B> {
        Streaming { #[pin] body: B },
        // Boxed: only a body that was read ahead gets here, and a streaming body (every other
        // response) stays the size of its inner body.
        Peeked { peeked: Box<Peeked<B>> },
    }
}

/// A body read ahead: what was read, then the rest (`None` once it ended).
#[derive(Debug)]
struct Peeked<B> {
    prefix: Option<Bytes>,
    trailers: Option<HeaderMap>,
    rest: Option<Pin<Box<B>>>,
}

impl<B> ResponseBody<B> {
    pub(crate) fn streaming(body: B) -> Self {
        Self {
            inner: Inner::Streaming { body },
        }
    }

    /// `prefix` was read from `rest`; `rest` is `None` when the body ended, with `trailers`.
    pub(crate) fn peeked(
        prefix: Bytes,
        trailers: Option<HeaderMap>,
        rest: Option<Pin<Box<B>>>,
    ) -> Self {
        let peeked = Box::new(Peeked {
            prefix: (!prefix.is_empty()).then_some(prefix),
            trailers,
            rest,
        });
        Self {
            inner: Inner::Peeked { peeked },
        }
    }
}

fn to_bytes<D: Buf>(frame: Frame<D>) -> Frame<Bytes> {
    // `copy_to_bytes` hands a `Bytes` chunk over without copying.
    frame.map_data(|mut data| data.copy_to_bytes(data.remaining()))
}

impl<B: Body> Body for ResponseBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        match self.project().inner.project() {
            InnerProj::Streaming { body } => body
                .poll_frame(cx)
                .map(|frame| frame.map(|frame| frame.map(to_bytes))),
            InnerProj::Peeked { peeked } => {
                let Peeked {
                    prefix,
                    trailers,
                    rest,
                } = &mut **peeked;
                if let Some(prefix) = prefix.take() {
                    return Poll::Ready(Some(Ok(Frame::data(prefix))));
                }
                if let Some(body) = rest {
                    match ready!(body.as_mut().poll_frame(cx)) {
                        Some(frame) => return Poll::Ready(Some(frame.map(to_bytes))),
                        None => *rest = None,
                    }
                }
                Poll::Ready(
                    trailers
                        .take()
                        .map(|trailers| Ok(Frame::trailers(trailers))),
                )
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Streaming { body } => body.is_end_stream(),
            Inner::Peeked { peeked } => {
                let Peeked {
                    prefix,
                    trailers,
                    rest,
                } = &**peeked;
                prefix.is_none()
                    && trailers.is_none()
                    && rest.as_ref().is_none_or(|rest| rest.is_end_stream())
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Streaming { body } => body.size_hint(),
            Inner::Peeked { peeked } => {
                let Peeked { prefix, rest, .. } = &**peeked;
                let read = prefix.as_ref().map_or(0, |prefix| prefix.len() as u64);
                let Some(rest) = rest else {
                    return SizeHint::with_exact(read);
                };
                let rest = rest.size_hint();
                let mut hint = SizeHint::new();
                hint.set_lower(rest.lower().saturating_add(read));
                if let Some(upper) = rest.upper() {
                    hint.set_upper(upper.saturating_add(read));
                }
                hint
            }
        }
    }
}
