//! Token answers cut short: headers and part of a body, then a stall (a `Timeout`, the default
//! fetch timeout included) or a dropped connection (a `Fetch` error), for every waiter alike.

use super::*;

/// Akool tokens with a short backoff and this fetch timeout, fetched through `http`.
fn akool_tokens_within(
    server: &MockServer,
    http: HttpClient,
    fetch_timeout: Duration,
) -> TokenCredential {
    akool::client_credentials("client-id", "client-secret")
        .base_url(server.base_url())
        .token_builder(http)
        .fetch_timeout(fetch_timeout)
        .backoff(Duration::from_millis(20), Duration::from_millis(20))
        .build()
        .unwrap()
}

/// Sends `WAITERS` concurrent requests on a cold cache and returns their token errors. They
/// are all polled before the fetch can end (this is a current-thread runtime and the fetch is a
/// task of its own), so they all wait on the same fetch.
async fn waiters_fail<S, R>(api: &S, url: &str) -> Vec<TokenError>
where
    S: tower::Service<Request<support::Body>, Response = Response<R>> + Clone,
    S::Error: Into<tower::BoxError>,
{
    let waiters = (0..WAITERS).map(|_| api.clone().oneshot(get(url)));
    bounded(futures::future::join_all(waiters))
        .await
        .into_iter()
        .map(|result| match result {
            Ok(response) => panic!("expected a token error, got {}", response.status()),
            Err(err) => token_error(err.into()),
        })
        .collect()
}

/// The mid-body faults send what they claim: a 200, its headers and the first bytes of the body;
/// then nothing (stall) or a broken connection (abort).
#[tokio::test]
async fn the_mid_body_faults_send_the_headers_and_part_of_the_body_first() {
    let server = akool_server().await;
    let token_url = format!("{}{}", server.base_url(), "/api/open/v3/getToken");

    server.set_token_fault(Some(TokenFault::StallMidBody));
    let response = bounded(client().request(post_json(&token_url, "{}")))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let first = bounded(body.frame()).await.unwrap().unwrap();
    assert!(first.data_ref().unwrap().starts_with(br#"{"code": 1000"#));
    assert!(
        body.frame().now_or_never().is_none(),
        "the rest never comes"
    );

    server.set_token_fault(Some(TokenFault::AbortMidBody));
    let response = bounded(client().request(post_json(&token_url, "{}")))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let err = bounded(response.into_body().collect()).await.unwrap_err();
    assert!(!err.to_string().is_empty());
    assert_eq!(server.token_request_count(), 2);
}

/// The fetch timeout covers reading the answer's body, not only its headers: a token answer that
/// stalls halfway is a `Timeout` for every waiter, one fetch for all of them; once the endpoint
/// is healthy the next request recovers with one more fetch.
#[tokio::test]
async fn a_token_answer_stalled_mid_body_times_out_for_every_waiter_and_the_next_request_recovers()
{
    let server = akool_server().await;
    server.set_token_fault(Some(TokenFault::StallMidBody));
    // Short, but long enough for the healthy fetch after it on a loaded machine.
    let tokens = akool_tokens_within(&server, client(), Duration::from_secs(1));
    let api = TokenAuthLayer::new(tokens.clone()).layer(client());

    let errors = waiters_fail(&api, &quota_url(&server)).await;
    same_error(errors, TokenErrorKind::Timeout);
    assert_eq!(server.token_request_count(), 1);
    assert_eq!(tokens.generation(), None, "errors are not cached");

    server.set_token_fault(None);
    let response = bounded(api.oneshot(get(quota_url(&server)))).await.unwrap();
    assert_eq!(json(response).await["code"], 1000);
    assert_eq!(server.token_request_count(), 2);
    assert_eq!(tokens.fetch_count(), 2);
}

/// A connection dropped halfway through the token answer (HTTP/1: closed mid-body; HTTP/2: the
/// stream is reset) is a `Fetch` error for every waiter, never a hang or a half-read token.
#[tokio::test]
async fn a_token_answer_dropped_mid_body_is_a_fetch_error_for_every_waiter_and_the_next_request_recovers()
 {
    for (protocol, http) in [("HTTP/1", client()), ("HTTP/2", client_h2())] {
        let server = akool_server().await;
        server.set_token_fault(Some(TokenFault::AbortMidBody));
        let tokens = akool_tokens_within(&server, http, Duration::from_secs(30));
        let api = TokenAuthLayer::new(tokens.clone()).layer(client());

        let errors = waiters_fail(&api, &quota_url(&server)).await;
        let err = same_error(errors, TokenErrorKind::Fetch);
        assert!(
            std::error::Error::source(&err).is_some(),
            "{protocol}: {err}"
        );
        assert_eq!(server.token_request_count(), 1, "{protocol}");

        server.set_token_fault(None);
        let response = bounded(api.oneshot(get(quota_url(&server)))).await.unwrap();
        assert_eq!(json(response).await["code"], 1000, "{protocol}");
        assert_eq!(server.token_request_count(), 2, "{protocol}");
    }
}

/// The default fetch timeout is bounded (30 s) and covers reading the answer's body: an
/// endpoint that sends its headers and then stalls mid-body fails the fetch with `Timeout` after
/// exactly 30 s, with no timeout configured anywhere.
#[tokio::test(start_paused = true)]
async fn the_default_fetch_timeout_bounds_an_answer_stalled_mid_body() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let http = tower::service_fn(move |_: Request<Full<Bytes>>| {
        counter.fetch_add(1, Ordering::SeqCst);
        let partial = futures::stream::iter([Ok::<_, Infallible>(http_body::Frame::data(
            Bytes::from_static(br#"{"code": 1000, "tok"#),
        ))]);
        let body = StreamBody::new(partial.chain(futures::stream::pending()));
        async move { Ok::<_, Infallible>(Response::new(body)) }
    });
    let tokens = akool::client_credentials("client-id", "client-secret")
        .build(http)
        .unwrap();

    let started = Instant::now();
    let err = tokens.fetch().await.unwrap_err();
    assert_eq!(err.kind(), TokenErrorKind::Timeout);
    assert_eq!(started.elapsed(), Duration::from_secs(30));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}
