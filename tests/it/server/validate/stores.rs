//! Key stores behind the layer: a failing store answers 503; a closure is a store.

use super::*;

#[tokio::test]
async fn a_failing_store_answers_503_and_a_closure_is_a_store() {
    let known = KeyDigest::of("db-key");
    let store = move |digest: &KeyDigest| {
        let found = *digest == known;
        async move {
            match found {
                true => Ok(Some(KeyRecord::new(Principal::new("from-db")))),
                false => Err("connection refused".into()),
            }
        }
    };
    let auth = ValidateCredentialLayer::new(Placement::bearer(), store);
    let router = Router::new().route("/me", routing::get(whoami).route_layer(auth));
    let server = Served::start(router).await;

    let response = client().request(bearer(&server.url("/me"), Some("db-key")));
    assert_eq!(response.await.unwrap().status(), StatusCode::OK);
    let response = client()
        .request(bearer(&server.url("/me"), Some("other")))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(json(response).await["error"], "unavailable");
}

/// A store that fails for a while is logged once as failing (ERROR) and once as answering again
/// (INFO), not at every request it refuses meanwhile: under load, one line a request would
/// flood the logs.
#[tokio::test]
async fn a_failing_store_is_logged_once_each_way() {
    let logs = CapturedLogs::default();
    let _guard = logs.install();
    let down = Arc::new(AtomicBool::new(true));
    let store = {
        let down = Arc::clone(&down);
        move |_: &KeyDigest| {
            let down = down.load(Ordering::SeqCst);
            async move {
                match down {
                    true => Err("connection refused".into()),
                    false => Ok(Some(KeyRecord::new(Principal::new("from-db")))),
                }
            }
        }
    };
    let auth = ValidateCredentialLayer::new(Placement::bearer(), store);
    let router = Router::new().route("/me", routing::get(whoami).route_layer(auth));
    let server = Served::start(router).await;
    let status = || async {
        let request = bearer(&server.url("/me"), Some("db-key"));
        client().request(request).await.unwrap().status()
    };
    for _ in 0..20 {
        assert_eq!(status().await, StatusCode::SERVICE_UNAVAILABLE);
    }
    down.store(false, Ordering::SeqCst);
    for _ in 0..5 {
        assert_eq!(status().await, StatusCode::OK);
    }
    let text = logs.text();
    let failing = text.matches("ERROR").count();
    assert_eq!(failing, 1, "{text}");
    assert!(
        text.contains("the key store failed to look a credential up"),
        "{text}"
    );
    assert_eq!(
        text.matches("the key store answers again").count(),
        1,
        "{text}"
    );
}
