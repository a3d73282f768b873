//! The accessors every middleware service has, written once.

/// `get_ref`, `get_mut` and `into_inner` for a service whose inner service is its `inner` field
/// of type `S`; expanded inside the service's `impl` block.
macro_rules! inner_service_accessors {
    () => {
        /// Gets a reference to the inner service.
        pub fn get_ref(&self) -> &S {
            &self.inner
        }

        /// Gets a mutable reference to the inner service.
        pub fn get_mut(&mut self) -> &mut S {
            &mut self.inner
        }

        /// Consumes `self`, returning the inner service.
        pub fn into_inner(self) -> S {
            self.inner
        }
    };
}

/// The methods both credential builders have for where a secret may go and what a request
/// carries with it, forwarded to their `rules` field; `$what` names the secret in the docs.
macro_rules! rules_methods {
    ($what:literal) => {
        #[doc = concat!("Sends the ", $what, " to this origin (may be called for several). Takes an")]
        /// origin or a base URL (`https://api.example.com/v1`): only scheme, host and port count.
        /// Replaces a preset's default origin.
        pub fn origin(mut self, url: impl AsRef<str>) -> Self {
            self.rules.origin(url.as_ref());
            self
        }

        #[doc = concat!("Sends the ", $what, " with every request, whatever its origin, including")]
        /// redirects to other hosts. Only for clients that talk to one API and nothing else (a
        /// gRPC channel to one endpoint, say).
        pub fn any_origin(mut self) -> Self {
            self.rules.any_origin();
            self
        }

        #[doc = concat!("Removes this header from every request the ", $what, " is attached to.")]
        /// Akool, for one, lets `Authorization` shadow `x-api-key`, so its preset strips
        /// `Authorization`.
        pub fn strip_header(mut self, name: http::header::HeaderName) -> Self {
            self.rules.strip_header(name);
            self
        }

        /// Adds this header to requests that do not have it. Polyteia, for one, requires
        /// `Content-Type: application/json` on every call.
        pub fn default_header(
            mut self,
            name: http::header::HeaderName,
            value: http::header::HeaderValue,
        ) -> Self {
            self.rules.default_header(name, value);
            self
        }
    };
}
