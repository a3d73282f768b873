//! The cached token path with metrics on (a Prometheus recorder installed) against metrics off
//! (no recorder: the facade's no-op), in the same run. The credential has Akool's classifier
//! and the inner service answers Akool's `{"code":1000}`, so every request reads the body
//! code and counts one outcome: the most the crate records per request.
//!
//! Run: `cargo bench --bench metrics --features metrics`.

use std::convert::Infallible;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use futures::FutureExt;
use http::{Request, Response};
use http_body_util::Full;
use tower::{Layer, Service};
use tower_api_auth::providers::akool;
use tower_api_auth::{Token, TokenAuthLayer, TokenCredential};

mod support;

const URL: &str = "https://openapi.akool.com/api/open/v3/faceswap/quota/info";

fn bench(c: &mut Criterion) {
    let rt = support::current_thread();
    let _runtime = rt.enter();
    // One service per variant: a classifier's counters are registered on first use, with the
    // recorder installed then.
    let service = || {
        let tokens =
            TokenCredential::builder(|| async { Ok::<_, Infallible>(Token::new("token")) })
                .origin("https://openapi.akool.com")
                .classifier(akool::classifier())
                .build()
                .unwrap();
        tokens.swap(Token::new("cached-token")).unwrap();
        let inner = tower::service_fn(|_: Request<Full<Bytes>>| async {
            Ok::<_, Infallible>(
                Response::builder()
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from_static(
                        br#"{"code":1000,"msg":"OK","data":{}}"#,
                    )))
                    .unwrap(),
            )
        });
        let mut service = TokenAuthLayer::new(tokens).layer(inner);
        move || {
            let request = Request::get(URL).body(Full::new(Bytes::new())).unwrap();
            support::read_whole(service.call(request).now_or_never().unwrap().unwrap());
        }
    };

    let mut group = c.benchmark_group("cached token, Akool classifier");
    let mut off = service();
    group.bench_function("metrics off (no recorder)", |b| b.iter(&mut off));
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, || {
        let mut on = service();
        group.bench_function("metrics on (Prometheus recorder)", |b| b.iter(&mut on));
    });
    // Off again: the order of the variants is not the difference.
    let mut off_again = service();
    group.bench_function("metrics off again (no recorder)", |b| {
        b.iter(&mut off_again)
    });
    group.finish();
    assert!(handle.render().contains("tower_api_auth_client_outcomes"));
}

criterion_group!(benches, bench);
criterion_main!(benches);
