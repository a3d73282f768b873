//! A token rejected again after the refetch: the API's answer after exactly two attempts, and no
//! wave of fetches against a broken account.

use super::*;

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
