//! The layers among the rest of the tower ecosystem, each used for real on loopback:
//! hyper-util over HTTP/1 and HTTP/2, `ServiceBuilderExt`, `tower::buffer::Buffer` across tasks,
//! tower-http's trace and sensitive-header layers on both sides. (tonic: the `tonic` module;
//! `tower::retry::Retry` with the crate's policy: `classify::wire`; axum `route_layer` and the
//! `Principal` extractor: `server::validate`.)

use crate::support;

use axum::Router;
use axum::routing::get as route_get;
use http::StatusCode;
use http::header::AUTHORIZATION;
use support::{
    CapturedLogs, HttpClient, Served, client, client_h2, get, json, post_json, scoped_key,
};
use tower::buffer::Buffer;
use tower::{ServiceBuilder, ServiceExt};
use tower_api_auth::outcome::Outcome;
use tower_api_auth::providers::{akkio, akool, polyteia};
use tower_api_auth::server::{KeyRecord, MemoryKeyStore, Principal};
use tower_api_auth::{
    Auth, Classify, Placement, ServiceBuilderAuthExt, TokenAuth, ValidateCredential,
};
use tower_api_auth_mock::{MockProviders, Provider};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::{DefaultMakeSpan, TraceLayer};
use tracing::Level;

/// What the layers must be to sit in a `Buffer`, be spawned, and be shared across threads.
#[test]
fn services_and_futures_are_send_sync_and_static() {
    fn service<T: Clone + Send + Sync + 'static>() {}
    fn future<T: Send + 'static>() {}
    type Request = http::Request<support::Body>;
    type AkoolClassifier = tower_api_auth::outcome::Then<
        tower_api_auth::outcome::StatusClassifier,
        tower_api_auth::outcome::EnvelopeClassifier,
    >;
    type Static = Auth<HttpClient>;
    type Tokens = TokenAuth<HttpClient>;
    type Classified = Classify<TokenAuth<HttpClient>, AkoolClassifier>;
    type Validated = ValidateCredential<Router, MemoryKeyStore>;
    service::<Static>();
    service::<Tokens>();
    service::<Classified>();
    service::<Validated>();
    future::<<Static as tower::Service<Request>>::Future>();
    future::<<Tokens as tower::Service<Request>>::Future>();
    future::<<Classified as tower::Service<Request>>::Future>();
    future::<<Validated as tower::Service<http::Request<axum::body::Body>>>::Future>();
}

#[tokio::test]
async fn hyper_util_over_http1_and_http2_carries_the_credential() {
    let (server, credential) = scoped_key(Provider::Akkio, akkio::api_key, "akkio-key").await;
    for (version, client) in [("HTTP/1.1", client()), ("HTTP/2", client_h2())] {
        let api = ServiceBuilder::new()
            .classify(akkio::classifier())
            .auth(credential.clone())
            .service(client);
        let response = api
            .oneshot(get(format!("{}/api/v1/models", server.base_url())))
            .await
            .unwrap();
        let outcome = response.extensions().get::<Outcome>().unwrap();
        assert!(outcome.is_success(), "{version}: {outcome}");
    }
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert!(
        requests
            .iter()
            .all(|r| r.headers["x-api-key"] == "akkio-key")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_buffered_stack_serves_many_tasks_with_one_token_fetch() {
    let mocks = MockProviders::start().await.unwrap();
    mocks.akool.accept_key("akool-secret");
    let http = client_h2();
    let tokens = akool::client_credentials("client-id", "akool-secret")
        .base_url(mocks.akool.base_url())
        .build(http.clone())
        .unwrap();
    let stack = ServiceBuilder::new()
        .classify(akool::classifier())
        .token_auth(tokens)
        .service(http);
    let api = Buffer::new(stack, 1024);
    let url = format!("{}/api/open/v3/faceswap/quota/info", mocks.akool.base_url());

    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let api = api.clone();
            let request = get(&url);
            tokio::spawn(async move { api.oneshot(request).await })
        })
        .collect();
    for task in tasks {
        let response = task.await.unwrap().unwrap();
        assert!(response.extensions().get::<Outcome>().unwrap().is_success());
        assert_eq!(json(response).await["code"], 1000);
    }
    assert_eq!(mocks.akool.token_request_count(), 1);
}

#[tokio::test(flavor = "current_thread")]
async fn tower_http_trace_and_sensitive_headers_on_both_sides_show_no_secret() {
    let logs = CapturedLogs::default();
    let _guard = logs.install();
    let trace = || {
        TraceLayer::new_for_http().make_span_with(
            DefaultMakeSpan::new()
                .level(Level::INFO)
                .include_headers(true),
        )
    };

    // The server side: incoming credentials are marked sensitive before the trace sees them.
    let keys = MemoryKeyStore::new();
    keys.insert(
        "server-SECRET-key",
        KeyRecord::new(Principal::new("caller")),
    );
    let app = Router::new()
        .route("/me", route_get(|| async { "ok" }))
        .route_layer(
            ServiceBuilder::new()
                .layer(SetSensitiveRequestHeadersLayer::new([AUTHORIZATION]))
                .layer(trace())
                .validate_credential(Placement::bearer(), keys),
        );
    let server = Served::start(app).await;
    let credential = tower_api_auth::Credential::bearer("server-SECRET-key")
        .origin(&server.base_url)
        .build()
        .unwrap();
    let api = ServiceBuilder::new()
        .layer(trace())
        .auth(credential)
        .layer(trace())
        .service(client());
    let response = api.oneshot(get(server.url("/me"))).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    // The client side with a fetched token: Polyteia's key exchange.
    let mocks = MockProviders::start().await.unwrap();
    mocks.polyteia.accept_key("pak-SECRET-key");
    let http = client();
    let tokens = polyteia::key_exchange("pak-SECRET-key")
        .base_url(mocks.polyteia.base_url())
        .build(http.clone())
        .unwrap();
    let api = ServiceBuilder::new()
        .layer(SetSensitiveRequestHeadersLayer::new([AUTHORIZATION]))
        .token_auth(tokens)
        .layer(trace())
        .service(http);
    let request = post_json(
        format!("{}/api", mocks.polyteia.base_url()),
        r#"{"query":"list"}"#,
    );
    let response = api.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let text = logs.text();
    assert!(text.contains("\"authorization\": Sensitive"), "{text}");
    assert!(!text.contains("SECRET"), "{text}");
    assert!(!text.contains("polyteia-token"), "{text}");
}
