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

use crate::outcome::{Classifier, EnvelopeClassifier, OutcomeKind, StatusClassifier, Then};
#[cfg(feature = "server")]
use crate::server::{Rejection, RejectionResponse};
use crate::token::{HttpClient, JsonTokenEndpoint, TokenCredentialBuilder};
use crate::{Credential, CredentialBuilder, CredentialError, Secret, TokenCredential};

/// Akool's OpenAPI origin (routes live under `/api/open/v3/` and `/api/open/v4/`).
pub const BASE_URL: &str = "https://openapi.akool.com";

/// `x-api-key: <key>`, scoped to [`BASE_URL`], removing any `Authorization` header.
pub fn api_key(key: impl Into<Secret>) -> CredentialBuilder {
    Credential::header(HeaderName::from_static("x-api-key"), key)
        .strip_header(AUTHORIZATION)
        .default_origin(BASE_URL)
}

/// Akool's legacy client-credentials flow: `POST {base}/api/open/v3/getToken` with the client id
/// and secret, then `Authorization: Bearer <token>` on every call.
///
/// ```
/// use bytes::Bytes;
/// use http_body_util::Full;
/// use hyper_util::{client::legacy::Client, rt::TokioExecutor};
/// use tower_api_auth::providers::akool;
///
/// let http = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
/// let tokens = akool::client_credentials("client-id", "client-secret")
///     .base_url("http://127.0.0.1:8080")
///     .build(http)?;
/// assert_eq!(tokens.generation(), None); // fetched on first use
/// # Ok::<(), tower_api_auth::CredentialError>(())
/// ```
pub fn client_credentials(
    client_id: impl Into<String>,
    client_secret: impl Into<Secret>,
) -> ClientCredentials {
    ClientCredentials {
        client_id: client_id.into(),
        client_secret: client_secret.into(),
        base_url: BASE_URL.to_owned(),
    }
}

/// Configuration of Akool's client-credentials flow; see [`client_credentials`].
#[derive(Debug, Clone)]
pub struct ClientCredentials {
    client_id: String,
    client_secret: Secret,
    base_url: String,
}

impl ClientCredentials {
    /// Where Akool is (default [`BASE_URL`]): both the token endpoint and the only origin the
    /// token is sent to. It may carry a path prefix (a gateway): `https://gw.example/akool`
    /// fetches from `https://gw.example/akool/api/open/v3/getToken`.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// A [`TokenCredentialBuilder`] fetching through `http` (a hyper-util client, say), for
    /// tuning refresh, timeouts or backoff before [`build`](TokenCredentialBuilder::build).
    /// The token goes in `Authorization: Bearer`, and `x-api-key` is removed so that the two
    /// never travel together. A token is taken as rejected on a `401` or on code 1101 in the
    /// body ([`classifier`]), so [`TokenAuthLayer`](crate::TokenAuthLayer) alone refetches and
    /// replays. getToken refusing the client (code 1101 or 1102) is
    /// [`Unrecoverable`](crate::token::Unrecoverable); every refusal is an
    /// [`EndpointError`](crate::token::EndpointError) with Akool's code. An empty client id or
    /// an invalid secret fails at `build`.
    pub fn token_builder(self, http: impl HttpClient) -> TokenCredentialBuilder {
        let token_url = format!(
            "{}/api/open/v3/getToken",
            self.base_url.trim_end_matches('/')
        );
        let empty_id = self.client_id.trim().is_empty();
        let builder = JsonTokenEndpoint::new(token_url, self.client_secret)
            .body(serde_json::json!({ "clientId": self.client_id }))
            .secret_at("/clientSecret")
            .token_at("/token")
            .expiry_from_jwt()
            .envelope("/code", SUCCESS)
            .refused_codes([INVALID_CREDENTIALS, MISSING_CREDENTIALS])
            .message_at(["/msg"])
            .identity("akool", self.client_id)
            .token_builder(http)
            .strip_header(HeaderName::from_static("x-api-key"))
            .origin(self.base_url)
            .classifier(classifier());
        match empty_id {
            true => builder.fail(CredentialError::EmptyClientId),
            false => builder,
        }
    }

    /// Builds the token credential with the default tuning; nothing is fetched yet.
    pub fn build(self, http: impl HttpClient) -> Result<TokenCredential, CredentialError> {
        self.token_builder(http).build()
    }
}

/// Akool's success code.
pub const SUCCESS: i64 = 1000;

/// Akool's "invalid authorization": from getToken, the client id or secret is wrong; from the
/// API, the token expired or is not valid.
const INVALID_CREDENTIALS: i64 = 1101;

/// Akool's "authorization cannot be empty".
const MISSING_CREDENTIALS: i64 = 1102;

/// Akool's "you do not have permission".
const FORBIDDEN: i64 = 1009;

/// Akool's "service busy".
const BUSY: i64 = 1108;

/// Classifies Akool's responses: by status first, then by the body's `{"code", "msg"}`
/// envelope, since Akool reports failures in the body of an HTTP 200.
///
/// | code | outcome |
/// |---|---|
/// | 1000 | success |
/// | 1101 | credential expired or invalid (refetch the token, replay once) |
/// | 1102 | credential missing |
/// | 1009 | forbidden |
/// | 1200 | account banned |
/// | 1005 | rate limited |
/// | 1108 | transient |
/// | 1003, 1006, 1008, any other | client error |
pub fn classifier() -> Then<StatusClassifier, EnvelopeClassifier> {
    StatusClassifier::new().provider("akool").then(
        EnvelopeClassifier::new("code", SUCCESS)
            .message_field("msg")
            .provider("akool")
            .code(INVALID_CREDENTIALS, OutcomeKind::CredentialRejected)
            .code(MISSING_CREDENTIALS, OutcomeKind::CredentialMissing)
            .code(FORBIDDEN, OutcomeKind::Forbidden)
            .code(1200, OutcomeKind::Banned)
            .code(1005, OutcomeKind::RateLimited)
            .code(BUSY, OutcomeKind::Transient),
    )
}

/// Akool's code for a refusal of the server side, as Akool's API answers: 1102 missing, 1101
/// malformed, unknown, expired or revoked alike (a key-guesser must not learn which keys were
/// ever issued), 1009 forbidden, 1108 key store unavailable.
#[cfg(feature = "server")]
#[cfg_attr(docsrs, doc(cfg(feature = "server")))]
pub fn refusal_code(rejection: Rejection) -> i64 {
    match rejection {
        Rejection::Missing => MISSING_CREDENTIALS,
        Rejection::Forbidden => FORBIDDEN,
        Rejection::Unavailable => BUSY,
        _ => INVALID_CREDENTIALS,
    }
}

/// Refusals answered as Akool answers them, for a
/// [`ValidateCredentialLayer`](crate::ValidateCredentialLayer) fronting an Akool-compatible
/// service: HTTP 200 and `{"code": <refusal_code>, "msg": <Akool's wording>}`.
///
/// ```
/// use tower_api_auth::providers::akool;
/// use tower_api_auth::server::MemoryKeyStore;
/// use tower_api_auth::{Placement, ValidateCredentialLayer};
///
/// let layer = ValidateCredentialLayer::new(Placement::header("x-api-key")?, MemoryKeyStore::new())
///     .reject_with(akool::rejection_response());
/// # let _ = layer;
/// # Ok::<(), tower_api_auth::CredentialError>(())
/// ```
#[cfg(feature = "server")]
#[cfg_attr(docsrs, doc(cfg(feature = "server")))]
pub fn rejection_response() -> RejectionResponse {
    RejectionResponse::json_with(|rejection| {
        let code = refusal_code(rejection);
        let msg = match code {
            MISSING_CREDENTIALS => "Authorization cannot be empty",
            INVALID_CREDENTIALS => "Invalid authorization or The request token has expired",
            FORBIDDEN => "You do not have permission to perform this action",
            _ => "Service busy, please try again later",
        };
        let body = serde_json::json!({ "code": code, "msg": msg });
        (http::StatusCode::OK, body)
    })
}
