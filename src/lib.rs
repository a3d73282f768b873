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
//! # Modules
//!
//! - [`credential`]: the credential types, their validation and their origins.
//! - [`client`]: the layers for the outgoing side.
//! - [`token`]: fetched credentials (access tokens) and their cache.
//! - [`classify`]: typed outcomes of responses, the classify layer and a retry policy.
//! - [`providers`]: presets for Akkio, Polyteia, Erathos and Akool.
//! - [`server`] (feature `server`, on by default): validate incoming credentials against a key
//!   store, in axum apps and any tower server.
//! - [`mock`] (feature `mock`): loopback stand-ins of the four providers, for offline tests.
//!
//! # Feature flags
//!
//! - `server` (default): the [`server`] module (pulls in `sha2` and `subtle`).
//! - `axum`: the server side's `Principal` extractor for axum handlers.
//! - `mock`: the loopback stand-ins in [`mock`] (implies `axum`).

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(unreachable_pub, rust_2018_idioms, clippy::todo, clippy::dbg_macro)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod builder;
pub mod classify;
pub mod client;
pub mod credential;
#[cfg(feature = "mock")]
#[cfg_attr(docsrs, doc(cfg(feature = "mock")))]
pub mod mock;
pub mod providers;
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

/// The README's examples, compiled and run as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
