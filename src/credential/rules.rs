use http::Uri;
use http::header::{HeaderMap, HeaderName, HeaderValue};

use super::scope::{Origin, Scope};
use super::{CredentialError, Placement};

/// How a credential's value goes onto a request, whether the value is static or fetched:
/// its placement, the origins it may go to, the headers it removes and the ones it defaults.
#[derive(Debug)]
pub(crate) struct Rules {
    pub(crate) placement: Placement,
    pub(crate) scope: Scope,
    strip: Box<[HeaderName]>,
    defaults: Box<[(HeaderName, HeaderValue)]>,
}

impl Rules {
    /// Whether a request to `uri` may carry the credential; says so in a `debug` event when not.
    #[inline]
    pub(crate) fn permits(&self, uri: &Uri) -> bool {
        let permitted = self.scope.permits(uri);
        if !permitted {
            tracing::debug!(
                header = %self.placement.header_name(),
                host = uri.host().unwrap_or("<none>"),
                "request goes outside the credential's origins; credential not attached"
            );
        }
        permitted
    }

    /// Removes the headers the credential conflicts with, sets its own (replacing any value the
    /// request had), and adds the default headers the request lacks.
    #[inline]
    pub(crate) fn apply(&self, value: HeaderValue, headers: &mut HeaderMap) {
        for name in &self.strip {
            headers.remove(name);
        }
        headers.insert(self.placement.header_name().clone(), value);
        for (name, value) in &self.defaults {
            if !headers.contains_key(name) {
                headers.insert(name.clone(), value.clone());
            }
        }
    }
}

/// What every credential builder collects; each problem is kept until `build` reports it.
#[derive(Debug)]
pub(crate) struct RulesBuilder {
    placement: Result<Placement, CredentialError>,
    origins: Vec<Origin>,
    default_origin: Option<&'static str>,
    any_origin: bool,
    strip: Vec<HeaderName>,
    defaults: Vec<(HeaderName, HeaderValue)>,
    error: Option<CredentialError>,
}

impl RulesBuilder {
    pub(crate) fn new(placement: Result<Placement, CredentialError>) -> Self {
        Self {
            placement,
            origins: Vec::new(),
            default_origin: None,
            any_origin: false,
            strip: Vec::new(),
            defaults: Vec::new(),
            error: None,
        }
    }

    pub(crate) fn placement(&mut self, placement: Placement) {
        self.placement = Ok(placement);
    }

    pub(crate) fn origin(&mut self, url: &str) {
        match Origin::parse(url) {
            Ok(origin) => self.origins.push(origin),
            Err(err) => {
                self.error.get_or_insert(err);
            }
        }
    }

    pub(crate) fn any_origin(&mut self) {
        self.any_origin = true;
    }

    pub(crate) fn strip_header(&mut self, name: HeaderName) {
        self.strip.push(name);
    }

    pub(crate) fn default_header(&mut self, name: HeaderName, value: HeaderValue) {
        self.defaults.push((name, value));
    }

    /// Records a problem found by whoever configures the credential, for `build` to report.
    pub(crate) fn fail(&mut self, err: CredentialError) {
        self.error.get_or_insert(err);
    }

    pub(crate) fn default_origin(&mut self, url: &'static str) {
        self.default_origin = Some(url);
    }

    /// The placement as configured so far (an error if it was invalid).
    pub(crate) fn placement_ref(&self) -> Result<&Placement, CredentialError> {
        self.placement.as_ref().map_err(Clone::clone)
    }

    pub(crate) fn build(mut self) -> Result<Rules, CredentialError> {
        if let Some(err) = self.error {
            return Err(err);
        }
        let placement = self.placement?;
        let scope = if self.any_origin {
            Scope::Any
        } else {
            if self.origins.is_empty() {
                let default = self.default_origin.ok_or(CredentialError::NoOrigin)?;
                self.origins.push(Origin::parse(default)?);
            }
            Scope::Origins(self.origins.into())
        };
        // The credential's own header is set, never stripped.
        self.strip.retain(|name| name != placement.header_name());
        Ok(Rules {
            placement,
            scope,
            strip: self.strip.into(),
            defaults: self.defaults.into(),
        })
    }
}
