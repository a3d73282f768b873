//! A rejected token is refetched once for everyone and each rejected request replayed once.

use crate::support;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http::StatusCode;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use tower::{Layer, ServiceExt};
use tower_api_auth::providers::polyteia;
use tower_api_auth::{Token, TokenAuth, TokenAuthLayer, TokenCredential};
use tower_api_auth_mock::MockServer;

use support::{HttpClient, akool_tokens, client, json, polyteia_server, post_json};

mod akool_body_codes;
mod bodies;
mod forbidden;
mod rejected_again;
mod under_load;

/// A token source whose tokens the stand-in never accepts, counting fetches.
fn never_accepted(server: &MockServer, fetches: &Arc<AtomicUsize>) -> TokenCredential {
    let fetches = Arc::clone(fetches);
    TokenCredential::builder(move || {
        let n = fetches.fetch_add(1, Ordering::SeqCst) + 1;
        async move { Ok::<_, std::io::Error>(Token::new(format!("revoked-{n}"))) }
    })
    .origin(server.base_url())
    .build()
    .unwrap()
}
