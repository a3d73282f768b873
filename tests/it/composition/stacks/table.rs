//! The table itself: every stack a user builds around `TokenAuthLayer`, each run against every
//! rejection over HTTP/1 and HTTP/2: one refetch, one replay, the API's answer byte for byte.

use super::*;

/// A row's stack: `$layer` outside `TokenAuthLayer` (added by `ServiceBuilderExt::token_auth`).
macro_rules! outside {
    ($layer:expr) => {
        |http, base| {
            let stack = ServiceBuilder::new()
                .layer($layer)
                .token_auth(tokens(http.clone(), base));
            boxed(stack.service(http))
        }
    };
}

/// A row's stack: `$layer` inside `TokenAuthLayer` (added by `ServiceBuilderExt::token_auth`).
macro_rules! inside {
    ($layer:expr) => {
        |http, base| {
            let stack = ServiceBuilder::new()
                .token_auth(tokens(http.clone(), base))
                .layer($layer);
            boxed(stack.service(http))
        }
    };
}

/// The stacks, outermost layer first.
fn rows() -> Vec<Row> {
    vec![
        Row {
            name: "TokenAuthLayer alone",
            build: |http, base| boxed(TokenAuthLayer::new(tokens(http.clone(), base)).layer(http)),
        },
        Row {
            name: "ClassifyLayer outside TokenAuthLayer",
            build: |http, base| {
                let stack = ServiceBuilder::new()
                    .layer(ClassifyLayer::new(akool::classifier()))
                    .layer(TokenAuthLayer::new(tokens(http.clone(), base)));
                boxed(stack.service(http))
            },
        },
        Row {
            name: "ClassifyLayer inside TokenAuthLayer",
            build: |http, base| {
                let stack = ServiceBuilder::new()
                    .layer(TokenAuthLayer::new(tokens(http.clone(), base)))
                    .layer(ClassifyLayer::new(akool::classifier()));
                boxed(stack.service(http))
            },
        },
        Row {
            name: "ServiceBuilderAuthExt .classify().token_auth() (examples/akool.rs)",
            build: |http, base| {
                let tokens = tokens(http.clone(), base);
                let stack = ServiceBuilder::new()
                    .classify(akool::classifier())
                    .token_auth(tokens);
                boxed(stack.service(http))
            },
        },
        Row {
            name: "RetryLayer(RetryPolicy) outside TokenAuthLayer",
            build: outside!(RetryLayer::new(RetryPolicy::new())),
        },
        Row {
            name: "RetryLayer(RetryPolicy) outside ClassifyLayer outside TokenAuthLayer",
            build: |http, base| {
                let stack = ServiceBuilder::new()
                    .layer(RetryLayer::new(RetryPolicy::new()))
                    .classify(akool::classifier())
                    .token_auth(tokens(http.clone(), base));
                boxed(stack.service(http))
            },
        },
        Row {
            name: "Buffer(4) outside TokenAuthLayer",
            build: |http, base| {
                let tokens = tokens(http.clone(), base);
                boxed(
                    ServiceBuilder::new()
                        .buffer(4)
                        .token_auth(tokens)
                        .service(http),
                )
            },
        },
        Row {
            name: "Buffer(4) shared by the token source and TokenAuthLayer",
            build: |http, base| {
                let shared = Buffer::new(http, 4);
                let tokens = tokens(shared.clone(), base);
                boxed(TokenAuthLayer::new(tokens).layer(shared))
            },
        },
        Row {
            name: "FollowRedirectLayer inside TokenAuthLayer",
            build: inside!(FollowRedirectLayer::new()),
        },
        Row {
            name: "FollowRedirectLayer outside TokenAuthLayer",
            build: outside!(FollowRedirectLayer::new()),
        },
        Row {
            name: "TraceLayer outside TokenAuthLayer",
            build: outside!(TraceLayer::new_for_http()),
        },
        Row {
            name: "TraceLayer inside TokenAuthLayer",
            build: inside!(TraceLayer::new_for_http()),
        },
        Row {
            name: "ConcurrencyLimitLayer(1) inside TokenAuthLayer",
            build: inside!(ConcurrencyLimitLayer::new(1)),
        },
        Row {
            name: "ConcurrencyLimitLayer(1) inside TokenAuthLayer, one limit shared with the token source",
            build: |http, base| {
                let limited = ConcurrencyLimitLayer::new(1).layer(http);
                let stack = ServiceBuilder::new().token_auth(tokens(limited.clone(), base));
                boxed(stack.service(limited))
            },
        },
        Row {
            name: "TimeoutLayer outside TokenAuthLayer",
            build: outside!(TimeoutLayer::new(Duration::from_secs(30))),
        },
        Row {
            name: "everything: Retry, Trace, Buffer, Classify, TokenAuth, FollowRedirect, \
                   ConcurrencyLimit(1), Trace over a Buffer shared with the token source",
            build: |http, base| {
                let shared = Buffer::new(http, 4);
                let stack = ServiceBuilder::new()
                    .layer(RetryLayer::new(RetryPolicy::new()))
                    .layer(TraceLayer::new_for_http())
                    .buffer(4)
                    .classify(akool::classifier())
                    .token_auth(tokens(shared.clone(), base))
                    .layer(FollowRedirectLayer::new())
                    .concurrency_limit(1)
                    .layer(TraceLayer::new_for_http());
                boxed(stack.service(shared))
            },
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_stack_refetches_once_and_replays_once_whatever_the_rejection() {
    let mut cells = Vec::new();
    for row in rows() {
        for rejection in REJECTIONS {
            for protocol in PROTOCOLS {
                let name = format!("{} / {rejection:?} / {protocol:?}", row.name);
                cells.push((name, cell(row.build, rejection, protocol)));
            }
        }
    }
    let mut tally = Tally::default();
    for (name, cell) in cells {
        tally.run(name, cell).await;
    }
    tally.assert_all_passed();
}

/// One cell: a fresh stand-in rejecting `token-1` with `rejection`, one POST through the stack.
async fn cell(build: fn(Http, &str) -> Api, rejection: Rejection, protocol: Protocol) {
    let stand_in = StandIn::start(Some(rejection)).await;
    let api = build(protocol.client(), &stand_in.base_url());
    let body = request_json("matrix");
    let response = api
        .oneshot(stand_in.request(&body))
        .await
        .expect("no answer");
    let status = response.status();
    let bytes = collect(response).await;

    assert_eq!(status, StatusCode::OK, "status; body {}", text(&bytes));
    assert_eq!(code(&bytes), Some(1000), "body code; body {}", text(&bytes));
    let log = stand_in.log();
    assert_eq!(log.get_token, 2, "getToken calls");
    assert_eq!(
        log.bearers(),
        ["Bearer token-1", "Bearer token-2"],
        "API calls"
    );
    for call in &log.api {
        assert_eq!(call.body, body, "request body received by the API");
        assert_eq!(call.version, protocol.version(), "HTTP version");
    }
    assert_eq!(
        text(&bytes),
        text(&log.api[1].sent),
        "the body read by the caller is the body the API sent"
    );
}
