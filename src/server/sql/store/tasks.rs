//! The store's background tasks: following changes (at each poll interval and, on
//! PostgreSQL, on each notification) and writing keys' last use. Each holds the store weakly
//! and ends when the last clone is dropped.

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::Notify;

use super::Shared;

/// The PostgreSQL channel the schema's trigger notifies, with the new revision as payload.
#[cfg(feature = "postgres")]
const CHANNEL: &str = "tower_api_auth_keys";

/// Applies changes when woken (a notification) and at every tick, until the store is dropped.
pub(super) async fn follow(shared: Weak<Shared>, wake: Arc<Notify>, interval: Duration) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        tokio::select! {
            () = wake.notified() => {}
            _ = ticks.tick() => {}
        }
        let Some(shared) = shared.upgrade() else {
            return;
        };
        // A failure is logged and recorded by the health state; the next tick tries again.
        let _ = shared.sync().await;
    }
}

/// Writes `last_used_at` every interval, until the store is dropped.
pub(super) async fn record_usage(shared: Weak<Shared>, interval: Duration) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    // Said once when writing fails and once when it works again, not at every interval of an
    // outage (which the store reports on its own).
    let mut failing = false;
    loop {
        ticks.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        match shared.usage.flush(&shared.database).await {
            Err(error) if !failing => {
                failing = true;
                tracing::warn!(%error, "could not record keys' last use; will retry");
            }
            Err(_) => {}
            Ok(_) if failing => {
                failing = false;
                tracing::info!("keys' last use recorded again");
            }
            Ok(_) => {}
        }
    }
}

/// Wakes the follower on every notification above the snapshot's revision, and after every
/// (re)connection, until the store is dropped.
#[cfg(feature = "postgres")]
pub(super) async fn listen(pool: sqlx::PgPool, shared: Weak<Shared>, wake: Arc<Notify>) {
    use sqlx::postgres::PgListener;
    const BACKOFF: Duration = Duration::from_millis(250);
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::debug!(%error, "cannot listen for key changes yet");
                tokio::time::sleep(BACKOFF).await;
                continue;
            }
        };
        if let Err(error) = listener.listen(CHANNEL).await {
            tracing::debug!(%error, "cannot listen for key changes yet");
            tokio::time::sleep(BACKOFF).await;
            continue;
        }
        // Anything committed while not listening.
        wake.notify_one();
        loop {
            match listener.try_recv().await {
                Ok(Some(notification)) => {
                    let Some(shared) = shared.upgrade() else {
                        return;
                    };
                    // A late or repeated event for a revision already applied wakes nobody.
                    let revision = notification.payload().parse::<i64>().ok();
                    if revision.is_none_or(|revision| revision > shared.revision()) {
                        wake.notify_one();
                    }
                }
                // The connection was lost; the next `try_recv` reconnects. Catch up meanwhile.
                Ok(None) => wake.notify_one(),
                Err(error) => {
                    tracing::debug!(%error, "lost the key-change listener; reconnecting");
                    wake.notify_one();
                    tokio::time::sleep(BACKOFF).await;
                    break;
                }
            }
        }
    }
}
