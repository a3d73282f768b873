use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use http::HeaderMap;
use http::header::CONTENT_TYPE;
use http::response::Parts;
use http_body::Body;

use super::ResponseBody;

/// Whether a response body may be worth reading ahead to judge the response: JSON, and not
/// announced as larger than `limit`. A body whose size is unknown (chunked) qualifies: it is
/// read up to `limit`, and judged only if it ended by then.
pub(crate) fn worth_peeking<B: Body>(head: &Parts, body: &B, limit: usize) -> bool {
    body.size_hint().lower() <= limit as u64 && is_json(&head.headers)
}

/// Reads a response body until it ends or passes `limit` bytes, keeping everything it read so
/// that the caller gets the body whole either way.
pub(crate) struct Peek<B> {
    body: Option<Pin<Box<B>>>,
    read: BytesMut,
    trailers: Option<HeaderMap>,
    limit: usize,
}

/// What [`Peek`] read: the whole body when it ended within the limit, and the body to hand on.
pub(crate) struct Peeked<B> {
    /// The whole body, if it ended within the limit.
    pub(crate) whole: Option<Bytes>,
    pub(crate) body: ResponseBody<B>,
}

impl<B> Peek<B> {
    pub(crate) fn new(body: B, limit: usize) -> Self {
        Self {
            body: Some(Box::pin(body)),
            read: BytesMut::new(),
            trailers: None,
            limit,
        }
    }
}

impl<B: Body> Future for Peek<B> {
    type Output = Result<Peeked<B>, B::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // Every field is `Unpin` (the body is boxed).
        let this = self.get_mut();
        let body = this.body.as_mut().expect("`Peek` polled after completion");
        let ended = loop {
            if this.read.len() > this.limit {
                break false;
            }
            match ready!(body.as_mut().poll_frame(cx)) {
                None => break true,
                Some(frame) => match frame?.into_data() {
                    Ok(mut data) => {
                        while data.has_remaining() {
                            let chunk = data.chunk();
                            this.read.extend_from_slice(chunk);
                            let n = chunk.len();
                            data.advance(n);
                        }
                    }
                    Err(frame) => {
                        if let Ok(trailers) = frame.into_trailers() {
                            this.trailers = Some(trailers);
                        }
                    }
                },
            }
        };
        let read = std::mem::take(&mut this.read).freeze();
        let trailers = this.trailers.take();
        let rest = this.body.take().filter(|_| !ended);
        Poll::Ready(Ok(Peeked {
            whole: ended.then(|| read.clone()),
            body: ResponseBody::peeked(read, trailers, rest),
        }))
    }
}

/// Whether the response says its body is JSON (`application/json`, or any `+json` type).
pub(crate) fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    kind.eq_ignore_ascii_case("application")
        && (subtype.eq_ignore_ascii_case("json")
            || subtype.len() > 5 && subtype[subtype.len() - 5..].eq_ignore_ascii_case("+json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_recognised_by_its_media_type() {
        for (content_type, json) in [
            ("application/json", true),
            ("Application/JSON; charset=utf-8", true),
            ("application/problem+json", true),
            ("application/vnd.api+JSON", true),
            ("text/json", false),
            ("application/jsonx", false),
            ("text/plain", false),
            ("+json", false),
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(CONTENT_TYPE, content_type.parse().unwrap());
            assert_eq!(is_json(&headers), json, "{content_type}");
        }
        assert!(!is_json(&HeaderMap::new()));
    }
}
