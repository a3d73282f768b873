//! Reading a token endpoint's answer: the token and its expiry, or why there is none.

use std::time::{Duration, SystemTime};

use http::{StatusCode, Uri};
use serde_json::Value;
use tower::BoxError;

use super::{Expiry, JsonTokenEndpoint};
use crate::Token;
use crate::token::Unrecoverable;

impl JsonTokenEndpoint {
    /// Reads the endpoint's answer: the token, or why there is none.
    pub(super) fn read(
        &self,
        uri: &Uri,
        status: StatusCode,
        answer: &[u8],
    ) -> Result<Token, BoxError> {
        let json = serde_json::from_slice::<Value>(answer).ok();
        let field = |pointer: &str| json.as_ref()?.pointer(pointer);
        let code = self
            .envelope
            .as_ref()
            .and_then(|e| field(&e.code_at)?.as_i64());
        let refusal = |code: Option<i64>| {
            let message = self.message_at.iter().find_map(|at| field(at)?.as_str());
            let err = EndpointError {
                endpoint: shown(uri),
                status: status.as_u16(),
                code,
                // An endpoint that echoes the request must not put the secret in an error.
                message: message.map(|m| self.secret.redact_from(m.to_owned())),
            };
            let wrong_credentials = match code {
                Some(code) => self.refused_codes.contains(&code),
                None => matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN),
            };
            match wrong_credentials {
                true => Unrecoverable::new(err).into(),
                false => BoxError::from(err),
            }
        };
        match (&self.envelope, code) {
            (Some(envelope), Some(code)) if code != envelope.success => {
                return Err(refusal(Some(code)));
            }
            _ if !status.is_success() => return Err(refusal(None)),
            (Some(_), None) => return Err("the token endpoint's answer has no code".into()),
            _ => {}
        }
        let token = field(&self.token_at)
            .and_then(Value::as_str)
            .filter(|token| !token.is_empty())
            .ok_or("the token endpoint answered without a token")?;
        let expiry = match &self.expiry {
            Expiry::Unknown => None,
            Expiry::At(at) => field(at).and_then(time),
            Expiry::In(at) => field(at)
                .and_then(Value::as_u64)
                .and_then(|secs| SystemTime::now().checked_add(Duration::from_secs(secs))),
            Expiry::Jwt => jwt_expiry(token),
        };
        let token = Token::new(token);
        Ok(match expiry {
            Some(at) => token.expires_at(at),
            None => token,
        })
    }
}

/// The token endpoint refused to issue a token: its HTTP status, its own code when it answers
/// in an envelope (Akool's `1101`), and its message, with the secret blanked out should the
/// endpoint quote it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the token endpoint {endpoint} refused: HTTP {status}{}{}",
    .code.map(|c| format!(", code {c}")).unwrap_or_default(),
    .message.as_deref().map(|m| format!(": {m}")).unwrap_or_default()
)]
#[non_exhaustive]
pub struct EndpointError {
    /// The endpoint's URL, without its query.
    pub endpoint: String,
    /// The HTTP status of the answer.
    pub status: u16,
    /// The envelope's code, when the endpoint answers in one.
    pub code: Option<i64>,
    /// The endpoint's message, if any.
    pub message: Option<String>,
}

/// An endpoint as errors and `Debug` show it: scheme, host, port and path. Never a query, nor
/// the userinfo of `https://user:password@host`: either may hold a credential.
pub(super) fn shown(uri: &Uri) -> String {
    let port = uri
        .port()
        .map(|port| format!(":{port}"))
        .unwrap_or_default();
    format!(
        "{}://{}{port}{}",
        uri.scheme_str().unwrap_or_default(),
        uri.host().unwrap_or_default(),
        uri.path()
    )
}

/// A time in JSON: an RFC 3339 string, or seconds or milliseconds since the Unix epoch.
fn time(value: &Value) -> Option<SystemTime> {
    match value {
        Value::String(text) => humantime::parse_rfc3339_weak(text).ok(),
        Value::Number(n) => {
            let n = n.as_u64()?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_is_shown_without_userinfo_or_query() {
        let uri: Uri = "https://user:hunter2@auth.example.com:8443/oauth/token?key=k3y"
            .parse()
            .unwrap();
        assert_eq!(shown(&uri), "https://auth.example.com:8443/oauth/token");
    }

    #[test]
    fn times_are_read_as_rfc3339_and_epoch_numbers() {
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
            assert_eq!(time(&value), expected, "{value}");
        }
    }

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
