//! One `ConcurrencyLimit` shared by the token layer and its token source, when the API rejects
//! the token while more requests wait for a permit than there are permits.
//!
//! A semaphore hands a freed permit to the next waiter before that waiter is polled again, so a
//! request can hold a permit while the token it passed readiness with is rejected. Were it then
//! to wait for the refetch, the refetch (which needs a permit of the same limit) would never
//! start: every permit-holder would wait for it. The layer instead finishes the inner
//! service's readiness and lets the call give the permit back before the request waits: with
//! the limit right below the token layer, or with tower-http's `TraceLayer` or a `ClassifyLayer`
//! in between.

use std::time::Duration;

use bytes::Bytes;
use futures::future::join_all;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use tower::limit::ConcurrencyLimit;
use tower::util::BoxCloneSyncService;
use tower::{BoxError, Layer, ServiceExt};
use tower_api_auth::providers::akool;
use tower_api_auth::{ClassifyLayer, TokenAuthLayer};
use tower_http::trace::TraceLayer;

use crate::support::{Body, HttpClient, akool_server, client, get, quota_url};

/// What sits between the token layer and the limit it shares with its token source.
#[derive(Debug, Clone, Copy)]
enum Between {
    Nothing,
    Trace,
    Classify,
}

type Inner = BoxCloneSyncService<Request<Body>, Response<UnsyncBoxBody<Bytes, BoxError>>, BoxError>;

/// The shared limit, under `between`, boxed so that every variant is one type.
fn inner(between: Between, limit: ConcurrencyLimit<HttpClient>) -> Inner {
    fn boxed<S, B>(service: S) -> Inner
    where
        S: tower::Service<Request<Body>, Response = Response<B>> + Clone + Send + Sync + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError>,
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let service = service
            .map_response(|response: Response<B>| {
                response.map(|body| body.map_err(Into::into).boxed_unsync())
            })
            .map_err(Into::into);
        BoxCloneSyncService::new(service)
    }
    match between {
        Between::Nothing => boxed(limit),
        Between::Trace => boxed(TraceLayer::new_for_http().layer(limit)),
        Between::Classify => boxed(ClassifyLayer::new(akool::classifier()).layer(limit)),
    }
}

/// Far beyond what these requests take on loopback: reaching it means the stack deadlocked.
const DEADLOCK: Duration = Duration::from_secs(30);

#[tokio::test]
async fn a_rejection_with_more_waiters_than_permits_refetches_once_and_answers_everyone() {
    // (permits, requests at once)
    let cases = [(1, 2), (1, 4), (2, 8), (4, 16)].map(|case| (case, Between::Nothing));
    let others = [Between::Trace, Between::Classify].map(|between| ((1, 4), between));
    for ((permits, requests), between) in cases.into_iter().chain(others) {
        for replay in [true, false] {
            let name = format!(
                "{permits} permits, {requests} requests, replay {replay}, {between:?} between"
            );
            let server = akool_server().await;
            let limit = ConcurrencyLimit::new(client(), permits);
            let tokens = akool::client_credentials("client-id", "client-secret")
                .base_url(server.base_url())
                .build(limit.clone())
                .unwrap();
            let layer = TokenAuthLayer::new(tokens.clone());
            let send = |url: String, replay: bool| {
                let (layer, limit) = (layer.clone(), inner(between, limit.clone()));
                async move {
                    match replay {
                        true => layer
                            .layer(limit)
                            .oneshot(get(url))
                            .await
                            .map(|r| r.status()),
                        false => {
                            let attach = layer.without_replay().layer(limit);
                            attach.oneshot(get(url)).await.map(|r| r.status())
                        }
                    }
                }
            };
            let url = quota_url(&server);
            assert_eq!(
                send(url.clone(), true).await.unwrap(),
                StatusCode::OK,
                "{name}"
            );
            assert_eq!(server.token_request_count(), 1, "{name}");

            // The first request of the batch replays, so the rejection is noticed (a layer
            // without replay never reads the answer); the others wait behind it.
            server.expire_tokens();
            let all = join_all((0..requests).map(|i| send(url.clone(), i == 0 || replay)));
            let answers = tokio::time::timeout(DEADLOCK, all)
                .await
                .unwrap_or_else(|_| panic!("{name}: deadlocked"));
            for answer in answers {
                // Akool answers 200 either way: a replayed request with the new token, one sent
                // once with the old token with code 1101 in the body.
                let status = answer.unwrap_or_else(|err| panic!("{name}: {err}"));
                assert_eq!(status, StatusCode::OK, "{name}");
            }
            assert_eq!(server.token_request_count(), 2, "{name}: one refetch");
        }
    }
}
