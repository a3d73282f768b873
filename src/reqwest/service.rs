//! [`ReqwestService`]: a `reqwest::Client` as a `tower::Service<http::Request<B>>`.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use pin_project_lite::pin_project;
use tower::{BoxError, Service};

/// The future of `reqwest::Client`'s own `tower::Service` impl.
type Pending = <::reqwest::Client as Service<::reqwest::Request>>::Future;

/// A `reqwest::Client` as a [`tower::Service`] of `http` requests, so that the crate's layers
/// (and any tower middleware) wrap it.
///
/// Requests and responses are converted, never copied: a request body that is a
/// `reqwest::Body` is sent as it is; any other [`http_body::Body`] (`Full<Bytes>`, `String`, a
/// stream) is wrapped with `reqwest::Body::wrap`; the response is `reqwest`'s own body
/// (`http::Response<reqwest::Body>`), streamed. It is always ready (reqwest queues
/// internally) and cheap to clone (a `reqwest::Client` is an `Arc`). Errors are reqwest's,
/// boxed, or the conversion's for a URI reqwest does not take (it needs an absolute URL).
///
/// The request bodies [`TokenAuthLayer`](crate::TokenAuthLayer) can replay are the same as
/// for any client (see [`body`](crate::body)), plus a `reqwest::Body` made from bytes
/// (`reqwest::Body::from(Vec<u8> | String | Bytes)`), whose bytes are copied for the replay,
/// and a streamed one of known size up to the layer's replay buffer limit, read into memory
/// first. Bodies must be `Send + Sync` (reqwest's own bound): `axum::body::Body` is not, so a
/// proxy sends `reqwest::Body::wrap_stream(body.into_data_stream())` instead.
///
/// See the [module docs](super) for an example.
#[derive(Clone, Default)]
pub struct ReqwestService {
    client: ::reqwest::Client,
}

impl ReqwestService {
    /// Sends requests with `client`.
    pub fn new(client: ::reqwest::Client) -> Self {
        Self { client }
    }

    /// Gets a reference to the client.
    pub fn get_ref(&self) -> &::reqwest::Client {
        &self.client
    }

    /// Consumes `self`, returning the client.
    pub fn into_inner(self) -> ::reqwest::Client {
        self.client
    }
}

impl From<::reqwest::Client> for ReqwestService {
    fn from(client: ::reqwest::Client) -> Self {
        Self::new(client)
    }
}

impl fmt::Debug for ReqwestService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReqwestService").finish_non_exhaustive()
    }
}

/// `body` as a `reqwest::Body`: itself when it is one, else wrapped (no copy either way).
pub(crate) fn into_reqwest_body<B>(body: B) -> ::reqwest::Body
where
    B: Body + Send + Sync + 'static,
    B::Data: Into<Bytes>,
    B::Error: Into<BoxError>,
{
    let mut slot = Some(body);
    match (&mut slot as &mut dyn Any).downcast_mut::<Option<::reqwest::Body>>() {
        Some(body) => body.take().unwrap_or_default(),
        None => match slot {
            Some(body) => ::reqwest::Body::wrap(body),
            None => ::reqwest::Body::default(),
        },
    }
}

impl<B> Service<Request<B>> for ReqwestService
where
    B: Body + Send + Sync + 'static,
    B::Data: Into<Bytes>,
    B::Error: Into<BoxError>,
{
    type Response = Response<::reqwest::Body>;
    type Error = BoxError;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let state = match ::reqwest::Request::try_from(request.map(into_reqwest_body)) {
            Ok(request) => State::Sent {
                future: Service::call(&mut self.client, request),
            },
            Err(error) => State::Failed { error: Some(error) },
        };
        ResponseFuture { state }
    }
}

pin_project! {
    /// Response future of [`ReqwestService`].
    pub struct ResponseFuture {
        #[pin]
        state: State,
    }
}

pin_project! {
    #[project = StateProj]
    enum State {
        Sent { #[pin] future: Pending },
        Failed { error: Option<::reqwest::Error> },
    }
}

impl Future for ResponseFuture {
    type Output = Result<Response<::reqwest::Body>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Sent { future } => future
                .poll(cx)
                .map(|result| result.map(Response::from).map_err(Into::into)),
            StateProj::Failed { error } => Poll::Ready(Err(error.take().map_or_else(
                || "`ResponseFuture` polled after completion".into(),
                Into::into,
            ))),
        }
    }
}

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::{BodyExt, Full};

    use super::*;

    #[tokio::test]
    async fn a_reqwest_body_is_passed_through_and_others_are_wrapped() {
        let body = into_reqwest_body(::reqwest::Body::from("bytes"));
        assert_eq!(body.as_bytes(), Some(&b"bytes"[..]));
        let wrapped = into_reqwest_body(Full::new(Bytes::from_static(b"full")));
        assert_eq!(wrapped.as_bytes(), None);
        assert_eq!(wrapped.size_hint().exact(), Some(4));
        assert_eq!(&wrapped.collect().await.unwrap().to_bytes()[..], b"full");
    }

    #[tokio::test]
    async fn a_relative_uri_is_an_error_not_a_panic() {
        let mut service = ReqwestService::default();
        let request = Request::get("/relative").body(String::new()).unwrap();
        let err = service.call(request).await.unwrap_err();
        assert!(err.is::<::reqwest::Error>(), "{err}");
    }
}
