use std::fmt;

use http::Uri;
use http::uri::Scheme;

use super::CredentialError;

/// An origin a credential may be sent to: scheme, host and port.
///
/// Parsed from an origin or a base URL; the path is ignored, userinfo is refused (it is a
/// secret of its own), and a missing port is the scheme's default.
///
/// ```
/// use tower_api_auth::Origin;
///
/// let origin = Origin::parse("https://OpenAPI.akool.com/api/open/v3")?;
/// assert_eq!(origin.to_string(), "https://openapi.akool.com:443");
/// assert!(origin.matches(&"https://openapi.akool.com/api/open/v3/getToken".parse()?));
/// assert!(!origin.matches(&"http://openapi.akool.com/".parse()?));
/// assert!(!origin.matches(&"https://openapi.akool.com.evil.example/".parse()?));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    https: bool,
    host: Box<str>,
    port: u16,
    /// `host:port`, to match the usual forms of a request's authority without parsing it.
    host_port: Box<str>,
}

impl Origin {
    /// Parses an origin such as `https://api.akkio.com` or a base URL such as
    /// `http://127.0.0.1:8080/api/open/v3`.
    pub fn parse(url: &str) -> Result<Self, CredentialError> {
        let invalid = |reason| CredentialError::InvalidOrigin { reason };
        let uri: Uri = url
            .parse()
            .map_err(|_| invalid("not a URL of the form scheme://host[:port][/path]"))?;
        let https = match uri.scheme() {
            Some(s) if *s == Scheme::HTTPS => true,
            Some(s) if *s == Scheme::HTTP => false,
            Some(_) => return Err(invalid("the scheme must be http or https")),
            None => return Err(invalid("the scheme (http:// or https://) is missing")),
        };
        let authority = uri.authority().ok_or(invalid("the host is missing"))?;
        if authority.as_str().contains('@') {
            return Err(invalid(
                "userinfo (user:password@) is not allowed in an origin",
            ));
        }
        let host = authority.host();
        if host.is_empty() {
            return Err(invalid("the host is missing"));
        }
        let host = host.to_ascii_lowercase();
        let port = authority.port_u16().unwrap_or(default_port(https));
        Ok(Self {
            https,
            host_port: format!("{host}:{port}").into(),
            host: host.into(),
            port,
        })
    }

    /// Whether a request to `uri` goes to this origin. A URI without scheme and host (an
    /// origin-form request target) matches no origin: where a request goes cannot be told.
    #[inline]
    pub fn matches(&self, uri: &Uri) -> bool {
        let https = match uri.scheme() {
            Some(s) if *s == Scheme::HTTPS => true,
            Some(s) if *s == Scheme::HTTP => false,
            _ => return false,
        };
        let Some(authority) = uri.authority() else {
            return false;
        };
        if https != self.https {
            return false;
        }
        // The authority as written is almost always `host` or `host:port`: compare it whole,
        // which is several times cheaper than taking it apart on every request.
        let written = authority.as_str();
        // Hosts are stored in lowercase, and are almost always written so: an exact comparison
        // first, a case-insensitive one only if that fails.
        if written == &*self.host || written.eq_ignore_ascii_case(&self.host) {
            return self.port == default_port(https);
        }
        if written == &*self.host_port || written.eq_ignore_ascii_case(&self.host_port) {
            return true;
        }
        // Only userinfo (`user@host`) can still make it this origin.
        written.contains('@')
            && authority.port_u16().unwrap_or(default_port(https)) == self.port
            && authority.host().eq_ignore_ascii_case(&self.host)
    }
}

#[inline]
fn default_port(https: bool) -> u16 {
    if https { 443 } else { 80 }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        write!(f, "{scheme}://{}:{}", self.host, self.port)
    }
}

/// The origins a credential may be sent to.
#[derive(Debug, Clone)]
pub(crate) enum Scope {
    /// Every request, wherever it goes; only on explicit request.
    Any,
    Origins(Box<[Origin]>),
}

impl Scope {
    #[inline]
    pub(crate) fn permits(&self, uri: &Uri) -> bool {
        match self {
            Scope::Any => true,
            Scope::Origins(origins) => origins.iter().any(|origin| origin.matches(uri)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unusable_origins_are_refused() {
        for url in [
            "",
            "api.akkio.com",
            "/api",
            "ftp://api.akkio.com",
            "https://user:pass@api.akkio.com",
            "https://",
            "https://exa mple.com",
        ] {
            assert!(
                matches!(
                    Origin::parse(url),
                    Err(CredentialError::InvalidOrigin { .. })
                ),
                "{url:?}"
            );
        }
    }

    #[test]
    fn every_way_of_writing_the_origin_matches_and_nothing_else_does() {
        let origin = Origin::parse("https://API.example.com").unwrap();
        for uri in [
            "https://api.example.com/v1",
            "https://API.EXAMPLE.COM",
            "https://api.example.com:443/v1?q=1",
            "https://user@api.example.com/v1",
            "https://user:pw@api.example.com:443/",
        ] {
            assert!(origin.matches(&uri.parse().unwrap()), "{uri}");
        }
        for uri in [
            "http://api.example.com/v1",
            "https://api.example.com:8443/v1",
            "https://api.example.com.evil.example/",
            "https://evil.example/?api.example.com",
            "https://api.example.co/",
            "https://user@evil.example/",
            "https://api.example.com@evil.example/",
            "/v1",
        ] {
            assert!(!origin.matches(&uri.parse().unwrap()), "{uri}");
        }
    }

    #[test]
    fn ports_default_by_scheme() {
        let origin = Origin::parse("http://127.0.0.1").unwrap();
        assert!(origin.matches(&"http://127.0.0.1:80/x".parse().unwrap()));
        assert!(!origin.matches(&"http://127.0.0.1:8080/x".parse().unwrap()));
        assert!(!origin.matches(&"/x".parse().unwrap()));
        let ipv6 = Origin::parse("http://[::1]:8080").unwrap();
        assert!(ipv6.matches(&"http://[::1]:8080/x".parse().unwrap()));
        assert!(!ipv6.matches(&"http://[::1]/x".parse().unwrap()));
    }
}
