//! Conformance to the shipped profiles (`profiles/`, `fhir_model::profile`): the `$validate`
//! operation, which answers with an OperationOutcome and never stores, and the check every write
//! makes when profiles are enforced (off, warn: the findings travel with the 2xx, or reject:
//! a 422).

use fhir_model::profile::ProfileSet;
use fhir_model::{Finding, Issue, IssueCode, Severity};
use serde_json::{json, Value};

use crate::authorize::Authorized;
use crate::error::{Error, ErrorKind, Result};
use crate::outcome::Outcome;
use crate::services::Services;

/// What a write does with a resource that breaks its type's profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Enforcement {
    /// Profiles are not checked on write (`$validate` still checks them).
    Off,
    /// The write goes ahead; the findings travel with the 2xx (`Prefer:
    /// return=OperationOutcome`, and a Bundle entry's `response.outcome`).
    #[default]
    Warn,
    /// A resource with an error finding is refused with 422 and the findings.
    Reject,
}

impl Enforcement {
    /// Parses `off`, `warn` or `reject`.
    pub fn parse(text: &str) -> Option<Enforcement> {
        match text {
            "off" => Some(Enforcement::Off),
            "warn" => Some(Enforcement::Warn),
            "reject" => Some(Enforcement::Reject),
            _ => None,
        }
    }
}

/// `$validate`'s `mode` (http://hl7.org/fhir/R4/valueset-resource-validation-mode.html).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Create,
    Update,
    Delete,
    Profile,
}

impl Mode {
    fn parse(text: &str) -> Result<Mode> {
        match text {
            "create" => Ok(Mode::Create),
            "update" => Ok(Mode::Update),
            "delete" => Ok(Mode::Delete),
            "profile" => Ok(Mode::Profile),
            _ => Err(Error::invalid(format!(
                "mode '{}' is not one of create, update, delete, profile",
                short(text)
            ))),
        }
    }
}

/// At most 200 characters of a value the client sent, for a diagnostic.
fn short(text: &str) -> String {
    text.chars().take(200).collect()
}

/// The findings for a resource: the base R4 rules, the business rules (NHS numbers) and the
/// profile (`profile`, else the type's default one).
fn findings(resource: &Value, profile: Option<&str>) -> Vec<Finding> {
    let error = |issue: Issue| Finding {
        severity: Severity::Error,
        issue,
    };
    if let Err(e) = fhir_model::format::check_resource(resource.clone()) {
        // A resource that breaks R4 itself is not judged against a profile of it.
        return e.issues.into_iter().map(error).collect();
    }
    let mut out: Vec<Finding> = match fhir_model::format::check_business_rules(resource) {
        Ok(()) => Vec::new(),
        Err(e) => e.issues.into_iter().map(error).collect(),
    };
    for f in ProfileSet::shipped().validate(resource, profile) {
        // The NHS number rule is the business rule's and the profile's: report it once.
        if !out
            .iter()
            .any(|o| o.issue.expression == f.issue.expression && o.issue.code == f.issue.code)
        {
            out.push(f);
        }
    }
    out
}

/// The findings as OperationOutcome issues.
fn issues(findings: &[Finding]) -> Vec<Value> {
    findings
        .iter()
        .map(|f| {
            let mut issue = json!({"severity": f.severity.as_str(), "code": f.issue.code.as_str(),
                "diagnostics": f.issue.diagnostics});
            if let Some(expr) = &f.issue.expression {
                issue["expression"] = json!([expr]);
            }
            issue
        })
        .collect()
}

/// The check a write makes: under `Reject` an error finding refuses it (422); under `Warn` the
/// findings come back as OperationOutcome issues for the response; under `Off` nothing.
pub(crate) fn on_write(services: &Services, resource: &Value) -> Result<Vec<Value>> {
    let enforcement = services.settings.profiles;
    if enforcement == Enforcement::Off {
        return Ok(Vec::new());
    }
    // The write path has checked R4 and the business rules already: the profile is what is left.
    let found = ProfileSet::shipped().validate(resource, None);
    if enforcement == Enforcement::Reject && found.iter().any(|f| f.severity == Severity::Error) {
        return Err(Error {
            kind: ErrorKind::Unprocessable,
            issues: found
                .into_iter()
                .filter(|f| f.severity == Severity::Error)
                .map(|f| f.issue)
                .collect(),
            challenge: None,
            routes: Vec::new(),
        });
    }
    Ok(issues(&found))
}

/// `$validate` of a body that could not be read as a resource (XML whose reader found fault):
/// its findings, as errors.
pub fn unreadable(auth: &Authorized, e: fhir_model::ModelError) -> Outcome {
    auth.interaction(
        fhir_model::RestInteraction::Operation,
        fhir_model::AuditAction::Execute,
    );
    let found: Vec<Finding> = e
        .issues
        .into_iter()
        .map(|issue| Finding {
            severity: Severity::Error,
            issue,
        })
        .collect();
    Outcome::Json(json!({"resourceType": "OperationOutcome", "issue": issues(&found)}))
}

/// `POST [base]/Type/$validate` and `POST [base]/Type/id/$validate`: the body is the resource,
/// or a Parameters resource with `resource`, `mode` and `profile`; the query may give `mode`
/// and `profile` too. Answers 200 with an OperationOutcome of the findings (an information
/// issue when there are none); an unknown profile is a 400. Nothing is stored.
pub fn validate(
    auth: &Authorized,
    res_type: &str,
    id: Option<&str>,
    body: Value,
    query: &[(String, String)],
) -> Result<Outcome> {
    auth.interaction(
        fhir_model::RestInteraction::Operation,
        fhir_model::AuditAction::Execute,
    );
    let mut mode = None;
    let mut profile = None;
    for (k, v) in query {
        match k.as_str() {
            "mode" => mode = Some(Mode::parse(v)?),
            "profile" => profile = Some(v.clone()),
            _ => {}
        }
    }
    let resource = if body["resourceType"] == "Parameters" {
        let params = body["parameter"].as_array().cloned().unwrap_or_default();
        let mut resource = None;
        for p in &params {
            match p["name"].as_str() {
                Some("resource") => resource = Some(p["resource"].clone()),
                Some("mode") => {
                    mode = Some(Mode::parse(p["valueCode"].as_str().unwrap_or_default())?)
                }
                Some("profile") => profile = p["valueUri"].as_str().map(str::to_string),
                _ => {}
            }
        }
        resource
    } else {
        Some(body)
    };
    if let Some(url) = &profile {
        if ProfileSet::shipped().get(url).is_none() {
            return Err(Error::at(
                ErrorKind::Invalid,
                IssueCode::NotSupported,
                "profile",
                format!(
                    "Profile '{}' is not known to this server (GET [base]/metadata lists the supported profiles)",
                    short(url)
                ),
            ));
        }
    }
    let mode = mode.unwrap_or(if id.is_some() {
        Mode::Update
    } else {
        Mode::Create
    });
    let mut found = Vec::new();
    match (&resource, mode) {
        (None, Mode::Delete) => {}
        (None, _) => {
            return Err(Error::invalid(
                "$validate needs the resource: the body, or a Parameters 'resource' part",
            ))
        }
        (Some(r), _) => {
            let t = r["resourceType"].as_str().unwrap_or("");
            if t != res_type {
                return Err(Error::at(
                    ErrorKind::Invalid,
                    IssueCode::Invalid,
                    "resourceType",
                    format!("The resource is a {t} but the URL is for {res_type}"),
                ));
            }
            found = findings(r, profile.as_deref());
            if mode == Mode::Update {
                match (id, r["id"].as_str()) {
                    (Some(want), Some(got)) if want != got => found.push(Finding {
                        severity: Severity::Error,
                        issue: Issue::at(
                            IssueCode::Invalid,
                            &format!("{res_type}.id"),
                            format!("The id '{got}' does not match the URL's '{want}'"),
                        ),
                    }),
                    (_, None) => found.push(Finding {
                        severity: Severity::Error,
                        issue: Issue::at(
                            IssueCode::Required,
                            &format!("{res_type}.id"),
                            "An update must carry the resource's id",
                        ),
                    }),
                    _ => {}
                }
            }
        }
    }
    let mut list = issues(&found);
    if list.is_empty() {
        let against = match &profile {
            Some(p) => format!("the profile {p}"),
            None => match ProfileSet::shipped().profile_for_type(res_type) {
                Some(p) => format!("R4 and the profile {}", p.url()),
                None => "R4 (this type has no Invicta profile)".into(),
            },
        };
        list.push(json!({"severity": "information", "code": "informational",
            "diagnostics": format!("No issues found: valid against {against}")}));
    }
    Ok(Outcome::Json(
        json!({"resourceType": "OperationOutcome", "issue": list}),
    ))
}
