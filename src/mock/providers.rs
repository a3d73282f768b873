//! How each stand-in checks credentials and answers.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State as AxumState};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, Method, StatusCode, Uri};
use serde_json::{Value, json};

use super::{Provider, RecordedRequest, State};

type Shared = Arc<State>;

pub(super) fn router(provider: Provider, state: Shared) -> Router {
    let api = match provider {
        Provider::Akkio => axum::routing::any(akkio),
        Provider::Polyteia => axum::routing::any(polyteia),
        Provider::Erathos => axum::routing::any(erathos),
        Provider::Akool => axum::routing::any(akool),
    };
    Router::new()
        .route("/_mock/redirect", get(redirect))
        .fallback_service(api.with_state(Arc::clone(&state)))
        .with_state(state)
}

fn record(state: &State, method: &Method, uri: &Uri, headers: &HeaderMap) {
    state.record(RecordedRequest {
        method: method.clone(),
        uri: uri.clone(),
        headers: headers.clone(),
    });
}

async fn redirect(
    AxumState(state): AxumState<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    record(&state, &method, &uri, &headers);
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

async fn akkio(
    AxumState(state): AxumState<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    record(&state, &method, &uri, &headers);
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

async fn polyteia(
    AxumState(state): AxumState<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    record(&state, &method, &uri, &headers);
    if !authorization(&headers, "Bearer").is_some_and(|key| state.is_accepted(key)) {
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

async fn erathos(
    AxumState(state): AxumState<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    record(&state, &method, &uri, &headers);
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

async fn akool(
    AxumState(state): AxumState<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    record(&state, &method, &uri, &headers);
    // Akool's documented precedence: `Authorization` is used first, `x-api-key` discarded.
    let credential = match headers.get(AUTHORIZATION) {
        Some(_) => authorization(&headers, "Bearer"),
        None => header(&headers, "x-api-key"),
    };
    let (code, msg) = match credential {
        None if headers.contains_key(AUTHORIZATION) => (
            1101,
            "Invalid authorization or The request token has expired",
        ),
        None => (1102, "Authorization cannot be empty"),
        Some(key) if state.is_banned(key) => (1200, "The account has been banned"),
        Some(key) if state.is_accepted(key) => {
            return Json(json!({ "code": 1000, "msg": "OK", "data": { "credit": 100 } }))
                .into_response();
        }
        Some(_) => (
            1101,
            "Invalid authorization or The request token has expired",
        ),
    };
    Json(json!({ "code": code, "msg": msg })).into_response()
}
