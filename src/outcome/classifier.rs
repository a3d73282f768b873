use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::header::RETRY_AFTER;
use http::response::Parts;
use http::{HeaderMap, StatusCode};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use std::borrow::Cow;

use super::{Outcome, OutcomeKind};

/// Turns a response into an [`Outcome`].
///
/// The head is always given; the body is given only when [`wants_body`](Self::wants_body) says
/// so *and* the body is JSON of a known size within the layer's limit (see
/// [`ClassifyLayer::body_limit`](crate::ClassifyLayer::body_limit)). A classifier must decide
/// without a body too.
///
/// Any `Fn(&Parts, Option<&[u8]>) -> Outcome` is a classifier that wants every body it can
/// have:
///
/// ```
/// use http::StatusCode;
/// use tower_api_auth::outcome::{Classifier, Outcome, OutcomeKind};
///
/// // A provider that says "quota exhausted" with HTTP 402.
/// let classifier = |head: &http::response::Parts, _body: Option<&[u8]>| match head.status {
///     StatusCode::PAYMENT_REQUIRED => Outcome::new(OutcomeKind::ClientError, head.status),
///     status if status.is_success() => Outcome::new(OutcomeKind::Success, status),
///     status => Outcome::new(OutcomeKind::Transient, status),
/// };
/// # fn assert_classifier(_: &impl Classifier) {}
/// assert_classifier(&classifier);
/// ```
pub trait Classifier: Send + Sync + 'static {
    /// Whether the body of this response would change the verdict. Only JSON bodies within
    /// the size limit are read, whatever this says.
    fn wants_body(&self, head: &Parts) -> bool;

    /// The outcome of a response, from its head and, when it was read, its body.
    fn classify(&self, head: &Parts, body: Option<&[u8]>) -> Outcome;

    /// The provider's name, for the `tracing` event of a failure.
    fn provider(&self) -> &'static str {
        "api"
    }

    /// Classifies by `self` first, and by `next` only what `self` finds successful: the
    /// usual composition of "status first, then body".
    fn then<C: Classifier>(self, next: C) -> Then<Self, C>
    where
        Self: Sized,
    {
        Then { first: self, next }
    }
}

impl<F> Classifier for F
where
    F: Fn(&Parts, Option<&[u8]>) -> Outcome + Send + Sync + 'static,
{
    fn wants_body(&self, _: &Parts) -> bool {
        true
    }

    fn classify(&self, head: &Parts, body: Option<&[u8]>) -> Outcome {
        self(head, body)
    }
}

impl<C: Classifier + ?Sized> Classifier for Arc<C> {
    fn wants_body(&self, head: &Parts) -> bool {
        (**self).wants_body(head)
    }

    fn classify(&self, head: &Parts, body: Option<&[u8]>) -> Outcome {
        (**self).classify(head, body)
    }

    fn provider(&self) -> &'static str {
        (**self).provider()
    }
}

/// [`Classifier::then`]: the second classifier judges only what the first finds successful.
#[derive(Debug, Clone)]
pub struct Then<A, B> {
    first: A,
    next: B,
}

impl<A: Classifier, B: Classifier> Classifier for Then<A, B> {
    fn wants_body(&self, head: &Parts) -> bool {
        self.first.wants_body(head) || self.next.wants_body(head)
    }

    fn classify(&self, head: &Parts, body: Option<&[u8]>) -> Outcome {
        let outcome = self.first.classify(head, body);
        if outcome.is_success() {
            self.next.classify(head, body)
        } else {
            outcome
        }
    }

    fn provider(&self) -> &'static str {
        self.first.provider()
    }
}

/// Classifies by HTTP status: 401 expired or invalid credential, 403 forbidden, 429 rate
/// limited, 408 and 5xx transient, other 4xx client errors; `Retry-After` (seconds or an HTTP
/// date) is kept. For failures it reads a JSON body's `detail`, `error` or `message` field as
/// the message.
///
/// ```
/// use http::{Response, StatusCode};
/// use tower_api_auth::outcome::{Classifier, OutcomeKind, StatusClassifier};
///
/// let (head, ()) = Response::builder().status(429).header("retry-after", "7").body(())?.into_parts();
/// let outcome = StatusClassifier::new().classify(&head, None);
/// assert_eq!(outcome.kind(), OutcomeKind::RateLimited);
/// assert_eq!(outcome.retry_after(), Some(std::time::Duration::from_secs(7)));
/// # Ok::<(), http::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct StatusClassifier {
    provider: Option<&'static str>,
}

impl StatusClassifier {
    /// A status classifier.
    pub fn new() -> Self {
        Self::default()
    }

    /// Names the provider in `tracing` events.
    pub fn provider(mut self, name: &'static str) -> Self {
        self.provider = Some(name);
        self
    }
}

impl Classifier for StatusClassifier {
    fn wants_body(&self, head: &Parts) -> bool {
        !head.status.is_success()
    }

    fn classify(&self, head: &Parts, body: Option<&[u8]>) -> Outcome {
        let status = head.status;
        let kind = match status {
            s if s.is_success() || s.is_redirection() || s.is_informational() => {
                return Outcome::new(OutcomeKind::Success, s);
            }
            StatusCode::UNAUTHORIZED => OutcomeKind::CredentialRejected,
            StatusCode::FORBIDDEN => OutcomeKind::Forbidden,
            StatusCode::TOO_MANY_REQUESTS => OutcomeKind::RateLimited,
            StatusCode::REQUEST_TIMEOUT => OutcomeKind::Transient,
            s if s.is_server_error() => OutcomeKind::Transient,
            _ => OutcomeKind::ClientError,
        };
        let mut outcome = Outcome::new(kind, status);
        if let Some(delay) = retry_after(&head.headers, SystemTime::now()) {
            outcome = outcome.with_retry_after(delay);
        }
        if let Some(message) = body.and_then(error_message) {
            outcome = outcome.with_message(message);
        }
        outcome
    }

    fn provider(&self) -> &'static str {
        self.provider.unwrap_or("api")
    }
}

/// Reads a JSON envelope's numeric code (Akool's `{"code": 1101, "msg": ...}`), for APIs that
/// report failures in the body of an HTTP 200. Codes map to outcome kinds; the success code is
/// a success, a code not in the table a client error, and a body without a code (or not JSON)
/// is left to the status.
///
/// ```
/// use http::Response;
/// use tower_api_auth::outcome::{Classifier, EnvelopeClassifier, OutcomeKind};
///
/// let classifier = EnvelopeClassifier::new("code", 0)
///     .message_field("message")
///     .code(42, OutcomeKind::CredentialRejected);
/// let (head, ()) = Response::builder().header("content-type", "application/json").body(())?.into_parts();
/// let outcome = classifier.classify(&head, Some(br#"{"code":42,"message":"token expired"}"#));
/// assert!(outcome.refetch_warranted());
/// assert_eq!(outcome.message(), Some("token expired"));
/// # Ok::<(), http::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct EnvelopeClassifier {
    code_field: &'static str,
    message_field: &'static str,
    success: i64,
    codes: Arc<HashMap<i64, OutcomeKind>>,
    provider: &'static str,
}

impl EnvelopeClassifier {
    /// Reads the code from `code_field`; `success` is the code of a successful call.
    pub fn new(code_field: &'static str, success: i64) -> Self {
        Self {
            code_field,
            message_field: "msg",
            success,
            codes: Arc::default(),
            provider: "api",
        }
    }

    /// Reads the message from this field (default `msg`).
    pub fn message_field(mut self, field: &'static str) -> Self {
        self.message_field = field;
        self
    }

    /// Maps `code` to `kind`.
    pub fn code(mut self, code: i64, kind: OutcomeKind) -> Self {
        Arc::make_mut(&mut self.codes).insert(code, kind);
        self
    }

    /// Names the provider in `tracing` events.
    pub fn provider(mut self, name: &'static str) -> Self {
        self.provider = name;
        self
    }
}

impl Classifier for EnvelopeClassifier {
    fn wants_body(&self, _: &Parts) -> bool {
        true
    }

    fn classify(&self, head: &Parts, body: Option<&[u8]>) -> Outcome {
        let status = head.status;
        let success = Outcome::new(OutcomeKind::Success, status);
        let fields = EnvelopeFields {
            code: self.code_field,
            message: self.message_field,
        };
        let Some(body) = body else {
            return success;
        };
        let mut json = serde_json::Deserializer::from_slice(body);
        let Ok(Envelope {
            code: Some(code),
            message,
        }) = fields.deserialize(&mut json)
        else {
            return success;
        };
        if code == self.success {
            return success.with_code(code);
        }
        let kind = self
            .codes
            .get(&code)
            .copied()
            .unwrap_or(OutcomeKind::ClientError);
        let outcome = Outcome::new(kind, status).with_code(code);
        match message {
            Some(message) => outcome.with_message(message),
            None => outcome,
        }
    }

    fn provider(&self) -> &'static str {
        self.provider
    }
}

/// The two fields of an envelope that matter, read without building the rest of the document
/// (a `data` field of any size is skipped, not allocated).
struct Envelope {
    code: Option<i64>,
    message: Option<String>,
}

/// The names of those fields, which vary by provider.
#[derive(Clone, Copy)]
struct EnvelopeFields {
    code: &'static str,
    message: &'static str,
}

impl<'de> DeserializeSeed<'de> for EnvelopeFields {
    type Value = Envelope;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Envelope, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EnvelopeFields {
    type Value = Envelope;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Envelope, A::Error> {
        let mut envelope = Envelope {
            code: None,
            message: None,
        };
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if key == self.code {
                // A code that is not an integer is no code.
                envelope.code = map.next_value::<serde_json::Value>()?.as_i64();
            } else if key == self.message {
                // Read as any value, so that a message that is not a string (an object, an
                // array) is no message, and the rest of the envelope, its code included, is still
                // read (tests/it/fuzz_regressions.rs).
                envelope.message = match map.next_value::<serde_json::Value>()? {
                    serde_json::Value::String(message) => Some(message),
                    _ => None,
                };
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(envelope)
    }
}

/// `Retry-After` as a delay: delta-seconds, or an HTTP date (a date in the past is no delay).
pub(crate) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

/// A failure message from a JSON body: `detail` (Django REST framework, Erathos), `error`
/// (Akkio, Polyteia) or `message`.
fn error_message(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    ["detail", "error", "message"]
        .iter()
        .find_map(|field| value.get(*field)?.as_str().map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use http::Response;

    use super::*;

    fn head(status: u16, headers: &[(&str, &str)]) -> Parts {
        let mut builder = Response::builder().status(status);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap().into_parts().0
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        let cases = [
            ("120", Some(Duration::from_secs(120))),
            (" 0 ", Some(Duration::ZERO)),
            (
                "Sun, 06 Nov 1994 08:50:37 GMT",
                Some(Duration::from_secs(60)),
            ),
            ("Sun, 06 Nov 1994 08:00:00 GMT", Some(Duration::ZERO)),
            ("-5", None),
            ("soon", None),
            ("1.5", None),
        ];
        for (value, expected) in cases {
            let head = head(429, &[("retry-after", value)]);
            assert_eq!(retry_after(&head.headers, now), expected, "{value:?}");
        }
    }

    #[test]
    fn statuses_map_to_outcomes() {
        let cases = [
            (200, OutcomeKind::Success),
            (204, OutcomeKind::Success),
            (302, OutcomeKind::Success),
            (400, OutcomeKind::ClientError),
            (401, OutcomeKind::CredentialRejected),
            (403, OutcomeKind::Forbidden),
            (404, OutcomeKind::ClientError),
            (408, OutcomeKind::Transient),
            (422, OutcomeKind::ClientError),
            (429, OutcomeKind::RateLimited),
            (500, OutcomeKind::Transient),
            (503, OutcomeKind::Transient),
        ];
        for (status, kind) in cases {
            let outcome = StatusClassifier::new().classify(&head(status, &[]), None);
            assert_eq!(outcome.kind(), kind, "{status}");
            assert_eq!(outcome.status(), status);
        }
    }

    #[test]
    fn failure_messages_are_read_from_detail_error_or_message() {
        let classifier = StatusClassifier::new();
        let head = head(403, &[("content-type", "application/json")]);
        for (body, message) in [
            (&br#"{"detail":"no permission"}"#[..], Some("no permission")),
            (br#"{"error":"invalid API key"}"#, Some("invalid API key")),
            (br#"{"message":"nope"}"#, Some("nope")),
            (br#"{"detail":42}"#, None),
            (b"not json", None),
        ] {
            assert_eq!(classifier.classify(&head, Some(body)).message(), message);
        }
    }
}
