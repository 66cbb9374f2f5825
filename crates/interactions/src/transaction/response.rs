//! The `batch-response` or `transaction-response` Bundle: one entry per request entry, in
//! order, each with its status, location, ETag and (as `Prefer` asks) its resource.

use chrono::{SecondsFormat, Utc};
use serde_json::{json, Value};

use super::work::{Body, EntryOutcome};
use crate::error::{Error, Result};
use crate::outcome::{etag, ReturnPref};
use crate::stored_bundle::StoredBundle;

/// `200 OK`, `201 Created`, …
pub(crate) fn status_text(status: u16) -> String {
    let reason = match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        409 => "Conflict",
        410 => "Gone",
        412 => "Precondition Failed",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Entity",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "",
    };
    format!("{status} {reason}").trim_end().to_string()
}

/// The response Bundle of `kind` (`batch` or `transaction`).
pub(super) fn bundle(
    kind: &str,
    results: &[std::result::Result<EntryOutcome, Error>],
    warnings: &[Vec<Value>],
    pref: ReturnPref,
    base: &str,
) -> Result<StoredBundle> {
    let mut bundle = StoredBundle::new(json!({
        "resourceType": "Bundle",
        "id": uuid::Uuid::new_v4().to_string(),
        "meta": {"lastUpdated": Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)},
        "type": format!("{kind}-response"),
    }));
    for (i, result) in results.iter().enumerate() {
        let (mut entry, stored) = match result {
            Err(e) => (
                json!({"response": {
                    "status": status_text(e.status()),
                    "outcome": e.outcome(),
                }}),
                None,
            ),
            Ok(o) => entry(o, pref, base),
        };
        match warnings.get(i) {
            // A written entry's profile findings (`warn` enforcement) are its outcome.
            Some(issues) if !issues.is_empty() && result.is_ok() => {
                entry["response"]["outcome"] =
                    json!({"resourceType": "OperationOutcome", "issue": issues});
            }
            _ => {}
        }
        bundle.push(entry, stored);
    }
    Ok(bundle)
}

/// An entry's elements, and the stored resource it returns (copied in when the Bundle is
/// written out, see [`StoredBundle::render`]).
fn entry(o: &EntryOutcome, pref: ReturnPref, base: &str) -> (Value, Option<Vec<u8>>) {
    let mut response = json!({"status": status_text(o.status)});
    if let Some(loc) = &o.location {
        response["location"] = json!(loc);
    }
    if let Some(v) = o.version {
        response["etag"] = json!(etag(v));
    }
    if let Some(at) = o.last_modified {
        response["lastModified"] = json!(at.to_rfc3339_opts(SecondsFormat::Millis, true));
    }
    let mut entry = json!({});
    if let Some(loc) = &o.location {
        if let Some((t, rest)) = loc.split_once('/') {
            let id = rest.split('/').next().unwrap_or(rest);
            entry["fullUrl"] = json!(format!("{base}/{t}/{id}"));
        }
    }
    let include = matches!(pref, ReturnPref::Representation) || o.read;
    let mut stored = None;
    match (&o.body, include) {
        (Some(Body::Stored(bytes)), true) => stored = Some(bytes.clone()),
        (Some(Body::Json(v)), _) => entry["resource"] = v.clone(),
        _ => {}
    }
    if matches!(pref, ReturnPref::OperationOutcome) && o.location.is_some() {
        response["outcome"] = json!({"resourceType": "OperationOutcome", "issue": [{
            "severity": "information", "code": "informational",
            "diagnostics": format!("{} {}", status_text(o.status), o.location.as_deref().unwrap_or(""))}]});
    }
    entry["response"] = response;
    (entry, stored)
}
