//! Each key state (unknown, revoked, read- and write-scoped, expiring) and route scope gets its
//! status.

use super::*;

#[tokio::test]
async fn every_key_state_and_scope_gets_the_right_status() {
    let now = Arc::new(AtomicU64::new(T0));
    let auth = ValidateCredentialLayer::new(Placement::bearer(), keys()).clock(clock(&now));
    let server = Served::start(app(auth)).await;
    let client = client();

    use StatusCode as S;
    #[rustfmt::skip]
    let matrix: &[(Option<&str>, S, S, S)] = &[
        //  key                 /me            /read          /write
        (None,                  S::UNAUTHORIZED, S::UNAUTHORIZED, S::UNAUTHORIZED),
        (Some("key-unknown"),   S::UNAUTHORIZED, S::UNAUTHORIZED, S::UNAUTHORIZED),
        (Some("key-revoked"),   S::UNAUTHORIZED, S::UNAUTHORIZED, S::UNAUTHORIZED),
        (Some("key-reader"),    S::OK,           S::OK,           S::FORBIDDEN),
        (Some("key-writer"),    S::OK,           S::OK,           S::OK),
        (Some("key-expiring"),  S::OK,           S::OK,           S::OK),
    ];
    let check = |now_label: &'static str, matrix: Vec<(Option<&'static str>, [S; 3])>| {
        let client = client.clone();
        let server_url = server.base_url.clone();
        async move {
            for (key, expected) in matrix {
                for (path, status) in ["/me", "/read", "/write"].into_iter().zip(expected) {
                    let url = format!("{server_url}{path}");
                    let response = client.request(bearer(&url, key)).await.unwrap();
                    assert_eq!(response.status(), status, "{now_label} {key:?} {path}");
                    let public = client.request(bearer(&format!("{server_url}/public"), key));
                    assert_eq!(public.await.unwrap().status(), S::OK);
                }
            }
        }
    };
    let rows = matrix
        .iter()
        .map(|(k, a, b, c)| (*k, [*a, *b, *c]))
        .collect();
    check("before expiry", rows).await;

    // The expiring key's time passes: the same request is now refused.
    now.store(T0 + 60, Ordering::SeqCst);
    let rows = vec![(Some("key-expiring"), [S::UNAUTHORIZED; 3])];
    check("at expiry", rows).await;

    let response = client
        .request(bearer(&server.url("/write"), Some("key-writer")))
        .await
        .unwrap();
    let body = http_body_util::BodyExt::collect(response.into_body()).await;
    assert_eq!(&body.unwrap().to_bytes()[..], b"writer@acme");
}
