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
