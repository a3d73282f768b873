//! The file store's failures in one process: a torn or altered record, a record others could
//! have read or written, a directory that cannot be written, a sealed record under another key.
//! Each is a typed warning (logged, and in `TokenStatus::store_error`) and a fetch from the
//! loopback Akool stand-in (counted there); never a crash, never a token or secret in the logs.
//! Multi-process behaviour is in `tokens::store::fleet`.

use crate::support;

use std::path::{Path, PathBuf};

use tower_api_auth::TokenCredential;
use tower_api_auth::providers::akool;
use tower_api_auth::token::store::{StoreErrorKind, TokenStore};
use tower_api_auth_mock::{MockServer, Provider};

use support::{CapturedLogs, client};

const SECRET: &str = "client-secret-9f8e7d";

async fn akool_server() -> MockServer {
    let server = MockServer::start(Provider::Akool).await.unwrap();
    server.accept_key(SECRET);
    server
}

/// A credential as a freshly started process builds it.
fn credential(server: &MockServer, store: TokenStore) -> TokenCredential {
    akool::client_credentials("client-id", SECRET)
        .base_url(server.base_url())
        .token_builder(client())
        .store(store)
        .build()
        .unwrap()
}

/// Fetches one token (one getToken call) into a file store in `dir`.
async fn store_one_token(server: &MockServer, dir: &Path) {
    credential(server, TokenStore::file(dir))
        .fetch()
        .await
        .unwrap();
}

fn record_file(dir: &Path) -> PathBuf {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "token"))
        .collect();
    assert_eq!(files.len(), 1, "one record file: {files:?}");
    files.pop().unwrap()
}

/// What every failure test checks: the warning is typed and says nothing secret.
fn assert_warned(logs: &CapturedLogs, tokens: &TokenCredential, kind: StoreErrorKind) {
    let text = logs.text();
    assert!(
        text.contains(&format!("kind={kind:?}")),
        "a typed warning ({kind:?}) in:\n{text}"
    );
    assert!(text.contains("WARN"), "{text}");
    assert_eq!(
        tokens.status().store_error.map(|err| err.kind()),
        Some(kind)
    );
    assert!(
        !text.contains("akool-token"),
        "no token in the logs:\n{text}"
    );
    assert!(!text.contains(SECRET), "no secret in the logs:\n{text}");
}

#[tokio::test]
async fn a_restart_takes_the_stored_token_and_the_file_is_private() {
    let server = akool_server().await;
    let dir = tempfile::tempdir().unwrap();
    store_one_token(&server, dir.path()).await;
    assert_eq!(server.token_request_count(), 1);
    let restarted = credential(&server, TokenStore::file(dir.path()));
    restarted.fetch().await.unwrap();
    assert_eq!(server.token_request_count(), 1, "taken from the file");
    assert!(restarted.status().store_error.is_none());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&record_file(dir.path())), 0o600);
    }
    let text = std::fs::read_to_string(record_file(dir.path())).unwrap();
    assert!(!text.contains(SECRET), "the file never holds the secret");
}

#[tokio::test]
async fn a_torn_or_altered_record_is_a_corrupt_warning_and_a_fetch() {
    let server = akool_server().await;
    let dir = tempfile::tempdir().unwrap();
    store_one_token(&server, dir.path()).await;
    let file = record_file(dir.path());
    let whole = std::fs::read(&file).unwrap();
    let mut altered = whole.clone();
    let at = altered.len() - 5;
    altered[at] ^= 0x20;
    let damages = [
        whole[..whole.len() / 2].to_vec(), // torn
        altered,                           // a flipped bit
        Vec::new(),                        // empty
        vec![0xff; 300],                   // not text
    ];
    for (n, damaged) in damages.into_iter().enumerate() {
        std::fs::write(&file, damaged).unwrap();
        let logs = CapturedLogs::default();
        let _guard = logs.install();
        let tokens = credential(&server, TokenStore::file(dir.path()));
        tokens.fetch().await.unwrap();
        assert_eq!(server.token_request_count(), 2 + n, "damage {n}: fetched");
        assert_warned(&logs, &tokens, StoreErrorKind::Corrupt);
        // The fetch replaced the record: the next start takes it.
        store_one_token(&server, dir.path()).await;
        assert_eq!(server.token_request_count(), 2 + n);
    }
}

#[cfg(unix)]
#[tokio::test]
async fn a_record_others_could_read_or_write_is_not_used_and_is_replaced() {
    use std::os::unix::fs::PermissionsExt;

    let server = akool_server().await;
    let dir = tempfile::tempdir().unwrap();
    store_one_token(&server, dir.path()).await;
    let file = record_file(dir.path());
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();

    let logs = CapturedLogs::default();
    let _guard = logs.install();
    let tokens = credential(&server, TokenStore::file(dir.path()));
    tokens.fetch().await.unwrap();
    assert_eq!(server.token_request_count(), 2);
    assert_warned(&logs, &tokens, StoreErrorKind::Permissions);
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "replaced by a private file");
}

#[tokio::test]
async fn a_directory_that_cannot_be_written_is_one_warning_and_fetches_as_without_a_store() {
    let server = akool_server().await;
    let scratch = tempfile::tempdir().unwrap();
    // A regular file where a directory should be: nothing can be created under it, whoever
    // runs the test (root ignores a read-only mode, not this).
    let blocker = scratch.path().join("not-a-dir");
    std::fs::write(&blocker, b"").unwrap();
    let dir = blocker.join("tokens");

    let logs = CapturedLogs::default();
    let _guard = logs.install();
    let tokens = credential(&server, TokenStore::file(&dir));
    let first = tokens.fetch().await.unwrap();
    tokens.invalidate();
    let second = tokens.fetch().await.unwrap();
    assert_ne!(first, second);
    assert_eq!(
        server.token_request_count(),
        2,
        "each fetch reached the endpoint"
    );
    assert_warned(&logs, &tokens, StoreErrorKind::Unavailable);
    let warnings = logs.text().matches("the token store failed").count();
    assert_eq!(
        warnings,
        1,
        "logged once while it keeps failing:\n{}",
        logs.text()
    );
}

#[cfg(unix)]
#[tokio::test]
async fn a_read_only_directory_is_a_warning_and_a_fetch() {
    use std::os::unix::fs::PermissionsExt;

    let server = akool_server().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o500)).unwrap();
    if std::fs::write(dir.path().join("probe"), b"").is_ok() {
        // Root writes through a read-only mode: the test above covers an unwritable directory.
        eprintln!("SKIPPED: running as root, a read-only mode does not stop writes");
        return;
    }
    let logs = CapturedLogs::default();
    let _guard = logs.install();
    let tokens = credential(&server, TokenStore::file(dir.path()));
    tokens.fetch().await.unwrap();
    assert_eq!(server.token_request_count(), 1);
    assert_warned(&logs, &tokens, StoreErrorKind::Unavailable);
}

#[tokio::test]
async fn a_changed_secret_never_finds_the_old_token() {
    let server = akool_server().await;
    server.accept_key("rotated-secret");
    let dir = tempfile::tempdir().unwrap();
    store_one_token(&server, dir.path()).await;
    let rotated = akool::client_credentials("client-id", "rotated-secret")
        .base_url(server.base_url())
        .token_builder(client())
        .store(TokenStore::file(dir.path()))
        .build()
        .unwrap();
    rotated.fetch().await.unwrap();
    assert_eq!(
        server.token_request_count(),
        2,
        "the old token is not reused"
    );
    assert!(
        rotated.status().store_error.is_none(),
        "not an error: another key"
    );
}

#[tokio::test]
async fn a_source_of_your_own_needs_an_identity() {
    let err = TokenCredential::builder(|| async {
        Ok::<_, std::io::Error>(tower_api_auth::Token::new("t"))
    })
    .any_origin()
    .store(TokenStore::file(std::env::temp_dir()))
    .build()
    .unwrap_err();
    assert_eq!(err, tower_api_auth::CredentialError::StoreWithoutIdentity);
}

#[cfg(feature = "store-encryption")]
mod sealed {
    use super::*;

    #[tokio::test]
    async fn a_sealed_record_hides_the_token_and_opens_only_under_its_key() {
        let server = akool_server().await;
        let dir = tempfile::tempdir().unwrap();
        let sealed = || TokenStore::file(dir.path()).sealed([42; 32]);
        credential(&server, sealed()).fetch().await.unwrap();
        let bytes = std::fs::read(record_file(dir.path())).unwrap();
        assert!(
            !bytes.windows(11).any(|w| w == b"akool-token"),
            "the token is not readable in the file"
        );
        credential(&server, sealed()).fetch().await.unwrap();
        assert_eq!(server.token_request_count(), 1, "opened under the same key");

        let logs = CapturedLogs::default();
        let _guard = logs.install();
        let other_key = credential(&server, TokenStore::file(dir.path()).sealed([7; 32]));
        other_key.fetch().await.unwrap();
        assert_eq!(server.token_request_count(), 2);
        assert_warned(&logs, &other_key, StoreErrorKind::Sealed);
    }

    #[tokio::test]
    async fn a_sealed_store_refuses_a_plain_record() {
        let server = akool_server().await;
        let dir = tempfile::tempdir().unwrap();
        store_one_token(&server, dir.path()).await;
        let logs = CapturedLogs::default();
        let _guard = logs.install();
        let tokens = credential(&server, TokenStore::file(dir.path()).sealed([1; 32]));
        tokens.fetch().await.unwrap();
        assert_eq!(server.token_request_count(), 2);
        assert_warned(&logs, &tokens, StoreErrorKind::Sealed);
    }
}

#[cfg(feature = "redis")]
mod redis_store {
    use std::time::{Duration, SystemTime};

    use tower_api_auth_mock::TokenFault;

    use super::support::redis::RedisServer;
    use super::*;

    /// The raw records under the default namespace, read with the `redis` crate.
    async fn raw_records(url: &str) -> Vec<(Vec<u8>, i64)> {
        let client = redis::Client::open(url).unwrap();
        let mut connection = client.get_multiplexed_async_connection().await.unwrap();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg("tower-api-auth:token:*")
            .query_async(&mut connection)
            .await
            .unwrap();
        let mut records = Vec::new();
        for key in keys {
            let value: Vec<u8> = redis::cmd("GET")
                .arg(&key)
                .query_async(&mut connection)
                .await
                .unwrap();
            let ttl: i64 = redis::cmd("PTTL")
                .arg(&key)
                .query_async(&mut connection)
                .await
                .unwrap();
            records.push((value, ttl));
        }
        records
    }

    #[tokio::test]
    async fn the_record_lives_as_long_as_the_token_and_sealed_it_hides_the_token() {
        let Some(redis) = RedisServer::start("the_record_lives_as_long_as_the_token") else {
            return;
        };
        let server = akool_server().await;
        let in_an_hour = SystemTime::now() + Duration::from_secs(3600);
        let exp = in_an_hour
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        server.set_token_fault(Some(TokenFault::ExpiresAt(exp)));

        let store = || TokenStore::redis(&redis.url()).unwrap();
        credential(&server, store()).fetch().await.unwrap();
        let records = raw_records(&redis.url()).await;
        assert_eq!(records.len(), 1);
        let (plain, ttl) = &records[0];
        assert!(
            (3_590_000..=3_600_000).contains(ttl),
            "time to live = the token's lifetime: {ttl} ms"
        );
        // The stand-in's tokens are JWTs here (for their `exp`): `{"alg":"none",...` in base64.
        const JWT_HEAD: &[u8] = b"eyJhbGciOiJub25lIiwi";
        assert!(
            plain.windows(JWT_HEAD.len()).any(|w| w == JWT_HEAD),
            "unsealed, a reader of Redis gets the token (as documented)"
        );
        assert!(!plain.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()));
        credential(&server, store()).fetch().await.unwrap();
        assert_eq!(server.token_request_count(), 1, "a restart takes it");

        // Sealed: the plain record does not open; the new one hides the token.
        let logs = CapturedLogs::default();
        let _guard = logs.install();
        let sealed = credential(&server, store().sealed([9; 32]));
        sealed.fetch().await.unwrap();
        assert_eq!(server.token_request_count(), 2);
        assert_warned(&logs, &sealed, StoreErrorKind::Sealed);
        let records = raw_records(&redis.url()).await;
        assert!(!records[0].0.windows(JWT_HEAD.len()).any(|w| w == JWT_HEAD));
    }

    #[test]
    fn a_redis_url_never_shows_its_password() {
        let store = TokenStore::redis("redis://:hunter2-pw@127.0.0.1:6379/").unwrap();
        assert!(!format!("{store:?}").contains("hunter2"));
        let err = TokenStore::redis("redis://:hunter2-pw@[bad").unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::InvalidUrl);
        assert!(!format!("{err} {err:?}").contains("hunter2"));
    }
}
