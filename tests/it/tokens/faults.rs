//! Fault injection on the token endpoint beyond the plain failures of `tokens::fetch`: answers
//! cut short (stalled or dropped mid-body, connections reset), an endpoint that fails every other
//! time, absurd absolute expiries, and clock jumps around a token's refresh point and expiry.
//!
//! Every fault ends in a typed `TokenError` or a success, never a hang (each loopback test runs
//! under a guard timeout that only fires on a hang); every request waiting on a fetch gets the
//! same result; the next request after the fault clears recovers; the endpoint's own counts say
//! exactly how many fetches ran. Clock jumps use Tokio's paused clock with scripted token sources
//! and a `service_fn` API, since real I/O cannot run on a paused clock.

use crate::support;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::{FutureExt, StreamExt};
use http::{Request, Response};
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tower::{Layer, ServiceExt};
use tower_api_auth::body::ResponseBody;
use tower_api_auth::providers::{akool, polyteia};
use tower_api_auth::token::TokenErrorKind;
use tower_api_auth::{Token, TokenAuthLayer, TokenCredential, TokenError};
use tower_api_auth_mock::{MockServer, TokenFault};

use support::{
    HttpClient, akool_server, akool_tokens, client, client_h2, get, json, polyteia_request,
    polyteia_server, post_json, quota_url, token_error,
};

/// Far longer than any of these tests takes; it fires only when something hangs.
const HANG_GUARD: Duration = Duration::from_secs(20);

/// How many requests wait on each failing fetch.
const WAITERS: usize = 20;

/// Awaits `future`, failing the test if it never ends.
async fn bounded<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(HANG_GUARD, future)
        .await
        .expect("a token fault made a request hang")
}

/// Asserts that every waiter got the same error, of `kind`, and returns it.
fn same_error(errors: impl IntoIterator<Item = TokenError>, kind: TokenErrorKind) -> TokenError {
    let mut errors = errors.into_iter();
    let first = errors.next().expect("at least one waiter");
    assert_eq!(first.kind(), kind, "{first}");
    let mut waiters = 1;
    for err in errors {
        assert_eq!(err.kind(), first.kind());
        assert_eq!(err.to_string(), first.to_string(), "one fetch, one result");
        waiters += 1;
    }
    assert_eq!(waiters, WAITERS);
    first
}

/// Akool tokens with a short backoff and this fetch timeout, fetched through `http`.
fn akool_tokens_within(
    server: &MockServer,
    http: HttpClient,
    fetch_timeout: Duration,
) -> TokenCredential {
    akool::client_credentials("client-id", "client-secret")
        .base_url(server.base_url())
        .token_builder(http)
        .fetch_timeout(fetch_timeout)
        .backoff(Duration::from_millis(20), Duration::from_millis(20))
        .build()
        .unwrap()
}

/// Sends `WAITERS` concurrent requests on a cold cache and returns their token errors. They
/// are all polled before the fetch can end (this is a current-thread runtime and the fetch is a
/// task of its own), so they all wait on the same fetch.
async fn waiters_fail<S, R>(api: &S, url: &str) -> Vec<TokenError>
where
    S: tower::Service<Request<support::Body>, Response = Response<R>> + Clone,
    S::Error: Into<tower::BoxError>,
{
    let waiters = (0..WAITERS).map(|_| api.clone().oneshot(get(url)));
    bounded(futures::future::join_all(waiters))
        .await
        .into_iter()
        .map(|result| match result {
            Ok(response) => panic!("expected a token error, got {}", response.status()),
            Err(err) => token_error(err.into()),
        })
        .collect()
}

/// The mid-body faults send what they claim: a 200, its headers and the first bytes of the body;
/// then nothing (stall) or a broken connection (abort).
#[tokio::test]
async fn the_mid_body_faults_send_the_headers_and_part_of_the_body_first() {
    let server = akool_server().await;
    let token_url = format!("{}{}", server.base_url(), "/api/open/v3/getToken");

    server.set_token_fault(Some(TokenFault::StallMidBody));
    let response = bounded(client().request(post_json(&token_url, "{}")))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let first = bounded(body.frame()).await.unwrap().unwrap();
    assert!(first.data_ref().unwrap().starts_with(br#"{"code": 1000"#));
    assert!(
        body.frame().now_or_never().is_none(),
        "the rest never comes"
    );

    server.set_token_fault(Some(TokenFault::AbortMidBody));
    let response = bounded(client().request(post_json(&token_url, "{}")))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let err = bounded(response.into_body().collect()).await.unwrap_err();
    assert!(!err.to_string().is_empty());
    assert_eq!(server.token_request_count(), 2);
}

/// The fetch timeout covers reading the answer's body, not only its headers: a token answer that
/// stalls halfway is a `Timeout` for every waiter, one fetch for all of them; once the endpoint
/// is healthy the next request recovers with one more fetch.
#[tokio::test]
async fn a_token_answer_stalled_mid_body_times_out_for_every_waiter_and_the_next_request_recovers()
{
    let server = akool_server().await;
    server.set_token_fault(Some(TokenFault::StallMidBody));
    // Short, but long enough for the healthy fetch after it on a loaded machine.
    let tokens = akool_tokens_within(&server, client(), Duration::from_secs(1));
    let api = TokenAuthLayer::new(tokens.clone()).layer(client());

    let errors = waiters_fail(&api, &quota_url(&server)).await;
    same_error(errors, TokenErrorKind::Timeout);
    assert_eq!(server.token_request_count(), 1);
    assert_eq!(tokens.generation(), None, "errors are not cached");

    server.set_token_fault(None);
    let response = bounded(api.oneshot(get(quota_url(&server)))).await.unwrap();
    assert_eq!(json(response).await["code"], 1000);
    assert_eq!(server.token_request_count(), 2);
    assert_eq!(tokens.fetch_count(), 2);
}

/// A connection dropped halfway through the token answer (HTTP/1: closed mid-body; HTTP/2: the
/// stream is reset) is a `Fetch` error for every waiter, never a hang or a half-read token.
#[tokio::test]
async fn a_token_answer_dropped_mid_body_is_a_fetch_error_for_every_waiter_and_the_next_request_recovers()
 {
    for (protocol, http) in [("HTTP/1", client()), ("HTTP/2", client_h2())] {
        let server = akool_server().await;
        server.set_token_fault(Some(TokenFault::AbortMidBody));
        let tokens = akool_tokens_within(&server, http, Duration::from_secs(30));
        let api = TokenAuthLayer::new(tokens.clone()).layer(client());

        let errors = waiters_fail(&api, &quota_url(&server)).await;
        let err = same_error(errors, TokenErrorKind::Fetch);
        assert!(
            std::error::Error::source(&err).is_some(),
            "{protocol}: {err}"
        );
        assert_eq!(server.token_request_count(), 1, "{protocol}");

        server.set_token_fault(None);
        let response = bounded(api.oneshot(get(quota_url(&server)))).await.unwrap();
        assert_eq!(json(response).await["code"], 1000, "{protocol}");
        assert_eq!(server.token_request_count(), 2, "{protocol}");
    }
}

/// What a raw token endpoint does with the next request it reads.
#[derive(Debug, Clone, Copy)]
enum Raw {
    /// Resets the connection (RST, `SO_LINGER` 0) without answering.
    ResetBeforeAnswer,
    /// Sends the headers and part of the body, then resets the connection.
    ResetMidBody,
    /// Sends the headers and part of the body (of a longer `Content-Length`), then closes the
    /// connection cleanly (FIN).
    CloseMidBody,
    /// Answers like Akool's getToken.
    Token,
}

/// An Akool-shaped token endpoint on a bare `TcpListener`, for faults an HTTP server will not
/// commit: resets and early closes at chosen points. One request per connection.
struct RawEndpoint {
    base_url: String,
    requests: Arc<AtomicUsize>,
    script: Arc<Mutex<VecDeque<Raw>>>,
}

impl RawEndpoint {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(AtomicUsize::new(0));
        let script = Arc::new(Mutex::new(VecDeque::new()));
        let (counter, answers) = (Arc::clone(&requests), Arc::clone(&script));
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (counter, answers) = (Arc::clone(&counter), Arc::clone(&answers));
                tokio::spawn(async move {
                    let _ = Self::serve(stream, counter, answers).await;
                });
            }
        });
        Self {
            base_url,
            requests,
            script,
        }
    }

    fn then(&self, answer: Raw) {
        self.script.lock().unwrap().push_back(answer);
    }

    fn request_count(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    async fn serve(
        mut stream: TcpStream,
        requests: Arc<AtomicUsize>,
        script: Arc<Mutex<VecDeque<Raw>>>,
    ) -> io::Result<()> {
        read_request(&mut stream).await?;
        let n = requests.fetch_add(1, Ordering::SeqCst) + 1;
        let answer = script.lock().unwrap().pop_front().unwrap_or(Raw::Token);
        const HEAD: &str =
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 64\r\n\r\n";
        const PARTIAL: &str = r#"{"code": 1000, "token": "raw-tok"#;
        match answer {
            Raw::ResetBeforeAnswer => stream.set_zero_linger()?,
            Raw::ResetMidBody => {
                stream.write_all(HEAD.as_bytes()).await?;
                stream.write_all(PARTIAL.as_bytes()).await?;
                stream.flush().await?;
                stream.set_zero_linger()?;
            }
            Raw::CloseMidBody => {
                stream.write_all(HEAD.as_bytes()).await?;
                stream.write_all(PARTIAL.as_bytes()).await?;
                stream.shutdown().await?;
            }
            Raw::Token => {
                let body = format!(r#"{{"code": 1000, "token": "raw-token-{n}"}}"#);
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                stream.write_all(answer.as_bytes()).await?;
                stream.shutdown().await?;
            }
        }
        Ok(())
    }
}

/// Reads one request: its head, then as many body bytes as its `Content-Length` says.
async fn read_request(stream: &mut TcpStream) -> io::Result<()> {
    let mut buf = Vec::new();
    let head_end = loop {
        let mut chunk = [0; 1024];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .map_or(0, |value| value.trim().parse().unwrap_or(0));
    while buf.len() < head_end + length {
        let mut chunk = [0; 1024];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(())
}

/// Connections reset before or during the answer, or closed before the announced length, are a
/// `Fetch` error shared by every waiter; hyper-util does not retry them behind our back (one
/// request reached the endpoint per fetch), and the next fetch succeeds.
#[tokio::test]
async fn a_reset_or_early_closed_connection_is_a_fetch_error_for_every_waiter_and_the_next_fetch_recovers()
 {
    for fault in [Raw::ResetBeforeAnswer, Raw::ResetMidBody, Raw::CloseMidBody] {
        let endpoint = RawEndpoint::start().await;
        endpoint.then(fault);
        let tokens = akool::client_credentials("client-id", "client-secret")
            .base_url(&endpoint.base_url)
            .token_builder(client())
            .backoff(Duration::from_millis(20), Duration::from_millis(20))
            .build()
            .unwrap();

        let waiters = (0..WAITERS).map(|_| tokens.fetch());
        let errors = bounded(futures::future::join_all(waiters)).await;
        let errors = errors.into_iter().map(|result| result.unwrap_err());
        same_error(errors, TokenErrorKind::Fetch);
        assert_eq!(endpoint.request_count(), 1, "{fault:?}");
        assert_eq!(tokens.generation(), None, "{fault:?}");

        assert_eq!(bounded(tokens.fetch()).await.unwrap(), 1, "{fault:?}");
        assert_eq!(endpoint.request_count(), 2, "{fault:?}");
        assert_eq!(tokens.fetch_count(), 2, "{fault:?}");
    }
}

/// An endpoint that fails every other time: each failure reaches the requests waiting on it, and
/// the very next request (after the bounded backoff) gets a token; a rejection-triggered refetch
/// that fails is an error for that request only, and the one after recovers. Fetch counts are
/// exact: no fetch is repeated behind the caller's back.
#[tokio::test]
async fn an_endpoint_failing_every_other_time_costs_one_error_per_failure_and_then_recovers() {
    let server = polyteia_server().await;
    server.set_token_fault(Some(TokenFault::Alternate));
    // Without static stability, a failed refresh of a dropped or rejected token reaches the
    // caller (with it, the token would keep serving: see `tokens::static_stability`).
    let tokens = polyteia::key_exchange("pak_1")
        .base_url(server.base_url())
        .token_builder(client())
        .static_stability(false)
        .backoff(Duration::from_millis(20), Duration::from_millis(40))
        .build()
        .unwrap();
    let api = TokenAuthLayer::new(tokens.clone()).layer(client());
    let call = || bounded(api.clone().oneshot(polyteia_request(&server)));

    // Fetch 1 fails, for everyone waiting on it.
    let waiters = (0..WAITERS).map(|_| api.clone().oneshot(polyteia_request(&server)));
    let errors = bounded(futures::future::join_all(waiters)).await;
    same_error(
        errors.into_iter().map(|r| token_error(r.unwrap_err())),
        TokenErrorKind::Fetch,
    );
    assert_eq!(server.token_request_count(), 1);

    // Fetch 2 (after the backoff) succeeds.
    assert_eq!(call().await.unwrap().status(), 200);
    assert_eq!(server.token_request_count(), 2);
    assert_eq!(tokens.generation(), Some(1));

    // Dropped by hand: fetch 3 fails, fetch 4 succeeds.
    tokens.invalidate();
    let err = token_error(call().await.unwrap_err());
    assert_eq!(err.kind(), TokenErrorKind::Fetch);
    assert_eq!(call().await.unwrap().status(), 200);
    assert_eq!(server.token_request_count(), 4);

    // The API expires the token: the request is rejected, its refetch (5) fails, and it gets the
    // API's answer rather than a second replay or a loop; the next request fetches (6) and
    // succeeds.
    server.expire_tokens();
    assert_eq!(call().await.unwrap().status(), 401);
    assert_eq!(server.token_request_count(), 5);
    assert_eq!(call().await.unwrap().status(), 200);
    assert_eq!(server.token_request_count(), 6);
    assert_eq!(tokens.fetch_count(), 6);

    let tokens_sent: Vec<_> = server
        .requests()
        .iter()
        .filter(|r| r.uri.path() == "/api")
        .map(|r| r.headers["authorization"].to_str().unwrap().to_owned())
        .collect();
    // Only successful fetches' tokens were ever sent: 2, 4 (rejected once), 6.
    assert_eq!(
        tokens_sent,
        [
            "Bearer polyteia-token-2",
            "Bearer polyteia-token-4",
            "Bearer polyteia-token-4",
            "Bearer polyteia-token-6",
        ]
    );
}

fn epoch_seconds(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A Polyteia stand-in announcing `expires_at` (epoch seconds) for its tokens, and the credential
/// fetching from it, after `requests` requests sent with its tokens, each answered 200.
async fn polyteia_announcing(expires_at: u64, requests: usize) -> (MockServer, TokenCredential) {
    let server = polyteia_server().await;
    server.set_token_fault(Some(TokenFault::ExpiresAt(expires_at)));
    let tokens = polyteia::key_exchange("pak_1")
        .base_url(server.base_url())
        .build(client())
        .unwrap();
    let api = TokenAuthLayer::new(tokens.clone()).layer(client());
    for _ in 0..requests {
        let response = bounded(api.clone().oneshot(polyteia_request(&server))).await;
        assert_eq!(response.unwrap().status(), 200, "expiresAt {expires_at}");
    }
    (server, tokens)
}

// Backwards clock jumps cannot be tested, and need not be handled: token expiries are kept as
// Tokio `Instant`s, which are monotonic (and `tokio::time::advance` only moves forward). What
// can go wrong with wall clocks is the server's absolute `expiresAt` (Polyteia) or JWT `exp`
// (Akool) disagreeing with ours; the tests below check both ends of that.

/// Polyteia announces an `expiresAt` already past (its clock, or ours, is off): the token is
/// taken as having an unknown expiry and used until the API rejects it, not as expired, which
/// would refetch on every request.
#[tokio::test]
async fn an_expires_at_in_the_past_is_taken_as_unknown_and_does_not_refetch_on_every_request() {
    let an_hour_ago = epoch_seconds(SystemTime::now()) - 3600;
    let (server, tokens) = polyteia_announcing(an_hour_ago, 5).await;
    assert_eq!(tokens.expires_in(), None);
    assert_eq!(server.token_request_count(), 1);
}

/// Absurdly distant expiries (Polyteia's `expiresAt` in year 5138, or as milliseconds near
/// `u64::MAX`; an Akool JWT whose `exp` is `i64::MAX` or `u64::MAX` seconds) neither overflow nor
/// refetch: the token is used, once fetched.
#[tokio::test]
async fn an_expiry_in_the_far_future_is_used_without_overflow() {
    let now = epoch_seconds(SystemTime::now());
    for exp in [99_999_999_999, u64::MAX] {
        let (server, tokens) = polyteia_announcing(exp, 3).await;
        let left = tokens.expires_in().expect("a known expiry");
        assert!(
            left > Duration::from_secs(99_999_999_999 - now - 60),
            "{exp}: {left:?}"
        );
        assert_eq!(server.token_request_count(), 1, "{exp}");
    }

    for exp in [i64::MAX as u64, u64::MAX] {
        let server = akool_server().await;
        server.set_token_fault(Some(TokenFault::ExpiresAt(exp)));
        let tokens = akool_tokens(&server, client());
        let api = TokenAuthLayer::new(tokens.clone()).layer(client());
        for _ in 0..3 {
            let response = bounded(api.clone().oneshot(get(quota_url(&server)))).await;
            assert_eq!(json(response.unwrap()).await["code"], 1000, "{exp}");
        }
        assert_eq!(server.token_request_count(), 1, "{exp}");
        assert_eq!(tokens.fetch_count(), 1, "{exp}");
    }
}

// ---------------------------------------------------------------------------------------------
// Paused clock: scripted token sources, a `service_fn` API.

/// What a scripted source answers to one fetch.
enum Answer {
    Token(Token),
    /// This token, once the test opens the gate; the last thing the source does is to say so on
    /// `answered`, so when the test hears it the fetch's task has installed the token (the
    /// runtime is single-threaded and the install follows in the same poll).
    Gated {
        token: Token,
        gate: oneshot::Receiver<()>,
        answered: oneshot::Sender<()>,
    },
}

/// A gated answer, the gate's key and the signal that the token was answered.
fn gated(token: Token) -> (Answer, oneshot::Sender<()>, oneshot::Receiver<()>) {
    let (open, gate) = oneshot::channel();
    let (answered, heard) = oneshot::channel();
    let answer = Answer::Gated {
        token,
        gate,
        answered,
    };
    (answer, open, heard)
}

/// A source that answers from `answers` in order and reports each fetch (1, 2, ...) as it starts.
fn scripted(
    answers: impl IntoIterator<Item = Answer>,
) -> (
    impl Fn() -> futures::future::BoxFuture<'static, Result<Token, &'static str>>
    + Send
    + Sync
    + 'static,
    mpsc::UnboundedReceiver<u64>,
) {
    let answers = Mutex::new(answers.into_iter().collect::<VecDeque<_>>());
    let (started, fetches) = mpsc::unbounded_channel();
    let count = AtomicUsize::new(0);
    let source = move || {
        let n = count.fetch_add(1, Ordering::SeqCst) as u64 + 1;
        let _ = started.send(n);
        let answer = answers.lock().unwrap().pop_front();
        async move {
            match answer {
                Some(Answer::Token(token)) => Ok(token),
                Some(Answer::Gated {
                    token,
                    gate,
                    answered,
                }) => {
                    let _ = gate.await;
                    let _ = answered.send(());
                    Ok(token)
                }
                None => Err("script ended"),
            }
        }
        .boxed()
    };
    (source, fetches)
}

/// An API that answers 200 and records the `Authorization` header of every request.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<String>>>);

impl Seen {
    fn api(
        self,
    ) -> impl tower::Service<
        Request<Full<Bytes>>,
        Response = Response<Empty<Bytes>>,
        Error = Infallible,
        Future = impl Send,
    > + Clone
    + Send
    + 'static {
        tower::service_fn(move |request: Request<Full<Bytes>>| {
            let value = request.headers()["authorization"]
                .to_str()
                .unwrap()
                .to_owned();
            self.0.lock().unwrap().push(value);
            async { Ok::<_, Infallible>(Response::new(Empty::new())) }
        })
    }

    fn since(&self, from: usize) -> Vec<String> {
        self.0.lock().unwrap()[from..].to_vec()
    }

    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

fn api_request() -> Request<Full<Bytes>> {
    Request::get("https://api.example.com/v1/things")
        .body(Full::default())
        .unwrap()
}

/// Lets every task whose timer is already due run: on a paused clock, a sleep ends only once the
/// runtime is idle, and `advance` itself does not wait for the tasks it wakes.
async fn let_due_timers_fire() {
    tokio::time::sleep(Duration::from_millis(1)).await;
}

const LIFETIME: Duration = Duration::from_secs(100);
const MARGIN: Duration = Duration::from_secs(10);

fn paused_tokens(
    answers: impl IntoIterator<Item = Answer>,
) -> (TokenCredential, mpsc::UnboundedReceiver<u64>) {
    let (source, fetches) = scripted(answers);
    let tokens = TokenCredential::builder(source)
        .origin("https://api.example.com")
        .advisory_window(MARGIN)
        .mandatory_window(Duration::from_secs(1))
        .refresh_jitter(Duration::ZERO)
        .build()
        .unwrap();
    (tokens, fetches)
}

/// A credential over a scripted source (see `paused_tokens`), the recording API behind its layer,
/// and one request sent through it: the first token fetched and in use.
async fn serving(
    answers: [Answer; 2],
) -> (
    TokenCredential,
    mpsc::UnboundedReceiver<u64>,
    Seen,
    impl tower::Service<
        Request<Full<Bytes>>,
        Response = Response<ResponseBody<Empty<Bytes>>>,
        Error = tower::BoxError,
        Future = impl Future<Output = Result<Response<ResponseBody<Empty<Bytes>>>, tower::BoxError>>
                 + Send,
    > + Clone
    + Send
    + 'static,
) {
    let (tokens, mut fetches) = paused_tokens(answers);
    let seen = Seen::default();
    let api = TokenAuthLayer::new(tokens.clone()).layer(seen.clone().api());
    api.clone().oneshot(api_request()).await.unwrap();
    assert_eq!(fetches.recv().await, Some(1));
    (tokens, fetches, seen, api)
}

fn token(n: u64) -> Token {
    Token::new(format!("t{n}")).expires_in(LIFETIME)
}

/// (a) The clock jumps past the refresh point (not the expiry): the refresh runs in the
/// background, requests meanwhile keep the current token without waiting, and afterwards use
/// the new one. One refresh, one fetch.
#[tokio::test(start_paused = true)]
async fn a_clock_jump_past_the_refresh_point_refreshes_in_the_background_while_requests_keep_the_token()
 {
    let (refresh, open, answered) = gated(token(2));
    let (tokens, mut fetches, seen, api) = serving([Answer::Token(token(1)), refresh]).await;

    tokio::time::advance(LIFETIME - MARGIN + Duration::from_secs(5)).await;
    assert_eq!(fetches.recv().await, Some(2), "the refresh started");
    // The refresh waits at its gate; requests do not wait for it.
    for _ in 0..3 {
        let answered = api.clone().oneshot(api_request()).now_or_never();
        assert!(matches!(answered, Some(Ok(_))), "a request waited");
    }
    assert_eq!(seen.since(0), ["Bearer t1"; 4]);

    open.send(()).unwrap();
    answered.await.unwrap();
    let before = seen.len();
    assert_eq!(tokens.generation(), Some(2));
    api.clone().oneshot(api_request()).await.unwrap();
    assert_eq!(seen.since(before), ["Bearer t2"]);
    assert_eq!(tokens.fetch_count(), 2);
    assert_eq!(tokens.expires_in(), Some(LIFETIME));
}

/// (b) The clock jumps past the real expiry in one go, so the refresh task has not run yet when
/// the next caller asks: it gets a new token from one fetch, not the expired one.
#[tokio::test(start_paused = true)]
async fn after_a_clock_jump_past_the_expiry_a_fetch_gets_a_new_token_not_the_expired_one() {
    let (tokens, mut fetches) = paused_tokens([Answer::Token(token(1)), Answer::Token(token(2))]);
    assert_eq!(tokens.fetch().await.unwrap(), 1);
    assert_eq!(fetches.recv().await, Some(1));

    tokio::time::advance(LIFETIME + Duration::from_secs(50)).await;
    let (a, b) = tokio::join!(tokens.fetch(), tokens.fetch());
    assert_eq!((a.unwrap(), b.unwrap()), (2, 2));
    assert_eq!(fetches.recv().await, Some(2));
    assert_eq!(tokens.fetch_count(), 2, "one fetch for both");
}

/// (b) Through the layer: after the same jump, requests wait for one fetch and carry the new
/// token; none carries the expired one.
#[tokio::test(start_paused = true)]
async fn a_clock_jump_past_the_expiry_makes_requests_wait_for_one_fetch_of_a_new_token() {
    let answers = [Answer::Token(token(1)), Answer::Token(token(2))];
    let (tokens, mut fetches, seen, api) = serving(answers).await;

    tokio::time::advance(LIFETIME + Duration::from_secs(50)).await;
    let before = seen.len();
    let requests = (0..WAITERS).map(|_| api.clone().oneshot(api_request()));
    for result in futures::future::join_all(requests).await {
        result.unwrap();
    }
    assert_eq!(seen.since(before), vec!["Bearer t2"; WAITERS]);
    assert_eq!(fetches.recv().await, Some(2));
    assert_eq!(tokens.fetch_count(), 2, "one fetch for all");
    assert_eq!(tokens.generation(), Some(2));
}

/// (b') The refresh started in time but is still running when the clock passes the expiry: the
/// expired token must stop being used there and then; requests wait for the refresh under way
/// (no second fetch) and get its token.
#[tokio::test(start_paused = true)]
async fn a_refresh_still_running_at_the_expiry_does_not_leave_the_expired_token_in_use() {
    let (refresh, open, _answered) = gated(token(2));
    let (tokens, mut fetches, seen, api) = serving([Answer::Token(token(1)), refresh]).await;

    tokio::time::advance(LIFETIME - MARGIN + Duration::from_secs(5)).await;
    assert_eq!(fetches.recv().await, Some(2), "the refresh started");
    tokio::time::advance(MARGIN).await; // 5 s past the expiry; the refresh still runs
    // Let the timers now due fire, the refresh task's included (the request path's own expiry
    // check is what the test above proves).
    let_due_timers_fire().await;

    let before = seen.len();
    let mut waiting = api.clone().oneshot(api_request()).boxed();
    assert!(
        (&mut waiting).now_or_never().is_none(),
        "a request went out with the expired token"
    );
    open.send(()).unwrap();
    waiting.await.unwrap();
    assert_eq!(seen.since(before), ["Bearer t2"]);
    assert_eq!(
        tokens.fetch_count(),
        2,
        "the refresh's fetch served the request"
    );
}

/// A relative lifetime (`expires_in`) wins over an absolute one (`expires_at`), in either order:
/// it does not depend on two clocks agreeing.
#[tokio::test(start_paused = true)]
async fn a_relative_lifetime_wins_over_an_absolute_expiry_in_either_order() {
    let past = SystemTime::now() - Duration::from_secs(3600);
    let far = SystemTime::now() + Duration::from_secs(1_000_000);
    let (tokens, _fetches) = paused_tokens([
        Answer::Token(Token::new("t1").expires_at(past).expires_in(LIFETIME)),
        Answer::Token(Token::new("t2").expires_in(LIFETIME).expires_at(far)),
    ]);
    tokens.fetch().await.unwrap();
    assert_eq!(tokens.expires_in(), Some(LIFETIME));
    tokens.invalidate();
    tokens.fetch().await.unwrap();
    assert_eq!(tokens.expires_in(), Some(LIFETIME));
}

/// A lifetime too long for the clock to represent (`Duration::MAX` from a source that reads an
/// `expires_in` of a server) is a token with no known expiry, not a panic in the fetch task
/// (which would fail every request with `Aborted` and refetch on each, without backoff).
#[tokio::test(start_paused = true)]
async fn a_lifetime_too_long_for_the_clock_is_no_expiry_not_a_panic() {
    let (tokens, _fetches) = paused_tokens([
        Answer::Token(Token::new("t1").expires_in(Duration::MAX)),
        Answer::Token(Token::new("t2")),
    ]);
    let seen = Seen::default();
    let api = TokenAuthLayer::new(tokens.clone()).layer(seen.clone().api());
    for _ in 0..3 {
        api.clone().oneshot(api_request()).await.unwrap();
    }
    assert_eq!(seen.since(0), ["Bearer t1"; 3]);
    assert_eq!(tokens.fetch_count(), 1);
}

/// The default fetch timeout is bounded (30 s) and covers reading the answer's body: an
/// endpoint that sends its headers and then stalls mid-body fails the fetch with `Timeout` after
/// exactly 30 s, with no timeout configured anywhere.
#[tokio::test(start_paused = true)]
async fn the_default_fetch_timeout_bounds_an_answer_stalled_mid_body() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let http = tower::service_fn(move |_: Request<Full<Bytes>>| {
        counter.fetch_add(1, Ordering::SeqCst);
        let partial = futures::stream::iter([Ok::<_, Infallible>(http_body::Frame::data(
            Bytes::from_static(br#"{"code": 1000, "tok"#),
        ))]);
        let body = StreamBody::new(partial.chain(futures::stream::pending()));
        async move { Ok::<_, Infallible>(Response::new(body)) }
    });
    let tokens = akool::client_credentials("client-id", "client-secret")
        .build(http)
        .unwrap();

    let started = Instant::now();
    let err = tokens.fetch().await.unwrap_err();
    assert_eq!(err.kind(), TokenErrorKind::Timeout);
    assert_eq!(started.elapsed(), Duration::from_secs(30));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}
