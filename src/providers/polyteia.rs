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

use crate::token::{HttpClient, JsonTokenEndpoint, TokenCredentialBuilder};
use crate::{Credential, CredentialBuilder, CredentialError, Secret, TokenCredential};

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

/// Polyteia's SDK flow: exchange the personal access key for a short-lived token
/// (`POST {base}/rpc/auth/personalAccessKey/exchange` with `{"json": {"key", "organizationId"}}`,
/// answered by `{"json": {"token", "expiresAt", ...}}`), then send `Authorization: Bearer <token>`.
///
/// Which form of the exchange is live is not settled publicly, so the base URL and the path are
/// configurable. The token is refreshed ahead of its `expiresAt`.
///
/// ```
/// use bytes::Bytes;
/// use http_body_util::Full;
/// use hyper_util::{client::legacy::Client, rt::TokioExecutor};
/// use tower_api_auth::providers::polyteia;
///
/// let http = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
/// let tokens = polyteia::key_exchange("pak_123")
///     .organization_id("org_1")
///     .build(http)?;
/// # Ok::<(), tower_api_auth::CredentialError>(())
/// ```
pub fn key_exchange(key: impl Into<Secret>) -> KeyExchange {
    KeyExchange {
        key: key.into(),
        organization_id: None,
        base_url: BASE_URL.to_owned(),
        path: EXCHANGE_PATH.to_owned(),
    }
}

/// The exchange route, relative to the base URL.
pub const EXCHANGE_PATH: &str = "/rpc/auth/personalAccessKey/exchange";

/// Configuration of Polyteia's key exchange; see [`key_exchange`].
#[derive(Debug, Clone)]
pub struct KeyExchange {
    key: Secret,
    organization_id: Option<String>,
    base_url: String,
    path: String,
}

impl KeyExchange {
    /// The organization the key belongs to, sent with the exchange.
    pub fn organization_id(mut self, id: impl Into<String>) -> Self {
        self.organization_id = Some(id.into());
        self
    }

    /// Where Polyteia is (default [`BASE_URL`]): both the exchange endpoint and the only origin
    /// the token is sent to. It may carry a path prefix (a gateway), put before
    /// [`path`](Self::path).
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// The exchange route (default [`EXCHANGE_PATH`]).
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// A [`TokenCredentialBuilder`] exchanging through `http`, for tuning before
    /// [`build`](TokenCredentialBuilder::build). Requests also get
    /// `Content-Type: application/json` when they have none, as with [`access_key`]. A refused
    /// exchange is an [`EndpointError`](crate::token::EndpointError) with Polyteia's message;
    /// a 401 or 403 is [`Unrecoverable`](crate::token::Unrecoverable).
    pub fn token_builder(self, http: impl HttpClient) -> TokenCredentialBuilder {
        let url = format!("{}{}", self.base_url.trim_end_matches('/'), self.path);
        let organization = self.organization_id.unwrap_or_default();
        let body = match organization.as_str() {
            "" => serde_json::json!({}),
            id => serde_json::json!({ "json": { "organizationId": id } }),
        };
        JsonTokenEndpoint::new(url, self.key)
            .body(body)
            .secret_at("/json/key")
            .token_at("/json/token")
            .expires_at("/json/expiresAt")
            .identity("polyteia", organization)
            .token_builder(http)
            .default_header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .origin(self.base_url)
            .classifier(classifier())
    }

    /// Builds the token credential with the default tuning; nothing is fetched yet.
    pub fn build(self, http: impl HttpClient) -> Result<TokenCredential, CredentialError> {
        self.token_builder(http).build()
    }
}

/// Classifies Polyteia's responses by status (401 rejected key, 403 forbidden, 429, 5xx), reading
/// the `detail`/`error` message of a failure; see [`crate::outcome`].
pub fn classifier() -> crate::outcome::StatusClassifier {
    crate::outcome::StatusClassifier::new().provider("polyteia")
}
