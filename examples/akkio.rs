//! Akkio through the crate's layers: `X-API-Key` on every request, responses classified.
//!
//! Against the real API when `AKKIO_API_KEY` is set, against a loopback stand-in otherwise (so
//! it runs offline as it is):
//!
//! ```sh
//! cargo run --example akkio                                  # loopback stand-in
//! AKKIO_API_KEY=.. cargo run --example akkio                 # https://api.akkio.com
//! AKKIO_BASE_URL=http://127.0.0.1:8080 AKKIO_API_KEY=.. cargo run --example akkio
//! ```
//!
//! It sends `GET {base}/api/v1/models` (`AKKIO_PATH` to ask for another route), prints the
//! classified outcome (401 wrong key, 403 no access for the key's organization, ...) and exits
//! non-zero when the call fails. It never prints the key.

#[path = "shared/live.rs"]
mod live;

use std::process::ExitCode;

use http::Request;
use tower::{BoxError, ServiceBuilder};
use tower_api_auth::ServiceBuilderAuthExt;
use tower_api_auth::outcome::Outcome;
use tower_api_auth::providers::akkio;
use tower_api_auth_mock::Provider;

fn main() -> ExitCode {
    live::main(run)
}

async fn run() -> Result<Outcome, BoxError> {
    let (key, demo) = (live::var("AKKIO_API_KEY"), "akkio-demo-key");
    let api = live::Api::choose(Provider::Akkio, key, demo.into(), demo).await?;
    let credential = akkio::api_key(api.credentials.as_str())
        .origin(&api.base_url)
        .build()?;
    let client = ServiceBuilder::new()
        .classify(akkio::classifier())
        .auth(credential)
        .service(live::http_client());

    let path = live::var("AKKIO_PATH").unwrap_or_else(|| "/api/v1/models".to_owned());
    let request = Request::get(format!("{}{path}", api.base_url)).body(Default::default())?;
    let (outcome, body) = live::call(client, request).await?;
    println!("body: {body}");
    Ok(outcome)
}
