//! Who a transaction's entries are about: conditional references resolved to one resource, and
//! another source's identifiers linked to the Patient its conditional create found.

use serde_json::{json, Value};
use store::{Tx, WriteContext, Written};

use super::refs;
use crate::error::ApiError;
use actix_web::http::StatusCode;

/// One person per NHS number: when another source's conditional create finds the person's
/// Patient, the identifiers it knows the person by (a hospital number) are linked to that
/// Patient. The Patient stays with the source that registered it (its organisation and
/// `meta.source` are kept); the link is a new version, audited as the linking source's change.
/// Nothing else the second source sent is applied.
pub(super) fn link_identifiers(
    tx: &mut Tx<'_>,
    found: Written,
    incoming: &Value,
    ctx: &WriteContext,
) -> Result<Written, ApiError> {
    let mut stored: Value = serde_json::from_slice(&found.body).map_err(crate::error::internal)?;
    let known = |i: &Value| {
        stored["identifier"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|k| k["system"] == i["system"] && k["value"] == i["value"])
    };
    let new: Vec<Value> = incoming["identifier"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["value"].is_string() && !known(i))
        .cloned()
        .collect();
    if new.is_empty() {
        return Ok(found);
    }
    let owner = stored["meta"]["tag"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| t["system"] == store::ODS_TAG_SYSTEM)
        .and_then(|t| t["code"].as_str())
        .map(str::to_string);
    match stored["identifier"].as_array_mut() {
        Some(list) => list.extend(new),
        None => stored["identifier"] = Value::Array(new),
    }
    let link = WriteContext {
        org: owner,
        source: None,
        access: None,
        record_source: false,
        audit: ctx.audit.clone(),
    };
    Ok(tx.update("Patient", &found.id, stored, Some(found.version), &link)?)
}

/// The `Type/id` a conditional reference means: an entry of this Bundle it names (by its
/// condition, or by an identifier it carries), else the one stored resource its search finds.
pub(super) fn resolve_conditional(
    tx: &mut Tx<'_>,
    reference: &str,
    locals: &[(String, Option<String>, Value, String)],
    ctx: &WriteContext,
) -> Result<String, ApiError> {
    let (t, q) = reference.split_once('?').unwrap_or((reference, ""));
    let ident = refs::single_identifier(q);
    let local: Vec<&String> = locals
        .iter()
        .filter(|(lt, cond, identifiers, _)| {
            lt == t
                && (cond.as_deref() == Some(q)
                    || ident.as_ref().is_some_and(|(s, v)| {
                        refs::has_identifier(&json!({"identifier": identifiers}), s.as_deref(), v)
                    }))
        })
        .map(|(_, _, _, id)| id)
        .collect();
    match local.as_slice() {
        [id] => return Ok(format!("{t}/{id}")),
        [] => {}
        _ => {
            return Err(ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                "multiple-matches",
                format!("the conditional reference '{reference}' matches several entries"),
            ))
        }
    }
    let filter = search::compile_condition(t, q)?;
    let found = tx.find(t, &filter, ctx, 2)?;
    match found.as_slice() {
        [m] => Ok(format!("{t}/{}", m.id)),
        [] => Err(ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            "not-found",
            format!("the conditional reference '{reference}' matches no resource"),
        )),
        _ => Err(ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            "multiple-matches",
            format!("the conditional reference '{reference}' matches more than one resource"),
        )),
    }
}
