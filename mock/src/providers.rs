//! How each stand-in checks credentials and answers.

use std::collections::HashMap;
use std::io;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, Request, State as AxumState};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{any, get, post};
use futures::StreamExt;
use futures::stream;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, StatusCode, Uri};
use http_body_util::Full;
use serde_json::{Value, json};

use crate::state::State;
use crate::{Provider, RecordedRequest, TokenFault};
use tower_api_auth::providers::akool;
use tower_api_auth::server::{MemoryKeyStore, Rejection, RejectionResponse, Requirement};
use tower_api_auth::{Placement, ValidateCredentialLayer};

type Shared = Arc<State>;

pub(super) fn router(provider: Provider, state: Shared) -> Router {
    let tokens = match provider {
        Provider::Akool => Router::new().route("/api/open/v3/getToken", post(akool_get_token)),
        Provider::Polyteia => Router::new().route(
            "/rpc/auth/personalAccessKey/exchange",
            post(polyteia_exchange),
        ),
        _ => Router::new(),
    };
    let api = Router::new()
        .fallback(match provider {
            Provider::Akkio => any(akkio),
            Provider::Polyteia => any(polyteia),
            Provider::Erathos => any(erathos),
            Provider::Akool => any(akool),
        })
        // The hold comes before the check, so that held requests are judged on release.
        .layer(validation(provider, &state))
        .layer(middleware::from_fn_with_state(Arc::clone(&state), hold));
    let app = Router::new()
        .merge(tokens)
        .route("/_mock/redirect", get(redirect))
        .fallback_service(api)
        .with_state(Arc::clone(&state))
        .layer(middleware::from_fn_with_state(state, record));
    Router::new().fallback_service(app)
}

/// The server side as each provider documents it: where the credential goes, what is
/// forbidden, and the bodies of refusals.
fn validation(provider: Provider, state: &State) -> ValidateCredentialLayer<MemoryKeyStore> {
    let keys = state.keys().clone();
    let x_api_key = || Placement::header("x-api-key").expect("a valid header name");
    match provider {
        Provider::Akkio => ValidateCredentialLayer::new(x_api_key(), keys)
            .require(Requirement::predicate(|_, request| {
                !request.uri.path().starts_with("/api/v1/restricted")
            }))
            .reject_with(RejectionResponse::custom(|rejection| match rejection {
                Rejection::Missing => refusal(rejection, "error", "missing X-API-Key header"),
                Rejection::Forbidden => refusal(
                    rejection,
                    "error",
                    "your organization does not have access to this resource",
                ),
                _ => refusal(rejection, "error", "invalid API key"),
            })),
        Provider::Polyteia => ValidateCredentialLayer::new(Placement::bearer(), keys).reject_with(
            RejectionResponse::custom(|rejection| {
                refusal(
                    rejection,
                    "error",
                    "invalid or missing authentication token",
                )
            }),
        ),
        Provider::Erathos => ValidateCredentialLayer::new(Placement::api_key(), keys)
            .require(Requirement::predicate(|_, request| {
                !request
                    .uri
                    .path()
                    .starts_with("/developers/workspaces/restricted/")
            }))
            .reject_with(RejectionResponse::custom(|rejection| match rejection {
                Rejection::Forbidden => refusal(
                    rejection,
                    "detail",
                    "You do not have permission to perform this action.",
                ),
                _ => refusal(
                    rejection,
                    "detail",
                    "Authentication credentials were not provided or are invalid.",
                ),
            })),
        // Akool answers 1200 for a banned account; the stand-in keeps banned keys as revoked
        // records, and says so (the crate's own Akool refusals never tell revoked from unknown).
        Provider::Akool => ValidateCredentialLayer::new(x_api_key(), keys)
            .accept(Placement::bearer())
            .reject_with(RejectionResponse::custom(|rejection| {
                let (code, msg) = match rejection {
                    Rejection::Revoked => (1200, "The account has been banned"),
                    _ => (
                        akool::refusal_code(rejection),
                        "Invalid or missing authorization",
                    ),
                };
                let mut response = refusal(rejection, "msg", msg);
                *response.status_mut() = http::StatusCode::OK;
                *response.body_mut() =
                    Full::new(Bytes::from(json!({ "code": code, "msg": msg }).to_string()));
                response
            })),
    }
}

/// A refusal with the rejection's status and `{field: message}`.
fn refusal(rejection: Rejection, field: &str, message: &str) -> http::Response<Full<Bytes>> {
    let body = json!({ field: message }).to_string();
    let mut response = http::Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = rejection.status();
    response.headers_mut().insert(
        CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

/// Records every request (body included) before anything else looks at it.
async fn record(AxumState(state): AxumState<Shared>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    // A body that cannot be read (too large, connection gone) is recorded as empty.
    let body = axum::body::to_bytes(body, 16 * 1024 * 1024)
        .await
        .unwrap_or_default();
    state.record(RecordedRequest {
        method: parts.method.clone(),
        uri: parts.uri.clone(),
        headers: parts.headers.clone(),
        body: body.clone(),
    });
    next.run(Request::from_parts(parts, Body::from(body))).await
}

/// Waits at the hold, if one is set, for API requests.
async fn hold(AxumState(state): AxumState<Shared>, request: Request, next: Next) -> Response {
    state.wait_at_hold().await;
    next.run(request).await
}

async fn redirect(Query(query): Query<HashMap<String, String>>) -> Response {
    match query.get("to") {
        Some(to) => Redirect::temporary(to).into_response(),
        None => (StatusCode::BAD_REQUEST, "missing ?to=").into_response(),
    }
}

fn error(status: StatusCode, field: &str, message: &str) -> Response {
    (status, Json(json!({ field: message }))).into_response()
}

async fn akkio(uri: Uri) -> Response {
    Json(json!({ "status": "ok", "path": uri.path() })).into_response()
}

async fn polyteia(headers: HeaderMap, body: Bytes) -> Response {
    let json = headers
        .get(CONTENT_TYPE)
        .and_then(|ct| ct.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    if !json {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "error",
            "Content-Type must be application/json",
        );
    }
    let Ok(command) = serde_json::from_slice::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, "error", "body is not JSON");
    };
    let name = command
        .get("query")
        .or_else(|| command.get("command"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    if name == "restricted" {
        return error(
            StatusCode::FORBIDDEN,
            "error",
            "token is valid but lacks the required permissions",
        );
    }
    Json(json!({ "data": { "name": name } })).into_response()
}

async fn erathos(uri: Uri) -> Response {
    Json(json!({ "results": [], "path": uri.path() })).into_response()
}

async fn akool() -> Response {
    Json(json!({ "code": 1000, "msg": "OK", "data": { "credit": 100 } })).into_response()
}

/// How to answer a token request, once the injected fault (if any) has had its say.
enum TokenAnswer {
    /// This instead of a token.
    Fault(Response),
    /// A token, as the provider issues it; `expires_at` (seconds since the epoch) overrides
    /// the expiry it would announce.
    Issue { expires_at: Option<u64> },
}

/// The first bytes of a token answer cut short: the headers are sent, the JSON is not whole.
const PARTIAL_ANSWER: &[u8] = br#"{"code": 1000, "json": {"token": "partial"#;

/// Answers a token request as the fault injected says.
async fn token_answer(state: &State) -> TokenAnswer {
    let Some((fault, n)) = state.token_request() else {
        return TokenAnswer::Issue { expires_at: None };
    };
    let fault = match fault {
        TokenFault::ServerError => {
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
        TokenFault::GarbageJson => {
            ([(CONTENT_TYPE, "application/json")], "{\"code\": 10").into_response()
        }
        TokenFault::ErrorCode(code) => {
            Json(json!({ "code": code, "msg": "injected failure" })).into_response()
        }
        TokenFault::EmptyToken => {
            Json(json!({ "code": 1000, "token": "", "json": { "token": "" } })).into_response()
        }
        TokenFault::Stall => std::future::pending().await,
        TokenFault::Delay(delay) => {
            tokio::time::sleep(delay).await;
            return TokenAnswer::Issue { expires_at: None };
        }
        TokenFault::StallMidBody => {
            let partial = stream::iter([Ok::<_, io::Error>(Bytes::from_static(PARTIAL_ANSWER))]);
            let body = Body::from_stream(partial.chain(stream::pending()));
            ([(CONTENT_TYPE, "application/json")], body).into_response()
        }
        TokenFault::AbortMidBody => {
            let partial = stream::iter([Ok::<_, io::Error>(Bytes::from_static(PARTIAL_ANSWER))]);
            // The yield lets the server flush the headers and the first bytes before the body
            // fails; a failing body makes hyper drop the connection (reset the HTTP/2 stream).
            let abort = stream::once(async {
                tokio::task::yield_now().await;
                Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "injected: connection dropped mid-body",
                ))
            });
            let body = Body::from_stream(partial.chain(abort));
            ([(CONTENT_TYPE, "application/json")], body).into_response()
        }
        TokenFault::Alternate if n % 2 == 1 => {
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
        TokenFault::Alternate => return TokenAnswer::Issue { expires_at: None },
        TokenFault::ExpiresAt(at) => {
            return TokenAnswer::Issue {
                expires_at: Some(at),
            };
        }
    };
    TokenAnswer::Fault(fault)
}

/// An unsigned JWT whose payload carries `exp`: what Akool reads an expiry from.
fn jwt(subject: &str, exp: u64) -> String {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(json!({ "sub": subject, "exp": exp }).to_string());
    format!("{header}.{payload}.unsigned")
}

async fn akool_get_token(AxumState(state): AxumState<Shared>, body: Bytes) -> Response {
    let expires_at = match token_answer(&state).await {
        TokenAnswer::Fault(fault) => return fault,
        TokenAnswer::Issue { expires_at } => expires_at,
    };
    let body: Value = serde_json::from_slice(&body).unwrap_or_default();
    let secret = body.get("clientSecret").and_then(Value::as_str);
    let has_id = body
        .get("clientId")
        .and_then(Value::as_str)
        .is_some_and(|id| !id.is_empty());
    match secret {
        Some(secret) if has_id && state.is_accepted(secret) => {
            let token = format!("akool-token-{}", state.token_request_count());
            let token = match expires_at {
                Some(exp) => jwt(&token, exp),
                None => token,
            };
            state.issue(token.clone());
            Json(json!({ "code": 1000, "token": token })).into_response()
        }
        _ => Json(json!({ "code": 1101, "msg": "Invalid authorization or The request token has expired" }))
            .into_response(),
    }
}

async fn polyteia_exchange(AxumState(state): AxumState<Shared>, body: Bytes) -> Response {
    let expires_at = match token_answer(&state).await {
        TokenAnswer::Fault(fault) => return fault,
        TokenAnswer::Issue { expires_at } => expires_at,
    };
    let body: Value = serde_json::from_slice(&body).unwrap_or_default();
    let key = body.pointer("/json/key").and_then(Value::as_str);
    if !key.is_some_and(|key| state.is_accepted(key)) {
        return error(
            StatusCode::UNAUTHORIZED,
            "error",
            "invalid personal access key",
        );
    }
    let token = format!("polyteia-token-{}", state.token_request_count());
    state.issue(token.clone());
    let expires_at = match expires_at {
        Some(exp) => json!(exp),
        None => {
            let ttl = state
                .token_ttl()
                .unwrap_or(std::time::Duration::from_secs(3600));
            let at = humantime::format_rfc3339_seconds(std::time::SystemTime::now() + ttl);
            json!(at.to_string())
        }
    };
    Json(json!({ "json": {
        "token": token,
        "expiresAt": expires_at,
        "organizationId": body.pointer("/json/organizationId").cloned().unwrap_or(Value::Null),
        "scope": "organization",
    }}))
    .into_response()
}
