//! Token stores across real OS processes: this test binary re-invoked as workers
//! (`tokens::store::fleet::fleet_worker` alone, active only when `TOWER_API_AUTH_FLEET_WORKER`
//! is set), each sending its requests through `TokenAuthLayer` to one loopback Akool stand-in
//! run by the parent, which counts getToken calls on the server side.
//!
//! Protocol: a worker runs its phases one after the other; after each it prints
//! `FLEET phase=<n> ok=<count> failed=<count> max_ms=<slowest request>` and, before the next,
//! waits for a line on its stdin, so that the parent can change the world (expire the tokens,
//! kill Redis) between phases.

use crate::support;

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tower_api_auth_mock::MockServer;

use support::akool_server;
use support::redis::RedisServer;

const WORKER_ENV: &str = "TOWER_API_AUTH_FLEET_WORKER";
const PROCESSES: usize = 8;
const REQUESTS: usize = 1_000;
/// The store's wait bound in the workers: the default, 3 s. A waiting process gives up on the
/// lease holder's fetch after it, so a smaller one could let a slow CI machine fetch twice.
const BOUND: Duration = Duration::from_secs(3);

/// What a worker is told.
struct Job<'a> {
    base_url: &'a str,
    store: String,
    secret: &'a str,
    phases: usize,
    requests: usize,
}

impl<'a> Job<'a> {
    /// `phases` phases of `REQUESTS` requests each, with the stand-in's client secret.
    fn new(base_url: &'a str, store: String, phases: usize) -> Self {
        Self {
            base_url,
            store,
            secret: "client-secret",
            phases,
            requests: REQUESTS,
        }
    }
}

struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
}

/// One phase's report.
#[derive(Debug)]
struct Report {
    ok: usize,
    failed: usize,
    max_ms: u64,
}

impl Worker {
    fn spawn(job: &Job<'_>) -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                &support::test_path(module_path!(), "fleet_worker"),
            ])
            .args(["--nocapture", "--test-threads=1"])
            .env(WORKER_ENV, "1")
            .env("FLEET_BASE_URL", job.base_url)
            .env("FLEET_STORE", &job.store)
            .env("FLEET_SECRET", job.secret)
            .env("FLEET_PHASES", job.phases.to_string())
            .env("FLEET_REQUESTS", job.requests.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        Self {
            child,
            stdin,
            stdout,
        }
    }

    /// Waits for the report of the phase under way.
    async fn report(&mut self) -> Report {
        while let Some(line) = self.stdout.next_line().await.unwrap() {
            // libtest may have started the line ("test tokens::store::fleet::fleet_worker ... ").
            let Some(at) = line.find("FLEET ") else {
                continue;
            };
            let fields = &line[at + "FLEET ".len()..];
            let field = |name: &str| -> u64 {
                fields
                    .split(' ')
                    .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| panic!("no {name} in {line}"))
            };
            return Report {
                ok: field("ok") as usize,
                failed: field("failed") as usize,
                max_ms: field("max_ms"),
            };
        }
        let status = self.child.wait().await.unwrap();
        panic!("a worker exited without reporting: {status}");
    }

    async fn next_phase(&mut self) {
        self.stdin.write_all(b"go\n").await.unwrap();
        self.stdin.flush().await.unwrap();
    }

    async fn finish(mut self) {
        let status = self.child.wait().await.unwrap();
        assert!(status.success(), "worker failed: {status}");
    }
}

/// Starts `n` workers and collects each one's first report.
async fn fleet(n: usize, job: &Job<'_>) -> (Vec<Worker>, Vec<Report>) {
    let mut workers: Vec<_> = (0..n).map(|_| Worker::spawn(job)).collect();
    let reports = reports(&mut workers).await;
    (workers, reports)
}

/// Starts `PROCESSES` workers on `job`, prints how long their first phase took and asserts that
/// every request of it succeeded.
async fn cold_fleet(what: &str, job: &Job<'_>) -> Vec<Worker> {
    let started = std::time::Instant::now();
    let (workers, cold) = fleet(PROCESSES, job).await;
    eprintln!(
        "{what}: {PROCESSES} processes x {REQUESTS} requests, cold, in {:?}",
        started.elapsed()
    );
    assert_all_ok(&cold, REQUESTS);
    workers
}

async fn reports(workers: &mut [Worker]) -> Vec<Report> {
    futures::future::join_all(workers.iter_mut().map(Worker::report)).await
}

async fn next_phase(workers: &mut [Worker]) -> Vec<Report> {
    for worker in workers.iter_mut() {
        worker.next_phase().await;
    }
    reports(workers).await
}

fn assert_all_ok(reports: &[Report], requests: usize) {
    for report in reports {
        assert_eq!(
            (report.ok, report.failed),
            (requests, 0),
            "every request succeeds: {report:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_eight_processes_cold_fetch_once_and_refetch_once_after_1101() {
    let Some(redis) = RedisServer::start("redis_eight_processes_cold_fetch_once") else {
        return;
    };
    let server = akool_server().await;
    let base_url = server.base_url();
    let job = Job::new(&base_url, format!("redis:{}", redis.url()), 2);
    let mut workers = cold_fleet("redis fleet", &job).await;
    assert_eq!(
        server.token_request_count(),
        1,
        "one getToken for the fleet"
    );

    // The stand-in now answers 1101 for that token.
    server.expire_tokens();
    let after = next_phase(&mut workers).await;
    assert_all_ok(&after, REQUESTS);
    assert_eq!(
        server.token_request_count(),
        2,
        "one more getToken across the fleet after the rejection"
    );
    finish(workers).await;

    // A restart within the token's life fetches nothing.
    let (workers, restarted) = fleet(1, &Job { phases: 1, ..job }).await;
    assert_all_ok(&restarted, REQUESTS);
    assert_eq!(server.token_request_count(), 2, "a restart fetches nothing");
    finish(workers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_store_eight_processes_fetch_once_restart_fetches_nothing_new_secret_refetches() {
    let server = akool_server().await;
    let base_url = server.base_url();
    let dir = tempfile::tempdir().unwrap();
    let job = Job::new(&base_url, format!("file:{}", dir.path().display()), 1);
    let workers = cold_fleet("file fleet", &job).await;
    assert_eq!(
        server.token_request_count(),
        1,
        "one getToken for the machine"
    );
    finish(workers).await;

    let (workers, restarted) = fleet(1, &job).await;
    assert_all_ok(&restarted, REQUESTS);
    assert_eq!(server.token_request_count(), 1, "a restart fetches nothing");
    finish(workers).await;

    // The client secret changes: the token fetched with the old one is not reused.
    server.accept_key("rotated-secret");
    let (workers, rotated) = fleet(
        1,
        &Job {
            secret: "rotated-secret",
            ..job
        },
    )
    .await;
    assert_all_ok(&rotated, REQUESTS);
    assert_eq!(
        server.token_request_count(),
        2,
        "a changed secret fetches anew"
    );
    finish(workers).await;
}

/// The baseline of the two tests above: without a store, each process fetches its own token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_store_eight_processes_fetch_eight_tokens() {
    let server = akool_server().await;
    let base_url = server.base_url();
    let job = Job::new(&base_url, "none".to_owned(), 1);
    let workers = cold_fleet("no store", &job).await;
    assert_eq!(server.token_request_count(), PROCESSES);
    finish(workers).await;
}

/// A fleet sharing one Redis, warmed up: `PROCESSES` workers that sent their first requests
/// on one getToken call between them, each ready for `phases - 1` more phases.
async fn warm_redis_fleet(
    name: &str,
    phases: usize,
) -> Option<(RedisServer, MockServer, Vec<Worker>)> {
    let redis = RedisServer::start(name)?;
    let server = akool_server().await;
    let base_url = server.base_url();
    let job = Job::new(&base_url, format!("redis:{}", redis.url()), phases);
    let workers = cold_fleet("redis fleet, warming up", &job).await;
    assert_eq!(server.token_request_count(), 1);
    Some((redis, server, workers))
}

/// Asserts that every request of a phase with Redis failing succeeded, none waiting much
/// longer than the bound; prints the slowest.
fn assert_bounded(reports: &[Report], what: &str, fetched: usize) {
    assert_all_ok(reports, REQUESTS);
    let slowest = reports.iter().map(|r| r.max_ms).max().unwrap();
    eprintln!(
        "redis {what}: {fetched} getToken calls from {PROCESSES} processes; slowest request \
         {slowest} ms (bound {} ms)",
        BOUND.as_millis()
    );
    // Generous: the bound, plus a getToken call and a replay on a loaded 2-core machine.
    assert!(
        u128::from(slowest) < BOUND.as_millis() + 5_000,
        "no request waits much longer than the bound: {slowest} ms"
    );
}

async fn finish(workers: Vec<Worker>) {
    for worker in workers {
        worker.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_mid_run_each_process_fetches_for_itself_and_sharing_resumes_when_back() {
    let Some((mut redis, server, mut workers)) = warm_redis_fleet("redis_killed_mid_run", 3).await
    else {
        return;
    };

    // Redis dies, and the tokens expire: every process must get a token without it.
    redis.kill();
    server.expire_tokens();
    let down = next_phase(&mut workers).await;
    let fetched_while_down = server.token_request_count() - 1;
    assert_bounded(&down, "down", fetched_while_down);
    assert!((1..=PROCESSES).contains(&fetched_while_down));

    // Redis is back (empty): sharing resumes, one getToken for the fleet.
    redis.restart();
    server.expire_tokens();
    let before = server.token_request_count();
    let back = next_phase(&mut workers).await;
    assert_all_ok(&back, REQUESTS);
    assert_eq!(
        server.token_request_count() - before,
        1,
        "sharing resumed: one getToken for the fleet"
    );
    finish(workers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_frozen_mid_run_costs_a_fetch_at_most_the_wait_bound() {
    let Some((redis, server, mut workers)) = warm_redis_fleet("redis_frozen_mid_run", 2).await
    else {
        return;
    };

    // Redis stops answering (SIGSTOP: connections open, no replies), and the tokens expire.
    redis.freeze();
    server.expire_tokens();
    let frozen = next_phase(&mut workers).await;
    redis.thaw();
    assert_bounded(&frozen, "frozen", server.token_request_count() - 1);
    finish(workers).await;
}

/// The worker: not a test on its own (it returns at once unless re-invoked by the tests above).
#[test]
fn fleet_worker() {
    if std::env::var_os(WORKER_ENV).is_none() {
        return;
    }
    // Process-wide, and safe so: the worker is the only test of its process.
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(worker());
}

async fn worker() {
    use tower::{Service, ServiceExt};
    use tower_api_auth::TokenAuthLayer;
    use tower_api_auth::providers::akool;
    use tower_api_auth::token::store::TokenStore;

    let env = |name: &str| std::env::var(name).unwrap();
    let base_url = env("FLEET_BASE_URL");
    let phases: usize = env("FLEET_PHASES").parse().unwrap();
    let requests: usize = env("FLEET_REQUESTS").parse().unwrap();
    let store = env("FLEET_STORE");
    let store = match store.split_once(':').unwrap_or((&store, "")) {
        ("file", dir) => Some(TokenStore::file(dir)),
        ("redis", url) => Some(TokenStore::redis(url).unwrap()),
        ("none", _) => None,
        (other, _) => panic!("unknown store {other}"),
    }
    .map(|store| store.wait_bound(BOUND));

    let http = support::client();
    let mut tokens = akool::client_credentials("client-id", env("FLEET_SECRET"))
        .base_url(&base_url)
        .token_builder(http.clone())
        // The test expires tokens phase after phase, seconds apart: each rejection refetches.
        .rejection_refetch_interval(Duration::ZERO);
    if let Some(store) = store {
        tokens = tokens.store(store);
    }
    let tokens = tokens.build().unwrap();
    let api = tower::ServiceBuilder::new()
        .layer(TokenAuthLayer::new(tokens))
        .service(http);
    let url = format!("{base_url}/api/open/v3/content/video/createbytalkingphoto");
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    for phase in 1..=phases {
        if phase > 1 {
            stdin.next_line().await.unwrap().expect("the parent's go");
        }
        let calls = (0..requests).map(|i| {
            let mut api = api.clone();
            let request = support::post_json(&url, &format!(r#"{{"n":{i}}}"#));
            async move {
                let started = std::time::Instant::now();
                let response = api.ready().await.unwrap().call(request).await;
                let code = match response {
                    Ok(response) => support::json(response).await["code"].as_i64(),
                    Err(_) => None,
                };
                (code == Some(1000), started.elapsed())
            }
        });
        let results: Vec<_> = futures::stream::iter(calls)
            .buffer_unordered(32)
            .collect()
            .await;
        let ok = results.iter().filter(|(ok, _)| *ok).count();
        let max_ms = results
            .iter()
            .map(|(_, took)| took.as_millis())
            .max()
            .unwrap_or(0);
        println!(
            "FLEET phase={phase} ok={ok} failed={} max_ms={max_ms}",
            results.len() - ok
        );
    }
}

use futures::StreamExt;
