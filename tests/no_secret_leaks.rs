//! No secret reaches `Debug`, `Display`, an error message or a `tracing` event.

mod support;

use tower::{ServiceBuilder, ServiceExt};
use tower_api_auth::mock::{MockServer, Provider};
use tower_api_auth::providers::{akkio, akool, erathos, polyteia};
use tower_api_auth::{Auth, AuthLayer, Credential, Placement, Secret};
use tower_http::trace::{DefaultMakeSpan, DefaultOnRequest, TraceLayer};
use tracing::Level;

use support::{CapturedLogs, client, get};

const SECRETS: [&str; 5] = [
    "akkio-SECRET-1",
    "pak-SECRET-2",
    "erathos-SECRET-3",
    "akool-SECRET-4",
    "rotated-SECRET-5",
];

fn assert_clean(what: &str, text: &str) {
    for secret in SECRETS {
        assert!(!text.contains(secret), "{what} shows a secret: {text}");
    }
    assert!(
        !text.contains("SECRET"),
        "{what} shows part of a secret: {text}"
    );
}

#[test]
fn debug_and_display_of_every_public_type_are_redacted() {
    let builders = [
        akkio::api_key(SECRETS[0]),
        polyteia::access_key(SECRETS[1]),
        erathos::api_key(SECRETS[2]),
        akool::api_key(SECRETS[3]),
    ];
    for builder in builders {
        assert_clean("CredentialBuilder", &format!("{builder:?}"));
        let credential = builder.build().unwrap();
        assert_clean("Credential", &format!("{credential:?} {credential:#?}"));
        let layer = AuthLayer::new(credential.clone());
        assert_clean("AuthLayer", &format!("{layer:?}"));
        let service = Auth::new(
            tower::service_fn(|()| async { Ok::<_, ()>(()) }),
            credential,
        );
        assert_clean("Auth", &format!("{service:?}"));
    }
    let secret = Secret::new(SECRETS[4]);
    assert_clean("Secret", &format!("{secret:?} {secret}"));
    let value = Placement::bearer().header_value(&secret).unwrap();
    assert_clean("HeaderValue", &format!("{value:?}"));
}

#[test]
fn errors_name_the_problem_not_the_value() {
    // Secrets passed where a header name, a scheme or an origin belongs are not echoed either.
    let errors = [
        Credential::bearer("akkio-SECRET-1 ").any_origin().build(),
        Credential::bearer("pak-SECRET-2\r\n").any_origin().build(),
        Credential::bearer("erathos-SECRET-3é").any_origin().build(),
        Credential::header("akool-SECRET-4 ", "v")
            .any_origin()
            .build(),
        Credential::authorization("rotated-SECRET-5 ", "v")
            .any_origin()
            .build(),
        Credential::bearer("v")
            .origin("https://u:rotated-SECRET-5@host")
            .build(),
        Credential::bearer("v").origin("rotated-SECRET-5").build(),
    ];
    for err in errors {
        let err = err.unwrap_err();
        assert_clean("error", &format!("{err} {err:?}"));
    }
}

#[tokio::test(flavor = "current_thread")]
async fn tracing_at_trace_level_never_shows_a_secret() {
    let logs = CapturedLogs::default();
    let _guard = logs.install();

    let server = MockServer::start(Provider::Akkio).await.unwrap();
    let other = MockServer::start(Provider::Akkio).await.unwrap();
    server.accept_key(SECRETS[0]);
    let credential = akkio::api_key(SECRETS[0])
        .origin(server.base_url())
        .build()
        .unwrap();
    // tower-http's trace layer inside ours, printing every header it sees.
    let api = ServiceBuilder::new()
        .layer(AuthLayer::new(credential.clone()))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(
                    DefaultMakeSpan::new()
                        .level(Level::INFO)
                        .include_headers(true),
                )
                .on_request(DefaultOnRequest::new().level(Level::INFO)),
        )
        .service(client());

    let ok = api
        .clone()
        .oneshot(get(format!("{}/api/v1/models", server.base_url())));
    assert!(ok.await.unwrap().status().is_success());
    let elsewhere = api
        .clone()
        .oneshot(get(format!("{}/api/v1/models", other.base_url())));
    assert_eq!(elsewhere.await.unwrap().status(), 401);
    credential.rotate(SECRETS[4]).unwrap();
    credential.rotate("bad SECRET").unwrap_err();
    let rotated = api.oneshot(get(format!("{}/api/v1/models", server.base_url())));
    assert_eq!(rotated.await.unwrap().status(), 401);

    let text = logs.text();
    assert!(
        text.contains("\"x-api-key\": Sensitive"),
        "the trace layer saw the header: {text}"
    );
    assert!(text.contains("credential not attached"), "{text}");
    assert!(text.contains("credential rotated"), "{text}");
    assert_clean("tracing output", &text);
}
