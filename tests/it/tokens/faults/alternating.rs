//! An endpoint that fails every other time: one error per failure, exact fetch counts.

use super::*;

/// An endpoint that fails every other time: each failure reaches the requests waiting on it, and
/// the very next request (after the bounded backoff) gets a token; a rejection-triggered refetch
/// that fails is an error for that request only, and the one after recovers. Fetch counts are
/// exact: no fetch is repeated behind the caller's back.
#[tokio::test]
async fn an_endpoint_failing_every_other_time_costs_one_error_per_failure_and_then_recovers() {
    let server = polyteia_server().await;
    server.set_token_fault(Some(TokenFault::Alternate));
    // Without static stability, a failed refresh of a dropped or rejected token reaches the
    // caller (with it, the token would keep serving: see `tokens::static_stability`).
    let tokens = polyteia::key_exchange("pak_1")
        .base_url(server.base_url())
        .token_builder(client())
        .static_stability(false)
        .backoff(Duration::from_millis(20), Duration::from_millis(40))
        .build()
        .unwrap();
    let api = TokenAuthLayer::new(tokens.clone()).layer(client());
    let call = || bounded(api.clone().oneshot(polyteia_request(&server)));

    // Fetch 1 fails, for everyone waiting on it.
    let waiters = (0..WAITERS).map(|_| api.clone().oneshot(polyteia_request(&server)));
    let errors = bounded(futures::future::join_all(waiters)).await;
    same_error(
        errors.into_iter().map(|r| token_error(r.unwrap_err())),
        TokenErrorKind::Fetch,
    );
    assert_eq!(server.token_request_count(), 1);

    // Fetch 2 (after the backoff) succeeds.
    assert_eq!(call().await.unwrap().status(), 200);
    assert_eq!(server.token_request_count(), 2);
    assert_eq!(tokens.generation(), Some(1));

    // Dropped by hand: fetch 3 fails, fetch 4 succeeds.
    tokens.invalidate();
    let err = token_error(call().await.unwrap_err());
    assert_eq!(err.kind(), TokenErrorKind::Fetch);
    assert_eq!(call().await.unwrap().status(), 200);
    assert_eq!(server.token_request_count(), 4);

    // The API expires the token: the request is rejected, its refetch (5) fails, and it gets the
    // API's answer rather than a second replay or a loop; the next request fetches (6) and
    // succeeds.
    server.expire_tokens();
    assert_eq!(call().await.unwrap().status(), 401);
    assert_eq!(server.token_request_count(), 5);
    assert_eq!(call().await.unwrap().status(), 200);
    assert_eq!(server.token_request_count(), 6);
    assert_eq!(tokens.fetch_count(), 6);

    let tokens_sent: Vec<_> = server
        .requests()
        .iter()
        .filter(|r| r.uri.path() == "/api")
        .map(|r| r.headers["authorization"].to_str().unwrap().to_owned())
        .collect();
    // Only successful fetches' tokens were ever sent: 2, 4 (rejected once), 6.
    assert_eq!(
        tokens_sent,
        [
            "Bearer polyteia-token-2",
            "Bearer polyteia-token-4",
            "Bearer polyteia-token-4",
            "Bearer polyteia-token-6",
        ]
    );
}
