//! The one error type of the HTTP layer: every failure becomes an OperationOutcome with the
//! right status. Internal detail is logged, never sent.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use fhir_model::{IssueCode, ModelError};
use serde_json::{json, Value};
use store::StoreError;

/// An error answer: status plus OperationOutcome issues.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// `(issue code, diagnostics, expression)` triples.
    pub issues: Vec<(&'static str, String, Option<String>)>,
    /// `WWW-Authenticate` challenge of a 401.
    pub www_authenticate: Option<String>,
}

impl ApiError {
    /// An error with a single issue.
    pub fn new(status: StatusCode, code: &'static str, diagnostics: impl Into<String>) -> Self {
        ApiError {
            status,
            issues: vec![(code, diagnostics.into(), None)],
            www_authenticate: None,
        }
    }

    /// 400 with issue code `invalid`.
    pub fn bad_request(diagnostics: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid", diagnostics)
    }

    /// 404 with issue code `not-found`.
    pub fn not_found(diagnostics: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", diagnostics)
    }

    /// The OperationOutcome body.
    pub fn outcome(&self) -> Value {
        let issues: Vec<Value> = self
            .issues
            .iter()
            .map(|(code, diagnostics, expression)| {
                let mut issue =
                    json!({"severity": "error", "code": code, "diagnostics": diagnostics});
                if let Some(expr) = expression {
                    issue["expression"] = json!([expr]);
                }
                issue
            })
            .collect();
        json!({"resourceType": "OperationOutcome", "issue": issues})
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text: Vec<&str> = self.issues.iter().map(|i| i.1.as_str()).collect();
        write!(f, "{} {}", self.status.as_u16(), text.join("; "))
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status);
        res.insert_header((header::CONTENT_TYPE, crate::format::FHIR_JSON));
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            res.insert_header((header::RETRY_AFTER, "5"));
        }
        if let Some(challenge) = &self.www_authenticate {
            res.insert_header((header::WWW_AUTHENTICATE, challenge.as_str()));
        }
        res.body(serde_json::to_vec(&self.outcome()).unwrap_or_default())
    }
}

impl From<ModelError> for ApiError {
    fn from(e: ModelError) -> Self {
        let status = if e.is_business_rule() {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            StatusCode::BAD_REQUEST
        };
        let issues = e
            .issues
            .into_iter()
            .map(|i| {
                let code = match i.code {
                    IssueCode::Invalid => "invalid",
                    IssueCode::Structure => "structure",
                    IssueCode::Required => "required",
                    IssueCode::Value => "value",
                    IssueCode::BusinessRule => "business-rule",
                    IssueCode::NotSupported => "not-supported",
                    IssueCode::TooCostly => "too-costly",
                };
                (code, i.diagnostics, i.expression)
            })
            .collect();
        ApiError {
            status,
            issues,
            www_authenticate: None,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ApiError::not_found(format!("{what} is not known")),
            StoreError::Gone { resource, version } => ApiError::new(
                StatusCode::GONE,
                "deleted",
                format!("{resource} was deleted (version {version})"),
            ),
            StoreError::VersionConflict {
                resource,
                current,
                expected,
            } => {
                ApiError::new(
                    StatusCode::PRECONDITION_FAILED,
                    "conflict",
                    if current == 0 {
                        format!("If-Match names version {expected} but {resource} does not exist")
                    } else {
                        format!("If-Match names version {expected} but {resource} is at version {current}")
                    },
                )
            }
            StoreError::MultipleMatches(msg) => {
                ApiError::new(StatusCode::PRECONDITION_FAILED, "multiple-matches", msg)
            }
            StoreError::Invalid(msg) => ApiError::bad_request(msg),
            StoreError::Forbidden(msg) => ApiError::new(StatusCode::FORBIDDEN, "forbidden", msg),
            StoreError::Conflict(msg) => ApiError::new(StatusCode::CONFLICT, "duplicate", msg),
            StoreError::Unavailable(msg) => {
                tracing::error!(error = %msg, "database unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "transient",
                    "The database is unavailable; retry later",
                )
            }
            StoreError::Timeout(msg) => {
                tracing::warn!(error = %msg, "statement cancelled");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "too-costly",
                    "The request took longer than the server allows and was stopped; narrow it \
                     (more selective parameters, fewer values, a smaller _count) rather than \
                     retrying it unchanged",
                )
            }
            StoreError::TooComplex(msg) => {
                tracing::warn!(error = %msg, "statement too complex");
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "too-costly",
                    "The request is too complex for the database to run; use fewer parameters \
                     or values",
                )
            }
            other => internal(other),
        }
    }
}

impl From<search::SearchError> for ApiError {
    fn from(e: search::SearchError) -> Self {
        match e {
            search::SearchError::TooCostly(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "too-costly", e.to_string())
            }
            _ => ApiError::bad_request(e.to_string()),
        }
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(e: actix_web::error::BlockingError) -> Self {
        internal(e)
    }
}

/// The OperationOutcome for an error the HTTP/1 dispatcher answers before any handler runs (a
/// request head it cannot parse or that is too large, or one that arrived too slowly); registered
/// with the patched actix-http (vendor/README.md).
pub fn dispatcher_error_body(
    status: StatusCode,
) -> Option<(header::HeaderValue, actix_web::web::Bytes)> {
    let (code, diagnostics) = match status.as_u16() {
        431 => (
            "too-costly",
            "The request's headers are too large: at most 96 headers, and at most 128 KiB for the request line and headers together",
        ),
        408 => ("timeout", "The request's headers did not arrive in time"),
        400 => (
            "structure",
            "The request is not valid HTTP/1.1: a malformed request line or header (e.g. a URI over 64 KiB, a NUL or other control byte in a header, Content-Length together with Transfer-Encoding)",
        ),
        _ => ("exception", "The request could not be processed"),
    };
    let body = serde_json::to_vec(&ApiError::new(status, code, diagnostics).outcome()).ok()?;
    Some((
        header::HeaderValue::from_static(crate::format::FHIR_JSON),
        body.into(),
    ))
}

/// A 500 whose detail goes to the log only.
pub fn internal(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "internal error");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "exception",
        "Internal server error; the request has been logged",
    )
}
