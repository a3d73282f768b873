//! Arbitrary answers of Akool's getToken endpoint, served by a `tower::service_fn` to
//! `akool::client_credentials(..).build(http)`, then `fetch()` on a current-thread runtime.
//!
//! The input is the answer as text: a first line `<status> [json]` (`json` adds
//! `Content-Type: application/json`), then the body, with the macros of
//! [`expand_answer`](tower_api_auth_fuzz::expand_answer) (`\x01{"exp":1}\x02` base64url-encodes
//! a JWT's claims, `\x03` echoes the client secret, `\x04` pads past 64 KiB).
//!
//! Checks: nothing panics; the result is a token or a `TokenError` of kind `Fetch` or
//! `InvalidToken`, and which one agrees with a model of the envelope (a token exactly when
//! `code` is 1000 and `token` is a valid header value); a JWT's future `exp` schedules the
//! refresh, a past one is ignored; the error's `Display`, `Debug` and sources never contain the
//! client secret (unless the endpoint sent it back) nor a refused token; the request is the
//! documented POST.

#![no_main]

use std::convert::Infallible;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use libfuzzer_sys::fuzz_target;
use tower_api_auth::providers::akool;
use tower_api_auth_fuzz::{
    Fetched, answer, check_fetch, disguise, expand_answer, fetch_once, is_header_token, jwt_exp,
    lenient_json, status_line, strict_json,
};

const CLIENT_ID: &str = "fuzz-client-id";
const CLIENT_SECRET: &str = "fuzz-client-secret-7f3a9c";

/// The largest answer a token endpoint may send.
const MAX_ANSWER: usize = 64 * 1024;

/// What the model expects of an answer body: the token, or a failure (`true` when the token
/// itself is invalid); `None` when it makes no claim.
fn expected(body: &[u8]) -> Option<Result<String, bool>> {
    if body.len() > MAX_ANSWER {
        return Some(Err(false));
    }
    if serde_json::from_slice::<serde_json::Value>(body).is_err() {
        return (!lenient_json(body)).then_some(Err(false));
    }
    // A repeated field, or an array where serde would take the fields in order: no claim.
    let json = strict_json(body)?;
    let envelope = json.as_object()?;
    let string_or_null = |field: &str| match envelope.get(field) {
        None | Some(serde_json::Value::Null) => Some(None),
        Some(serde_json::Value::String(text)) => Some(Some(text.as_str())),
        Some(_) => None,
    };
    let (Some(code), Some(_msg), Some(token)) = (
        envelope.get("code").and_then(serde_json::Value::as_i64),
        string_or_null("msg"),
        string_or_null("token"),
    ) else {
        return Some(Err(false));
    };
    Some(match (code, token) {
        (akool::SUCCESS, Some(token)) if is_header_token(token) => Ok(token.to_owned()),
        (akool::SUCCESS, Some(token)) if !token.is_empty() => Err(true),
        _ => Err(false),
    })
}

/// Builds the credential over an endpoint that answers `status` and `body`, and fetches once
/// on a current-thread runtime of its own (dropped with the refresh task it may hold).
fn fetch(status: StatusCode, json: bool, body: Bytes) -> Fetched {
    let http = tower::service_fn(move |request: Request<Full<Bytes>>| {
        let body = body.clone();
        async move {
            check_request(request).await;
            Ok::<_, Infallible>(answer(status, json, body))
        }
    });
    let tokens = akool::client_credentials(CLIENT_ID, CLIENT_SECRET)
        .base_url("http://akool.test")
        .build(http)
        .expect("a valid configuration");
    fetch_once(&tokens)
}

/// `body` with its token disguised (see [`disguise`]), when the body is strict JSON with one.
fn with_disguised_token(body: &[u8]) -> Option<Bytes> {
    let mut json = strict_json(body)?;
    let token = json.get_mut("token")?;
    *token = disguise(token.as_str()?).into();
    Some(serde_json::to_vec(&json).expect("JSON").into())
}

fuzz_target!(|input: &[u8]| {
    let (first, body) = match input.iter().position(|b| *b == b'\n') {
        Some(at) => (&input[..at], &input[at + 1..]),
        None => (input, &b""[..]),
    };
    let (status, json) = status_line(first);
    let body = Bytes::from(expand_answer(body, CLIENT_SECRET));
    let fetched = fetch(status, json, body.clone());
    let expected = expected(&body).map(|verdict| {
        verdict.map(|token| {
            let exp = jwt_exp(&token);
            (token, exp)
        })
    });
    check_fetch(fetched, expected, &body, CLIENT_SECRET, || {
        let disguised = with_disguised_token(&body)?;
        Some(
            fetch(status, json, disguised)
                .result
                .expect_err("a token as invalid"),
        )
    });
});

/// The getToken call: POST to the token URL, JSON with the client id and secret.
async fn check_request(request: Request<Full<Bytes>>) {
    assert_eq!(request.method(), Method::POST);
    assert_eq!(request.uri(), "http://akool.test/api/open/v3/getToken");
    assert_eq!(request.headers()[CONTENT_TYPE], "application/json");
    let body = request
        .into_body()
        .collect()
        .await
        .expect("Full")
        .to_bytes();
    let body: serde_json::Value = serde_json::from_slice(&body).expect("a JSON request");
    assert_eq!(
        body,
        serde_json::json!({ "clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET })
    );
}
