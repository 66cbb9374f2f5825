//! GET entries of a Bundle: read, vread and search inside the transaction, so they see its
//! writes and its access rules.

use std::sync::Arc;

use actix_web::http::StatusCode;
use chrono::{SecondsFormat, Utc};
use serde_json::{json, Value};
use store::{Access, ResourceQuery, Tx, Visibility};

use super::entry::Action;
use super::exec::{fail, store_fail, Body, Env, Failure, Outcome, Work};
use crate::error::ApiError;

pub(super) fn read(tx: &mut Tx<'_>, w: &Work, env: &Env) -> Result<Outcome, Failure> {
    let i = w.entry.index;
    let t = w.entry.res_type.as_str();
    let access: Arc<Access> = w.ctx.access.clone().unwrap_or_default();
    match &w.entry.action {
        Action::Read { id, version } => {
            let row = tx
                .read_checked(t, id, *version, &access)
                .map_err(store_fail(i))?;
            let reference = format!("{t}/{id}");
            match row {
                None => Err(fail(i)(ApiError::not_found(format!(
                    "{reference} is not known"
                )))),
                Some((_, Visibility::Hidden)) => Err(fail(i)(ApiError::not_found(format!(
                    "{reference} is not known"
                )))),
                Some((_, Visibility::Withheld)) => Err(fail(i)(crate::auth::withheld(&reference))),
                Some((s, Visibility::Visible)) if s.deleted => Err(fail(i)(ApiError::new(
                    StatusCode::GONE,
                    "deleted",
                    format!("{reference} was deleted (version {})", s.version),
                ))),
                Some((s, Visibility::Visible)) => Ok(Outcome {
                    status: StatusCode::OK,
                    location: Some(format!("{reference}/_history/{}", s.version)),
                    version: Some(s.version),
                    last_modified: Some(s.last_updated),
                    touched: s.compartments.clone(),
                    body: s.body.map(Body::Stored),
                    read: true,
                    unchanged: false,
                }),
            }
        }
        Action::Search { query } => search(tx, t, query, &access, env).map_err(fail(i)),
        _ => unreachable!("rank 3 is a read"),
    }
}

fn search(
    tx: &mut Tx<'_>,
    t: &str,
    query: &str,
    access: &Access,
    env: &Env,
) -> Result<Outcome, ApiError> {
    let params = search::text::pairs(query)?;
    let options = search::PlanOptions {
        default_count: env.default_count,
        max_count: env.max_count,
        strict: false,
        base_url: env.base_url.clone(),
        access: Some(access.clone()),
        // A Bundle's search entries issue no page links, so no cursor can belong to them.
        cursor_key: search::CursorKey::from_secret(b"bundle entries have no pages"),
        scope: String::new(),
    };
    let plan = search::plan(&[t.to_string()], &params, &options)?;
    let q = ResourceQuery {
        types: plan.types.clone(),
        compartment: None,
        filter: plan.filter.clone(),
        sort: plan.sort.clone(),
        after: plan.cursor.clone(),
        backward: plan.backward,
        snapshot: plan.snapshot,
        limit: plan.count,
        count_total: plan.total == search::TotalMode::Accurate,
        access: Some(access.clone()),
    };
    let page = tx.query_resources(&q)?;
    let (included, _) = if plan.includes.is_empty() || page.rows.is_empty() {
        (Vec::new(), false)
    } else {
        tx.include(
            &plan.includes,
            &page.rows,
            env.max_count as usize,
            Some(access),
        )?
    };
    let mut touched = Vec::new();
    let mut entries = Vec::new();
    for (row, mode) in page
        .rows
        .iter()
        .map(|r| (r, "match"))
        .chain(included.iter().map(|r| (r, "include")))
    {
        touched.extend(row.compartments.iter().cloned());
        let resource: Value = serde_json::from_slice(&row.body).map_err(crate::error::internal)?;
        entries.push(json!({
            "fullUrl": format!("{}/{}/{}", env.base_url, row.res_type, row.id),
            "resource": resource,
            "search": {"mode": mode},
        }));
    }
    let applied: Vec<String> = plan
        .applied
        .iter()
        .map(|(k, v)| format!("{}={}", search::text::encode(k), search::text::encode(v)))
        .collect();
    let mut bundle = json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "meta": {"lastUpdated": Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)},
        "link": [{"relation": "self", "url": format!("{}/{t}?{}", env.base_url, applied.join("&"))}],
    });
    if let Some(total) = page.total {
        bundle["total"] = json!(total);
    }
    if !entries.is_empty() {
        bundle["entry"] = Value::Array(entries);
    }
    touched.sort();
    touched.dedup();
    Ok(Outcome {
        status: StatusCode::OK,
        location: None,
        version: None,
        last_modified: None,
        body: Some(Body::Json(bundle)),
        touched,
        read: true,
        unchanged: false,
    })
}
