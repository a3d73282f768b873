//! Validation over the SQL key store against `MemoryKeyStore`, per request, at 10, 10,000 and
//! 1,000,000 keys, the same key each time and a different one each time (over 10,000 of the
//! store's keys): the stores measured in alternation within one process.
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
use http::header::AUTHORIZATION;
use http::{HeaderValue, Request, Response, StatusCode};
use tower::{Layer, Service};
use tower_api_auth::server::sql::SqlKeyStore;
use tower_api_auth::server::{KeyDigest, KeyStore};
use tower_api_auth::{Placement, ValidateCredentialLayer};

use support::{Bare, Body, PRESENTED, SQL_KNOWN_KEYS, key};

/// Requests a store is timed for in one round.
const REQUESTS: u32 = 200_000;
/// Rounds per store size.
const ROUNDS: usize = 7;

/// The mean time of one request through `service`, over `REQUESTS` requests.
fn time<S, B>(service: &mut S, request: &mut impl FnMut() -> Request<Body>) -> Duration
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

/// An incoming request presenting `value`.
fn request(value: &HeaderValue) -> Request<Body> {
    Request::get("/v1/things")
        .header(AUTHORIZATION, value.clone())
        .body(Body::default())
        .unwrap()
}

fn bearer(index: usize) -> HeaderValue {
    HeaderValue::try_from(format!("Bearer {}", key(index))).unwrap()
}

/// Times the three services in rounds, each first in turn, and prints the medians.
fn compare<S1, S2, S3, B1, B2, B3>(
    label: &str,
    (memory, sql, hit): (&mut S1, &mut S2, &mut S3),
    mut request: impl FnMut() -> Request<Body>,
) where
    S1: Service<Request<Body>, Response = Response<B1>, Error: std::fmt::Debug>,
    S2: Service<Request<Body>, Response = Response<B2>, Error: std::fmt::Debug>,
    S3: Service<Request<Body>, Response = Response<B3>, Error: std::fmt::Debug>,
{
    let request = &mut request;
    let (mut m, mut s, mut h) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        // Each store first in turn, so none always runs right after another's work.
        match round % 3 {
            0 => {
                m.push(time(memory, request));
                s.push(time(sql, request));
                h.push(time(hit, request));
            }
            1 => {
                s.push(time(sql, request));
                h.push(time(hit, request));
                m.push(time(memory, request));
            }
            _ => {
                h.push(time(hit, request));
                m.push(time(memory, request));
                s.push(time(sql, request));
            }
        }
    }
    let (m, s, h) = (median(m), median(s), median(h));
    let ratio = |t: Duration| t.as_secs_f64() / m.as_secs_f64();
    println!(
        "{label:<20} {m:>12.0?}  {s:>8.0?} ({:.2}x)  {h:>8.0?} ({:.2}x)",
        ratio(s),
        ratio(h)
    );
}

fn main() {
    let runtime = support::runtime(1);
    let dir = tempfile::tempdir().unwrap();
    let presented = bearer(PRESENTED);
    println!(
        "keys                 MemoryKeyStore  SqlKeyStore  lookup-through hit   (medians of {ROUNDS} rounds)"
    );
    for size in [10, 10_000, 1_000_000] {
        let known = size.min(SQL_KNOWN_KEYS);
        let database = support::sql_database(&runtime, &dir, size);
        let snapshot = runtime
            .block_on(SqlKeyStore::open(database.clone()))
            .unwrap();
        assert_eq!(snapshot.len(), size);
        let through = runtime.block_on(async {
            let store = SqlKeyStore::builder(database)
                .lookup_through(2 * SQL_KNOWN_KEYS)
                .open()
                .await
                .unwrap();
            // Warmed: every key presented is cached, so every timed lookup is a hit.
            for index in 0..known {
                let found = store.lookup(&KeyDigest::of(key(index))).await.unwrap();
                assert!(found.is_some());
            }
            store
        });
        let layer = |store| ValidateCredentialLayer::new(Placement::bearer(), store);
        let mut memory =
            ValidateCredentialLayer::new(Placement::bearer(), support::store(size)).layer(Bare);
        let mut sql = layer(snapshot).layer(Bare);
        let mut hit = layer(through).layer(Bare);
        let services = (&mut memory, &mut sql, &mut hit);
        compare(&format!("{size}"), services, || request(&presented));
        // Over up to 10,000 of the store's keys, a different one each time.
        let all: Vec<HeaderValue> = (0..known).map(bearer).collect();
        let mut next = 0;
        let services = (&mut memory, &mut sql, &mut hit);
        compare(&format!("{size}, rotating"), services, || {
            next = (next + 1) % all.len();
            request(&all[next])
        });
    }
}
