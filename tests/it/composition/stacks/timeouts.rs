//! Where a tower `Timeout` bounds the wait for a token, and where it does not.

use super::*;

/// A documented limit, shared with every layer that waits in `poll_ready` (`ConcurrencyLimit`,
/// `Buffer`): tower's `Timeout` starts its clock at `call`, so outside `TokenAuthLayer` it does
/// not bound the wait for a token; the credential's `fetch_timeout` does. A `Buffer` between
/// them moves the wait into the response future, where the `Timeout` sees it.
#[tokio::test(start_paused = true)]
async fn a_timeout_outside_bounds_the_wait_for_a_token_only_through_a_buffer() {
    // A token endpoint that never answers; the credential gives up after 2 s.
    let stalled = || {
        TokenCredential::builder(|| {
            std::future::pending::<Result<tower_api_auth::Token, Infallible>>()
        })
        .any_origin()
        .fetch_timeout(Duration::from_secs(2))
        .build()
        .unwrap()
    };
    let api = tower::service_fn(|_: Request<Full<Bytes>>| async {
        Ok::<_, Infallible>(Response::new(Full::<Bytes>::default()))
    });
    let request = || {
        Request::get("https://api.example.com/")
            .body(Full::default())
            .unwrap()
    };

    let direct = ServiceBuilder::new()
        .layer(TimeoutLayer::new(Duration::from_millis(100)))
        .token_auth(stalled())
        .service(api);
    let started = tokio::time::Instant::now();
    let err = direct.oneshot(request()).await.unwrap_err();
    let err = err.downcast::<tower_api_auth::TokenError>().unwrap();
    assert_eq!(err.kind(), tower_api_auth::token::TokenErrorKind::Timeout);
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(2),
        "the fetch timeout, not the 100 ms"
    );

    let buffered = ServiceBuilder::new()
        .layer(TimeoutLayer::new(Duration::from_millis(100)))
        .buffer(1)
        .token_auth(stalled())
        .service(api);
    let started = tokio::time::Instant::now();
    let err = buffered.oneshot(request()).await.unwrap_err();
    assert!(err.is::<tower::timeout::error::Elapsed>(), "{err}");
    assert_eq!(started.elapsed(), Duration::from_millis(100));
}
