//! Fetched tokens: lazy single-flight fetches, fault handling, cancellation and refresh ahead,
//! against the Akool and Polyteia stand-ins' token endpoints.

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use tokio::sync::Barrier;
use tower::{Layer, ServiceExt};
use tower_api_auth::TokenAuthLayer;
use tower_api_auth::providers::{akool, polyteia};
use tower_api_auth::token::{EndpointError, TokenErrorKind};
use tower_api_auth_mock::TokenFault;

use support::{
    akool_server, akool_tokens, client, client_h2, get, json, polyteia_request, polyteia_server,
    quota_url, token_error,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_thousand_concurrent_requests_on_a_cold_cache_cause_one_fetch() {
    const CALLERS: usize = 10_000;
    let server = akool_server().await;
    let http = client_h2();
    let tokens = akool_tokens(&server, http.clone());
    let api = TokenAuthLayer::new(tokens.clone()).layer(http);
    let start = Arc::new(Barrier::new(CALLERS));

    let callers: Vec<_> = (0..CALLERS)
        .map(|_| {
            let (api, start, url) = (api.clone(), Arc::clone(&start), quota_url(&server));
            tokio::spawn(async move {
                start.wait().await;
                json(api.oneshot(get(url)).await.unwrap()).await["code"].clone()
            })
        })
        .collect();
    for caller in callers {
        assert_eq!(caller.await.unwrap(), 1000);
    }

    assert_eq!(server.token_request_count(), 1);
    assert_eq!(tokens.fetch_count(), 1);
    assert_eq!(tokens.generation(), Some(1));
    let requests = server.requests();
    assert_eq!(requests.len(), CALLERS + 1);
    for request in requests
        .iter()
        .filter(|r| r.uri.path().ends_with("quota/info"))
    {
        assert_eq!(request.headers["authorization"], "Bearer akool-token-1");
        assert!(!request.headers.contains_key("x-api-key"));
    }
}

#[tokio::test]
async fn bad_client_credentials_are_a_typed_error_naming_akools_code() {
    let server = akool_server().await;
    let tokens = akool::client_credentials("client-id", "wrong-SECRET")
        .base_url(server.base_url())
        .build(client())
        .unwrap();
    let err = token_error(
        TokenAuthLayer::new(tokens)
            .layer(client())
            .oneshot(get(quota_url(&server)))
            .await
            .unwrap_err(),
    );
    // Wrong credentials stay wrong: a kind of their own, not retried in a loop.
    assert_eq!(err.kind(), TokenErrorKind::Unrecoverable);
    let source = std::error::Error::source(&err).unwrap();
    let code = source.downcast_ref::<EndpointError>().unwrap().code;
    assert_eq!(code, Some(1101));
    // The cause is the source, printed once by an error report, not repeated in `Display`.
    assert!(source.to_string().contains("1101"), "{source}");
    assert!(!err.to_string().contains("1101"), "{err}");
    assert!(!format!("{err} {err:?}").contains("SECRET"), "{err}");
}

/// Every fault of the token endpoint reaches every waiter as a typed error; the endpoint is
/// asked once for all of them; once healthy, the next request (after the backoff) recovers.
#[tokio::test]
async fn token_endpoint_faults_reach_every_waiter_and_the_next_request_recovers() {
    let faults = [
        (TokenFault::ServerError, TokenErrorKind::Fetch),
        (TokenFault::GarbageJson, TokenErrorKind::Fetch),
        (TokenFault::ErrorCode(1200), TokenErrorKind::Fetch),
        (TokenFault::EmptyToken, TokenErrorKind::Fetch),
        (TokenFault::Stall, TokenErrorKind::Timeout),
    ];
    for (fault, kind) in faults {
        let server = akool_server().await;
        server.set_token_fault(Some(fault));
        let tokens = akool::client_credentials("client-id", "client-secret")
            .base_url(server.base_url())
            .token_builder(client())
            .fetch_timeout(Duration::from_millis(200))
            .backoff(Duration::from_millis(20), Duration::from_millis(20))
            .build()
            .unwrap();
        let api = TokenAuthLayer::new(tokens.clone()).layer(client());

        let waiters = (0..20).map(|_| api.clone().oneshot(get(quota_url(&server))));
        for result in futures::future::join_all(waiters).await {
            assert_eq!(token_error(result.unwrap_err()).kind(), kind, "{fault:?}");
        }
        assert_eq!(server.token_request_count(), 1, "{fault:?}");
        assert_eq!(tokens.generation(), None, "errors are not cached");

        server.set_token_fault(None);
        let response = api.oneshot(get(quota_url(&server))).await.unwrap();
        assert_eq!(json(response).await["code"], 1000, "{fault:?}");
        assert_eq!(server.token_request_count(), 2, "{fault:?}");
    }
}

#[tokio::test]
async fn an_unreachable_token_endpoint_is_a_fetch_error() {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let tokens = akool::client_credentials("client-id", "client-secret")
        .base_url(&base_url)
        .build(client())
        .unwrap();
    let err = tokens.fetch().await.unwrap_err();
    assert_eq!(err.kind(), TokenErrorKind::Fetch);
}

#[tokio::test]
async fn a_slow_token_endpoint_within_the_timeout_succeeds() {
    let server = akool_server().await;
    server.set_token_fault(Some(TokenFault::Delay(Duration::from_millis(50))));
    let tokens = akool_tokens(&server, client());
    assert_eq!(tokens.fetch().await.unwrap(), 1);
}

#[tokio::test]
async fn a_request_dropped_mid_fetch_cancels_nothing() {
    let server = akool_server().await;
    server.set_token_fault(Some(TokenFault::Delay(Duration::from_millis(50))));
    let tokens = akool_tokens(&server, client());
    let api = TokenAuthLayer::new(tokens.clone()).layer(client());

    let mut dropped = api.clone().oneshot(get(quota_url(&server))).boxed();
    assert!(
        (&mut dropped).now_or_never().is_none(),
        "waiting on the fetch"
    );
    // Let the fetch reach the endpoint (it answers 50 ms later), then walk away.
    while server.token_request_count() == 0 {
        tokio::task::yield_now().await;
    }
    drop(dropped);

    let response = api.oneshot(get(quota_url(&server))).await.unwrap();
    assert_eq!(json(response).await["code"], 1000);
    assert_eq!(server.token_request_count(), 1);
}

#[tokio::test]
async fn polyteia_exchanges_the_key_and_learns_the_expiry() {
    let server = polyteia_server().await;
    server.set_token_ttl(Duration::from_secs(900));
    let tokens = polyteia::key_exchange("pak_1")
        .organization_id("org_1")
        .base_url(server.base_url())
        .build(client())
        .unwrap();
    let api = TokenAuthLayer::new(tokens.clone()).layer(client());

    let response = api.oneshot(polyteia_request(&server)).await.unwrap();
    assert_eq!(response.status(), 200);

    let expires_in = tokens.expires_in().unwrap();
    assert!(expires_in > Duration::from_secs(890) && expires_in <= Duration::from_secs(900));
    let requests = server.requests();
    assert_eq!(requests[0].uri.path(), polyteia::EXCHANGE_PATH);
    assert_eq!(
        requests[1].headers["authorization"],
        "Bearer polyteia-token-1"
    );
    assert_eq!(requests[1].headers["content-type"], "application/json");

    let wrong = polyteia::key_exchange("pak_wrong")
        .base_url(server.base_url())
        .build(client())
        .unwrap();
    let err = wrong.fetch().await.unwrap_err();
    assert_eq!(err.kind(), TokenErrorKind::Unrecoverable);
    let source = std::error::Error::source(&err).unwrap();
    let exchange = source.downcast_ref::<EndpointError>().unwrap();
    assert_eq!(exchange.status, 401);
    assert!(!err.to_string().contains("pak_wrong"));
}

/// A token flow that could never succeed fails at `build`, not at the first request, and says
/// what is wrong without the value.
#[test]
fn token_flows_check_their_client_credentials_at_build() {
    use tower_api_auth::CredentialError;
    let cases = [
        (
            akool::client_credentials("", "secret").build(client()),
            CredentialError::EmptyClientId,
        ),
        (
            akool::client_credentials("  ", "secret").build(client()),
            CredentialError::EmptyClientId,
        ),
        (
            akool::client_credentials("id", "").build(client()),
            CredentialError::EmptySecret,
        ),
        (
            akool::client_credentials("id", "bad SECRET").build(client()),
            CredentialError::Whitespace { at: 3 },
        ),
        (
            polyteia::key_exchange("").build(client()),
            CredentialError::EmptySecret,
        ),
    ];
    for (built, expected) in cases {
        let err = built.unwrap_err();
        assert_eq!(err, expected);
        assert!(!err.to_string().contains("SECRET"), "{err}");
    }
}

/// A token endpoint of the user's own, in OAuth 2.0's shape, configured with
/// `JsonTokenEndpoint`: one fetch on first use, its lifetime read from `expires_in`, the secret
/// sent at its pointer only, and a 401 from the endpoint unrecoverable with its message (the
/// secret blanked out of it).
#[tokio::test]
async fn a_json_token_endpoint_of_ones_own_is_fetched_once_and_its_refusals_are_typed() {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::Json;
    use axum::routing::{get as route_get, post};
    use http::{HeaderMap, StatusCode};
    use serde_json::{Value, json as to_json};
    use tower_api_auth::token::JsonTokenEndpoint;

    let fetches = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&fetches);
    let auth = axum::Router::new().route(
        "/oauth/token",
        post(move |Json(body): Json<Value>| {
            let counter = Arc::clone(&counter);
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                match (&body["grant_type"], &body["credentials"]["key"]) {
                    (Value::String(grant), Value::String(key))
                        if grant == "api_key" && key == "right-key" =>
                    {
                        let answer = to_json!({ "access_token": "t-1", "expires_in": 3600 });
                        (StatusCode::OK, Json(answer))
                    }
                    (_, key) => {
                        let answer = to_json!({ "error": format!("key {key} is not known") });
                        (StatusCode::UNAUTHORIZED, Json(answer))
                    }
                }
            }
        }),
    );
    let api = axum::Router::new().route(
        "/v1/things",
        route_get(|headers: HeaderMap| async move {
            match headers["authorization"].to_str().unwrap() {
                "Bearer t-1" => StatusCode::OK,
                _ => StatusCode::UNAUTHORIZED,
            }
        }),
    );
    let (auth, api) = (
        support::Served::start(auth).await,
        support::Served::start(api).await,
    );
    let endpoint = |key: &str| {
        JsonTokenEndpoint::new(auth.url("/oauth/token"), key.to_owned())
            .body(to_json!({ "grant_type": "api_key" }))
            .secret_at("/credentials/key")
            .expires_in_at("/expires_in")
    };

    let tokens = endpoint("right-key")
        .token_builder(client())
        .origin(&api.base_url)
        .build()
        .unwrap();
    let service = TokenAuthLayer::new(tokens.clone()).layer(client());
    for _ in 0..3 {
        let response = service
            .clone()
            .oneshot(get(api.url("/v1/things")))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
    // The lifetime was read: a refresh is scheduled, about an hour out.
    let advisory_in = tokens.status().advisory_in;
    assert!(
        advisory_in.is_some_and(|d| d > Duration::from_secs(60)),
        "{advisory_in:?}"
    );

    let wrong = endpoint("wrong-key")
        .token_builder(client())
        .any_origin()
        .build()
        .unwrap();
    let err = wrong.fetch().await.unwrap_err();
    assert_eq!(err.kind(), TokenErrorKind::Unrecoverable);
    let refusal = std::error::Error::source(&err)
        .unwrap()
        .downcast_ref::<EndpointError>()
        .unwrap();
    assert_eq!((refusal.status, refusal.code), (401, None));
    assert_eq!(refusal.endpoint, auth.url("/oauth/token"));
    assert_eq!(
        refusal.message.as_deref(),
        Some("key \"[redacted]\" is not known")
    );
    assert!(!format!("{err} {err:?} {refusal}").contains("wrong-key"));
}
