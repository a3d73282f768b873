//! Issuing, rolling and deleting keys: the key shown once, new keys checked, an expired or
//! rolled key never rolled, a valid key's row never deleted.

use super::*;

/// The key is shown once, by `expose`: never by `Debug`, in a listing, or in the logs.
#[tokio::test]
async fn issued_keys_never_show_the_key() {
    let logs = support::CapturedLogs::default();
    let _guard = logs.install();
    let (_dir, database) = sqlite_database().await;
    let issued = database.create(NewKey::new("ivan")).await.unwrap();
    let key = issued.key().expose().to_owned();
    let random = &key["acme_test_".len()..];
    let store = SqlKeyStore::open(database.clone()).await.unwrap();
    let served = serve(store.clone(), format(), Clock::new()).await;
    assert_eq!(call(&served, issued.key()).await.0, StatusCode::OK);
    database.revoke(issued.info().id()).await.unwrap();
    store.refresh().await.unwrap();
    assert_eq!(
        call(&served, issued.key()).await.0,
        StatusCode::UNAUTHORIZED
    );
    let shown = format!(
        "{issued:?} {:?} {store:?} {database:?} {}",
        database.list().await.unwrap(),
        logs.text()
    );
    assert!(shown.contains("ivan"), "{shown}");
    assert!(!shown.contains(&random[4..]), "{shown}");
}

/// Rolling changes a key's secret, not its life: an expired key cannot be rolled into a key
/// that is dead on arrival.
#[tokio::test]
async fn an_expired_key_cannot_be_rolled() {
    let (dir, database) = sqlite_database().await;
    let issued = NewKey::new("judy").expires_at(SystemTime::now() + HOUR);
    let issued = database.create(issued).await.unwrap();
    // Its hour gone by, as the database sees it.
    let pool = sqlx::SqlitePool::connect(&sqlite_url(&dir)).await.unwrap();
    let past = SystemTime::now() - Duration::from_secs(60);
    sqlx::query("UPDATE api_keys SET expires_at = $1 WHERE id = $2")
        .bind(past.duration_since(UNIX_EPOCH).unwrap().as_millis() as i64)
        .bind(issued.info().id())
        .execute(&pool)
        .await
        .unwrap();
    let err = database.roll(issued.info().id(), HOUR).await.unwrap_err();
    assert!(
        matches!(err, SqlStoreError::Expired(ref id) if id == issued.info().id()),
        "{err:?}"
    );
    assert_eq!(database.list().await.unwrap().len(), 1, "no key issued");
}

/// A key rolled already is not rolled again: its expiry is now the overlap's end, which a
/// second successor would inherit (a key meant to live forever, dead in an hour). The error
/// names the successor, which rolls as any key does and keeps the original expiry.
#[tokio::test]
async fn a_key_rolled_already_names_its_successor() {
    let (_dir, database) = sqlite_database().await;
    let old = database.create(NewKey::new("kim")).await.unwrap();
    let first = database.roll(old.info().id(), HOUR).await.unwrap();
    assert_eq!(first.info().expires_at(), None, "the original expiry: none");
    let err = database.roll(old.info().id(), HOUR).await.unwrap_err();
    match &err {
        SqlStoreError::Rolled { key, successor } => {
            assert_eq!(key, old.info().id());
            assert_eq!(successor, first.info().id());
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains(first.info().id()), "{err}");
    assert_eq!(database.list().await.unwrap().len(), 2, "no third key");
    let second = database.roll(first.info().id(), HOUR).await.unwrap();
    assert_eq!(
        second.info().expires_at(),
        None,
        "still the original expiry"
    );
}

/// A new key needs a principal, visible scopes, and an expiry still ahead.
#[tokio::test]
async fn new_keys_are_checked_before_they_are_issued() {
    let (_dir, database) = sqlite_database().await;
    let past = SystemTime::now() - Duration::from_secs(1);
    let cases = [
        ("empty principal", NewKey::new(""), "Principal"),
        ("principal with a space", NewKey::new("al ice"), "Principal"),
        ("empty scope", NewKey::new("al").scopes([""]), "Scope"),
        (
            "past expiry",
            NewKey::new("al").expires_at(past),
            "PastExpiry",
        ),
    ];
    for (name, key, expected) in cases {
        let err = database.create(key).await.unwrap_err();
        assert!(format!("{err:?}").starts_with(expected), "{name}: {err:?}");
    }
    assert!(database.list().await.unwrap().is_empty(), "nothing issued");
}

/// A valid key's row cannot be deleted by hand (running servers would go on admitting it: a
/// deletion takes no revision); once the key is revoked, it can.
async fn rows_are_deleted_only_once_revoked(url: &str) {
    let database = KeyDatabase::connect(url, format()).await.unwrap();
    let issued = database.create(NewKey::new("leo")).await.unwrap();
    let id = issued.info().id();
    let delete = || async {
        let sql = "DELETE FROM api_keys WHERE id = $1";
        by_hand!(url, pool => sqlx::query(sql).bind(id).execute(&pool).await.map(drop))
    };
    let refused = delete().await.unwrap_err();
    let message = refused.to_string();
    assert!(
        message.contains("revoke an API key before deleting it"),
        "{message}"
    );
    assert_eq!(database.list().await.unwrap().len(), 1);
    database.revoke(id).await.unwrap();
    delete().await.unwrap();
    assert!(database.list().await.unwrap().is_empty());
}

#[tokio::test]
async fn rows_are_deleted_only_once_revoked_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    rows_are_deleted_only_once_revoked(&sqlite_url(&dir)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_are_deleted_only_once_revoked_postgres() {
    let Some(pg) = postgres::Postgres::start("rows_are_deleted_only_once_revoked_postgres") else {
        return;
    };
    rows_are_deleted_only_once_revoked(&pg.url()).await;
    // TRUNCATE fires no row trigger: it is refused outright.
    let database = KeyDatabase::connect(&pg.url(), format()).await.unwrap();
    database.create(NewKey::new("mia")).await.unwrap();
    let truncate = "TRUNCATE api_keys";
    let refused = by_hand!(&pg.url(), pool => sqlx::query(truncate).execute(&pool).await.map(drop))
        .unwrap_err();
    assert!(
        refused.to_string().contains("instead of truncating"),
        "{refused}"
    );
    assert_eq!(database.list().await.unwrap().len(), 1);
}
