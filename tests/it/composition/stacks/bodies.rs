//! Request body types other than `Full<Bytes>`: replayed when they can be sent twice, sent once
//! otherwise, including a proxy forwarding the body it received (`Incoming`, axum's `Body`).

use super::*;

/// Request body types other than `Full<Bytes>` (columns: replay on and off).
#[derive(Clone, Copy, Debug)]
enum BodyKind {
    /// `axum::body::Body` of known small size: read into memory and replayed.
    AxumBody,
    /// `Either<Full<Bytes>, Empty<Bytes>>`: sent once.
    Either,
    /// `Limited<Full<Bytes>>`: sent once.
    Limited,
    /// A hyper server forwarding the `hyper::body::Incoming` it received: sent once.
    IncomingProxy,
    /// An axum server forwarding the `axum::body::Body` it received (its size known from the
    /// Content-Length): read into memory and replayed.
    AxumProxy,
}

impl BodyKind {
    fn replayable(self) -> bool {
        matches!(self, BodyKind::AxumBody | BodyKind::AxumProxy)
    }
}

const BODY_KINDS: [BodyKind; 5] = [
    BodyKind::AxumBody,
    BodyKind::Either,
    BodyKind::Limited,
    BodyKind::IncomingProxy,
    BodyKind::AxumProxy,
];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn other_request_body_types_are_replayed_when_they_can_be_and_sent_once_otherwise() {
    let mut tally = Tally::default();
    for kind in BODY_KINDS {
        for replay in [true, false] {
            for rejection in REJECTIONS {
                for protocol in PROTOCOLS {
                    let name = format!("{kind:?} / replay {replay} / {rejection:?} / {protocol:?}");
                    tally
                        .run(name, body_cell(kind, replay, rejection, protocol))
                        .await;
                }
            }
        }
    }
    tally.assert_all_passed();
}

/// One request with a body of `kind`; then, when it was not replayed, the next request (a
/// `Full` body) gets the new token.
async fn body_cell(kind: BodyKind, replay: bool, rejection: Rejection, protocol: Protocol) {
    let stand_in = StandIn::start(Some(rejection)).await;
    let base = stand_in.base_url();
    let tokens = tokens(protocol.client::<Full<Bytes>>(), &base);
    let body = request_json(&format!("{kind:?}"));
    let url = format!("{base}{API_PATH}");
    let data = body.clone();
    let response = match kind {
        BodyKind::AxumBody => {
            let body = axum::body::Body::from(data);
            send(&tokens, replay, protocol, &url, body).await
        }
        BodyKind::Either => {
            let either: Either<Full<Bytes>, Empty<Bytes>> = Either::Left(Full::new(data));
            send(&tokens, replay, protocol, &url, either).await
        }
        BodyKind::Limited => {
            let body = Limited::new(Full::new(data), 1024);
            send(&tokens, replay, protocol, &url, body).await
        }
        BodyKind::IncomingProxy => {
            let api = token_api(&tokens, replay, protocol.client());
            let proxy = IncomingProxy::start(api, base.clone()).await;
            post_plain(&format!("{}{API_PATH}", proxy.base_url), data).await
        }
        BodyKind::AxumProxy => {
            let proxy =
                axum_proxy(token_api(&tokens, replay, protocol.client()), base.clone()).await;
            post_plain(&proxy.url(API_PATH), data).await
        }
    };
    let Answer {
        status,
        outcome,
        bytes,
    } = response;
    let log = stand_in.log();
    for call in &log.api {
        assert_eq!(call.body, body, "request body received by the API");
    }

    if replay && kind.replayable() {
        assert_eq!(status, StatusCode::OK, "replayed: {}", text(&bytes));
        assert_eq!(code(&bytes), Some(1000), "replayed: {}", text(&bytes));
        assert_eq!(log.get_token, 2, "getToken calls");
        assert_eq!(
            log.bearers(),
            ["Bearer token-1", "Bearer token-2"],
            "API calls"
        );
        assert_eq!(text(&bytes), text(&log.api[1].sent), "caller's body");
        return;
    }

    // Sent once: the rejection is the caller's answer, as the API sent it.
    assert_eq!(
        status,
        rejection.status(),
        "rejection handed back: {}",
        text(&bytes)
    );
    assert_eq!(log.bearers(), ["Bearer token-1"], "sent once");
    assert_eq!(text(&bytes), text(&log.api[0].sent), "caller's body");
    if replay {
        // Judged, and reported: a refetch is under way or done, and the next request waits
        // for it. The caller reads the verdict (not through a proxy: the wire drops it).
        if !matches!(kind, BodyKind::IncomingProxy | BodyKind::AxumProxy) {
            let kind = outcome.as_ref().map(Outcome::kind);
            assert_eq!(kind, Some(OutcomeKind::CredentialRejected), "{outcome:?}");
        }
    } else {
        // Nothing looked at the answer: reporting the rejection is the caller's job.
        assert_eq!(log.get_token, 1, "no refetch without replay");
        assert_eq!(tokens.rejected(1).await.expect("refetch"), 2);
    }

    let next = request_json("next");
    let response = TokenAuthLayer::new(tokens.clone())
        .layer(protocol.client::<Full<Bytes>>())
        .oneshot(json_post(&url, Full::new(next.clone())))
        .await;
    let Answer { status, bytes, .. } = read(response).await;
    assert_eq!(status, StatusCode::OK, "next request: {}", text(&bytes));
    assert_eq!(code(&bytes), Some(1000), "next request: {}", text(&bytes));
    let log = stand_in.log();
    assert_eq!(log.get_token, 2, "getToken calls: one refetch");
    assert_eq!(
        log.bearers(),
        ["Bearer token-1", "Bearer token-2"],
        "API calls"
    );
    assert_eq!(log.api[1].body, next);
}

/// Sends one request with a body of type `B` through `layer` over a hyper-util client.
async fn send<B>(
    tokens: &TokenCredential,
    replay: bool,
    protocol: Protocol,
    url: &str,
    body: B,
) -> Answer
where
    B: Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let api = token_api(tokens, replay, protocol.client::<B>());
    read(api.oneshot(json_post(url, body)).await).await
}

// --- Proxies forwarding the body they received ---------------------------------------------------

/// A hyper server whose handler forwards each request, body `Incoming` as received, through
/// `api` to `upstream`.
struct IncomingProxy {
    base_url: String,
    accept: tokio::task::JoinHandle<()>,
}

impl IncomingProxy {
    async fn start(api: TokenApi<Incoming>, upstream: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (api, upstream) = (api.clone(), upstream.clone());
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    forward(api.clone(), &upstream, request)
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service),
                );
            }
        });
        Self { base_url, accept }
    }
}

impl Drop for IncomingProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// An axum server whose handler forwards each request, body `axum::body::Body` as received,
/// through `api` to `upstream`.
async fn axum_proxy(api: TokenApi<axum::body::Body>, upstream: String) -> Served {
    let handler = move |request: axum::extract::Request| {
        let forwarded = forward(api.clone(), &upstream, request);
        async move {
            match forwarded.await {
                Ok(response) => response.map(axum::body::Body::new),
                Err(err) => (StatusCode::BAD_GATEWAY, err.to_string()).into_response(),
            }
        }
    };
    Served::start(Router::new().route(API_PATH, any(handler))).await
}

/// Sends `request` to the same path on `upstream` through `api`.
fn forward<B>(
    api: TokenApi<B>,
    upstream: &str,
    mut request: Request<B>,
) -> impl Future<Output = Result<Response<UnsyncBoxBody<Bytes, BoxError>>, BoxError>> + use<B>
where
    B: Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
    let uri = format!("{upstream}{path}").parse();
    request.headers_mut().remove(HOST);
    async move {
        *request.uri_mut() = uri?;
        api.oneshot(request).await
    }
}

/// POSTs `body` to `url` with a plain hyper-util client (no layer).
async fn post_plain(url: &str, body: Bytes) -> Answer {
    let client: Http = Client::builder(TokioExecutor::new()).build_http();
    read(client.oneshot(json_post(url, Full::new(body))).await).await
}
