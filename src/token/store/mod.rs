//! Fetched tokens kept beyond one process: across restarts ([`TokenStore::file`]) and across
//! the replicas of a fleet (`TokenStore::redis`, feature `redis`), so that a hundred runs of a
//! cron job, or twenty replicas starting together, fetch one token.
//!
//! ```
//! use std::time::Duration;
//! use tower_api_auth::{Secret, Token, TokenCredential};
//! use tower_api_auth::token::store::TokenStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = std::env::temp_dir().join(format!("tower-api-auth-doc-{}", std::process::id()));
//! let secret = Secret::new("client-secret");
//! let credential = |n: &'static str| {
//!     TokenCredential::builder(move || async move {
//!         Ok::<_, std::io::Error>(Token::new(n).expires_in(Duration::from_secs(3600)))
//!     })
//!     .origin("https://api.example.com")
//!     .store(TokenStore::file(&dir))
//!     .store_identity("client-id https://api.example.com/token", &secret)
//!     .build()
//! };
//!
//! let first = credential("token-1")?;
//! first.fetch().await?;
//! assert_eq!(first.fetch_count(), 1);
//!
//! // A restart: the token comes from the file, nothing is fetched.
//! let second = credential("token-2")?;
//! second.fetch().await?;
//! assert_eq!(second.fetch_count(), 0);
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok(())
//! # }
//! ```
//!
//! # Where the store sits
//!
//! The in-process cache stays the request path: a request reads the cached token with one
//! atomic load and never touches the store. The store is read only when the cache has no token
//! a request may use (at start, at a refresh, after a rejection), before the token source is
//! called, and written after each fetch. Reads, writes and waits are bounded
//! ([`TokenStore::wait_bound`]); a store that fails or is slow is logged once (and once again
//! when it is back), and each process then fetches for itself: availability before
//! deduplication.
//!
//! # One fetch for many processes
//!
//! A process that finds no usable token takes the store's lease for the credential (an advisory
//! file lock; a Redis `SET NX PX`), reads the store again (another process may have just written
//! a token), and only then calls the token source and writes what it got. The others wait for
//! the lease (Redis: a pub/sub notice, with a polling fallback) and take the token written.
//!
//! Each stored token has a generation. A process whose token (of stored generation `g`) is
//! rejected takes any stored token of a later generation without a fetch; only when the store
//! still holds `g` does it fetch, under the lease. However many processes see `g` rejected, one
//! reaches the token endpoint.
//!
//! A stored token past its expiry is not used as such: a fetch is tried first, and only if it
//! fails does the stored token serve, under the rules of static stability, as a cached one
//! would.
//!
//! # Keys, and what a reader of the store gets
//!
//! Records are keyed by a fingerprint of the credentials the token was fetched with:
//! HMAC-SHA256 keyed by the secret over the rest of the identity (provider, client id, token
//! endpoint). A changed secret changes it, so a token fetched with an old secret is never
//! reused; it does not reveal the secret. The presets set the identity; a source of your own
//! names it with [`TokenCredentialBuilder::store_identity`](super::TokenCredentialBuilder::store_identity).
//!
//! **Without `TokenStore::sealed`** (feature `store-encryption`), whoever can read the
//! directory or the Redis database gets the access tokens themselves, usable against the API
//! until they expire, and their expiry. Never the client secret. The file store makes its files
//! readable by their owner only (mode `0600` in a `0700` directory) and refuses to use a file
//! others could have written; a Redis database is readable by everyone who may connect to it.
//! **Sealed**, records are encrypted and authenticated with ChaCha20-Poly1305 under your key:
//! a reader gets the fingerprint, the record's size and when it was written, and a record
//! altered or moved to another credential's key is refused.

mod file;
mod record;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "store-encryption")]
mod sealed;
mod shared;
#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

pub(crate) use self::record::Fingerprint;
pub(crate) use self::shared::{Attached, Floor};

/// Where fetched tokens are kept beyond the process: a directory ([`file`](Self::file)) or a
/// Redis database (`redis`, feature `redis`). Give it to
/// [`TokenCredentialBuilder::store`](super::TokenCredentialBuilder::store). See the
/// [module docs](self) for how it is used and what it protects.
#[derive(Clone)]
pub struct TokenStore {
    pub(crate) backend: Arc<dyn Backend>,
    pub(crate) wait_bound: Duration,
    #[cfg(feature = "store-encryption")]
    pub(crate) seal: Option<Arc<sealed::Seal>>,
}

impl TokenStore {
    /// The default of [`wait_bound`](Self::wait_bound).
    pub const DEFAULT_WAIT_BOUND: Duration = Duration::from_secs(3);

    /// Tokens in files under `dir` (created, mode `0700`, when missing): one file per
    /// credential, written atomically (a temporary file renamed over it), mode `0600`; an
    /// advisory lock per credential makes the processes of one machine fetch once.
    ///
    /// Pick a directory only your user can write, such as
    /// [`user_cache_dir`](Self::user_cache_dir). A directory that exists already is used as it
    /// is, whatever its mode: in a shared one (`/tmp` itself) other users see that tokens are
    /// cached and when, though not the tokens; use a subdirectory the store creates instead.
    pub fn file(dir: impl AsRef<Path>) -> Self {
        Self::with_backend(Arc::new(file::FileStore::new(dir.as_ref().to_owned())))
    }

    /// The conventional per-user cache directory for this crate's tokens:
    /// `$XDG_CACHE_HOME/tower-api-auth/tokens` (or `~/.cache/...`) on Linux and other Unixes,
    /// `~/Library/Caches/tower-api-auth/tokens` on macOS, `%LOCALAPPDATA%\tower-api-auth\tokens`
    /// on Windows. `None` when the environment names no home directory. Nothing is stored there
    /// unless you pass it to [`file`](Self::file).
    pub fn user_cache_dir() -> Option<PathBuf> {
        fn env(name: &str) -> Option<PathBuf> {
            std::env::var_os(name)
                .filter(|value| !value.is_empty())
                .map(PathBuf::from)
        }
        let base = if cfg!(windows) {
            env("LOCALAPPDATA")?
        } else if cfg!(target_os = "macos") {
            env("HOME")?.join("Library").join("Caches")
        } else {
            env("XDG_CACHE_HOME")
                .filter(|dir| dir.is_absolute())
                .or_else(|| env("HOME").map(|home| home.join(".cache")))?
        };
        Some(base.join("tower-api-auth").join("tokens"))
    }

    /// Tokens in Redis at `url` (`redis://host:port/db`, `rediss://` needs a TLS feature of the
    /// `redis` crate), shared by every process using it: under `tower-api-auth:token:<key>`
    /// with a time to live of the token's remaining lifetime (no expiry when the token's is
    /// unknown), a lease `tower-api-auth:lease:<key>` taken with `SET NX PX` for the one fetch,
    /// and a notice published on `tower-api-auth:stored:<key>` when a token is written. Change
    /// the prefix with [`namespace`](Self::namespace).
    ///
    /// Fails only on a URL that is not one; nothing is connected until a token is needed.
    #[cfg(feature = "redis")]
    pub fn redis(url: &str) -> Result<Self, StoreError> {
        Ok(Self::with_backend(Arc::new(redis::RedisStore::new(
            url,
            "tower-api-auth",
        )?)))
    }

    /// Redis keys and channels start with `namespace` instead of `tower-api-auth` (several
    /// applications in one database). No effect on a file store: its directory is its
    /// namespace.
    #[cfg(feature = "redis")]
    pub fn namespace(mut self, namespace: &str) -> Self {
        if let Some(store) = self.backend.as_redis() {
            self.backend = Arc::new(store.with_namespace(namespace));
        }
        self
    }

    /// The longest a fetch waits on the store before fetching for itself (default 3 s), all its
    /// reads, writes and the wait for another process's fetch together. A store that is down or slow
    /// costs a process at most this much per fetch, never a request on the cached path.
    /// Keep it above your token endpoint's usual answer time, so that waiting processes do not
    /// give up on a fetch that is about to land.
    pub fn wait_bound(mut self, bound: Duration) -> Self {
        self.wait_bound = bound;
        self
    }

    /// Encrypts and authenticates every record with ChaCha20-Poly1305 under `key` (32 bytes of
    /// your own: keep it where you keep the client secret). A record that does not open under
    /// the key (another key, altered, not sealed) is not used: the token is fetched and the
    /// record replaced.
    #[cfg(feature = "store-encryption")]
    pub fn sealed(mut self, key: [u8; 32]) -> Self {
        self.seal = Some(Arc::new(sealed::Seal::new(key)));
        self
    }

    fn with_backend(backend: Arc<dyn Backend>) -> Self {
        Self {
            backend,
            wait_bound: Self::DEFAULT_WAIT_BOUND,
            #[cfg(feature = "store-encryption")]
            seal: None,
        }
    }
}

impl fmt::Debug for TokenStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("TokenStore");
        debug
            .field("backend", &self.backend.describe())
            .field("wait_bound", &self.wait_bound);
        #[cfg(feature = "store-encryption")]
        debug.field("sealed", &self.seal.is_some());
        debug.finish()
    }
}

/// Why a token store could not be used. The token is then fetched (and used) as without a
/// store; the error is logged at WARN and kept in
/// [`TokenStatus::store_error`](super::TokenStatus::store_error). It never quotes a record: a
/// record holds a token.
#[derive(Debug, Clone, thiserror::Error)]
#[error("token store ({backend}): {kind}: {detail}")]
pub struct StoreError {
    kind: StoreErrorKind,
    backend: &'static str,
    detail: Arc<str>,
}

/// What kind of failure a [`StoreError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// The store could not be reached, read or written: an I/O error, a read-only directory,
    /// Redis down or refusing a command.
    Unavailable,
    /// The store did not answer within [`TokenStore::wait_bound`].
    Timeout,
    /// A record is not a whole token record: torn, truncated, altered, or another
    /// credential's.
    Corrupt,
    /// A record file others could have written or read (mode wider than `0600`, or another
    /// owner): not used, and replaced.
    Permissions,
    /// A sealed record does not open under the key (another key, altered), or the store is
    /// sealed and the record is not. (A store that is not sealed reads a sealed record as
    /// [`Corrupt`](Self::Corrupt).)
    Sealed,
    /// The Redis URL is not one.
    InvalidUrl,
}

impl fmt::Display for StoreErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StoreErrorKind::Unavailable => "unavailable",
            StoreErrorKind::Timeout => "timed out",
            StoreErrorKind::Corrupt => "corrupt record",
            StoreErrorKind::Permissions => "unsafe permissions",
            StoreErrorKind::Sealed => "record does not open under the key",
            StoreErrorKind::InvalidUrl => "invalid URL",
        })
    }
}

impl StoreError {
    pub(crate) fn new(kind: StoreErrorKind, detail: impl Into<Arc<str>>) -> Self {
        Self {
            kind,
            backend: "",
            detail: detail.into(),
        }
    }

    pub(crate) fn backend(mut self, backend: &'static str) -> Self {
        self.backend = backend;
        self
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> StoreErrorKind {
        self.kind
    }
}

/// A place to keep records: the file store, Redis. The protocol (generations, the re-read
/// under the lease, bounds, sealing) is [`Attached`]'s, so a backend only moves bytes.
pub(crate) trait Backend: Send + Sync + 'static {
    /// The record under `key`, if any.
    fn load(&self, key: &str) -> BoxFuture<'static, Result<Option<Vec<u8>>, StoreError>>;

    /// Replaces the record under `key`, to be kept `ttl` when given; tells waiting processes.
    fn save(
        &self,
        key: &str,
        record: Vec<u8>,
        ttl: Option<Duration>,
    ) -> BoxFuture<'static, Result<(), StoreError>>;

    /// Takes the lease for the one fetch of `key`, held at most `ttl` (Redis), or says that
    /// another process holds it.
    fn lease(&self, key: &str, ttl: Duration) -> BoxFuture<'static, Result<Lease, StoreError>>;

    /// "file", "redis": for logs.
    fn describe(&self) -> &'static str;

    #[cfg(feature = "redis")]
    fn as_redis(&self) -> Option<&redis::RedisStore> {
        None
    }
}

/// The answer to [`Backend::lease`].
pub(crate) enum Lease {
    /// This process fetches; the lease is released by [`Release::release`] (or, failing that,
    /// when dropped).
    Held(Box<dyn Release>),
    /// Another process fetches (only Redis says so; the file lock waits instead): resolves when it may have stored a token (a notice, or the
    /// polling interval), to read the store again.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    Elsewhere(BoxFuture<'static, ()>),
}

/// A held lease.
pub(crate) trait Release: Send {
    fn release(self: Box<Self>) -> BoxFuture<'static, ()>;
}
