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
use tower_api_auth::mock::{MockServer, Provider};
use tower_api_auth::outcome::Outcome;
use tower_api_auth::providers::akkio;

#[tokio::main]
async fn main() -> ExitCode {
    live::init_tracing();
    live::exit_code(run().await)
}

async fn run() -> Result<Outcome, BoxError> {
    let mut stand_in = None;
    let (key, base_url) = match (live::var("AKKIO_API_KEY"), live::var("AKKIO_BASE_URL")) {
        (Some(key), base_url) => (key, base_url.unwrap_or_else(|| akkio::BASE_URL.to_owned())),
        (None, _) => {
            println!("No AKKIO_API_KEY in the environment: using a loopback stand-in");
            let server = MockServer::start(Provider::Akkio).await?;
            server.accept_key("akkio-demo-key");
            let url = server.base_url();
            stand_in = Some(server);
            ("akkio-demo-key".to_owned(), url)
        }
    };
    let credential = akkio::api_key(key).origin(&base_url).build()?;
    let client = ServiceBuilder::new()
        .classify(akkio::classifier())
        .auth(credential)
        .service(live::http_client());

    let path = live::var("AKKIO_PATH").unwrap_or_else(|| "/api/v1/models".to_owned());
    let request = Request::get(format!("{base_url}{path}")).body(Default::default())?;
    let (outcome, body) = live::call(client, request).await?;
    println!("body: {body}");
    drop(stand_in);
    Ok(outcome)
}
