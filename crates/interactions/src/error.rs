//! The one error of the interaction layer: a named [`ErrorKind`] (which fixes the HTTP status, in
//! one table) and the OperationOutcome issues that explain it. Internal detail is logged, never
//! put in an issue.

use fhir_model::{Issue, IssueCode, ModelError};
use serde_json::{json, Value};
use store::StoreError;

/// What went wrong, as a client can act on it. Each kind has one HTTP status and a default
/// issue code; [`ErrorKind::table`] is the whole mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The request or its content is malformed.
    Invalid,
    /// The request asks for more work than the server allows.
    TooCostly,
    /// No valid credentials.
    Unauthenticated,
    /// The caller may not do this (or the resource is withheld).
    Forbidden,
    /// The resource, version, type or route is not known.
    NotFound,
    /// The HTTP method is not supported on this path.
    MethodNotAllowed,
    /// None of the accepted formats can be produced.
    NotAcceptable,
    /// The request's headers did not arrive in time.
    RequestTimeout,
    /// The change would break a uniqueness rule.
    Duplicate,
    /// The resource was deleted.
    Gone,
    /// A precondition (`If-Match`, a condition matching several) failed.
    PreconditionFailed,
    /// The body is larger than allowed.
    PayloadTooLarge,
    /// The body's media type or charset is not supported.
    UnsupportedMediaType,
    /// Well-formed content that breaks a rule, or a patch that does not apply.
    Unprocessable,
    /// The request's headers are too large.
    HeadersTooLarge,
    /// An unexpected failure; the detail is in the log.
    Internal,
    /// The database or the audit trail is unavailable; retry later.
    Unavailable,
    /// The request ran longer than allowed and was stopped.
    TimedOut,
}

impl ErrorKind {
    /// The whole table: kind → (HTTP status, default issue code).
    pub const fn table(self) -> (u16, IssueCode) {
        match self {
            ErrorKind::Invalid => (400, IssueCode::Invalid),
            ErrorKind::TooCostly => (400, IssueCode::TooCostly),
            ErrorKind::Unauthenticated => (401, IssueCode::Login),
            ErrorKind::Forbidden => (403, IssueCode::Forbidden),
            ErrorKind::NotFound => (404, IssueCode::NotFound),
            ErrorKind::MethodNotAllowed => (405, IssueCode::NotSupported),
            ErrorKind::NotAcceptable => (406, IssueCode::NotSupported),
            ErrorKind::RequestTimeout => (408, IssueCode::Timeout),
            ErrorKind::Duplicate => (409, IssueCode::Duplicate),
            ErrorKind::Gone => (410, IssueCode::Deleted),
            ErrorKind::PreconditionFailed => (412, IssueCode::Conflict),
            ErrorKind::PayloadTooLarge => (413, IssueCode::TooCostly),
            ErrorKind::UnsupportedMediaType => (415, IssueCode::NotSupported),
            ErrorKind::Unprocessable => (422, IssueCode::BusinessRule),
            ErrorKind::HeadersTooLarge => (431, IssueCode::TooCostly),
            ErrorKind::Internal => (500, IssueCode::Exception),
            ErrorKind::Unavailable => (503, IssueCode::Transient),
            ErrorKind::TimedOut => (503, IssueCode::TooCostly),
        }
    }

    /// The HTTP status.
    pub const fn status(self) -> u16 {
        self.table().0
    }

    /// The issue code used when none is given.
    pub const fn default_code(self) -> IssueCode {
        self.table().1
    }
}

/// An error answer: its kind and the issues of its OperationOutcome.
#[derive(Debug, Clone)]
pub struct Error {
    /// What went wrong; decides the status.
    pub kind: ErrorKind,
    /// The OperationOutcome's issues (at least one).
    pub issues: Vec<Issue>,
    /// The `WWW-Authenticate` challenge of a 401.
    pub challenge: Option<String>,
    /// How the caller may see what was withheld (codes of `store::ACCESS_ROUTE_SYSTEM`),
    /// given in each issue's `details`.
    pub routes: Vec<&'static str>,
}

/// The interaction layer's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error with one issue of the kind's default code.
    pub fn new(kind: ErrorKind, diagnostics: impl Into<String>) -> Error {
        Error::coded(kind, kind.default_code(), diagnostics)
    }

    /// An error with one issue of a chosen code.
    pub fn coded(kind: ErrorKind, code: IssueCode, diagnostics: impl Into<String>) -> Error {
        Error {
            kind,
            issues: vec![Issue::general(code, diagnostics)],
            challenge: None,
            routes: Vec::new(),
        }
    }

    /// An error about one element of the content.
    pub fn at(
        kind: ErrorKind,
        code: IssueCode,
        expression: impl Into<String>,
        diagnostics: impl Into<String>,
    ) -> Error {
        Error {
            kind,
            issues: vec![Issue {
                code,
                diagnostics: diagnostics.into(),
                expression: Some(expression.into()),
            }],
            challenge: None,
            routes: Vec::new(),
        }
    }

    /// 400 `invalid`.
    pub fn invalid(diagnostics: impl Into<String>) -> Error {
        Error::new(ErrorKind::Invalid, diagnostics)
    }

    /// 404 `not-found`.
    pub fn not_found(diagnostics: impl Into<String>) -> Error {
        Error::new(ErrorKind::NotFound, diagnostics)
    }

    /// 412 `multiple-matches`: a condition matched more than one resource.
    pub fn multiple_matches(diagnostics: impl Into<String>) -> Error {
        Error::coded(
            ErrorKind::PreconditionFailed,
            IssueCode::MultipleMatches,
            diagnostics,
        )
    }

    /// The 403 for a resource hidden only by limits a relationship claim or break-glass lifts;
    /// `routes` are those open to the caller.
    pub fn withheld(reference: &str, routes: Vec<&'static str>) -> Error {
        let mut e = Error::new(
            ErrorKind::Forbidden,
            format!(
                "{reference} is withheld: your organisation has no legitimate relationship with \
                 this patient, or the record is restricted. To see it, claim a relationship with \
                 the header 'X-Relationship-Claim: <reason>', or in an emergency break glass with \
                 'X-Purpose-Of-Use: BTG' and 'X-Break-Glass-Reason: <reason>'. Both are audited \
                 and reviewed."
            ),
        );
        e.routes = routes;
        e
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        self.kind.status()
    }

    /// Sets the kind (and so the status), keeping the issues.
    pub fn with_kind(mut self, kind: ErrorKind) -> Error {
        self.kind = kind;
        self
    }

    /// Sets the code of every issue.
    pub fn with_code(mut self, code: IssueCode) -> Error {
        for issue in &mut self.issues {
            issue.code = code;
        }
        self
    }

    /// Prefixes every issue's diagnostics.
    pub fn prefixed(mut self, prefix: &str) -> Error {
        for issue in &mut self.issues {
            issue.diagnostics = format!("{prefix}{}", issue.diagnostics);
        }
        self
    }

    /// The OperationOutcome body.
    pub fn outcome(&self) -> Value {
        let issues: Vec<Value> = self
            .issues
            .iter()
            .map(|i| {
                let mut issue = json!({"severity": "error", "code": i.code.as_str(),
                    "diagnostics": i.diagnostics});
                if let Some(expr) = &i.expression {
                    issue["expression"] = json!([expr]);
                }
                if !self.routes.is_empty() {
                    issue["details"] = routes_concept(&self.routes);
                }
                issue
            })
            .collect();
        json!({"resourceType": "OperationOutcome", "issue": issues})
    }

    /// The diagnostics, joined (for logs and `invicta load`'s report).
    pub fn message(&self) -> String {
        self.issues
            .iter()
            .map(|i| match &i.expression {
                Some(path) => format!("{} ({path})", i.diagnostics),
                None => i.diagnostics.clone(),
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// The CodeableConcept naming the ways to see withheld data.
pub(crate) fn routes_concept(routes: &[&str]) -> Value {
    let coding: Vec<Value> = routes
        .iter()
        .map(|r| {
            json!({"system": store::ACCESS_ROUTE_SYSTEM, "code": r, "display": match *r {
                "relationship-claim" => "Claim a legitimate relationship",
                "break-glass" => "Break glass (emergency access)",
                _ => r,
            }})
        })
        .collect();
    json!({"coding": coding})
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text: Vec<&str> = self.issues.iter().map(|i| i.diagnostics.as_str()).collect();
        write!(f, "{} {}", self.status(), text.join("; "))
    }
}

impl std::error::Error for Error {}

/// A 500 whose detail goes to the log only.
pub fn internal(e: impl std::fmt::Display) -> Error {
    tracing::error!(error = %e, "internal error");
    Error::new(
        ErrorKind::Internal,
        "Internal server error; the request has been logged",
    )
}

impl From<ModelError> for Error {
    fn from(e: ModelError) -> Self {
        let kind = if e.is_business_rule() {
            ErrorKind::Unprocessable
        } else {
            ErrorKind::Invalid
        };
        Error {
            kind,
            issues: e.issues,
            challenge: None,
            routes: Vec::new(),
        }
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => Error::not_found(format!("{what} is not known")),
            StoreError::Gone { resource, version } => Error::new(
                ErrorKind::Gone,
                format!("{resource} was deleted (version {version})"),
            ),
            StoreError::VersionConflict {
                resource,
                current,
                expected,
            } => Error::new(
                ErrorKind::PreconditionFailed,
                if current == 0 {
                    format!("If-Match names version {expected} but {resource} does not exist")
                } else {
                    format!(
                        "If-Match names version {expected} but {resource} is at version {current}"
                    )
                },
            ),
            StoreError::MultipleMatches(msg) => Error::multiple_matches(msg),
            StoreError::Invalid(msg) => Error::invalid(msg),
            StoreError::Forbidden(msg) => Error::new(ErrorKind::Forbidden, msg),
            StoreError::Conflict(msg) => Error::new(ErrorKind::Duplicate, msg),
            StoreError::Unavailable(msg) => {
                tracing::error!(error = %msg, "database unavailable");
                Error::new(
                    ErrorKind::Unavailable,
                    "The database is unavailable; retry later",
                )
            }
            StoreError::Timeout(msg) => {
                tracing::warn!(error = %msg, "statement cancelled");
                Error::new(
                    ErrorKind::TimedOut,
                    "The request took longer than the server allows and was stopped; narrow it \
                     (more selective parameters, fewer values, a smaller _count) rather than \
                     retrying it unchanged",
                )
            }
            StoreError::TooComplex(msg) => {
                tracing::warn!(error = %msg, "statement too complex");
                Error::new(
                    ErrorKind::TooCostly,
                    "The request is too complex for the database to run; use fewer parameters \
                     or values",
                )
            }
            other => internal(other),
        }
    }
}

impl From<search::SearchError> for Error {
    fn from(e: search::SearchError) -> Self {
        match e {
            search::SearchError::TooCostly(_) => Error::new(ErrorKind::TooCostly, e.to_string()),
            _ => Error::invalid(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_gives_status_and_code() {
        assert_eq!(ErrorKind::PreconditionFailed.status(), 412);
        assert_eq!(
            Error::multiple_matches("x").issues[0].code.as_str(),
            "multiple-matches"
        );
        let e = Error::new(ErrorKind::Gone, "gone");
        assert_eq!(
            (e.status(), e.outcome()["issue"][0]["code"].as_str()),
            (410, Some("deleted"))
        );
    }

    #[test]
    fn store_errors_keep_their_meaning() {
        let e: Error = StoreError::VersionConflict {
            resource: "Patient/1".into(),
            current: 2,
            expected: 1,
        }
        .into();
        assert_eq!(e.status(), 412);
        assert_eq!(e.issues[0].code, IssueCode::Conflict);
    }
}
