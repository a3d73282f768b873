#![cfg_attr(
    feature = "metrics",
    doc = r##"
Metrics (feature `metrics`): counters, histograms and gauges through the [`metrics`] facade,
so any exporter (Prometheus, OpenTelemetry, StatsD) reads them.

```
use metrics_util::debugging::DebuggingRecorder;
use tower_api_auth::{Token, TokenCredential};

# #[tokio::main(flavor = "current_thread")]
# async fn main() -> Result<(), Box<dyn std::error::Error>> {
let recorder = DebuggingRecorder::new();
let snapshotter = recorder.snapshotter();
// Your exporter's recorder, installed globally with `metrics::set_global_recorder` in a
// program; here, for this thread only.
let _guard = metrics::set_default_local_recorder(&recorder);
tower_api_auth::metrics::describe();

let tokens = TokenCredential::builder(|| async { Ok::<_, std::io::Error>(Token::new("t1")) })
    .origin("https://api.example.com")
    .build()?;
tokens.fetch().await?;

let fetches = snapshotter.snapshot().into_vec().into_iter().find(|(key, ..)| {
    key.key().name() == tower_api_auth::metrics::TOKEN_FETCHES
});
assert!(fetches.is_some());
# Ok(())
# }
```

Names follow OpenTelemetry's conventions (dotted namespaces, no unit in the name, durations
in seconds, `error.type` for a failure's kind); a Prometheus exporter writes the dots as
underscores. They are stable: a name or a label is never renamed within a major version.
**No label carries a secret, a token, a key, a principal, a URL or a path**: only the values
listed here.

| name | type | labels | what it counts |
|---|---|---|---|
| [`tower_api_auth.token.fetches`](TOKEN_FETCHES) | counter | `result` = `success` \| `failure`; `error.type` (failures) = `fetch` \| `timeout` \| `invalid_token` \| `unrecoverable` | token fetches that ended, by the token source's answer |
| [`tower_api_auth.token.fetch.duration`](TOKEN_FETCH_DURATION) | histogram, s | `result` | how long the token source took |
| [`tower_api_auth.token.stale_served`](TOKEN_STALE_SERVED) | counter | — | a token past its known expiry handed out because refreshing failed (static stability): once per failed refresh, and once per request that took it during the backoff |
| [`tower_api_auth.client.token.rejections`](CLIENT_TOKEN_REJECTIONS) | counter | — | answers that rejected a fetched token (a `401`, Akool's 1101), replayed or not |
| [`tower_api_auth.client.token.replays`](CLIENT_TOKEN_REPLAYS) | counter | — | requests sent again with a new token after a rejection |
| [`tower_api_auth.client.outcomes`](CLIENT_OUTCOMES) | counter | `provider` (the classifier's name: `akkio`, `polyteia`, `erathos`, `akool`, or `api`); `kind` = `success` \| `credential_rejected` \| `credential_missing` \| `forbidden` \| `banned` \| `rate_limited` \| `transient` \| `client_error` | API answers classified, once each, by the innermost layer that classified it (`ClassifyLayer`, or `TokenAuthLayer` with a provider's classifier) |
| [`tower_api_auth.client.retries`](CLIENT_RETRIES) | counter | `reason` = `rate_limited` \| `transient` \| `connection_refused` | retries [`RetryPolicy`](crate::outcome::RetryPolicy) (or the reqwest retry middleware) decided on |
| [`tower_api_auth.server.requests`](SERVER_REQUESTS) | counter | `result` = `accepted` \| `refused`; `reason` (refused) = `missing` \| `malformed` \| `unknown` \| `expired` \| `revoked` \| `forbidden` \| `unavailable` | requests `ValidateCredentialLayer` judged |
| [`tower_api_auth.server.key_store.size`](SERVER_KEY_STORE_SIZE) | gauge | `store` = `memory` \| the store's name | keys in the store, set at every change |
| [`tower_api_auth.server.key_store.snapshot_age`](SERVER_KEY_STORE_SNAPSHOT_AGE) | gauge, s | `store` | age of the snapshot a store serves from (stores that load snapshots) |

[`describe`] registers each name's unit and description with the installed recorder. Install
the recorder before the first request: a layer's outcome counters are registered on their first
use, with the recorder installed then, so that counting is an atomic add afterwards: series a
layer counted before the recorder came are not seen by it. A thread-local recorder
(`metrics::with_local_recorder`, `set_default_local_recorder`) sees only what its own thread
records; a token fetch runs in a task of its own, which a multi-thread runtime may run on
another thread, so install the recorder globally (`metrics::set_global_recorder`) outside
tests on one thread. Without the feature, every call site compiles to nothing.
"##
)]

#[cfg(feature = "metrics")]
use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, histogram};

/// Counter: token fetches that ended, labelled `result` and, for failures, `error.type`.
#[cfg(feature = "metrics")]
pub const TOKEN_FETCHES: &str = "tower_api_auth.token.fetches";
/// Histogram (seconds): how long the token source took, labelled `result`.
#[cfg(feature = "metrics")]
pub const TOKEN_FETCH_DURATION: &str = "tower_api_auth.token.fetch.duration";
/// Counter: a token past its known expiry handed out because refreshing failed.
#[cfg(feature = "metrics")]
pub const TOKEN_STALE_SERVED: &str = "tower_api_auth.token.stale_served";
/// Counter: answers that rejected a fetched token.
#[cfg(feature = "metrics")]
pub const CLIENT_TOKEN_REJECTIONS: &str = "tower_api_auth.client.token.rejections";
/// Counter: requests replayed with a new token after a rejection.
#[cfg(feature = "metrics")]
pub const CLIENT_TOKEN_REPLAYS: &str = "tower_api_auth.client.token.replays";
/// Counter: classified API answers, labelled `provider` and `kind`.
#[cfg(feature = "metrics")]
pub const CLIENT_OUTCOMES: &str = "tower_api_auth.client.outcomes";
/// Counter: retries decided on, labelled `reason`.
#[cfg(feature = "metrics")]
pub const CLIENT_RETRIES: &str = "tower_api_auth.client.retries";
/// Counter: requests the server side judged, labelled `result` and, when refused, `reason`.
#[cfg(feature = "metrics")]
pub const SERVER_REQUESTS: &str = "tower_api_auth.server.requests";
/// Gauge: keys in a key store, labelled `store`.
#[cfg(feature = "metrics")]
pub const SERVER_KEY_STORE_SIZE: &str = "tower_api_auth.server.key_store.size";
/// Gauge (seconds): age of the snapshot a key store serves from, labelled `store`.
#[cfg(feature = "metrics")]
pub const SERVER_KEY_STORE_SNAPSHOT_AGE: &str = "tower_api_auth.server.key_store.snapshot_age";

/// Registers the unit and description of every metric with the installed recorder; call it once
/// after installing yours (exporters print them as `# HELP` and `# TYPE`).
#[cfg(feature = "metrics")]
pub fn describe() {
    describe_counter!(
        TOKEN_FETCHES,
        Unit::Count,
        "Token fetches that ended, by result"
    );
    describe_histogram!(
        TOKEN_FETCH_DURATION,
        Unit::Seconds,
        "How long the token source took to answer"
    );
    describe_counter!(
        TOKEN_STALE_SERVED,
        Unit::Count,
        "Tokens past their expiry handed out because refreshing failed (static stability)"
    );
    describe_counter!(
        CLIENT_TOKEN_REJECTIONS,
        Unit::Count,
        "Answers that rejected a fetched token (401, or the provider's body code)"
    );
    describe_counter!(
        CLIENT_TOKEN_REPLAYS,
        Unit::Count,
        "Requests replayed with a new token after a rejection"
    );
    describe_counter!(
        CLIENT_OUTCOMES,
        Unit::Count,
        "Classified API answers, by provider and kind"
    );
    describe_counter!(CLIENT_RETRIES, Unit::Count, "Retries decided on, by reason");
    describe_counter!(
        SERVER_REQUESTS,
        Unit::Count,
        "Requests the server side judged, accepted or refused by reason"
    );
    describe_gauge!(SERVER_KEY_STORE_SIZE, Unit::Count, "Keys in the key store");
    describe_gauge!(
        SERVER_KEY_STORE_SNAPSHOT_AGE,
        Unit::Seconds,
        "Age of the key store snapshot being served"
    );
}

/// A token fetch ended (not an aborted one: its task never answered).
/// A fetch that ended: `error` is `None` on success, else the failure's label.
#[inline]
pub(crate) fn token_fetch(error: Option<&'static str>, took: std::time::Duration) {
    #[cfg(feature = "metrics")]
    {
        let result = match error {
            None => "success",
            Some(_) => "failure",
        };
        match error {
            None => counter!(TOKEN_FETCHES, "result" => result).increment(1),
            Some(error) => {
                counter!(TOKEN_FETCHES, "result" => result, "error.type" => error).increment(1)
            }
        }
        histogram!(TOKEN_FETCH_DURATION, "result" => result).record(took.as_secs_f64());
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (error, took);
}

#[inline]
pub(crate) fn token_stale_served() {
    #[cfg(feature = "metrics")]
    counter!(TOKEN_STALE_SERVED).increment(1);
}

/// An answer rejected a fetched token.
#[inline]
pub(crate) fn token_rejected() {
    #[cfg(feature = "metrics")]
    counter!(CLIENT_TOKEN_REJECTIONS).increment(1);
}

/// A request is replayed with a new token.
#[inline]
pub(crate) fn token_replayed() {
    #[cfg(feature = "metrics")]
    counter!(CLIENT_TOKEN_REPLAYS).increment(1);
}

#[inline]
pub(crate) fn retry(reason: &'static str) {
    #[cfg(feature = "metrics")]
    counter!(CLIENT_RETRIES, "reason" => reason).increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = reason;
}

/// The server side accepted a credential.
#[cfg(feature = "server")]
#[inline]
pub(crate) fn server_accepted() {
    #[cfg(feature = "metrics")]
    counter!(SERVER_REQUESTS, "result" => "accepted").increment(1);
}

/// The server side refused a request.
#[cfg(feature = "server")]
#[inline]
pub(crate) fn server_refused(reason: &'static str) {
    #[cfg(feature = "metrics")]
    counter!(SERVER_REQUESTS, "result" => "refused", "reason" => reason).increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = reason;
}

#[cfg(feature = "server")]
#[inline]
pub(crate) fn key_store_size(store: &'static str, keys: usize) {
    #[cfg(feature = "metrics")]
    metrics::gauge!(SERVER_KEY_STORE_SIZE, "store" => store).set(keys as f64);
    #[cfg(not(feature = "metrics"))]
    let _ = (store, keys);
}

/// A key store named `store` serves from a snapshot taken `age` ago: for the stores that load
/// snapshots (SQL), at each load and each time they check it.
#[cfg(feature = "server")]
#[inline]
#[allow(
    dead_code,
    reason = "for the snapshot-loading key stores (SQL) to call"
)]
pub(crate) fn key_store_snapshot_age(store: &'static str, age: std::time::Duration) {
    #[cfg(feature = "metrics")]
    metrics::gauge!(SERVER_KEY_STORE_SNAPSHOT_AGE, "store" => store).set(age.as_secs_f64());
    #[cfg(not(feature = "metrics"))]
    let _ = (store, age);
}

#[cfg(all(test, feature = "metrics"))]
mod tests {
    use std::time::Duration;

    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    use super::*;

    #[test]
    fn snapshot_age_is_a_gauge_in_seconds_labelled_by_store() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, || {
            key_store_snapshot_age("postgres", Duration::from_millis(1500));
        });
        let series = snapshotter.snapshot().into_vec();
        assert_eq!(series.len(), 1);
        let (key, _, _, value) = &series[0];
        assert_eq!(key.key().name(), SERVER_KEY_STORE_SNAPSHOT_AGE);
        let labels: Vec<_> = key.key().labels().map(|l| (l.key(), l.value())).collect();
        assert_eq!(labels, [("store", "postgres")]);
        assert_eq!(*value, DebugValue::Gauge(1.5.into()));
    }
}
