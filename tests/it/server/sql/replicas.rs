//! Replicas on one PostgreSQL: revocation latency across two real server processes, and the
//! outage policy while the database is stopped and started again.
//!
//! The server processes are this test binary run again (`std::env::current_exe()`) with
//! `TOWER_API_AUTH_REPLICA_URL` set, running only the ignored test
//! `server::sql::replicas::replica_process` (`--exact`): an axum app with
//! `ValidateCredentialLayer` over a `SqlKeyStore`, printing its address, serving until its
//! standard input closes.

use crate::support;
use crate::support::postgres;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::routing::{get, post};
use http::StatusCode;
use tower_api_auth::server::KeyFormat;
use tower_api_auth::server::sql::{KeyDatabase, NewKey, OutagePolicy, SqlKeyStore};
use tower_api_auth::{Placement, Secret, ValidateCredentialLayer};

use support::{Served, client_h2, get as request};

const REPLICA_URL: &str = "TOWER_API_AUTH_REPLICA_URL";

fn format() -> KeyFormat {
    KeyFormat::new("acme_live").unwrap()
}

/// The app a replica serves: `/` behind the layer, and `/revoke/{id}` (unauthenticated here,
/// an admin endpoint in a real app) revoking through this replica's database connection.
/// Revoking key after key, the test measures how soon the *other* replica refuses.
fn app(store: SqlKeyStore) -> axum::Router {
    let guarded = axum::Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(
            ValidateCredentialLayer::new(Placement::bearer(), store.clone())
                .key_format(store.database().format().clone()),
        );
    // Revoke, then refresh: this replica refuses the key before the response (read your own
    // writes); the others learn of it by NOTIFY.
    let admin = axum::Router::new()
        .route(
            "/revoke/{id}",
            post(
                |State(store): State<SqlKeyStore>, Path(id): Path<String>| async move {
                    match store.database().revoke(&id).await {
                        Ok(_) => match store.refresh().await {
                            Ok(()) => StatusCode::NO_CONTENT,
                            Err(_) => StatusCode::SERVICE_UNAVAILABLE,
                        },
                        Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
                    }
                },
            ),
        )
        .with_state(store);
    guarded.merge(admin)
}

/// A replica process: runs only when re-invoked by `revocation_reaches_the_other_replica`.
#[test]
#[ignore = "a server process of revocation_reaches_the_other_replica, run by it"]
fn replica_process() {
    let Ok(url) = std::env::var(REPLICA_URL) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let database = KeyDatabase::connect(&url, format()).await.unwrap();
        let store = SqlKeyStore::open(database).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("REPLICA LISTENING {}", listener.local_addr().unwrap());
        let stdin_closed = tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            while std::io::stdin()
                .read_line(&mut line)
                .is_ok_and(|read| read > 0)
            {}
        });
        axum::serve(listener, app(store))
            .with_graceful_shutdown(async move {
                let _ = stdin_closed.await;
            })
            .await
            .unwrap();
    });
}

/// A replica process, killed on drop.
struct Replica {
    child: Child,
    base_url: String,
}

impl Replica {
    fn start(url: &str) -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([&support::test_path(module_path!(), "replica_process")])
            .args(["--exact", "--ignored", "--nocapture"])
            .env(REPLICA_URL, url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let address = stdout
            .lines()
            .map(Result::unwrap)
            .find_map(|line| line.strip_prefix("REPLICA LISTENING ").map(str::to_owned))
            .expect("the replica printed its address");
        Self {
            child,
            base_url: format!("http://{address}"),
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn status(client: &support::HttpClient, url: &str, key: &Secret) -> StatusCode {
    let mut request = request(url);
    request.headers_mut().insert(
        http::header::AUTHORIZATION,
        format!("Bearer {}", key.expose()).parse().unwrap(),
    );
    client.request(request).await.unwrap().status()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let at = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[at]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_reaches_the_other_replica() {
    let Some(pg) = postgres::Postgres::start("revocation_reaches_the_other_replica") else {
        return;
    };
    const REVOCATIONS: usize = 100;
    let database = KeyDatabase::connect(&pg.url(), format()).await.unwrap();
    let mut keys = Vec::new();
    for n in 0..REVOCATIONS {
        let issued = database
            .create(NewKey::new(format!("user-{n}")))
            .await
            .unwrap();
        keys.push(issued);
    }
    let steady = database.create(NewKey::new("steady")).await.unwrap();

    let a = Replica::start(&pg.url());
    let b = Replica::start(&pg.url());
    let client = client_h2();

    // Steady load on both replicas with a key that stays valid: every answer must be 200.
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicUsize::new(0));
    let mut load = Vec::new();
    for base_url in [&a.base_url, &b.base_url] {
        for _ in 0..2 {
            let (client, url, key) = (client.clone(), base_url.clone(), steady.key().clone());
            let (stop, served) = (Arc::clone(&stop), Arc::clone(&served));
            load.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    assert_eq!(status(&client, &url, &key).await, StatusCode::OK);
                    served.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
    }

    let mut latencies = Vec::with_capacity(REVOCATIONS);
    for issued in &keys {
        let key = issued.key();
        assert_eq!(status(&client, &b.base_url, key).await, StatusCode::OK);
        assert_eq!(status(&client, &a.base_url, key).await, StatusCode::OK);
        let revoke = post_request(format!("{}/revoke/{}", a.base_url, issued.info().id()));
        let started = Instant::now();
        let response = client.request(revoke).await.unwrap();
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        // Ask the other replica until it refuses.
        while status(&client, &b.base_url, key).await == StatusCode::OK {}
        latencies.push(started.elapsed());
        // Once refused, refused everywhere and for good.
        for _ in 0..3 {
            for replica in [&a, &b] {
                assert_eq!(
                    status(&client, &replica.base_url, key).await,
                    StatusCode::UNAUTHORIZED
                );
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }

    latencies.sort();
    let (p50, p99, max) = (
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        latencies[latencies.len() - 1],
    );
    eprintln!(
        "revocation latency across two replica processes over {REVOCATIONS} revocations: \
         p50 {p50:?}, p99 {p99:?}, max {max:?} ({} requests of steady load served meanwhile)",
        served.load(Ordering::Relaxed)
    );
    assert!(p99 < Duration::from_secs(1), "p99 {p99:?}");
}

/// A POST with an empty body.
fn post_request(url: String) -> http::Request<support::Body> {
    http::Request::post(url)
        .body(support::Body::default())
        .unwrap()
}

/// PostgreSQL stopped while requests flow: the fail-closed store answers 503 with Retry-After,
/// the snapshot store keeps admitting (then fails closed once its snapshot is too old), nothing
/// panics, and both serve again once PostgreSQL is started again, following revocations.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_stopped_mid_load_then_started() {
    let Some(pg) = postgres::Postgres::start("database_stopped_mid_load_then_started") else {
        return;
    };
    let database = KeyDatabase::connect(&pg.url(), format()).await.unwrap();
    let alice = database.create(NewKey::new("alice")).await.unwrap();
    let bob = database.create(NewKey::new("bob")).await.unwrap();
    let open = |policy| {
        let database = database.clone();
        async move {
            SqlKeyStore::builder(database)
                .poll_interval(Duration::from_millis(100))
                .outage(policy)
                .open()
                .await
                .unwrap()
        }
    };
    let closed = open(OutagePolicy::FailClosed).await;
    let stale = open(OutagePolicy::serve_snapshot(Duration::from_secs(3600))).await;
    let short_max_age = Duration::from_millis(300);
    let short = open(OutagePolicy::serve_snapshot(short_max_age)).await;
    let servers = [
        Served::start(app(closed.clone())).await,
        Served::start(app(stale.clone())).await,
        Served::start(app(short.clone())).await,
    ];
    let client = client_h2();

    // Load on every server throughout: only 200 or 503, never anything else.
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for served in &servers {
        let (client, url, key) = (client.clone(), served.base_url.clone(), alice.key().clone());
        let stop = Arc::clone(&stop);
        load.push(tokio::spawn(async move {
            let mut seen = [0usize; 2];
            while !stop.load(Ordering::Relaxed) {
                match status(&client, &url, &key).await {
                    StatusCode::OK => seen[0] += 1,
                    StatusCode::SERVICE_UNAVAILABLE => seen[1] += 1,
                    other => panic!("{other}"),
                }
            }
            seen
        }));
    }
    for served in &servers {
        assert_eq!(
            status(&client, &served.base_url, alice.key()).await,
            StatusCode::OK
        );
    }

    pg.stop();
    for store in [&closed, &stale, &short] {
        assert!(store.refresh().await.is_err());
        assert!(!store.database_reachable());
    }
    let mut request = request(&servers[0].base_url);
    request.headers_mut().insert(
        http::header::AUTHORIZATION,
        format!("Bearer {}", alice.key().expose()).parse().unwrap(),
    );
    let response = client.request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()[http::header::RETRY_AFTER], "5");
    assert_eq!(
        status(&client, &servers[1].base_url, alice.key()).await,
        StatusCode::OK
    );
    // The short-lived snapshot is served until it is too old, then refused.
    within(async {
        while short.snapshot_age() <= short_max_age {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(
        status(&client, &servers[2].base_url, alice.key()).await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert!(stale.snapshot_age() > short_max_age, "the age is exposed");

    pg.start_again();
    // Wait for every store's follower to find the database again.
    for store in [&closed, &stale, &short] {
        within(async {
            while !store.database_reachable() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
    }
    for served in &servers {
        assert_eq!(
            status(&client, &served.base_url, alice.key()).await,
            StatusCode::OK
        );
    }
    // Changes flow again: a revocation reaches every store, by notification or poll.
    database.revoke(bob.info().id()).await.unwrap();
    let revoked_at = database
        .key(bob.info().id())
        .await
        .unwrap()
        .unwrap()
        .revision();
    for store in [&closed, &stale, &short] {
        within(async {
            while store.revision() < revoked_at {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
    }
    for served in &servers {
        assert_eq!(
            status(&client, &served.base_url, bob.key()).await,
            StatusCode::UNAUTHORIZED
        );
    }

    stop.store(true, Ordering::Relaxed);
    let mut totals = Vec::new();
    for task in load {
        totals.push(task.await.unwrap());
    }
    eprintln!("[ok, 503] per server (fail closed, 1 h snapshot, 300 ms snapshot): {totals:?}");
    assert_eq!(totals[1][1], 0, "the 1 h snapshot was served throughout");
    assert!(totals[0][1] > 0, "fail closed refused during the outage");
}

/// Waits for a condition that real processes bring about (PostgreSQL back, a snapshot aging):
/// a minute at most, so that a store that never gets there fails the test instead of hanging it.
async fn within(condition: impl std::future::Future<Output = ()>) {
    tokio::time::timeout(Duration::from_secs(60), condition)
        .await
        .expect("the condition held within a minute");
}
