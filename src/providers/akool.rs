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

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::future::BoxFuture;
use http::header::AUTHORIZATION;
use http::{HeaderName, Request, Response, Uri};
use http_body::Body;
use http_body_util::Full;
use tower::{BoxError, Service};

use crate::classify::{Classifier, EnvelopeClassifier, OutcomeKind, StatusClassifier, Then};
use crate::token::http::post_json;
use crate::token::{Token, TokenCredential, TokenCredentialBuilder, TokenSource, Unrecoverable};
use crate::{Credential, CredentialBuilder, CredentialError, Secret};

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
    /// replays. An empty client id or an invalid secret fails at `build`.
    pub fn token_builder<S, B>(self, http: S) -> TokenCredentialBuilder
    where
        S: Service<Request<Full<Bytes>>, Response = Response<B>> + Clone + Send + Sync + 'static,
        S::Future: Send,
        S::Error: Into<BoxError>,
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        let origin = self.base_url.clone();
        let token_url = format!(
            "{}/api/open/v3/getToken",
            self.base_url.trim_end_matches('/')
        );
        // A token store keys tokens by the client id and secret and the token endpoint.
        #[cfg(feature = "token-store")]
        let identity = (
            self.client_id.clone(),
            token_url.clone(),
            self.client_secret.clone(),
        );
        let source_body = Arc::new(GetTokenBody {
            client_id: self.client_id,
            client_secret: self.client_secret,
        });
        let source = GetToken {
            token_url,
            body: Arc::clone(&source_body),
            http,
        };
        let builder = TokenCredential::builder(source)
            .strip_header(HeaderName::from_static("x-api-key"))
            .origin(origin)
            .classifier(classifier());
        #[cfg(feature = "token-store")]
        let builder = builder.preset_identity("akool", &identity.0, &identity.1, &identity.2);
        match check_client(&source_body) {
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

/// The getToken call, as a [`TokenSource`].
struct GetToken<S> {
    token_url: String,
    body: Arc<GetTokenBody>,
    http: S,
}

struct GetTokenBody {
    client_id: String,
    client_secret: Secret,
}

/// Refuses, before anything is sent, a client id or secret that Akool could never accept.
fn check_client(body: &GetTokenBody) -> Result<(), CredentialError> {
    if body.client_id.trim().is_empty() {
        return Err(CredentialError::EmptyClientId);
    }
    crate::credential::check_secret(body.client_secret.expose().as_bytes())
}

impl serde::Serialize for GetTokenBody {
    fn serialize<Se: serde::Serializer>(&self, serializer: Se) -> Result<Se::Ok, Se::Error> {
        use serde::ser::SerializeStruct;
        let mut body = serializer.serialize_struct("GetTokenBody", 2)?;
        body.serialize_field("clientId", &self.client_id)?;
        body.serialize_field("clientSecret", self.client_secret.expose())?;
        body.end()
    }
}

#[derive(serde::Deserialize)]
struct GetTokenAnswer {
    code: i64,
    #[serde(default)]
    msg: Option<String>,
    #[serde(default)]
    token: Option<String>,
}

/// Akool refused to issue a token: its body code and message (with the client secret blanked
/// out, should Akool quote it), or the HTTP status and its reason phrase when the answer was not
/// an Akool envelope (the body is not quoted).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Akool getToken answered code {code}{}", .msg.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
#[non_exhaustive]
pub struct GetTokenError {
    /// Akool's body code (`1101`: invalid credentials, ...), or the HTTP status when the answer
    /// was not an Akool envelope.
    pub code: i64,
    /// Akool's message, if any.
    pub msg: Option<String>,
}

impl<S, B> TokenSource for GetToken<S>
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
        let url = self.token_url.clone();
        let body = Arc::clone(&self.body);
        Box::pin(async move {
            let uri: Uri = url.parse()?;
            let (status, answer) = post_json(http, uri, serde_json::to_vec(&*body)?).await?;
            let answer: GetTokenAnswer = serde_json::from_slice(&answer).map_err(|err| {
                if status.is_success() {
                    BoxError::from(format!("getToken answer is not Akool JSON: {err}"))
                } else {
                    BoxError::from(GetTokenError {
                        code: i64::from(status.as_u16()),
                        msg: status.canonical_reason().map(str::to_owned),
                    })
                }
            })?;
            if answer.code != SUCCESS {
                let err = GetTokenError {
                    code: answer.code,
                    // An endpoint that echoes the request must not put the secret in an error.
                    msg: answer.msg.map(|msg| body.client_secret.redact_from(msg)),
                };
                // Refused credentials stay refused however often they are sent.
                return Err(match err.code {
                    INVALID_CREDENTIALS | MISSING_CREDENTIALS => Unrecoverable::new(err).into(),
                    _ => err.into(),
                });
            }
            let token = answer
                .token
                .filter(|token| !token.is_empty())
                .ok_or("getToken answered code 1000 without a token")?;
            let expiry = jwt_expiry(&token);
            let token = Token::new(token);
            Ok(match expiry {
                Some(exp) => token.expires_at(exp),
                None => token,
            })
        })
    }
}

/// The `exp` claim of a JWT, read without verifying anything: it only schedules a refresh.
/// `None` when the token is not a JWT or has no usable `exp`.
fn jwt_expiry(token: &str) -> Option<SystemTime> {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    #[derive(serde::Deserialize)]
    struct Claims {
        exp: Option<u64>,
    }
    let payload = token.split('.').nth(1)?;
    let claims: Claims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(claims.exp?))
}

/// Akool's success code.
pub const SUCCESS: i64 = 1000;

/// Akool's "invalid authorization": from getToken, the client id or secret is wrong.
const INVALID_CREDENTIALS: i64 = 1101;

/// Akool's "authorization cannot be empty".
const MISSING_CREDENTIALS: i64 = 1102;

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
            .code(1101, OutcomeKind::CredentialRejected)
            .code(1102, OutcomeKind::CredentialMissing)
            .code(1009, OutcomeKind::Forbidden)
            .code(1200, OutcomeKind::Banned)
            .code(1005, OutcomeKind::RateLimited)
            .code(1108, OutcomeKind::Transient),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwt_expiry_is_read_when_present_and_ignored_otherwise() {
        use base64::Engine;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let jwt = |claims: &str| {
            format!(
                "{}.{}.sig",
                URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#),
                URL_SAFE_NO_PAD.encode(claims)
            )
        };
        assert_eq!(
            jwt_expiry(&jwt(r#"{"iat":1,"exp":2000000000}"#)),
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(2_000_000_000))
        );
        for token in [
            jwt(r#"{"iat":1}"#),
            jwt(r#"{"exp":"soon"}"#),
            jwt("not json"),
            "opaque-token".to_owned(),
            "a.!!!.c".to_owned(),
            String::new(),
        ] {
            assert_eq!(jwt_expiry(&token), None, "{token}");
        }
    }
}
