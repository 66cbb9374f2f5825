//! `batch` and `transaction`: POST /fhir with a Bundle (http://hl7.org/fhir/R4/http.html#transaction).
//! Every entry is read, validated and authorised before anything runs. A transaction then runs in
//! one database transaction and answers all or nothing; a batch runs each entry in a transaction
//! of its own and answers each.

mod entry;
mod exec;
mod identify;
mod reads;
mod refs;

pub(crate) use entry::{parse as parse_entry, Action, Entry, PatchDoc, Target};
pub(crate) use exec::{Env, Outcome, Work};

use std::sync::Arc;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{SecondsFormat, Utc};
use serde_json::{json, Value};
use store::{Access, StoreError};

use crate::auth::authorize;
use crate::error::ApiError;
use crate::format::{read_bundle, Output};
use crate::query::Params;
use crate::respond::{etag, parse_etag, resource_response, return_pref, ReturnPref, VersionInfo};
use crate::state::AppState;
use exec::{Body, Failure};

/// Handles POST /fhir.
pub async fn process(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let output = Output::from_request(&req, &Params::parse(req.query_string())?)?;
    let bundle = read_bundle(&req, payload, state.config.bundle_max_bytes).await?;
    if bundle["resourceType"].as_str() != Some("Bundle") {
        return Err(ApiError::bad_request(
            "POST to the base URL takes a Bundle of type batch or transaction",
        ));
    }
    let transaction = match bundle["type"].as_str() {
        Some("transaction") => true,
        Some("batch") => false,
        other => {
            return Err(ApiError::bad_request(format!(
                "Bundle.type must be batch or transaction, not {}",
                other.map_or("missing".to_string(), |t| format!("'{t}'"))
            )))
        }
    };
    let raw = match &bundle["entry"] {
        Value::Array(entries) => entries.as_slice(),
        Value::Null => &[],
        _ => return Err(ApiError::bad_request("Bundle.entry must be an array")),
    };
    if raw.len() > state.config.bundle_max_entries {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-costly",
            format!(
                "The Bundle has {} entries; the limit is {}",
                raw.len(),
                state.config.bundle_max_entries
            ),
        ));
    }
    let kind = if transaction { "transaction" } else { "batch" };
    let interaction = if transaction {
        fhir_model::RestInteraction::Transaction
    } else {
        fhir_model::RestInteraction::Batch
    };

    // Read and authorise every entry first; a transaction fails on the first bad one.
    let mut works: Vec<Option<Work>> = Vec::with_capacity(raw.len());
    let mut early: Vec<Option<ApiError>> = Vec::with_capacity(raw.len());
    let mut hook = None;
    let mut noted = false;
    for (i, e) in raw.iter().enumerate() {
        let checked = entry::parse(i, e, &state.config.base_url).and_then(|entry| {
            let auth = authorize(&req, &state, Some(&entry.res_type), entry.interaction())?;
            if !noted {
                auth.interaction(interaction, fhir_model::AuditAction::Execute);
                noted = true;
            }
            let mut ctx = auth.write_context(&state);
            // One audit hook for the request, so its changes share their AuditEvents.
            match &hook {
                None => hook = ctx.audit.clone(),
                Some(h) => ctx.audit = Some(h.clone()),
            }
            let mut match_ctx = ctx.clone();
            match_ctx.access = ctx.access.as_ref().map(|a| {
                Arc::new(Access {
                    only_org: None,
                    ..(**a).clone()
                })
            });
            Ok(Work {
                entry,
                ctx,
                match_ctx,
            })
        });
        match checked {
            Ok(w) => {
                works.push(Some(w));
                early.push(None);
            }
            Err(e) if transaction => return Err(at_entry(i, raw.get(i), e)),
            Err(e) => {
                works.push(None);
                early.push(Some(e));
            }
        }
    }
    if !noted {
        // Nothing was authorised (an empty or wholly invalid batch): still name the request.
        if let Ok(auth) = authorize(&req, &state, None, authz::Interaction::Search) {
            auth.interaction(interaction, fhir_model::AuditAction::Execute);
        }
    }
    let env = Env {
        base_url: state.config.base_url.clone(),
        default_count: state.config.search_default_count,
        max_count: state.config.search_max_count,
        delete_multiple: state.config.delete_multiple,
    };
    let reads_trail = raw.iter().any(|e| {
        let url = e["request"]["url"].as_str().unwrap_or_default();
        let (path, query) = url.split_once('?').unwrap_or((url, ""));
        e["request"]["method"].as_str() == Some("GET")
            && crate::auth::reads_audit_trail("GET", &format!("/fhir/{path}"), query)
    });
    if reads_trail {
        // As for a GET of AuditEvents: the journal is drained first (see `auth::gate`).
        let store = state.store.clone();
        web::block(move || store.project_audit_all()).await??;
    }
    let store = state.store.clone();
    let has_reads = works.iter().flatten().any(|w| w.entry.is_read());
    let results: Vec<Result<Outcome, ApiError>> = if transaction {
        let mut works: Vec<Work> = works.into_iter().flatten().collect();
        let outcome = web::block(move || in_transaction(&store, &mut works, &env)).await?;
        match outcome {
            Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
            Err(f) => {
                return Err(match f.index {
                    Some(i) => at_entry(i, raw.get(i), f.error),
                    None => f.error,
                })
            }
        }
    } else {
        let done = web::block(move || {
            works
                .into_iter()
                .zip(early)
                .map(|(w, e)| match (w, e) {
                    (Some(w), _) => {
                        let mut one = [w];
                        in_transaction(&store, &mut one, &env)
                            .map(|mut o| o.remove(0))
                            .map_err(|f| f.error)
                    }
                    (None, Some(e)) => Err(e),
                    (None, None) => Err(ApiError::bad_request("the entry could not be read")),
                })
                .collect::<Vec<_>>()
        })
        .await?;
        done
    };
    let auth = authorize(&req, &state, None, authz::Interaction::Search).ok();
    if let Some(auth) = &auth {
        for o in results.iter().flatten() {
            auth.touched(&o.touched);
        }
        if !has_reads && results.iter().all(|r| r.is_ok()) {
            // Every change was audited in its own transaction.
            auth.recorded();
        }
    }
    let response = response_bundle(kind, &results, return_pref(&req), &output, &state)?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, output.content_type()))
        .body(output.render(&response)?))
}

/// Runs entries in one database transaction; a failure rolls back all of them.
pub(crate) fn in_transaction(
    store: &store::Store,
    works: &mut [Work],
    env: &Env,
) -> Result<Vec<Outcome>, Failure> {
    let mut failure: Option<Failure> = None;
    let result = store.transaction(|tx| match exec::run(tx, works, env) {
        Ok(outcomes) => Ok(outcomes),
        Err(f) => {
            failure = Some(f);
            Err(StoreError::Invalid("rolled back".into()))
        }
    });
    result.map_err(|e| {
        failure.take().unwrap_or(Failure {
            index: None,
            error: e.into(),
        })
    })
}

/// The error of a failed transaction, naming the entry to blame.
fn at_entry(index: usize, raw: Option<&Value>, mut error: ApiError) -> ApiError {
    let label = raw
        .map(|e| {
            format!(
                "Bundle.entry[{index}] ({} {})",
                e["request"]["method"].as_str().unwrap_or("?"),
                e["request"]["url"].as_str().unwrap_or("?")
            )
        })
        .unwrap_or_else(|| format!("Bundle.entry[{index}]"));
    for issue in &mut error.issues {
        issue.1 = format!("{label}: {}", issue.1);
        issue.2 = Some(match issue.2.take() {
            Some(path) => format!("Bundle.entry[{index}].resource.{path}"),
            None => format!("Bundle.entry[{index}]"),
        });
    }
    error
}

fn status_text(status: StatusCode) -> String {
    format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    )
    .trim_end()
    .to_string()
}

fn response_bundle(
    kind: &str,
    results: &[Result<Outcome, ApiError>],
    pref: ReturnPref,
    output: &Output,
    state: &AppState,
) -> Result<Value, ApiError> {
    let base = &state.config.base_url;
    let mut entries = Vec::with_capacity(results.len());
    for result in results {
        let entry = match result {
            Err(e) => json!({"response": {
                "status": status_text(e.status),
                "outcome": e.outcome(),
            }}),
            Ok(o) => {
                let mut response = json!({"status": status_text(o.status)});
                if let Some(loc) = &o.location {
                    response["location"] = json!(loc);
                }
                if let Some(v) = o.version {
                    response["etag"] = json!(etag(v));
                }
                if let Some(at) = o.last_modified {
                    response["lastModified"] =
                        json!(at.to_rfc3339_opts(SecondsFormat::Millis, true));
                }
                let mut entry = json!({});
                if let Some(loc) = &o.location {
                    if let Some((t, rest)) = loc.split_once('/') {
                        let id = rest.split('/').next().unwrap_or(rest);
                        entry["fullUrl"] = json!(format!("{base}/{t}/{id}"));
                    }
                }
                let include = matches!(pref, ReturnPref::Representation) || o.read;
                match (&o.body, include) {
                    (Some(Body::Stored(bytes)), true) => {
                        let v: Value =
                            serde_json::from_slice(bytes).map_err(crate::error::internal)?;
                        entry["resource"] = output.subset(&v);
                    }
                    (Some(Body::Json(v)), _) => entry["resource"] = v.clone(),
                    _ => {}
                }
                if matches!(pref, ReturnPref::OperationOutcome) && o.location.is_some() {
                    response["outcome"] = json!({"resourceType": "OperationOutcome", "issue": [{
                        "severity": "information", "code": "informational",
                        "diagnostics": format!("{} {}", status_text(o.status), o.location.as_deref().unwrap_or(""))}]});
                }
                entry["response"] = response;
                entry
            }
        };
        entries.push(entry);
    }
    Ok(json!({
        "resourceType": "Bundle",
        "id": uuid::Uuid::new_v4().to_string(),
        "meta": {"lastUpdated": Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)},
        "type": format!("{kind}-response"),
        "entry": entries,
    }))
}

/// The `If-Match` version of a request.
pub(crate) fn if_match(req: &HttpRequest) -> Result<Option<i32>, ApiError> {
    match req.headers().get(header::IF_MATCH) {
        None => Ok(None),
        Some(h) => Ok(Some(h.to_str().ok().and_then(parse_etag).ok_or_else(
            || ApiError::bad_request("If-Match must be a version ETag such as W/\"3\""),
        )?)),
    }
}

/// Runs one interaction through the same path as a transaction entry (conditional update and
/// delete, PATCH) and answers it as a plain REST interaction.
pub(crate) async fn single(
    req: HttpRequest,
    state: web::Data<AppState>,
    res_type: String,
    action: Action,
) -> Result<HttpResponse, ApiError> {
    let output = Output::from_request(&req, &Params::parse(req.query_string())?)?;
    let entry = Entry {
        index: 0,
        full_url: None,
        res_type,
        action,
    };
    let auth = authorize(&req, &state, Some(&entry.res_type), entry.interaction())?;
    let ctx = auth.write_context(&state);
    let mut match_ctx = ctx.clone();
    match_ctx.access = ctx.access.as_ref().map(|a| {
        Arc::new(Access {
            only_org: None,
            ..(**a).clone()
        })
    });
    let res_type = entry.res_type.clone();
    let work = Work {
        entry,
        ctx,
        match_ctx,
    };
    let env = Env {
        base_url: state.config.base_url.clone(),
        default_count: state.config.search_default_count,
        max_count: state.config.search_max_count,
        delete_multiple: state.config.delete_multiple,
    };
    let store = state.store.clone();
    let mut outcomes = web::block(move || in_transaction(&store, &mut [work], &env))
        .await?
        .map_err(|f| f.error)?;
    auth.recorded();
    let o = outcomes.remove(0);
    let (Some(location), Some(version), Some(at)) = (&o.location, o.version, o.last_modified)
    else {
        return Ok(HttpResponse::build(o.status).finish());
    };
    let id = location.split('/').nth(1).unwrap_or_default();
    let info = VersionInfo {
        res_type: &res_type,
        id,
        version,
        last_updated: at,
    };
    let body = match &o.body {
        Some(Body::Stored(b)) => b.as_slice(),
        _ => &[],
    };
    resource_response(
        &req,
        o.status,
        &info,
        body,
        &output,
        Some(&state.config.base_url),
        true,
    )
}
