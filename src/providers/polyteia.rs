//! [Polyteia](https://docs.polyteia.com): `Authorization: Bearer <personal access key>` and
//! `Content-Type: application/json` on every call to its single `POST /api` endpoint.
//!
//! Personal access keys expire and can be deleted; [`Credential::rotate`] swaps a key without
//! a restart. 401 means an invalid or missing key, 403 a valid key without permission.
//!
//! ```
//! use tower_api_auth::providers::polyteia;
//!
//! let credential = polyteia::access_key("pak_123").build()?;
//! assert_eq!(credential.placement().scheme(), Some("Bearer"));
//!
//! // Later, when the key is replaced:
//! credential.rotate("pak_456")?;
//! # Ok::<(), tower_api_auth::CredentialError>(())
//! ```

use http::header::{CONTENT_TYPE, HeaderValue};

use crate::{Credential, CredentialBuilder, Secret};

/// Polyteia's API origin (the endpoint is `POST {BASE_URL}/api`).
pub const BASE_URL: &str = "https://app.polyteia.com";

/// `Authorization: Bearer <personal access key>`, scoped to [`BASE_URL`], adding
/// `Content-Type: application/json` to requests that carry no content type (a caller's own is
/// kept).
pub fn access_key(key: impl Into<Secret>) -> CredentialBuilder {
    Credential::bearer(key)
        .default_header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
        .default_origin(BASE_URL)
}
