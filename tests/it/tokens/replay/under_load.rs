//! An expiry under load: one refetch for everyone, one replay per rejected request.

use super::*;

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
