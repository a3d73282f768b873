//! How each stand-in checks credentials and answers.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, Request, State as AxumState};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, StatusCode, Uri};
use serde_json::{Value, json};

use super::{Provider, RecordedRequest, State, TokenFault};

type Shared = Arc<State>;

pub(super) fn router(provider: Provider, state: Shared) -> Router {
    let api = match provider {
        Provider::Akkio => axum::routing::any(akkio),
        Provider::Polyteia => axum::routing::any(polyteia),
        Provider::Erathos => axum::routing::any(erathos),
        Provider::Akool => axum::routing::any(akool),
    };
    let tokens = match provider {
        Provider::Akool => Router::new().route("/api/open/v3/getToken", post(akool_get_token)),
        Provider::Polyteia => Router::new().route(
            "/rpc/auth/personalAccessKey/exchange",
            post(polyteia_exchange),
        ),
        _ => Router::new(),
    };
    Router::new()
        .merge(tokens)
        .route("/_mock/redirect", get(redirect))
        .fallback_service(api.with_state(Arc::clone(&state)))
        .with_state(state)
}

/// A request as a handler sees it, after it was recorded.
struct Received {
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
}

/// Records `request` (body included) and, for API routes, waits at the hold if one is set.
async fn receive(state: &State, request: Request, api: bool) -> Received {
    let (parts, body) = request.into_parts();
    // A body that cannot be read (too large, connection gone) is recorded as empty.
    let body = axum::body::to_bytes(body, 16 * 1024 * 1024)
        .await
        .unwrap_or_default();
    state.record(RecordedRequest {
        method: parts.method,
        uri: parts.uri.clone(),
        headers: parts.headers.clone(),
        body: body.clone(),
    });
    if api {
        state.wait_at_hold().await;
    }
    Received {
        uri: parts.uri,
        headers: parts.headers,
        body,
    }
}

async fn redirect(
    AxumState(state): AxumState<Shared>,
    Query(query): Query<HashMap<String, String>>,
    request: Request,
) -> Response {
    receive(&state, request, false).await;
    match query.get("to") {
        Some(to) => Redirect::temporary(to).into_response(),
        None => (StatusCode::BAD_REQUEST, "missing ?to=").into_response(),
    }
}

/// The credential behind `scheme` in `Authorization`, if that is how the request is
/// authenticated. The scheme is matched exactly, as the providers document it.
fn authorization<'h>(headers: &'h HeaderMap, scheme: &str) -> Option<&'h str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    value.strip_prefix(scheme)?.strip_prefix(' ')
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name)?.to_str().ok()
}

fn error(status: StatusCode, field: &str, message: &str) -> Response {
    (status, Json(json!({ field: message }))).into_response()
}

async fn akkio(AxumState(state): AxumState<Shared>, request: Request) -> Response {
    let Received { uri, headers, .. } = receive(&state, request, true).await;
    let Some(key) = header(&headers, "x-api-key") else {
        return error(
            StatusCode::UNAUTHORIZED,
            "error",
            "missing X-API-Key header",
        );
    };
    if !state.is_accepted(key) {
        return error(StatusCode::UNAUTHORIZED, "error", "invalid API key");
    }
    if uri.path().starts_with("/api/v1/restricted") {
        return error(
            StatusCode::FORBIDDEN,
            "error",
            "your organization does not have access to this resource",
        );
    }
    Json(json!({ "status": "ok", "path": uri.path() })).into_response()
}

async fn polyteia(AxumState(state): AxumState<Shared>, request: Request) -> Response {
    let Received { headers, body, .. } = receive(&state, request, true).await;
    let bearer = authorization(&headers, "Bearer");
    if !bearer.is_some_and(|key| state.is_accepted(key) || state.is_issued(key)) {
        return error(
            StatusCode::UNAUTHORIZED,
            "error",
            "invalid or missing authentication token",
        );
    }
    let json = header(&headers, CONTENT_TYPE.as_str())
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

async fn erathos(AxumState(state): AxumState<Shared>, request: Request) -> Response {
    let Received { uri, headers, .. } = receive(&state, request, true).await;
    if !authorization(&headers, "Api-Key").is_some_and(|key| state.is_accepted(key)) {
        return error(
            StatusCode::UNAUTHORIZED,
            "detail",
            "Authentication credentials were not provided or are invalid.",
        );
    };
    if uri.path().starts_with("/developers/workspaces/restricted/") {
        return error(
            StatusCode::FORBIDDEN,
            "detail",
            "You do not have permission to perform this action.",
        );
    }
    Json(json!({ "results": [], "path": uri.path() })).into_response()
}

async fn akool(AxumState(state): AxumState<Shared>, request: Request) -> Response {
    let Received { headers, .. } = receive(&state, request, true).await;
    // Akool's documented precedence: `Authorization` is used first, `x-api-key` discarded.
    // A bearer credential must be a token from getToken; `x-api-key` an API key.
    const EXPIRED: &str = "Invalid authorization or The request token has expired";
    let (code, msg) = match (headers.get(AUTHORIZATION), header(&headers, "x-api-key")) {
        (Some(_), _) => match authorization(&headers, "Bearer") {
            Some(token) if state.is_issued(token) => (1000, "OK"),
            _ => (1101, EXPIRED),
        },
        (None, Some(key)) if state.is_banned(key) => (1200, "The account has been banned"),
        (None, Some(key)) if state.is_accepted(key) => (1000, "OK"),
        (None, Some(_)) => (1101, EXPIRED),
        (None, None) => (1102, "Authorization cannot be empty"),
    };
    if code == 1000 {
        return Json(json!({ "code": 1000, "msg": msg, "data": { "credit": 100 } }))
            .into_response();
    }
    Json(json!({ "code": code, "msg": msg })).into_response()
}

/// Answers a token request as the fault injected says; `None` means "answer normally".
async fn token_fault(state: &State) -> Option<Response> {
    let (_, fault) = state.token_request();
    match fault? {
        TokenFault::ServerError => {
            Some((StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response())
        }
        TokenFault::GarbageJson => {
            Some(([(CONTENT_TYPE, "application/json")], "{\"code\": 10").into_response())
        }
        TokenFault::ErrorCode(code) => {
            Some(Json(json!({ "code": code, "msg": "injected failure" })).into_response())
        }
        TokenFault::EmptyToken => Some(
            Json(json!({ "code": 1000, "token": "", "json": { "token": "" } })).into_response(),
        ),
        TokenFault::Stall => std::future::pending().await,
        TokenFault::Delay(delay) => {
            tokio::time::sleep(delay).await;
            None
        }
    }
}

async fn akool_get_token(AxumState(state): AxumState<Shared>, request: Request) -> Response {
    let Received { body, .. } = receive(&state, request, false).await;
    if let Some(fault) = token_fault(&state).await {
        return fault;
    }
    let body: Value = serde_json::from_slice(&body).unwrap_or_default();
    let secret = body.get("clientSecret").and_then(Value::as_str);
    let has_id = body
        .get("clientId")
        .and_then(Value::as_str)
        .is_some_and(|id| !id.is_empty());
    match secret {
        Some(secret) if has_id && state.is_accepted(secret) => {
            let token = format!("akool-token-{}", state.token_request_count());
            state.issue(token.clone());
            Json(json!({ "code": 1000, "token": token })).into_response()
        }
        _ => Json(json!({ "code": 1101, "msg": "Invalid authorization or The request token has expired" }))
            .into_response(),
    }
}

async fn polyteia_exchange(AxumState(state): AxumState<Shared>, request: Request) -> Response {
    let Received { body, .. } = receive(&state, request, false).await;
    if let Some(fault) = token_fault(&state).await {
        return fault;
    }
    let body: Value = serde_json::from_slice(&body).unwrap_or_default();
    let key = body.pointer("/json/key").and_then(Value::as_str);
    if !key.is_some_and(|key| state.is_accepted(key)) {
        return error(
            StatusCode::UNAUTHORIZED,
            "error",
            "invalid personal access key",
        );
    }
    let ttl = state
        .token_ttl()
        .unwrap_or(std::time::Duration::from_secs(3600));
    let token = format!("polyteia-token-{}", state.token_request_count());
    state.issue(token.clone());
    let expires_at = humantime::format_rfc3339_seconds(std::time::SystemTime::now() + ttl);
    Json(json!({ "json": {
        "token": token,
        "expiresAt": expires_at.to_string(),
        "organizationId": body.pointer("/json/organizationId").cloned().unwrap_or(Value::Null),
        "scope": "organization",
    }}))
    .into_response()
}
