//! Property tests: the classifier never panics and never changes a body, whatever it is.

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use proptest::prelude::*;
use tower::{Layer, ServiceExt};
use tower_api_auth::ClassifyLayer;
use tower_api_auth::outcome::Outcome;
use tower_api_auth::providers::akool;

fn content_type() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some("application/json".to_owned())),
        Just(Some("application/problem+json; charset=utf-8".to_owned())),
        Just(Some("text/plain".to_owned())),
        "[ -~]{0,40}".prop_map(Some),
    ]
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..2048),
        (any::<i64>(), "[ -~]{0,64}")
            .prop_map(|(code, msg)| format!(r#"{{"code":{code},"msg":{msg:?}}}"#).into_bytes()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn classification_never_panics_and_never_changes_the_body(
        status in 100u16..1000,
        content_type in content_type(),
        body in body(),
        limit in prop_oneof![Just(0usize), Just(16), Just(64 * 1024)],
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let sent = Bytes::from(body);
        let served = sent.clone();
        let api = tower::service_fn(move |_: Request<Full<Bytes>>| {
            let mut response = Response::builder().status(status);
            if let Some(content_type) = &content_type {
                if let Ok(value) = http::HeaderValue::from_str(content_type) {
                    response = response.header("content-type", value);
                }
            }
            let response = response.body(Full::new(served.clone()));
            async move { response }
        });
        let classify = ClassifyLayer::new(akool::classifier()).body_limit(limit).layer(api);
        let response = runtime
            .block_on(classify.oneshot(Request::new(Full::default())))
            .unwrap();
        prop_assert!(response.extensions().get::<Outcome>().is_some());
        let received = runtime
            .block_on(response.into_body().collect())
            .unwrap()
            .to_bytes();
        prop_assert_eq!(received, sent);
    }
}
