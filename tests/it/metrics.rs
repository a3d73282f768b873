//! Metrics (feature `metrics`): a recorder installed for the test's thread captures the series a
//! scripted scenario produces, with exact counts, and no label value carries a secret, a token
//! or a URL.

use crate::support;

use std::collections::BTreeMap;
use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use tower::retry::RetryLayer;
use tower::{ServiceBuilder, ServiceExt};
use tower_api_auth::metrics as names;
use tower_api_auth::outcome::{Outcome, OutcomeKind, RetryPolicy};
use tower_api_auth::providers::{akkio, akool};
use tower_api_auth::{AuthLayer, ClassifyLayer, TokenAuthLayer};
use tower_api_auth_mock::{MockServer, Provider};

use support::{CannedServer, client, get, post_json};

/// Every series as `name{label=value,...}` -> value (counters and gauges; a histogram's count).
fn series(snapshotter: &Snapshotter) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let mut labels: Vec<_> = key
            .key()
            .labels()
            .map(|label| format!("{}={}", label.key(), label.value()))
            .collect();
        labels.sort();
        let name = format!("{}{{{}}}", key.key().name(), labels.join(","));
        let value = match value {
            DebugValue::Counter(n) => n as f64,
            DebugValue::Gauge(g) => g.into_inner(),
            DebugValue::Histogram(samples) => samples.len() as f64,
        };
        out.insert(name, value);
    }
    out
}

#[tokio::test]
async fn a_scripted_scenario_records_exactly_its_series_and_no_secret() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    // This test's thread only (a current-thread runtime: the stand-ins, the fetch task and the
    // client all run here), so tests running in parallel do not mix their series.
    let _local = metrics::set_default_local_recorder(&recorder);
    tower_api_auth::metrics::describe();

    let akool_api = MockServer::start(Provider::Akool).await.unwrap();
    akool_api.accept_key("akool-client-secret");
    let akkio_api = MockServer::start(Provider::Akkio).await.unwrap();
    akkio_api.accept_key("akkio-key");
    let canned = CannedServer::start().await;

    // One fetch, one success.
    let tokens = akool::client_credentials("akool-client", "akool-client-secret")
        .base_url(akool_api.base_url())
        .build(client())
        .unwrap();
    let akool_client = ServiceBuilder::new()
        .layer(TokenAuthLayer::new(tokens.clone()))
        .service(client());
    let quota = format!("{}/api/open/v3/faceswap/quota/info", akool_api.base_url());
    let response = akool_client.clone().oneshot(get(&quota)).await.unwrap();
    assert!(response.extensions().get::<Outcome>().unwrap().is_success());

    // Code 1101: one rejection, one refetch, one replay, a success.
    akool_api.expire_tokens();
    let response = akool_client.clone().oneshot(get(&quota)).await.unwrap();
    assert!(response.extensions().get::<Outcome>().unwrap().is_success());
    assert_eq!(akool_api.token_request_count(), 2);

    // One wrong key refused by the Akkio stand-in (401), classified.
    let wrong = akkio::api_key("wrong-akkio-key")
        .origin(akkio_api.base_url())
        .build()
        .unwrap();
    let akkio_client = ServiceBuilder::new()
        .layer(ClassifyLayer::new(akkio::classifier()))
        .layer(AuthLayer::new(wrong))
        .service(client());
    let models = format!("{}/api/v1/models", akkio_api.base_url());
    let response = akkio_client.oneshot(get(&models)).await.unwrap();
    assert_eq!(
        response.extensions().get::<Outcome>().unwrap().kind(),
        OutcomeKind::CredentialRejected
    );

    // One failed fetch: wrong client secret, Akool's code 1101 on getToken (unrecoverable).
    let refused = akool::client_credentials("akool-client", "wrong-client-secret")
        .base_url(akool_api.base_url())
        .build(client())
        .unwrap();
    assert!(refused.fetch().await.is_err());

    // One 429 retried (Retry-After: 0), and a POST answered 502 not retried.
    let retrying = ServiceBuilder::new()
        .layer(RetryLayer::new(RetryPolicy::new()))
        .layer(ClassifyLayer::new(akkio::classifier()))
        .service(client());
    let response = retrying
        .clone()
        .oneshot(get(canned.url("/flaky/429/1")))
        .await
        .unwrap();
    assert!(response.status().is_success());
    let response = retrying
        .oneshot(post_json(canned.url("/flaky/502/1"), "{}"))
        .await
        .unwrap();
    assert_eq!(response.status(), 502);

    let got = series(&snapshotter);
    let expected: BTreeMap<String, f64> = [
        ("tower_api_auth.token.fetches{result=success}", 2.0),
        (
            "tower_api_auth.token.fetches{error.type=unrecoverable,result=failure}",
            1.0,
        ),
        ("tower_api_auth.token.fetch.duration{result=success}", 2.0),
        ("tower_api_auth.token.fetch.duration{result=failure}", 1.0),
        ("tower_api_auth.client.token.rejections{}", 1.0),
        ("tower_api_auth.client.token.replays{}", 1.0),
        (
            "tower_api_auth.client.outcomes{kind=success,provider=akool}",
            2.0,
        ),
        (
            "tower_api_auth.client.outcomes{kind=credential_rejected,provider=akool}",
            1.0,
        ),
        (
            "tower_api_auth.client.outcomes{kind=credential_rejected,provider=akkio}",
            1.0,
        ),
        (
            "tower_api_auth.client.outcomes{kind=rate_limited,provider=akkio}",
            1.0,
        ),
        (
            "tower_api_auth.client.outcomes{kind=success,provider=akkio}",
            1.0,
        ),
        (
            "tower_api_auth.client.outcomes{kind=transient,provider=akkio}",
            1.0,
        ),
        ("tower_api_auth.client.retries{reason=rate_limited}", 1.0),
        // The stand-ins check keys with the server side: two Akool calls accepted (the first
        // and the replay), the expired token and the wrong Akkio key refused.
        ("tower_api_auth.server.requests{result=accepted}", 2.0),
        (
            "tower_api_auth.server.requests{reason=unknown,result=refused}",
            2.0,
        ),
        // Each stand-in's key store: the key accepted, then the tokens issued.
        ("tower_api_auth.server.key_store.size{store=memory}", 0.0),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect();
    println!("{got:#?}");
    let without_gauge = |map: &BTreeMap<String, f64>| {
        map.iter()
            .filter(|(name, _)| !name.starts_with(names::SERVER_KEY_STORE_SIZE))
            .map(|(n, v)| (n.clone(), *v))
            .collect::<BTreeMap<_, _>>()
    };
    assert_eq!(without_gauge(&got), without_gauge(&expected));
    assert!(got.contains_key("tower_api_auth.server.key_store.size{store=memory}"));

    // No label value is a secret, a token, a key, a URL or a path.
    let forbidden = [
        "secret",
        "key",
        "token",
        "http",
        "127.0.0.1",
        "/",
        "akool-client",
    ];
    for (key, ..) in snapshotter.snapshot().into_vec() {
        for label in key.key().labels() {
            for word in forbidden {
                assert!(
                    !label.value().contains(word),
                    "label {}={} of {}",
                    label.key(),
                    label.value(),
                    key.key().name()
                );
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_token_served_past_its_expiry_is_counted() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tower_api_auth::{Token, TokenCredential};

    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);

    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let tokens = TokenCredential::builder(move || {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        async move {
            match n {
                0 => Ok(Token::new("t1").expires_in(Duration::from_secs(600))),
                _ => Err::<Token, _>(std::io::Error::other("token endpoint down")),
            }
        }
    })
    .origin("https://api.example.com")
    .build()
    .unwrap();
    tokens.fetch().await.unwrap();
    // Past the expiry, the refresh fails: the cached token keeps serving (static stability).
    tokio::time::advance(Duration::from_secs(601)).await;
    let generation = tokens.fetch().await.unwrap();
    assert_eq!(generation, 1);

    let got = series(&snapshotter);
    assert_eq!(
        got["tower_api_auth.token.fetches{error.type=fetch,result=failure}"],
        1.0
    );
    assert!(
        got["tower_api_auth.token.stale_served{}"] >= 1.0,
        "{got:#?}"
    );
}
