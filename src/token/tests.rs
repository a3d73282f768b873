//! The cache's behaviour over time, on a paused clock where time matters.

use std::collections::VecDeque;

use tokio::sync::mpsc;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::credential::Acquire;
use crate::token::{TokenCredentialBuilder, TokenErrorKind};
use crate::{CredentialError, Token, TokenCredential};

/// A source that answers from a script and reports each fetch on a channel.
fn scripted(
    answers: impl IntoIterator<Item = Result<Token, &'static str>>,
) -> (TokenCredentialBuilder, mpsc::UnboundedReceiver<u64>) {
    let answers = Arc::new(Mutex::new(answers.into_iter().collect::<VecDeque<_>>()));
    let (fetched, fetches) = mpsc::unbounded_channel();
    let count = Arc::new(AtomicU64::new(0));
    let source = move || {
        let n = count.fetch_add(1, Ordering::SeqCst) + 1;
        let _ = fetched.send(n);
        let answer = answers
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Err("script ended"));
        async move { answer.map_err(BoxError::from) }
    };
    let builder = TokenCredential::builder(source)
        .any_origin()
        .refresh_jitter(Duration::ZERO)
        .backoff(Duration::from_secs(1), Duration::from_secs(4));
    (builder, fetches)
}

type BoxError = tower::BoxError;

/// The generation a request would use right now without waiting, if any.
fn generation(acquire: Acquire) -> Option<u64> {
    match acquire {
        Acquire::Ready(current) => Some(current.generation),
        _ => None,
    }
}

#[tokio::test]
async fn a_rejection_refetches_once_per_generation() {
    let (builder, _fetches) = scripted((1..=3).map(|n| Ok(Token::new(format!("t{n}")))));
    let tokens = builder.build().unwrap();
    assert_eq!(tokens.fetch().await.unwrap(), 1);

    // A thousand requests rejected with generation 1: one refetch; all get generation 2.
    let rejections = (0..1000).map(|_| tokens.rejected(1));
    for generation in futures::future::join_all(rejections).await {
        assert_eq!(generation.unwrap(), 2);
    }
    assert_eq!(tokens.fetch_count(), 2);
    // A late rejection of generation 1 uses generation 2 without fetching.
    assert_eq!(tokens.rejected(1).await.unwrap(), 2);
    assert_eq!(tokens.fetch_count(), 2);
}

#[tokio::test(start_paused = true)]
async fn rejections_of_a_token_fetched_after_a_rejection_are_rate_limited() {
    let (builder, _fetches) = scripted((1..=4).map(|n| Ok(Token::new(format!("t{n}")))));
    let tokens = builder
        .rejection_refetch_interval(Duration::from_secs(5))
        .build()
        .unwrap();
    assert_eq!(tokens.fetch().await.unwrap(), 1);
    // The first rejection of a token obtained normally always refetches.
    assert_eq!(tokens.rejected(1).await.unwrap(), 2);
    // Generation 2 was fetched because of a rejection: its rejection within 5 s is refused,
    // and the token stays (no lazy refetch storm behind the limiter's back).
    let refused = tokens.rejected(2).await.unwrap_err();
    assert_eq!(refused.kind(), TokenErrorKind::Rejected);
    assert_eq!(tokens.generation(), Some(2));
    assert_eq!(tokens.fetch_count(), 2);
    // After the interval, one more refetch is allowed.
    tokio::time::advance(Duration::from_secs(5)).await;
    assert_eq!(tokens.rejected(2).await.unwrap(), 3);
    assert_eq!(tokens.fetch_count(), 3);
}

#[tokio::test(start_paused = true)]
async fn failed_fetches_back_off_and_are_never_cached() {
    let (builder, mut fetches) = scripted([Err("down"), Err("down"), Ok(Token::new("t"))]);
    let tokens = builder.build().unwrap();
    let started = Instant::now();
    assert_eq!(
        tokens.fetch().await.unwrap_err().kind(),
        TokenErrorKind::Fetch
    );
    assert_eq!(
        tokens.fetch().await.unwrap_err().kind(),
        TokenErrorKind::Fetch
    );
    assert_eq!(tokens.fetch().await.unwrap(), 1);
    // Backoff: the second fetch waited 1 s, the third 2 s more.
    for _ in 0..3 {
        fetches.recv().await.unwrap();
    }
    assert_eq!(started.elapsed(), Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn the_token_is_refreshed_ahead_of_expiry_while_requests_keep_using_it() {
    let lifetime = Duration::from_secs(100);
    let (builder, mut fetches) =
        scripted((1..=2).map(|n| Ok(Token::new(format!("t{n}")).expires_in(lifetime))));
    let tokens = builder
        .advisory_window(Duration::from_secs(10))
        .mandatory_window(Duration::from_secs(1))
        .build()
        .unwrap();
    let started = Instant::now();
    assert_eq!(tokens.fetch().await.unwrap(), 1);
    assert_eq!(fetches.recv().await, Some(1));

    // Time runs (paused, it jumps to the next timer) until the background refresh fetches.
    assert_eq!(fetches.recv().await, Some(2));
    assert_eq!(started.elapsed(), Duration::from_secs(90));
    // The refresh ran in the background: a request right now never waits.
    let generation = generation(tokens.acquire());
    assert!(matches!(generation, Some(1 | 2)), "{generation:?}");
    tokio::task::yield_now().await;
    assert_eq!(tokens.generation(), Some(2));
}

#[tokio::test(start_paused = true)]
async fn a_failed_refresh_keeps_the_valid_token_and_retries_until_expiry() {
    let lifetime = Duration::from_secs(100);
    let (builder, mut fetches) = scripted([
        Ok(Token::new("t1").expires_in(lifetime)),
        Err("down"),
        Err("down"),
        Ok(Token::new("t2").expires_in(lifetime)),
    ]);
    let tokens = builder
        .advisory_window(Duration::from_secs(10))
        .mandatory_window(Duration::from_secs(1))
        .stale_backoff(Duration::from_secs(2), Duration::from_secs(2))
        .build()
        .unwrap();
    let started = Instant::now();
    tokens.fetch().await.unwrap();
    fetches.recv().await.unwrap();

    assert_eq!(fetches.recv().await, Some(2)); // refresh at 90 s fails
    assert_eq!(
        generation(tokens.acquire()),
        Some(1),
        "still valid, still served"
    );
    assert_eq!(fetches.recv().await, Some(3)); // retried after the 2 s backoff, fails
    assert_eq!(started.elapsed(), Duration::from_secs(92));
    assert_eq!(fetches.recv().await, Some(4)); // retried after 2 s more, succeeds
    assert_eq!(started.elapsed(), Duration::from_secs(94));
    tokio::task::yield_now().await;
    assert_eq!(tokens.generation(), Some(2));
}

#[tokio::test(start_paused = true)]
async fn without_static_stability_requests_wait_for_a_fetch_past_the_real_expiry() {
    let lifetime = Duration::from_secs(100);
    let (builder, _fetches) = scripted([
        Ok(Token::new("t1").expires_in(lifetime)),
        Err("down"),
        Err("down"),
        Err("down"),
        Err("down"),
        Ok(Token::new("t2")),
    ]);
    let tokens = builder
        .static_stability(false)
        .advisory_window(Duration::from_secs(10))
        .stale_backoff(Duration::from_secs(4), Duration::from_secs(4))
        .build()
        .unwrap();
    tokens.fetch().await.unwrap();
    // Refreshes at 90, 94, 98 s fail; at 100 s the token is dropped.
    tokio::time::sleep(Duration::from_secs(100)).await;
    tokio::task::yield_now().await;
    assert_eq!(tokens.generation(), None);
    assert!(matches!(tokens.acquire(), Acquire::Wait(_)));
}

#[tokio::test]
async fn swap_installs_a_token_from_elsewhere_and_invalid_ones_are_refused() {
    let (builder, _fetches) = scripted([]);
    let tokens = builder.build().unwrap();
    assert_eq!(tokens.swap(Token::new("from-elsewhere")).unwrap(), 1);
    assert_eq!(
        tokens.swap(Token::new("bad token")),
        Err(CredentialError::Whitespace { at: 3 })
    );
    assert_eq!(tokens.generation(), Some(1));
    assert_eq!(tokens.fetch_count(), 0);
    // Invalidated, the token stays as a fallback, but the next request waits for a refresh.
    tokens.invalidate();
    assert_eq!(tokens.generation(), Some(1));
    assert!(matches!(tokens.acquire(), Acquire::Wait(_)));
}

#[tokio::test]
async fn a_token_that_cannot_be_a_header_value_is_a_typed_error() {
    let (builder, _fetches) = scripted([Ok(Token::new("line\nbreak"))]);
    let err = builder.build().unwrap().fetch().await.unwrap_err();
    assert_eq!(err.kind(), TokenErrorKind::InvalidToken);
}

#[tokio::test(start_paused = true)]
async fn a_source_that_panics_once_does_not_wedge_the_credential() {
    let calls = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&calls);
    let tokens = TokenCredential::builder(move || {
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        async move {
            assert!(n > 1, "the token source failed on its first call");
            Ok::<_, std::io::Error>(Token::new(format!("t{n}")))
        }
    })
    .any_origin()
    .backoff(Duration::from_secs(1), Duration::from_secs(1))
    .build()
    .unwrap();

    let err = tokens.fetch().await.unwrap_err();
    assert_eq!(err.kind(), TokenErrorKind::Aborted);
    // No panic message in the error: it could quote what the source held.
    assert!(!err.to_string().contains("first call"), "{err}");
    // The next fetch, after the backoff, calls the source again and succeeds.
    assert_eq!(tokens.fetch().await.unwrap(), 1);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    // `invalidate` then fetches anew too.
    tokens.invalidate();
    assert_eq!(tokens.fetch().await.unwrap(), 2);
}

#[test]
fn a_runtime_shut_down_mid_fetch_leaves_a_credential_another_runtime_can_use() {
    let (started, mut started_rx) = tokio::sync::mpsc::unbounded_channel();
    let calls = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&calls);
    let tokens = TokenCredential::builder(move || {
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        let _ = started.send(n);
        async move {
            if n == 1 {
                // The first fetch never answers: its runtime is shut down under it.
                std::future::pending::<()>().await;
            }
            Ok::<_, std::io::Error>(Token::new(format!("t{n}")))
        }
    })
    .any_origin()
    .backoff(Duration::from_millis(1), Duration::from_millis(1))
    .build()
    .unwrap();

    let first = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    {
        let tokens = tokens.clone();
        first.block_on(async move {
            // The waiter and the fetch task both die with this runtime.
            drop(tokio::spawn(async move { tokens.fetch().await }));
            assert_eq!(started_rx.recv().await, Some(1));
        });
    }
    drop(first);

    let second = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let generation = second.block_on(tokens.fetch()).unwrap();
    assert_eq!(generation, 1);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_token_swapped_in_during_a_fetch_is_not_overwritten_by_it() {
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let released = Arc::new(Mutex::new(Some(released)));
    let (started, mut started_rx) = mpsc::unbounded_channel();
    let tokens = TokenCredential::builder(move || {
        let released = released.lock().unwrap().take();
        let _ = started.send(());
        async move {
            if let Some(released) = released {
                let _ = released.await;
            }
            Ok::<_, std::io::Error>(Token::new("fetched"))
        }
    })
    .any_origin()
    .build()
    .unwrap();

    let fetch = tokio::spawn({
        let tokens = tokens.clone();
        async move { tokens.fetch().await }
    });
    started_rx.recv().await.unwrap();
    let swapped = tokens.swap(Token::new("by-hand")).unwrap();
    release.send(()).unwrap();
    // The fetch's waiters get the swapped token, and it stays.
    assert_eq!(fetch.await.unwrap().unwrap(), swapped);
    assert_eq!(tokens.generation(), Some(swapped));
}

#[tokio::test(start_paused = true)]
async fn a_rejection_never_hands_back_a_newer_token_past_its_expiry() {
    let (builder, _fetches) = scripted([Ok(Token::new("t1")), Ok(Token::new("t3"))]);
    let tokens = builder.build().unwrap();
    assert_eq!(tokens.fetch().await.unwrap(), 1);
    // Generation 2 arrives from elsewhere with a short life, and lives it out.
    let short = tokens
        .swap(Token::new("t2").expires_in(Duration::from_secs(10)))
        .unwrap();
    assert_eq!(short, 2);
    tokio::time::advance(Duration::from_secs(11)).await;
    // A late rejection of generation 1 must not be answered with the expired generation 2.
    assert_eq!(tokens.rejected(1).await.unwrap(), 3);
}

/// Without static stability, a token dropped at its expiry leaves an empty cache: the next
/// request fetches at once (and fails at once while the endpoint fails), instead of waiting out
/// the long backoff of the refresh that failed before the expiry.
#[tokio::test(start_paused = true)]
async fn without_static_stability_a_dropped_token_does_not_inherit_the_refresh_backoff() {
    let lifetime = Duration::from_secs(100);
    let (builder, mut fetches) = scripted([
        Ok(Token::new("t1").expires_in(lifetime)),
        Err("down"),
        Err("down"),
        Ok(Token::new("t2")),
    ]);
    let tokens = builder.static_stability(false).build().unwrap();
    tokens.fetch().await.unwrap();
    fetches.recv().await.unwrap();
    // The background refresh fails in the advisory window and backs off for minutes.
    assert_eq!(fetches.recv().await, Some(2));
    tokio::time::sleep_until(Instant::now() + lifetime).await;
    let_due_timers_fire().await;
    assert_eq!(tokens.generation(), None, "dropped at its expiry");

    let asked = Instant::now();
    let err = tokens.fetch().await.unwrap_err();
    assert_eq!(err.kind(), TokenErrorKind::Fetch);
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "{:?}",
        asked.elapsed()
    );
    // The empty cache's short backoff (1 s in these tests), then a token.
    assert_eq!(tokens.fetch().await.unwrap(), 2);
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "{:?}",
        asked.elapsed()
    );
}

async fn let_due_timers_fire() {
    tokio::time::sleep(Duration::from_millis(1)).await;
}

#[tokio::test(start_paused = true)]
async fn status_reports_each_window_of_a_tokens_life() {
    use crate::token::Window;

    let hour = Duration::from_secs(3600);
    // One token, then the endpoint is down: the background refresh fails, the token stays.
    let (builder, _fetches) = scripted([Ok(Token::new("t1").expires_in(hour))]);
    let tokens = builder.build().unwrap();
    assert_eq!(tokens.status().window, Window::Empty);
    tokens.fetch().await.unwrap();
    assert_eq!(tokens.status().window, Window::Fresh);
    // An hour-long token: advisory 15 minutes before its expiry, mandatory in the last minute.
    tokio::time::advance(Duration::from_secs(46 * 60)).await;
    assert_eq!(tokens.status().window, Window::Advisory);
    tokio::time::advance(Duration::from_secs(13 * 60 + 30)).await;
    assert_eq!(tokens.status().window, Window::Mandatory);

    // A fresh token that the API rejects (or that is invalidated) says so.
    let (builder, _fetches) = scripted([Ok(Token::new("t1").expires_in(hour))]);
    let tokens = builder.build().unwrap();
    tokens.fetch().await.unwrap();
    tokens.invalidate();
    assert_eq!(tokens.status().window, Window::Invalidated);
}
