//! The cached-token path, against the static credential layer and an `RwLock` cache, on one
//! and two threads; replay on, against the static layer inside `tower::retry` (which copies
//! each request for a retry too); and a cold start with 10,000 concurrent callers.
//!
//! Run: `cargo bench --bench tokens`.

use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use http::header::AUTHORIZATION;
use http::{HeaderValue, Request, Response};
use http_body_util::Full;
use tokio::runtime::Runtime;
use tower::retry::RetryLayer;
use tower::{Layer, Service, ServiceBuilder, ServiceExt};
use tower_api_auth::providers::akool;
use tower_api_auth::{
    AuthLayer, ClassifyLayer, Credential, Token, TokenAuthLayer, TokenCredential,
};

mod support;

use support::{Bare, Body, CopyForRetry, once};

const URL: &str = "https://api.example.com/v1/things";

/// Every variant sends the same (empty, replayable) body.
/// The obvious alternative to arc-swap: a token behind an `RwLock`, read on every request.
#[derive(Clone)]
struct RwLockAuth<S> {
    inner: S,
    token: Arc<RwLock<HeaderValue>>,
}

impl<S: Service<Request<Body>>> Service<Request<Body>> for RwLockAuth<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        let value = self.token.read().unwrap().clone();
        request.headers_mut().insert(AUTHORIZATION, value);
        self.inner.call(request)
    }
}

fn request() -> Request<Body> {
    Request::get(URL).body(Body::new()).unwrap()
}

/// `service` as a closure that sends one request through it, driven without a runtime.
fn boxed<S>(mut service: S) -> Call
where
    S: Service<Request<Body>> + Send + 'static,
    S::Error: std::fmt::Debug,
{
    Box::new(move |request| drop(once(&mut service, request)))
}

fn cached_token() -> TokenCredential {
    let tokens = TokenCredential::builder(|| async { Ok::<_, Infallible>(Token::new("token")) })
        .origin("https://api.example.com")
        .build()
        .unwrap();
    tokens.swap(Token::new("cached-token")).unwrap();
    tokens
}

const NAMES: [&str; 7] = [
    "bare",
    "static AuthLayer",
    "TokenAuthLayer (cached, no replay)",
    "TokenAuthLayer (cached, replay on)",
    "RwLock<HeaderValue>",
    "static AuthLayer in tower::retry (copy per request)",
    "TokenAuthLayer (cached, expiry known, no replay)",
];

/// One request through one variant's service.
type Call = Box<dyn FnMut(Request<Body>) + Send>;

/// What the services of one run share, as clones of one client would.
struct Shared {
    credential: Credential,
    tokens: TokenCredential,
    /// A token whose expiry is known (a JWT's `exp`, Polyteia's `expiresAt`): each request
    /// reads the clock to never send it past its expiry.
    expiring: TokenCredential,
    lock: Arc<RwLock<HeaderValue>>,
}

impl Shared {
    fn new() -> Self {
        Self {
            credential: Credential::bearer("cached-token")
                .origin("https://api.example.com")
                .build()
                .unwrap(),
            tokens: cached_token(),
            expiring: {
                let tokens = cached_token();
                let token = Token::new("cached-token").expires_in(Duration::from_secs(3600));
                tokens.swap(token).unwrap();
                tokens
            },
            // Built at run time, as a fetched token is (a static value would clone for free).
            lock: Arc::new(RwLock::new(
                HeaderValue::try_from(String::from("Bearer cached-token")).unwrap(),
            )),
        }
    }

    /// A service of variant `index` (see `NAMES`), as a closure that sends one request.
    fn variant(&self, index: usize) -> Call {
        match index {
            0 => boxed(Bare),
            1 => boxed(AuthLayer::new(self.credential.clone()).layer(Bare)),
            2 => boxed(
                TokenAuthLayer::new(self.tokens.clone())
                    .without_replay()
                    .layer(Bare),
            ),
            3 => boxed(TokenAuthLayer::new(self.tokens.clone()).layer(Bare)),
            4 => boxed(RwLockAuth {
                inner: Bare,
                token: Arc::clone(&self.lock),
            }),
            6 => boxed(
                TokenAuthLayer::new(self.expiring.clone())
                    .without_replay()
                    .layer(Bare),
            ),
            _ => boxed(
                ServiceBuilder::new()
                    .layer(RetryLayer::new(CopyForRetry))
                    .layer(AuthLayer::new(self.credential.clone()))
                    .service(Bare),
            ),
        }
    }
}

fn one_thread(c: &mut Criterion) {
    let mut group = c.benchmark_group("token/1 thread");
    let shared = Shared::new();
    for (index, name) in NAMES.into_iter().enumerate() {
        let mut call = shared.variant(index);
        group.bench_function(name, |b| {
            b.iter_batched(request, &mut call, BatchSize::SmallInput)
        });
    }
    group.finish();
}

/// Two threads, each with its own clone of the service, sharing one credential.
fn two_threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("token/2 threads");
    for (index, name) in NAMES.into_iter().enumerate() {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| two_thread_run(index, iters))
        });
    }
    group.finish();
}

/// Per-request time as each thread sees it while the other runs alongside.
fn two_thread_run(index: usize, iters: u64) -> Duration {
    let shared = Shared::new();
    let barrier = Arc::new(std::sync::Barrier::new(2));
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let mut call = shared.variant(index);
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                let requests: Vec<_> = (0..iters).map(|_| request()).collect();
                barrier.wait();
                let start = Instant::now();
                for request in requests {
                    call(request);
                }
                start.elapsed()
            })
        })
        .collect();
    let total: Duration = threads.into_iter().map(|t| t.join().unwrap()).sum();
    total / 2
}

/// 10,000 callers arrive at a cold cache at once; one fetch serves them all.
fn cold_start(c: &mut Criterion) {
    const CALLERS: usize = 10_000;
    let runtime = support::runtime(2);
    let mut group = c.benchmark_group("token/cold start");
    group.sample_size(10);
    let fetches = Arc::new(AtomicUsize::new(0));
    let mut runs = 0;
    group.bench_function("10,000 concurrent callers", |b| {
        b.iter_custom(|iters| {
            runs += iters;
            runs_at_once(&runtime, iters, CALLERS, || {
                let tokens = counted(&fetches, || async {
                    tokio::task::yield_now().await;
                    Ok(Token::new("token"))
                });
                TokenAuthLayer::new(tokens).layer(Bare)
            })
        })
    });
    group.finish();
    println!(
        "cold start: {} fetches over {runs} runs of {CALLERS} callers",
        fetches.load(Ordering::Relaxed)
    );
}

/// A credential for any origin whose every fetch is counted in `fetches`, then runs `fetch`.
fn counted<F, Fut>(fetches: &Arc<AtomicUsize>, fetch: F) -> TokenCredential
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Token, Infallible>> + Send + 'static,
{
    let fetches = Arc::clone(fetches);
    TokenCredential::builder(move || {
        fetches.fetch_add(1, Ordering::Relaxed);
        fetch()
    })
    .any_origin()
    .build()
    .unwrap()
}

/// `iters` runs on `runtime`, each with a new service from `service` (built before its run is
/// timed): the time `callers` requests take, each through its own clone of the service in a
/// task of its own, all spawned at once.
fn runs_at_once<S>(
    runtime: &Runtime,
    iters: u64,
    callers: usize,
    mut service: impl FnMut() -> S,
) -> Duration
where
    S: Service<Request<Body>> + Clone + Send + 'static,
    S::Future: Send,
    S::Response: Send + 'static,
    S::Error: std::fmt::Debug + Send + 'static,
{
    let mut elapsed = Duration::ZERO;
    for _ in 0..iters {
        let service = service();
        elapsed += runtime.block_on(async {
            let start = Instant::now();
            let callers: Vec<_> = (0..callers)
                .map(|_| tokio::spawn(service.clone().oneshot(request())))
                .collect();
            for caller in callers {
                caller.await.unwrap().unwrap();
            }
            start.elapsed()
        });
    }
    elapsed
}

/// 10,000 requests in flight when the API starts rejecting their token with Akool's code 1101
/// in an HTTP 200: one refetch, one replay each.
fn expiry_under_load(c: &mut Criterion) {
    const IN_FLIGHT: usize = 10_000;
    let runtime = support::runtime(2);
    // Answers 1101 to the first token, 1000 to any other.
    let api = tower::service_fn(|request: Request<Body>| {
        let expired = request.headers()[AUTHORIZATION] == "Bearer expired";
        let body = if expired {
            r#"{"code":1101,"msg":"Invalid authorization or The request token has expired"}"#
        } else {
            r#"{"code":1000,"msg":"OK","data":{}}"#
        };
        let response = Response::builder()
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from_static(body.as_bytes())))
            .unwrap();
        std::future::ready(Ok::<_, Infallible>(response))
    });
    let mut group = c.benchmark_group("token/expiry under load");
    group.sample_size(10);
    let refetches = Arc::new(AtomicUsize::new(0));
    let mut runs = 0;
    group.bench_function("10,000 in flight, one 1101", |b| {
        b.iter_custom(|iters| {
            runs += iters;
            runs_at_once(&runtime, iters, IN_FLIGHT, || {
                let tokens = counted(&refetches, || async { Ok(Token::new("fresh")) });
                tokens.swap(Token::new("expired")).unwrap();
                ServiceBuilder::new()
                    .layer(TokenAuthLayer::new(tokens))
                    .layer(ClassifyLayer::new(akool::classifier()))
                    .service(api)
            })
        })
    });
    group.finish();
    println!(
        "expiry under load: {} refetches over {runs} runs of {IN_FLIGHT} requests",
        refetches.load(Ordering::Relaxed)
    );
}

criterion_group! {
    name = benches;
    config = support::criterion();
    targets = one_thread, two_threads, cold_start, expiry_under_load
}
criterion_main!(benches);
