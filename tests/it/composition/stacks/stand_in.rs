//! The loopback Akool every row runs against: it issues `token-1`, `token-2`, ..., rejects
//! `token-1` as configured and records every call.

use super::*;

// --- The Akool stand-in -------------------------------------------------------------------------

/// A loopback Akool: `getToken` issues `token-1`, `token-2`, ...; the API rejects `token-1` as
/// configured (or accepts it, given no rejection) and echoes the request body for any later
/// token. Everything is recorded.
pub(super) struct StandIn {
    pub(super) served: Served,
    pub(super) state: Arc<StandInState>,
}

pub(super) struct StandInState {
    pub(super) reject: Option<Rejection>,
    pub(super) log: Mutex<Log>,
}

#[derive(Clone, Default)]
pub(super) struct Log {
    pub(super) get_token: usize,
    pub(super) api: Vec<ApiCall>,
}

#[derive(Clone)]
pub(super) struct ApiCall {
    pub(super) bearer: String,
    pub(super) body: Bytes,
    pub(super) version: Version,
    /// The response body bytes the stand-in sent.
    pub(super) sent: Bytes,
}

impl Log {
    pub(super) fn bearers(&self) -> Vec<&str> {
        self.api.iter().map(|call| call.bearer.as_str()).collect()
    }

    /// The bearers of the API calls whose body names `sender`, in order.
    pub(super) fn bearers_from(&self, sender: &str) -> Vec<&str> {
        let calls = self.api.iter().filter(|call| call.sender() == sender);
        calls.map(|call| call.bearer.as_str()).collect()
    }

    /// Each API call's bearer and sender, in order, for failure messages.
    pub(super) fn calls(&self) -> Vec<String> {
        let calls = self.api.iter();
        calls
            .map(|call| format!("{} from {}", call.bearer, call.sender()))
            .collect()
    }
}

impl ApiCall {
    /// Who sent the request, as its body says.
    pub(super) fn sender(&self) -> String {
        let body = serde_json::from_slice::<Value>(&self.body).unwrap_or_default();
        body["sender"].as_str().unwrap_or_default().to_owned()
    }
}

impl StandIn {
    pub(super) async fn start(reject: Option<Rejection>) -> Self {
        let state = Arc::new(StandInState {
            reject,
            log: Mutex::default(),
        });
        let router = Router::new()
            .route("/api/open/v3/getToken", post(get_token))
            .route(API_PATH, post(api))
            .with_state(Arc::clone(&state));
        Self {
            served: Served::start(router).await,
            state,
        }
    }

    pub(super) fn base_url(&self) -> String {
        self.served.base_url.clone()
    }

    pub(super) fn request(&self, body: &Bytes) -> Request<Full<Bytes>> {
        json_post(&self.served.url(API_PATH), Full::new(body.clone()))
    }

    pub(super) fn log(&self) -> Log {
        self.state.log.lock().unwrap().clone()
    }
}

async fn get_token(State(state): State<Arc<StandInState>>, body: Bytes) -> AxumResponse {
    let n = {
        let mut log = state.log.lock().unwrap();
        log.get_token += 1;
        log.get_token
    };
    let expected = json!({"clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET});
    if serde_json::from_slice::<Value>(&body).ok() != Some(expected) {
        let body = r#"{"code":1101,"msg":"invalid client credentials"}"#;
        return ([(CONTENT_TYPE, "application/json")], body).into_response();
    }
    let body = format!(r#"{{"code":1000,"msg":"OK","token":"token-{n}"}}"#);
    ([(CONTENT_TYPE, "application/json")], body).into_response()
}

async fn api(
    State(state): State<Arc<StandInState>>,
    request: axum::extract::Request,
) -> AxumResponse {
    let version = request.version();
    let bearer = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = match axum::body::to_bytes(request.into_body(), usize::MAX).await {
        Ok(body) => body,
        Err(err) => return (StatusCode::BAD_REQUEST, err.to_string()).into_response(),
    };
    let (response, sent) = match (bearer.as_str(), state.reject) {
        ("Bearer token-1", Some(rejection)) => rejection.response(),
        (bearer, _) if bearer.starts_with("Bearer token-") => {
            let echo = serde_json::from_slice::<Value>(&body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
            let sent = Bytes::from(
                serde_json::to_vec(&json!({"code": 1000, "msg": "OK", "data": {"echo": echo}}))
                    .unwrap(),
            );
            let response = ([(CONTENT_TYPE, "application/json")], sent.clone()).into_response();
            (response, sent)
        }
        _ => {
            let sent = Bytes::from_static(br#"{"code":1102,"msg":"no token"}"#);
            let response = ([(CONTENT_TYPE, "application/json")], sent.clone()).into_response();
            (response, sent)
        }
    };
    state.log.lock().unwrap().api.push(ApiCall {
        bearer,
        body,
        version,
        sent,
    });
    response
}

impl Rejection {
    /// The answer, and the bytes of its body.
    pub(super) fn response(self) -> (AxumResponse, Bytes) {
        const JSON: [(http::HeaderName, &str); 1] = [(CONTENT_TYPE, "application/json")];
        match self {
            Rejection::Code1101Sized => {
                let body = Bytes::from_static(br#"{"code":1101,"msg":"token expired"}"#);
                ((JSON, body.clone()).into_response(), body)
            }
            Rejection::Code1101Chunked => {
                let chunks = [&br#"{"code":1101,"#[..], br#""msg":"token expired"}"#];
                let stream = futures::stream::iter(
                    chunks.map(|chunk| Ok::<_, Infallible>(Bytes::from_static(chunk))),
                );
                let body = axum::body::Body::from_stream(stream);
                ((JSON, body).into_response(), Bytes::from(chunks.concat()))
            }
            Rejection::Unauthorized => {
                let body = Bytes::from_static(br#"{"code":401,"msg":"invalid token"}"#);
                let response = (StatusCode::UNAUTHORIZED, JSON, body.clone()).into_response();
                (response, body)
            }
        }
    }

    pub(super) fn status(self) -> StatusCode {
        match self {
            Rejection::Code1101Sized | Rejection::Code1101Chunked => StatusCode::OK,
            Rejection::Unauthorized => StatusCode::UNAUTHORIZED,
        }
    }
}
