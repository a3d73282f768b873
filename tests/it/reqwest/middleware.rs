//! `reqwest_middleware` with the crate's middleware, against the loopback stand-ins: each
//! provider's flow (Akool's 1101 and Polyteia's 401 replayed once, token fetches counted
//! server-side), origin scoping and rotation, `Retry-After`, and a `POST` never repeated.

use crate::support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::StatusCode;
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use tower_api_auth::outcome::{Outcome, OutcomeKind, RetryPolicy};
use tower_api_auth::providers::{akkio, akool, erathos, polyteia};
use tower_api_auth::reqwest::{
    AuthMiddleware, ReqwestService, RetryMiddleware, TokenAuthMiddleware,
};
use tower_api_auth_mock::{MockServer, Provider};

use support::{CannedServer, Served, scoped_key};

fn outcome(response: &reqwest::Response) -> &Outcome {
    response.extensions().get::<Outcome>().expect("classified")
}

#[tokio::test]
async fn akkio_key_goes_to_its_origin_only_and_rotates() {
    let (server, credential) = scoped_key(Provider::Akkio, akkio::api_key, "key-1").await;
    let elsewhere = MockServer::start(Provider::Akkio).await.unwrap();
    server.accept_key("key-2");
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(AuthMiddleware::new(credential.clone()))
        .build();

    let url = format!("{}/api/v1/models", server.base_url());
    assert_eq!(
        client.get(&url).send().await.unwrap().status(),
        StatusCode::OK
    );
    credential.rotate("key-2").unwrap();
    assert_eq!(
        client.get(&url).send().await.unwrap().status(),
        StatusCode::OK
    );
    let other = format!("{}/api/v1/models", elsewhere.base_url());
    assert_eq!(
        client.get(&other).send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );

    let keys: Vec<_> = server
        .requests()
        .iter()
        .map(|r| r.headers["x-api-key"].clone())
        .collect();
    assert_eq!(keys, ["key-1", "key-2"]);
    assert!(
        elsewhere.requests()[0].headers.get("x-api-key").is_none(),
        "the key stays home"
    );
}

#[tokio::test]
async fn erathos_key_through_the_middleware_with_its_outcome() {
    let (server, credential) = scoped_key(Provider::Erathos, erathos::api_key, "erathos-key").await;
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(RetryMiddleware::new(RetryPolicy::new()).classifier(erathos::classifier()))
        .with(AuthMiddleware::new(credential))
        .build();
    let response = client
        .get(format!(
            "{}/developers/workspaces/restricted/jobs/",
            server.base_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(outcome(&response).kind(), OutcomeKind::Forbidden);
    assert_eq!(
        server.requests()[0].headers["authorization"],
        "Api-Key erathos-key"
    );
}

#[tokio::test]
async fn polyteia_exchange_and_a_401_replays_the_post_once_with_its_body() {
    let server = MockServer::start(Provider::Polyteia).await.unwrap();
    server.accept_key("pak-key");
    let http = reqwest::Client::new();
    let tokens = polyteia::key_exchange("pak-key")
        .base_url(server.base_url())
        .build(ReqwestService::new(http.clone()))
        .unwrap();
    let client = ClientBuilder::new(http)
        .with(RetryMiddleware::new(RetryPolicy::new()))
        .with(TokenAuthMiddleware::new(tokens.clone()))
        .build();
    let command = r#"{"query":"list_solutions","params":{}}"#;
    let post = || {
        client
            .post(format!("{}/api", server.base_url()))
            .header("content-type", "application/json")
            .body(command)
            .send()
    };
    assert_eq!(post().await.unwrap().status(), StatusCode::OK);
    assert_eq!(server.token_request_count(), 1);

    server.expire_tokens();
    let before = server.requests().len();
    let response = post().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(server.token_request_count(), 2);
    let sent: Vec<_> = server.requests()[before..]
        .iter()
        .filter(|r| r.uri.path() == "/api")
        .map(|r| r.body.clone())
        .collect();
    assert_eq!(
        sent.len(),
        2,
        "the rejected POST and one replay, never a retry"
    );
    assert!(sent.iter().all(|body| &body[..] == command.as_bytes()));
}

fn akool_client(server: &MockServer) -> (ClientWithMiddleware, tower_api_auth::TokenCredential) {
    let http = reqwest::Client::new();
    let tokens = akool::client_credentials("client-id", "client-secret")
        .base_url(server.base_url())
        .build(ReqwestService::new(http.clone()))
        .unwrap();
    let client = ClientBuilder::new(http)
        .with(RetryMiddleware::new(RetryPolicy::new()).classifier(akool::classifier()))
        .with(TokenAuthMiddleware::new(tokens.clone()))
        .build();
    (client, tokens)
}

#[tokio::test]
async fn akool_one_get_token_for_concurrent_callers_and_code_1101_replayed_once() {
    let recorder = metrics_util::debugging::DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);
    let server = MockServer::start(Provider::Akool).await.unwrap();
    server.accept_key("client-secret");
    let (client, tokens) = akool_client(&server);
    let url = format!("{}/api/open/v3/faceswap/quota/info", server.base_url());

    let calls = (0..20).map(|_| client.get(&url).send());
    for response in futures::future::join_all(calls).await {
        assert!(outcome(&response.unwrap()).is_success());
    }
    assert_eq!(server.token_request_count(), 1);

    server.expire_tokens();
    let before = server.requests().len();
    let response = client.get(&url).send().await.unwrap();
    assert!(outcome(&response).is_success());
    assert_eq!(response.url().as_str(), url, "the response keeps its URL");
    let body: serde_json::Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(body["code"], 1000);
    assert_eq!(server.token_request_count(), 2);
    assert_eq!(tokens.fetch_count(), 2);
    let attempts = server.requests()[before..]
        .iter()
        .filter(|r| r.uri.path().ends_with("info"))
        .count();
    assert_eq!(attempts, 2);

    if cfg!(feature = "metrics") {
        // Each answer counted once (the retry middleware outside finds the token
        // middleware's outcome and counts nothing more).
        let mut counters = std::collections::BTreeMap::new();
        for (key, _, _, value) in snapshotter.snapshot().into_vec() {
            if let metrics_util::debugging::DebugValue::Counter(n) = value {
                let labels: Vec<_> = key.key().labels().map(|l| l.value().to_owned()).collect();
                counters.insert(format!("{} {}", key.key().name(), labels.join(",")), n);
            }
        }
        let count = |name: &str| counters.get(name).copied().unwrap_or_default();
        assert_eq!(
            count("tower_api_auth.client.token.rejections "),
            1,
            "{counters:#?}"
        );
        assert_eq!(count("tower_api_auth.client.token.replays "), 1);
        assert_eq!(count("tower_api_auth.client.outcomes akool,success"), 21);
        assert_eq!(
            count("tower_api_auth.client.outcomes akool,credential_rejected"),
            1
        );
        assert_eq!(count("tower_api_auth.token.fetches success"), 2);
    }
}

#[tokio::test]
async fn no_secret_in_debug_or_in_a_failed_fetch_error() {
    let server = MockServer::start(Provider::Akool).await.unwrap();
    server.accept_key("the-real-secret");
    let http = reqwest::Client::new();
    let tokens = akool::client_credentials("client-id", "a-wrong-secret")
        .base_url(server.base_url())
        .build(ReqwestService::new(http.clone()))
        .unwrap();
    let credential = akkio::api_key("akkio-secret-key").build().unwrap();
    let printed = format!(
        "{:?} {:?} {:?}",
        AuthMiddleware::new(credential),
        TokenAuthMiddleware::new(tokens.clone()),
        RetryMiddleware::new(RetryPolicy::new()).classifier(akool::classifier()),
    );
    let client = ClientBuilder::new(http)
        .with(TokenAuthMiddleware::new(tokens))
        .build();
    let url = format!("{}/api/open/v3/faceswap/quota/info", server.base_url());
    let err = client.get(&url).send().await.unwrap_err();
    let mut report = format!("{err} {err:?}");
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(&err);
    while let Some(inner) = cause {
        report.push_str(&format!(" | {inner} {inner:?}"));
        cause = inner.source();
    }
    assert!(report.contains("getToken"), "{report}");
    for secret in ["a-wrong-secret", "akkio-secret-key", "the-real-secret"] {
        assert!(!printed.contains(secret), "{printed}");
        assert!(!report.contains(secret), "{report}");
    }
}

#[tokio::test]
async fn akool_a_rejection_with_no_new_token_is_the_apis_answer_with_its_outcome() {
    let server = MockServer::start(Provider::Akool).await.unwrap();
    server.accept_key("client-secret");
    let (client, _tokens) = akool_client(&server);
    let url = format!("{}/api/open/v3/faceswap/quota/info", server.base_url());
    assert!(outcome(&client.get(&url).send().await.unwrap()).is_success());
    // The secret is revoked: the refetch fails (unrecoverable), so no replay; the 1101 is
    // handed back, classified.
    server.revoke_key("client-secret");
    server.expire_tokens();
    let response = client.get(&url).send().await.unwrap();
    assert_eq!(outcome(&response).code(), Some(1101));
    assert_eq!(outcome(&response).kind(), OutcomeKind::CredentialRejected);
}

/// A server answering `503` with `Retry-After: 120` to any method, counting calls.
async fn busy() -> (Served, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&hits);
    let handler = move || {
        counter.fetch_add(1, Ordering::SeqCst);
        async {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(http::header::RETRY_AFTER, "120")],
                "busy",
            )
        }
    };
    let router =
        axum::Router::new().route("/busy", axum::routing::get(handler.clone()).post(handler));
    (Served::start(router).await, hits)
}

fn retrying() -> ClientWithMiddleware {
    let policy = RetryPolicy::new()
        .backoff(Duration::from_millis(1), Duration::from_millis(5))
        .max_retry_after(Duration::from_secs(60));
    ClientBuilder::new(reqwest::Client::new())
        .with(RetryMiddleware::new(policy))
        .build()
}

#[tokio::test]
async fn retry_after_is_read_zero_is_retried_and_beyond_the_cap_is_not() {
    let canned = CannedServer::start().await;
    let client = retrying();
    // `Retry-After: 0` on a 503: retried at once, then a success.
    let response = client
        .get(canned.url("/flaky/503/1?retry_after"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(canned.hits(503, 1), 2);
    // A 429 (`Retry-After: 0`) of a POST: not processed, so retried.
    let response = client
        .post(canned.url("/flaky/429/1"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(canned.hits(429, 1), 2);

    // `Retry-After: 120`, past the 60 s cap: handed back at once, with its outcome. Were the
    // header ignored, the 503 of a GET would be retried with the 1-5 ms backoff.
    let (server, hits) = busy().await;
    let response = client.get(server.url("/busy")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        outcome(&response).retry_after(),
        Some(Duration::from_secs(120))
    );
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_post_that_may_have_been_processed_is_never_repeated() {
    let canned = CannedServer::start().await;
    let client = retrying();
    let response = client
        .post(canned.url("/flaky/502/1"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(outcome(&response).kind(), OutcomeKind::Transient);
    assert_eq!(
        canned.hits(502, 1),
        1,
        "a POST answered 502 is not sent again"
    );
    // The same failure of a GET is retried.
    let response = client.get(canned.url("/flaky/502/2")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(canned.hits(502, 2), 3);
}

#[tokio::test]
async fn a_connection_refused_is_retried_even_for_a_post() {
    // A port nobody listens on: refused before anything is sent.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/jobs", listener.local_addr().unwrap());
    drop(listener);
    let policy = RetryPolicy::new()
        .backoff(Duration::from_millis(1), Duration::from_millis(2))
        .max_retries(2);
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(RetryMiddleware::new(policy))
        .build();
    let recorder = metrics_util::debugging::DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);
    assert!(client.post(&url).body("{}").send().await.is_err());
    let retries: u64 = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter(|(key, ..)| key.key().name() == "tower_api_auth.client.retries")
        .map(|(.., value)| match value {
            metrics_util::debugging::DebugValue::Counter(n) => n,
            _ => 0,
        })
        .sum();
    if cfg!(feature = "metrics") {
        assert_eq!(retries, 2, "both retries of a refused connection");
    }
}
