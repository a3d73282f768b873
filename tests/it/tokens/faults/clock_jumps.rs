//! Clock jumps around a token's refresh point and expiry, on Tokio's paused clock, with scripted
//! token sources and a `service_fn` API (real I/O cannot run on a paused clock).

use super::*;

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
