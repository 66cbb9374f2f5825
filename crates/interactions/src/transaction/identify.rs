//! Who a transaction's entries are about: conditional references resolved to one resource, and
//! another source's identifiers linked to the Patient its conditional create found.

use serde_json::{json, Value};
use store::{Tx, WriteContext, Written};

use super::refs;
use crate::error::Error;

/// An entry this Bundle writes: its type, its condition, its identifiers and its id.
pub(super) type Local = (String, Option<String>, Value, String);

/// One person per NHS number: when another source's conditional create finds the person's
/// Patient, the identifiers it knows the person by (a hospital number) are linked to that
/// Patient. The Patient stays with the source that registered it (its organisation and
/// `meta.source` are kept); the link is a new version, audited as the linking source's change.
/// When the other source's demographics differ, they are kept with that source: see
/// [`keep_source_view`].
pub(super) fn link_identifiers(
    tx: &mut Tx<'_>,
    found: Written,
    incoming: &Value,
    ctx: &WriteContext,
) -> Result<Written, Error> {
    let mut stored: Value = serde_json::from_slice(&found.body).map_err(crate::error::internal)?;
    let owner_org = owner(&stored);
    if let Some(org) = ctx.org.as_deref() {
        if owner_org.as_deref() != Some(org) && demographics(&stored) != demographics(incoming) {
            keep_source_view(tx, &found.id, org, incoming, ctx)?;
        }
    }
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
    match stored["identifier"].as_array_mut() {
        Some(list) => list.extend(new),
        None => stored["identifier"] = Value::Array(new),
    }
    let link = WriteContext {
        org: owner_org,
        source: None,
        access: None,
        record_source: false,
        audit: ctx.audit.clone(),
    };
    Ok(tx.update("Patient", &found.id, stored, Some(found.version), &link)?)
}

/// The ODS organisation that wrote a stored version (its provenance tag).
fn owner(stored: &Value) -> Option<String> {
    stored["meta"]["tag"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| t["system"] == store::ODS_TAG_SYSTEM)
        .and_then(|t| t["code"].as_str())
        .map(str::to_string)
}

/// What a Patient says about the person, without what identifies the record.
fn demographics(patient: &Value) -> Value {
    let mut v = patient.clone();
    if let Some(obj) = v.as_object_mut() {
        for k in ["id", "meta", "identifier", "link", "text"] {
            obj.remove(k);
        }
    }
    v
}

/// Keeps another source's differing view of the person with that source: a Patient of its own,
/// `Patient/<person>-<ODS>`, written by that source (its provenance, its organisation), without
/// identifiers (the person's numbers belong to the one Patient) and linked to the person's
/// Patient with `link.type = refer`, as FHIR marks a record that is not the main one. It is
/// written as an update, so a repeated message changes nothing and a changed one is a new
/// version of that source's view, its earlier views in its history.
fn keep_source_view(
    tx: &mut Tx<'_>,
    person: &str,
    org: &str,
    incoming: &Value,
    ctx: &WriteContext,
) -> Result<(), Error> {
    let id: String = format!("{person}-{org}")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.')
        .take(64)
        .collect();
    let mut view = incoming.clone();
    if let Some(obj) = view.as_object_mut() {
        for k in ["id", "meta", "identifier", "link"] {
            obj.remove(k);
        }
        obj.insert(
            "link".into(),
            json!([{"other": {"reference": format!("Patient/{person}")}, "type": "refer"}]),
        );
    }
    tx.update("Patient", &id, view, None, ctx)?;
    Ok(())
}

/// The `Type/id` a conditional reference means: an entry of this Bundle it names (by its
/// condition, or by an identifier it carries), else the one stored resource its search finds.
pub(super) fn resolve_conditional(
    tx: &mut Tx<'_>,
    reference: &str,
    locals: &[Local],
    ctx: &WriteContext,
) -> Result<String, Error> {
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
            return Err(Error::multiple_matches(format!(
                "the conditional reference '{reference}' matches several entries"
            )))
        }
    }
    let filter = search::compile_condition(t, q)?;
    let found = tx.find(t, &filter, ctx, 2)?;
    match found.as_slice() {
        [m] => Ok(format!("{t}/{}", m.id)),
        [] => Err(Error::coded(
            crate::error::ErrorKind::PreconditionFailed,
            fhir_model::IssueCode::NotFound,
            format!("the conditional reference '{reference}' matches no resource"),
        )),
        _ => Err(Error::multiple_matches(format!(
            "the conditional reference '{reference}' matches more than one resource"
        ))),
    }
}
