//! A token-endpoint outage longer than the token's life, on loopback, through each stack: not an
//! outage of the API, and no fetch storm while the API refuses the token.

use super::*;

/// A Polyteia stand-in issuing 2-second tokens, and a credential that backs off 300 ms after a
/// failed refresh.
async fn short_lived() -> (tower_api_auth_mock::MockServer, TokenCredential) {
    use tower_api_auth::providers::polyteia;
    use tower_api_auth_mock::{MockServer, Provider};
    let server = MockServer::start(Provider::Polyteia).await.unwrap();
    server.accept_key("pak_1");
    server.set_token_ttl(Duration::from_secs(2));
    let tokens = polyteia::key_exchange("pak_1")
        .base_url(server.base_url())
        .token_builder(support::client())
        .stale_backoff(Duration::from_millis(300), Duration::from_millis(300))
        .build()
        .unwrap();
    (server, tokens)
}

/// Sends one request every 100 ms for `span` and returns the statuses.
async fn paced_requests<S, B>(api: S, url: &str, span: Duration) -> Vec<u16>
where
    S: tower::Service<http::Request<support::Body>, Response = http::Response<B>, Error = BoxError>
        + Clone,
{
    use tower::ServiceExt;
    let mut statuses = Vec::new();
    let mut pace = tokio::time::interval(Duration::from_millis(100));
    let until = tokio::time::Instant::now() + span;
    while tokio::time::Instant::now() < until {
        pace.tick().await;
        let request = support::post_json(url, r#"{"query":"q"}"#);
        let response = api.clone().oneshot(request).await.unwrap();
        statuses.push(response.status().as_u16());
    }
    statuses
}

/// The stacks the outage tests run in: the guarantee is the credential's, so it must hold
/// whatever the user builds around it.
#[derive(Debug, Clone, Copy)]
enum Stack {
    /// `TokenAuthLayer` alone.
    TokenAuth,
    /// `Buffer` outermost, a `ClassifyLayer` outside the token layer (the example's order).
    BufferedAndClassified,
    /// `without_replay()`: the token attached, nothing else.
    WithoutReplay,
}

const STACKS: [Stack; 3] = [
    Stack::TokenAuth,
    Stack::BufferedAndClassified,
    Stack::WithoutReplay,
];

type Api = tower::util::BoxCloneSyncService<
    http::Request<support::Body>,
    http::Response<http_body_util::combinators::UnsyncBoxBody<bytes::Bytes, BoxError>>,
    BoxError,
>;

fn stack(stack: Stack, tokens: &TokenCredential) -> Api {
    use http_body_util::BodyExt;
    use tower::{Layer, ServiceBuilder, ServiceExt};
    use tower_api_auth::ServiceBuilderAuthExt;
    use tower_api_auth::providers::polyteia;
    fn boxed<B>(
        response: http::Response<B>,
    ) -> http::Response<http_body_util::combinators::UnsyncBoxBody<bytes::Bytes, BoxError>>
    where
        B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        response.map(|body| body.map_err(Into::into).boxed_unsync())
    }
    let tokens = tokens.clone();
    match stack {
        Stack::TokenAuth => {
            let api = tower_api_auth::TokenAuthLayer::new(tokens).layer(support::client());
            Api::new(api.map_response(boxed))
        }
        Stack::BufferedAndClassified => {
            let api = ServiceBuilder::new()
                .buffer(4)
                .classify(polyteia::classifier())
                .token_auth(tokens)
                .service(support::client())
                .map_err(BoxError::from);
            Api::new(api.map_response(boxed))
        }
        Stack::WithoutReplay => {
            let layer = tower_api_auth::TokenAuthLayer::new(tokens).without_replay();
            Api::new(layer.layer(support::client()).map_response(boxed))
        }
    }
}

/// An outage, after the first token was fetched and used: which statuses the requests paced over
/// `span` got, and how often the token endpoint was asked meanwhile. `refusing`: the API refuses
/// the token from the start of the outage on.
async fn outage(
    stack_kind: Stack,
    span: Duration,
    refusing: bool,
) -> (Vec<u16>, usize, TokenCredential) {
    let (server, tokens) = short_lived().await;
    let api = stack(stack_kind, &tokens);
    let url = format!("{}/api", server.base_url());
    let before = paced_requests(api.clone(), &url, Duration::from_millis(200)).await;
    assert!(
        before.iter().all(|status| *status == 200),
        "{stack_kind:?}: {before:?}"
    );
    let fetches_before = server.token_request_count();

    server.set_token_fault(Some(tower_api_auth_mock::TokenFault::ServerError));
    if refusing {
        server.expire_tokens();
    }
    let during = paced_requests(api, &url, span).await;
    (
        during,
        server.token_request_count() - fetches_before,
        tokens,
    )
}

/// At least one refresh was attempted, at most one per 300 ms backoff (plus the first), and
/// never one per request.
fn one_attempt_per_backoff(stack: Stack, attempts: usize, span: Duration, requests: usize) {
    let most = (span.as_millis() / 300) as usize + 2;
    assert!(
        (2..=most).contains(&attempts),
        "{stack:?}: {attempts} attempts"
    );
    assert!(
        attempts < requests,
        "{stack:?}: {attempts} attempts for {requests} requests"
    );
}

/// The token endpoint goes down for longer than the token's life; the API still accepts the
/// token (a grace period, clock skew): every request keeps succeeding with it, and the endpoint
/// is asked at most once per backoff. In every stack, run side by side.
#[tokio::test]
async fn an_outage_longer_than_the_tokens_life_is_not_an_outage_of_the_api() {
    let span = Duration::from_secs(4);
    let runs = STACKS.map(|stack| async move { (stack, outage(stack, span, false).await) });
    for (stack, (during, attempts, tokens)) in futures::future::join_all(runs).await {
        assert!(
            during.iter().all(|status| *status == 200),
            "{stack:?}: {during:?}"
        );
        let left = tokens.expires_in();
        assert_eq!(
            left,
            Some(Duration::ZERO),
            "{stack:?}: the token outlived its life"
        );
        one_attempt_per_backoff(stack, attempts, span, during.len());
        assert_eq!(
            tokens.generation(),
            Some(1),
            "{stack:?}: served stale, not replaced"
        );
    }
}

/// The same outage, and the API refuses the expired token: each request gets the API's answer
/// (its 401), and the endpoint is still asked at most once per backoff, not once per rejection.
#[tokio::test]
async fn an_outage_with_the_api_refusing_the_token_is_no_fetch_storm() {
    let span = Duration::from_secs(3);
    let runs = STACKS.map(|stack| async move { (stack, outage(stack, span, true).await) });
    for (stack, (during, attempts, _tokens)) in futures::future::join_all(runs).await {
        assert!(
            during.iter().all(|status| *status == 401),
            "{stack:?}: {during:?}"
        );
        one_attempt_per_backoff(stack, attempts, span, during.len());
    }
}
