//! Classification: one typed [`Outcome`] for every response, from its status and, where a
//! provider reports failures in the body (Akool's `{"code": 1101}` in an HTTP 200), its JSON
//! body.
//!
//! ```
//! use bytes::Bytes;
//! use http::{Request, Response};
//! use http_body_util::{BodyExt, Full};
//! use tower::{Service, ServiceBuilder, ServiceExt};
//! use tower_api_auth::ClassifyLayer;
//! use tower_api_auth::outcome::{Outcome, OutcomeKind};
//! use tower_api_auth::providers::akool;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), tower::BoxError> {
//! // Akool says "token expired" with HTTP 200 and a body code.
//! let akool_api = tower::service_fn(|_: Request<Full<Bytes>>| async {
//!     let body = r#"{"code":1101,"msg":"Invalid authorization or The request token has expired"}"#;
//!     Response::builder()
//!         .header("content-type", "application/json")
//!         .body(Full::new(Bytes::from_static(body.as_bytes())))
//! });
//! let mut client = ServiceBuilder::new()
//!     .layer(ClassifyLayer::new(akool::classifier()))
//!     .service(akool_api);
//!
//! let response = client.ready().await?.call(Request::new(Full::default())).await?;
//! let outcome = response.extensions().get::<Outcome>().unwrap().clone();
//! assert_eq!(outcome.kind(), OutcomeKind::CredentialRejected);
//! assert_eq!(outcome.code(), Some(1101));
//! assert!(outcome.refetch_warranted() && !outcome.retry_warranted());
//!
//! // The caller still reads the whole body, byte for byte.
//! let body = response.into_body().collect().await?.to_bytes();
//! assert!(body.starts_with(br#"{"code":1101"#));
//! # Ok(())
//! # }
//! ```
//!
//! - [`Classifier`]: what varies per provider; [`StatusClassifier`], [`EnvelopeClassifier`],
//!   their composition with [`Classifier::then`], and any closure.
//! - [`ClassifyLayer`](crate::ClassifyLayer): reads JSON bodies up to a limit (64 KiB by default), sized or chunked,
//!   hands the caller the identical body, and puts the outcome into the response's extensions.
//! - [`error_for_outcome`]: a failure as a [`ClassifiedError`], for `?` after the stack.
//! - [`RetryPolicy`]: a `tower::retry::Policy` for rate limits and transient failures.
//!
//! Presets: [`akool::classifier`](crate::providers::akool::classifier) (body codes) and the
//! status-based [`akkio`](crate::providers::akkio::classifier),
//! [`polyteia`](crate::providers::polyteia::classifier) and
//! [`erathos`](crate::providers::erathos::classifier) ones.

mod classifier;
mod counters;
mod error;
mod kind;
pub(crate) mod layer;
mod policy;

#[cfg(feature = "reqwest-middleware")]
pub(crate) use self::classifier::retry_after;
pub use self::classifier::{Classifier, EnvelopeClassifier, StatusClassifier, Then};
pub(crate) use self::counters::OutcomeCounters;
pub use self::error::{ClassifiedError, error_for_outcome};
pub use self::kind::{Outcome, OutcomeKind};
pub use self::layer::{DEFAULT_BODY_LIMIT, ResponseFuture};
pub use self::policy::RetryPolicy;
