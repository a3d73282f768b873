//! The worker side of the protocol: what a re-invoked process runs.

use super::*;

/// The name libtest knows [`fleet_worker`] by, for `--exact`: taken where it is defined, so it
/// follows the function if it moves.
pub(super) fn test_name() -> String {
    support::test_path(module_path!(), "fleet_worker")
}

/// The worker: not a test on its own (it returns at once unless re-invoked by the fleet tests).
#[test]
fn fleet_worker() {
    if std::env::var_os(WORKER_ENV).is_none() {
        return;
    }
    // Process-wide, and safe so: the worker is the only test of its process.
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(worker());
}

async fn worker() {
    use tower::{Service, ServiceExt};
    use tower_api_auth::TokenAuthLayer;
    use tower_api_auth::providers::akool;
    use tower_api_auth::token::store::TokenStore;

    let env = |name: &str| std::env::var(name).unwrap();
    let base_url = env("FLEET_BASE_URL");
    let phases: usize = env("FLEET_PHASES").parse().unwrap();
    let requests: usize = env("FLEET_REQUESTS").parse().unwrap();
    let store = env("FLEET_STORE");
    let store = match store.split_once(':').unwrap_or((&store, "")) {
        ("file", dir) => Some(TokenStore::file(dir)),
        ("redis", url) => Some(TokenStore::redis(url).unwrap()),
        ("none", _) => None,
        (other, _) => panic!("unknown store {other}"),
    }
    .map(|store| store.wait_bound(BOUND));

    let http = support::client();
    let mut tokens = akool::client_credentials("client-id", env("FLEET_SECRET"))
        .base_url(&base_url)
        .token_builder(http.clone())
        // The test expires tokens phase after phase, seconds apart: each rejection refetches.
        .rejection_refetch_interval(Duration::ZERO);
    if let Some(store) = store {
        tokens = tokens.store(store);
    }
    let tokens = tokens.build().unwrap();
    let api = tower::ServiceBuilder::new()
        .layer(TokenAuthLayer::new(tokens))
        .service(http);
    let url = format!("{base_url}/api/open/v3/content/video/createbytalkingphoto");
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    for phase in 1..=phases {
        if phase > 1 {
            stdin.next_line().await.unwrap().expect("the parent's go");
        }
        let calls = (0..requests).map(|i| {
            let mut api = api.clone();
            let request = support::post_json(&url, &format!(r#"{{"n":{i}}}"#));
            async move {
                let started = std::time::Instant::now();
                let response = api.ready().await.unwrap().call(request).await;
                let code = match response {
                    Ok(response) => support::json(response).await["code"].as_i64(),
                    Err(_) => None,
                };
                (code == Some(1000), started.elapsed())
            }
        });
        let results: Vec<_> = futures::stream::iter(calls)
            .buffer_unordered(32)
            .collect()
            .await;
        let ok = results.iter().filter(|(ok, _)| *ok).count();
        let max_ms = results
            .iter()
            .map(|(_, took)| took.as_millis())
            .max()
            .unwrap_or(0);
        println!(
            "FLEET phase={phase} ok={ok} failed={} max_ms={max_ms}",
            results.len() - ok
        );
    }
}
