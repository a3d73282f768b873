//! Static credentials on the wire: each provider's preset, driven through a real hyper-util
//! client against the provider's loopback stand-in.

use crate::support;

use http::StatusCode;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use tower::{Layer, Service, ServiceBuilder, ServiceExt};
use tower_api_auth::providers::{akkio, akool, erathos, polyteia};
use tower_api_auth::{AuthLayer, Credential};
use tower_api_auth_mock::{MockServer, Provider};

use support::{client, get, json, post_json, scoped_key};

#[tokio::test]
async fn akkio_key_arrives_as_x_api_key_and_wrong_keys_get_401() {
    let (server, credential) = scoped_key(Provider::Akkio, akkio::api_key, "akkio-key-1").await;
    let mut api = ServiceBuilder::new()
        .layer(AuthLayer::new(credential))
        .service(client());

    let url = format!("{}/api/v1/models", server.base_url());
    let response = api.ready().await.unwrap().call(get(&url)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let restricted = format!("{}/api/v1/restricted/models", server.base_url());
    let response = api
        .ready()
        .await
        .unwrap()
        .call(get(&restricted))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    let arrived = &server.requests()[0].headers;
    assert_eq!(
        arrived.get_all("x-api-key").iter().collect::<Vec<_>>(),
        ["akkio-key-1"]
    );

    let wrong = akkio::api_key("not-the-key")
        .origin(server.base_url())
        .build()
        .unwrap();
    let response = AuthLayer::new(wrong)
        .layer(client())
        .oneshot(get(&url))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn polyteia_gets_bearer_and_a_json_content_type_but_keeps_the_callers_own() {
    let (server, credential) = scoped_key(Provider::Polyteia, polyteia::access_key, "pak_1").await;
    let mut api = AuthLayer::new(credential).layer(client());
    let url = format!("{}/api", server.base_url());

    let response = api
        .ready()
        .await
        .unwrap()
        .call(post_json(&url, r#"{"query":"list_datasets","params":{}}"#))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json(response).await["data"]["name"], "list_datasets");

    let mut own = post_json(&url, r#"{"query":"list_datasets"}"#);
    own.headers_mut().insert(
        CONTENT_TYPE,
        "application/json; charset=utf-8".parse().unwrap(),
    );
    api.ready().await.unwrap().call(own).await.unwrap();

    let mut forbidden = post_json(&url, r#"{"query":"restricted"}"#);
    forbidden
        .headers_mut()
        .insert(CONTENT_TYPE, "text/plain".parse().unwrap());
    let response = api.ready().await.unwrap().call(forbidden).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let requests = server.requests();
    let header = |i: usize, name| requests[i].headers.get_all(name).iter().collect::<Vec<_>>();
    assert_eq!(header(0, AUTHORIZATION), ["Bearer pak_1"]);
    assert_eq!(header(0, CONTENT_TYPE), ["application/json"]);
    assert_eq!(header(1, CONTENT_TYPE), ["application/json; charset=utf-8"]);
    assert_eq!(header(2, CONTENT_TYPE), ["text/plain"]);
}

#[tokio::test]
async fn erathos_gets_api_key_scheme_and_an_existing_authorization_is_replaced() {
    let (server, credential) = scoped_key(Provider::Erathos, erathos::api_key, "erathos-key").await;
    let url = format!("{}/developers/workspaces/ws1/jobs/", server.base_url());
    let mut request = get(&url);
    request
        .headers_mut()
        .append(AUTHORIZATION, "Bearer stale-1".parse().unwrap());
    request
        .headers_mut()
        .append(AUTHORIZATION, "Bearer stale-2".parse().unwrap());

    let response = AuthLayer::new(credential)
        .layer(client())
        .oneshot(request)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let arrived = &server.requests()[0].headers;
    assert_eq!(
        arrived.get_all(AUTHORIZATION).iter().collect::<Vec<_>>(),
        ["Api-Key erathos-key"]
    );
}

#[tokio::test]
async fn akool_preset_strips_authorization_so_a_stale_token_cannot_shadow_the_key() {
    let server = MockServer::start(Provider::Akool).await.unwrap();
    server.accept_key("akool-key");
    let url = format!("{}/api/open/v3/faceswap/quota/info", server.base_url());
    let with_stale_token = || {
        let mut request = get(&url);
        request
            .headers_mut()
            .insert(AUTHORIZATION, "Bearer expired-token".parse().unwrap());
        request
    };

    let preset = akool::api_key("akool-key")
        .origin(server.base_url())
        .build()
        .unwrap();
    let response = AuthLayer::new(preset)
        .layer(client())
        .oneshot(with_stale_token())
        .await
        .unwrap();
    assert_eq!(json(response).await["code"], 1000);
    let arrived = &server.requests()[0].headers;
    assert!(arrived.get(AUTHORIZATION).is_none());
    assert_eq!(arrived.get("x-api-key").unwrap(), "akool-key");

    // The same key without the preset's stripping: Akool uses the stale token and says 1101.
    let naive = Credential::header("x-api-key", "akool-key")
        .origin(server.base_url())
        .build()
        .unwrap();
    let response = AuthLayer::new(naive)
        .layer(client())
        .oneshot(with_stale_token())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json(response).await["code"], 1101);
}

#[tokio::test]
async fn akool_reports_missing_and_banned_keys_in_the_body() {
    let server = MockServer::start(Provider::Akool).await.unwrap();
    server.accept_key("akool-key");
    server.ban_key("banned-key");
    let url = format!("{}/api/open/v3/content/video/list", server.base_url());

    let response = client().oneshot(get(&url)).await.unwrap();
    assert_eq!(json(response).await["code"], 1102);

    let banned = akool::api_key("banned-key")
        .origin(server.base_url())
        .build()
        .unwrap();
    let response = AuthLayer::new(banned)
        .layer(client())
        .oneshot(get(&url))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json(response).await["code"], 1200);
}
