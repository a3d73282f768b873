//! The server side's keys in a database: SQLite (a file, bundled: the embedded default) or
//! PostgreSQL (for fleets of replicas), kept in memory so the database is never on the request
//! path.
//!
//! ```
//! use http::{Request, Response, StatusCode};
//! use tower::{Service, ServiceBuilder, ServiceExt};
//! use tower_api_auth::{Placement, ValidateCredentialLayer};
//! use tower_api_auth::server::sql::{KeyDatabase, NewKey, SqlKeyStore};
//! use tower_api_auth::server::KeyFormat;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! # let dir = std::env::temp_dir().join(format!("tower-api-auth-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir)?;
//! # let url = format!("sqlite://{}", dir.join("keys.db").display());
//! // `sqlite://keys.db`, or `postgres://...` for a fleet.
//! let database = KeyDatabase::connect(&url, KeyFormat::new("acme_live")?).await?;
//! let issued = database.create(NewKey::new("alice").scopes(["jobs:read"])).await?;
//!
//! let store = SqlKeyStore::open(database.clone()).await?;
//! let mut app = ServiceBuilder::new()
//!     .layer(
//!         ValidateCredentialLayer::new(Placement::bearer(), store.clone())
//!             .key_format(database.format().clone()),
//!     )
//!     .service_fn(|_: Request<()>| async { Ok::<_, std::convert::Infallible>(Response::new(())) });
//!
//! let bearer = format!("Bearer {}", issued.key().expose());
//! let request = Request::get("/").header("authorization", &bearer).body(())?;
//! assert_eq!(app.ready().await?.call(request).await?.status(), StatusCode::OK);
//!
//! database.revoke(issued.info().id()).await?;
//! store.refresh().await?; // or wait: PostgreSQL notifies at once, SQLite is polled every second
//! let request = Request::get("/").header("authorization", &bearer).body(())?;
//! assert_eq!(app.ready().await?.call(request).await?.status(), StatusCode::UNAUTHORIZED);
//! # database.close().await;
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok(())
//! # }
//! ```
//!
//! # The pieces
//!
//! - [`KeyDatabase`] connects (`sqlite:` or `postgres:` URL, features `sqlite` and `postgres`),
//!   brings the schema up to date with the migrations shipped in the crate, and manages keys:
//!   [`create`](KeyDatabase::create), [`list`](KeyDatabase::list),
//!   [`revoke`](KeyDatabase::revoke), [`roll`](KeyDatabase::roll) with an overlap. Keys are
//!   issued in a [`KeyFormat`](crate::server::KeyFormat) and stored as SHA-256 digests, never
//!   in plaintext.
//! - [`SqlKeyStore`] is the [`KeyStore`](crate::server::KeyStore): an in-process snapshot,
//!   loaded at start-up, kept current by PostgreSQL `LISTEN/NOTIFY` or by polling SQLite, with a
//!   revision on every change so a late event can never re-admit a revoked key. For key sets
//!   too large to hold, [`lookup_through`](SqlKeyStoreBuilder::lookup_through) keeps bounded
//!   caches instead and asks the database on a miss, under the same events and guard.
//! - [`OutagePolicy`] says what it answers while the database is down: 503 with `Retry-After`
//!   as soon as a sync fails, or the last snapshot for up to a maximum age (five minutes by
//!   default). A sync fails within 3 s of the database going away, whether it refuses
//!   connections or stops answering (each of the store's queries is bounded by 3 s, connection
//!   included); until then the snapshot serves.
//!
//! # The table
//!
//! `api_keys`: `id` (public), `start` (the key's first characters, for listings), `digest`
//! (SHA-256, unique), `principal`, `organization`, `scopes` (JSON array), `metadata` (JSON
//! object), `created_at`, `expires_at`, `revoked_at`, `last_used_at` (Unix milliseconds) and
//! `revision`. Every change but `last_used_at` takes the next value of the one-row
//! `api_keys_revision` counter (a trigger does it, so hand-written SQL is followed too; on
//! PostgreSQL the counter's row lock makes changes commit in revision order). Hand-written SQL
//! is followed like any change, an `UPDATE` that clears `revoked_at` too (it admits the key
//! again). A bulk import that turns the trigger off must set the counter to at least the
//! highest revision it wrote.
//!
//! A row is deleted only once its key is revoked (a trigger refuses the rest, and PostgreSQL's
//! `TRUNCATE`): a deletion takes no revision, so running servers would not see it, and a key
//! deleted while valid would stay admitted until they restart. A database whose history goes
//! back under running servers (restored from a backup, failed over to a standby that lagged)
//! is noticed at the next sync by its counter being below the revision applied (unless more
//! changes than were lost land before that sync: restart the servers after a restore to be
//! sure): the store logs it and reads every key again. A SQLite file deleted (or replaced) under running
//! servers is not noticed: their open connections keep the old file, so they serve it as it
//! was. `KeyDatabase::connect` creates a missing SQLite file, but not its directory.

mod admin;
mod cache;
mod database;
mod error;
mod future;
mod outage;
mod snapshot;
mod store;
mod usage;

pub use self::admin::{IssuedKey, KeyInfo, NewKey};
pub use self::cache::CacheStats;
pub use self::database::KeyDatabase;
pub use self::error::SqlStoreError;
pub use self::future::LookupFuture;
pub use self::outage::OutagePolicy;
pub use self::store::{SqlKeyStore, SqlKeyStoreBuilder};
