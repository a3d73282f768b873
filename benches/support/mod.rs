//! What the benches share: the inner service every layer wraps, a client request with typical
//! headers, the request copy `tower::retry` makes, the server side's key store; one request
//! driven without a runtime and a timed group of them, a whole body read, runtimes, a loopback
//! server, and the criterion settings. Each bench uses part of it.
#![allow(dead_code)]

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Empty;
use tower::Service;

/// Every request and every response carries an empty body.
pub type Body = Empty<Bytes>;

/// The inner service: answers at once, so only the layer is measured.
#[derive(Clone)]
pub struct Bare;

impl Service<Request<Body>> for Bare {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Ready<Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        drop(request);
        ready(Ok(Response::new(Body::new())))
    }
}

/// A GET of `url` with the first `existing` of 8 typical client headers already on it.
pub fn with_typical_headers(url: &str, existing: usize) -> Request<Body> {
    const TYPICAL: [(&str, &str); 8] = [
        ("host", "api.example.com"),
        ("user-agent", "my-service/1.0"),
        ("accept", "application/json"),
        ("content-type", "application/json"),
        ("content-length", "0"),
        ("accept-encoding", "gzip"),
        ("x-request-id", "4bf92f3577b34da6a3ce929d0e0e4736"),
        (
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ),
    ];
    let mut builder = Request::get(url);
    for (name, value) in &TYPICAL[..existing] {
        builder = builder.header(*name, *value);
    }
    builder.body(Body::new()).unwrap()
}

/// What `tower::retry` needs to retry a request once: a copy of it taken before it is sent.
/// Never retries (every answer is a success): it measures the cost of being able to.
#[derive(Clone)]
pub struct CopyForRetry;

impl tower::retry::Policy<Request<Body>, Response<Body>, Infallible> for CopyForRetry {
    type Future = Ready<()>;

    fn retry(
        &mut self,
        _: &mut Request<Body>,
        _: &mut Result<Response<Body>, Infallible>,
    ) -> Option<Self::Future> {
        None
    }

    fn clone_request(&mut self, request: &Request<Body>) -> Option<Request<Body>> {
        let mut copy = Request::new(*request.body());
        *copy.method_mut() = request.method().clone();
        *copy.uri_mut() = request.uri().clone();
        *copy.version_mut() = request.version();
        *copy.headers_mut() = request.headers().clone();
        *copy.extensions_mut() = request.extensions().clone();
        Some(copy)
    }
}

/// Held by every principal of [`store`].
pub const SCOPE: &str = "things:read";

/// The key presented on the accepted path: in every store, and tower-http's token.
pub const PRESENTED: usize = 7;

/// The `index`th key of a store: all keys (and the unknown one) have the same length.
pub fn key(index: usize) -> String {
    format!("sk-live-{index:024x}")
}

/// No store holds it: its index is past the largest store.
pub fn unknown_key() -> String {
    key(usize::from(u16::MAX) << 8)
}

/// A store of `size` keys, each of its own principal, filled in one change (inserting one by
/// one copies the set each time).
pub fn store(size: usize) -> tower_api_auth::server::MemoryKeyStore {
    use tower_api_auth::server::{KeyDigest, KeyRecord, MemoryKeyStore, Principal};
    let store = MemoryKeyStore::new();
    store.replace((0..size).map(|index| {
        let principal = Principal::new(format!("svc-{index}")).with_scopes([SCOPE, "things:write"]);
        (KeyDigest::of(key(index)), KeyRecord::new(principal))
    }));
    assert_eq!(store.len(), size);
    store
}

/// How many keys of a [`sql_database`] are [`key`]`(index)`: enough for a bench rotating over
/// 10,000 keys; the rest are random digests.
pub const SQL_KNOWN_KEYS: usize = 10_000;

/// A SQLite file of `size` keys, each of its own principal with the scopes of [`store`]: the
/// first [`SQL_KNOWN_KEYS`] are [`key`]`(index)` (500 rows a statement), the rest random
/// digests inserted in one statement, as `tests/sql_load.rs` bulk-loads a million keys.
pub fn sql_database(
    runtime: &tokio::runtime::Runtime,
    dir: &tempfile::TempDir,
    size: usize,
) -> tower_api_auth::server::sql::KeyDatabase {
    use tower_api_auth::server::KeyFormat;
    use tower_api_auth::server::sql::KeyDatabase;
    let url = format!(
        "sqlite://{}",
        dir.path().join(format!("keys-{size}.db")).display()
    );
    let scopes = format!(r#"["{SCOPE}","things:write"]"#);
    runtime.block_on(async {
        let format = KeyFormat::new("sk_live").unwrap();
        let database = KeyDatabase::connect(&url, format).await.unwrap();
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        let mut transaction = pool.begin().await.unwrap();
        const ROWS: usize = 500;
        let known = size.min(SQL_KNOWN_KEYS);
        for first in (0..known).step_by(ROWS) {
            let rows = first..(first + ROWS).min(known);
            let values = vec!["(?, 'sk-live-', ?, ?, ?, 0)"; rows.len()].join(", ");
            let sql = format!(
                "INSERT INTO api_keys (id, start, digest, principal, scopes, created_at) VALUES {values}"
            );
            let mut query = sqlx::query(&sql);
            for index in rows {
                query = query
                    .bind(format!("key-{index}"))
                    .bind(tower_api_auth::server::KeyDigest::of(key(index)).as_bytes().to_vec())
                    .bind(format!("svc-{index}"))
                    .bind(&scopes);
            }
            query.execute(&mut *transaction).await.unwrap();
        }
        if size > known {
            sqlx::query(
                "WITH RECURSIVE n(i) AS (SELECT $1 UNION ALL SELECT i + 1 FROM n WHERE i < $2) \
                 INSERT INTO api_keys (id, start, digest, principal, scopes, created_at) \
                 SELECT 'key-' || i, 'sk-live-', randomblob(32), 'svc-' || i, $3, 0 FROM n",
            )
            .bind(known as i64)
            .bind(size as i64 - 1)
            .bind(&scopes)
            .execute(&mut *transaction)
            .await
            .unwrap();
        }
        transaction.commit().await.unwrap();
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        database
    })
}

/// The criterion settings of the benches that time one request at a time: 1 s of warm-up, 3 s
/// measured, 50 samples.
pub fn criterion() -> criterion::Criterion {
    criterion::Criterion::default()
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(3))
        .sample_size(50)
}

/// A Tokio runtime with `workers` worker threads, timers and I/O on.
pub fn runtime(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap()
}

/// A current-thread Tokio runtime, timers and I/O on.
pub fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Serves `router` on a free loopback port, on the runtime it is called in; returns
/// `http://127.0.0.1:<port>`.
pub async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    url
}

/// One request through `service`, driven without a runtime (every future here is ready); the
/// response, through `black_box`.
pub fn once<S, B>(service: &mut S, request: Request<B>) -> S::Response
where
    S: Service<Request<B>>,
    S::Error: std::fmt::Debug,
{
    use futures::FutureExt;
    let response = service.call(request).now_or_never().expect("ready");
    std::hint::black_box(response.expect("ok"))
}

/// Times `service` in `group` on requests from `request`, each built outside the timed part
/// (`iter_batched`): the timed part is [`once`] and dropping the response.
pub fn bench<S, B>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    service: S,
    request: impl FnMut() -> Request<Body>,
) where
    S: Service<Request<Body>, Response = Response<B>>,
    S::Error: std::fmt::Debug,
{
    bench_in(
        group,
        name,
        service,
        request,
        criterion::BatchSize::SmallInput,
    );
}

/// As [`bench`], the requests built `batch` at a time.
pub fn bench_in<S, B>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    mut service: S,
    mut request: impl FnMut() -> Request<Body>,
    batch: criterion::BatchSize,
) where
    S: Service<Request<Body>, Response = Response<B>>,
    S::Error: std::fmt::Debug,
{
    group.bench_function(name, |b| {
        b.iter_batched(&mut request, |r| once(&mut service, r), batch)
    });
}

/// Reads the whole body of `response`, every future of it ready, through `black_box`.
pub fn read_whole<B>(response: Response<B>)
where
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    use futures::FutureExt;
    use http_body_util::BodyExt;
    let body = response
        .into_body()
        .collect()
        .now_or_never()
        .unwrap()
        .unwrap();
    std::hint::black_box(body);
}

/// A `SqlKeyStore` (a snapshot) on a [`sql_database`] of `size` keys, opened in `runtime`
/// (its follower and usage tasks run there while the bench runs).
pub fn sql_store(
    runtime: &tokio::runtime::Runtime,
    dir: &tempfile::TempDir,
    size: usize,
) -> tower_api_auth::server::sql::SqlKeyStore {
    use tower_api_auth::server::sql::SqlKeyStore;
    let database = sql_database(runtime, dir, size);
    let store = runtime.block_on(SqlKeyStore::open(database)).unwrap();
    assert_eq!(store.len(), size);
    store
}
