//! [Erathos](https://docs.erathos.com): `Authorization: Api-Key <key>` (capital A and K, one
//! space) on calls under `/developers/workspaces/{workspace_id}/`.
//!
//! Keys may carry an expiration date; [`Credential::rotate`] swaps one without a restart.
//!
//! ```
//! use tower_api_auth::providers::erathos;
//!
//! let credential = erathos::api_key("erathos-key").build()?;
//! assert_eq!(credential.placement().scheme(), Some("Api-Key"));
//! # Ok::<(), tower_api_auth::CredentialError>(())
//! ```

use crate::{Credential, CredentialBuilder, Placement, Secret};

/// Erathos' API origin.
pub const BASE_URL: &str = "https://api.erathos.com";

/// `Authorization: Api-Key <key>`, scoped to [`BASE_URL`].
pub fn api_key(key: impl Into<Secret>) -> CredentialBuilder {
    Credential::builder(Placement::api_key(), key).default_origin(BASE_URL)
}

/// Classifies Erathos's responses by status (401 rejected key, 403 forbidden, 429, 5xx), reading
/// the `detail`/`error` message of a failure; see [`crate::outcome`].
pub fn classifier() -> crate::outcome::StatusClassifier {
    crate::outcome::StatusClassifier::new().provider("erathos")
}
