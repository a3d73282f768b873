//! An axum API that checks API keys with `ValidateCredentialLayer`: public, authenticated and
//! scope-protected routes, the caller's `Principal` handed to handlers, keys revoked live.
//!
//! ```sh
//! cargo run --example axum_server             # serves on loopback, calls itself, exits
//! cargo run --example axum_server -- --serve  # keeps serving on 127.0.0.1:3000 for curl
//!
//! # keys from a database: `keys.db` (SQLite), or PostgreSQL when DATABASE_URL is set
//! cargo run --example axum_server -- --database            # creates two keys, calls, revokes, exits
//! cargo run --example keys -- create alice --scope jobs:read
//! cargo run --example axum_server -- --serve --database    # serves the keys `keys` manages
//! ```
//!
//! With `--serve`, try:
//!
//! ```sh
//! curl -i localhost:3000/health
//! curl -i localhost:3000/v1/me -H 'Authorization: Bearer reader-key-0001'
//! curl -i localhost:3000/v1/jobs -H 'X-API-Key: reader-key-0001'
//! curl -i -X POST localhost:3000/v1/jobs -H 'X-API-Key: reader-key-0001'   # 403
//! curl -i -X POST localhost:3000/v1/jobs -H 'X-API-Key: writer-key-0002'
//! curl -i localhost:3000/v1/me -H 'Authorization: Bearer wrong'            # 401
//! ```

#[path = "shared/jobs_api.rs"]
mod jobs_api;
#[path = "shared/key_database.rs"]
mod key_database;

use std::error::Error;

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_api_auth::server::sql::{KeyDatabase, NewKey, SqlKeyStore};
use tower_api_auth::{AuthLayer, Credential, Placement, ValidateCredentialLayer};

type Result<T = (), E = Box<dyn Error + Send + Sync>> = std::result::Result<T, E>;

#[tokio::main]
async fn main() -> Result {
    tracing_subscriber::fmt()
        .with_env_filter("info")
        .with_target(false)
        .with_writer(std::io::stderr)
        .init();

    let serve = std::env::args().any(|arg| arg == "--serve");
    let from_database = std::env::args().any(|arg| arg == "--database");
    let listener = TcpListener::bind(if serve {
        "127.0.0.1:3000"
    } else {
        "127.0.0.1:0"
    })
    .await?;
    let base = format!("http://{}", listener.local_addr()?);

    if from_database {
        return with_database(listener, base, serve).await;
    }

    let keys = jobs_api::demo_keys();
    let app = jobs_api::app(keys.clone());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    if serve {
        println!("serving on {base}; see the example's docs for curl commands");
        return Ok(server.await??);
    }

    println!("serving on {base}, calling it:");
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let calls: [(Method, &str, Option<&str>); 7] = [
        (Method::GET, "/health", None),
        (Method::GET, "/v1/me", None),
        (Method::GET, "/v1/me", Some("wrong-key")),
        (Method::GET, "/v1/me", Some("reader-key-0001")),
        (Method::GET, "/v1/jobs", Some("reader-key-0001")),
        (Method::POST, "/v1/jobs", Some("reader-key-0001")),
        (Method::POST, "/v1/jobs", Some("writer-key-0002")),
    ];
    for (method, path, key) in calls {
        call(&client, &base, method, path, key).await?;
    }

    println!("revoking reader-key-0001, then calling again:");
    keys.revoke("reader-key-0001");
    call(
        &client,
        &base,
        Method::GET,
        "/v1/me",
        Some("reader-key-0001"),
    )
    .await?;
    server.abort();
    Ok(())
}

/// The same API with its keys in a database (`keys.db`, or `DATABASE_URL`): the snapshot is
/// kept current by the store, so keys created or revoked with `cargo run --example keys` are
/// seen within a second. Without `--serve`, creates a reader and a writer key, calls, revokes.
async fn with_database(listener: TcpListener, base: String, serve: bool) -> Result {
    let database = KeyDatabase::connect(&key_database::url(), key_database::format()?).await?;
    let store = SqlKeyStore::open(database.clone()).await?;
    let auth = ValidateCredentialLayer::new(Placement::bearer(), store.clone())
        .key_format(database.format().clone());
    let app = jobs_api::app_with(auth);
    if serve {
        println!(
            "serving on {base} with the {} keys of {}; manage them with `cargo run --example keys`",
            store.len(),
            key_database::url()
        );
        // On Ctrl-C: finish the requests under way, then write the keys' last use (written
        // once a minute otherwise), so `keys list` shows it.
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
        let written = store.flush_usage().await?;
        println!("stopped; recorded the last use of {written} keys");
        database.close().await;
        return Ok(());
    }
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let reader = NewKey::new("svc-dashboard")
        .organization("acme")
        .scopes(["jobs:read"]);
    let writer = reader.clone().scopes(["jobs:write"]);
    let (reader, writer) = (
        database.create(reader).await?,
        database.create(writer).await?,
    );
    store.refresh().await?;
    println!(
        "created keys {} and {}; serving on {base}, calling it:",
        reader.info().id(),
        writer.info().id()
    );
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let (reader_key, writer_key) = (reader.key().expose(), writer.key().expose());
    let calls: [(Method, &str, Option<&str>); 4] = [
        (Method::GET, "/v1/me", Some(reader_key)),
        (Method::POST, "/v1/jobs", Some(reader_key)),
        (Method::POST, "/v1/jobs", Some(writer_key)),
        (Method::GET, "/v1/me", Some("acme_live_guessed")),
    ];
    for (method, path, key) in calls {
        call(&client, &base, method, path, key).await?;
    }
    println!("revoking {}, then calling again:", reader.info().id());
    database.revoke(reader.info().id()).await?;
    store.refresh().await?;
    call(&client, &base, Method::GET, "/v1/me", Some(reader_key)).await?;
    server.abort();
    database.close().await;
    Ok(())
}

/// Calls `path` with `key` as a Bearer credential (through the crate's client layer) and
/// prints the status and body.
async fn call<C>(client: &C, base: &str, method: Method, path: &str, key: Option<&str>) -> Result
where
    C: Service<Request<Full<Bytes>>, Response = http::Response<hyper::body::Incoming>> + Clone,
    C::Error: Into<Box<dyn Error + Send + Sync>>,
{
    let request = Request::builder()
        .method(method.clone())
        .uri(format!("{base}{path}"))
        .body(Full::default())?;
    let response = match key {
        Some(key) => {
            let credential = Credential::bearer(key).origin(base).build()?;
            let api = ServiceBuilder::new()
                .layer(AuthLayer::new(credential))
                .service(client.clone());
            api.oneshot(request).await.map_err(Into::into)?
        }
        None => client.clone().oneshot(request).await.map_err(Into::into)?,
    };
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    let shown = match key {
        Some(key) => format!("{} chars", key.len()),
        None => "no key".to_owned(),
    };
    println!(
        "  {:<4} {path:<9} ({shown:<9}) -> {status} {}",
        method.as_str(),
        String::from_utf8_lossy(&body)
    );
    Ok(())
}
