//! Connecting: replicas (and the admin tool) starting at once on a new database.

use super::*;

/// How many replicas start at once.
const REPLICAS: usize = 4;

/// Four replicas connecting to a new SQLite file at the same moment all connect and open: the
/// ones that meet the others' schema being created wait for it rather than fail (SQLite has no
/// lock a migration could take, and turning a new file to WAL takes one its busy timeout does
/// not wait for). Ten rounds, each on a new file.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_connecting_at_once_to_a_new_sqlite_file() {
    for round in 0..10 {
        let dir = tempfile::tempdir().unwrap();
        if let Err(error) = open_at_once(&sqlite_url(&dir)).await {
            panic!("round {round}: {error}");
        }
    }
}

/// The same on a new PostgreSQL database, where sqlx's advisory lock keeps the migrations
/// apart.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_connecting_at_once_to_a_new_postgres_database() {
    let Some(pg) =
        postgres::Postgres::start("replicas_connecting_at_once_to_a_new_postgres_database")
    else {
        return;
    };
    open_at_once(&pg.url()).await.unwrap();
}

/// Connects [`REPLICAS`] databases to `url` and opens a store on each, all let go at once.
async fn open_at_once(url: &str) -> Result<(), String> {
    let start = Arc::new(tokio::sync::Barrier::new(REPLICAS));
    let replicas: Vec<_> = (0..REPLICAS)
        .map(|_| {
            let (url, start) = (url.to_owned(), Arc::clone(&start));
            tokio::spawn(async move {
                start.wait().await;
                let database = KeyDatabase::connect(&url, format())
                    .await
                    .map_err(|error| format!("connect: {error:?}"))?;
                SqlKeyStore::open(database)
                    .await
                    .map_err(|error| format!("open: {error:?}"))
            })
        })
        .collect();
    for replica in replicas {
        replica.await.unwrap()?;
    }
    Ok(())
}

/// A database that cannot be opened is named in the error, without what may be a credential
/// (a password in the URL's userinfo or query).
#[tokio::test]
async fn a_failed_connection_names_the_database_but_no_password() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-directory").join("keys.db");
    let url = format!("sqlite://{}", missing.display());
    let err = KeyDatabase::connect(&url, format()).await.unwrap_err();
    assert!(matches!(err, SqlStoreError::Connect { .. }), "{err:?}");
    assert!(err.to_string().contains(&url), "{err}");

    // Nothing listens on port 1.
    let url = "postgres://app:hunter2@127.0.0.1:1/keys?password=hunter3";
    let err = KeyDatabase::connect(url, format()).await.unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(shown.contains("postgres://127.0.0.1:1/keys"), "{shown}");
    assert!(!shown.contains("hunter"), "{shown}");
}

/// A server's role needs no right to change the schema once it is up to date: with rights to
/// read and write the two tables and read the migrations' table only, it connects, opens a
/// store and follows a revocation. (The schema is migrated by a role that may.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_role_without_schema_rights_connects_to_a_migrated_database() {
    let Some(pg) = postgres::Postgres::start("a_server_role_without_schema_rights") else {
        return;
    };
    let owner = KeyDatabase::connect(&pg.url(), format()).await.unwrap();
    let issued = owner.create(NewKey::new("nia")).await.unwrap();
    let pool = sqlx::PgPool::connect(&pg.url()).await.unwrap();
    for grant in [
        "CREATE ROLE server LOGIN",
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
        "GRANT SELECT, INSERT, UPDATE ON api_keys, api_keys_revision TO server",
        "GRANT SELECT ON _sqlx_migrations TO server",
    ] {
        sqlx::query(grant).execute(&pool).await.unwrap();
    }
    let url = pg
        .url()
        .replace("postgres://postgres@", "postgres://server@");
    let database = KeyDatabase::connect(&url, format()).await.unwrap();
    let store = SqlKeyStore::open(database).await.unwrap();
    let served = serve(store.clone(), format(), Clock::new()).await;
    assert_eq!(call(&served, issued.key()).await.0, StatusCode::OK);
    owner.revoke(issued.info().id()).await.unwrap();
    store.refresh().await.unwrap();
    assert_eq!(
        call(&served, issued.key()).await.0,
        StatusCode::UNAUTHORIZED
    );
}
