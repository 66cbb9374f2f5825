//! Problems found in a resource, in the shape of OperationOutcome issues but free of any transport.

use std::fmt;

/// The OperationOutcome `issue.code` values this crate reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueCode {
    /// Content is not well-formed (bad JSON/XML, bad encoding).
    Invalid,
    /// Content violates the structure of the resource type (unknown element, wrong type).
    Structure,
    /// A required element is missing.
    Required,
    /// A primitive value is not valid for its type.
    Value,
    /// A code is not one the element's required binding allows.
    CodeInvalid,
    /// A rule beyond structure failed (e.g. the NHS number check digit).
    BusinessRule,
    /// The content uses something the server does not support.
    NotSupported,
    /// The content exceeds a limit that bounds the work of processing it (e.g. nesting).
    TooCostly,
    /// Something was asked for that is not there.
    NotFound,
    /// The resource asked for was deleted.
    Deleted,
    /// The caller may not do this.
    Forbidden,
    /// The caller is not authenticated.
    Login,
    /// A version precondition failed (`If-Match`).
    Conflict,
    /// A conditional interaction matched more than it may act on.
    MultipleMatches,
    /// The change would duplicate something unique.
    Duplicate,
    /// The content is understood but cannot be processed (a patch that does not apply).
    Processing,
    /// Something was withheld from the answer.
    Suppressed,
    /// The request timed out.
    Timeout,
    /// A temporary failure; retrying may succeed.
    Transient,
    /// An unexpected failure of the server.
    Exception,
    /// Information only.
    Informational,
}

impl IssueCode {
    /// The FHIR code (`http://hl7.org/fhir/issue-type`).
    pub fn as_str(self) -> &'static str {
        match self {
            IssueCode::Invalid => "invalid",
            IssueCode::Structure => "structure",
            IssueCode::Required => "required",
            IssueCode::Value => "value",
            IssueCode::CodeInvalid => "code-invalid",
            IssueCode::BusinessRule => "business-rule",
            IssueCode::NotSupported => "not-supported",
            IssueCode::TooCostly => "too-costly",
            IssueCode::NotFound => "not-found",
            IssueCode::Deleted => "deleted",
            IssueCode::Forbidden => "forbidden",
            IssueCode::Login => "login",
            IssueCode::Conflict => "conflict",
            IssueCode::MultipleMatches => "multiple-matches",
            IssueCode::Duplicate => "duplicate",
            IssueCode::Processing => "processing",
            IssueCode::Suppressed => "suppressed",
            IssueCode::Timeout => "timeout",
            IssueCode::Transient => "transient",
            IssueCode::Exception => "exception",
            IssueCode::Informational => "informational",
        }
    }
}

/// One problem, with the FHIRPath of the element it concerns when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// What kind of problem it is.
    pub code: IssueCode,
    /// A human-readable explanation.
    pub diagnostics: String,
    /// FHIRPath of the offending element, e.g. `Patient.name[0].family`.
    pub expression: Option<String>,
}

impl Issue {
    /// An issue about the element at `path`.
    pub fn at(code: IssueCode, path: &str, diagnostics: impl Into<String>) -> Self {
        Issue {
            code,
            diagnostics: diagnostics.into(),
            expression: Some(path.to_string()),
        }
    }

    /// An issue about the content as a whole.
    pub fn general(code: IssueCode, diagnostics: impl Into<String>) -> Self {
        Issue {
            code,
            diagnostics: diagnostics.into(),
            expression: None,
        }
    }
}

/// How serious a finding is (`OperationOutcome.issue.severity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The content does not conform.
    Error,
    /// The content conforms but something is likely wrong or missing.
    Warning,
    /// Information only.
    Information,
}

impl Severity {
    /// The FHIR code (`http://hl7.org/fhir/issue-severity`).
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Information => "information",
        }
    }
}

/// An issue with its severity, as validation against a profile reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// How serious it is.
    pub severity: Severity,
    /// What and where.
    pub issue: Issue,
}

/// `text` cut to at most `max` characters (the last three `...` when cut): values from the
/// content are echoed in diagnostics, and a hostile body must not make them huge.
pub(crate) fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() > max {
        let cut: String = text.chars().take(max.saturating_sub(3)).collect();
        format!("{cut}...")
    } else {
        text.to_string()
    }
}

/// Why content was refused: a list of issues and whether they are structural (HTTP 400) or a
/// rule on otherwise well-formed content (HTTP 422).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelError {
    /// What was wrong; never empty.
    pub issues: Vec<Issue>,
}

impl ModelError {
    /// An error holding a single issue.
    pub fn single(issue: Issue) -> Self {
        ModelError {
            issues: vec![issue],
        }
    }

    /// True when every issue is a business rule on valid structure (maps to 422, not 400).
    pub fn is_business_rule(&self) -> bool {
        self.issues
            .iter()
            .all(|i| i.code == IssueCode::BusinessRule)
    }
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for issue in &self.issues {
            if !first {
                f.write_str("; ")?;
            }
            first = false;
            match &issue.expression {
                Some(path) => write!(f, "{path}: {}", issue.diagnostics)?,
                None => f.write_str(&issue.diagnostics)?,
            }
        }
        Ok(())
    }
}

impl std::error::Error for ModelError {}
