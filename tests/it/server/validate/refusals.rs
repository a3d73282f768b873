//! What a refusal says: JSON and a challenge to the client, principal and reason to the logs,
//! never the key.

use super::*;

#[tokio::test]
async fn refusals_say_why_in_json_with_a_challenge() {
    let now = Arc::new(AtomicU64::new(T0 + 3600));
    let auth = ValidateCredentialLayer::new(Placement::bearer(), keys()).clock(clock(&now));
    let server = Served::start(app(auth)).await;
    let client = client();

    let cases = [
        (
            None,
            StatusCode::UNAUTHORIZED,
            "missing_credential",
            "Bearer",
        ),
        (
            Some("key-unknown"),
            StatusCode::UNAUTHORIZED,
            "invalid_credential",
            "Bearer error=\"invalid_token\"",
        ),
        (
            Some("key-revoked"),
            StatusCode::UNAUTHORIZED,
            "invalid_credential",
            "Bearer error=\"invalid_token\"",
        ),
        (
            Some("key-expiring"),
            StatusCode::UNAUTHORIZED,
            "expired_credential",
            "Bearer error=\"invalid_token\"",
        ),
    ];
    for (key, status, error, challenge) in cases {
        let response = client
            .request(bearer(&server.url("/me"), key))
            .await
            .unwrap();
        assert_eq!(response.status(), status);
        assert_eq!(response.headers()[WWW_AUTHENTICATE], challenge, "{key:?}");
        assert_eq!(json(response).await["error"], error, "{key:?}");
    }

    let response = client
        .request(bearer(&server.url("/write"), Some("key-reader")))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response.headers().get(WWW_AUTHENTICATE).is_none());
    let body = json(response).await;
    assert_eq!(body["error"], "forbidden");
    assert_eq!(
        body["message"],
        "the credential does not allow this request"
    );

    // A handler that takes a `Principal` on a route without the layer is a bug: 500.
    let response = client
        .request(bearer(&server.url("/forgot-the-layer"), Some("key-writer")))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
}

#[tokio::test]
async fn refusals_are_logged_with_principal_and_reason_never_the_key() {
    let logs = CapturedLogs::default();
    let _guard = logs.install();
    let now = Arc::new(AtomicU64::new(T0 + 3600));
    let auth = ValidateCredentialLayer::new(Placement::bearer(), keys()).clock(clock(&now));
    let server = Served::start(app(auth)).await;
    let client = client();

    for key in ["key-unknown", "key-revoked", "key-expiring", "key-reader"] {
        let response = client.request(bearer(&server.url("/write"), Some(key)));
        assert_ne!(response.await.unwrap().status(), StatusCode::OK);
    }
    let text = logs.text();
    assert!(text.contains("reason=unknown credential"), "{text}");
    assert!(
        text.contains("reason=revoked credential principal=\"writer\""),
        "{text}"
    );
    assert!(
        text.contains("reason=expired credential principal=\"writer\""),
        "{text}"
    );
    assert!(
        text.contains("reason=credential not allowed this request principal=\"reader\""),
        "{text}"
    );
    assert!(!text.contains("key-"), "{text}");
}
