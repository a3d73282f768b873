//! Server-side validation per request: `ValidateCredentialLayer` over a `MemoryKeyStore` of 10
//! and of 100,000 keys, against a bare service and tower-http's bearer validation, on the
//! accepted and the rejected path.
//!
//! Run: `cargo bench --bench server`. Requests are built outside the timed section
//! (`iter_batched`); the timed part is: call the layer, await the (ready) inner future, drop
//! the response. Every variant's answer (200, 401) is checked once before it is timed.
//!
//! The same key presented on every request keeps its slot of the store in cache whatever the
//! store's size; the "rotating" variants present a different key each time, over every key of
//! the store, so the 100,000-key store is probed where the cache may not hold it.
//! `server/parts` times the key's SHA-256 digest alone, the one step every lookup pays.
//!
//! `server/sql` compares, in the same run, the layer over a `MemoryKeyStore`, over a
//! `SqlKeyStore` (a SQLite file, loaded into its snapshot) and over a lookup-through
//! `SqlKeyStore` (caches of 16,384 keys, warmed: cache hits), at 10, 10,000 and 1,000,000 keys.
//! The SQL stores share one file per size; past 10,000 keys its rows are bulk-inserted random
//! digests (filling the million-key file and loading its snapshot take about a minute first).
//! Run only this group with `cargo bench --bench server -- server/sql`.

use std::fmt::Debug;

use criterion::measurement::WallTime;
use criterion::{BatchSize, BenchmarkGroup, Criterion, criterion_group, criterion_main};
use http::header::{ACCEPT, AUTHORIZATION, HOST, HeaderName, HeaderValue, USER_AGENT};
use http::{Request, Response, StatusCode};
use tower::{Layer, Service};
use tower_api_auth::server::{KeyDigest, KeyStore};
use tower_api_auth::{Placement, ValidateCredentialLayer};
#[allow(deprecated)]
use tower_http::auth::require_authorization::Bearer;
use tower_http::validate_request::ValidateRequestHeaderLayer;

mod support;

use support::{
    Bare, Body, PRESENTED, SCOPE, SQL_KNOWN_KEYS, key, once, sql_database, store, unknown_key,
};

const PATH: &str = "/v1/things";
/// The store sizes compared: the cost should not depend on them.
const SIZES: [usize; 2] = [10, 100_000];

/// An incoming request with a few typical headers and `value` in `name`.
fn request(name: &HeaderName, value: HeaderValue) -> Request<Body> {
    Request::get(PATH)
        .header(HOST, "api.example.com")
        .header(USER_AGENT, "my-client/1.0")
        .header(ACCEPT, "application/json")
        .header(name, value)
        .body(Body::new())
        .unwrap()
}

fn bearer(key: &str) -> HeaderValue {
    HeaderValue::try_from(format!("Bearer {key}")).unwrap()
}

fn plain(key: &str) -> HeaderValue {
    HeaderValue::try_from(key).unwrap()
}

/// Checks that `service` answers `expected`, then times it on requests from `request`.
fn bench<S, B>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    service: S,
    request: impl FnMut() -> Request<Body>,
    expected: StatusCode,
) where
    S: Service<Request<Body>, Response = Response<B>>,
    S::Error: Debug,
{
    bench_in(
        group,
        name,
        service,
        request,
        expected,
        BatchSize::SmallInput,
    );
}

/// As [`bench`], the requests built `batch` at a time.
fn bench_in<S, B>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    mut service: S,
    mut request: impl FnMut() -> Request<Body>,
    expected: StatusCode,
    batch: BatchSize,
) where
    S: Service<Request<Body>, Response = Response<B>>,
    S::Error: Debug,
{
    assert_eq!(once(&mut service, request()).status(), expected, "{name}");
    support::bench_in(group, name, service, request, batch);
}

/// tower-http's bearer check, with `ResBody = ()` as the inner service answers.
// tower-http deprecated its `require_authorization` module ("too basic"); it is still the
// ecosystem's one-line bearer check, so it is the baseline here.
#[allow(deprecated)]
fn tower_http_bearer(token: &str) -> ValidateRequestHeaderLayer<Bearer<Body>> {
    ValidateRequestHeaderLayer::bearer(token)
}

fn accepted(c: &mut Criterion) {
    let mut group = c.benchmark_group("server/accepted");
    // Built once: every variant clones the same values into its requests.
    let bearer_value = bearer(&key(PRESENTED));
    let plain_value = plain(&key(PRESENTED));
    bench(
        &mut group,
        "bare",
        Bare,
        || request(&AUTHORIZATION, bearer_value.clone()),
        StatusCode::OK,
    );
    bench(
        &mut group,
        "tower-http bearer",
        tower_http_bearer(&key(PRESENTED)).layer(Bare),
        || request(&AUTHORIZATION, bearer_value.clone()),
        StatusCode::OK,
    );
    let x_api_key = HeaderName::from_static("x-api-key");
    for size in SIZES {
        let keys = store(size);
        let layer = ValidateCredentialLayer::new(Placement::bearer(), keys.clone());
        bench(
            &mut group,
            &format!("ValidateCredential bearer, {size} keys"),
            layer.layer(Bare),
            || request(&AUTHORIZATION, bearer_value.clone()),
            StatusCode::OK,
        );
        bench(
            &mut group,
            &format!("ValidateCredential bearer + scope, {size} keys"),
            layer.clone().require_scopes([SCOPE]).layer(Bare),
            || request(&AUTHORIZATION, bearer_value.clone()),
            StatusCode::OK,
        );
        bench(
            &mut group,
            &format!("ValidateCredential x-api-key, {size} keys"),
            ValidateCredentialLayer::new(Placement::header(x_api_key.clone()).unwrap(), keys)
                .layer(Bare),
            || request(&x_api_key, plain_value.clone()),
            StatusCode::OK,
        );
        // Every key of the store in turn, values built beforehand.
        let all: Vec<HeaderValue> = (0..size).map(|index| bearer(&key(index))).collect();
        let mut next = 0;
        bench(
            &mut group,
            &format!("ValidateCredential bearer, {size} keys, rotating"),
            layer.layer(Bare),
            || {
                next = (next + 1) % all.len();
                request(&AUTHORIZATION, all[next].clone())
            },
            StatusCode::OK,
        );
    }
    group.finish();
}

fn rejected(c: &mut Criterion) {
    let mut group = c.benchmark_group("server/rejected");
    let unknown = bearer(&unknown_key());
    bench(
        &mut group,
        "bare",
        Bare,
        || request(&AUTHORIZATION, unknown.clone()),
        StatusCode::OK,
    );
    bench(
        &mut group,
        "tower-http bearer, wrong token",
        tower_http_bearer(&key(PRESENTED)).layer(Bare),
        || request(&AUTHORIZATION, unknown.clone()),
        StatusCode::UNAUTHORIZED,
    );
    for size in SIZES {
        let layer = ValidateCredentialLayer::new(Placement::bearer(), store(size));
        bench(
            &mut group,
            &format!("ValidateCredential bearer, unknown key, {size} keys"),
            layer.layer(Bare),
            || request(&AUTHORIZATION, unknown.clone()),
            StatusCode::UNAUTHORIZED,
        );
    }
    group.finish();
}

/// How many requests `server/sql` builds before timing them: few enough to stay in cache, as
/// a request a server has just parsed is.
///
/// With criterion's `SmallInput` a batch grows to a tenth of a sample (over 10,000 requests,
/// some 16 MiB built before the first is timed), and the time then followed the process's heap
/// more than the store: at a million keys the same SQL store measured 637 ns timed after the
/// memory store (393 ns) and 430 ns timed before it (memory 420 ns), and a profile put the
/// difference in `malloc` and in reading the cold requests' headers, not in the store
/// (`BENCHMARKS.md`, "Server keys in a database").
const SQL_BATCH: BatchSize = BatchSize::NumIterations(256);

/// The same key every time, then a different key each time (over up to 10,000 of the store's
/// keys), through `layer`.
fn sql_variants<K: tower_api_auth::server::KeyStore>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    layer: ValidateCredentialLayer<K>,
    size: usize,
) {
    let bearer_value = bearer(&key(PRESENTED));
    bench_in(
        group,
        &format!("{name}, {size} keys"),
        layer.layer(Bare),
        || request(&AUTHORIZATION, bearer_value.clone()),
        StatusCode::OK,
        SQL_BATCH,
    );
    let all: Vec<HeaderValue> = (0..size.min(SQL_KNOWN_KEYS))
        .map(|index| bearer(&key(index)))
        .collect();
    let mut next = 0;
    bench_in(
        group,
        &format!("{name}, {size} keys, rotating"),
        layer.layer(Bare),
        || {
            next = (next + 1) % all.len();
            request(&AUTHORIZATION, all[next].clone())
        },
        StatusCode::OK,
        SQL_BATCH,
    );
}

/// The layer over a `MemoryKeyStore`, a `SqlKeyStore` snapshot and a lookup-through
/// `SqlKeyStore` of the same number of keys, same run.
fn sql(c: &mut Criterion) {
    use tower_api_auth::server::sql::SqlKeyStore;
    /// The lookup-through caches' capacity: every key the benches present stays cached.
    const CAPACITY: usize = 16_384;
    let mut group = c.benchmark_group("server/sql");
    let runtime = support::runtime(1);
    let dir = tempfile::tempdir().unwrap();
    for size in [10, 10_000, 1_000_000] {
        let database = sql_database(&runtime, &dir, size);
        let snapshot = runtime
            .block_on(SqlKeyStore::open(database.clone()))
            .unwrap();
        assert_eq!(snapshot.len(), size);
        let lookup_through = runtime.block_on(async {
            let store = SqlKeyStore::builder(database)
                .lookup_through(CAPACITY)
                .open()
                .await
                .unwrap();
            // Warmed: every key the variants present is cached, so each lookup is a hit.
            for index in 0..size.min(SQL_KNOWN_KEYS) {
                let found = store.lookup(&KeyDigest::of(key(index))).await.unwrap();
                assert!(found.is_some());
            }
            store
        });
        let memory = ValidateCredentialLayer::new(Placement::bearer(), store(size));
        sql_variants(&mut group, "MemoryKeyStore", memory, size);
        let snapshot = ValidateCredentialLayer::new(Placement::bearer(), snapshot);
        sql_variants(&mut group, "SqlKeyStore (SQLite)", snapshot, size);
        let lookup_through = ValidateCredentialLayer::new(Placement::bearer(), lookup_through);
        sql_variants(
            &mut group,
            "SqlKeyStore lookup-through, cache hit",
            lookup_through,
            size,
        );
    }
    group.finish();
}

/// What one accepted request pays for besides the layer's plumbing: the key's digest, computed
/// on every request whatever the store.
fn parts(c: &mut Criterion) {
    let mut group = c.benchmark_group("server/parts");
    let presented = key(PRESENTED);
    group.bench_function("KeyDigest::of (SHA-256 of the key)", |b| {
        b.iter(|| KeyDigest::of(std::hint::black_box(presented.as_bytes())))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = support::criterion();
    targets = accepted, rejected, parts, sql
}
criterion_main!(benches);
