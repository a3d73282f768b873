//! Classification on the wire: every row of the provider tables, served on loopback and read
//! through a hyper-util client, classified as documented, with the body the caller reads
//! byte-identical to what the server sent.

use crate::support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::StatusCode;
use http_body_util::BodyExt;
use tower::retry::RetryLayer;
use tower::retry::budget::TpsBudget;
use tower::{Layer, ServiceBuilder, ServiceExt};
use tower_api_auth::ClassifyLayer;
use tower_api_auth::outcome::{
    Classifier, Outcome, OutcomeKind, RetryPolicy, StatusClassifier, error_for_outcome,
};
use tower_api_auth::providers::{akool, erathos};

use support::{CannedServer, CapturedLogs, client, get, post_json};

/// Fetches `path` through the classify layer and, for comparison, without it.
async fn classify(
    server: &CannedServer,
    classifier: impl Classifier,
    path: &str,
) -> (Outcome, bytes::Bytes) {
    let url = server.url(path);
    let response = ClassifyLayer::new(classifier)
        .layer(client())
        .oneshot(get(&url))
        .await
        .unwrap();
    let outcome = response.extensions().get::<Outcome>().unwrap().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let plain = client().oneshot(get(&url)).await.unwrap();
    let sent = plain.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(
        body, sent,
        "{path}: the caller reads exactly what the server sent"
    );
    (outcome, body)
}

#[tokio::test]
async fn every_row_of_the_provider_tables_is_classified_as_documented() {
    use OutcomeKind::*;
    let server = CannedServer::start().await;
    let rows: &[(&str, OutcomeKind, Option<i64>)] = &[
        ("/akool/1000", Success, Some(1000)),
        ("/akool/1003", ClientError, Some(1003)),
        ("/akool/1005", RateLimited, Some(1005)),
        ("/akool/1006", ClientError, Some(1006)),
        ("/akool/1008", ClientError, Some(1008)),
        ("/akool/1009", Forbidden, Some(1009)),
        ("/akool/1101", CredentialRejected, Some(1101)),
        ("/akool/1102", CredentialMissing, Some(1102)),
        ("/akool/1108", Transient, Some(1108)),
        ("/akool/1200", Banned, Some(1200)),
        ("/akool/4242", ClientError, Some(4242)),
        ("/status/200", Success, None),
        ("/status/400", ClientError, None),
        ("/status/401", CredentialRejected, None),
        ("/status/403", Forbidden, None),
        ("/status/404", ClientError, None),
        ("/status/422", ClientError, None),
        ("/status/429", RateLimited, None),
        ("/status/500", Transient, None),
        ("/status/502", Transient, None),
        ("/status/503", Transient, None),
        ("/status/504", Transient, None),
        // Not an envelope, or not one we may read: left to the status.
        ("/malformed", Success, None),
        ("/nocode", Success, None),
        ("/huge", Success, None),
        ("/text", Success, None),
        // Sent chunked (no content-length): read all the same, up to the limit.
        ("/chunked", CredentialRejected, Some(1101)),
    ];
    for (path, kind, code) in rows {
        let (outcome, _) = classify(&server, akool::classifier(), path).await;
        assert_eq!(outcome.kind(), *kind, "{path}");
        assert_eq!(outcome.code(), *code, "{path}");
    }
    let (outcome, _) = classify(&server, akool::classifier(), "/akool/1101").await;
    assert_eq!(
        outcome.message(),
        Some("message for 1101"),
        "Akool's msg is kept"
    );
}

#[tokio::test]
async fn retry_after_is_read_in_seconds_and_as_an_http_date() {
    let server = CannedServer::start().await;
    let (outcome, _) = classify(
        &server,
        StatusClassifier::new(),
        "/status/429?retry_after=7",
    )
    .await;
    assert_eq!(outcome.retry_after(), Some(Duration::from_secs(7)));

    let later = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(120));
    let path = format!("/status/503?retry_after={}", later.replace(' ', "%20"));
    let (outcome, _) = classify(&server, StatusClassifier::new(), &path).await;
    let delay = outcome.retry_after().unwrap();
    assert!(
        delay > Duration::from_secs(100) && delay <= Duration::from_secs(120),
        "{delay:?}"
    );

    let (outcome, _) = classify(
        &server,
        StatusClassifier::new(),
        "/status/429?retry_after=soon",
    )
    .await;
    assert_eq!(outcome.retry_after(), None);
}

#[tokio::test]
async fn status_presets_read_the_detail_message() {
    let server = CannedServer::start().await;
    let (outcome, body) = classify(&server, erathos::classifier(), "/status/403").await;
    assert_eq!(outcome.kind(), OutcomeKind::Forbidden);
    assert_eq!(outcome.message(), Some("status 403"));
    assert_eq!(&body[..], br#"{"detail":"status 403"}"#);
}

#[tokio::test]
async fn failures_become_typed_errors_on_request_and_are_traced_once_without_secrets() {
    let logs = CapturedLogs::default();
    let _guard = logs.install();
    let server = CannedServer::start().await;
    let api = ClassifyLayer::new(akool::classifier()).layer(client());

    let response = api
        .clone()
        .oneshot(get(server.url("/akool/1200")))
        .await
        .unwrap();
    let err = error_for_outcome(response).unwrap_err();
    assert_eq!(err.kind(), OutcomeKind::Banned);
    assert_eq!(err.code(), Some(1200));
    assert_eq!(err.status(), StatusCode::OK);
    assert_eq!(
        err.to_string(),
        "the API answered: account banned or disabled (HTTP 200, code 1200): message for 1200"
    );

    let mut request = get(server.url("/akool/1000"));
    request
        .headers_mut()
        .insert("x-api-key", "akool-SECRET-key".parse().unwrap());
    let ok = error_for_outcome(api.oneshot(request).await.unwrap()).unwrap();
    assert!(ok.extensions().get::<Outcome>().unwrap().is_success());

    let text = logs.text();
    assert_eq!(text.matches("API call failed").count(), 1, "{text}");
    assert!(
        text.contains("provider=\"akool\"") || text.contains("provider=akool"),
        "{text}"
    );
    assert!(text.contains("code=1200"), "{text}");
    assert!(!text.contains("SECRET"), "{text}");
}

fn policy() -> RetryPolicy {
    RetryPolicy::new().backoff(Duration::from_millis(1), Duration::from_millis(2))
}

#[tokio::test]
async fn the_retry_policy_retries_transient_failures_until_they_pass() {
    let server = CannedServer::start().await;
    let api = ServiceBuilder::new()
        .layer(RetryLayer::new(policy()))
        .layer(ClassifyLayer::new(akool::classifier()))
        .service(client());

    for code in [503, 502, 500, 429] {
        let response = api
            .clone()
            .oneshot(get(server.url(&format!("/flaky/{code}/2"))))
            .await;
        assert_eq!(response.unwrap().status(), StatusCode::OK, "{code}");
        assert_eq!(server.hits(code, 2), 3, "{code}: two failures, one success");
    }

    // Past the cap of 3 retries, the last failure is returned.
    let response = api
        .clone()
        .oneshot(get(server.url("/flaky/503/10")))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(server.hits(503, 10), 4);
}

#[tokio::test]
async fn the_retry_policy_never_retries_permanent_failures() {
    let server = CannedServer::start().await;
    let api = ServiceBuilder::new()
        .layer(RetryLayer::new(policy()))
        .layer(ClassifyLayer::new(akool::classifier()))
        .service(client());

    for code in [400, 401, 403, 404, 422] {
        let response = api
            .clone()
            .oneshot(get(server.url(&format!("/flaky/{code}/1"))))
            .await;
        assert_eq!(response.unwrap().status().as_u16(), code);
        assert_eq!(server.hits(code, 1), 1, "{code} is not retried");
    }
    for code in [1003, 1009, 1101, 1102, 1200] {
        let response = api
            .clone()
            .oneshot(get(server.url(&format!("/akool/{code}"))))
            .await;
        let outcome = response
            .unwrap()
            .extensions()
            .get::<Outcome>()
            .unwrap()
            .clone();
        assert!(!outcome.retry_warranted(), "{code}");
    }
}

/// Akool's create endpoints spend credits: a `POST` sent twice is paid twice.
#[tokio::test]
async fn a_post_is_retried_only_where_the_api_provably_did_not_process_it() {
    let server = CannedServer::start().await;
    let api = ServiceBuilder::new()
        .layer(RetryLayer::new(policy()))
        .layer(ClassifyLayer::new(akool::classifier()))
        .service(client());
    let post = |path: &str| post_json(server.url(path), "{}");

    // May have been processed: handed back after one attempt.
    for code in [500, 502, 504, 408] {
        let response = api.clone().oneshot(post(&format!("/flaky/{code}/1"))).await;
        assert_eq!(response.unwrap().status().as_u16(), code);
        assert_eq!(server.hits(code, 1), 1, "POST after {code} is not retried");
    }
    // Provably not processed: a rate limit, a 503 with Retry-After.
    let response = api.clone().oneshot(post("/flaky/429/2")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(server.hits(429, 2), 3);
    let response = api
        .clone()
        .oneshot(post("/flaky/503/2?retry_after=0"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(server.hits(503, 2), 3);
    // A 503 without Retry-After may have been processed too.
    let response = api.clone().oneshot(post("/flaky/503/3")).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(server.hits(503, 3), 1);

    // The same failures on a GET are retried.
    let response = api.clone().oneshot(get(server.url("/flaky/500/2"))).await;
    assert_eq!(response.unwrap().status(), StatusCode::OK);
    assert_eq!(server.hits(500, 2), 3);

    // Opted in (the API deduplicates): a POST is retried like a GET.
    let dedup = ServiceBuilder::new()
        .layer(RetryLayer::new(policy().retry_non_idempotent()))
        .layer(ClassifyLayer::new(akool::classifier()))
        .service(client());
    let response = dedup.oneshot(post("/flaky/502/2")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(server.hits(502, 2), 3);
}

#[tokio::test]
async fn a_post_is_retried_when_the_connection_was_refused_before_sending() {
    // A port that was just free: nothing listens there.
    let refused = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let attempts = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&attempts);
    let api = ServiceBuilder::new()
        .layer(RetryLayer::new(policy()))
        .layer(ClassifyLayer::new(StatusClassifier::new()))
        .map_request(move |request| {
            counter.fetch_add(1, Ordering::SeqCst);
            request
        })
        .service(client());
    let err = api
        .oneshot(post_json(format!("http://{refused}/v1/jobs"), "{}"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Connect"), "{err}");
    // Nothing was sent, so it was safe to try again: the first attempt and 3 retries.
    assert_eq!(attempts.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn the_retry_budget_caps_retries_across_requests() {
    let server = CannedServer::start().await;
    // No minimum, no percentage: nothing to spend.
    let broke = policy().budget(TpsBudget::new(Duration::from_secs(10), 0, 0.0));
    let api = ServiceBuilder::new()
        .layer(RetryLayer::new(broke))
        .layer(ClassifyLayer::new(StatusClassifier::new()))
        .service(client());
    let response = api.oneshot(get(server.url("/flaky/503/1"))).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(server.hits(503, 1), 1);
}

#[tokio::test]
async fn a_retry_after_beyond_the_cap_is_not_waited_for() {
    let server = CannedServer::start().await;
    let api = ServiceBuilder::new()
        .layer(RetryLayer::new(
            policy().max_retry_after(Duration::from_secs(5)),
        ))
        .layer(ClassifyLayer::new(StatusClassifier::new()))
        .service(client());
    let response = api
        .oneshot(get(server.url("/status/429?retry_after=3600")))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
}
