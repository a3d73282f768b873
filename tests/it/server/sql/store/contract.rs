//! The key store's contract, run alike against `MemoryKeyStore`, SQLite and PostgreSQL (snapshot
//! and lookup-through), over real HTTP: insert, lookup, expiry, revoke, roll with overlap, several
//! keys per principal.

use super::*;

/// The operations of the contract, on each store.
enum Keys {
    Memory {
        store: MemoryKeyStore,
        format: KeyFormat,
        issued: Mutex<HashMap<String, (Secret, KeyRecord)>>,
    },
    Sql(SqlKeyStore),
}

impl Keys {
    fn memory() -> Self {
        Self::Memory {
            store: MemoryKeyStore::new(),
            format: format(),
            issued: Mutex::default(),
        }
    }

    /// A `SqlKeyStore` on `url`: a snapshot, or lookup-through with caches of `capacity`.
    async fn sql(url: &str, lookup_through: Option<usize>) -> Self {
        let database = KeyDatabase::connect(url, format()).await.unwrap();
        let mut builder = SqlKeyStore::builder(database);
        if let Some(capacity) = lookup_through {
            builder = builder.lookup_through(capacity);
        }
        Self::Sql(builder.open().await.unwrap())
    }

    fn format(&self) -> KeyFormat {
        match self {
            Self::Memory { format, .. } => format.clone(),
            Self::Sql(store) => store.database().format().clone(),
        }
    }

    /// A new key of `principal`; returns its id and the key.
    async fn create(
        &self,
        principal: &str,
        scopes: &[&str],
        expires: Option<SystemTime>,
    ) -> (String, Secret) {
        match self {
            Self::Memory {
                store,
                format,
                issued,
            } => {
                let key = format.issue();
                let mut record =
                    KeyRecord::new(Principal::new(principal).with_scopes(scopes.iter().copied()));
                if let Some(at) = expires {
                    record = record.with_expiry(at);
                }
                store.insert(key.clone(), record.clone());
                let id = key.expose()[..20].to_owned();
                issued
                    .lock()
                    .unwrap()
                    .insert(id.clone(), (key.clone(), record));
                (id, key)
            }
            Self::Sql(store) => {
                let mut new = NewKey::new(principal).scopes(scopes.iter().copied());
                if let Some(at) = expires {
                    new = new.expires_at(at);
                }
                let issued = store.database().create(new).await.unwrap();
                store.refresh().await.unwrap();
                (issued.info().id().to_owned(), issued.key().clone())
            }
        }
    }

    async fn revoke(&self, id: &str) {
        match self {
            Self::Memory { store, issued, .. } => {
                let (key, _) = issued.lock().unwrap()[id].clone();
                assert!(store.revoke(key));
            }
            Self::Sql(store) => {
                assert!(store.database().revoke(id).await.unwrap());
                assert!(
                    !store.database().revoke(id).await.unwrap(),
                    "already revoked"
                );
                store.refresh().await.unwrap();
            }
        }
    }

    /// Rolls key `id`: a new key, the old one expiring `overlap` from `now`.
    async fn roll(&self, id: &str, overlap: Duration, now: SystemTime) -> (String, Secret) {
        match self {
            Self::Memory { store, issued, .. } => {
                let (old_key, old) = issued.lock().unwrap()[id].clone();
                let principal = old.principal();
                let scopes: Vec<&str> = principal.scopes().collect();
                let (new_id, new_key) = self.create(principal.id(), &scopes, old.expiry()).await;
                store.insert(old_key, old.clone().with_expiry(now + overlap));
                (new_id, new_key)
            }
            Self::Sql(store) => {
                let issued = store.database().roll(id, overlap).await.unwrap();
                store.refresh().await.unwrap();
                (issued.info().id().to_owned(), issued.key().clone())
            }
        }
    }
}

async fn contract(keys: Keys) {
    let clock = Clock::new();
    let served = match &keys {
        Keys::Memory { store, .. } => serve(store.clone(), keys.format(), clock.clone()).await,
        Keys::Sql(store) => serve(store.clone(), keys.format(), clock.clone()).await,
    };
    let ok = |principal: &str| (StatusCode::OK, principal.to_owned());

    // Insert and lookup; a key never issued is refused.
    let (alice_1, alice_key_1) = keys.create("alice", &["jobs:read"], None).await;
    assert_eq!(call(&served, &alice_key_1).await, ok("alice"));
    let stranger = keys.format().issue();
    assert_eq!(call(&served, &stranger).await.0, StatusCode::UNAUTHORIZED);

    // Several keys per principal, each its own.
    let (_, alice_key_2) = keys.create("alice", &["jobs:read"], None).await;
    let (_, bob_key) = keys.create("bob", &[], None).await;
    assert_eq!(call(&served, &alice_key_2).await, ok("alice"));
    assert_eq!(call(&served, &bob_key).await, ok("bob"));

    // Revoking one key of alice's leaves her other key valid.
    keys.revoke(&alice_1).await;
    assert_eq!(
        call(&served, &alice_key_1).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(call(&served, &alice_key_2).await, ok("alice"));

    // Expiry: valid before, refused after.
    let (_, carol_key) = keys.create("carol", &[], Some(clock.now() + HOUR)).await;
    assert_eq!(call(&served, &carol_key).await, ok("carol"));

    // Roll with an overlap of an hour: both keys valid, then the old one expires.
    let (dave, dave_old) = keys.create("dave", &["jobs:read"], None).await;
    let (_, dave_new) = keys.roll(&dave, HOUR, SystemTime::now()).await;
    assert_ne!(dave_old.expose(), dave_new.expose());
    assert_eq!(call(&served, &dave_old).await, ok("dave"));
    assert_eq!(call(&served, &dave_new).await, ok("dave"));

    clock.advance(2 * HOUR);
    assert_eq!(call(&served, &carol_key).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(call(&served, &dave_old).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(call(&served, &dave_new).await, ok("dave"));
    assert_eq!(call(&served, &alice_key_2).await, ok("alice"));

    // A malformed key is refused as such.
    let mut typo = alice_key_2.expose().to_owned();
    typo.replace_range(12..13, if &typo[12..13] == "x" { "y" } else { "x" });
    let (status, body) = call(&served, &Secret::new(typo)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body.contains("malformed_credential"), "{body}");
}

#[tokio::test]
async fn contract_memory() {
    contract(Keys::memory()).await;
}

#[tokio::test]
async fn contract_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    contract(Keys::sql(&sqlite_url(&dir), None).await).await;
}

/// The contract with no snapshot: caches of 4 keys and 4 unknown digests, so that keys are
/// dropped from the cache and read again along the way.
#[tokio::test]
async fn contract_sqlite_lookup_through() {
    let dir = tempfile::tempdir().unwrap();
    contract(Keys::sql(&sqlite_url(&dir), Some(4)).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_postgres() {
    let Some(pg) = postgres::Postgres::start("contract_postgres") else {
        return;
    };
    contract(Keys::sql(&pg.url(), None).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_postgres_lookup_through() {
    let Some(pg) = postgres::Postgres::start("contract_postgres_lookup_through") else {
        return;
    };
    contract(Keys::sql(&pg.url(), Some(4)).await).await;
}
