//! Credential header variants accepted or refused as documented.

use super::*;

type Headers<'a> = &'a [(&'a str, &'a [u8])];

/// Sends `headers` to `/me` of a server accepting Bearer, Api-Key and X-API-Key, with one key
/// known: `good-key`.
async fn status_for(server: &Served, headers: Headers<'_>) -> StatusCode {
    let mut request = get(server.url("/me"));
    for (name, value) in headers {
        request.headers_mut().append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_bytes(value).unwrap(),
        );
    }
    client().request(request).await.unwrap().status()
}

#[tokio::test]
async fn header_variants_are_accepted_or_refused_as_documented() {
    let keys = MemoryKeyStore::new();
    keys.insert("good-key", KeyRecord::new(Principal::new("someone")));
    let auth = ValidateCredentialLayer::new(Placement::bearer(), keys)
        .accept(Placement::api_key())
        .accept(Placement::header("x-api-key").unwrap());
    let server = Served::start(app(auth)).await;

    let huge = format!("Bearer {}", "k".repeat(16 * 1024));
    let ok = StatusCode::OK;
    let no = StatusCode::UNAUTHORIZED;
    #[rustfmt::skip]
    let cases: &[(Headers<'_>, StatusCode)] = &[
        (&[("authorization", b"Bearer good-key")], ok),
        (&[("authorization", b"bearer good-key")], ok),
        (&[("authorization", b"BEARER good-key")], ok),
        (&[("authorization", b"Api-Key good-key")], ok),
        (&[("authorization", b"API-KEY good-key")], ok),
        (&[("x-api-key", b"good-key")], ok),
        (&[("X-Api-Key", b"good-key")], ok),
        // The credential is exact.
        (&[("authorization", b"Bearer GOOD-KEY")], no),
        (&[("authorization", b"Bearer good-ke")], no),
        (&[("authorization", b"Bearer good-key2")], no),
        // Spaces and tabs.
        (&[("authorization", b"Bearer  good-key")], no),
        (&[("authorization", b"Bearergood-key")], no),
        (&[("authorization", b"Bearer\tgood-key")], no),
        (&[("authorization", b"Bearer good key")], no),
        (&[("authorization", b"Bearer good-key extra")], no),
        // Empty.
        (&[("authorization", b"Bearer")], no),
        (&[("authorization", b"Bearer ")], no),
        (&[("x-api-key", b"")], no),
        // Other schemes are not credentials.
        (&[("authorization", b"Basic good-key")], no),
        (&[("authorization", b"Token good-key")], no),
        // Duplicates and conflicts.
        (&[("authorization", b"Bearer good-key"), ("authorization", b"Bearer good-key")], no),
        (&[("x-api-key", b"good-key"), ("x-api-key", b"other")], no),
        (&[("x-api-key", b"good-key"), ("authorization", b"Bearer other")], no),
        (&[("x-api-key", b"other"), ("authorization", b"Bearer good-key")], no),
        (&[("x-api-key", b"good-key"), ("authorization", b"Bearer good-key")], no),
        (&[("x-api-key", b"good-key"), ("authorization", b"Basic dXNlcjpwYXNz")], ok),
        // Not ASCII, too long.
        (&[("authorization", "Bearer good-kéy".as_bytes())], no),
        (&[("x-api-key", b"good-key\xff")], no),
        (&[("authorization", huge.as_bytes())], no),
    ];
    for (headers, expected) in cases {
        let shown: Vec<_> = headers
            .iter()
            .map(|(n, v)| (n, String::from_utf8_lossy(v)))
            .collect();
        assert_eq!(status_for(&server, headers).await, *expected, "{shown:?}");
    }
}
