//! Loopback stand-ins of the four APIs that [`tower-api-auth`](tower_api_auth) has presets for
//! (Akkio, Polyteia, Erathos, Akool), for tests and examples that must run offline.
//!
//! Each stand-in is an HTTP server on `127.0.0.1` with a port of its own (so each has an origin
//! of its own, as the real APIs do). It checks credentials the way its provider documents, with
//! `tower-api-auth`'s own [server side](tower_api_auth::server) (so client and server test each
//! other), answers like the provider does (Akool with HTTP 200 and a body code), and records
//! what it received, refused requests included, so a test can assert on the headers that
//! arrived. It stops when dropped.
//!
//! Add it to your tests, next to `tower-api-auth`:
//!
//! ```toml
//! [dev-dependencies]
//! tower-api-auth-mock = "0.1"
//! ```
//!
//! A client with Akkio's credential, against the Akkio stand-in:
//!
//! ```
//! use bytes::Bytes;
//! use http::Request;
//! use http_body_util::Empty;
//! use hyper_util::client::legacy::Client;
//! use hyper_util::rt::TokioExecutor;
//! use tower::{ServiceBuilder, ServiceExt};
//! use tower_api_auth::AuthLayer;
//! use tower_api_auth::providers::akkio;
//! use tower_api_auth_mock::{MockServer, Provider};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let api = MockServer::start(Provider::Akkio).await?;
//! api.accept_key("akkio-test-key");
//!
//! let credential = akkio::api_key("akkio-test-key")
//!     .origin(&api.base_url())
//!     .build()?;
//! let client = ServiceBuilder::new()
//!     .layer(AuthLayer::new(credential))
//!     .service(Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>());
//!
//! let url = format!("{}/api/v1/models", api.base_url());
//! let response = client.oneshot(Request::get(url).body(Empty::new())?).await?;
//! assert_eq!(response.status(), 200);
//!
//! // What arrived at the stand-in, as it arrived.
//! let received = api.requests();
//! assert_eq!(received.len(), 1);
//! assert_eq!(received[0].uri.path(), "/api/v1/models");
//! assert_eq!(received[0].headers["x-api-key"], "akkio-test-key");
//! # Ok(())
//! # }
//! ```
//!
//! [`MockProviders::start`] starts all four at once, each on its own port.
//!
//! # What each stand-in answers
//!
//! On every path but its token endpoint (any path is "the API": a test picks the path its
//! client would call, and reads it back from [`MockServer::requests`]):
//!
//! | provider | credential | missing or unknown | forbidden | success |
//! |---|---|---|---|---|
//! | Akkio | `X-API-Key` | 401 `{"error"}` | 403 under `/api/v1/restricted` | 200 JSON |
//! | Polyteia | `Authorization: Bearer`, JSON content type required (else 415) | 401 `{"error"}` | 403 for `{"query": "restricted"}` | 200 `{"data"}` |
//! | Erathos | `Authorization: Api-Key` | 401 `{"detail"}` | 403 for workspace `restricted` | 200 JSON |
//! | Akool | `x-api-key` or `Authorization: Bearer`; both at once is refused, as a stale token would win at Akool | 200 `{"code": 1102}` / `{"code": 1101}` | 200 `{"code": 1200}` for banned keys | 200 `{"code": 1000}` |
//!
//! Keys are accepted with [`MockServer::accept_key`], and stop being accepted with
//! [`MockServer::revoke_key`] and [`MockServer::ban_key`].
//!
//! # Token endpoints
//!
//! Each counts every call ([`MockServer::token_request_count`]):
//!
//! - Akool: `POST /api/open/v3/getToken` with `{"clientId", "clientSecret"}` (an accepted key as
//!   the secret) answers `{"code": 1000, "token"}`, a token without an expiry (Akool's last over
//!   a year); a wrong secret gets code 1101.
//! - Polyteia: `POST /rpc/auth/personalAccessKey/exchange` with `{"json": {"key"}}` answers
//!   `{"json": {"token", "expiresAt", ...}}` (one hour, or [`MockServer::set_token_ttl`]); a
//!   wrong key gets 401.
//!
//! Issued tokens are accepted as `Authorization: Bearer` until [`MockServer::expire_tokens`];
//! [`MockServer::set_token_fault`] makes the endpoint fail in the ways of [`TokenFault`].
//!
//! # Requests in flight
//!
//! [`MockServer::hold`] keeps the next requests at the stand-in until the test releases them
//! ([`Hold`]), so a test can change the stand-in (expire its tokens, say) while a known number
//! of requests is in flight, without sleeping.
//!
//! # Redirects
//!
//! Every stand-in also answers `GET /_mock/redirect?to=<url>` with a `307` to `url`, to test
//! what a credential does across redirects.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(unreachable_pub, rust_2018_idioms, clippy::todo, clippy::dbg_macro)]

/// The README's example, compiled and run as a doctest so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

mod providers;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Uri};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, oneshot, watch};

use tower_api_auth::server::{KeyDigest, KeyRecord, KeyStore, MemoryKeyStore, Principal};

/// The provider a [`MockServer`] plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Provider {
    /// Akkio: `X-API-Key`, 401/403.
    Akkio,
    /// Polyteia: `Authorization: Bearer`, JSON only, 401/403.
    Polyteia,
    /// Erathos: `Authorization: Api-Key`, 401/403 with `{"detail"}`.
    Erathos,
    /// Akool: `x-api-key` or `Authorization: Bearer`, failures as body codes in HTTP 200.
    Akool,
}

/// A request as the stand-in received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// The request method.
    pub method: Method,
    /// The request target (path and query).
    pub uri: Uri,
    /// Every header that arrived, duplicates included.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

/// One provider stand-in listening on loopback; it stops when dropped.
///
/// See the [crate docs](crate) for an example.
#[derive(Debug)]
pub struct MockServer {
    provider: Provider,
    addr: SocketAddr,
    state: Arc<State>,
    _shutdown: oneshot::Sender<()>,
}

/// How the token endpoint misbehaves, for fault-injection tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenFault {
    /// HTTP 500 with a plain-text body.
    ServerError,
    /// HTTP 200 with a body that is not JSON.
    GarbageJson,
    /// Akool: HTTP 200 with this body code instead of 1000.
    ErrorCode(i64),
    /// HTTP 200, success code, empty token.
    EmptyToken,
    /// Never answers (the connection stays open).
    Stall,
    /// Answers correctly after this delay.
    Delay(Duration),
    /// HTTP 200, the headers and the first bytes of a JSON body, then nothing more (the
    /// connection stays open): a server that hangs halfway through its answer.
    StallMidBody,
    /// HTTP 200, the headers and the first bytes of a JSON body, then the connection is dropped
    /// (HTTP/2: the stream is reset): a server that crashes halfway through its answer.
    AbortMidBody,
    /// Fails (HTTP 500) and succeeds by turns, starting with a failure: the 1st, 3rd, 5th...
    /// token request after the fault is set fails, the others are answered correctly.
    Alternate,
    /// Answers correctly, but announces that the token expires at this many seconds since the
    /// Unix epoch, as a server with a skewed or broken clock would: Polyteia's `expiresAt` as a
    /// number, Akool's token as a JWT with this `exp` claim.
    ExpiresAt(u64),
}

#[derive(Debug, Default)]
pub(crate) struct State {
    /// API keys and issued tokens, as the server side holds them; told apart by principal.
    keys: MemoryKeyStore,
    requests: Mutex<Vec<RecordedRequest>>,
    token_requests: AtomicUsize,
    /// The fault, and how many token requests had arrived when it was set.
    token_fault: Mutex<Option<(TokenFault, usize)>>,
    token_ttl: Mutex<Option<Duration>>,
    hold: Mutex<Option<Arc<HoldState>>>,
}

/// Requests held at the stand-in until the test releases them.
#[derive(Debug)]
struct HoldState {
    expected: usize,
    arrived: watch::Sender<usize>,
    release: Semaphore,
}

/// The principal of every API key the stand-in accepts.
const API_KEY: &str = "api-key";
/// The principal of every token it issued.
const TOKEN: &str = "token";

impl State {
    /// Whether `key` is an accepted (and not banned) API key: what the token endpoints take.
    pub(crate) fn is_accepted(&self, key: &str) -> bool {
        let found = self.keys.lookup(&KeyDigest::of(key)).into_inner();
        matches!(found, Ok(Some(record)) if !record.is_revoked() && record.principal().id() == API_KEY)
    }

    pub(crate) fn keys(&self) -> &MemoryKeyStore {
        &self.keys
    }

    /// Counts a token request and says which fault, if any, it meets, with the request's
    /// number since that fault was set (1 for the first).
    pub(crate) fn token_request(&self) -> Option<(TokenFault, usize)> {
        let fault = lock(&self.token_fault);
        let n = self.token_requests.fetch_add(1, Ordering::SeqCst) + 1;
        fault.map(|(fault, set_at)| (fault, n - set_at))
    }

    pub(crate) fn issue(&self, token: String) {
        self.keys
            .insert(token, KeyRecord::new(Principal::new(TOKEN)));
    }

    pub(crate) fn token_request_count(&self) -> usize {
        self.token_requests.load(Ordering::SeqCst)
    }

    pub(crate) fn token_ttl(&self) -> Option<Duration> {
        *lock(&self.token_ttl)
    }

    /// Waits here if a hold is set and still has room; the request that fills the hold takes
    /// it down, so later requests (a replay, say) pass freely.
    pub(crate) async fn wait_at_hold(&self) {
        let hold = {
            let mut slot = lock(&self.hold);
            let Some(hold) = slot.clone() else { return };
            let mut full = false;
            hold.arrived.send_modify(|arrived| {
                *arrived += 1;
                full = *arrived == hold.expected;
            });
            if full {
                *slot = None;
            }
            hold
        };
        // The semaphore is never closed: `acquire` only fails on a closed semaphore.
        if let Ok(permit) = hold.release.acquire().await {
            permit.forget();
        }
    }

    pub(crate) fn record(&self, request: RecordedRequest) {
        lock(&self.requests).push(request);
    }
}

/// The stand-in's state stays usable after a panicking handler: a test reads what was recorded.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl MockServer {
    /// Starts a stand-in for `provider` on `127.0.0.1` with a free port. It accepts no key
    /// until told to with [`accept_key`](Self::accept_key).
    pub async fn start(provider: Provider) -> io::Result<Self> {
        let listener = TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State::default());
        let router = providers::router(provider, Arc::clone(&state));
        let (shutdown, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let serve = axum::serve(listener, router).with_graceful_shutdown(async move {
                // Resolves when the `MockServer` is dropped.
                let _ = stopped.await;
            });
            if let Err(err) = serve.await {
                tracing::warn!(error = %err, "mock server stopped with an error");
            }
        });
        Ok(Self {
            provider,
            addr,
            state,
            _shutdown: shutdown,
        })
    }

    /// The provider this stand-in plays.
    pub fn provider(&self) -> Provider {
        self.provider
    }

    /// The socket address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`: give it to a preset's `.origin(..)`, or to a token flow's
    /// `.base_url(..)` (`akool::client_credentials`, `polyteia::key_exchange`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Accepts `key` from now on (an API key; for Polyteia a personal access key).
    pub fn accept_key(&self, key: &str) {
        let record = KeyRecord::new(Principal::new(API_KEY));
        self.state.keys.insert(key, record);
    }

    /// Stops accepting `key`, as when it is deleted or expires upstream.
    pub fn revoke_key(&self, key: &str) {
        self.state.keys.remove(key);
    }

    /// Treats `key` as belonging to a banned account: its record is revoked (Akool answers code
    /// 1200, the others 401).
    pub fn ban_key(&self, key: &str) {
        let record = KeyRecord::new(Principal::new(API_KEY)).revoked();
        self.state.keys.insert(key, record);
    }

    /// Makes the token endpoint misbehave (`Some`) or behave again (`None`).
    pub fn set_token_fault(&self, fault: Option<TokenFault>) {
        let mut slot = lock(&self.state.token_fault);
        // Counted under the lock that `token_request` counts under: the next request is the
        // fault's first.
        *slot = fault.map(|fault| (fault, self.state.token_request_count()));
    }

    /// Polyteia: the lifetime announced for exchanged tokens (`expiresAt`); default one hour.
    pub fn set_token_ttl(&self, ttl: Duration) {
        *lock(&self.state.token_ttl) = Some(ttl);
    }

    /// Forgets every token issued so far: requests carrying one are rejected as expired
    /// (Akool code 1101, Polyteia 401).
    pub fn expire_tokens(&self) {
        self.state
            .keys
            .retain(|_, record| record.principal().id() != TOKEN);
    }

    /// How many token requests (Akool getToken, Polyteia exchange) arrived, failed ones included.
    pub fn token_request_count(&self) -> usize {
        self.state.token_request_count()
    }

    /// Holds the next `count` API requests (not token requests) at the stand-in, after they
    /// are recorded and before they are answered, until [`Hold::release`]. Lets a test change
    /// the stand-in (expire tokens, say) while a known number of requests is in flight.
    pub fn hold(&self, count: usize) -> Hold {
        let (arrived, watch) = watch::channel(0);
        let state = Arc::new(HoldState {
            expected: count,
            arrived,
            release: Semaphore::new(0),
        });
        *lock(&self.state.hold) = Some(Arc::clone(&state));
        Hold { state, watch }
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.state.requests).clone()
    }

    /// How many requests arrived so far.
    pub fn request_count(&self) -> usize {
        lock(&self.state.requests).len()
    }
}

/// Requests held by [`MockServer::hold`].
#[derive(Debug)]
pub struct Hold {
    state: Arc<HoldState>,
    watch: watch::Receiver<usize>,
}

impl Hold {
    /// Waits until every expected request has arrived and is being held.
    pub async fn all_arrived(&mut self) {
        let expected = self.state.expected;
        // The sender lives in `self.state`, so the channel cannot close under us.
        let _ = self.watch.wait_for(|arrived| *arrived >= expected).await;
    }

    /// Lets every held request (and any still to arrive for this hold) proceed.
    pub fn release(self) {
        self.state.release.add_permits(self.state.expected);
    }
}

/// The four stand-ins at once, each on its own port.
///
/// ```
/// use tower_api_auth_mock::MockProviders;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let mocks = MockProviders::start().await?;
/// assert_ne!(mocks.akkio.base_url(), mocks.akool.base_url());
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct MockProviders {
    /// The Akkio stand-in.
    pub akkio: MockServer,
    /// The Polyteia stand-in.
    pub polyteia: MockServer,
    /// The Erathos stand-in.
    pub erathos: MockServer,
    /// The Akool stand-in.
    pub akool: MockServer,
}

impl MockProviders {
    /// Starts all four stand-ins.
    pub async fn start() -> io::Result<Self> {
        Ok(Self {
            akkio: MockServer::start(Provider::Akkio).await?,
            polyteia: MockServer::start(Provider::Polyteia).await?,
            erathos: MockServer::start(Provider::Erathos).await?,
            akool: MockServer::start(Provider::Akool).await?,
        })
    }
}
