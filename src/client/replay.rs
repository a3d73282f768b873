//! Request bodies that can be sent a second time, for the one replay after a rejected token.
//!
//! ```
//! use bytes::Bytes;
//! use http_body_util::{BodyExt, Full, combinators::BoxBody};
//! use tower_api_auth::client::ReplayBody;
//!
//! let full = Full::new(Bytes::from_static(b"{\"query\":\"x\"}"));
//! assert!(full.try_clone().is_some());
//!
//! // A streaming body can be read only once.
//! let boxed: BoxBody<Bytes, std::convert::Infallible> = full.boxed();
//! assert!(boxed.try_clone().is_none());
//! ```

use std::convert::Infallible;
use std::future::{Ready, ready};

use bytes::{Buf, Bytes};
use http::{HeaderMap, Request};
use http_body::Body;
use http_body_util::combinators::{BoxBody, UnsyncBoxBody, WithTrailers};
use http_body_util::{BodyExt, Empty, Full};

/// A request body that may be copied to replay the request.
///
/// Bodies held in memory (`Full`, `Empty`, `String`) copy cheaply (a reference count for
/// `Full<Bytes>`). Boxed bodies (`BoxBody`, `UnsyncBoxBody`) cannot be copied, but can be
/// rebuilt from bytes: [`TokenAuth`](crate::TokenAuth) buffers one whose size is known and within
/// its limit, and sends the buffered copy. Any other body is sent once, and a rejected token on
/// it is reported instead of replayed. Implement it for your own body type to say which it is.
pub trait ReplayBody: Body + Sized {
    /// A copy of this body to send again, or `None` if it cannot be copied without reading it.
    fn try_clone(&self) -> Option<Self>;

    /// Whether [`from_buffered`](Self::from_buffered) builds bodies of this type.
    const FROM_BUFFERED: bool = false;

    /// A body of this type holding `data` and then `trailers`, for a body that was read into
    /// memory to be replayable; `None` (the default) if this type cannot be built from bytes.
    fn from_buffered(data: Bytes, trailers: Option<HeaderMap>) -> Option<Self> {
        let _ = (data, trailers);
        None
    }
}

/// A body read into memory: its data, then its trailers if it had any.
type Buffered = WithTrailers<Full<Bytes>, Ready<Option<Result<HeaderMap, Infallible>>>>;

fn buffered(data: Bytes, trailers: Option<HeaderMap>) -> Buffered {
    Full::new(data).with_trailers(ready(trailers.map(Ok)))
}

impl<D: Buf + Clone> ReplayBody for Full<D> {
    fn try_clone(&self) -> Option<Self> {
        Some(self.clone())
    }
}

impl<D: Buf> ReplayBody for Empty<D> {
    fn try_clone(&self) -> Option<Self> {
        Some(Empty::new())
    }
}

impl ReplayBody for String {
    fn try_clone(&self) -> Option<Self> {
        Some(self.clone())
    }
}

impl<E: 'static> ReplayBody for BoxBody<Bytes, E> {
    const FROM_BUFFERED: bool = true;

    fn try_clone(&self) -> Option<Self> {
        None
    }

    fn from_buffered(data: Bytes, trailers: Option<HeaderMap>) -> Option<Self> {
        Some(BoxBody::new(
            buffered(data, trailers).map_err(|never| match never {}),
        ))
    }
}

impl<E: 'static> ReplayBody for UnsyncBoxBody<Bytes, E> {
    const FROM_BUFFERED: bool = true;

    fn try_clone(&self) -> Option<Self> {
        None
    }

    fn from_buffered(data: Bytes, trailers: Option<HeaderMap>) -> Option<Self> {
        Some(UnsyncBoxBody::new(
            buffered(data, trailers).map_err(|never| match never {}),
        ))
    }
}

#[cfg(feature = "tonic")]
#[cfg_attr(docsrs, doc(cfg(feature = "tonic")))]
impl ReplayBody for tonic::body::Body {
    const FROM_BUFFERED: bool = true;

    fn try_clone(&self) -> Option<Self> {
        None
    }

    fn from_buffered(data: Bytes, trailers: Option<HeaderMap>) -> Option<Self> {
        Some(tonic::body::Body::new(buffered(data, trailers)))
    }
}

/// A copy of `request` to send again, if its body can be copied.
pub(crate) fn try_clone_request<B: ReplayBody>(request: &Request<B>) -> Option<Request<B>> {
    Some(clone_with_body(request, request.body().try_clone()?))
}

/// A copy of `request` with `body` for a body.
pub(crate) fn clone_with_body<B, C>(request: &Request<B>, body: C) -> Request<C> {
    let mut copy = Request::new(body);
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    *copy.extensions_mut() = request.extensions().clone();
    copy
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    #[test]
    fn a_copied_request_is_the_same_request() {
        let mut request = Request::post("https://api.example.com/v1?q=1")
            .header("x-one", "1")
            .header("x-many", "a")
            .body(Full::new(Bytes::from_static(b"body")))
            .unwrap();
        request.headers_mut().append("x-many", "b".parse().unwrap());
        request.extensions_mut().insert(7u8);

        let copy = try_clone_request(&request).unwrap();
        assert_eq!(copy.method(), request.method());
        assert_eq!(copy.uri(), request.uri());
        assert_eq!(copy.version(), request.version());
        assert_eq!(copy.headers(), request.headers());
        assert_eq!(copy.extensions().get::<u8>(), Some(&7));
    }
}
