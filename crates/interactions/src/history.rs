//! `history` at instance, type and system level: paged Bundles of type `history`, newest first,
//! with `_count`, `_since` and `_at` (http://hl7.org/fhir/R4/http.html#history).

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use store::{HistoryQuery, HistoryScope};

use crate::authorize::Authorized;
use crate::error::{internal, Error, Result};
use crate::outcome::{etag, Outcome};
use crate::params::Params;
use crate::pool::blocking;
use crate::render::Output;
use crate::services::Services;
use search::text::encode;

/// Page size when `_count` is absent.
const DEFAULT_COUNT: i64 = 50;
/// Largest page served, whatever `_count` asks.
const MAX_COUNT: i64 = 1000;

/// The history of an instance, a type or the system, one page of it.
pub async fn history(
    services: &Services,
    auth: &Authorized,
    scope: HistoryScope,
    params: &Params,
    audit_query: String,
    output: &Output,
) -> Result<Outcome> {
    auth.query(audit_query);
    let count = match params.get("_count") {
        None => DEFAULT_COUNT,
        // A whole number too large for any page is the largest page, as in searches.
        Some(c) if !c.is_empty() && c.bytes().all(|b| b.is_ascii_digit()) => {
            c.parse::<i64>().unwrap_or(i64::MAX).min(MAX_COUNT)
        }
        Some(c) => {
            return Err(Error::invalid(format!(
                "_count must be a whole number, not '{c}'"
            )))
        }
    };
    let since = instant_param(params, "_since")?;
    let at = instant_param(params, "_at")?;
    let before = int_param(params, "_cursor")?;
    let snapshot = int_param(params, "_snapshot")?;
    let q = HistoryQuery {
        scope: scope.clone(),
        since,
        at,
        count,
        before,
        snapshot,
        access: auth.access().map(|a| (**a).clone()),
    };
    let store = services.reader(&auth.routing_key());
    let instance = matches!(scope, HistoryScope::Instance(..));
    // Dropped with this future when the client goes away, cancelling the statement (as search).
    let guard = store.cancel_guard();
    let token = guard.token();
    let page = blocking(move || {
        let page = store.session(&token)?.history(&q)?;
        Ok((page, q))
    })
    .await?;
    guard.disarm();
    let (page, q) = page;
    for e in &page.entries {
        auth.touched(&e.compartments);
    }
    if instance && page.total == 0 {
        if let HistoryScope::Instance(t, id) = &scope {
            return Err(Error::not_found(format!("{t}/{id} is not known")));
        }
    }
    let base = &services.settings.base_url;
    let path = match &scope {
        HistoryScope::System => format!("{base}/_history"),
        HistoryScope::Type(t) => format!("{base}/{t}/_history"),
        HistoryScope::Instance(t, id) => format!("{base}/{t}/{id}/_history"),
    };
    let mut link_params = vec![format!("_count={count}")];
    if let Some(s) = params.get("_since") {
        link_params.push(format!("_since={}", encode(s)));
    }
    if let Some(a) = params.get("_at") {
        link_params.push(format!("_at={}", encode(a)));
    }
    link_params.push(format!("_snapshot={}", page.snapshot));
    let mut self_params = link_params.clone();
    if let Some(b) = q.before {
        self_params.push(format!("_cursor={b}"));
    }
    let mut links =
        vec![json!({"relation": "self", "url": format!("{path}?{}", self_params.join("&"))})];
    if page.more {
        if let Some(last) = page.entries.last() {
            let mut next = link_params.clone();
            next.push(format!("_cursor={}", last.hid));
            links.push(json!({"relation": "next", "url": format!("{path}?{}", next.join("&"))}));
        }
    }
    let mut entries = Vec::with_capacity(page.entries.len());
    for e in &page.entries {
        let full_url = format!("{base}/{}/{}", e.res_type, e.id);
        let mut entry = json!({"fullUrl": full_url});
        if let Some(body) = &e.body {
            let resource: Value = serde_json::from_slice(body).map_err(internal)?;
            entry["resource"] = output.subset(&resource);
        }
        let url = if e.method == "POST" {
            e.res_type.clone()
        } else {
            format!("{}/{}", e.res_type, e.id)
        };
        entry["request"] = json!({"method": e.method, "url": url});
        let status = match e.method.as_str() {
            "DELETE" => "204 No Content",
            _ if e.version == 1 => "201 Created",
            _ => "200 OK",
        };
        entry["response"] = json!({
            "status": status,
            "etag": etag(e.version),
            "lastModified": store_instant(e.last_updated),
        });
        entries.push(entry);
    }
    let mut bundle = json!({
        "resourceType": "Bundle",
        "id": uuid::Uuid::new_v4().to_string(),
        "meta": {"lastUpdated": store_instant(Utc::now())},
        "type": "history",
        "total": page.total,
        "link": links,
    });
    if !entries.is_empty() {
        bundle["entry"] = Value::Array(entries);
    }
    Ok(Outcome::Json(bundle))
}

fn store_instant(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn instant_param(params: &Params, name: &str) -> Result<Option<DateTime<Utc>>> {
    match params.get(name) {
        None => Ok(None),
        Some(v) => DateTime::parse_from_rfc3339(v)
            .map(|d| Some(d.with_timezone(&Utc)))
            .map_err(|_| {
                Error::invalid(format!(
                    "{name} must be an instant with a time zone (e.g. 2024-01-31T12:00:00Z), not '{v}'"
                ))
            }),
    }
}

fn int_param(params: &Params, name: &str) -> Result<Option<i64>> {
    match params.get(name) {
        None => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| Error::invalid(format!("{name} is not a valid paging token"))),
    }
}
