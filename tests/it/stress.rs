//! Stress: many requests across a multi-thread runtime while the credential changes under them.
//!
//! - A static key (`Credential`, Akkio's preset, via `AuthLayer`) rotated every millisecond, over
//!   HTTP/1 (a connection per client task).
//! - An access token (`TokenCredential`, Akool's getToken, via `TokenAuthLayer`) invalidated at
//!   random moments, over HTTP/2 (one connection, every request a stream of it).
//!
//! A loopback server of the test's own counts what arrives: every request carries exactly one
//! credential, every credential is exactly one the rotator installed (no torn or mixed values) or
//! the token endpoint issued, nothing is lost (server count == client count == requests, every
//! call returned a 200), and token fetches stay within one per invalidation.
//!
//! The cheap variants run in CI; the million-request run is ignored:
//!
//! ```text
//! cargo test --release --all-features --test it stress:: -- --ignored --nocapture
//! ```

use crate::support;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::post;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode};
use http_body_util::BodyExt;
use serde_json::json;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tower::{Layer, Service, ServiceExt};
use tower_api_auth::providers::{akkio, akool};
use tower_api_auth::{AuthLayer, TokenAuthLayer, TokenCredential};

use support::{Served, client, client_h2, get};

/// Client tasks, each sending one request at a time: the bound on requests in flight.
const TASKS: usize = 64;

/// What the loopback server received.
struct Received {
    /// The header the credential travels in.
    header: HeaderName,
    requests: AtomicU64,
    /// Requests without the header.
    missing: AtomicU64,
    /// Requests with the header more than once.
    repeated: AtomicU64,
    /// How many requests carried each value.
    values: Mutex<HashMap<HeaderValue, u64>>,
    token_requests: AtomicU64,
    /// Every `Authorization` value the token endpoint made possible (`Bearer <token>`).
    issued: Mutex<HashSet<String>>,
}

impl Received {
    fn new(header: HeaderName) -> Arc<Self> {
        Arc::new(Self {
            header,
            requests: AtomicU64::new(0),
            missing: AtomicU64::new(0),
            repeated: AtomicU64::new(0),
            values: Mutex::default(),
            token_requests: AtomicU64::new(0),
            issued: Mutex::default(),
        })
    }

    fn values(&self) -> HashMap<HeaderValue, u64> {
        self.values.lock().unwrap().clone()
    }
}

/// Counts every API request by the credential it carries; Akool's getToken issues
/// `stress-token-<n>`.
async fn start_server(received: &Arc<Received>) -> Served {
    async fn api(State(received): State<Arc<Received>>, headers: HeaderMap) -> StatusCode {
        received.requests.fetch_add(1, Ordering::Relaxed);
        let mut values = headers.get_all(&received.header).iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            let counter = if headers.contains_key(&received.header) {
                &received.repeated
            } else {
                &received.missing
            };
            counter.fetch_add(1, Ordering::Relaxed);
            return StatusCode::UNAUTHORIZED;
        };
        let mut seen = received.values.lock().unwrap();
        match seen.get_mut(value) {
            Some(count) => *count += 1,
            None => {
                seen.insert(value.clone(), 1);
            }
        }
        StatusCode::OK
    }
    async fn get_token(State(received): State<Arc<Received>>) -> impl IntoResponse {
        let n = received.token_requests.fetch_add(1, Ordering::SeqCst) + 1;
        let token = format!("stress-token-{n}");
        // Recorded before it is handed out, so no request can carry it unrecorded.
        received
            .issued
            .lock()
            .unwrap()
            .insert(format!("Bearer {token}"));
        axum::Json(json!({ "code": 1000, "token": token }))
    }
    let router = axum::Router::new()
        .route("/api/open/v3/getToken", post(get_token))
        .fallback(api)
        .with_state(Arc::clone(received));
    Served::start(router).await
}

/// What the client side saw.
#[derive(Debug, Default)]
struct Sent {
    ok: u64,
    failures: u64,
    /// The first few failures, for the assertion message.
    examples: Vec<String>,
}

/// Sends `requests` GETs to `url` through `api` from `TASKS` tasks, each one request at a time,
/// and reads every answer to its end.
async fn drive<S, R>(api: S, url: String, requests: u64) -> Sent
where
    S: Service<Request<support::Body>, Response = Response<R>> + Clone + Send + 'static,
    R: http_body::Body + Send,
    R::Data: Send,
    R::Error: fmt::Display + Send,
    S::Future: Send,
    S::Error: fmt::Display + Send,
{
    let next = Arc::new(AtomicU64::new(0));
    let tasks: Vec<JoinHandle<Sent>> = (0..TASKS)
        .map(|_| {
            let (mut api, url, next) = (api.clone(), url.clone(), Arc::clone(&next));
            tokio::spawn(async move {
                let mut sent = Sent::default();
                while next.fetch_add(1, Ordering::Relaxed) < requests {
                    let failure = match api.ready().await {
                        Err(err) => format!("not ready: {err}"),
                        Ok(api) => match api.call(get(&url)).await {
                            Err(err) => format!("failed: {err}"),
                            Ok(response) => {
                                let status = response.status();
                                match response.into_body().collect().await {
                                    Ok(_) if status == StatusCode::OK => {
                                        sent.ok += 1;
                                        continue;
                                    }
                                    Ok(_) => format!("answered {status}"),
                                    Err(err) => format!("body failed: {err}"),
                                }
                            }
                        },
                    };
                    sent.failures += 1;
                    if sent.examples.len() < 5 {
                        sent.examples.push(failure);
                    }
                }
                sent
            })
        })
        .collect();
    let mut total = Sent::default();
    for task in tasks {
        let sent = task.await.unwrap();
        total.ok += sent.ok;
        total.failures += sent.failures;
        total.examples.extend(sent.examples);
    }
    total
}

/// splitmix64: a key's checksum, and the invalidator's random delays.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The `n`th key: a counter and a checksum of it, so that a value mixing two keys (a prefix of
/// one and the rest of another) is not a key.
fn rotated_key(n: u64) -> String {
    format!("k{n:010}-{:016x}", mix(n))
}

fn report(phase: &str, requests: u64, elapsed: Duration, changes: &str, fetches: Option<u64>) {
    let rate = requests as f64 / elapsed.as_secs_f64();
    let fetches = fetches
        .map(|n| format!(", token fetches {n}"))
        .unwrap_or_default();
    println!("{phase}: {requests} requests in {elapsed:.2?} ({rate:.0} req/s), {changes}{fetches}");
}

/// Phase one: a static key rotated every millisecond while `requests` requests go out.
async fn static_key_rotated_every_millisecond(requests: u64) {
    let received = Received::new(HeaderName::from_static("x-api-key"));
    let server = start_server(&received).await;
    let credential = akkio::api_key(rotated_key(0))
        .origin(&server.base_url)
        .build()
        .unwrap();
    let api = AuthLayer::new(credential.clone()).layer(client());
    let installed = Arc::new(Mutex::new(HashSet::from([rotated_key(0)])));

    let (stop, stopped) = oneshot::channel::<()>();
    let rotator = {
        let installed = Arc::clone(&installed);
        tokio::spawn(async move {
            let mut stopped = stopped;
            // Pacing only: the rotations race the requests on purpose, nothing waits on them.
            let mut every_ms = tokio::time::interval(Duration::from_millis(1));
            let mut n = 0;
            loop {
                tokio::select! {
                    _ = &mut stopped => return n,
                    _ = every_ms.tick() => {
                        n += 1;
                        let key = rotated_key(n);
                        // Recorded before it is installed: no request can carry it unrecorded.
                        installed.lock().unwrap().insert(key.clone());
                        credential.rotate(key).unwrap();
                    }
                }
            }
        })
    };

    let started = Instant::now();
    let sent = drive(api, server.url("/api/v1/models"), requests).await;
    let elapsed = started.elapsed();
    stop.send(()).unwrap();
    let rotations = rotator.await.unwrap();

    assert_eq!(sent.failures, 0, "failed calls: {:?}", sent.examples);
    assert_eq!(sent.ok, requests, "every call returned a 200");
    assert_eq!(
        received.requests.load(Ordering::SeqCst),
        requests,
        "none lost"
    );
    assert_eq!(received.missing.load(Ordering::SeqCst), 0, "without a key");
    assert_eq!(received.repeated.load(Ordering::SeqCst), 0, "with two keys");
    let installed = installed.lock().unwrap();
    let values = received.values();
    for (value, count) in &values {
        let key = value.to_str().unwrap_or("<not text>");
        assert!(
            installed.contains(key),
            "{count} requests carried {key:?}, a key never installed"
        );
    }
    assert_eq!(values.values().sum::<u64>(), requests);
    if rotations >= 10 {
        assert!(values.len() > 1, "rotations happened under traffic");
    }
    report(
        "static key, HTTP/1",
        requests,
        elapsed,
        &format!("{rotations} rotations, {} keys seen", values.len()),
        None,
    );
}

/// Phase two: an access token invalidated at random moments while `requests` requests go out.
async fn token_invalidated_at_random_moments(requests: u64) {
    let received = Received::new(http::header::AUTHORIZATION);
    let server = start_server(&received).await;
    let tokens: TokenCredential = akool::client_credentials("stress-id", "stress-secret")
        .base_url(&server.base_url)
        .build(client())
        .unwrap();
    let api = TokenAuthLayer::new(tokens.clone()).layer(client_h2());

    let seed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let (stop, stopped) = oneshot::channel::<()>();
    let invalidator = {
        let tokens = tokens.clone();
        tokio::spawn(async move {
            let mut stopped = stopped;
            let mut n = 0;
            loop {
                // Pacing only: 0 to 2 ms apart, racing the requests on purpose.
                let pause = Duration::from_micros(mix(seed ^ n) % 2_000);
                tokio::select! {
                    _ = &mut stopped => return n,
                    () = tokio::time::sleep(pause) => {
                        tokens.invalidate();
                        n += 1;
                    }
                }
            }
        })
    };

    let started = Instant::now();
    let sent = drive(api, server.url("/api/open/v3/content/list"), requests).await;
    let elapsed = started.elapsed();
    stop.send(()).unwrap();
    let invalidations = invalidator.await.unwrap();

    assert_eq!(
        sent.failures, 0,
        "failed calls (seed {seed}): {:?}",
        sent.examples
    );
    assert_eq!(sent.ok, requests, "every call returned a 200");
    assert_eq!(
        received.requests.load(Ordering::SeqCst),
        requests,
        "none lost"
    );
    assert_eq!(
        received.missing.load(Ordering::SeqCst),
        0,
        "without a token"
    );
    assert_eq!(
        received.repeated.load(Ordering::SeqCst),
        0,
        "with two tokens"
    );
    let issued = received.issued.lock().unwrap();
    let values = received.values();
    for (value, count) in &values {
        let token = value.to_str().unwrap_or("<not text>");
        assert!(
            issued.contains(token),
            "{count} requests carried {token:?}, a token never issued"
        );
    }
    assert_eq!(values.values().sum::<u64>(), requests);

    let fetches = tokens.fetch_count();
    assert_eq!(received.token_requests.load(Ordering::SeqCst), fetches);
    assert!(fetches >= 1);
    assert!(
        fetches <= invalidations + 1,
        "{fetches} fetches for {invalidations} invalidations: at most one each"
    );
    if invalidations >= 10 {
        assert!(fetches > 1, "invalidations happened under traffic");
    }
    assert!(values.len() as u64 <= fetches);
    report(
        "token, HTTP/2",
        requests,
        elapsed,
        &format!(
            "{invalidations} invalidations, {} tokens seen (seed {seed})",
            values.len()
        ),
        Some(fetches),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_static_key_rotated_every_millisecond_under_load_reaches_every_request_whole() {
    static_key_rotated_every_millisecond(20_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_token_invalidated_at_random_under_load_reaches_every_request_with_one_fetch_each() {
    token_invalidated_at_random_moments(20_000).await;
}

/// The long run: a million requests per phase. Run in release:
/// `cargo test --release --all-features --test it stress:: -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "long: a million requests per phase; run in release with --ignored --nocapture"]
async fn a_million_requests_under_rotation_and_invalidation_lose_nothing_and_tear_nothing() {
    static_key_rotated_every_millisecond(1_000_000).await;
    token_invalidated_at_random_moments(1_000_000).await;
}
