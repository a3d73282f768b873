//! reqwest: the crate's layers around a `reqwest::Client` (feature `reqwest`), and
//! `reqwest_middleware` middleware with the same guarantees (feature `reqwest-middleware`).
//!
//! [`ReqwestService`] makes a `reqwest::Client` a `tower::Service` of `http` requests, so
//! [`AuthLayer`](crate::AuthLayer), [`TokenAuthLayer`](crate::TokenAuthLayer) and
//! [`ClassifyLayer`](crate::ClassifyLayer) wrap it as they wrap hyper-util's client,
//! and the token sources (Akool's getToken, Polyteia's key exchange) fetch through it:
//!
//! ```
//! use http::Request;
//! use tower::{ServiceBuilder, ServiceExt};
//! use tower_api_auth::TokenAuthLayer;
//! use tower_api_auth::outcome::Outcome;
//! use tower_api_auth_mock::{MockServer, Provider};
//! use tower_api_auth::providers::akool;
//! use tower_api_auth::reqwest::ReqwestService;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), tower::BoxError> {
//! let akool_api = MockServer::start(Provider::Akool).await?; // a loopback stand-in
//! akool_api.accept_key("client-secret");
//!
//! let http = ReqwestService::new(reqwest::Client::new());
//! let tokens = akool::client_credentials("client-id", "client-secret")
//!     .base_url(akool_api.base_url())
//!     .build(http.clone())?;
//! let client = ServiceBuilder::new()
//!     .layer(TokenAuthLayer::new(tokens.clone()))
//!     .service(http);
//!
//! // `ReqwestService` takes any body type: `oneshot(request)` (or `ServiceExt::<Request<B>>::ready`)
//! // says which.
//! let url = format!("{}/api/open/v3/faceswap/quota/info", akool_api.base_url());
//! let response = client.clone().oneshot(Request::get(&url).body(reqwest::Body::default())?).await?;
//! assert!(response.extensions().get::<Outcome>().unwrap().is_success());
//!
//! // Akool answers the token with code 1101 in an HTTP 200: one refetch, one replay.
//! akool_api.expire_tokens();
//! let response = client.clone().oneshot(Request::get(&url).body(reqwest::Body::default())?).await?;
//! assert!(response.extensions().get::<Outcome>().unwrap().is_success());
//! assert_eq!(akool_api.token_request_count(), 2);
//! # Ok(())
//! # }
//! ```
//!
//! reqwest comes without its default features: enable its TLS (`rustls` or `native-tls`) in
//! your own `Cargo.toml`, as for any reqwest client.
//!
//! # Redirects
//!
//! reqwest follows redirects inside the client, below these layers and middleware, and on a
//! redirect to another host removes `Authorization` and cookies only. A key in any other header
//! (`X-API-Key`) would follow the redirect: build the client with
//! [`keep_credential_home`] as its redirect policy (or `reqwest::redirect::Policy::none()`).
//!
//! # reqwest-middleware
//!
//! With feature `reqwest-middleware`, the same guarantees as `reqwest_middleware` middleware:
//! [`AuthMiddleware`] (a static credential), [`TokenAuthMiddleware`] (a fetched token, one
//! replay on a rejection, the classifier's `Outcome` in the response's extensions) and
//! [`RetryMiddleware`] (`Retry-After`, never a `POST` that may have been processed). Add the
//! retry middleware first, so that it is outside the token's.
//!
#![cfg_attr(
    not(feature = "reqwest-middleware"),
    doc = "[`AuthMiddleware`]: https://docs.rs/tower-api-auth/latest/tower_api_auth/reqwest/struct.AuthMiddleware.html",
    doc = "[`TokenAuthMiddleware`]: https://docs.rs/tower-api-auth/latest/tower_api_auth/reqwest/struct.TokenAuthMiddleware.html",
    doc = "[`RetryMiddleware`]: https://docs.rs/tower-api-auth/latest/tower_api_auth/reqwest/struct.RetryMiddleware.html"
)]

#[cfg(feature = "reqwest-middleware")]
mod middleware;
mod redirect;
mod service;

#[cfg(feature = "reqwest-middleware")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest-middleware")))]
pub use self::middleware::{AuthMiddleware, RetryMiddleware, TokenAuthMiddleware};
pub use self::redirect::keep_credential_home;
pub use self::service::{ReqwestService, ResponseFuture};
