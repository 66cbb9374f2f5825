//! The HTTP face of [`interactions::Error`]: its status from the error table, its
//! OperationOutcome as the body, `Retry-After` on a 503 and the challenge on a 401.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use interactions::render::FHIR_JSON;
use interactions::{Error, ErrorKind};

/// An error answer (a newtype so that the HTTP layer can implement actix's trait for it).
#[derive(Debug)]
pub struct ApiError(pub Error);

impl ApiError {
    /// An error of `kind` with one issue.
    pub fn new(kind: ErrorKind, diagnostics: impl Into<String>) -> ApiError {
        ApiError(Error::new(kind, diagnostics))
    }

    /// 400 `invalid`.
    pub fn bad_request(diagnostics: impl Into<String>) -> ApiError {
        ApiError(Error::invalid(diagnostics))
    }

    /// 404 `not-found`.
    pub fn not_found(diagnostics: impl Into<String>) -> ApiError {
        ApiError(Error::not_found(diagnostics))
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl<E: Into<Error>> From<E> for ApiError {
    fn from(e: E) -> Self {
        ApiError(e.into())
    }
}

fn status(e: &Error) -> StatusCode {
    StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        status(&self.0)
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(status(&self.0));
        res.insert_header((header::CONTENT_TYPE, FHIR_JSON));
        if self.0.status() == 503 {
            res.insert_header((header::RETRY_AFTER, "5"));
        }
        if let Some(challenge) = &self.0.challenge {
            res.insert_header((header::WWW_AUTHENTICATE, challenge.as_str()));
        }
        res.body(serde_json::to_vec(&self.0.outcome()).unwrap_or_default())
    }
}

/// A failure of actix's blocking pool.
pub fn blocking_failed(e: actix_web::error::BlockingError) -> ApiError {
    ApiError(interactions::internal(e))
}

/// The OperationOutcome for an error the HTTP/1 dispatcher answers before any handler runs (a
/// request head it cannot parse or that is too large, or one that arrived too slowly); registered
/// with the patched actix-http (vendor/README.md).
pub fn dispatcher_error_body(
    status: StatusCode,
) -> Option<(header::HeaderValue, actix_web::web::Bytes)> {
    let error = match status.as_u16() {
        431 => Error::new(
            ErrorKind::HeadersTooLarge,
            "The request's headers are too large: at most 96 headers, and at most 128 KiB for the request line and headers together",
        ),
        408 => Error::new(ErrorKind::RequestTimeout, "The request's headers did not arrive in time"),
        400 => Error::coded(
            ErrorKind::Invalid,
            fhir_model::IssueCode::Structure,
            "The request is not valid HTTP/1.1: a malformed request line or header (e.g. a URI over 64 KiB, a NUL or other control byte in a header, Content-Length together with Transfer-Encoding)",
        ),
        _ => Error::new(ErrorKind::Internal, "The request could not be processed"),
    };
    let body = serde_json::to_vec(&error.outcome()).ok()?;
    Some((header::HeaderValue::from_static(FHIR_JSON), body.into()))
}
