//! A credential goes only to the origins it is scoped to, redirects included.

use crate::support;

use http::StatusCode;
use tower::{Layer, ServiceBuilder, ServiceExt};
use tower_api_auth::providers::akkio;
use tower_api_auth::{AuthLayer, Credential, CredentialError, KeepCredentialHome};
use tower_api_auth_mock::{MockServer, Provider};
use tower_http::follow_redirect::FollowRedirectLayer;

use support::{client, get};

#[tokio::test]
async fn only_the_scoped_origin_sees_the_key() {
    let scoped = MockServer::start(Provider::Akkio).await.unwrap();
    let other = MockServer::start(Provider::Akkio).await.unwrap();
    scoped.accept_key("akkio-key");
    other.accept_key("akkio-key");
    let credential = akkio::api_key("akkio-key")
        .origin(scoped.base_url())
        .build()
        .unwrap();
    let api = AuthLayer::new(credential).layer(client());

    let response = api
        .clone()
        .oneshot(get(format!("{}/api/v1/models", scoped.base_url())))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = api
        .oneshot(get(format!("{}/api/v1/models", other.base_url())))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    assert_eq!(scoped.requests()[0].headers["x-api-key"], "akkio-key");
    assert!(!other.requests()[0].headers.contains_key("x-api-key"));
}

/// An `X-API-Key` never follows a 307 to another origin, whichever side of the auth layer the
/// redirects are followed on. tower-http's own `FilterCredentials` strips `Authorization` and
/// cookies only, so the last row shows what `KeepCredentialHome` is for.
#[tokio::test]
async fn a_redirect_to_another_origin_carries_no_key_in_either_order() {
    type Client = support::HttpClient;
    type Api = tower::util::BoxCloneService<
        http::Request<support::Body>,
        http::Response<hyper::body::Incoming>,
        tower::BoxError,
    >;
    let outside = |credential: Credential, http: Client| -> Api {
        ServiceBuilder::new()
            .layer(FollowRedirectLayer::new())
            .layer(AuthLayer::new(credential))
            .service(http)
            .map_err(tower::BoxError::from)
            .boxed_clone()
    };
    let inside_kept_home = |credential: Credential, http: Client| -> Api {
        let policy = KeepCredentialHome::new(credential.placement());
        ServiceBuilder::new()
            .layer(AuthLayer::new(credential))
            .layer(FollowRedirectLayer::with_policy(policy))
            .service(http)
            .map_err(tower::BoxError::from)
            .boxed_clone()
    };
    let inside_standard = |credential: Credential, http: Client| -> Api {
        ServiceBuilder::new()
            .layer(AuthLayer::new(credential))
            .layer(FollowRedirectLayer::new())
            .service(http)
            .map_err(tower::BoxError::from)
            .boxed_clone()
    };
    type Build = dyn Fn(Credential, Client) -> Api;
    let rows: [(&str, &Build, bool); 3] = [
        ("FollowRedirect outside AuthLayer", &outside, false),
        (
            "FollowRedirect(KeepCredentialHome) inside",
            &inside_kept_home,
            false,
        ),
        (
            "FollowRedirect(standard policy) inside: leaks",
            &inside_standard,
            true,
        ),
    ];
    for (row, build, leaks) in rows {
        let scoped = MockServer::start(Provider::Akkio).await.unwrap();
        let elsewhere = MockServer::start(Provider::Akkio).await.unwrap();
        scoped.accept_key("akkio-key");
        let credential = akkio::api_key("akkio-key")
            .origin(scoped.base_url())
            .build()
            .unwrap();
        let api = build(credential, client());

        let target = format!("{}/api/v1/models", elsewhere.base_url());
        let url = format!("{}/_mock/redirect?to={target}", scoped.base_url());
        let response = api.oneshot(get(url)).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{row}");

        assert_eq!(
            scoped.requests()[0].headers["x-api-key"],
            "akkio-key",
            "{row}"
        );
        let hop = &elsewhere.requests()[0];
        assert_eq!(hop.uri.path(), "/api/v1/models", "{row}");
        assert_eq!(hop.headers.contains_key("x-api-key"), leaks, "{row}");
    }
}

#[tokio::test]
async fn an_unscoped_credential_must_be_asked_for() {
    let err = Credential::bearer("token").build().unwrap_err();
    assert_eq!(err, CredentialError::NoOrigin);

    let server = MockServer::start(Provider::Polyteia).await.unwrap();
    let anywhere = Credential::bearer("token").any_origin().build().unwrap();
    assert!(anywhere.origins().is_none());
    let response = AuthLayer::new(anywhere)
        .layer(client())
        .oneshot(get(format!("{}/api", server.base_url())))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        server.requests()[0].headers["authorization"],
        "Bearer token"
    );
}

#[test]
fn bad_origins_are_typed_errors() {
    for url in [
        "api.akkio.com",
        "ftp://api.akkio.com",
        "https://k:secret@api.akkio.com",
    ] {
        let err = akkio::api_key("key").origin(url).build().unwrap_err();
        assert!(
            matches!(err, CredentialError::InvalidOrigin { .. }),
            "{url}"
        );
        assert!(!err.to_string().contains("secret"), "{err}");
    }
}
