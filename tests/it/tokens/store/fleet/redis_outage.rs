//! Redis killed or frozen under a running fleet: each process fetches for itself within the wait
//! bound, and sharing resumes when Redis is back.

use super::*;

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
