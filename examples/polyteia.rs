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
use tower_api_auth::mock::{MockServer, Provider};
use tower_api_auth::outcome::Outcome;
use tower_api_auth::providers::polyteia;

#[tokio::main]
async fn main() -> ExitCode {
    live::init_tracing();
    live::exit_code(run().await)
}

async fn run() -> Result<Outcome, BoxError> {
    let mut stand_in = None;
    let (key, base_url) = match live::var("POLYTEIA_ACCESS_KEY") {
        Some(key) => {
            let base_url = live::var("POLYTEIA_BASE_URL");
            (
                key,
                base_url.unwrap_or_else(|| polyteia::BASE_URL.to_owned()),
            )
        }
        None => {
            println!("No POLYTEIA_ACCESS_KEY in the environment: using a loopback stand-in");
            let server = MockServer::start(Provider::Polyteia).await?;
            server.accept_key("pak-demo-key");
            let url = server.base_url();
            stand_in = Some(server);
            ("pak-demo-key".to_owned(), url)
        }
    };
    let query = live::var("POLYTEIA_QUERY").unwrap_or_else(|| "list_solutions".to_owned());
    let command = serde_json::json!({ "query": query, "params": {} }).to_string();
    let request = Request::post(format!("{base_url}/api")).body(command.into())?;
    let http = live::http_client();
    let classify = ServiceBuilder::new().classify(polyteia::classifier());

    let (outcome, body) = if live::var("POLYTEIA_EXCHANGE").is_some() {
        let tokens = polyteia::key_exchange(key)
            .base_url(&base_url)
            .build(http.clone())?;
        let client = classify.token_auth(tokens.clone()).service(http);
        let answer = live::call(client, request).await?;
        println!("token fetches: {}", tokens.fetch_count());
        answer
    } else {
        let credential = polyteia::access_key(key).origin(&base_url).build()?;
        live::call(classify.auth(credential).service(http), request).await?
    };
    println!("body: {body}");
    drop(stand_in);
    Ok(outcome)
}
