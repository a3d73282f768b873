//! Fault injection on the token endpoint beyond the plain failures of `tokens::fetch`: answers
//! cut short (stalled or dropped mid-body, connections reset), an endpoint that fails every other
//! time, absurd absolute expiries, and clock jumps around a token's refresh point and expiry.
//!
//! Every fault ends in a typed `TokenError` or a success, never a hang (each loopback test runs
//! under a guard timeout that only fires on a hang); every request waiting on a fetch gets the
//! same result; the next request after the fault clears recovers; the endpoint's own counts say
//! exactly how many fetches ran. Clock jumps use Tokio's paused clock with scripted token sources
//! and a `service_fn` API, since real I/O cannot run on a paused clock.

use crate::support;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::{FutureExt, StreamExt};
use http::{Request, Response};
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tower::{Layer, ServiceExt};
use tower_api_auth::body::ResponseBody;
use tower_api_auth::providers::{akool, polyteia};
use tower_api_auth::token::TokenErrorKind;
use tower_api_auth::{Token, TokenAuthLayer, TokenCredential, TokenError};
use tower_api_auth_mock::{MockServer, TokenFault};

use support::{
    HttpClient, akool_server, akool_tokens, client, client_h2, get, json, polyteia_request,
    polyteia_server, post_json, quota_url, token_error,
};

mod absolute_expiry;
mod alternating;
mod clock_jumps;
mod connections;
mod mid_body;

/// Far longer than any of these tests takes; it fires only when something hangs.
const HANG_GUARD: Duration = Duration::from_secs(20);

/// How many requests wait on each failing fetch.
const WAITERS: usize = 20;

/// Awaits `future`, failing the test if it never ends.
async fn bounded<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(HANG_GUARD, future)
        .await
        .expect("a token fault made a request hang")
}

/// Asserts that every waiter got the same error, of `kind`, and returns it.
fn same_error(errors: impl IntoIterator<Item = TokenError>, kind: TokenErrorKind) -> TokenError {
    let mut errors = errors.into_iter();
    let first = errors.next().expect("at least one waiter");
    assert_eq!(first.kind(), kind, "{first}");
    let mut waiters = 1;
    for err in errors {
        assert_eq!(err.kind(), first.kind());
        assert_eq!(err.to_string(), first.to_string(), "one fetch, one result");
        waiters += 1;
    }
    assert_eq!(waiters, WAITERS);
    first
}
