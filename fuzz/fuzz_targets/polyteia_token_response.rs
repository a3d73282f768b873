//! Arbitrary answers of Polyteia's key exchange, served by a `tower::service_fn` to
//! `polyteia::key_exchange(..).build(http)`, then `fetch()` on a current-thread runtime.
//!
//! The input is the answer as text: a first line `<status> [json]` (`json` adds
//! `Content-Type: application/json`), then the body, with the macros of
//! [`expand_answer`](tower_api_auth_fuzz::expand_answer) (`\x03` echoes the personal access
//! key, `\x04` pads past 64 KiB).
//!
//! Checks: nothing panics; the result is a token or a `TokenError` of kind `Fetch` or
//! `InvalidToken`, and which one agrees with a model of the exchange (a token exactly when the
//! status is 2xx and `json.token` is a valid header value); a future `expiresAt` (epoch seconds,
//! epoch milliseconds, RFC 3339) schedules the refresh, a past one is ignored; the error's
//! `Display`, `Debug` and sources never contain the key (unless the endpoint sent it back) nor a
//! refused token; the request is the documented POST.

#![no_main]

use std::convert::Infallible;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use libfuzzer_sys::fuzz_target;
use tower_api_auth::providers::polyteia;
use tower_api_auth_fuzz::{
    Fetched, answer, check_fetch, disguise, expand_answer, fetch_once, is_header_token,
    lenient_json, rfc3339_utc, status_line, strict_json,
};

const KEY: &str = "pak_fuzz_personal_key_51c0e2";
const ORGANIZATION: &str = "org_fuzz";

/// The largest answer a token endpoint may send.
const MAX_ANSWER: usize = 64 * 1024;

/// A token the model expects, with its expiry in seconds since the epoch when it can tell.
#[derive(Debug)]
struct Expected {
    token: String,
    expires_at: Option<u64>,
}

/// What the model expects of an answer: the token, or a failure (`true` when the token itself
/// is invalid); `None` when it makes no claim.
fn expected(status: StatusCode, body: &[u8]) -> Option<Result<Expected, bool>> {
    if !status.is_success() || body.len() > MAX_ANSWER {
        return Some(Err(false));
    }
    if serde_json::from_slice::<serde_json::Value>(body).is_err() {
        return (!lenient_json(body)).then_some(Err(false));
    }
    // A repeated field, or an array where serde would take the fields in order: no claim.
    let answer = strict_json(body)?;
    let exchanged = match answer.as_object()?.get("json") {
        None => return Some(Err(false)),
        Some(json) => json.as_object()?,
    };
    let Some(serde_json::Value::String(token)) = exchanged.get("token") else {
        return Some(Err(false));
    };
    if token.is_empty() {
        return Some(Err(false));
    }
    if !is_header_token(token) {
        return Some(Err(true));
    }
    let expires_at = match exchanged.get("expiresAt") {
        Some(serde_json::Value::Number(n)) => n
            .as_u64()
            .map(|n| if n < 100_000_000_000 { n } else { n / 1000 }),
        Some(serde_json::Value::String(text)) => rfc3339_utc(text),
        _ => None,
    };
    Some(Ok(Expected {
        token: token.clone(),
        expires_at,
    }))
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
    let tokens = polyteia::key_exchange(KEY)
        .organization_id(ORGANIZATION)
        .base_url("http://polyteia.test")
        .build(http)
        .expect("a valid configuration");
    fetch_once(&tokens)
}

/// `body` with its token disguised (see [`disguise`]), when the body is strict JSON with one.
fn with_disguised_token(body: &[u8]) -> Option<Bytes> {
    let mut json = strict_json(body)?;
    let token = json.get_mut("json")?.get_mut("token")?;
    *token = disguise(token.as_str()?).into();
    Some(serde_json::to_vec(&json).expect("JSON").into())
}

fuzz_target!(|input: &[u8]| {
    let (first, body) = match input.iter().position(|b| *b == b'\n') {
        Some(at) => (&input[..at], &input[at + 1..]),
        None => (input, &b""[..]),
    };
    let (status, json) = status_line(first);
    let body = Bytes::from(expand_answer(body, KEY));
    let fetched = fetch(status, json, body.clone());
    let expected = expected(status, &body)
        .map(|verdict| verdict.map(|Expected { token, expires_at }| (token, expires_at)));
    check_fetch(fetched, expected, &body, KEY, || {
        let disguised = with_disguised_token(&body)?;
        Some(
            fetch(status, json, disguised)
                .result
                .expect_err("a token as invalid"),
        )
    });
});

/// The exchange: POST to the exchange URL, `{"json": {"key", "organizationId"}}`.
async fn check_request(request: Request<Full<Bytes>>) {
    assert_eq!(request.method(), Method::POST);
    assert_eq!(
        request.uri(),
        "http://polyteia.test/rpc/auth/personalAccessKey/exchange"
    );
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
        serde_json::json!({ "json": { "key": KEY, "organizationId": ORGANIZATION } })
    );
}
