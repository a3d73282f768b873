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

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::future::BoxFuture;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Request, Response, Uri};
use http_body::Body;
use http_body_util::Full;
use tower::{BoxError, Service};

use crate::token::http::post_json;
use crate::token::{Token, TokenCredential, TokenCredentialBuilder, TokenSource, Unrecoverable};
use crate::{Credential, CredentialBuilder, CredentialError, Secret};

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
    /// `Content-Type: application/json` when they have none, as with [`access_key`].
    pub fn token_builder<S, B>(self, http: S) -> TokenCredentialBuilder
    where
        S: Service<Request<Full<Bytes>>, Response = Response<B>> + Clone + Send + Sync + 'static,
        S::Future: Send,
        S::Error: Into<BoxError>,
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        let url = format!("{}{}", self.base_url.trim_end_matches('/'), self.path);
        // A personal access key that could never be valid fails at `build`, not at the first
        // request.
        let checked = crate::credential::check_secret(self.key.expose().as_bytes());
        // A token store keys tokens by the key, the organization and the exchange endpoint.
        #[cfg(feature = "token-store")]
        let identity = (
            self.organization_id.clone().unwrap_or_default(),
            url.clone(),
            self.key.clone(),
        );
        let body = ExchangeBody {
            json: ExchangeKey {
                key: self.key,
                organization_id: self.organization_id,
            },
        };
        let source = Exchange {
            url,
            body: Arc::new(body),
            http,
        };
        let builder = TokenCredential::builder(source)
            .default_header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .origin(self.base_url)
            .classifier(classifier());
        #[cfg(feature = "token-store")]
        let builder = builder.preset_identity("polyteia", &identity.0, &identity.1, &identity.2);
        match checked {
            Ok(()) => builder,
            Err(err) => builder.fail(err),
        }
    }

    /// Builds the token credential with the default tuning; nothing is fetched yet.
    pub fn build<S, B>(self, http: S) -> Result<TokenCredential, CredentialError>
    where
        S: Service<Request<Full<Bytes>>, Response = Response<B>> + Clone + Send + Sync + 'static,
        S::Future: Send,
        S::Error: Into<BoxError>,
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        self.token_builder(http).build()
    }
}

struct Exchange<S> {
    url: String,
    body: Arc<ExchangeBody>,
    http: S,
}

#[derive(serde::Serialize)]
struct ExchangeBody {
    json: ExchangeKey,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct ExchangeKey {
    #[serde(serialize_with = "expose")]
    key: Secret,
    #[serde(skip_serializing_if = "Option::is_none")]
    organization_id: Option<String>,
}

fn expose<S: serde::Serializer>(secret: &Secret, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(secret.expose())
}

#[derive(serde::Deserialize)]
struct ExchangeAnswer {
    json: ExchangedToken,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExchangedToken {
    token: String,
    #[serde(default)]
    expires_at: Option<serde_json::Value>,
}

/// Polyteia refused the exchange: the HTTP status and its `error` message, never the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Polyteia key exchange answered HTTP {status}{}", .message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
#[non_exhaustive]
pub struct ExchangeError {
    /// The HTTP status of the answer.
    pub status: u16,
    /// The `error` (or `message`) field of the answer, if any.
    pub message: Option<String>,
}

impl<S, B> TokenSource for Exchange<S>
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>> + Clone + Send + Sync + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    fn fetch(&self) -> BoxFuture<'static, Result<Token, BoxError>> {
        let http = self.http.clone();
        let url = self.url.clone();
        let body = Arc::clone(&self.body);
        Box::pin(async move {
            let uri: Uri = url.parse()?;
            let (status, answer) = post_json(http, uri, serde_json::to_vec(&*body)?).await?;
            if !status.is_success() {
                let message = serde_json::from_slice::<serde_json::Value>(&answer)
                    .ok()
                    .and_then(|v| {
                        let field = v.get("error").or_else(|| v.get("message"))?;
                        field.as_str().map(str::to_owned)
                    })
                    // An endpoint that echoes the request must not put the key in an error.
                    .map(|message| body.json.key.redact_from(message));
                let err = ExchangeError {
                    status: status.as_u16(),
                    message,
                };
                // A key that is refused (401) or not allowed to exchange (403) stays so.
                return Err(match status.as_u16() {
                    401 | 403 => Unrecoverable::new(err).into(),
                    _ => err.into(),
                });
            }
            let answer: ExchangeAnswer = serde_json::from_slice(&answer)
                .map_err(|err| format!("key exchange answer is not the expected JSON: {err}"))?;
            if answer.json.token.is_empty() {
                return Err("key exchange answered without a token".into());
            }
            let expires_at = answer.json.expires_at.as_ref().and_then(expires_at);
            let token = Token::new(answer.json.token);
            Ok(match expires_at {
                Some(at) => token.expires_at(at),
                None => token,
            })
        })
    }
}

/// `expiresAt` as RFC 3339 text, or as seconds or milliseconds since the epoch.
fn expires_at(value: &serde_json::Value) -> Option<SystemTime> {
    match value {
        serde_json::Value::String(text) => humantime::parse_rfc3339_weak(text).ok(),
        serde_json::Value::Number(n) => {
            let n = n.as_u64()?;
            // Seconds until the year 5138; beyond that, milliseconds.
            let duration = if n < 100_000_000_000 {
                Duration::from_secs(n)
            } else {
                Duration::from_millis(n)
            };
            SystemTime::UNIX_EPOCH.checked_add(duration)
        }
        _ => None,
    }
}

/// Classifies Polyteia's responses by status (401 rejected key, 403 forbidden, 429, 5xx), reading
/// the `detail`/`error` message of a failure; see [`crate::classify`].
pub fn classifier() -> crate::classify::StatusClassifier {
    crate::classify::StatusClassifier::new().provider("polyteia")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_at_reads_rfc3339_and_epoch_numbers() {
        let at = |secs| SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
        let cases = [
            (
                serde_json::json!("2033-05-18T03:33:20Z"),
                Some(at(2_000_000_000)),
            ),
            (serde_json::json!(2_000_000_000u64), Some(at(2_000_000_000))),
            (
                serde_json::json!(2_000_000_000_000u64),
                Some(at(2_000_000_000)),
            ),
            (serde_json::json!("next tuesday"), None),
            (serde_json::json!(-5), None),
            (serde_json::json!(null), None),
        ];
        for (value, expected) in cases {
            assert_eq!(expires_at(&value), expected, "{value}");
        }
    }
}
