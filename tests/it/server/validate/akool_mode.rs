//! Akool mode: the documented body codes in HTTP 200, read back by the client's classifier.

use super::*;

#[tokio::test]
async fn akool_mode_answers_the_documented_codes_and_the_client_reads_them_back() {
    let keys = MemoryKeyStore::new();
    let member = Principal::new("member").with_scopes(["faceswap"]);
    keys.insert("akool-key", KeyRecord::new(member.clone()));
    keys.insert("revoked-key", KeyRecord::new(member).revoked());
    keys.insert("no-scope-key", KeyRecord::new(Principal::new("guest")));
    let auth = ValidateCredentialLayer::new(Placement::header("x-api-key").unwrap(), keys)
        .accept(Placement::bearer())
        .require_scopes(["faceswap"])
        .reject_with(akool::rejection_response());
    let router = Router::new().route(
        "/api/open/v3/faceswap/quota/info",
        routing::get(|| async { axum::Json(serde_json::json!({ "code": 1000, "msg": "OK" })) })
            .route_layer(auth),
    );
    let server = Served::start(router).await;
    let url = server.url("/api/open/v3/faceswap/quota/info");
    let api = ClassifyLayer::new(akool::classifier()).layer(client());

    let with = |name: &'static str, value: &str| {
        let mut request = get(&url);
        request
            .headers_mut()
            .insert(name, HeaderValue::from_str(value).unwrap());
        request
    };
    let cases = [
        (get(&url), 1102, OutcomeKind::CredentialMissing),
        (
            with("x-api-key", "wrong"),
            1101,
            OutcomeKind::CredentialRejected,
        ),
        (
            with("authorization", "Bearer wrong"),
            1101,
            OutcomeKind::CredentialRejected,
        ),
        // Revoked looks exactly like unknown: a key-guesser learns nothing.
        (
            with("x-api-key", "revoked-key"),
            1101,
            OutcomeKind::CredentialRejected,
        ),
        (
            with("x-api-key", "no-scope-key"),
            1009,
            OutcomeKind::Forbidden,
        ),
        (with("x-api-key", "akool-key"), 1000, OutcomeKind::Success),
        (
            with("authorization", "Bearer akool-key"),
            1000,
            OutcomeKind::Success,
        ),
    ];
    for (request, code, kind) in cases {
        let response = api.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let outcome = response.extensions().get::<Outcome>().unwrap().clone();
        assert_eq!((outcome.kind(), outcome.code()), (kind, Some(code)));
        assert_eq!(json(response).await["code"], code);
    }
}
