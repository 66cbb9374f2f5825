//! Running checked entries inside one database transaction (a transaction Bundle, or one entry
//! of a batch): deletes, then creates, then updates and patches, then reads, with `fullUrl`s and
//! conditional references resolved before anything that refers to them is written.

use std::collections::{HashMap, HashSet};

use actix_web::http::StatusCode;
use chrono::{DateTime, Utc};
use serde_json::Value;
use store::{Condition, StoreError, Tx, Visibility, WriteContext, Written};

use super::entry::{Action, Entry, PatchDoc, Target};
use super::{identify, reads, refs};
use crate::error::ApiError;

/// An entry with what its caller may do for it.
pub struct Work {
    /// The entry.
    pub entry: Entry,
    /// The write context (organisation, source, access rules, audit).
    pub ctx: WriteContext,
    /// The same, with the own-source limit lifted: finding who a conditional reference or a
    /// conditional create means is identification, not a change (a feed may attach its data to
    /// a Patient another source registered).
    pub match_ctx: WriteContext,
}

/// Settings the entries run under.
pub struct Env {
    /// The FHIR base URL.
    pub base_url: String,
    /// Search page size when `_count` is absent.
    pub default_count: i64,
    /// Largest search page.
    pub max_count: i64,
    /// Conditional delete may delete several matches.
    pub delete_multiple: bool,
}

/// The body of an entry's response.
pub enum Body {
    /// A stored resource, as stored.
    Stored(Vec<u8>),
    /// A built resource (a searchset).
    Json(Value),
}

/// What one entry did.
pub struct Outcome {
    /// HTTP status.
    pub status: StatusCode,
    /// `Type/id/_history/v` of a written or read version.
    pub location: Option<String>,
    /// The version.
    pub version: Option<i32>,
    /// When that version was written.
    pub last_modified: Option<DateTime<Utc>>,
    /// The resource, when there is one to return.
    pub body: Option<Body>,
    /// Patients whose data a read returned (for the audit record).
    pub touched: Vec<String>,
    /// The entry was a read or search: its resource is returned whatever `Prefer` says.
    pub read: bool,
    /// A write that changed nothing (a replay, or a conditional create that found its match).
    pub unchanged: bool,
}

/// A failed entry (its position, when one entry is to blame) and why.
pub struct Failure {
    /// Position in the Bundle.
    pub index: Option<usize>,
    /// The error.
    pub error: ApiError,
}

pub(super) fn fail(index: usize) -> impl Fn(ApiError) -> Failure {
    move |error| Failure {
        index: Some(index),
        error,
    }
}

pub(super) fn store_fail(index: usize) -> impl Fn(StoreError) -> Failure {
    move |e| Failure {
        index: Some(index),
        error: e.into(),
    }
}

fn written(w: Written, res_type: &str) -> Outcome {
    let unchanged = w.unchanged;
    let status = if w.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Outcome {
        status,
        location: Some(format!("{res_type}/{}/_history/{}", w.id, w.version)),
        version: Some(w.version),
        last_modified: Some(w.last_updated),
        body: Some(Body::Stored(w.body)),
        touched: Vec::new(),
        read: false,
        unchanged,
    }
}

fn condition(res_type: &str, query: &str) -> Result<Condition, ApiError> {
    Ok(Condition {
        query: query.to_string(),
        filter: search::compile_condition(res_type, query)?,
    })
}

/// An identifier's system and value.
type Identifier = (String, String);

/// Runs `works` in the open transaction `tx`; an error rolls all of them back.
pub fn run(tx: &mut Tx<'_>, works: &mut [Work], env: &Env) -> Result<Vec<Outcome>, Failure> {
    let n = works.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| (works[i].entry.rank(), i));
    let ranks: Vec<u8> = works.iter().map(|w| w.entry.rank()).collect();
    let writes: Vec<usize> = order
        .iter()
        .copied()
        .filter(|&i| matches!(ranks[i], 1 | 2))
        .collect();
    let mut outcomes: Vec<Option<Outcome>> = (0..n).map(|_| None).collect();
    let mut ids: Vec<Option<String>> = vec![None; n];
    let mut full_urls: HashMap<String, String> = HashMap::new();

    for &i in order.iter().filter(|&&i| works[i].entry.rank() == 0) {
        outcomes[i] = Some(delete(tx, &works[i], env)?);
    }

    // Every condition of the transaction is locked at once, in sorted order: concurrent feeds
    // whose messages overlap then queue instead of deadlocking.
    let keys: Vec<String> = writes
        .iter()
        .filter_map(|&i| {
            let t = works[i].entry.res_type.as_str();
            match &works[i].entry.action {
                Action::Create {
                    if_none_exist: Some(q),
                    ..
                }
                | Action::Update {
                    target: Target::Query(q),
                    ..
                } => Some(store::condition_key(t, q)),
                _ => None,
            }
        })
        .collect();
    tx.lock_keys(keys).map_err(|e| Failure {
        index: None,
        error: e.into(),
    })?;

    // Conditional creates by one `identifier=system|value` (most of a feed's entries) are
    // looked up together, one statement per resource type.
    let mut prefound: HashMap<usize, Vec<store::Match>> = HashMap::new();
    let mut by_type: HashMap<String, Vec<(usize, Identifier)>> = HashMap::new();
    for &i in &writes {
        let w = &works[i];
        if let Action::Create {
            if_none_exist: Some(q),
            ..
        } = &w.entry.action
        {
            if w.entry.res_type == "Patient" || q.contains('\\') {
                continue;
            }
            if let Some((Some(system), value)) = refs::single_identifier(q) {
                if value.is_empty() {
                    continue;
                }
                by_type
                    .entry(w.entry.res_type.clone())
                    .or_default()
                    .push((i, (system, value)));
            }
        }
    }
    for (t, group) in by_type {
        let keys: Vec<(String, String)> = group.iter().map(|(_, k)| k.clone()).collect();
        let first = group[0].0;
        let mut found = tx
            .find_identifiers(&t, &keys, &works[first].match_ctx)
            .map_err(store_fail(first))?;
        for (i, key) in group {
            prefound.insert(i, found.remove(&key).unwrap_or_default());
        }
    }

    // Who each write is about, before any reference to it is rewritten.
    let mut seen: HashSet<String> = HashSet::new();
    for &i in &writes {
        let w = &works[i];
        let t = w.entry.res_type.as_str();
        let id = match &w.entry.action {
            Action::Create {
                if_none_exist: Some(q),
                ..
            } if prefound.contains_key(&i) => {
                let mut found = prefound.remove(&i).unwrap_or_default();
                match found.len() {
                    0 => uuid::Uuid::new_v4().to_string(),
                    1 => {
                        let m = found.pop().expect("one match");
                        tx.audit_read(t, &m, &w.match_ctx);
                        let id = m.id.clone();
                        outcomes[i] = Some(written(
                            Written {
                                id: m.id,
                                version: m.version,
                                last_updated: m.last_updated,
                                body: m.body,
                                created: false,
                                unchanged: true,
                            },
                            t,
                        ));
                        id
                    }
                    _ => return Err(fail(i)(multiple(t, q))),
                }
            }
            Action::Create {
                resource,
                if_none_exist: Some(q),
            } => {
                let cond = condition(t, q).map_err(fail(i))?;
                match tx
                    .create_condition(t, resource, &cond, &w.match_ctx)
                    .map_err(store_fail(i))?
                {
                    Some(found) => {
                        let id = found.id.clone();
                        let found = if t == "Patient" {
                            identify::link_identifiers(tx, found, resource, &w.ctx)
                                .map_err(fail(i))?
                        } else {
                            found
                        };
                        outcomes[i] = Some(written(found, t));
                        id
                    }
                    None => uuid::Uuid::new_v4().to_string(),
                }
            }
            Action::Create { .. } => uuid::Uuid::new_v4().to_string(),
            Action::Update {
                target: Target::Id(id),
                ..
            }
            | Action::Patch {
                target: Target::Id(id),
                ..
            } => id.clone(),
            Action::Update {
                target: Target::Query(q),
                resource,
                ..
            } => {
                let cond = condition(t, q).map_err(fail(i))?;
                tx.lock_condition(t, q).map_err(store_fail(i))?;
                let found = tx
                    .find(t, &cond.filter, &w.match_ctx, 2)
                    .map_err(store_fail(i))?;
                let body_id = resource["id"].as_str();
                match found.as_slice() {
                    [] => body_id
                        .map(str::to_string)
                        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
                    [m] => {
                        if body_id.is_some_and(|b| b != m.id) {
                            return Err(fail(i)(ApiError::bad_request(format!(
                                "the resource's id '{}' is not the id of the {t} the condition \
                                 '{q}' matches",
                                body_id.unwrap_or_default()
                            ))));
                        }
                        m.id.clone()
                    }
                    _ => return Err(fail(i)(multiple(t, q))),
                }
            }
            Action::Patch {
                target: Target::Query(q),
                ..
            } => {
                let cond = condition(t, q).map_err(fail(i))?;
                let found = tx
                    .find(t, &cond.filter, &w.match_ctx, 2)
                    .map_err(store_fail(i))?;
                match found.as_slice() {
                    [] => {
                        return Err(fail(i)(ApiError::not_found(format!(
                            "no {t} matches '{q}'"
                        ))))
                    }
                    [m] => m.id.clone(),
                    _ => return Err(fail(i)(multiple(t, q))),
                }
            }
            _ => continue,
        };
        let key = format!("{t}/{id}");
        if !seen.insert(key.clone()) {
            return Err(fail(i)(ApiError::bad_request(format!(
                "{key} is the target of more than one entry of this transaction"
            ))));
        }
        if let Some(full) = &w.entry.full_url {
            full_urls.insert(full.clone(), key);
        }
        ids[i] = Some(id);
    }

    // Entries this Bundle creates, by the identifiers a conditional reference may name.
    let locals: Vec<(String, Option<String>, Value, String)> = order
        .iter()
        .filter_map(|&i| {
            let w = &works[i];
            let id = ids[i].clone()?;
            match &w.entry.action {
                Action::Create {
                    resource,
                    if_none_exist,
                } => Some((
                    w.entry.res_type.clone(),
                    if_none_exist.clone(),
                    resource["identifier"].clone(),
                    id,
                )),
                Action::Update {
                    resource, target, ..
                } => Some((
                    w.entry.res_type.clone(),
                    match target {
                        Target::Query(q) => Some(q.clone()),
                        Target::Id(_) => None,
                    },
                    resource["identifier"].clone(),
                    id,
                )),
                _ => None,
            }
        })
        .collect();
    let mut resolved: HashMap<String, String> = HashMap::new();
    for &i in &writes {
        if outcomes[i].is_some() {
            continue;
        }
        let w = &mut works[i];
        let resource = match &mut w.entry.action {
            Action::Create { resource, .. } | Action::Update { resource, .. } => resource,
            _ => continue,
        };
        let match_ctx = w.match_ctx.clone();
        let mut resolve = |reference: &str| -> Result<String, ApiError> {
            if let Some(r) = resolved.get(reference) {
                return Ok(r.clone());
            }
            let target = identify::resolve_conditional(tx, reference, &locals, &match_ctx)?;
            resolved.insert(reference.to_string(), target.clone());
            Ok(target)
        };
        refs::rewrite(resource, &full_urls, &mut resolve).map_err(fail(i))?;
    }

    // Plain creates, and updates of ids not stored yet (a first load), share multi-row inserts;
    // Patients go one by one, so that a clash of NHS numbers names its entry.
    let fresh_updates: Vec<(String, String)> = writes
        .iter()
        .filter(|&&i| outcomes[i].is_none() && works[i].entry.res_type != "Patient")
        .filter_map(|&i| match &works[i].entry.action {
            Action::Update { if_match: None, .. } => {
                Some((works[i].entry.res_type.clone(), ids[i].clone()?))
            }
            _ => None,
        })
        .collect();
    let stored = tx.existing(&fresh_updates).map_err(|e| Failure {
        index: None,
        error: e.into(),
    })?;
    for method in ["POST", "PUT"] {
        let bulk: Vec<usize> = writes
            .iter()
            .copied()
            .filter(|&i| {
                let w = &works[i];
                outcomes[i].is_none()
                    && w.entry.res_type != "Patient"
                    && ids[i].as_ref().is_some_and(|id| match &w.entry.action {
                        Action::Create { .. } => method == "POST",
                        Action::Update { if_match: None, .. } => {
                            method == "PUT"
                                && !stored.contains(&(w.entry.res_type.clone(), id.clone()))
                        }
                        _ => false,
                    })
            })
            .collect();
        if bulk.is_empty() {
            continue;
        }
        let mut items = Vec::with_capacity(bulk.len());
        for &i in &bulk {
            if let Action::Create { resource, .. } | Action::Update { resource, .. } =
                &mut works[i].entry.action
            {
                items.push((
                    works[i].entry.res_type.clone(),
                    ids[i].clone().unwrap_or_default(),
                    std::mem::take(resource),
                ));
            }
        }
        let with_ctx = items
            .into_iter()
            .zip(&bulk)
            .map(|((t, id, body), &i)| (t, id, body, &works[i].ctx))
            .collect();
        let created = tx.create_many(with_ctx, method).map_err(|e| Failure {
            index: None,
            error: e.into(),
        })?;
        for (w, &i) in created.into_iter().zip(&bulk) {
            outcomes[i] = Some(written(w, &works[i].entry.res_type));
        }
    }

    for &i in &writes {
        if outcomes[i].is_some() {
            continue;
        }
        let Some(id) = ids[i].clone() else { continue };
        let w = &mut works[i];
        let t = w.entry.res_type.clone();
        let outcome = match &mut w.entry.action {
            Action::Create { resource, .. } => {
                let body = std::mem::take(resource);
                written(
                    tx.create_with_id(&t, &id, body, &w.ctx)
                        .map_err(store_fail(i))?,
                    &t,
                )
            }
            Action::Update {
                resource, if_match, ..
            } => {
                let body = std::mem::take(resource);
                written(
                    tx.update(&t, &id, body, *if_match, &w.ctx)
                        .map_err(store_fail(i))?,
                    &t,
                )
            }
            Action::Patch {
                patch, if_match, ..
            } => {
                let patched = patched(tx, &t, &id, patch, *if_match, &w.ctx).map_err(fail(i))?;
                written(
                    tx.update(&t, &id, patched, *if_match, &w.ctx)
                        .map_err(store_fail(i))?,
                    &t,
                )
            }
            _ => continue,
        };
        outcomes[i] = Some(outcome);
    }

    for &i in order.iter().filter(|&&i| works[i].entry.rank() == 3) {
        outcomes[i] = Some(reads::read(tx, &works[i], env)?);
    }
    Ok(outcomes
        .into_iter()
        .map(|o| o.expect("every entry ran"))
        .collect())
}

fn multiple(t: &str, q: &str) -> ApiError {
    ApiError::new(
        StatusCode::PRECONDITION_FAILED,
        "multiple-matches",
        format!("the condition '{q}' matches more than one {t}"),
    )
}

fn delete(tx: &mut Tx<'_>, w: &Work, env: &Env) -> Result<Outcome, Failure> {
    let i = w.entry.index;
    let t = w.entry.res_type.as_str();
    let Action::Delete { target } = &w.entry.action else {
        unreachable!("rank 0 is delete");
    };
    let ids: Vec<String> = match target {
        Target::Id(id) => vec![id.clone()],
        Target::Query(q) => {
            let cond = condition(t, q).map_err(fail(i))?;
            let limit = if env.delete_multiple { 1000 } else { 2 };
            let found = tx
                .find(t, &cond.filter, &w.ctx, limit + 1)
                .map_err(store_fail(i))?;
            if found.len() > 1 && !env.delete_multiple {
                return Err(fail(i)(multiple(t, q)));
            }
            if found.len() as i64 > limit {
                return Err(fail(i)(ApiError::new(
                    StatusCode::PRECONDITION_FAILED,
                    "too-costly",
                    format!("the condition '{q}' matches more than {limit} resources"),
                )));
            }
            found.into_iter().map(|m| m.id).collect()
        }
    };
    for id in &ids {
        match tx.delete(t, id, &w.ctx) {
            Ok(_) => {}
            // Deleting what does not exist is a success (http.html#delete).
            Err(StoreError::NotFound(_)) => {}
            Err(e) => return Err(store_fail(i)(e)),
        }
    }
    Ok(Outcome {
        status: StatusCode::NO_CONTENT,
        location: None,
        version: None,
        last_modified: None,
        body: None,
        touched: Vec::new(),
        read: false,
        unchanged: false,
    })
}

/// The current version of a resource with a patch applied, validated like an update's body.
fn patched(
    tx: &mut Tx<'_>,
    t: &str,
    id: &str,
    patch: &PatchDoc,
    if_match: Option<i32>,
    ctx: &WriteContext,
) -> Result<Value, ApiError> {
    let access = ctx.access.clone().unwrap_or_default();
    let current = match tx.read_checked(t, id, None, &access)? {
        Some((s, Visibility::Visible)) if !s.deleted => s,
        // A deletion the client may not see is as absent as a resource it may not see.
        Some((s, Visibility::Visible)) if s.deleted => {
            return Err(ApiError::new(
                StatusCode::GONE,
                "deleted",
                format!("{t}/{id} was deleted"),
            ))
        }
        Some((_, Visibility::Withheld)) => return Err(crate::auth::withheld(&format!("{t}/{id}"))),
        _ => return Err(ApiError::not_found(format!("{t}/{id} is not known"))),
    };
    if let Some(expected) = if_match {
        if expected != current.version {
            return Err(ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                "conflict",
                format!(
                    "If-Match names version {expected} but {t}/{id} is at version {}",
                    current.version
                ),
            ));
        }
    }
    let body = current.body.unwrap_or_default();
    let value: Value = serde_json::from_slice(&body).map_err(crate::error::internal)?;
    crate::interactions::patch::apply(&value, patch)
}
