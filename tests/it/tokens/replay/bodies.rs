//! Request bodies on replay: boxed bodies of known size buffered and replayed intact, trailers
//! included; streaming bodies sent once, the next request getting the new token.

use super::*;

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
