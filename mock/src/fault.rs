//! [`TokenFault`]: the ways a stand-in's token endpoint can be told to misbehave.

use std::time::Duration;

/// How the token endpoint misbehaves, for fault-injection tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenFault {
    /// HTTP 500 with a plain-text body.
    ServerError,
    /// HTTP 200 with a body that is not JSON.
    GarbageJson,
    /// Akool: HTTP 200 with this body code instead of 1000.
    ErrorCode(i64),
    /// HTTP 200, success code, empty token.
    EmptyToken,
    /// Never answers (the connection stays open).
    Stall,
    /// Answers correctly after this delay.
    Delay(Duration),
    /// HTTP 200, the headers and the first bytes of a JSON body, then nothing more (the
    /// connection stays open): a server that hangs halfway through its answer.
    StallMidBody,
    /// HTTP 200, the headers and the first bytes of a JSON body, then the connection is dropped
    /// (HTTP/2: the stream is reset): a server that crashes halfway through its answer.
    AbortMidBody,
    /// Fails (HTTP 500) and succeeds by turns, starting with a failure: the 1st, 3rd, 5th...
    /// token request after the fault is set fails, the others are answered correctly.
    Alternate,
    /// Answers correctly, but announces that the token expires at this many seconds since the
    /// Unix epoch, as a server with a skewed or broken clock would: Polyteia's `expiresAt` as a
    /// number, Akool's token as a JWT with this `exp` claim.
    ExpiresAt(u64),
}
