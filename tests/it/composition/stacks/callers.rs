//! Four callers at once on clones of a stack (a `Buffer` shared with the token source, a
//! `ConcurrencyLimit`, ...): all succeed, one fetch per token.

use super::*;

/// Four callers at once, each on a clone of the stack.
#[derive(Clone, Copy, Debug)]
enum Callers {
    /// `TokenAuth<Buffer(4)>`, the `Buffer` shared with the token source; all four made ready
    /// before any calls.
    SharedBuffer,
    /// `TokenAuth<ConcurrencyLimit(1)<Buffer(4)>>`, a limit of its own for each caller; all
    /// four made ready before any calls.
    OwnLimits,
    /// `TokenAuth<ConcurrencyLimit(1)<Buffer(4)>>`, one limit (one semaphore) cloned for all.
    /// The first caller made ready holds the only permit until it calls, so all four cannot be
    /// ready at once: each is made ready and calls in its own task, all four tasks at once.
    OneLimit,
    /// `Buffer(4)<TokenAuth>`; all four made ready before any calls.
    BufferOutside,
}

const CALLERS: [Callers; 4] = [
    Callers::SharedBuffer,
    Callers::OwnLimits,
    Callers::OneLimit,
    Callers::BufferOutside,
];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_callers_at_once_all_succeed_with_one_fetch_per_token() {
    let mut tally = Tally::default();
    for callers in CALLERS {
        for rejection in [None].into_iter().chain(REJECTIONS.map(Some)) {
            for protocol in PROTOCOLS {
                let name = format!("{callers:?} / {rejection:?} / {protocol:?}");
                tally
                    .run(name, four_callers(callers, rejection, protocol))
                    .await;
            }
        }
    }
    tally.assert_all_passed();
}

/// Four callers, each sending its own body, against a stand-in that rejects `token-1` with
/// `rejection` (or accepts it).
async fn four_callers(callers: Callers, rejection: Option<Rejection>, protocol: Protocol) {
    let stand_in = StandIn::start(rejection).await;
    let http = protocol.client();
    let shared = Buffer::new(http.clone(), 4);
    let tokens = match callers {
        Callers::BufferOutside => tokens(http.clone(), &stand_in.base_url()),
        _ => tokens(shared.clone(), &stand_in.base_url()),
    };
    let layer = TokenAuthLayer::new(tokens.clone());
    let bodies: Vec<_> = (0..4)
        .map(|i| request_json(&format!("caller {i}")))
        .collect();

    let answers = if let Callers::OneLimit = callers {
        let api = boxed(layer.layer(ConcurrencyLimitLayer::new(1).layer(shared.clone())));
        let calls = bodies.iter().map(|body| {
            let request = stand_in.request(body);
            let api = api.clone();
            tokio::spawn(async move { read(api.oneshot(request).await).await })
        });
        futures::future::join_all(calls).await
    } else {
        let outside =
            matches!(callers, Callers::BufferOutside).then(|| Buffer::new(layer.layer(http), 4));
        let mut ready = Vec::new();
        for _ in 0..4 {
            let mut caller = match callers {
                Callers::OwnLimits => {
                    boxed(layer.layer(ConcurrencyLimitLayer::new(1).layer(shared.clone())))
                }
                Callers::BufferOutside => boxed(outside.clone().unwrap()),
                _ => boxed(layer.layer(shared.clone())),
            };
            caller.ready().await.expect("ready");
            ready.push(caller);
        }
        // All four calls are made before any answer is awaited, each answer in a task.
        let calls = ready.into_iter().zip(&bodies).map(|(mut caller, body)| {
            let answer = caller.call(stand_in.request(body));
            tokio::spawn(async move { read(answer.await).await })
        });
        futures::future::join_all(calls).await
    };

    for (i, answer) in answers.into_iter().enumerate() {
        let Answer { status, bytes, .. } = answer.expect("caller task");
        assert_eq!(status, StatusCode::OK, "caller {i}: {}", text(&bytes));
        assert_eq!(code(&bytes), Some(1000), "caller {i}: {}", text(&bytes));
        let echo = serde_json::from_slice::<Value>(&bytes).unwrap()["data"]["echo"].clone();
        assert_eq!(echo, serde_json::from_slice::<Value>(&bodies[i]).unwrap());
    }
    let log = stand_in.log();
    let calls = log.calls();
    for i in 0..4 {
        let caller = format!("caller {i}");
        let expected: &[&[&str]] = match rejection {
            None => &[&["Bearer token-1"]],
            // Rejected with `token-1` and replayed once with `token-2`; or, called once another
            // caller's rejection was reported, sent with `token-2` straight away.
            Some(_) => &[&["Bearer token-1", "Bearer token-2"], &["Bearer token-2"]],
        };
        let bearers = log.bearers_from(&caller);
        assert!(
            expected.contains(&bearers.as_slice()),
            "{caller}: API calls {calls:?}"
        );
    }
    // One fetch, and one refetch for all the requests rejected with `token-1`.
    let fetches = if rejection.is_some() { 2 } else { 1 };
    assert_eq!(
        log.get_token, fetches,
        "getToken calls; API calls {calls:?}"
    );
    assert_eq!(tokens.fetch_count(), fetches as u64);
}
