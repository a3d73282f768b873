//! Polyteia through the crate's layers: `Authorization: Bearer <personal access key>` and a JSON
//! content type on every request, responses classified.
//!
//! Against the real API when `POLYTEIA_ACCESS_KEY` is set, against a loopback stand-in
//! otherwise (so it runs offline as it is):
//!
//! ```sh
//! cargo run --example polyteia                                   # loopback stand-in
//! POLYTEIA_ACCESS_KEY=.. cargo run --example polyteia            # https://app.polyteia.com
//! POLYTEIA_ACCESS_KEY=.. POLYTEIA_EXCHANGE=1 cargo run --example polyteia   # key exchange
//! POLYTEIA_BASE_URL=http://127.0.0.1:8080 POLYTEIA_ACCESS_KEY=.. cargo run --example polyteia
//! ```
//!
//! It posts one query to `{base}/api` (`{"query": "list_solutions"}`; `POLYTEIA_QUERY` for
//! another), with the access key itself or, with `POLYTEIA_EXCHANGE=1`, with a short-lived token
//! from the key exchange. It prints the classified outcome (401 invalid key, 403 no permission,
//! ...) and exits non-zero when the call fails. It never prints the key or the token.

#[path = "shared/live.rs"]
mod live;

use std::process::ExitCode;

use http::Request;
use tower::{BoxError, ServiceBuilder};
use tower_api_auth::ServiceBuilderAuthExt;
use tower_api_auth::outcome::Outcome;
use tower_api_auth::providers::polyteia;
use tower_api_auth_mock::Provider;

fn main() -> ExitCode {
    live::main(run)
}

async fn run() -> Result<Outcome, BoxError> {
    let (key, demo) = (live::var("POLYTEIA_ACCESS_KEY"), "pak-demo-key");
    let api = live::Api::choose(Provider::Polyteia, key, demo.into(), demo).await?;
    let (key, base_url) = (api.credentials.as_str(), &api.base_url);
    let query = live::var("POLYTEIA_QUERY").unwrap_or_else(|| "list_solutions".to_owned());
    let command = serde_json::json!({ "query": query, "params": {} }).to_string();
    let request = Request::post(format!("{base_url}/api")).body(command.into())?;
    let http = live::http_client();
    let classify = ServiceBuilder::new().classify(polyteia::classifier());

    let (outcome, body) = if live::var("POLYTEIA_EXCHANGE").is_some() {
        let tokens = polyteia::key_exchange(key)
            .base_url(base_url)
            .build(http.clone())?;
        let client = classify.token_auth(tokens.clone()).service(http);
        let answer = live::call(client, request).await?;
        println!("token fetches: {}", tokens.fetch_count());
        answer
    } else {
        let credential = polyteia::access_key(key).origin(base_url).build()?;
        live::call(classify.auth(credential).service(http), request).await?
    };
    println!("body: {body}");
    Ok(outcome)
}
