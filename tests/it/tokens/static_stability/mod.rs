//! Token refresh that survives a token-endpoint outage: the conformance table in
//! `tests/data/refresh_conformance.txt`, run on a paused clock against a scripted source, and
//! loopback tests of an outage longer than the token's life.

use crate::support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinHandle;
use tower::BoxError;
use tower_api_auth::token::{TokenErrorKind, Unrecoverable};
use tower_api_auth::{Token, TokenCredential, TokenError};

mod conformance;
mod outage;
