//! `create`, `update` and `delete` (http://hl7.org/fhir/R4/http.html#create), plain and
//! conditional. Plain ones are one store call; conditional ones (and every patch) run as
//! one-entry transactions, the path a Bundle entry takes, so a condition is judged one way.

use fhir_model::IssueCode;
use serde_json::Value;
use store::Written;

use crate::authorize::Authorized;
use crate::checks::check_type;
use crate::error::{Error, ErrorKind, Result};
use crate::outcome::{Outcome, VersionMeta};
use crate::pool::blocking;
use crate::services::Services;
use crate::transaction::{self, Action, PatchDoc, Target};

/// `POST [base]/Type`, conditional with `If-None-Exist`.
pub async fn create(
    services: &Services,
    auth: &Authorized,
    res_type: &str,
    body: Value,
    if_none_exist: Option<&str>,
) -> Result<Outcome> {
    check_type(&body, res_type)?;
    fhir_model::format::check_business_rules(&body)?;
    let issues = crate::conformance::on_write(services, &body)?;
    if let Some(q) = if_none_exist {
        let q = q
            .trim_start_matches(&format!("{res_type}?"))
            .trim_start_matches('?');
        // Checked here so a bad condition is a 400 before anything is locked.
        search::compile_condition(res_type, q)?;
        let action = Action::Create {
            resource: body,
            if_none_exist: Some(q.to_string()),
        };
        let outcome = transaction::single(services, auth, res_type, action).await?;
        return Ok(with_issues(outcome, issues));
    }
    let store = services.store.clone();
    let t = res_type.to_string();
    let ctx = auth.write_context(services);
    let written = blocking(move || store.create(&t, body, None, &ctx)).await?;
    auth.recorded();
    Ok(with_issues(written_outcome(res_type, written), issues))
}

/// `PUT [base]/Type/id`: update, or create with the client's id.
pub async fn update(
    services: &Services,
    auth: &Authorized,
    res_type: &str,
    id: &str,
    body: Value,
    if_match: Option<i32>,
) -> Result<Outcome> {
    check_type(&body, res_type)?;
    match body.get("id").and_then(|v| v.as_str()) {
        Some(body_id) if body_id == id => {}
        Some(body_id) => {
            return Err(Error::at(
                ErrorKind::Invalid,
                IssueCode::Invalid,
                format!("{res_type}.id"),
                format!("The body's id '{body_id}' does not match the URL's id '{id}'"),
            ))
        }
        None => {
            return Err(Error::at(
                ErrorKind::Invalid,
                IssueCode::Required,
                format!("{res_type}.id"),
                format!("An update must carry the id '{id}' in the body"),
            ))
        }
    }
    fhir_model::format::check_business_rules(&body)?;
    let issues = crate::conformance::on_write(services, &body)?;
    let store = services.store.clone();
    let (t, i) = (res_type.to_string(), id.to_string());
    let ctx = auth.write_context(services);
    let written = blocking(move || store.update(&t, &i, body, if_match, &ctx)).await?;
    auth.recorded();
    Ok(with_issues(written_outcome(res_type, written), issues))
}

/// `PUT [base]/Type?search`: updates the one match, creates when there is none, 412 when
/// several match.
pub async fn conditional_update(
    services: &Services,
    auth: &Authorized,
    res_type: &str,
    query: &str,
    body: Value,
    if_match: Option<i32>,
) -> Result<Outcome> {
    check_type(&body, res_type)?;
    fhir_model::format::check_business_rules(&body)?;
    let issues = crate::conformance::on_write(services, &body)?;
    let action = Action::Update {
        target: Target::Query(query.to_string()),
        resource: body,
        if_match,
    };
    let outcome = transaction::single(services, auth, res_type, action).await?;
    Ok(with_issues(outcome, issues))
}

/// `PATCH [base]/Type/id` or `PATCH [base]/Type?search`.
pub async fn patch(
    services: &Services,
    auth: &Authorized,
    res_type: &str,
    target: Target,
    patch: PatchDoc,
    if_match: Option<i32>,
) -> Result<Outcome> {
    let action = Action::Patch {
        target,
        patch,
        if_match,
    };
    transaction::single(services, auth, res_type, action).await
}

/// `DELETE [base]/Type/id`: done whether it deleted now or was already deleted; 404 when unknown.
pub async fn delete(
    services: &Services,
    auth: &Authorized,
    res_type: &str,
    id: &str,
) -> Result<Outcome> {
    let store = services.store.clone();
    let ctx = auth.write_context(services);
    let (t, i) = (res_type.to_string(), id.to_string());
    let version = blocking(move || store.delete(&t, &i, &ctx)).await?;
    auth.recorded();
    Ok(Outcome::NoContent(Some(version)))
}

/// `DELETE [base]/Type?search`: deletes the match (every match when configured so, else several
/// matches are a 412).
pub async fn conditional_delete(
    services: &Services,
    auth: &Authorized,
    res_type: &str,
    query: &str,
) -> Result<Outcome> {
    let action = Action::Delete {
        target: Target::Query(query.to_string()),
    };
    transaction::single(services, auth, res_type, action).await
}

/// A written version's outcome carrying the profile findings of its resource.
fn with_issues(outcome: Outcome, found: Vec<Value>) -> Outcome {
    match outcome {
        Outcome::Resource {
            status,
            meta,
            body,
            written,
            ..
        } => Outcome::Resource {
            status,
            meta,
            body,
            written,
            issues: found,
        },
        other => other,
    }
}

/// The outcome of a stored version.
pub(crate) fn written_outcome(res_type: &str, w: Written) -> Outcome {
    Outcome::Resource {
        status: if w.created { 201 } else { 200 },
        meta: VersionMeta {
            res_type: res_type.to_string(),
            id: w.id,
            version: w.version,
            last_updated: w.last_updated,
        },
        body: w.body,
        written: true,
        issues: Vec::new(),
    }
}
