//! The incoming side: validate API keys and tokens, in axum apps and any tower server.
//!
//! ```
//! use http::{Request, Response, StatusCode};
//! use tower::{Service, ServiceBuilder, ServiceExt};
//! use tower_api_auth::{Placement, ValidateCredentialLayer};
//! use tower_api_auth::server::{KeyRecord, MemoryKeyStore, Principal};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let keys = MemoryKeyStore::new();
//! keys.insert("key-of-alice", KeyRecord::new(Principal::new("alice").with_scopes(["read"])));
//!
//! let mut app = ServiceBuilder::new()
//!     .layer(
//!         ValidateCredentialLayer::new(Placement::bearer(), keys.clone())
//!             .accept(Placement::header("x-api-key")?)
//!             .require_scopes(["read"]),
//!     )
//!     .service_fn(|request: Request<()>| async move {
//!         let principal = request.extensions().get::<Principal>().unwrap();
//!         Ok::<_, std::convert::Infallible>(Response::new(principal.id().to_owned()))
//!     });
//!
//! let request = Request::get("/").header("authorization", "Bearer key-of-alice").body(())?;
//! let response = app.ready().await?.call(request).await?;
//! assert_eq!(response.status(), StatusCode::OK);
//!
//! let request = Request::get("/").header("x-api-key", "wrong").body(())?;
//! let response = app.ready().await?.call(request).await?;
//! assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
//!
//! keys.revoke("key-of-alice");
//! let request = Request::get("/").header("authorization", "Bearer key-of-alice").body(())?;
//! let response = app.ready().await?.call(request).await?;
//! assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
//! # Ok(())
//! # }
//! ```
//!
//! # The pieces
//!
//! - [`ValidateCredentialLayer`](crate::ValidateCredentialLayer) reads the credential from the accepted [`Placement`](crate::Placement)s, looks
//!   its [`KeyDigest`] up in a [`KeyStore`], checks expiry, revocation and any
//!   [`Requirement`], and puts the [`Principal`] into the request's extensions. With the `axum`
//!   feature, handlers take the `Principal` as an extractor.
//! - [`MemoryKeyStore`] holds digests in memory, swapped atomically on change: no lock on the
//!   request path, changes visible to every request that starts after them. A closure is a
//!   key store too, for a database.
//! - [`Rejection`] says why a request was refused; [`RejectionResponse`] says how to answer:
//!   JSON with 401/403/503 (the default), Akool's envelope in an HTTP 200, or your own.
//!
//! # What a request must present
//!
//! Exactly one credential, in one of the accepted places. `Authorization` schemes are matched
//! case-insensitively and followed by exactly one space; the credential is 1 to
//! [`MAX_CREDENTIAL_LEN`] bytes of visible ASCII and compared exactly. Everything else is
//! refused:
//!
//! | request | rejection | JSON: status, `error` | Akool |
//! |---|---|---|---|
//! | no credential in an accepted place (another scheme counts as none) | [`Missing`](Rejection::Missing) | 401 `missing_credential` | 1102 |
//! | empty, spaces, tab, control or non-ASCII bytes, too long, repeated header, two credentials; with a `KeyFormat` (feature `key-format`), a wrong prefix, shape or checksum | [`Malformed`](Rejection::Malformed) | 401 `malformed_credential` | 1101 |
//! | not in the store | [`Unknown`](Rejection::Unknown) | 401 `invalid_credential` | 1101 |
//! | past its expiry | [`Expired`](Rejection::Expired) | 401 `expired_credential` | 1101 |
//! | revoked | [`Revoked`](Rejection::Revoked) | 401 `invalid_credential` | 1101 |
//! | a requirement does not hold | [`Forbidden`](Rejection::Forbidden) | 403 `forbidden` | 1009 |
//! | the store failed, or its outage policy refuses | [`Unavailable`](Rejection::Unavailable) | 503 `unavailable`, with `Retry-After` | 1108 |
//!
//! A 401 carries `WWW-Authenticate` with the accepted schemes (`Bearer error="invalid_token"`
//! once a credential was presented). A refusal is logged at `INFO` with its reason and, when
//! the key was known, its principal's id; the credential never is.
//!
//! The layer marks the headers it read the credential from sensitive, so what runs after it
//! (tower-http's `TraceLayer` recording headers, say) shows `Sensitive`, never the key. What
//! runs before it sees the request as the client sent it: put tower-http's
//! `SetSensitiveRequestHeadersLayer` outermost when a trace comes first.

#[cfg(feature = "axum")]
mod axum;
mod extract;
mod future;
#[cfg(feature = "key-format")]
mod key_format;
pub(crate) mod layer;
mod principal;
mod reject;
mod requirement;
pub(crate) mod service;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "postgres"))))]
pub mod sql;
mod store;

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use self::axum::MissingPrincipal;
pub use self::extract::MAX_CREDENTIAL_LEN;
pub use self::future::ResponseFuture;
#[cfg(feature = "key-format")]
#[cfg_attr(docsrs, doc(cfg(feature = "key-format")))]
pub use self::key_format::{KeyFormat, KeyFormatError, RANDOM_LEN};
pub use self::principal::{KeyRecord, Principal};
pub use self::reject::{Rejection, RejectionResponse};
pub use self::requirement::Requirement;
pub use self::store::{KeyDigest, KeyStore, MemoryKeyStore};
