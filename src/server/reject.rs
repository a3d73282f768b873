//! Why a request is refused, and the response that says so.

use std::fmt;
use std::sync::{Arc, LazyLock};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderValue, Response, StatusCode};
use http_body_util::Full;

/// Why [`ValidateCredential`](crate::ValidateCredential) refused a request.
///
/// `Display` gives the precise reason, for logs; the response tells the client less (an unknown
/// and a revoked key look the same to it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Rejection {
    /// No credential in any accepted place (401).
    Missing,
    /// A credential in an accepted place, but not one that can be valid (401): empty, with
    /// whitespace or control characters, not ASCII, too long, a wrong delimiter after the
    /// scheme, the header repeated, or two credentials in one request.
    Malformed,
    /// The store does not know the credential (401).
    Unknown,
    /// The credential's expiry has passed (401).
    Expired,
    /// The credential was revoked (401).
    Revoked,
    /// The credential is valid, but its principal may not make this request (403).
    Forbidden,
    /// The key store could not answer (503).
    Unavailable,
}

impl Rejection {
    /// Every rejection, in declaration order (`ALL[r as usize] == r`).
    pub(crate) const ALL: [Self; 7] = [
        Self::Missing,
        Self::Malformed,
        Self::Unknown,
        Self::Expired,
        Self::Revoked,
        Self::Forbidden,
        Self::Unavailable,
    ];

    /// The HTTP status of the default (JSON) response.
    pub fn status(self) -> StatusCode {
        match self {
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    /// The machine-readable `error` of the JSON response.
    pub fn error_code(self) -> &'static str {
        match self {
            Self::Missing => "missing_credential",
            Self::Malformed => "malformed_credential",
            Self::Unknown | Self::Revoked => "invalid_credential",
            Self::Expired => "expired_credential",
            Self::Forbidden => "forbidden",
            Self::Unavailable => "unavailable",
        }
    }

    /// The `message` of the JSON response, for the client.
    pub fn public_message(self) -> &'static str {
        match self {
            Self::Missing => "no credential was presented",
            Self::Malformed => "the credential is malformed",
            Self::Unknown | Self::Revoked => "the credential is not valid",
            Self::Expired => "the credential has expired",
            Self::Forbidden => "the credential does not allow this request",
            Self::Unavailable => "credentials cannot be checked right now, try again later",
        }
    }

    /// The reason as a metric label.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Malformed => "malformed",
            Self::Unknown => "unknown",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
            Self::Forbidden => "forbidden",
            Self::Unavailable => "unavailable",
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Missing => "no credential presented",
            Self::Malformed => "malformed credential",
            Self::Unknown => "unknown credential",
            Self::Expired => "expired credential",
            Self::Revoked => "revoked credential",
            Self::Forbidden => "credential not allowed this request",
            Self::Unavailable => "key store unavailable",
        })
    }
}

/// How a refused request is answered.
///
/// - [`json`](Self::json) (the default): the status of [`Rejection::status`], a body
///   `{"error": <error_code>, "message": <public_message>}`, and `WWW-Authenticate` on 401 when
///   an `Authorization` scheme is accepted.
/// - [`json_with`](Self::json_with): a status and a JSON body of your own per rejection, built
///   once (a provider's envelope: [`akool::rejection_response`](crate::providers::akool::rejection_response)
///   answers HTTP 200 with Akool's `{"code": 1101, "msg": ..}`).
/// - [`grpc`](Self::grpc): a gRPC trailers-only answer (`grpc-status` 16 unauthenticated, 7
///   permission denied, 14 unavailable), for a tonic server.
/// - [`custom`](Self::custom): any response built from the [`Rejection`].
#[derive(Clone)]
pub struct RejectionResponse(Style);

#[derive(Clone)]
enum Style {
    /// A status and a JSON body per rejection, indexed by `Rejection as usize`.
    Json(Bodies),
    Grpc,
    Custom(Arc<dyn Fn(Rejection) -> Response<Full<Bytes>> + Send + Sync>),
}

impl RejectionResponse {
    /// JSON with the rejection's status (the default).
    pub fn json() -> Self {
        Self(Style::Json(Arc::clone(&JSON)))
    }

    /// A JSON body and a status of your own for each rejection, serialised here, once: refusing
    /// a client that guesses keys costs no serialisation per request. `WWW-Authenticate` is
    /// added to a 401 as with [`json`](Self::json).
    ///
    /// ```
    /// use http::StatusCode;
    /// use tower_api_auth::server::{Rejection, RejectionResponse};
    ///
    /// // Every refusal as HTTP 200 with an envelope, as some APIs answer.
    /// let respond = RejectionResponse::json_with(|rejection: Rejection| {
    ///     let code = if rejection == Rejection::Forbidden { 403 } else { 401 };
    ///     (StatusCode::OK, serde_json::json!({ "code": code, "msg": rejection.public_message() }))
    /// });
    /// # let _ = respond;
    /// ```
    pub fn json_with<F>(respond: F) -> Self
    where
        F: Fn(Rejection) -> (StatusCode, serde_json::Value),
    {
        Self(Style::Json(serialise(respond)))
    }

    /// A gRPC error status in an HTTP 200 with no body, as gRPC servers answer.
    pub fn grpc() -> Self {
        Self(Style::Grpc)
    }

    /// The response `respond` builds. The layer adds nothing to it.
    pub fn custom<F>(respond: F) -> Self
    where
        F: Fn(Rejection) -> Response<Full<Bytes>> + Send + Sync + 'static,
    {
        Self(Style::Custom(Arc::new(respond)))
    }

    /// The response for `rejection`; `challenge` is the `WWW-Authenticate` value for a 401.
    pub(crate) fn respond(
        &self,
        rejection: Rejection,
        challenge: Option<&HeaderValue>,
    ) -> Response<Full<Bytes>> {
        let (status, body) = match &self.0 {
            Style::Custom(respond) => return respond(rejection),
            Style::Grpc => return grpc(rejection),
            Style::Json(bodies) => &bodies[rejection as usize],
        };
        let mut response = Response::new(Full::new(Bytes::clone(body)));
        *response.status_mut() = *status;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let (&StatusCode::UNAUTHORIZED, Some(challenge)) = (status, challenge) {
            headers.insert(WWW_AUTHENTICATE, challenge.clone());
        }
        response
    }
}

impl Default for RejectionResponse {
    fn default() -> Self {
        Self::json()
    }
}

impl fmt::Debug for RejectionResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.0 {
            Style::Json(_) => "RejectionResponse::Json",
            Style::Grpc => "RejectionResponse::Grpc",
            Style::Custom(_) => "RejectionResponse::Custom",
        })
    }
}

type Bodies = Arc<[(StatusCode, Bytes); 7]>;

fn serialise(respond: impl Fn(Rejection) -> (StatusCode, serde_json::Value)) -> Bodies {
    Arc::new(Rejection::ALL.map(|rejection| {
        let (status, body) = respond(rejection);
        (status, Bytes::from(body.to_string()))
    }))
}

/// The default JSON bodies, serialised once for every layer.
static JSON: LazyLock<Bodies> = LazyLock::new(|| {
    serialise(|rejection| {
        let body = serde_json::json!({
            "error": rejection.error_code(),
            "message": rejection.public_message(),
        });
        (rejection.status(), body)
    })
});

/// A trailers-only gRPC response: the status in the headers, no body.
fn grpc(rejection: Rejection) -> Response<Full<Bytes>> {
    let code = match rejection.status() {
        StatusCode::FORBIDDEN => "7",
        StatusCode::SERVICE_UNAVAILABLE => "14",
        _ => "16",
    };
    let mut response = Response::new(Full::default());
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    headers.insert("grpc-status", HeaderValue::from_static(code));
    // Public messages are printable ASCII without `%`: valid `grpc-message` as they are.
    headers.insert(
        "grpc-message",
        HeaderValue::from_static(rejection.public_message()),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_rejection_at_its_own_index() {
        for (index, rejection) in Rejection::ALL.into_iter().enumerate() {
            assert_eq!(rejection as usize, index, "{rejection:?}");
            // A new variant stops this match from compiling: list it in `ALL` too.
            match rejection {
                Rejection::Missing
                | Rejection::Malformed
                | Rejection::Unknown
                | Rejection::Expired
                | Rejection::Revoked
                | Rejection::Forbidden
                | Rejection::Unavailable => {}
            }
        }
    }

    #[test]
    fn a_revoked_key_is_refused_exactly_as_an_unknown_one() {
        let envelope = RejectionResponse::json_with(|rejection| {
            (
                StatusCode::OK,
                serde_json::json!({ "refused": rejection.error_code() }),
            )
        });
        for style in [RejectionResponse::json(), envelope] {
            let [revoked, unknown] = [Rejection::Revoked, Rejection::Unknown]
                .map(|rejection| style.respond(rejection, None));
            assert_eq!(revoked.status(), unknown.status(), "{style:?}");
            assert_eq!(revoked.headers(), unknown.headers(), "{style:?}");
            let body = |response: Response<Full<Bytes>>| {
                use futures::FutureExt;
                use http_body_util::BodyExt;
                let collected = response.into_body().collect().now_or_never();
                collected.map(|collected| collected.unwrap().to_bytes())
            };
            assert_eq!(body(revoked), body(unknown), "{style:?}");
        }
    }
}
