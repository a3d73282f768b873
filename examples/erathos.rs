//! Erathos through the crate's layers: `Authorization: Api-Key <key>` on every request,
//! responses classified.
//!
//! Against the real API when `ERATHOS_API_KEY` and `ERATHOS_WORKSPACE_ID` are set, against a
//! loopback stand-in otherwise (so it runs offline as it is):
//!
//! ```sh
//! cargo run --example erathos                                              # loopback stand-in
//! ERATHOS_API_KEY=.. ERATHOS_WORKSPACE_ID=.. cargo run --example erathos   # https://api.erathos.com
//! ERATHOS_BASE_URL=http://127.0.0.1:8080 ERATHOS_API_KEY=.. ERATHOS_WORKSPACE_ID=.. cargo run --example erathos
//! ```
//!
//! It lists the workspace's jobs (`GET {base}/developers/workspaces/{id}/jobs/`), prints the
//! classified outcome (401 wrong key, 403 no permission in the workspace, ...) and exits
//! non-zero when the call fails. It never prints the key.

#[path = "shared/live.rs"]
mod live;

use std::process::ExitCode;

use http::Request;
use tower::{BoxError, ServiceBuilder};
use tower_api_auth::ServiceBuilderAuthExt;
use tower_api_auth::mock::{MockServer, Provider};
use tower_api_auth::outcome::Outcome;
use tower_api_auth::providers::erathos;

#[tokio::main]
async fn main() -> ExitCode {
    live::init_tracing();
    live::exit_code(run().await)
}

async fn run() -> Result<Outcome, BoxError> {
    let mut stand_in = None;
    let credentials = live::var("ERATHOS_API_KEY").zip(live::var("ERATHOS_WORKSPACE_ID"));
    let (key, workspace, base_url) = match credentials {
        Some((key, workspace)) => {
            let base_url = live::var("ERATHOS_BASE_URL");
            (
                key,
                workspace,
                base_url.unwrap_or_else(|| erathos::BASE_URL.to_owned()),
            )
        }
        None => {
            println!("No ERATHOS_API_KEY and ERATHOS_WORKSPACE_ID: using a loopback stand-in");
            let server = MockServer::start(Provider::Erathos).await?;
            server.accept_key("erathos-demo-key");
            let url = server.base_url();
            stand_in = Some(server);
            ("erathos-demo-key".to_owned(), "ws-demo".to_owned(), url)
        }
    };
    let credential = erathos::api_key(key).origin(&base_url).build()?;
    let client = ServiceBuilder::new()
        .classify(erathos::classifier())
        .auth(credential)
        .service(live::http_client());

    let url = format!("{base_url}/developers/workspaces/{workspace}/jobs/");
    let (outcome, body) = live::call(client, Request::get(url).body(Default::default())?).await?;
    println!("body: {body}");
    drop(stand_in);
    Ok(outcome)
}
