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
//! use tower_api_auth::{ServiceBuilderAuthExt, Token, TokenCredential};
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
//! [`ClassifyLayer`] turns every response into a typed
//! [`Outcome`](outcome::Outcome) — success, credential rejected or missing, forbidden, banned,
//! rate limited, transient — from its status and, for APIs like Akool, from a JSON body code (the
//! body is handed on intact). [`RetryPolicy`](outcome::RetryPolicy) retries the transient ones
//! with `tower::retry`, honouring `Retry-After`, and never the permanent ones:
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use http::{Request, Response, StatusCode};
//! use tower::retry::RetryLayer;
//! use tower::{Service, ServiceBuilder, ServiceExt};
//! use tower_api_auth::ServiceBuilderAuthExt;
//! use tower_api_auth::outcome::{Outcome, OutcomeKind, RetryPolicy};
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
//! The same credentials, checked on the way in: [`ValidateCredentialLayer`] looks
//! the presented key up in a key store (as a digest, compared in constant time), refuses
//! missing, unknown, expired and revoked keys with 401 and insufficient scopes with 403, and
//! hands the caller's [`Principal`] to the handler; keys change while the
//! server runs. See [`server`] for an example, and `examples/axum_server.rs` for an axum API.
//! With the `sqlite` or `postgres` feature, `server::sql` keeps the keys in a database: issued
//! in a recognisable format, held in memory so the database is never on the request path,
//! revocations reaching every replica within a second.
//!
//! # Providers
//!
//! [`providers`] holds a module per provider — Akkio, Polyteia, Erathos, Akool — with its
//! credential presets, its token exchange where it has one, and its classifier; each has a
//! runnable example in `examples/` that calls the real API when its credentials are in the
//! environment and a loopback stand-in otherwise. The stand-ins are the crate
//! `tower-api-auth-mock`, for your own offline tests too.
//!
//! # The types to know
//!
//! | type | what it is |
//! |---|---|
//! | [`Credential`] | a secret, where it goes in a request, and the origins it may go to |
//! | [`AuthLayer`] | attaches a `Credential` to every request bound for its origins |
//! | [`TokenCredential`] | a fetched access token: fetched once, cached, refreshed, shared |
//! | [`TokenAuthLayer`] | attaches the token, waits for it, replays once when it is rejected |
//! | [`ClassifyLayer`] | puts a typed [`Outcome`](outcome::Outcome) on every response |
//! | [`ValidateCredentialLayer`] | the server side: checks incoming keys against a key store |
//! | [`ServiceBuilderAuthExt`] | the layers as `ServiceBuilder` methods |
//!
//! Their errors are [`CredentialError`] (at construction) and [`TokenError`] (a fetch that
//! failed). The rest lives in modules: [`providers`] (presets per provider), [`outcome`]
//! (classifiers, outcomes, the retry policy), [`token`] (the fetched token's builder, status
//! and stores), [`token_auth`] (its futures and the replay-less variant), [`body`] (the response
//! body the layers hand back), [`server`] (key stores, principals, refusals), and with their
//! features [`reqwest`] and [`metrics`].
//!
//! # Feature flags
//!
//! - `server` (default): the [`server`] module (pulls in `sha2` and `subtle`).
//! - `axum`: the server side's `Principal` extractor for axum handlers.
//! - `key-format`: keys in a recognisable format (`<prefix>_<random>_<checksum>`), issued, and
//!   refused before any lookup when mistyped or guessed.
//! - `sqlite`, `postgres`: `server::sql`, the server side's keys in a database (SQLite bundled),
//!   key management included.
//! - `tonic`: [`TokenAuthLayer`] around a tonic `Channel` (its request body is buffered for a
//!   replay).
//! - `follow-redirect`: [`KeepCredentialHome`], a tower-http redirect policy that keeps the
//!   credential on its origin.
//! - `token-store`: fetched tokens kept across restarts in files, one fetch for the processes
//!   of a machine; `redis`: shared by a fleet through Redis; `store-encryption`: sealed at rest.
//! - `reqwest`: [`reqwest::ReqwestService`], the layers around a `reqwest::Client`.
//! - `reqwest-middleware`: `reqwest_middleware` middleware with the layers' guarantees.
//! - `metrics`: counters and histograms through the `metrics` facade ([`metrics`] names them).
//!
//! Items of a feature that is off are linked to their page on docs.rs, which documents every
//! feature.
//!
#![cfg_attr(feature = "server", doc = "[`Principal`]: server::Principal")]
#![cfg_attr(
    not(feature = "server"),
    doc = "[`server`]: https://docs.rs/tower-api-auth/latest/tower_api_auth/server/index.html",
    doc = "[`Principal`]: https://docs.rs/tower-api-auth/latest/tower_api_auth/server/struct.Principal.html",
    doc = "[`ValidateCredentialLayer`]: https://docs.rs/tower-api-auth/latest/tower_api_auth/struct.ValidateCredentialLayer.html"
)]
#![cfg_attr(
    not(feature = "reqwest"),
    doc = "[`reqwest`]: https://docs.rs/tower-api-auth/latest/tower_api_auth/reqwest/index.html",
    doc = "[`reqwest::ReqwestService`]: https://docs.rs/tower-api-auth/latest/tower_api_auth/reqwest/struct.ReqwestService.html"
)]
#![cfg_attr(
    not(feature = "metrics"),
    doc = "[`metrics`]: https://docs.rs/tower-api-auth/latest/tower_api_auth/metrics/index.html"
)]
#![cfg_attr(
    not(feature = "follow-redirect"),
    doc = "[`KeepCredentialHome`]: https://docs.rs/tower-api-auth/latest/tower_api_auth/struct.KeepCredentialHome.html"
)]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(unreachable_pub, rust_2018_idioms, clippy::todo, clippy::dbg_macro)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[macro_use]
mod macros;

mod auth;
pub mod body;
mod builder;
mod credential;
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub mod metrics;
#[cfg(not(feature = "metrics"))]
mod metrics;
pub mod outcome;
pub mod providers;
#[cfg(feature = "follow-redirect")]
mod redirect;
#[cfg(feature = "reqwest")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
pub mod reqwest;
mod secret;
#[cfg(feature = "server")]
#[cfg_attr(docsrs, doc(cfg(feature = "server")))]
pub mod server;
pub mod token;
pub mod token_auth;

pub use self::auth::{Auth, AuthLayer};
pub use self::builder::ServiceBuilderAuthExt;
pub use self::credential::{Credential, CredentialBuilder, CredentialError, Origin, Placement};
pub use self::outcome::layer::{Classify, ClassifyLayer};
#[cfg(feature = "follow-redirect")]
#[cfg_attr(docsrs, doc(cfg(feature = "follow-redirect")))]
pub use self::redirect::KeepCredentialHome;
pub use self::secret::Secret;
#[cfg(feature = "server")]
#[cfg_attr(docsrs, doc(cfg(feature = "server")))]
pub use self::server::layer::ValidateCredentialLayer;
#[cfg(feature = "server")]
#[cfg_attr(docsrs, doc(cfg(feature = "server")))]
pub use self::server::service::ValidateCredential;
pub use self::token::credential::TokenCredential;
pub use self::token::error::TokenError;
pub use self::token::source::{Token, TokenSource};
pub use self::token_auth::layer::{TokenAuth, TokenAuthLayer};

/// The README's examples, compiled and run as doctests so they stay true. Some need the
/// optional integrations: they run with `--all-features`, as in CI.
#[cfg(all(doctest, feature = "reqwest"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
