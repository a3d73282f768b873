//! Token stores across real OS processes: this test binary re-invoked as workers
//! (`tokens::store::fleet::worker::fleet_worker` alone, active only when
//! `TOWER_API_AUTH_FLEET_WORKER` is set), each sending its requests through `TokenAuthLayer` to one loopback Akool stand-in
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
            .args(["--exact", &worker::test_name()])
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
            // libtest may have started the line
            // ("test tokens::store::fleet::worker::fleet_worker ... ").
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

async fn finish(workers: Vec<Worker>) {
    for worker in workers {
        worker.finish().await;
    }
}

use futures::StreamExt;

mod redis_outage;
mod sharing;
mod worker;
