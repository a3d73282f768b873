//! Tower layers that authenticate HTTP calls to API-key and token APIs.
//!
//! Put a [`Credential`] on every request a client sends, as the API expects it: a header of its
//! own (`X-API-Key: <key>`), `Authorization: Bearer <token>`, `Authorization: Api-Key <key>`, or
//! any other scheme. The secret is validated once, never printed, marked sensitive, sent only
//! to the origins it belongs to, and can be rotated while the client runs.
//!
//! ```
//! use http::{Request, Response};
//! use tower::{Service, ServiceBuilder, ServiceExt};
//! use tower_api_auth::AuthLayer;
//! use tower_api_auth::providers::erathos;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let credential = erathos::api_key("erathos-key").build()?;
//!
//! # let hyper_util_client = tower::service_fn(|request: Request<()>| async move {
//! #     Ok::<_, std::convert::Infallible>(Response::new(request.headers().clone()))
//! # });
//! let mut client = ServiceBuilder::new()
//!     .layer(AuthLayer::new(credential))
//!     .service(hyper_util_client);
//!
//! let request = Request::get("https://api.erathos.com/developers/workspaces/ws1/jobs/").body(())?;
//! let response = client.ready().await?.call(request).await?;
//! assert_eq!(response.body()["authorization"], "Api-Key erathos-key");
//! # Ok(())
//! # }
//! ```
//!
//! # Fetched tokens
//!
//! Some APIs trade a long-lived secret for an access token (Akool's `getToken`, Polyteia's key
//! exchange). A [`TokenCredential`] fetches it lazily, once for all concurrent callers, caches it
//! in `arc_swap`, refreshes it in the background ahead of its expiry, and keeps serving it when
//! the token endpoint is down (static stability); [`TokenAuthLayer`] attaches it, waiting for it
//! in `poll_ready`, and replays a request once with a new token when the API says the token
//! expired (a 401, or Akool's code 1101 in an HTTP 200, read from the response whatever the
//! layer order). A [`TokenSource`] is any async closure:
//!
//! ```
//! use http::{Request, Response, StatusCode};
//! use tower::{Service, ServiceBuilder, ServiceExt};
//! use tower_api_auth::{ServiceBuilderExt, Token, TokenCredential};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let tokens = TokenCredential::builder(|| async {
//!     // POST to the token endpoint here.
//!     Ok::<_, std::io::Error>(Token::new("access-token"))
//! })
//! .origin("https://api.example.com")
//! .build()?;
//!
//! # let http_client = tower::service_fn(|request: Request<String>| async move {
//! #     let ok = request.headers()["authorization"] == "Bearer access-token";
//! #     let status = if ok { StatusCode::OK } else { StatusCode::UNAUTHORIZED };
//! #     Ok::<_, std::convert::Infallible>(Response::builder().status(status).body(String::new()).unwrap())
//! # });
//! let mut client = ServiceBuilder::new().token_auth(tokens.clone()).service(http_client);
//! let request = Request::get("https://api.example.com/v1/things").body(String::new())?;
//! let response = client.ready().await?.call(request).await?;
//! assert_eq!(response.status(), StatusCode::OK);
//! assert_eq!(tokens.fetch_count(), 1);
//! # Ok(())
//! # }
//! ```
//!
//! # Classification and retries
//!
//! [`ClassifyLayer`](classify::ClassifyLayer) turns every response into a typed
//! [`Outcome`](classify::Outcome) — success, credential rejected or missing, forbidden, banned,
//! rate limited, transient — from its status and, for APIs like Akool, from a JSON body code (the
//! body is handed on intact). [`RetryPolicy`](classify::RetryPolicy) retries the transient ones
//! with `tower::retry`, honouring `Retry-After`, and never the permanent ones:
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use http::{Request, Response, StatusCode};
//! use tower::retry::RetryLayer;
//! use tower::{Service, ServiceBuilder, ServiceExt};
//! use tower_api_auth::ServiceBuilderExt;
//! use tower_api_auth::classify::{Outcome, OutcomeKind, RetryPolicy};
//! use tower_api_auth::providers::akkio;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! # let calls = Arc::new(AtomicUsize::new(0));
//! # let counter = Arc::clone(&calls);
//! # let http_client = tower::service_fn(move |_: Request<String>| {
//! #     let status = match counter.fetch_add(1, Ordering::SeqCst) {
//! #         0 => StatusCode::SERVICE_UNAVAILABLE,
//! #         _ => StatusCode::OK,
//! #     };
//! #     async move { Ok::<_, std::convert::Infallible>(Response::builder().status(status).body(String::new()).unwrap()) }
//! # });
//! let policy = RetryPolicy::new().backoff(
//!     std::time::Duration::from_millis(1),
//!     std::time::Duration::from_millis(10),
//! );
//! let mut client = ServiceBuilder::new()
//!     .layer(RetryLayer::new(policy))
//!     .classify(akkio::classifier())
//!     .service(http_client);
//! let request = Request::get("https://api.akkio.com/api/v1/models").body(String::new())?;
//! let response = client.ready().await?.call(request).await?;
//! // The first answer was a 503: retried once, then a success.
//! assert_eq!(response.extensions().get::<Outcome>().unwrap().kind(), OutcomeKind::Success);
//! # assert_eq!(calls.load(Ordering::SeqCst), 2);
//! # Ok(())
//! # }
//! ```
//!
//! # The server side
//!
//! The same credentials, checked on the way in: [`ValidateCredentialLayer`](server::ValidateCredentialLayer)
//! looks the presented key up in a key store (as a digest, compared in constant time), refuses
//! missing, unknown, expired and revoked keys with 401 and insufficient scopes with 403, and
//! hands the caller's [`Principal`](server::Principal) to the handler; keys change while the
//! server runs. See [`server`] for an example, and `examples/axum_server.rs` for an axum API.
//!
//! # Providers
//!
//! [`providers`] holds a module per provider — Akkio, Polyteia, Erathos, Akool — with its
//! credential presets, its token exchange where it has one, and its classifier; each has a
//! runnable example in `examples/` that calls the real API when its credentials are in the
//! environment and a loopback stand-in otherwise. The stand-ins are the crate
//! `tower-api-auth-mock`, for your own offline tests too.
//!
//! # Modules
//!
//! - [`credential`]: the credential types, their validation and their origins.
//! - [`client`]: the layers for the outgoing side.
//! - [`token`]: fetched credentials (access tokens) and their cache; with features
//!   `token-store`, `redis` and `store-encryption`, `token::store` keeps them across restarts
//!   and replicas.
//! - [`classify`]: typed outcomes of responses, the classify layer and a retry policy.
//! - [`body`]: the response body the layers hand back, and which request bodies can be
//!   replayed.
//! - [`providers`]: presets for Akkio, Polyteia, Erathos and Akool.
//! - [`server`] (feature `server`, on by default): validate incoming credentials against a key
//!   store, in axum apps and any tower server.
//! - [`reqwest`] (features `reqwest`, `reqwest-middleware`): the layers around a
//!   `reqwest::Client`, and `reqwest_middleware` middleware.
//! - [`metrics`] (feature `metrics`): the metrics the crate records, and their names.
//!
//! # Feature flags
//!
//! - `server` (default): the [`server`] module (pulls in `sha2` and `subtle`).
//! - `axum`: the server side's `Principal` extractor for axum handlers.
//! - `tonic`: [`TokenAuthLayer`] around a tonic `Channel` (its request body is buffered for a
//!   replay).
//! - `follow-redirect`: `client::KeepCredentialHome`, a tower-http redirect policy that keeps the
//!   credential on its origin.
//! - `reqwest`: [`reqwest::ReqwestService`], the layers around a `reqwest::Client`.
//! - `reqwest-middleware`: `reqwest_middleware` middleware with the layers' guarantees.
//! - `metrics`: counters and histograms through the `metrics` facade ([`metrics`] names them).

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(unreachable_pub, rust_2018_idioms, clippy::todo, clippy::dbg_macro)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod body;
mod builder;
pub mod classify;
pub mod client;
pub mod credential;
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub mod metrics;
#[cfg(not(feature = "metrics"))]
mod metrics;
pub mod providers;
#[cfg(feature = "reqwest")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
pub mod reqwest;
mod secret;
#[cfg(feature = "server")]
#[cfg_attr(docsrs, doc(cfg(feature = "server")))]
pub mod server;
pub mod token;

pub use self::builder::ServiceBuilderExt;
pub use self::client::{Auth, AuthLayer, TokenAuth, TokenAuthLayer};
pub use self::credential::{Credential, CredentialBuilder, CredentialError, Origin, Placement};
pub use self::secret::Secret;
pub use self::token::{Token, TokenCredential, TokenError, TokenSource};

/// The README's examples, compiled and run as doctests so they stay true. Some need the
/// optional integrations: they run with `--all-features`, as in CI.
#[cfg(all(doctest, feature = "reqwest"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
