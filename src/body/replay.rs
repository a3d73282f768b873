//! Request bodies sent twice: copied when that is free, rebuilt from bytes when the type allows.
//!
//! Any body type may go through the layers, so a body's capabilities are looked up by its type
//! at run time (the `TypeId` comparisons fold away once the type is known at compile time)
//! instead of by a trait bound that users could not implement for `axum::body::Body` or
//! `hyper::body::Incoming`.

use std::any::{Any, TypeId};
use std::convert::Infallible;
use std::future::{Ready, ready};

use bytes::Bytes;
use http::{HeaderMap, Request};
use http_body::Body;
use http_body_util::combinators::{BoxBody, UnsyncBoxBody, WithTrailers};
use http_body_util::{BodyExt, Empty, Full};

/// `value` as a `B`, when `B` is `T`.
fn cast<T: 'static, B: 'static>(value: T) -> Option<B> {
    let mut slot = Some(value);
    (&mut slot as &mut dyn Any)
        .downcast_mut::<Option<B>>()
        .and_then(Option::take)
}

/// A copy of `body`, when its type can be copied without reading it.
pub(crate) fn copy_body<B: 'static>(body: &B) -> Option<B> {
    let body = body as &dyn Any;
    macro_rules! copyable {
        ($($ty:ty),*) => {$(
            if let Some(body) = body.downcast_ref::<$ty>() {
                return cast(body.clone());
            }
        )*};
    }
    copyable!(
        Full<Bytes>,
        String,
        Vec<u8>,
        Bytes,
        &'static str,
        &'static [u8]
    );
    if body.is::<Empty<Bytes>>() {
        return cast(Empty::<Bytes>::new());
    }
    if body.is::<()>() {
        return cast(());
    }
    // A reqwest body made from bytes: its bytes are copied (reqwest keeps its own cheap clone
    // private). A streamed one is `None` here, and rebuilt below when small.
    #[cfg(feature = "reqwest")]
    if let Some(body) = body.downcast_ref::<reqwest::Body>() {
        let bytes = Bytes::copy_from_slice(body.as_bytes()?);
        return cast(reqwest::Body::from(bytes));
    }
    None
}

/// A body read into memory: its data, then its trailers if it had any.
type Buffered = WithTrailers<Full<Bytes>, Ready<Option<Result<HeaderMap, Infallible>>>>;

fn buffered(data: Bytes, trailers: Option<HeaderMap>) -> Buffered {
    Full::new(data).with_trailers(ready(trailers.map(Ok)))
}

/// A body type that can be rebuilt from bytes read into memory.
trait Rebuild: Sized + 'static {
    fn rebuild(data: Bytes, trailers: Option<HeaderMap>) -> Self;
}

impl<E: 'static> Rebuild for BoxBody<Bytes, E> {
    fn rebuild(data: Bytes, trailers: Option<HeaderMap>) -> Self {
        BoxBody::new(buffered(data, trailers).map_err(|never| match never {}))
    }
}

impl<E: 'static> Rebuild for UnsyncBoxBody<Bytes, E> {
    fn rebuild(data: Bytes, trailers: Option<HeaderMap>) -> Self {
        UnsyncBoxBody::new(buffered(data, trailers).map_err(|never| match never {}))
    }
}

#[cfg(feature = "axum")]
impl Rebuild for axum::body::Body {
    fn rebuild(data: Bytes, trailers: Option<HeaderMap>) -> Self {
        axum::body::Body::new(buffered(data, trailers))
    }
}

#[cfg(feature = "tonic")]
impl Rebuild for tonic::body::Body {
    fn rebuild(data: Bytes, trailers: Option<HeaderMap>) -> Self {
        tonic::body::Body::new(buffered(data, trailers))
    }
}

#[cfg(feature = "reqwest")]
impl Rebuild for reqwest::Body {
    fn rebuild(data: Bytes, trailers: Option<HeaderMap>) -> Self {
        match trailers {
            None => reqwest::Body::from(data),
            Some(trailers) => reqwest::Body::wrap(buffered(data, Some(trailers))),
        }
    }
}

/// Calls `$each!` with the framework body types that can be rebuilt, for the enabled features.
macro_rules! framework_bodies {
    ($each:ident) => {
        #[cfg(feature = "axum")]
        $each!(axum::body::Body);
        #[cfg(feature = "reqwest")]
        $each!(reqwest::Body);
        #[cfg(feature = "tonic")]
        $each!(tonic::body::Body);
    };
}

/// How a body of type `B` is rebuilt from bytes, if it can be.
enum Rebuilt {
    /// `BoxBody<Bytes, B::Error>`, whatever the error type.
    Boxed,
    /// `UnsyncBoxBody<Bytes, B::Error>`.
    UnsyncBoxed,
    /// A framework body (axum's, tonic's, reqwest's).
    #[cfg(any(feature = "axum", feature = "tonic", feature = "reqwest"))]
    Framework,
}

fn rebuilt<B>() -> Option<Rebuilt>
where
    B: Body<Error: 'static> + 'static,
{
    let ty = TypeId::of::<B>();
    if ty == TypeId::of::<BoxBody<Bytes, B::Error>>() {
        return Some(Rebuilt::Boxed);
    }
    if ty == TypeId::of::<UnsyncBoxBody<Bytes, B::Error>>() {
        return Some(Rebuilt::UnsyncBoxed);
    }
    #[cfg(any(feature = "axum", feature = "tonic", feature = "reqwest"))]
    macro_rules! each {
        ($ty:ty) => {
            if ty == TypeId::of::<$ty>() {
                return Some(Rebuilt::Framework);
            }
        };
    }
    framework_bodies!(each);
    None
}

/// Whether a body of type `B` can be rebuilt from bytes, so that reading it into memory makes
/// it replayable: a boxed body (`BoxBody`, `UnsyncBoxBody`) with any error type, or a framework
/// body of an enabled feature
/// (axum's, tonic's, reqwest's).
pub(crate) fn can_rebuild<B>() -> bool
where
    B: Body<Error: 'static> + 'static,
{
    rebuilt::<B>().is_some()
}

/// A `B` holding `data` and then `trailers`, when `B` can be rebuilt from bytes.
pub(crate) fn rebuild<B>(data: Bytes, trailers: Option<HeaderMap>) -> Option<B>
where
    B: Body<Error: 'static> + 'static,
{
    match rebuilt::<B>()? {
        Rebuilt::Boxed => cast(BoxBody::<Bytes, B::Error>::rebuild(data, trailers)),
        Rebuilt::UnsyncBoxed => cast(UnsyncBoxBody::<Bytes, B::Error>::rebuild(data, trailers)),
        #[cfg(any(feature = "axum", feature = "tonic", feature = "reqwest"))]
        Rebuilt::Framework => {
            macro_rules! each {
                ($ty:ty) => {
                    if TypeId::of::<B>() == TypeId::of::<$ty>() {
                        return cast(<$ty as Rebuild>::rebuild(data, trailers));
                    }
                };
            }
            framework_bodies!(each);
            None
        }
    }
}

/// A copy of `request` to send again, if its body can be copied.
pub(crate) fn try_copy_request<B: 'static>(request: &Request<B>) -> Option<Request<B>> {
    Some(clone_with_body(request, copy_body(request.body())?))
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
    use http_body_util::BodyExt;
    use tower::BoxError;

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

        let copy = try_copy_request(&request).unwrap();
        assert_eq!(copy.method(), request.method());
        assert_eq!(copy.uri(), request.uri());
        assert_eq!(copy.version(), request.version());
        assert_eq!(copy.headers(), request.headers());
        assert_eq!(copy.extensions().get::<u8>(), Some(&7));
    }

    #[test]
    fn bodies_in_memory_are_copied_and_streams_are_not() {
        assert!(copy_body(&Full::new(Bytes::from_static(b"x"))).is_some());
        assert!(copy_body(&String::from("x")).is_some());
        assert!(copy_body(&Empty::<Bytes>::new()).is_some());
        let boxed: BoxBody<Bytes, Infallible> = Full::new(Bytes::new()).boxed();
        assert!(copy_body(&boxed).is_none());
        let limited = http_body_util::Limited::new(Full::new(Bytes::new()), 10);
        assert!(copy_body(&limited).is_none());
    }

    #[cfg(feature = "reqwest")]
    #[tokio::test]
    async fn reqwest_bodies_of_bytes_are_copied_and_streamed_ones_rebuilt() {
        let body = reqwest::Body::from("json");
        let copy = copy_body(&body).unwrap();
        assert_eq!(copy.as_bytes(), Some(&b"json"[..]));
        let streamed = reqwest::Body::wrap(Full::new(Bytes::from_static(b"stream")));
        assert!(copy_body(&streamed).is_none());
        assert!(can_rebuild::<reqwest::Body>());
        let rebuilt: reqwest::Body = rebuild(Bytes::from_static(b"stream"), None).unwrap();
        assert_eq!(rebuilt.as_bytes(), Some(&b"stream"[..]));
    }

    #[tokio::test]
    async fn boxed_bodies_are_rebuilt_with_their_trailers() {
        assert!(can_rebuild::<BoxBody<Bytes, BoxError>>());
        assert!(!can_rebuild::<Full<Bytes>>());
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", "0".parse().unwrap());
        let body: UnsyncBoxBody<Bytes, BoxError> =
            rebuild(Bytes::from_static(b"data"), Some(trailers.clone())).unwrap();
        assert_eq!(body.size_hint().exact(), Some(4));
        let collected = body.collect().await.unwrap();
        assert_eq!(collected.trailers(), Some(&trailers));
        assert_eq!(&collected.to_bytes()[..], b"data");
        assert!(rebuild::<Full<Bytes>>(Bytes::new(), None).is_none());
    }
}
