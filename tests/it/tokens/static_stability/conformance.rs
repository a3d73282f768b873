//! The refresh conformance table (`tests/data/refresh_conformance.txt`), run on a paused clock
//! against a scripted token source.

use super::*;

const TABLE: &str = include_str!("../../../data/refresh_conformance.txt");

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
