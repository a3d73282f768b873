//! A token endpoint that is sent JSON and answers JSON: what Akool's getToken and Polyteia's
//! key exchange are, and what the presets configure.

mod answer;

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Request, Response, Uri};
use http_body::Body;
use http_body_util::{BodyExt, Full, Limited};
use serde_json::Value;
use tower::{BoxError, Service, ServiceExt};

pub use self::answer::EndpointError;
use super::TokenCredentialBuilder;
use crate::{CredentialError, Secret, Token, TokenCredential, TokenSource};

/// Token answers are a few hundred bytes; anything past this is not a token answer.
const MAX_ANSWER: usize = 64 * 1024;

/// An HTTP client to fetch tokens through: any cloneable, thread-safe `tower::Service` of `http`
/// requests with a [`Full<Bytes>`] body (a hyper-util `Client`, a `reqwest::ReqwestService`
/// of this crate with feature `reqwest`, a `Buffer`, your own stack). Implemented for every such service: it only names the bound.
pub trait HttpClient:
    Service<
        Request<Full<Bytes>>,
        Response = Response<Self::ResponseBody>,
        Error: Into<BoxError>,
        Future: Send,
    > + Clone
    + Send
    + Sync
    + 'static
{
    /// The body of the client's responses.
    type ResponseBody: Body<Data: Send, Error: Into<BoxError>> + Send + 'static;
}

impl<S, B> HttpClient for S
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>, Error: Into<BoxError>, Future: Send>
        + Clone
        + Send
        + Sync
        + 'static,
    B: Body<Data: Send, Error: Into<BoxError>> + Send + 'static,
{
    type ResponseBody = B;
}

/// A token endpoint that is `POST`ed a JSON body holding the secret and answers JSON holding the
/// token: Akool's getToken and Polyteia's key exchange are two (their presets configure one),
/// and another API's takes a few lines.
///
/// Where things are is given as JSON pointers (RFC 6901: `/json/token`). The secret is put into
/// the body for each request and nowhere else, and blanked out of any message the endpoint sends
/// back. A refusal is an [`EndpointError`]; one that says the credentials are wrong (HTTP 401 or
/// 403, or one of the [`refused_codes`](Self::refused_codes)) is [`Unrecoverable`](super::Unrecoverable), so it is not
/// retried.
///
/// ```
/// use bytes::Bytes;
/// use http_body_util::Full;
/// use hyper_util::{client::legacy::Client, rt::TokioExecutor};
/// use tower_api_auth::token::JsonTokenEndpoint;
///
/// // POST {"grant": "api_key", "key": "<secret>"} to the endpoint; it answers
/// // {"access_token": "...", "expires_in": 3600}.
/// let http = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
/// let tokens = JsonTokenEndpoint::new("https://auth.example.com/token", "the-api-key")
///     .body(serde_json::json!({ "grant": "api_key" }))
///     .secret_at("/key")
///     .token_at("/access_token")
///     .expires_in_at("/expires_in")
///     .token_builder(http)
///     .origin("https://api.example.com")
///     .build()?;
/// assert_eq!(tokens.generation(), None); // fetched on first use
/// # Ok::<(), tower_api_auth::CredentialError>(())
/// ```
#[derive(Clone)]
pub struct JsonTokenEndpoint {
    url: String,
    secret: Secret,
    body: Value,
    secret_at: String,
    token_at: String,
    expiry: Expiry,
    envelope: Option<Envelope>,
    refused_codes: Vec<i64>,
    message_at: Vec<String>,
    /// What a token store keys this endpoint's tokens by, besides the URL and the secret.
    #[cfg_attr(not(feature = "token-store"), allow(dead_code))]
    identity: (&'static str, String),
}

impl fmt::Debug for JsonTokenEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL as errors show it: no userinfo, no query (either may hold a credential).
        let url = match self.url.parse::<Uri>() {
            Ok(uri) => answer::shown(&uri),
            Err(_) => "[not a URL]".to_owned(),
        };
        f.debug_struct("JsonTokenEndpoint")
            .field("url", &url)
            .field("secret", &self.secret)
            .field("secret_at", &self.secret_at)
            .field("token_at", &self.token_at)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
enum Expiry {
    Unknown,
    At(String),
    In(String),
    Jwt,
}

#[derive(Debug, Clone)]
struct Envelope {
    code_at: String,
    success: i64,
}

impl JsonTokenEndpoint {
    /// An endpoint at `url` that is sent `{"key": <secret>}` and answers
    /// `{"access_token": ..}`, until told otherwise.
    pub fn new(url: impl Into<String>, secret: impl Into<Secret>) -> Self {
        Self {
            url: url.into(),
            secret: secret.into(),
            body: Value::Object(Default::default()),
            secret_at: "/key".to_owned(),
            token_at: "/access_token".to_owned(),
            expiry: Expiry::Unknown,
            envelope: None,
            refused_codes: Vec::new(),
            message_at: ["/error", "/message"].map(str::to_owned).into(),
            identity: ("json", String::new()),
        }
    }

    /// The rest of the request body, an object: the secret is put into it at
    /// [`secret_at`](Self::secret_at).
    pub fn body(mut self, body: Value) -> Self {
        self.body = body;
        self
    }

    /// Where the secret goes in the request body (default `/key`); objects on the way are created.
    pub fn secret_at(mut self, pointer: impl Into<String>) -> Self {
        self.secret_at = pointer.into();
        self
    }

    /// Where the token is in the answer (default `/access_token`).
    pub fn token_at(mut self, pointer: impl Into<String>) -> Self {
        self.token_at = pointer.into();
        self
    }

    /// Where the token's expiry time is in the answer: an RFC 3339 time, or seconds or
    /// milliseconds since the Unix epoch. Without an expiry, a token is used until it is rejected.
    pub fn expires_at(mut self, pointer: impl Into<String>) -> Self {
        self.expiry = Expiry::At(pointer.into());
        self
    }

    /// Where the token's lifetime in seconds is in the answer (OAuth 2.0's `expires_in`).
    pub fn expires_in_at(mut self, pointer: impl Into<String>) -> Self {
        self.expiry = Expiry::In(pointer.into());
        self
    }

    /// The token is a JWT whose `exp` claim says when it expires (read, not verified: it only
    /// schedules the refresh).
    pub fn expiry_from_jwt(mut self) -> Self {
        self.expiry = Expiry::Jwt;
        self
    }

    /// The answer carries a status code of its own at `code_at`, and any code but `success` is
    /// a refusal, even in an HTTP 200 (Akool's `{"code": 1000, ..}`).
    pub fn envelope(mut self, code_at: impl Into<String>, success: i64) -> Self {
        self.envelope = Some(Envelope {
            code_at: code_at.into(),
            success,
        });
        self
    }

    /// Envelope codes that mean the credentials are wrong: such a refusal is [`Unrecoverable`](super::Unrecoverable).
    pub fn refused_codes(mut self, codes: impl IntoIterator<Item = i64>) -> Self {
        self.refused_codes.extend(codes);
        self
    }

    /// Where a refusal's message is in the answer (default `/error`, then `/message`): the first
    /// string found is the [`EndpointError::message`].
    pub fn message_at(mut self, pointers: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.message_at = pointers.into_iter().map(Into::into).collect();
        self
    }

    /// A preset's name and account for a token store's key (the URL and secret are added).
    pub(crate) fn identity(mut self, provider: &'static str, account: impl Into<String>) -> Self {
        self.identity = (provider, account.into());
        self
    }

    /// A [`TokenCredentialBuilder`] fetching from this endpoint through `http`; give it the
    /// origins the token is for. A URL that is not absolute, a pointer that does not start with
    /// `/`, or a body the secret cannot be put into fails at
    /// [`build`](TokenCredentialBuilder::build), as does an invalid secret.
    pub fn token_builder<S: HttpClient>(self, http: S) -> TokenCredentialBuilder {
        let (uri, failure) = match self.check() {
            Ok(uri) => (uri, None),
            Err(err) => (Uri::default(), Some(err)),
        };
        #[cfg(feature = "token-store")]
        let identity = (self.identity.clone(), self.url.clone(), self.secret.clone());
        let builder = TokenCredential::builder(Fetch {
            endpoint: Arc::new(self),
            uri,
            http,
        });
        #[cfg(feature = "token-store")]
        let builder = {
            let ((provider, account), url, secret) = identity;
            builder.preset_identity(provider, &account, &url, &secret)
        };
        match failure {
            None => builder,
            Some(err) => builder.fail(err),
        }
    }

    fn check(&self) -> Result<Uri, CredentialError> {
        let invalid = |reason| CredentialError::InvalidTokenEndpoint { reason };
        crate::credential::check_secret(self.secret.expose().as_bytes())?;
        let uri: Uri = self
            .url
            .parse()
            .map_err(|_| invalid("the URL is not valid"))?;
        if uri.scheme().is_none() || uri.authority().is_none() {
            return Err(invalid("the URL is not absolute"));
        }
        let pointers = [&self.secret_at, &self.token_at]
            .into_iter()
            .chain(&self.message_at)
            .chain(self.envelope.as_ref().map(|e| &e.code_at));
        let expiry = match &self.expiry {
            Expiry::At(at) | Expiry::In(at) => Some(at),
            Expiry::Unknown | Expiry::Jwt => None,
        };
        if pointers.chain(expiry).any(|p| !p.starts_with('/')) {
            return Err(invalid("a JSON pointer does not start with `/`"));
        }
        self.request_body()
            .map(drop)
            .map_err(|_| invalid("the secret cannot be put into the body at `secret_at`"))?;
        Ok(uri)
    }

    /// The body with the secret in place.
    fn request_body(&self) -> Result<Vec<u8>, &'static str> {
        let mut body = self.body.clone();
        let mut slot = &mut body;
        for key in self.secret_at.split('/').skip(1) {
            let key = key.replace("~1", "/").replace("~0", "~");
            slot = slot
                .as_object_mut()
                .ok_or("not an object")?
                .entry(key)
                .or_insert_with(|| Value::Object(Default::default()));
        }
        *slot = Value::String(self.secret.expose().to_owned());
        serde_json::to_vec(&body).map_err(|_| "not serialisable")
    }
}

/// The endpoint and the client, as a [`TokenSource`].
struct Fetch<S> {
    endpoint: Arc<JsonTokenEndpoint>,
    uri: Uri,
    http: S,
}

impl<S: HttpClient> TokenSource for Fetch<S> {
    fn fetch(&self) -> BoxFuture<'static, Result<Token, BoxError>> {
        let endpoint = Arc::clone(&self.endpoint);
        let uri = self.uri.clone();
        let http = self.http.clone();
        Box::pin(async move {
            let request = Request::post(uri.clone())
                .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                .body(Full::new(Bytes::from(endpoint.request_body()?)))?;
            let response = http.oneshot(request).await.map_err(Into::into)?;
            let status = response.status();
            let answer = Limited::new(response.into_body(), MAX_ANSWER)
                .collect()
                .await?
                .to_bytes();
            endpoint.read(&uri, status, &answer)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_is_put_at_its_pointer_and_nowhere_else() {
        let endpoint = JsonTokenEndpoint::new("https://auth.example.com/token", "s3cret")
            .body(serde_json::json!({ "json": { "organizationId": "org" } }))
            .secret_at("/json/key");
        let body: Value = serde_json::from_slice(&endpoint.request_body().unwrap()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({ "json": { "organizationId": "org", "key": "s3cret" } })
        );
        assert!(!format!("{endpoint:?}").contains("s3cret"));
        let with_userinfo = JsonTokenEndpoint::new("https://u:hunter2@a.example/t?k=k3y", "s");
        let printed = format!("{with_userinfo:?}");
        assert!(
            !printed.contains("hunter2") && !printed.contains("k3y"),
            "{printed}"
        );
    }

    #[test]
    fn a_bad_configuration_fails_at_build() {
        let base = || JsonTokenEndpoint::new("https://auth.example.com/token", "key");
        let http = tower::service_fn(|_: Request<Full<Bytes>>| async {
            Ok::<_, std::convert::Infallible>(Response::new(Full::<Bytes>::default()))
        });
        let cases = [
            ("relative URL", JsonTokenEndpoint::new("/token", "key")),
            ("pointer without slash", base().token_at("access_token")),
            (
                "secret into a string",
                base()
                    .body(serde_json::json!({"key": "x"}))
                    .secret_at("/key/inner"),
            ),
            ("body not an object", base().body(serde_json::json!([1]))),
        ];
        for (name, endpoint) in cases {
            let err = endpoint
                .token_builder(http)
                .any_origin()
                .build()
                .unwrap_err();
            assert!(
                matches!(err, CredentialError::InvalidTokenEndpoint { .. }),
                "{name}: {err:?}"
            );
        }
        let err = JsonTokenEndpoint::new("https://auth.example.com/token", "bad key")
            .token_builder(http)
            .any_origin()
            .build()
            .unwrap_err();
        assert!(matches!(err, CredentialError::Whitespace { .. }), "{err:?}");
    }
}
