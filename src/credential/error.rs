use thiserror::Error;

/// Why a credential could not be built or rotated.
///
/// Every variant names the problem and where it is, never the offending value: the value may be
/// the secret itself (or a secret passed where a header name was expected).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CredentialError {
    /// The secret is empty.
    #[error("the secret is empty")]
    EmptySecret,
    /// The secret contains a space or a tab. Keys are sent verbatim, and a key copied with a
    /// stray space fails upstream (Akkio documents exactly this), so it is refused here.
    #[error("the secret contains whitespace at byte {at}: trim it")]
    Whitespace {
        /// Byte offset of the first whitespace character.
        at: usize,
    },
    /// The secret contains a control character (CR, LF, NUL, DEL, ...), which would corrupt or
    /// split the header.
    #[error("the secret contains a control character at byte {at}")]
    ControlCharacter {
        /// Byte offset of the first control character.
        at: usize,
    },
    /// The secret contains a byte outside visible ASCII (`!` to `~`), which a header value
    /// cannot carry portably.
    #[error("the secret contains a byte outside visible ASCII at byte {at}")]
    NonVisibleAscii {
        /// Byte offset of the first such byte.
        at: usize,
    },
    /// A token credential was given a [`TokenStore`](crate::token::store::TokenStore) but no identity
    /// to key its tokens by: call
    /// [`store_identity`](crate::token::TokenCredentialBuilder::store_identity).
    #[cfg(feature = "token-store")]
    #[error("a token store needs the credentials' identity: call `store_identity`")]
    StoreWithoutIdentity,
    /// A token flow was given an empty client id.
    #[error("the client id is empty")]
    EmptyClientId,
    /// A [`JsonTokenEndpoint`](crate::token::JsonTokenEndpoint) cannot be used as configured.
    #[error("invalid token endpoint: {reason}")]
    InvalidTokenEndpoint {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The header name is not a valid HTTP field name.
    #[error("invalid header name: it must be a non-empty RFC 9110 token")]
    InvalidHeaderName,
    /// The authorization scheme is not a valid RFC 9110 token (letters, digits and `!#$%&'*+-.^_`|~`).
    #[error("invalid authorization scheme: it must be a non-empty RFC 9110 token")]
    InvalidScheme,
    /// An origin (or base URL) given to scope the credential is not usable.
    #[error("invalid origin: {reason}")]
    InvalidOrigin {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The credential was given no origin to be sent to. Call
    /// [`origin`](crate::CredentialBuilder::origin), or
    /// [`any_origin`](crate::CredentialBuilder::any_origin) to send it everywhere.
    #[error(
        "the credential has no origin: call `.origin(..)`, or `.any_origin()` to send it to every host"
    )]
    NoOrigin,
}
