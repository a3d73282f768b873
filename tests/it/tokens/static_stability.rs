//! Token refresh that survives a token-endpoint outage: the conformance table in
//! `tests/data/refresh_conformance.txt`, run on a paused clock against a scripted source, and
//! loopback tests of an outage longer than the token's life.

use crate::support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinHandle;
use tower::BoxError;
use tower_api_auth::token::{TokenErrorKind, Unrecoverable};
use tower_api_auth::{Token, TokenCredential, TokenError};

const TABLE: &str = include_str!("../../data/refresh_conformance.txt");
const LIFETIME: u64 = 15 * 60;

/// What the scripted source answers, one per call, in the order the steps give them.
enum Answer {
    Fresh(u64),
    Stale,
    Error,
    Fatal,
}

/// A source that waits for each answer from the table and counts its calls.
struct Script {
    answers: mpsc::UnboundedSender<Answer>,
    calls: Arc<AtomicUsize>,
}

fn credential(advisory: Option<u64>) -> (TokenCredential, Script) {
    let (answers, queue) = mpsc::unbounded_channel::<Answer>();
    let queue = Arc::new(Mutex::new(queue));
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let source = move || {
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        let queue = Arc::clone(&queue);
        async move {
            let answer = queue.lock().await.recv().await.expect("the script ended");
            let token = Token::new(format!("t{n}"));
            match answer {
                Answer::Fresh(secs) => Ok(token.expires_in(Duration::from_secs(secs))),
                Answer::Stale => Ok(token.expires_at(SystemTime::now() - Duration::from_secs(1))),
                Answer::Error => Err(BoxError::from("the endpoint is down")),
                Answer::Fatal => Err(Unrecoverable::new("wrong client secret").into()),
            }
        }
    };
    let mut builder = TokenCredential::builder(source)
        .any_origin()
        .refresh_jitter(Duration::ZERO)
        .stale_backoff(Duration::from_secs(420), Duration::from_secs(420));
    if let Some(advisory) = advisory {
        builder = builder.advisory_window(Duration::from_secs(advisory));
    }
    let tokens = builder.build().unwrap();
    (tokens, Script { answers, calls })
}

/// Lets every task that can run, run: the fetch task, the refresh task, the requests.
async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

struct Run {
    tokens: TokenCredential,
    script: Script,
    /// The generation the previous expectation saw.
    seen: u64,
    request: Option<JoinHandle<Result<u64, TokenError>>>,
}

impl Run {
    async fn seed(seed: &str) -> Self {
        let mut parts = seed.split(',').map(str::trim);
        let name = parts.next().unwrap();
        let advisory = parts
            .find_map(|part| part.strip_prefix("advisory="))
            .map(|secs| secs.parse().unwrap());
        let (tokens, script) = credential(advisory);
        let mut run = Run {
            tokens,
            script,
            seen: 0,
            request: None,
        };
        let left = match name {
            "none" => return run,
            "valid" => 600,
            "advisory" => 180,
            "mandatory" => 30,
            "expired" => 0,
            other => panic!("unknown seed {other}"),
        };
        run.answer(Answer::Fresh(LIFETIME)).await;
        run.seen = run.tokens.fetch().await.unwrap();
        let elapsed = if left == 0 {
            LIFETIME + 1
        } else {
            LIFETIME - left
        };
        tokio::time::advance(Duration::from_secs(elapsed)).await;
        settle().await;
        run
    }

    async fn answer(&mut self, answer: Answer) {
        self.script.answers.send(answer).unwrap();
        settle().await;
    }

    /// The last request's result; it must not be waiting any more.
    async fn result(&mut self, row: &str) -> Result<u64, TokenError> {
        settle().await;
        let request = self
            .request
            .take()
            .unwrap_or_else(|| panic!("{row}: no request"));
        assert!(request.is_finished(), "{row}: the request is still waiting");
        request.await.unwrap()
    }

    async fn step(&mut self, row: &str, step: &str) {
        match step {
            "get" => {
                let tokens = self.tokens.clone();
                self.request = Some(tokio::spawn(async move { tokens.fetch().await }));
                settle().await;
            }
            "fresh" => self.answer(Answer::Fresh(LIFETIME)).await,
            "stale" => self.answer(Answer::Stale).await,
            "error" => self.answer(Answer::Error).await,
            "fatal" => self.answer(Answer::Fatal).await,
            "invalidate" => self.tokens.invalidate(),
            "reject-old" => {
                let old = self.tokens.generation().unwrap() - 1;
                self.request = None;
                drop(tokio::spawn({
                    let tokens = self.tokens.clone();
                    async move { tokens.rejected(old).await }
                }));
                settle().await;
            }
            "=cached" => {
                let generation = self
                    .result(row)
                    .await
                    .unwrap_or_else(|e| panic!("{row}: {e}"));
                assert_eq!(generation, self.seen, "{row}: expected the cached token");
            }
            "=new" => {
                let generation = self
                    .result(row)
                    .await
                    .unwrap_or_else(|e| panic!("{row}: {e}"));
                assert!(generation > self.seen, "{row}: expected a new token");
                self.seen = generation;
            }
            _ => {
                if let Some(secs) = step.strip_prefix('+') {
                    tokio::time::advance(Duration::from_secs(secs.parse().unwrap())).await;
                    settle().await;
                } else if let Some(answer) = step.strip_prefix("fresh@") {
                    self.answer(Answer::Fresh(answer.parse().unwrap())).await;
                } else if let Some(kind) = step.strip_prefix("=error:") {
                    let err = self.result(row).await.expect_err(row);
                    assert_eq!(format!("{:?}", err.kind()), kind, "{row}");
                    let expected = match kind {
                        "Fetch" => TokenErrorKind::Fetch,
                        "Unrecoverable" => TokenErrorKind::Unrecoverable,
                        other => panic!("{row}: unknown kind {other}"),
                    };
                    assert_eq!(err.kind(), expected, "{row}");
                } else if let Some(calls) = step.strip_prefix("calls=") {
                    let calls: usize = calls.parse().unwrap();
                    assert_eq!(
                        self.script.calls.load(Ordering::SeqCst),
                        calls,
                        "{row}: calls"
                    );
                } else if let Some(secs) = step.strip_prefix("advisory=") {
                    let status = self.tokens.status();
                    let window = self.tokens.expires_in().unwrap() - status.advisory_in.unwrap();
                    assert_eq!(window, Duration::from_secs(secs.parse().unwrap()), "{row}");
                } else {
                    panic!("{row}: unknown step {step}");
                }
            }
        }
    }
}

#[test]
fn the_refresh_conformance_table() {
    let rows: Vec<_> = TABLE
        .lines()
        .map(|line| line.split('#').next().unwrap().trim())
        .filter(|line| !line.is_empty())
        .collect();
    assert!(rows.len() >= 24, "the table lost rows");
    for row in rows {
        let [name, seed, steps] = row.split('|').map(str::trim).collect::<Vec<_>>()[..] else {
            panic!("a row is `name | seed | steps`: {row}");
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        runtime.block_on(async {
            let mut run = Run::seed(seed).await;
            for step in steps.split_whitespace() {
                run.step(name, step).await;
            }
        });
    }
}

/// A Polyteia stand-in issuing 2-second tokens, and a credential that backs off 300 ms after a
/// failed refresh.
async fn short_lived() -> (tower_api_auth_mock::MockServer, TokenCredential) {
    use tower_api_auth::providers::polyteia;
    use tower_api_auth_mock::{MockServer, Provider};
    let server = MockServer::start(Provider::Polyteia).await.unwrap();
    server.accept_key("pak_1");
    server.set_token_ttl(Duration::from_secs(2));
    let tokens = polyteia::key_exchange("pak_1")
        .base_url(server.base_url())
        .token_builder(support::client())
        .stale_backoff(Duration::from_millis(300), Duration::from_millis(300))
        .build()
        .unwrap();
    (server, tokens)
}

/// Sends one request every 100 ms for `span` and returns the statuses.
async fn paced_requests<S, B>(api: S, url: &str, span: Duration) -> Vec<u16>
where
    S: tower::Service<http::Request<support::Body>, Response = http::Response<B>, Error = BoxError>
        + Clone,
{
    use tower::ServiceExt;
    let mut statuses = Vec::new();
    let mut pace = tokio::time::interval(Duration::from_millis(100));
    let until = tokio::time::Instant::now() + span;
    while tokio::time::Instant::now() < until {
        pace.tick().await;
        let request = support::post_json(url, r#"{"query":"q"}"#);
        let response = api.clone().oneshot(request).await.unwrap();
        statuses.push(response.status().as_u16());
    }
    statuses
}

/// The stacks the outage tests run in: the guarantee is the credential's, so it must hold
/// whatever the user builds around it.
#[derive(Debug, Clone, Copy)]
enum Stack {
    /// `TokenAuthLayer` alone.
    TokenAuth,
    /// `Buffer` outermost, a `ClassifyLayer` outside the token layer (the example's order).
    BufferedAndClassified,
    /// `without_replay()`: the token attached, nothing else.
    WithoutReplay,
}

const STACKS: [Stack; 3] = [
    Stack::TokenAuth,
    Stack::BufferedAndClassified,
    Stack::WithoutReplay,
];

type Api = tower::util::BoxCloneSyncService<
    http::Request<support::Body>,
    http::Response<http_body_util::combinators::UnsyncBoxBody<bytes::Bytes, BoxError>>,
    BoxError,
>;

fn stack(stack: Stack, tokens: &TokenCredential) -> Api {
    use http_body_util::BodyExt;
    use tower::{Layer, ServiceBuilder, ServiceExt};
    use tower_api_auth::ServiceBuilderAuthExt;
    use tower_api_auth::providers::polyteia;
    fn boxed<B>(
        response: http::Response<B>,
    ) -> http::Response<http_body_util::combinators::UnsyncBoxBody<bytes::Bytes, BoxError>>
    where
        B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        response.map(|body| body.map_err(Into::into).boxed_unsync())
    }
    let tokens = tokens.clone();
    match stack {
        Stack::TokenAuth => {
            let api = tower_api_auth::TokenAuthLayer::new(tokens).layer(support::client());
            Api::new(api.map_response(boxed))
        }
        Stack::BufferedAndClassified => {
            let api = ServiceBuilder::new()
                .buffer(4)
                .classify(polyteia::classifier())
                .token_auth(tokens)
                .service(support::client())
                .map_err(BoxError::from);
            Api::new(api.map_response(boxed))
        }
        Stack::WithoutReplay => {
            let layer = tower_api_auth::TokenAuthLayer::new(tokens).without_replay();
            Api::new(layer.layer(support::client()).map_response(boxed))
        }
    }
}

/// An outage, after the first token was fetched and used: which statuses the requests paced over
/// `span` got, and how often the token endpoint was asked meanwhile. `refusing`: the API refuses
/// the token from the start of the outage on.
async fn outage(
    stack_kind: Stack,
    span: Duration,
    refusing: bool,
) -> (Vec<u16>, usize, TokenCredential) {
    let (server, tokens) = short_lived().await;
    let api = stack(stack_kind, &tokens);
    let url = format!("{}/api", server.base_url());
    let before = paced_requests(api.clone(), &url, Duration::from_millis(200)).await;
    assert!(
        before.iter().all(|status| *status == 200),
        "{stack_kind:?}: {before:?}"
    );
    let fetches_before = server.token_request_count();

    server.set_token_fault(Some(tower_api_auth_mock::TokenFault::ServerError));
    if refusing {
        server.expire_tokens();
    }
    let during = paced_requests(api, &url, span).await;
    (
        during,
        server.token_request_count() - fetches_before,
        tokens,
    )
}

/// At least one refresh was attempted, at most one per 300 ms backoff (plus the first), and
/// never one per request.
fn one_attempt_per_backoff(stack: Stack, attempts: usize, span: Duration, requests: usize) {
    let most = (span.as_millis() / 300) as usize + 2;
    assert!(
        (2..=most).contains(&attempts),
        "{stack:?}: {attempts} attempts"
    );
    assert!(
        attempts < requests,
        "{stack:?}: {attempts} attempts for {requests} requests"
    );
}

/// The token endpoint goes down for longer than the token's life; the API still accepts the
/// token (a grace period, clock skew): every request keeps succeeding with it, and the endpoint
/// is asked at most once per backoff. In every stack, run side by side.
#[tokio::test]
async fn an_outage_longer_than_the_tokens_life_is_not_an_outage_of_the_api() {
    let span = Duration::from_secs(4);
    let runs = STACKS.map(|stack| async move { (stack, outage(stack, span, false).await) });
    for (stack, (during, attempts, tokens)) in futures::future::join_all(runs).await {
        assert!(
            during.iter().all(|status| *status == 200),
            "{stack:?}: {during:?}"
        );
        let left = tokens.expires_in();
        assert_eq!(
            left,
            Some(Duration::ZERO),
            "{stack:?}: the token outlived its life"
        );
        one_attempt_per_backoff(stack, attempts, span, during.len());
        assert_eq!(
            tokens.generation(),
            Some(1),
            "{stack:?}: served stale, not replaced"
        );
    }
}

/// The same outage, and the API refuses the expired token: each request gets the API's answer
/// (its 401), and the endpoint is still asked at most once per backoff, not once per rejection.
#[tokio::test]
async fn an_outage_with_the_api_refusing_the_token_is_no_fetch_storm() {
    let span = Duration::from_secs(3);
    let runs = STACKS.map(|stack| async move { (stack, outage(stack, span, true).await) });
    for (stack, (during, attempts, _tokens)) in futures::future::join_all(runs).await {
        assert!(
            during.iter().all(|status| *status == 401),
            "{stack:?}: {during:?}"
        );
        one_attempt_per_backoff(stack, attempts, span, during.len());
    }
}
