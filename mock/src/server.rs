//! [`MockServer`]: one stand-in on loopback, and what a test tells it; [`MockProviders`]: the
//! four at once.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, oneshot, watch};

use tower_api_auth::server::{KeyRecord, Principal};

use crate::fault::TokenFault;
use crate::hold::{Hold, HoldState};
use crate::providers;
use crate::state::{API_KEY, RecordedRequest, State, TOKEN, lock};

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
