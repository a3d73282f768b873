//! What the fuzz targets in `fuzz/` found, each case kept as a plain test so that it stays
//! fixed in every `cargo test --all-features`. The inputs are the findings, minimized and
//! written out; `fuzz/README.md` says how each target runs.

use std::convert::Infallible;
use std::future::ready;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tower::{Layer, ServiceExt};
use tower_api_auth::outcome::{Outcome, OutcomeKind};
use tower_api_auth::providers::akool;
use tower_api_auth::server::{KeyRecord, MemoryKeyStore, Principal, RejectionResponse};
use tower_api_auth::{ClassifyLayer, Placement, ValidateCredentialLayer};

/// Bearer, Api-Key and `x-api-key` accepted, as in the `server_credential` target.
async fn validate(headers: &[(&str, &str)]) -> (StatusCode, serde_json::Value) {
    let keys = MemoryKeyStore::new();
    keys.insert("key-reader", KeyRecord::new(Principal::new("reader")));
    let layer = ValidateCredentialLayer::new(Placement::bearer(), keys)
        .accept(Placement::api_key())
        .accept(Placement::header("x-api-key").unwrap())
        .reject_with(RejectionResponse::json());
    let app = layer.layer(tower::service_fn(|_: Request<()>| {
        ready(Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(
            r#"{"admitted":true}"#,
        )))))
    }));
    let mut request = Request::new(());
    for (name, value) in headers {
        request.headers_mut().append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    let response = app.oneshot(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap())
}

#[tokio::test]
async fn a_bearer_behind_another_scheme_is_a_second_credential() {
    // Found by `server_credential`: only the first `Authorization` value was searched for the
    // scheme, so a valid `x-api-key` was let through although a second credential came with it.
    let (status, body) = validate(&[
        ("x-api-key", "key-reader"),
        ("authorization", "Basic Zm9v"),
        ("authorization", "Bearer key-unknown"),
    ])
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "malformed_credential");
}

#[tokio::test]
async fn a_repeated_authorization_header_is_malformed_whichever_value_has_the_scheme() {
    // Found by `server_credential` (minimized): refused as "missing" before, and answered with
    // the challenge for a missing credential.
    for values in [
        ["ac", "api-key key-reader"],
        ["Basic Zm9v", "Bearer key-reader"],
        ["Bearer key-reader", "Basic Zm9v"],
    ] {
        let headers = values.map(|value| ("authorization", value));
        let (status, body) = validate(&headers).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{values:?}");
        assert_eq!(body["error"], "malformed_credential", "{values:?}");
    }
    // Another scheme alone is still no credential, and a key elsewhere still counts.
    let (_, body) = validate(&[("authorization", "Basic Zm9v")]).await;
    assert_eq!(body["error"], "missing_credential");
    let (status, body) = validate(&[
        ("authorization", "Basic Zm9v"),
        ("authorization", "Digest x"),
        ("x-api-key", "key-reader"),
    ])
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["admitted"], true);
}

#[tokio::test]
async fn the_challenge_of_a_repeated_header_says_the_credential_is_invalid() {
    let keys = MemoryKeyStore::new();
    let app = ValidateCredentialLayer::new(Placement::bearer(), keys).layer(tower::service_fn(
        |_: Request<()>| ready(Ok::<_, Infallible>(Response::new(Full::<Bytes>::default()))),
    ));
    let mut request = Request::new(());
    request
        .headers_mut()
        .append(AUTHORIZATION, HeaderValue::from_static("Basic Zm9v"));
    request
        .headers_mut()
        .append(AUTHORIZATION, HeaderValue::from_static("Bearer abc"));
    let response = app.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers()[WWW_AUTHENTICATE],
        r#"Bearer error="invalid_token""#
    );
}

/// The response `body` (JSON), with `trailers` if any, through Akool's classifier.
async fn classify_akool(
    body: &'static str,
    trailers: Option<HeaderMap>,
) -> (Outcome, Bytes, Option<HeaderMap>) {
    let server = tower::service_fn(move |_: Request<()>| {
        let trailers = trailers.clone();
        // `with_trailers` keeps `Full`'s exact size, so the layer reads the body.
        let body = Full::new(Bytes::from_static(body.as_bytes()))
            .with_trailers(ready(trailers.map(Ok::<_, Infallible>)));
        let response = Response::builder()
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .unwrap();
        ready(Ok::<_, Infallible>(response))
    });
    let response = ClassifyLayer::new(akool::classifier())
        .layer(server)
        .oneshot(Request::new(()))
        .await
        .unwrap();
    let outcome = response.extensions().get::<Outcome>().unwrap().clone();
    let collected = response.into_body().collect().await.unwrap();
    let trailers = collected.trailers().cloned();
    (outcome, collected.to_bytes(), trailers)
}

#[tokio::test]
async fn akool_code_is_read_when_the_message_is_not_a_string() {
    // Found by `classify_body`: a `msg` that was an object or an array, before the code, hid the
    // code, and Akool's "token expired" in an HTTP 200 was classified a success.
    for body in [
        r#"{"msg":{"text":"nested"},"code":1101}"#,
        r#"{"msg":["a","b"],"code":1101}"#,
        r#"{"msg":42,"code":1101}"#,
        r#"{"code":1101,"msg":{"text":"nested"}}"#,
    ] {
        let (outcome, read, _) = classify_akool(body, None).await;
        assert_eq!(outcome.kind(), OutcomeKind::CredentialRejected, "{body}");
        assert_eq!(outcome.code(), Some(1101), "{body}");
        assert_eq!(outcome.message(), None, "{body}");
        assert_eq!(read, body.as_bytes(), "the caller reads the body unchanged");
    }
    let (outcome, _, _) = classify_akool(r#"{"msg":"expired","code":1101}"#, None).await;
    assert_eq!(outcome.message(), Some("expired"));
}

#[tokio::test]
async fn a_body_read_to_classify_it_keeps_its_trailers() {
    // Found by `classify_body`: the body was handed on byte for byte, its trailers dropped.
    let mut sent = HeaderMap::new();
    sent.insert("x-checksum", HeaderValue::from_static("fuzz"));
    let body = r#"{"code":1000,"msg":"OK","data":{"url":"https://x"}}"#;
    let (outcome, read, trailers) = classify_akool(body, Some(sent.clone())).await;
    assert_eq!(
        outcome.code(),
        Some(1000),
        "the body was read to classify it"
    );
    assert_eq!(read, body.as_bytes());
    assert_eq!(trailers, Some(sent));
}
