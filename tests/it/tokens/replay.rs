//! A rejected token is refetched once for everyone and each rejected request replayed once.

use crate::support;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http::StatusCode;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use tower::{Layer, ServiceExt};
use tower_api_auth::providers::polyteia;
use tower_api_auth::{Token, TokenAuth, TokenAuthLayer, TokenCredential};
use tower_api_auth_mock::MockServer;

use support::{HttpClient, akool_tokens, client, json, polyteia_server, post_json};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_expiry_under_load_costs_one_refetch_and_one_replay_per_request() {
    const IN_FLIGHT: usize = 1_000;
    let server = polyteia_server().await;
    // HTTP/1: one connection per request in flight (an HTTP/2 server caps concurrent streams
    // below 1,000, and the hold needs all of them at the server at once).
    let http = client();
    let tokens = polyteia::key_exchange("pak_1")
        .base_url(server.base_url())
        .build(http.clone())
        .unwrap();
    assert_eq!(tokens.fetch().await.unwrap(), 1);
    let api = TokenAuthLayer::new(tokens.clone()).layer(http);
    let url = format!("{}/api", server.base_url());

    // Hold 1,000 requests at the server, expire their token, then let them through.
    let mut hold = server.hold(IN_FLIGHT);
    let callers: Vec<_> = (0..IN_FLIGHT)
        .map(|i| {
            let body = format!(r#"{{"query":"q{i}"}}"#);
            let request = api.clone().oneshot(post_json(&url, &body));
            tokio::spawn(async move {
                let response = request.await.unwrap();
                assert_eq!(response.status(), StatusCode::OK);
                let body = response.into_body().collect().await.unwrap().to_bytes();
                serde_json::from_slice::<serde_json::Value>(&body).unwrap()["data"]["name"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
        })
        .collect();
    hold.all_arrived().await;
    server.expire_tokens();
    hold.release();
    for (i, caller) in callers.into_iter().enumerate() {
        assert_eq!(caller.await.unwrap(), format!("q{i}"));
    }

    assert_eq!(server.token_request_count(), 2, "one refetch for all");
    assert_eq!(tokens.generation(), Some(2));
    // Every request arrived twice, its body intact both times: once with the expired token,
    // once with the new one.
    let mut seen: HashMap<Bytes, Vec<String>> = HashMap::new();
    for request in server.requests().iter().filter(|r| r.uri.path() == "/api") {
        let token = request.headers["authorization"]
            .to_str()
            .unwrap()
            .to_owned();
        seen.entry(request.body.clone()).or_default().push(token);
    }
    assert_eq!(seen.len(), IN_FLIGHT);
    for tokens in seen.values() {
        assert_eq!(
            tokens,
            &["Bearer polyteia-token-1", "Bearer polyteia-token-2"]
        );
    }
}

/// A token source whose tokens the stand-in never accepts, counting fetches.
fn never_accepted(server: &MockServer, fetches: &Arc<AtomicUsize>) -> TokenCredential {
    let fetches = Arc::clone(fetches);
    TokenCredential::builder(move || {
        let n = fetches.fetch_add(1, Ordering::SeqCst) + 1;
        async move { Ok::<_, std::io::Error>(Token::new(format!("revoked-{n}"))) }
    })
    .origin(server.base_url())
    .build()
    .unwrap()
}

/// The Polyteia stand-in, and a client whose tokens it never accepts, and their fetch count.
async fn never_accepted_by_polyteia() -> (MockServer, Arc<AtomicUsize>, TokenAuth<HttpClient>) {
    let server = polyteia_server().await;
    let fetches = Arc::new(AtomicUsize::new(0));
    let api = TokenAuthLayer::new(never_accepted(&server, &fetches)).layer(client());
    (server, fetches, api)
}

#[tokio::test]
async fn a_second_rejection_is_the_apis_answer_after_exactly_two_attempts() {
    let (server, fetches, api) = never_accepted_by_polyteia().await;

    let url = format!("{}/api", server.base_url());
    let response = api.oneshot(post_json(&url, "{}")).await.unwrap();
    // The caller keeps what the API said: its status and its body.
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(json(response).await.get("error").is_some());
    assert_eq!(server.request_count(), 2);
    assert_eq!(fetches.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_wave_of_requests_against_a_broken_account_is_not_a_wave_of_fetches() {
    let (server, fetches, api) = never_accepted_by_polyteia().await;
    let url = format!("{}/api", server.base_url());

    for _ in 0..20 {
        let response = api.clone().oneshot(post_json(&url, "{}")).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    // The first token and the one refetch; every later rejection is rate-limited.
    assert_eq!(fetches.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn forbidden_is_returned_as_it_is_with_no_refetch_and_no_replay() {
    let server = polyteia_server().await;
    let tokens = polyteia::key_exchange("pak_1")
        .base_url(server.base_url())
        .build(client())
        .unwrap();
    let api = TokenAuthLayer::new(tokens.clone()).layer(client());
    let url = format!("{}/api", server.base_url());

    let response = api
        .oneshot(post_json(&url, r#"{"query":"restricted"}"#))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(server.token_request_count(), 1);
    assert_eq!(tokens.generation(), Some(1));
    assert_eq!(server.request_count(), 2, "the exchange and one API call");
}

/// A body error type the crate has never heard of.
#[derive(Debug)]
struct AppBodyError;

impl std::fmt::Display for AppBodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("app body error")
    }
}

impl std::error::Error for AppBodyError {}

/// A hyper-util client whose requests carry boxed bodies with error type `E`.
fn boxed_client<E: Into<tower::BoxError>>() -> hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    BoxBody<Bytes, E>,
> {
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http()
}

/// The Polyteia stand-in, tokens from it whose first one it has since expired, and its API's
/// URL.
async fn polyteia_token_expired() -> (MockServer, TokenCredential, String) {
    let server = polyteia_server().await;
    let tokens = polyteia::key_exchange("pak_1")
        .base_url(server.base_url())
        .build(client())
        .unwrap();
    tokens.fetch().await.unwrap();
    server.expire_tokens();
    let url = format!("{}/api", server.base_url());
    (server, tokens, url)
}

/// A boxed body of known size, with error type `E`, through a hyper-util client whose requests
/// carry such bodies: buffered and replayed byte for byte.
async fn boxed_body_replayed<E>(row: &str)
where
    E: Into<tower::BoxError> + Send + Sync + 'static,
{
    let (server, tokens, url) = polyteia_token_expired().await;

    let body: BoxBody<Bytes, E> = Full::new(Bytes::from_static(br#"{"query":"boxed"}"#))
        .map_err(|never| match never {})
        .boxed();
    let request = http::Request::post(&url).body(body).unwrap();
    let response = TokenAuthLayer::new(tokens.clone())
        .layer(boxed_client::<E>())
        .oneshot(request)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{row}");
    let requests = server.requests();
    let api_calls = requests.into_iter().filter(|r| r.uri.path() == "/api");
    let bodies: Vec<_> = api_calls.map(|r| r.body).collect();
    assert_eq!(bodies, [&br#"{"query":"boxed"}"#[..]; 2], "{row}");
    assert_eq!(tokens.generation(), Some(2), "{row}");
}

#[tokio::test]
async fn a_boxed_body_of_known_size_is_buffered_and_replayed_intact_whatever_its_error_type() {
    boxed_body_replayed::<std::io::Error>("io::Error").await;
    boxed_body_replayed::<tower::BoxError>("BoxError").await;
    boxed_body_replayed::<std::convert::Infallible>("Infallible").await;
    boxed_body_replayed::<hyper::Error>("hyper::Error").await;
    boxed_body_replayed::<AppBodyError>("an application's own error").await;
}

#[tokio::test]
async fn a_streaming_body_is_not_replayed_but_the_next_request_gets_a_new_token() {
    let (server, tokens, url) = polyteia_token_expired().await;

    // A stream of unknown length: sent as it streams, once.
    let chunks = [Ok::<_, std::io::Error>(http_body::Frame::data(
        Bytes::from_static(b"{}"),
    ))];
    let body = StreamBody::new(futures::stream::iter(chunks)).boxed();
    let request = http::Request::post(&url).body(body).unwrap();
    let response = TokenAuthLayer::new(tokens.clone())
        .layer(boxed_client::<std::io::Error>())
        .oneshot(request)
        .await
        .unwrap();
    // Sent once: the API's rejection is handed back, and the token was refetched meanwhile.
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let api_calls = server
        .requests()
        .into_iter()
        .filter(|r| r.uri.path() == "/api");
    assert_eq!(api_calls.count(), 1);

    let response = TokenAuthLayer::new(tokens.clone())
        .layer(client())
        .oneshot(post_json(&url, r#"{"query":"q"}"#))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(tokens.generation(), Some(2));
    assert_eq!(server.token_request_count(), 2);
}

mod akool_body_codes {
    //! Akool says "expired" with code 1101 in the body of an HTTP 200: the classify layer inside
    //! the token layer turns that into the verdict the token layer acts on.

    use tower::ServiceBuilder;
    use tower_api_auth::ClassifyLayer;
    use tower_api_auth::outcome::{Outcome, OutcomeKind};
    use tower_api_auth::providers::akool;

    use super::support::{CannedServer, akool_server, get, json};
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn code_1101_under_load_costs_one_refetch_and_one_replay_per_request() {
        const IN_FLIGHT: usize = 1_000;
        let server = akool_server().await;
        let http = client();
        let tokens = akool_tokens(&server, http.clone());
        tokens.fetch().await.unwrap();
        let api = ServiceBuilder::new()
            .layer(TokenAuthLayer::new(tokens.clone()))
            .layer(ClassifyLayer::new(akool::classifier()))
            .service(http);
        let url = format!(
            "{}/api/open/v3/content/video/createbytalkingphoto",
            server.base_url()
        );

        let mut hold = server.hold(IN_FLIGHT);
        let callers: Vec<_> = (0..IN_FLIGHT)
            .map(|i| {
                let request = api
                    .clone()
                    .oneshot(post_json(&url, &format!(r#"{{"n":{i}}}"#)));
                tokio::spawn(async move {
                    let response = request.await.unwrap();
                    let outcome = response.extensions().get::<Outcome>().unwrap().clone();
                    assert_eq!(outcome.kind(), OutcomeKind::Success);
                    json(response).await["code"].as_i64().unwrap()
                })
            })
            .collect();
        hold.all_arrived().await;
        server.expire_tokens();
        hold.release();
        for caller in callers {
            assert_eq!(caller.await.unwrap(), 1000);
        }
        assert_eq!(server.token_request_count(), 2);
        let api_calls = server
            .requests()
            .iter()
            .filter(|r| r.uri.path().ends_with("createbytalkingphoto"))
            .count();
        assert_eq!(
            api_calls,
            2 * IN_FLIGHT,
            "each request sent once, replayed once"
        );
    }

    #[tokio::test]
    async fn code_1101_twice_is_the_apis_answer_after_exactly_two_attempts() {
        let server = akool_server().await;
        let fetches = Arc::new(AtomicUsize::new(0));
        let tokens = never_accepted(&server, &fetches);
        let api = ServiceBuilder::new()
            .layer(TokenAuthLayer::new(tokens))
            .layer(ClassifyLayer::new(akool::classifier()))
            .service(client());
        let url = format!("{}/api/open/v3/faceswap/quota/info", server.base_url());

        let response = api.oneshot(get(&url)).await.unwrap();
        // The provider's answer reaches the caller: its code, its message, its body.
        let outcome = response.extensions().get::<Outcome>().unwrap().clone();
        assert_eq!(outcome.code(), Some(1101));
        assert!(outcome.message().is_some());
        assert_eq!(json(response).await["code"], 1101);
        assert_eq!(server.request_count(), 2);
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn banned_missing_forbidden_are_never_retried_nor_refetched() {
        let server = CannedServer::start().await;
        let fetches = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&fetches);
        let tokens = TokenCredential::builder(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, std::io::Error>(Token::new("token")) }
        })
        .origin(&server.base_url)
        .build()
        .unwrap();
        let api = ServiceBuilder::new()
            .layer(TokenAuthLayer::new(tokens.clone()))
            .layer(ClassifyLayer::new(akool::classifier()))
            .service(client());

        for (path, kind) in [
            ("/akool/1200", OutcomeKind::Banned),
            ("/akool/1102", OutcomeKind::CredentialMissing),
            ("/akool/1009", OutcomeKind::Forbidden),
            ("/status/403", OutcomeKind::Forbidden),
        ] {
            let response = api.clone().oneshot(get(server.url(path))).await.unwrap();
            let outcome = response.extensions().get::<Outcome>().unwrap();
            assert_eq!(outcome.kind(), kind, "{path}");
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        assert_eq!(tokens.generation(), Some(1));
    }
}

/// A buffered body is replayed whole: its data and its trailers, both times (HTTP/2, where
/// request trailers travel).
#[tokio::test]
async fn a_buffered_body_is_replayed_with_its_trailers() {
    type Seen = Arc<std::sync::Mutex<Vec<(String, Bytes, Option<http::HeaderMap>)>>>;
    async fn api(
        axum::extract::State(seen): axum::extract::State<Seen>,
        request: http::Request<axum::body::Body>,
    ) -> StatusCode {
        let authorization = request.headers()["authorization"]
            .to_str()
            .unwrap()
            .to_owned();
        let collected = request.into_body().collect().await.unwrap();
        let trailers = collected.trailers().cloned();
        let rejected = authorization == "Bearer t1";
        seen.lock()
            .unwrap()
            .push((authorization, collected.to_bytes(), trailers));
        if rejected {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::OK
        }
    }
    let seen = Seen::default();
    let router = axum::Router::new()
        .route("/api", axum::routing::post(api))
        .with_state(Arc::clone(&seen));
    let server = support::Served::start(router).await;

    let fetches = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&fetches);
    let tokens = TokenCredential::builder(move || {
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        async move { Ok::<_, std::io::Error>(Token::new(format!("t{n}"))) }
    })
    .origin(&server.base_url)
    .build()
    .unwrap();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http();

    let mut trailers = http::HeaderMap::new();
    trailers.insert("x-checksum", "c0ffee".parse().unwrap());
    let body = Full::new(Bytes::from_static(b"payload"))
        .with_trailers(std::future::ready(Some(Ok(trailers.clone()))))
        .boxed();
    let request = http::Request::post(server.url("/api")).body(body).unwrap();
    let response = TokenAuthLayer::new(tokens)
        .layer(client)
        .oneshot(request)
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    let seen = seen.lock().unwrap().clone();
    let sent = |token: &str| {
        (
            format!("Bearer {token}"),
            Bytes::from_static(b"payload"),
            Some(trailers.clone()),
        )
    };
    assert_eq!(seen, [sent("t1"), sent("t2")]);
    assert_eq!(fetches.load(Ordering::SeqCst), 2);
}
