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
