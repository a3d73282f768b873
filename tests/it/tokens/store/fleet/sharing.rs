//! A fleet of eight processes sharing one fetch: through Redis (and one refetch after Akool's
//! 1101), through a file store across a restart, and without a store for comparison.

use super::*;

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
