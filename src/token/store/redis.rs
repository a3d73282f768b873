//! The Redis store: `<ns>:token:<fingerprint>` holds the record with a time to live of the
//! token's remaining lifetime; `<ns>:lease:<fingerprint>` is the fetch lease (`SET NX PX`,
//! released by a compare-and-delete script, so a lease that outlived its time to live and was
//! taken by another process is not deleted); `<ns>:stored:<fingerprint>` carries a notice each
//! time a record is written, which waiting processes subscribe to before they try the lease.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use redis::aio::MultiplexedConnection;

use super::{Backend, Lease, Release, StoreError, StoreErrorKind};

/// A waiting process reads the store again at least this often, should a notice be lost.
const POLL: Duration = Duration::from_millis(250);

pub(crate) struct RedisStore {
    shared: Arc<Shared>,
    namespace: Arc<str>,
}

struct Shared {
    client: redis::Client,
    /// One multiplexed connection, opened on first use and dropped on a failure, so that the
    /// next operation connects again (to a Redis that came back).
    connection: Mutex<Option<MultiplexedConnection>>,
}

fn unavailable(err: &redis::RedisError) -> StoreError {
    StoreError::new(StoreErrorKind::Unavailable, err.to_string())
}

impl Shared {
    async fn connection(&self) -> Result<MultiplexedConnection, StoreError> {
        let cached = self
            .connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(connection) = cached {
            return Ok(connection);
        }
        // No timeouts of the `redis` crate's own (500 ms, 1 s by default): the store's wait
        // bound governs every operation, so that a slow Redis is waited for as long as the
        // user said, and no longer.
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(None)
            .set_response_timeout(None);
        let connection = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|err| unavailable(&err))?;
        *self
            .connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(connection.clone());
        Ok(connection)
    }

    /// Runs `command`, dropping the connection when it fails, or when the wait bound gives up
    /// on it (this future dropped before its answer): a connection that stopped answering is
    /// not used again.
    async fn query<T: redis::FromRedisValue>(&self, command: &redis::Cmd) -> Result<T, StoreError> {
        let mut connection = self.connection().await?;
        let unanswered = Forget { shared: self };
        let result = command.query_async(&mut connection).await;
        let answered = result.as_ref().map_or_else(
            |err| matches!(err.kind(), redis::ErrorKind::Server(_)),
            |_| true,
        );
        if answered {
            // Redis answered (an error of its own included): the connection is good.
            std::mem::forget(unanswered);
        }
        result.map_err(|err| unavailable(&err))
    }

    fn forget_connection(&self) {
        self.connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }
}

/// Forgets the cached connection when dropped: see [`Shared::query`].
struct Forget<'a> {
    shared: &'a Shared,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.shared.forget_connection();
    }
}

impl RedisStore {
    pub(crate) fn new(url: &str, namespace: &str) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(|_| {
            // The URL may carry a password: not quoted.
            StoreError::new(StoreErrorKind::InvalidUrl, "not a redis:// URL").backend("redis")
        })?;
        Ok(Self {
            shared: Arc::new(Shared {
                client,
                connection: Mutex::new(None),
            }),
            namespace: namespace.into(),
        })
    }

    pub(crate) fn with_namespace(&self, namespace: &str) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
            namespace: namespace.into(),
        }
    }

    fn name(&self, what: &str, key: &str) -> String {
        format!("{}:{what}:{key}", self.namespace)
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// A value no other lease holder has: the process, the time, a counter.
fn lease_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!(
        "{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

const RELEASE: &str = r"if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";

struct RedisLease {
    shared: Arc<Shared>,
    key: String,
    id: String,
}

impl Release for RedisLease {
    fn release(self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let Ok(mut connection) = self.shared.connection().await else {
                // Redis is gone: the lease ends with its time to live.
                return;
            };
            let released: Result<i64, _> = redis::Script::new(RELEASE)
                .key(&self.key)
                .arg(&self.id)
                .invoke_async(&mut connection)
                .await;
            if let Err(err) = released {
                tracing::debug!(error = %err, "releasing the token store lease failed; it expires");
            }
        })
    }
}

impl Backend for RedisStore {
    fn load(&self, key: &str) -> BoxFuture<'static, Result<Option<Vec<u8>>, StoreError>> {
        let shared = Arc::clone(&self.shared);
        let mut command = redis::cmd("GET");
        command.arg(self.name("token", key));
        Box::pin(async move { shared.query::<Option<Vec<u8>>>(&command).await })
    }

    fn save(
        &self,
        key: &str,
        record: Vec<u8>,
        ttl: Option<Duration>,
    ) -> BoxFuture<'static, Result<(), StoreError>> {
        let shared = Arc::clone(&self.shared);
        let mut set = redis::cmd("SET");
        set.arg(self.name("token", key)).arg(record);
        if let Some(ttl) = ttl {
            set.arg("PX").arg(millis(ttl));
        }
        let mut publish = redis::cmd("PUBLISH");
        publish.arg(self.name("stored", key)).arg("stored");
        Box::pin(async move {
            shared.query::<()>(&set).await?;
            shared.query::<i64>(&publish).await?;
            Ok(())
        })
    }

    fn lease(&self, key: &str, ttl: Duration) -> BoxFuture<'static, Result<Lease, StoreError>> {
        let shared = Arc::clone(&self.shared);
        let channel = self.name("stored", key);
        let lease_key = self.name("lease", key);
        Box::pin(async move {
            // Subscribed before trying the lease: a notice sent after a failed try is heard.
            let mut pubsub = shared
                .client
                .get_async_pubsub()
                .await
                .map_err(|err| unavailable(&err))?;
            pubsub
                .subscribe(&channel)
                .await
                .map_err(|err| unavailable(&err))?;
            let id = lease_id();
            let mut set = redis::cmd("SET");
            set.arg(&lease_key)
                .arg(&id)
                .arg("NX")
                .arg("PX")
                .arg(millis(ttl));
            let taken: Option<String> = shared.query(&set).await?;
            if taken.is_some() {
                return Ok(Lease::Held(Box::new(RedisLease {
                    shared,
                    key: lease_key,
                    id,
                })));
            }
            let mut notices = pubsub.into_on_message();
            Ok(Lease::Elsewhere(Box::pin(async move {
                let notice = notices.next();
                let poll = tokio::time::sleep(POLL);
                futures::pin_mut!(poll);
                let _ = futures::future::select(notice, poll).await;
            })))
        })
    }

    fn describe(&self) -> &'static str {
        "redis"
    }

    fn as_redis(&self) -> Option<&RedisStore> {
        Some(self)
    }
}
