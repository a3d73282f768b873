//! A stored token past its expiry, under the rules of static stability: served only when a
//! fetch fails, and never without static stability.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use super::Backend;
use super::TokenStore;
use super::file::FileStore;
use super::record::{self, Fingerprint, Record};
use crate::token::{TokenErrorKind, Window};
use crate::{Secret, Token, TokenCredential};

const IDENTITY: &str = "client-id https://api.example.com/token";

/// A directory holding one record, expired a minute ago, for the credential of `IDENTITY`.
async fn expired_record(secret: &Secret) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let fingerprint = Fingerprint::new(&format!("custom\0{IDENTITY}"), secret);
    let record = Record {
        generation: 3,
        token: Secret::new("stored-token"),
        expires_at: Some(SystemTime::now() - Duration::from_secs(60)),
    };
    FileStore::new(dir.path().to_owned())
        .save(
            &fingerprint.hex(),
            record::encode(&record, &fingerprint),
            None,
        )
        .await
        .unwrap();
    dir
}

/// A credential whose source answers `answer`, counting its calls.
fn credential(
    dir: &std::path::Path,
    secret: &Secret,
    answer: Result<&'static str, &'static str>,
    static_stability: bool,
) -> (TokenCredential, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let tokens = TokenCredential::builder(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        async move {
            answer
                .map(|token| Token::new(token).expires_in(Duration::from_secs(3600)))
                .map_err(tower::BoxError::from)
        }
    })
    .any_origin()
    .static_stability(static_stability)
    .store(TokenStore::file(dir))
    .store_identity(IDENTITY, secret)
    .build()
    .unwrap();
    (tokens, calls)
}

#[tokio::test]
async fn an_expired_stored_token_is_refreshed_first_and_serves_only_when_the_fetch_fails() {
    let secret = Secret::new("client-secret");

    // The endpoint answers: the expired stored token is not used.
    let dir = expired_record(&secret).await;
    let (tokens, calls) = credential(dir.path(), &secret, Ok("fresh-token"), true);
    tokens.fetch().await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(tokens.status().window, Window::Fresh);

    // The endpoint fails: the stored token serves, as a cached one would (static stability).
    let dir = expired_record(&secret).await;
    let (tokens, calls) = credential(dir.path(), &secret, Err("endpoint down"), true);
    tokens.fetch().await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let status = tokens.status();
    assert_eq!(status.window, Window::Expired);
    assert!(status.last_error.is_some());
    assert!(
        status.fetch_not_before.is_some(),
        "the next refresh backs off"
    );

    // Without static stability, an expired token is never sent.
    let (tokens, _) = credential(dir.path(), &secret, Err("endpoint down"), false);
    let err = tokens.fetch().await.unwrap_err();
    assert_eq!(err.kind(), TokenErrorKind::Fetch);
    assert_eq!(tokens.status().window, Window::Empty);
}
