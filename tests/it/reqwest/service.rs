//! The crate's layers around a `reqwest::Client` ([`ReqwestService`]), against the loopback
//! stand-ins of the four providers: each provider's flow, the token sources fetching through
//! reqwest, Akool's 1101 and Polyteia's 401 replayed once, token fetches counted server-side.

use std::convert::Infallible;

use crate::support::{json, scoped_key};

use bytes::Bytes;
use futures::stream;
use http::{Request, StatusCode};
use http_body::Frame;
use http_body_util::{Full, StreamBody};
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_api_auth::outcome::{Outcome, OutcomeKind};
use tower_api_auth::providers::{akkio, akool, erathos, polyteia};
use tower_api_auth::reqwest::ReqwestService;
use tower_api_auth::{AuthLayer, ServiceBuilderAuthExt, TokenAuthLayer};
use tower_api_auth_mock::{MockServer, Provider};

fn http() -> ReqwestService {
    ReqwestService::new(reqwest::Client::new())
}

fn outcome<B>(response: &http::Response<B>) -> &Outcome {
    response.extensions().get::<Outcome>().expect("classified")
}

#[tokio::test]
async fn akkio_key_goes_through_reqwest() {
    let (server, credential) = scoped_key(Provider::Akkio, akkio::api_key, "akkio-key").await;
    let client = ServiceBuilder::new()
        .layer(AuthLayer::new(credential))
        .service(http());

    let url = format!("{}/api/v1/models", server.base_url());
    let response = client
        .oneshot(Request::get(&url).body(reqwest::Body::default()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let arrived = &server.requests()[0];
    assert_eq!(arrived.headers["x-api-key"], "akkio-key");
}

#[tokio::test]
async fn erathos_key_goes_through_reqwest_and_a_wrong_one_is_classified() {
    let server = MockServer::start(Provider::Erathos).await.unwrap();
    server.accept_key("erathos-key");
    let url = format!("{}/developers/workspaces/ws1/jobs/", server.base_url());
    for (key, status, kind) in [
        ("erathos-key", StatusCode::OK, OutcomeKind::Success),
        (
            "wrong-key",
            StatusCode::UNAUTHORIZED,
            OutcomeKind::CredentialRejected,
        ),
    ] {
        let credential = erathos::api_key(key)
            .origin(server.base_url())
            .build()
            .unwrap();
        let client = ServiceBuilder::new()
            .classify(erathos::classifier())
            .auth(credential)
            .service(http());
        let response = client
            .oneshot(Request::get(&url).body(String::new()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), status);
        assert_eq!(outcome(&response).kind(), kind);
    }
    assert_eq!(
        server.requests()[0].headers["authorization"],
        "Api-Key erathos-key"
    );
}

#[tokio::test]
async fn polyteia_access_key_posts_json_through_reqwest() {
    let (server, credential) =
        scoped_key(Provider::Polyteia, polyteia::access_key, "pak-key").await;
    let client = ServiceBuilder::new()
        .layer(AuthLayer::new(credential))
        .service(http());
    let request = Request::post(format!("{}/api", server.base_url()))
        .body(reqwest::Body::from(
            r#"{"query":"list_solutions","params":{}}"#,
        ))
        .unwrap();
    let response = client.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(json(response).await.get("data").is_some());
}

#[tokio::test]
async fn polyteia_exchange_fetches_through_reqwest_and_a_401_is_replayed_once() {
    let server = MockServer::start(Provider::Polyteia).await.unwrap();
    server.accept_key("pak-key");
    let tokens = polyteia::key_exchange("pak-key")
        .base_url(server.base_url())
        .build(http())
        .unwrap();
    let client = ServiceBuilder::new()
        .layer(TokenAuthLayer::new(tokens.clone()))
        .service(http());
    let command = r#"{"query":"list_solutions","params":{}}"#;
    let request = || {
        Request::post(format!("{}/api", server.base_url()))
            .body(reqwest::Body::from(command))
            .unwrap()
    };

    let response = client.clone().oneshot(request()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(server.token_request_count(), 1);

    // The token expires upstream: a 401, one exchange, the POST (a reqwest body of bytes)
    // replayed once with its body.
    server.expire_tokens();
    let before = server.request_count();
    let response = client.clone().oneshot(request()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(server.token_request_count(), 2);
    let api_calls: Vec<_> = server.requests()[before..]
        .iter()
        .filter(|r| r.uri.path() == "/api")
        .cloned()
        .collect();
    assert_eq!(api_calls.len(), 2, "the rejected POST and its one replay");
    assert_eq!(&api_calls[1].body[..], command.as_bytes());
}

fn akool_tokens(server: &MockServer) -> tower_api_auth::TokenCredential {
    akool::client_credentials("client-id", "client-secret")
        .base_url(server.base_url())
        .build(http())
        .unwrap()
}

#[tokio::test]
async fn akool_get_token_through_reqwest_and_code_1101_is_replayed_once() {
    let server = MockServer::start(Provider::Akool).await.unwrap();
    server.accept_key("client-secret");
    let tokens = akool_tokens(&server);
    let client = ServiceBuilder::new()
        .layer(TokenAuthLayer::new(tokens.clone()))
        .service(http());
    let url = format!("{}/api/open/v3/faceswap/quota/info", server.base_url());

    // Concurrent callers on a cold cache: one getToken.
    let calls = (0..20).map(|_| {
        client
            .clone()
            .oneshot(Request::get(&url).body(reqwest::Body::default()).unwrap())
    });
    for response in futures::future::join_all(calls).await {
        assert!(outcome(&response.unwrap()).is_success());
    }
    assert_eq!(server.token_request_count(), 1);

    // Code 1101 in an HTTP 200: one refetch, one replay, a success.
    server.expire_tokens();
    let response = client
        .clone()
        .oneshot(Request::get(&url).body(reqwest::Body::default()).unwrap())
        .await
        .unwrap();
    assert!(outcome(&response).is_success());
    assert_eq!(json(response).await["code"], 1000);
    assert_eq!(server.token_request_count(), 2);
    assert_eq!(tokens.fetch_count(), 2);
}

#[tokio::test]
async fn akool_replays_every_body_a_reqwest_user_sends_that_can_be_sent_twice() {
    let server = MockServer::start(Provider::Akool).await.unwrap();
    server.accept_key("client-secret");
    // Tokens are expired back to back here: no rate limit on refetching after a rejection.
    let tokens = akool::client_credentials("client-id", "client-secret")
        .base_url(server.base_url())
        .token_builder(http())
        .rejection_refetch_interval(std::time::Duration::ZERO)
        .build()
        .unwrap();
    let client = ServiceBuilder::new()
        .layer(TokenAuthLayer::new(tokens.clone()))
        .service(http());
    let url = format!(
        "{}/api/open/v3/content/video/createbytranslate",
        server.base_url()
    );
    let payload = br#"{"url":"https://example.com/v.mp4","language":"fr"}"#;

    async fn send<B>(
        client: &(
             impl Service<
            Request<B>,
            Response = http::Response<tower_api_auth::body::ResponseBody<reqwest::Body>>,
            Error = tower::BoxError,
        > + Clone
         ),
        server: &MockServer,
        url: &str,
        body: B,
    ) -> (Outcome, usize) {
        server.expire_tokens();
        let before = server.requests().len();
        let request = Request::post(url).body(body).unwrap();
        let response = client.clone().oneshot(request).await.unwrap();
        let sent = server.requests()[before..]
            .iter()
            .filter(|r| r.uri.path().ends_with("createbytranslate"))
            .count();
        (outcome(&response).clone(), sent)
    }

    // A token to expire first.
    tokens.fetch().await.unwrap();
    // Bytes in a reqwest body: copied.
    let (outcome_, sent) = send(&client, &server, &url, reqwest::Body::from(&payload[..])).await;
    assert_eq!((outcome_.kind(), sent), (OutcomeKind::Success, 2));
    // A `Full` (wrapped by the adapter on the way out): copied before that.
    let (outcome_, sent) = send(
        &client,
        &server,
        &url,
        Full::new(Bytes::from_static(payload)),
    )
    .await;
    assert_eq!((outcome_.kind(), sent), (OutcomeKind::Success, 2));
    // A streamed reqwest body of known size: read into memory, then replayed.
    let streamed = reqwest::Body::wrap(Full::new(Bytes::from_static(payload)));
    let (outcome_, sent) = send(&client, &server, &url, streamed).await;
    assert_eq!((outcome_.kind(), sent), (OutcomeKind::Success, 2));
    for request in server
        .requests()
        .iter()
        .filter(|r| r.uri.path().ends_with("createbytranslate"))
    {
        assert_eq!(
            &request.body[..],
            payload,
            "every attempt carried the whole body"
        );
    }

    // A stream of unknown size is sent once: the 1101 comes back (classified), and the token is
    // refetched for the next request.
    let fetches = server.token_request_count();
    let chunks = [Ok::<_, Infallible>(Frame::data(Bytes::from_static(
        payload,
    )))];
    let unsized_body = reqwest::Body::wrap(StreamBody::new(stream::iter(chunks)));
    let (outcome_, sent) = send(&client, &server, &url, unsized_body).await;
    assert_eq!(
        (outcome_.kind(), outcome_.code(), sent),
        (OutcomeKind::CredentialRejected, Some(1101), 1)
    );
    let request = Request::post(&url).body(reqwest::Body::from("{}")).unwrap();
    let response = client.clone().oneshot(request).await.unwrap();
    assert!(outcome(&response).is_success());
    assert_eq!(server.token_request_count(), fetches + 1);
}

/// reqwest follows redirects below the layers and keeps `X-API-Key` across hosts; under
/// `keep_credential_home` a redirect within the origin is followed with the key, and one to
/// another origin is not followed at all.
#[tokio::test]
async fn under_keep_credential_home_no_redirect_carries_a_key_to_another_origin() {
    let akkio_api = MockServer::start(Provider::Akkio).await.unwrap();
    akkio_api.accept_key("akkio-key");
    let elsewhere = MockServer::start(Provider::Erathos).await.unwrap();
    let credential = akkio::api_key("akkio-key")
        .origin(akkio_api.base_url())
        .build()
        .unwrap();
    let reqwest = reqwest::Client::builder()
        .redirect(tower_api_auth::reqwest::keep_credential_home())
        .build()
        .unwrap();
    let client = ServiceBuilder::new()
        .layer(AuthLayer::new(credential))
        .service(ReqwestService::new(reqwest));
    let via_redirect = |to: String| {
        let url = format!("{}/_mock/redirect?to={to}", akkio_api.base_url());
        Request::get(url).body(reqwest::Body::default()).unwrap()
    };

    // Within the origin: followed, with the key.
    let home = format!("{}/api/v1/models", akkio_api.base_url());
    let response = client.clone().oneshot(via_redirect(home)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let arrived = akkio_api.requests();
    assert_eq!(arrived.len(), 2);
    assert!(
        arrived
            .iter()
            .all(|r| r.headers["x-api-key"] == "akkio-key")
    );

    // To another origin: not followed; the 307 is the answer, and nothing reached it.
    let away = format!("{}/workspaces", elsewhere.base_url());
    let response = client.oneshot(via_redirect(away)).await.unwrap();
    assert_eq!(response.status(), StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(elsewhere.request_count(), 0);
}
