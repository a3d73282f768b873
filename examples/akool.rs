//! Akool's account credit, through the crate's layers.
//!
//! Against the real API when credentials are in the environment, against a loopback stand-in
//! otherwise (so it runs offline as it is):
//!
//! ```sh
//! cargo run --example akool                                               # loopback stand-in
//! AKOOL_CLIENT_ID=.. AKOOL_CLIENT_SECRET=.. cargo run --example akool     # getToken flow
//! AKOOL_API_KEY=.. cargo run --example akool                              # x-api-key
//! AKOOL_BASE_URL=http://127.0.0.1:8080 AKOOL_API_KEY=.. cargo run --example akool
//! ```
//!
//! It asks for `GET {base}/api/open/v3/faceswap/quota/info`, prints the classified outcome and
//! the credit (never a key or a token), and exits non-zero when the call fails. Against the
//! stand-in it then has the token expire (Akool's code 1101 in an HTTP 200) and asks again: one
//! refetch, one replay, a success.

#[path = "shared/live.rs"]
mod live;

use std::process::ExitCode;

use http::Request;
use tower::{BoxError, ServiceBuilder};
use tower_api_auth::ServiceBuilderAuthExt;
use tower_api_auth::outcome::Outcome;
use tower_api_auth::providers::akool;
use tower_api_auth_mock::Provider;

fn main() -> ExitCode {
    live::main(run)
}

/// Akool's two ways in; client credentials win when both are in the environment.
enum Credentials {
    ClientCredentials(String, String),
    ApiKey(String),
}

async fn run() -> Result<Outcome, BoxError> {
    let client_credentials = live::var("AKOOL_CLIENT_ID").zip(live::var("AKOOL_CLIENT_SECRET"));
    let from_env = client_credentials
        .map(|(id, secret)| Credentials::ClientCredentials(id, secret))
        .or_else(|| live::var("AKOOL_API_KEY").map(Credentials::ApiKey));
    let demo = Credentials::ClientCredentials("demo-client".into(), "demo-client-secret".into());
    let api = live::Api::choose(Provider::Akool, from_env, demo, "demo-client-secret").await?;
    let base_url = &api.base_url;
    let request = || {
        Request::get(format!("{base_url}/api/open/v3/faceswap/quota/info")).body(Default::default())
    };
    let http = live::http_client();
    let classify = ServiceBuilder::new().classify(akool::classifier());

    let (outcome, body) = match &api.credentials {
        Credentials::ApiKey(key) => {
            println!("Akool at {base_url}, with an API key (x-api-key)");
            let credential = akool::api_key(key.as_str()).origin(base_url).build()?;
            live::call(classify.auth(credential).service(http), request()?).await?
        }
        Credentials::ClientCredentials(id, secret) => {
            println!("Akool at {base_url}, with client credentials (getToken, then Bearer)");
            let tokens = akool::client_credentials(id, secret.as_str())
                .base_url(base_url)
                .build(http.clone())?;
            let client = classify.token_auth(tokens.clone()).service(http);
            let answer = live::call(client.clone(), request()?).await?;
            println!("token fetches: {}", tokens.fetch_count());
            if let Some(server) = &api.stand_in {
                // The stand-in now answers that token with code 1101 in an HTTP 200: the layer
                // reads it from the answer, fetches one new token and replays the request once.
                println!("The stand-in expires the token (code 1101 in an HTTP 200)");
                server.expire_tokens();
                let answer = live::call(client, request()?).await?;
                println!("token fetches: {}", tokens.fetch_count());
                if tokens.fetch_count() != 2 || !answer.0.is_success() {
                    return Err("the expired token was not replaced by exactly one refetch".into());
                }
            }
            answer
        }
    };
    if let Some(credit) = body.pointer("/data/credit") {
        println!("credit: {credit}");
    }
    Ok(outcome)
}
