//! Bodies, for the layers that must look at one or send one twice.
//!
//! - Responses: [`ResponseBody`] is what [`ClassifyLayer`](crate::ClassifyLayer) and
//!   [`TokenAuthLayer`](crate::TokenAuthLayer) hand back. When a layer read the start of a JSON
//!   body to judge it (Akool's `{"code":1101}`), the caller still reads every byte and trailer
//!   the server sent, in order; any other body streams through untouched.
//! - Requests: a request is copied for a replay or a retry when its body can be copied without
//!   reading it (`Full<Bytes>`, `Empty<Bytes>`, `String`), or read into memory first when it is
//!   small and of a type that can be rebuilt from bytes (`BoxBody` and `UnsyncBoxBody` with any
//!   error type, `axum::body::Body`, `tonic::body::Body`). With feature `reqwest`, a
//!   `reqwest::Body` made from bytes is copied (its bytes), and a streamed one is read into
//!   memory first like the boxed bodies. Every other body type works
//!   too: it is sent once, and what would have been replayed is reported instead.
//!
//! ```
//! use bytes::Bytes;
//! use http::{Request, Response};
//! use http_body_util::{BodyExt, Full, StreamBody};
//! use http_body::Frame;
//! use tower::{Service, ServiceBuilder, ServiceExt};
//! use tower_api_auth::ClassifyLayer;
//! use tower_api_auth::outcome::Outcome;
//! use tower_api_auth::providers::akool;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), tower::BoxError> {
//! // Akool's "token expired", sent chunked: no content-length.
//! let akool_api = tower::service_fn(|_: Request<String>| async {
//!     let chunks = [&br#"{"code":1101,"#[..], br#""msg":"expired"}"#]
//!         .map(|chunk| Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from_static(chunk))));
//!     Response::builder()
//!         .header("content-type", "application/json")
//!         .body(StreamBody::new(futures::stream::iter(chunks)))
//! });
//! let mut client = ServiceBuilder::new()
//!     .layer(ClassifyLayer::new(akool::classifier()))
//!     .service(akool_api);
//!
//! let response = client.ready().await?.call(Request::new(String::new())).await?;
//! assert_eq!(response.extensions().get::<Outcome>().unwrap().code(), Some(1101));
//! let body = response.into_body().collect().await?.to_bytes();
//! assert_eq!(&body[..], br#"{"code":1101,"msg":"expired"}"#);
//! # Ok(())
//! # }
//! ```

mod peek;
mod replay;
mod response;

pub(crate) use self::peek::{Peek, worth_peeking};
pub(crate) use self::replay::{can_rebuild, clone_with_body, rebuild, try_copy_request};
pub use self::response::ResponseBody;
