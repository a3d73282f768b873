//! gRPC is HTTP: a tonic client channel with the crate's client layers, to a tonic server behind
//! `ValidateCredentialLayer`, on loopback.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tonic::Code;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Endpoint, Server};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tower::ServiceBuilder;
use tower_api_auth::server::{KeyRecord, MemoryKeyStore, Principal, RejectionResponse};
use tower_api_auth::{
    AuthLayer, Credential, Placement, Token, TokenAuthLayer, TokenCredential,
    ValidateCredentialLayer,
};

/// A tonic server with the standard health service, accepting Bearer keys from `keys`.
async fn grpc_server(keys: MemoryKeyStore) -> String {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let auth = ValidateCredentialLayer::new(Placement::bearer(), keys)
        .reject_with(RejectionResponse::grpc());
    tokio::spawn(async move {
        let _reporter = reporter;
        Server::builder()
            .layer(auth)
            .add_service(health)
            .serve_with_incoming(TcpIncoming::from(listener))
            .await
            .unwrap();
    });
    url
}

async fn channel(url: &str) -> Channel {
    Endpoint::from_shared(url.to_owned())
        .unwrap()
        .connect()
        .await
        .unwrap()
}

fn check() -> HealthCheckRequest {
    HealthCheckRequest {
        service: String::new(),
    }
}

#[tokio::test]
async fn a_bearer_credential_on_a_tonic_channel() {
    let keys = MemoryKeyStore::new();
    keys.insert("grpc-key", KeyRecord::new(Principal::new("grpc-client")));
    let url = grpc_server(keys.clone()).await;
    let channel = channel(&url).await;

    let credential = Credential::bearer("grpc-key").origin(&url).build().unwrap();
    let stack = ServiceBuilder::new()
        .layer(AuthLayer::new(credential))
        .service(channel.clone());
    // tonic sends the origin with each request only when told it: with it, the credential's
    // origin scoping applies as for any HTTP request.
    let mut client = HealthClient::with_origin(stack, url.parse().unwrap());
    let answer = client.check(check()).await.unwrap().into_inner();
    assert_eq!(answer.status(), ServingStatus::Serving);

    // Without a key, and with a wrong one: gRPC's own status, from the server layer.
    let status = HealthClient::new(channel.clone())
        .check(check())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(status.message(), "no credential was presented");

    keys.revoke("grpc-key");
    let status = client.check(check()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(status.message(), "the credential is not valid");
}

#[tokio::test]
async fn a_token_source_on_a_tonic_channel_fetches_once() {
    let keys = MemoryKeyStore::new();
    let url = grpc_server(keys.clone()).await;
    let fetches = Arc::new(AtomicUsize::new(0));
    let source = {
        let (keys, fetches) = (keys.clone(), Arc::clone(&fetches));
        move || {
            let n = fetches.fetch_add(1, Ordering::SeqCst) + 1;
            let token = format!("grpc-token-{n}");
            keys.insert(
                token.as_str(),
                KeyRecord::new(Principal::new("grpc-client")),
            );
            async move { Ok::<_, std::convert::Infallible>(Token::new(token)) }
        }
    };
    let tokens = TokenCredential::builder(source)
        .origin(&url)
        .build()
        .unwrap();
    let stack = ServiceBuilder::new()
        .layer(TokenAuthLayer::new(tokens.clone()))
        .service(channel(&url).await);
    let client = HealthClient::with_origin(stack, url.parse().unwrap());

    let calls = (0..50).map(|_| {
        let mut client = client.clone();
        async move { client.check(check()).await }
    });
    for answer in futures::future::join_all(calls).await {
        assert_eq!(
            answer.unwrap().into_inner().status(),
            ServingStatus::Serving
        );
    }
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
    assert_eq!(tokens.fetch_count(), 1);
}
