//! The redacted secret type.

use std::fmt;
use std::sync::Arc;

/// A secret: an API key, an access token, a client secret.
///
/// `Debug` and `Display` print `[redacted]`, never the value, so a `Secret` can sit in a
/// configuration struct that derives `Debug` or travel through `tracing` fields without leaking.
/// The only way to the value is [`Secret::expose`], which is easy to find in a review.
///
/// A `Secret` is not validated: what is acceptable depends on where it goes (a header value
/// admits less than a JSON body). [`Credential`](crate::Credential) validates it when it is
/// placed into a header. Cloning is cheap (a reference count). There is deliberately no
/// `PartialEq`: comparing secrets belongs in constant-time code.
///
/// ```
/// use tower_api_auth::Secret;
///
/// let key = Secret::new("sk-live-123");
/// assert_eq!(format!("{key:?}"), "Secret([redacted])");
/// assert_eq!(key.to_string(), "[redacted]");
/// assert_eq!(key.expose(), "sk-live-123");
/// ```
#[derive(Clone)]
pub struct Secret(Arc<str>);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<Arc<str>>) -> Self {
        Self(value.into())
    }

    /// The secret value itself. Every call site is a place where the secret leaves its wrapper:
    /// keep them few.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `text` (a message from the other side, say) with every occurrence of the secret replaced
    /// by `[redacted]`: a token endpoint that echoes what it was sent must not put the secret
    /// into an error.
    pub(crate) fn redact_from(&self, text: String) -> String {
        if self.0.is_empty() || !text.contains(&*self.0) {
            return text;
        }
        text.replace(&*self.0, "[redacted]")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting_never_shows_the_value() {
        let secret = Secret::from(String::from("hunter2-very-secret"));
        for shown in [
            format!("{secret:?}"),
            format!("{secret:#?}"),
            secret.to_string(),
        ] {
            assert!(!shown.contains("hunter2"), "{shown}");
        }
    }
}
