//! The one HTTP exchange token sources make: POST a JSON body, read a small JSON answer.

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Request, Response, Uri};
use http_body::Body;
use http_body_util::{BodyExt, Full, Limited};
use tower::{BoxError, Service, ServiceExt};

/// Token answers are a few hundred bytes; anything past this is not a token answer.
const MAX_ANSWER: usize = 64 * 1024;

/// Sends `body` as JSON to `uri` through `http` and returns the answer's status and body.
pub(crate) async fn post_json<S, B>(
    http: S,
    uri: Uri,
    body: Vec<u8>,
) -> Result<(http::StatusCode, Bytes), BoxError>
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>>,
    S::Error: Into<BoxError>,
    B: Body,
    B::Error: Into<BoxError>,
{
    let mut request = Request::post(uri).body(Full::new(Bytes::from(body)))?;
    request
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let response = http.oneshot(request).await.map_err(Into::into)?;
    let status = response.status();
    let body = Limited::new(response.into_body(), MAX_ANSWER)
        .collect()
        .await?
        .to_bytes();
    Ok((status, body))
}
