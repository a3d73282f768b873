//! Absolute expiries the server announces (Polyteia's `expiresAt`, Akool's JWT `exp`) that
//! disagree with our clock: in the past, or absurdly far away.

use super::*;

fn epoch_seconds(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A Polyteia stand-in announcing `expires_at` (epoch seconds) for its tokens, and the credential
/// fetching from it, after `requests` requests sent with its tokens, each answered 200.
async fn polyteia_announcing(expires_at: u64, requests: usize) -> (MockServer, TokenCredential) {
    let server = polyteia_server().await;
    server.set_token_fault(Some(TokenFault::ExpiresAt(expires_at)));
    let tokens = polyteia::key_exchange("pak_1")
        .base_url(server.base_url())
        .build(client())
        .unwrap();
    let api = TokenAuthLayer::new(tokens.clone()).layer(client());
    for _ in 0..requests {
        let response = bounded(api.clone().oneshot(polyteia_request(&server))).await;
        assert_eq!(response.unwrap().status(), 200, "expiresAt {expires_at}");
    }
    (server, tokens)
}

// Backwards clock jumps cannot be tested, and need not be handled: token expiries are kept as
// Tokio `Instant`s, which are monotonic (and `tokio::time::advance` only moves forward). What
// can go wrong with wall clocks is the server's absolute `expiresAt` (Polyteia) or JWT `exp`
// (Akool) disagreeing with ours; the tests below check both ends of that.

/// Polyteia announces an `expiresAt` already past (its clock, or ours, is off): the token is
/// taken as having an unknown expiry and used until the API rejects it, not as expired, which
/// would refetch on every request.
#[tokio::test]
async fn an_expires_at_in_the_past_is_taken_as_unknown_and_does_not_refetch_on_every_request() {
    let an_hour_ago = epoch_seconds(SystemTime::now()) - 3600;
    let (server, tokens) = polyteia_announcing(an_hour_ago, 5).await;
    assert_eq!(tokens.expires_in(), None);
    assert_eq!(server.token_request_count(), 1);
}

/// Absurdly distant expiries (Polyteia's `expiresAt` in year 5138, or as milliseconds near
/// `u64::MAX`; an Akool JWT whose `exp` is `i64::MAX` or `u64::MAX` seconds) neither overflow nor
/// refetch: the token is used, once fetched.
#[tokio::test]
async fn an_expiry_in_the_far_future_is_used_without_overflow() {
    let now = epoch_seconds(SystemTime::now());
    for exp in [99_999_999_999, u64::MAX] {
        let (server, tokens) = polyteia_announcing(exp, 3).await;
        let left = tokens.expires_in().expect("a known expiry");
        assert!(
            left > Duration::from_secs(99_999_999_999 - now - 60),
            "{exp}: {left:?}"
        );
        assert_eq!(server.token_request_count(), 1, "{exp}");
    }

    for exp in [i64::MAX as u64, u64::MAX] {
        let server = akool_server().await;
        server.set_token_fault(Some(TokenFault::ExpiresAt(exp)));
        let tokens = akool_tokens(&server, client());
        let api = TokenAuthLayer::new(tokens.clone()).layer(client());
        for _ in 0..3 {
            let response = bounded(api.clone().oneshot(get(quota_url(&server)))).await;
            assert_eq!(json(response.unwrap()).await["code"], 1000, "{exp}");
        }
        assert_eq!(server.token_request_count(), 1, "{exp}");
        assert_eq!(tokens.fetch_count(), 1, "{exp}");
    }
}
