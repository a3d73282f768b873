//! Forbidden is not expired: returned as it is, no refetch, no replay.

use super::*;

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
