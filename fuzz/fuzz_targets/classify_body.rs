//! Arbitrary statuses, content types, `Retry-After` values and bodies through `ClassifyLayer`
//! with Akool's classifier (status, then body code) and the status-only one, the body
//! delivered whole, as a stream of unknown size, and as frames of a known size.
//!
//! Checks: nothing panics; the caller reads back exactly the bytes (and trailers) the server
//! sent; the outcome agrees with a model of the documented rules written here: the kind by
//! status, Akool's body code when the body is JSON within the limit, the failure message, the
//! `Retry-After` seconds, and `error_for_outcome` turning exactly the failures into errors.

#![no_main]

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::executor::block_on;
use http::header::{CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};
use http::{Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Full, StreamBody};
use libfuzzer_sys::fuzz_target;
use tower::{ServiceBuilder, ServiceExt};
use tower_api_auth::ClassifyLayer;
use tower_api_auth::body::ResponseBody;
use tower_api_auth::outcome::{
    Classifier, DEFAULT_BODY_LIMIT, Outcome, OutcomeKind, StatusClassifier, error_for_outcome,
};
use tower_api_auth::providers::akool;

/// A response, written as HTTP writes one:
///
/// ```text
/// <status> [akool] [stream|sized] [cuts=3,9] [trailers] [limit=N]
/// name: value
///
/// body
/// ```
///
/// `akool` picks Akool's classifier (default: the status classifier); `stream` delivers the
/// body as a `StreamBody` (size unknown), `sized` as frames of a known total size (default: one
/// `Full`); `cuts` are where the frames are cut; `trailers` adds trailers after the data;
/// `limit` sets the body limit (default 64 KiB). (`fail`, from older corpora, is ignored: every
/// input now checks `error_for_outcome`.)
#[derive(Debug)]
struct Input {
    status: StatusCode,
    akool: bool,
    delivery: Delivery,
    cuts: Vec<usize>,
    trailers: bool,
    limit: usize,
    headers: HeaderMap,
    body: Bytes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    Whole,
    Stream,
    Sized,
}

fn parse(input: &[u8]) -> Input {
    let (head, body) = tower_api_auth_fuzz::split_head(input);
    let mut parsed = Input {
        status: StatusCode::OK,
        akool: false,
        delivery: Delivery::Whole,
        cuts: Vec::new(),
        trailers: false,
        limit: DEFAULT_BODY_LIMIT,
        headers: HeaderMap::new(),
        body: Bytes::copy_from_slice(body),
    };
    let mut words = tower_api_auth_fuzz::words(head.first().copied().unwrap_or_default());
    if let Some(status) = words
        .next()
        .and_then(|word| word.parse::<u16>().ok())
        .and_then(|code| StatusCode::from_u16(code).ok())
    {
        parsed.status = status;
    }
    for word in words {
        match word {
            "akool" => parsed.akool = true,
            "stream" => parsed.delivery = Delivery::Stream,
            "sized" => parsed.delivery = Delivery::Sized,
            "trailers" => parsed.trailers = true,
            "fail" => {}
            _ => {
                if let Some(limit) = word.strip_prefix("limit=").and_then(|n| n.parse().ok()) {
                    parsed.limit = limit;
                }
                if let Some(cuts) = word.strip_prefix("cuts=") {
                    parsed.cuts = cuts.split(',').filter_map(|n| n.parse().ok()).collect();
                }
            }
        }
    }
    for line in head.iter().skip(1) {
        if let Some((name, value)) = tower_api_auth_fuzz::header(line) {
            parsed.headers.append(name, value);
        }
    }
    parsed
}

/// `data` cut at `cuts` (empty frames included), and trailers if asked.
fn frames(data: &Bytes, cuts: &[usize], trailers: bool) -> VecDeque<Frame<Bytes>> {
    let mut at: Vec<usize> = cuts.iter().map(|cut| *cut % (data.len() + 1)).collect();
    at.sort_unstable();
    let mut frames = VecDeque::new();
    let mut start = 0;
    for end in at.into_iter().chain([data.len()]) {
        frames.push_back(Frame::data(data.slice(start..end)));
        start = end;
    }
    if trailers {
        frames.push_back(Frame::trailers(sent_trailers()));
    }
    frames
}

fn sent_trailers() -> HeaderMap {
    let mut trailers = HeaderMap::new();
    trailers.insert("x-checksum", HeaderValue::from_static("fuzz"));
    trailers
}

/// Frames with an exact size hint.
struct Sized {
    frames: VecDeque<Frame<Bytes>>,
    remaining: u64,
}

impl Body for Sized {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let frame = self.frames.pop_front();
        if let Some(data) = frame.as_ref().and_then(Frame::data_ref) {
            self.remaining -= data.len() as u64;
        }
        Poll::Ready(frame.map(Ok))
    }

    fn is_end_stream(&self) -> bool {
        self.frames.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

type AnyBody = http_body_util::combinators::UnsyncBoxBody<Bytes, Infallible>;

fn response(status: StatusCode, headers: &HeaderMap, body: AnyBody) -> Response<AnyBody> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers.clone();
    response
}

/// The model of "is this body JSON": `application/json` or `application/*+json`, any case, any
/// parameters.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(Ok(value)) = headers.get(CONTENT_TYPE).map(HeaderValue::to_str) else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence
            .strip_prefix("application/")
            .and_then(|subtype| subtype.strip_suffix("+json"))
            .is_some_and(|prefix| !prefix.is_empty())
}

fn kind_by_status(status: StatusCode) -> Option<OutcomeKind> {
    Some(match status.as_u16() {
        100..=399 => OutcomeKind::Success,
        401 => OutcomeKind::CredentialRejected,
        403 => OutcomeKind::Forbidden,
        429 => OutcomeKind::RateLimited,
        408 | 500..=599 => OutcomeKind::Transient,
        400..=499 => OutcomeKind::ClientError,
        // Not a status the docs speak of.
        _ => return None,
    })
}

fn akool_kind(code: i64) -> OutcomeKind {
    match code {
        1000 => OutcomeKind::Success,
        1101 => OutcomeKind::CredentialRejected,
        1102 => OutcomeKind::CredentialMissing,
        1009 => OutcomeKind::Forbidden,
        1200 => OutcomeKind::Banned,
        1005 => OutcomeKind::RateLimited,
        1108 => OutcomeKind::Transient,
        _ => OutcomeKind::ClientError,
    }
}

/// Checks the outcome against the model; `read` says whether the classifier saw the body.
fn check_outcome(input: &Input, read: bool, outcome: &Outcome) {
    let (status, headers, sent) = (input.status, &input.headers, &input.body);
    assert_eq!(outcome.status(), status);
    let Some(by_status) = kind_by_status(status) else {
        return;
    };
    // Only a complete, valid JSON document is judged here; the classifier may be more lenient.
    let json: Option<serde_json::Value> = read.then(|| serde_json::from_slice(sent).ok()).flatten();
    if by_status != OutcomeKind::Success {
        assert_eq!(outcome.kind(), by_status, "{input:?}");
        assert_eq!(outcome.code(), None);
        if let Some(json) = &json {
            let message = ["detail", "error", "message"]
                .iter()
                .find_map(|field| json.get(*field)?.as_str());
            assert_eq!(outcome.message(), message, "{input:?}");
        }
        let seconds = headers
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if let Some(seconds) = seconds {
            assert_eq!(
                outcome.retry_after(),
                Some(std::time::Duration::from_secs(seconds))
            );
        }
        return;
    }
    if !input.akool {
        assert_eq!(outcome.kind(), OutcomeKind::Success);
        return;
    }
    let code = match (read, &json) {
        (false, _) => None,
        (true, Some(json)) => json.get("code").and_then(serde_json::Value::as_i64),
        // Not valid JSON on its own: no claim.
        (true, None) => return,
    };
    assert_eq!(outcome.code(), code, "{input:?}");
    let kind = code.map_or(OutcomeKind::Success, akool_kind);
    assert_eq!(outcome.kind(), kind, "{input:?}");
    if let (Some(json), false) = (&json, kind == OutcomeKind::Success) {
        let msg = json.get("msg").and_then(serde_json::Value::as_str);
        assert_eq!(outcome.message(), msg, "{input:?}");
    }
}

fuzz_target!(|input: &[u8]| {
    let input = parse(input);
    let (status, headers, sent) = (input.status, &input.headers, &input.body);
    let body: AnyBody = match input.delivery {
        Delivery::Whole => Full::new(sent.clone()).boxed_unsync(),
        Delivery::Stream => {
            let frames = frames(sent, &input.cuts, input.trailers);
            let stream = futures::stream::iter(frames.into_iter().map(Ok::<_, Infallible>));
            StreamBody::new(stream).boxed_unsync()
        }
        Delivery::Sized => Sized {
            frames: frames(sent, &input.cuts, input.trailers),
            remaining: sent.len() as u64,
        }
        .boxed_unsync(),
    };
    let trailers = input.trailers && input.delivery != Delivery::Whole;
    let wants_body = input.akool || !status.is_success();
    // Sized or streamed alike: a JSON body that ends within the limit is read.
    let read = sent.len() <= input.limit && is_json(headers) && wants_body;

    let server = {
        let mut answer = Some(response(status, headers, body));
        tower::service_fn(move |_: Request<()>| {
            let answer = answer.take().expect("called once");
            async move { Ok::<_, Infallible>(answer) }
        })
    };
    let response = if input.akool {
        call(server, akool::classifier(), input.limit)
    } else {
        call(server, StatusClassifier::new(), input.limit)
    };

    let outcome = response
        .extensions()
        .get::<Outcome>()
        .expect("every response is classified")
        .clone();
    check_outcome(&input, read, &outcome);
    let (head, body) = response.into_parts();
    // `error_for_outcome` turns exactly the failures into errors, with their outcome.
    match error_for_outcome(Response::from_parts(head, ())) {
        Ok(_) => assert!(
            outcome.is_success(),
            "a failure was not turned into an error"
        ),
        Err(error) => assert_eq!(error.outcome(), &outcome),
    }

    let collected = block_on(body.collect()).expect("infallible body");
    let received_trailers = collected.trailers().cloned();
    assert_eq!(&collected.to_bytes(), sent, "the body changed: {input:?}");
    assert_eq!(
        received_trailers,
        trailers.then(sent_trailers),
        "the trailers changed: {input:?}"
    );
});

fn call<S, C>(server: S, classifier: C, limit: usize) -> Response<ResponseBody<AnyBody>>
where
    S: tower::Service<Request<()>, Response = Response<AnyBody>, Error = Infallible>,
    C: Classifier,
{
    let layer = ClassifyLayer::new(classifier).body_limit(limit);
    let service = ServiceBuilder::new().layer(layer).service(server);
    block_on(service.oneshot(Request::new(()))).expect("an infallible body and service")
}
