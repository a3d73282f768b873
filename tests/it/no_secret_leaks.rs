//! No secret reaches `Debug`, `Display`, an error message or a `tracing` event.

use crate::support;

use tower::{ServiceBuilder, ServiceExt};
use tower_api_auth::providers::{akkio, akool, erathos, polyteia};
use tower_api_auth::{Auth, AuthLayer, Credential, Placement, Secret};
use tower_api_auth_mock::{MockServer, Provider};
use tower_http::trace::{DefaultMakeSpan, DefaultOnRequest, TraceLayer};
use tracing::Level;

use support::{CapturedLogs, client, get, post_json};

const SECRETS: [&str; 5] = [
    "akkio-SECRET-1",
    "pak-SECRET-2",
    "erathos-SECRET-3",
    "akool-SECRET-4",
    "rotated-SECRET-5",
];

fn assert_clean(what: &str, text: &str) {
    for secret in SECRETS {
        assert!(!text.contains(secret), "{what} shows a secret: {text}");
    }
    assert!(
        !text.contains("SECRET"),
        "{what} shows part of a secret: {text}"
    );
}

#[test]
fn debug_and_display_of_every_public_type_are_redacted() {
    let builders = [
        akkio::api_key(SECRETS[0]),
        polyteia::access_key(SECRETS[1]),
        erathos::api_key(SECRETS[2]),
        akool::api_key(SECRETS[3]),
    ];
    for builder in builders {
        assert_clean("CredentialBuilder", &format!("{builder:?}"));
        let credential = builder.build().unwrap();
        assert_clean("Credential", &format!("{credential:?} {credential:#?}"));
        let layer = AuthLayer::new(credential.clone());
        assert_clean("AuthLayer", &format!("{layer:?}"));
        let service = Auth::new(
            tower::service_fn(|()| async { Ok::<_, ()>(()) }),
            credential,
        );
        assert_clean("Auth", &format!("{service:?}"));
    }
    let secret = Secret::new(SECRETS[4]);
    assert_clean("Secret", &format!("{secret:?} {secret}"));
    let value = Placement::bearer().header_value(&secret).unwrap();
    assert_clean("HeaderValue", &format!("{value:?}"));
}

#[test]
fn errors_name_the_problem_not_the_value() {
    // Secrets passed where a header name, a scheme or an origin belongs are not echoed either.
    let errors = [
        Credential::bearer("akkio-SECRET-1 ").any_origin().build(),
        Credential::bearer("pak-SECRET-2\r\n").any_origin().build(),
        Credential::bearer("erathos-SECRET-3é").any_origin().build(),
        Credential::header("akool-SECRET-4 ", "v")
            .any_origin()
            .build(),
        Credential::authorization("rotated-SECRET-5 ", "v")
            .any_origin()
            .build(),
        Credential::bearer("v")
            .origin("https://u:rotated-SECRET-5@host")
            .build(),
        Credential::bearer("v").origin("rotated-SECRET-5").build(),
    ];
    for err in errors {
        let err = err.unwrap_err();
        assert_clean("error", &format!("{err} {err:?}"));
    }
}

#[tokio::test(flavor = "current_thread")]
async fn tracing_at_trace_level_never_shows_a_secret() {
    let logs = CapturedLogs::default();
    let _guard = logs.install();

    let server = MockServer::start(Provider::Akkio).await.unwrap();
    let other = MockServer::start(Provider::Akkio).await.unwrap();
    server.accept_key(SECRETS[0]);
    let credential = akkio::api_key(SECRETS[0])
        .origin(server.base_url())
        .build()
        .unwrap();
    // tower-http's trace layer inside ours, printing every header it sees.
    let api = ServiceBuilder::new()
        .layer(AuthLayer::new(credential.clone()))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(
                    DefaultMakeSpan::new()
                        .level(Level::INFO)
                        .include_headers(true),
                )
                .on_request(DefaultOnRequest::new().level(Level::INFO)),
        )
        .service(client());

    let ok = api
        .clone()
        .oneshot(get(format!("{}/api/v1/models", server.base_url())));
    assert!(ok.await.unwrap().status().is_success());
    let elsewhere = api
        .clone()
        .oneshot(get(format!("{}/api/v1/models", other.base_url())));
    assert_eq!(elsewhere.await.unwrap().status(), 401);
    credential.rotate(SECRETS[4]).unwrap();
    credential.rotate("bad SECRET").unwrap_err();
    let rotated = api.oneshot(get(format!("{}/api/v1/models", server.base_url())));
    assert_eq!(rotated.await.unwrap().status(), 401);

    let text = logs.text();
    assert!(
        text.contains("\"x-api-key\": Sensitive"),
        "the trace layer saw the header: {text}"
    );
    assert!(text.contains("credential not attached"), "{text}");
    assert!(text.contains("credential rotated"), "{text}");
    assert_clean("tracing output", &text);
}

/// Every other path at TRACE level: token fetch, refresh, a rejected token replayed, token
/// errors, classified failures, the server side's refusals; and the `Debug` of every public type
/// on those paths. No API key, client secret or token may show.
#[tokio::test(flavor = "current_thread")]
async fn tokens_retries_errors_and_the_server_side_show_no_secret_either() {
    use http::header::AUTHORIZATION;
    use tower::Layer;
    use tower_api_auth::outcome::error_for_outcome;
    use tower_api_auth::server::{KeyDigest, KeyRecord, MemoryKeyStore, Principal};
    use tower_api_auth::token::TokenErrorKind;
    use tower_api_auth::{
        ClassifyLayer, ServiceBuilderAuthExt, Token, TokenAuthLayer, TokenCredential,
        ValidateCredentialLayer,
    };
    use tower_api_auth_mock::MockProviders;
    use tower_api_auth_mock::TokenFault;

    let logs = CapturedLogs::default();
    let _guard = logs.install();
    let mocks = MockProviders::start().await.unwrap();
    mocks.akool.accept_key("akool-client-SECRET");
    mocks.polyteia.accept_key("pak-SECRET-exchange");
    mocks.akool.ban_key("banned-SECRET-key");
    let http = client();
    let mut shown = String::new();

    // Akool: getToken, a 1101 replayed with a new token, an explicit refresh.
    let tokens = akool::client_credentials("client-id", "akool-client-SECRET")
        .base_url(mocks.akool.base_url())
        .build(http.clone())
        .unwrap();
    let api = ServiceBuilder::new()
        .token_auth(tokens.clone())
        .classify(akool::classifier())
        .service(http.clone());
    let url = format!("{}/api/open/v3/faceswap/quota/info", mocks.akool.base_url());
    api.clone().oneshot(get(&url)).await.unwrap();
    mocks.akool.expire_tokens();
    api.clone().oneshot(get(&url)).await.unwrap();
    tokens.invalidate();
    api.clone().oneshot(get(&url)).await.unwrap();
    assert_eq!(mocks.akool.token_request_count(), 3);
    shown += &format!("{tokens:?} {:?}", TokenAuthLayer::new(tokens.clone()));

    // Polyteia's key exchange.
    let exchanged = polyteia::key_exchange("pak-SECRET-exchange")
        .base_url(mocks.polyteia.base_url())
        .build(http.clone())
        .unwrap();
    exchanged.fetch().await.unwrap();
    shown += &format!("{exchanged:?}");

    // Token errors: a wrong client secret, an unreachable endpoint.
    let wrong = akool::client_credentials("client-id", "wrong-client-SECRET")
        .base_url(mocks.akool.base_url())
        .build(http.clone())
        .unwrap();
    let err = wrong.fetch().await.unwrap_err();
    shown += &format!("{err} {err:?}");
    let err = TokenAuthLayer::new(wrong)
        .layer(http.clone())
        .oneshot(get(&url))
        .await
        .unwrap_err();
    shown += &format!("{err} {err:?}");

    // A token the API never accepts: rejected again after its replay, then a refetch refused
    // by the rate limit.
    let issued = std::sync::atomic::AtomicUsize::new(0);
    let never = TokenCredential::builder(move || {
        let n = issued.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        async move { Ok::<_, std::io::Error>(Token::new(format!("never-SECRET-token-{n}"))) }
    })
    .origin(mocks.polyteia.base_url())
    .build()
    .unwrap();
    let api_url = format!("{}/api", mocks.polyteia.base_url());
    // Rejected after the replay: the API's answer comes back; the refetch after that is
    // rate-limited, which `rejected` reports as an error.
    let response = TokenAuthLayer::new(never.clone())
        .layer(http.clone())
        .oneshot(post_json(&api_url, "{}"))
        .await
        .unwrap();
    shown += &format!("{response:?}");
    let generation = never.generation().unwrap();
    let err = never.rejected(generation).await.unwrap_err();
    assert_eq!(err.kind(), TokenErrorKind::Rejected);
    shown += &format!("{err} {err:?}");

    // A token endpoint that never answers: the fetch times out.
    let stalled = MockServer::start(Provider::Akool).await.unwrap();
    stalled.accept_key("stalled-client-SECRET");
    stalled.set_token_fault(Some(TokenFault::StallMidBody));
    let timed_out = akool::client_credentials("client-id", "stalled-client-SECRET")
        .base_url(stalled.base_url())
        .token_builder(http.clone())
        .fetch_timeout(std::time::Duration::from_millis(50))
        .build()
        .unwrap();
    let err = timed_out.fetch().await.unwrap_err();
    assert_eq!(err.kind(), TokenErrorKind::Timeout);
    shown += &format!("{err} {err:?}");

    // A classified failure carrying the banned key.
    let banned = akool::api_key("banned-SECRET-key")
        .origin(mocks.akool.base_url())
        .build()
        .unwrap();
    let response = ServiceBuilder::new()
        .layer(ClassifyLayer::new(akool::classifier()))
        .auth(banned)
        .service(http.clone())
        .oneshot(get(&url))
        .await
        .unwrap();
    let err = error_for_outcome(response).unwrap_err();
    shown += &format!("{err} {err:?}");

    // The server side: refusals of unknown, revoked and malformed keys.
    let keys = MemoryKeyStore::new();
    keys.insert(
        "server-SECRET-key",
        KeyRecord::new(Principal::new("caller")).revoked(),
    );
    let layer = ValidateCredentialLayer::new(Placement::bearer(), keys.clone());
    shown += &format!(
        "{keys:?} {layer:?} {:?}",
        KeyDigest::of("server-SECRET-key")
    );
    let server = layer.layer(tower::service_fn(|_: http::Request<support::Body>| async {
        Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
    }));
    for value in [
        "Bearer server-SECRET-key",
        "Bearer unknown-SECRET-key",
        "Bearer  malformed-SECRET-key",
    ] {
        let mut request = get("/");
        request
            .headers_mut()
            .insert(AUTHORIZATION, value.parse().unwrap());
        let response = server.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), 401);
        shown += &format!("{response:?}");
    }

    let text = logs.text();
    assert!(text.contains("access token fetched"), "{text}");
    assert!(text.contains("request refused"), "{text}");
    assert_clean("tracing output", &text);
    assert_clean("Debug and Display", &shown);
    for token in ["akool-token-", "polyteia-token-"] {
        assert!(!text.contains(token), "a token in the logs: {text}");
        assert!(
            !shown.contains(token),
            "a token in Debug or Display: {shown}"
        );
    }
}

/// A token endpoint that quotes what it was sent back in its refusal: the secret is blanked out
/// of the error, its `Display`, its `Debug` and its source.
#[tokio::test]
async fn a_token_endpoint_echoing_the_secret_does_not_put_it_in_the_error() {
    use axum::routing::post;
    let echo = |field: &'static str, status: http::StatusCode| {
        move |body: axum::body::Bytes| async move {
            let sent = String::from_utf8_lossy(&body).into_owned();
            let answer = serde_json::json!({ "code": 1101, field: format!("bad request {sent}") });
            (
                status,
                [(http::header::CONTENT_TYPE, "application/json")],
                answer.to_string(),
            )
        }
    };
    let router = axum::Router::new()
        .route(
            "/api/open/v3/getToken",
            post(echo("msg", http::StatusCode::OK)),
        )
        .route(
            "/api/v1/auth/exchange",
            post(echo("error", http::StatusCode::UNAUTHORIZED)),
        );
    let server = support::Served::start(router).await;

    let akool = akool::client_credentials("client-id", "echoed-SECRET-1")
        .base_url(&server.base_url)
        .build(client())
        .unwrap();
    let polyteia = polyteia::key_exchange("pak_echoed-SECRET-2")
        .base_url(&server.base_url)
        .path("/api/v1/auth/exchange")
        .build(client())
        .unwrap();
    for tokens in [akool, polyteia] {
        let err = tokens.fetch().await.unwrap_err();
        let source = std::error::Error::source(&err).unwrap();
        let shown = format!("{err} {err:?} {source} {source:?}");
        assert!(shown.contains("[redacted]"), "the echo is kept: {shown}");
        assert!(!shown.contains("SECRET"), "{shown}");
    }
}

/// An axum app with tower-http's `TraceLayer` recording request headers: the key a caller
/// presents never reaches its spans when the trace runs after the server layer (which marks
/// the headers it read sensitive), or runs first behind `SetSensitiveRequestHeadersLayer`.
/// The last row, a trace before the layer and nothing marking the headers, shows the key: the
/// capture sees what a misordered stack would log.
#[tokio::test]
async fn a_trace_recording_headers_never_shows_an_incoming_key() {
    use axum::routing::get as route;
    use http::header::{AUTHORIZATION, HeaderName};
    use tower_api_auth::ValidateCredentialLayer;
    use tower_api_auth::server::{KeyRecord, MemoryKeyStore, Principal};
    use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;

    const KEY: &str = "incoming-SECRET-key";
    let x_api_key = HeaderName::from_static("x-api-key");
    let keys = MemoryKeyStore::new();
    keys.insert(KEY, KeyRecord::new(Principal::new("caller")));
    let validate = ValidateCredentialLayer::new(Placement::bearer(), keys)
        .accept(Placement::header(x_api_key.clone()).unwrap());
    let trace = TraceLayer::new_for_http()
        .make_span_with(
            DefaultMakeSpan::new()
                .level(Level::INFO)
                .include_headers(true),
        )
        .on_request(DefaultOnRequest::new().level(Level::INFO));
    let sensitive = SetSensitiveRequestHeadersLayer::new([AUTHORIZATION, x_api_key.clone()]);
    let app = || axum::Router::new().route("/", route(|| async { "ok" }));

    // One stack as a user of tower might build it: a Buffer before the layer, the trace after
    // it, the layer seeing another body type (a boxed one).
    let buffered = tower::ServiceBuilder::new()
        .layer(axum::error_handling::HandleErrorLayer::new(
            |_: tower::BoxError| async { http::StatusCode::SERVICE_UNAVAILABLE },
        ))
        .layer(tower::buffer::BufferLayer::new(16))
        .map_request(|request: http::Request<axum::body::Body>| {
            request.map(http_body_util::BodyExt::boxed_unsync)
        })
        .layer(validate.clone())
        .map_request(|request: http::Request<_>| request.map(axum::body::Body::new))
        .layer(trace.clone());
    type Row = (&'static str, axum::Router, bool);
    let rows: [Row; 4] = [
        (
            "trace after the layer",
            app().layer(trace.clone()).layer(validate.clone()),
            false,
        ),
        (
            "Buffer, a boxed body, the layer, then the trace (ServiceBuilder)",
            app().layer(buffered),
            false,
        ),
        (
            "trace first, behind SetSensitiveRequestHeadersLayer",
            app()
                .layer(validate.clone())
                .layer(trace.clone())
                .layer(sensitive),
            false,
        ),
        (
            "trace first, nothing marking the headers (control)",
            app().layer(validate.clone()).layer(trace.clone()),
            true,
        ),
    ];
    for (name, router, shows_key) in rows {
        let logs = CapturedLogs::default();
        let _guard = logs.install();
        let served = support::Served::start(router).await;
        for (header, value) in [
            (AUTHORIZATION, format!("Bearer {KEY}")),
            (x_api_key.clone(), KEY.to_owned()),
        ] {
            let mut request = get(&served.base_url);
            request.headers_mut().insert(header, value.parse().unwrap());
            let response = client().request(request).await.unwrap();
            assert_eq!(response.status(), 200, "{name}");
        }
        let text = logs.text();
        assert!(
            text.contains("headers="),
            "{name}: no span recorded headers: {text}"
        );
        assert_eq!(text.contains(KEY), shows_key, "{name}: {text}");
    }
}
