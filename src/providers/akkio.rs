//! [Akkio](https://docs.akkio.com): `X-API-Key: <key>` on every request.
//!
//! Akkio answers 401 when the key is missing or wrong, and 403 when the key's organization has
//! no access to the resource. A key with leading or trailing spaces fails upstream; here it is
//! refused when the credential is built.
//!
//! ```
//! use tower::ServiceBuilder;
//! use tower_api_auth::AuthLayer;
//! use tower_api_auth::providers::akkio;
//!
//! let credential = akkio::api_key("akkio-key").build()?;
//! assert_eq!(credential.placement().header_name(), "x-api-key");
//! assert_eq!(credential.origins().unwrap()[0].to_string(), "https://api.akkio.com:443");
//!
//! assert!(akkio::api_key(" akkio-key").build().is_err());
//!
//! let layer = AuthLayer::new(credential);
//! # let client = tower::service_fn(|_: http::Request<()>| async { Ok::<_, std::convert::Infallible>(()) });
//! let client = ServiceBuilder::new().layer(layer).service(client);
//! # Ok::<(), tower_api_auth::CredentialError>(())
//! ```

use http::HeaderName;

use crate::{Credential, CredentialBuilder, Secret};

/// Akkio's API origin.
pub const BASE_URL: &str = "https://api.akkio.com";

/// `X-API-Key: <key>`, scoped to [`BASE_URL`].
pub fn api_key(key: impl Into<Secret>) -> CredentialBuilder {
    Credential::header(HeaderName::from_static("x-api-key"), key).default_origin(BASE_URL)
}

/// Classifies Akkio's responses by status (401 rejected key, 403 forbidden, 429, 5xx), reading
/// the `detail`/`error` message of a failure; see [`crate::outcome`].
pub fn classifier() -> crate::outcome::StatusClassifier {
    crate::outcome::StatusClassifier::new().provider("akkio")
}
