//! Validation over the SQL key store against `MemoryKeyStore`, per request, at 10, 10,000 and
//! 1,000,000 keys: the two measured in alternation within one process.
//!
//! Criterion times one variant after the other, seconds apart; on a machine whose load drifts
//! that alone made the stores look 1.4-1.6x apart at a million keys. Here each round times
//! 200,000 requests through one store, then through the other (the order alternating by
//! round), so load drift falls on both; the median of the rounds is printed with their ratio.
//!
//! ```sh
//! cargo bench --bench sql_per_request
//! ```

mod support;

use std::time::{Duration, Instant};

use futures::FutureExt;
use http::{Request, Response, StatusCode};
use tower::{Layer, Service};
use tower_api_auth::server::sql::SqlKeyStore;
use tower_api_auth::server::{KeyDigest, KeyStore};
use tower_api_auth::{Placement, ValidateCredentialLayer};

use support::{Bare, Body, PRESENTED, key};

/// Requests a store is timed for in one round.
const REQUESTS: u32 = 200_000;
/// Rounds per store size.
const ROUNDS: usize = 7;

/// The mean time of one request through `service`, over `REQUESTS` requests.
fn time<S, B>(service: &mut S, request: &impl Fn() -> Request<Body>) -> Duration
where
    S: Service<Request<Body>, Response = Response<B>>,
    S::Error: std::fmt::Debug,
{
    let started = Instant::now();
    for _ in 0..REQUESTS {
        let response = service.call(request()).now_or_never().expect("ready");
        let response = std::hint::black_box(response.expect("answered"));
        assert_eq!(response.status(), StatusCode::OK);
    }
    started.elapsed() / REQUESTS
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn main() {
    let runtime = support::runtime(1);
    let dir = tempfile::tempdir().unwrap();
    let bearer = format!("Bearer {}", key(PRESENTED));
    let request = || {
        Request::get("/v1/things")
            .header("authorization", &bearer)
            .body(Body::default())
            .unwrap()
    };
    println!(
        "keys        MemoryKeyStore  SqlKeyStore  lookup-through hit   (medians of {ROUNDS} rounds)"
    );
    for size in [10, 10_000, 1_000_000] {
        let database = support::sql_database(&runtime, &dir, size);
        let snapshot = runtime
            .block_on(SqlKeyStore::open(database.clone()))
            .unwrap();
        assert_eq!(snapshot.len(), size);
        let through = runtime.block_on(async {
            let store = SqlKeyStore::builder(database)
                .lookup_through(1024)
                .open()
                .await
                .unwrap();
            // Warmed: the presented key is cached, so every timed lookup is a hit.
            let found = store.lookup(&KeyDigest::of(key(PRESENTED))).await.unwrap();
            assert!(found.is_some());
            store
        });
        let layer = |store| ValidateCredentialLayer::new(Placement::bearer(), store);
        let mut memory =
            ValidateCredentialLayer::new(Placement::bearer(), support::store(size)).layer(Bare);
        let mut sql = layer(snapshot).layer(Bare);
        let mut hit = layer(through).layer(Bare);
        let (mut m, mut s, mut h) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..ROUNDS {
            // Each store first in turn, so none always runs right after another's work.
            match round % 3 {
                0 => {
                    m.push(time(&mut memory, &request));
                    s.push(time(&mut sql, &request));
                    h.push(time(&mut hit, &request));
                }
                1 => {
                    s.push(time(&mut sql, &request));
                    h.push(time(&mut hit, &request));
                    m.push(time(&mut memory, &request));
                }
                _ => {
                    h.push(time(&mut hit, &request));
                    m.push(time(&mut memory, &request));
                    s.push(time(&mut sql, &request));
                }
            }
        }
        let (m, s, h) = (median(m), median(s), median(h));
        let ratio = |t: Duration| t.as_secs_f64() / m.as_secs_f64();
        println!(
            "{size:>9}   {m:>12.0?}  {s:>8.0?} ({:.2}x)  {h:>8.0?} ({:.2}x)",
            ratio(s),
            ratio(h)
        );
    }
}
