//! [Akool](https://docs.akool.com): `x-api-key: <API key>` on every request.
//!
//! When a request carries both `Authorization` and `x-api-key`, Akool uses `Authorization` and
//! discards the key, so a stale bearer token would shadow a valid key: the preset removes any
//! `Authorization` header from the requests it authenticates.
//!
//! Akool reports failures in the body of an HTTP 200 (`{"code": 1101, ...}`); see the
//! response codes below.
//!
//! ```
//! use tower_api_auth::providers::akool;
//!
//! let credential = akool::api_key("akool-key").build()?;
//! assert_eq!(credential.placement().header_name(), "x-api-key");
//! # Ok::<(), tower_api_auth::CredentialError>(())
//! ```

use http::HeaderName;
use http::header::AUTHORIZATION;

use crate::{Credential, CredentialBuilder, Secret};

/// Akool's OpenAPI origin (routes live under `/api/open/v3/` and `/api/open/v4/`).
pub const BASE_URL: &str = "https://openapi.akool.com";

/// `x-api-key: <key>`, scoped to [`BASE_URL`], removing any `Authorization` header.
pub fn api_key(key: impl Into<Secret>) -> CredentialBuilder {
    Credential::header(HeaderName::from_static("x-api-key"), key)
        .strip_header(AUTHORIZATION)
        .default_origin(BASE_URL)
}
