//! Loopback stand-ins of the four APIs that [`tower-api-auth`](tower_api_auth) has presets for
//! (Akkio, Polyteia, Erathos, Akool), for tests and examples that must run offline.
//!
//! Each stand-in is an HTTP server on `127.0.0.1` with a port of its own (so each has an origin
//! of its own, as the real APIs do). It checks credentials the way its provider documents, with
//! `tower-api-auth`'s own [server side](tower_api_auth::server) (so client and server test each
//! other), answers like the provider does (Akool with HTTP 200 and a body code), and records
//! what it received, refused requests included, so a test can assert on the headers that
//! arrived. It stops when dropped.
//!
//! Add it to your tests, next to `tower-api-auth`:
//!
//! ```toml
//! [dev-dependencies]
//! tower-api-auth-mock = "0.1"
//! ```
//!
//! A client with Akkio's credential, against the Akkio stand-in:
//!
//! ```
//! use bytes::Bytes;
//! use http::Request;
//! use http_body_util::Empty;
//! use hyper_util::client::legacy::Client;
//! use hyper_util::rt::TokioExecutor;
//! use tower::{ServiceBuilder, ServiceExt};
//! use tower_api_auth::AuthLayer;
//! use tower_api_auth::providers::akkio;
//! use tower_api_auth_mock::{MockServer, Provider};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let api = MockServer::start(Provider::Akkio).await?;
//! api.accept_key("akkio-test-key");
//!
//! let credential = akkio::api_key("akkio-test-key")
//!     .origin(&api.base_url())
//!     .build()?;
//! let client = ServiceBuilder::new()
//!     .layer(AuthLayer::new(credential))
//!     .service(Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>());
//!
//! let url = format!("{}/api/v1/models", api.base_url());
//! let response = client.oneshot(Request::get(url).body(Empty::new())?).await?;
//! assert_eq!(response.status(), 200);
//!
//! // What arrived at the stand-in, as it arrived.
//! let received = api.requests();
//! assert_eq!(received.len(), 1);
//! assert_eq!(received[0].uri.path(), "/api/v1/models");
//! assert_eq!(received[0].headers["x-api-key"], "akkio-test-key");
//! # Ok(())
//! # }
//! ```
//!
//! [`MockProviders::start`] starts all four at once, each on its own port.
//!
//! # What each stand-in answers
//!
//! On every path but its token endpoint (any path is "the API": a test picks the path its
//! client would call, and reads it back from [`MockServer::requests`]):
//!
//! | provider | credential | missing or unknown | forbidden | success |
//! |---|---|---|---|---|
//! | Akkio | `X-API-Key` | 401 `{"error"}` | 403 under `/api/v1/restricted` | 200 JSON |
//! | Polyteia | `Authorization: Bearer`, JSON content type required (else 415) | 401 `{"error"}` | 403 for `{"query": "restricted"}` | 200 `{"data"}` |
//! | Erathos | `Authorization: Api-Key` | 401 `{"detail"}` | 403 for workspace `restricted` | 200 JSON |
//! | Akool | `x-api-key` or `Authorization: Bearer`; both at once is refused, as a stale token would win at Akool | 200 `{"code": 1102}` / `{"code": 1101}` | 200 `{"code": 1200}` for banned keys | 200 `{"code": 1000}` |
//!
//! Keys are accepted with [`MockServer::accept_key`], and stop being accepted with
//! [`MockServer::revoke_key`] and [`MockServer::ban_key`].
//!
//! # Token endpoints
//!
//! Each counts every call ([`MockServer::token_request_count`]):
//!
//! - Akool: `POST /api/open/v3/getToken` with `{"clientId", "clientSecret"}` (an accepted key as
//!   the secret) answers `{"code": 1000, "token"}`, a token without an expiry (Akool's last over
//!   a year); a wrong secret gets code 1101.
//! - Polyteia: `POST /rpc/auth/personalAccessKey/exchange` with `{"json": {"key"}}` answers
//!   `{"json": {"token", "expiresAt", ...}}` (one hour, or [`MockServer::set_token_ttl`]); a
//!   wrong key gets 401.
//!
//! Issued tokens are accepted as `Authorization: Bearer` until [`MockServer::expire_tokens`];
//! [`MockServer::set_token_fault`] makes the endpoint fail in the ways of [`TokenFault`].
//!
//! # Requests in flight
//!
//! [`MockServer::hold`] keeps the next requests at the stand-in until the test releases them
//! ([`Hold`]), so a test can change the stand-in (expire its tokens, say) while a known number
//! of requests is in flight, without sleeping.
//!
//! # Redirects
//!
//! Every stand-in also answers `GET /_mock/redirect?to=<url>` with a `307` to `url`, to test
//! what a credential does across redirects.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(unreachable_pub, rust_2018_idioms, clippy::todo, clippy::dbg_macro)]

/// The README's example, compiled and run as a doctest so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

mod fault;
mod hold;
mod providers;
mod server;
mod state;

pub use self::fault::TokenFault;
pub use self::hold::Hold;
pub use self::server::{MockProviders, MockServer, Provider};
pub use self::state::RecordedRequest;
