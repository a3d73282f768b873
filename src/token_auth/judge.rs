//! Judging an answer to a request sent with a token: hand it back, or replay the request once
//! with a new token.

use http::response::Parts;
use http::{Request, Response, StatusCode};
use http_body::Body;
use tower::Service;

use super::future::{Pending, State};
use crate::body::ResponseBody;
use crate::outcome::Outcome;
use crate::token::Acquire;

/// What a judged answer leads to.
#[allow(
    clippy::large_enum_variant,
    reason = "returned and matched at once, never stored: boxing would only add an allocation"
)]
pub(super) enum Verdict<S, B, ResBody>
where
    S: Service<Request<B>>,
    B: Body,
{
    Answer(Response<ResponseBody<ResBody>>),
    Next(State<S, B, ResBody>),
}

/// Judges an answer: hands it back, or replays the request with a new token. The response
/// carries the credential classifier's [`Outcome`] (unless an inner layer put one there), so a
/// caller handed a final rejection reads the provider's status, code and message, and its body.
pub(super) fn judge<S, B, ResBody>(
    mut head: Parts,
    whole: Option<&[u8]>,
    body: ResponseBody<ResBody>,
    mut pending: Box<Pending<S, B>>,
) -> Verdict<S, B, ResBody>
where
    S: Service<Request<B>>,
    B: Body,
{
    let tokens = &pending.tokens;
    let verdict = tokens.rejection().classify(&head, whole);
    let rejected = match (&verdict, head.extensions.get::<Outcome>()) {
        (_, Some(inner)) if inner.refetch_warranted() => true,
        (Some(outcome), _) => outcome.refetch_warranted(),
        (None, _) => head.status == StatusCode::UNAUTHORIZED,
    };
    if let Some(outcome) = verdict.filter(|_| head.extensions.get::<Outcome>().is_none()) {
        if cfg!(feature = "metrics") {
            tokens.rejection().count(&outcome);
        }
        head.extensions.insert(outcome);
    }
    let response = Response::from_parts(head, body);
    if !rejected {
        return Verdict::Answer(response);
    }
    crate::metrics::token_rejected();
    let generation = pending.generation;
    if pending.replayed {
        tracing::warn!(
            generation,
            "the replayed request was rejected too; handing back the API's answer"
        );
        return Verdict::Answer(response);
    }
    let Some(copy) = pending.copy.take() else {
        // Not replayable: the requests after this one get a new token (the refetch runs in a
        // task of its own), and this one gets the API's answer.
        tracing::debug!(
            generation,
            "token rejected; the request body cannot be sent again, so it is not replayed"
        );
        drop(tokens.reject(generation));
        return Verdict::Answer(response);
    };
    tracing::debug!(
        generation,
        "token rejected; replaying the request once with a new token"
    );
    match tokens.reject(generation) {
        // The same token: refreshing failed a moment ago and backs off. Sending it again
        // would be rejected again.
        Acquire::Ready(token) if token.generation == generation => {
            tracing::debug!(
                generation,
                "no new token to replay with; handing back the API's answer"
            );
            Verdict::Answer(response)
        }
        Acquire::Ready(token) => {
            pending.request = Some(copy);
            pending.replayed = true;
            Verdict::Next(State::Readying {
                token: Some(token),
                pending: Some(pending),
            })
        }
        Acquire::Wait(flight) => {
            pending.request = Some(copy);
            pending.replayed = true;
            Verdict::Next(State::Waiting {
                flight,
                pending: Some(pending),
                rejected: Some(Box::new(response)),
            })
        }
        Acquire::Refused(error) => {
            // Refetching is rate-limited (a freshly fetched token was rejected again): the
            // API's answer is the most useful thing to hand back.
            tracing::warn!(generation, error = %error, "token rejected; not replayed");
            Verdict::Answer(response)
        }
    }
}
