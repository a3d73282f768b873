//! Attach a fetched access token to outgoing requests, and replay a request once when the API
//! rejects the token.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use bytes::Bytes;
//! use http::{Request, Response, StatusCode};
//! use http_body_util::Full;
//! use tower::{Service, ServiceBuilder, ServiceExt};
//! use tower_api_auth::{Token, TokenAuthLayer, TokenCredential};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), tower::BoxError> {
//! let fetches = Arc::new(AtomicUsize::new(0));
//! let counter = Arc::clone(&fetches);
//! let tokens = TokenCredential::builder(move || {
//!     let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
//!     async move { Ok::<_, std::io::Error>(Token::new(format!("token-{n}"))) }
//! })
//! .origin("https://api.example.com")
//! .build()?;
//!
//! // Any `Service<Request<B>>`: a hyper-util client in real code. This API has revoked
//! // `token-1`.
//! let api = tower::service_fn(|request: Request<Full<Bytes>>| async move {
//!     let status = match request.headers()["authorization"].to_str()? {
//!         "Bearer token-1" => StatusCode::UNAUTHORIZED,
//!         _ => StatusCode::OK,
//!     };
//!     Ok::<_, tower::BoxError>(Response::builder().status(status).body(String::new())?)
//! });
//! let mut client = ServiceBuilder::new()
//!     .layer(TokenAuthLayer::new(tokens.clone()))
//!     .service(api);
//!
//! // Fetched on first use; rejected; refetched once and replayed once.
//! let request = Request::post("https://api.example.com/v1/things").body(Full::from("{}"))?;
//! let response = client.ready().await?.call(request).await?;
//! assert_eq!(response.status(), StatusCode::OK);
//! assert_eq!(tokens.generation(), Some(2));
//! assert_eq!(fetches.load(Ordering::SeqCst), 2);
//! # Ok(())
//! # }
//! ```

mod attach;
mod future;
mod gate;
mod judge;
pub(crate) mod layer;

pub use self::attach::{AttachFuture, AttachToken, AttachTokenLayer};
pub use self::future::ResponseFuture;
