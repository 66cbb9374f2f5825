//! Invicta's patch (see vendor/README.md): a body for the error responses the HTTP/1 dispatcher
//! writes on its own (malformed request heads, heads too large, slow requests). Upstream sends
//! them with no body; an application may register a function that supplies one.

use std::sync::OnceLock;

use bytes::Bytes;
use http::{HeaderValue, StatusCode};

/// Gives the `Content-Type` and body of a dispatcher-made error response, or `None` for none.
pub type ErrorBodyFn = fn(StatusCode) -> Option<(HeaderValue, Bytes)>;

static ERROR_BODY: OnceLock<ErrorBodyFn> = OnceLock::new();

/// Registers the process-wide error body function; false when one was registered already.
pub fn set_error_body(f: ErrorBodyFn) -> bool {
    ERROR_BODY.set(f).is_ok()
}

pub(crate) fn error_body(status: StatusCode) -> Option<(HeaderValue, Bytes)> {
    ERROR_BODY.get().and_then(|f| f(status))
}
