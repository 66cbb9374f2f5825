//! Running checked entries inside one database transaction (a transaction Bundle, or one entry
//! of a batch), phase by phase on one context ([`Run`]): deletes; then the writes' conditions
//! locked together, their identities settled, `fullUrl`s and conditional references rewritten,
//! plain creates inserted together and the rest written one by one; then reads, which see
//! the writes.

use std::collections::{HashMap, HashSet};

use serde_json::Value;
use store::{Condition, StoreError, Tx, Visibility, WriteContext, Written};

use super::entry::{Action, PatchDoc, Target};
use super::plan::{partition, Plan};
use super::work::{Body, EntryOutcome, Failure, Work};
use super::{identify, refs};
use crate::error::{internal, Error, ErrorKind, Result};
use crate::render::Output;
use crate::services::Settings;

/// The failure of entry `index`.
fn at(index: usize) -> impl Fn(Error) -> Failure {
    move |error| Failure {
        index: Some(index),
        error,
    }
}

/// The failure of entry `index`, from the store.
fn store_at(index: usize) -> impl Fn(StoreError) -> Failure {
    move |e| Failure {
        index: Some(index),
        error: e.into(),
    }
}

fn condition(res_type: &str, query: &str) -> Result<Condition> {
    Ok(Condition {
        query: query.to_string(),
        filter: search::compile_condition(res_type, query)?,
    })
}

fn multiple(t: &str, q: &str) -> Error {
    Error::multiple_matches(format!("the condition '{q}' matches more than one {t}"))
}

/// Per entry: the id it writes under once known, and its outcome once done.
#[derive(Default)]
struct Slot {
    id: Option<String>,
    outcome: Option<EntryOutcome>,
}

/// One transaction's run: the open transaction, the entries, and their slots.
struct Run<'r, 'c> {
    tx: &'r mut Tx<'c>,
    works: &'r mut [Work],
    settings: &'r Settings,
    slots: Vec<Slot>,
    /// `fullUrl` → `Type/id` of what this transaction writes.
    full_urls: HashMap<String, String>,
}

/// Runs `works` in the open transaction `tx`; an error rolls all of them back.
pub(super) fn run(
    tx: &mut Tx<'_>,
    works: &mut [Work],
    settings: &Settings,
) -> std::result::Result<Vec<EntryOutcome>, Failure> {
    let plan = partition(works);
    let mut run = Run {
        slots: (0..works.len()).map(|_| Slot::default()).collect(),
        tx,
        works,
        settings,
        full_urls: HashMap::new(),
    };
    run.deletes(&plan)?;
    // Every condition of the transaction is locked at once, in sorted order: concurrent feeds
    // whose messages overlap then queue instead of deadlocking.
    run.tx.lock_keys(plan.lock_keys.clone())?;
    let prefound = run.find_identifiers(&plan)?;
    run.identify(&plan, prefound)?;
    run.rewrite_references(&plan)?;
    run.insert_together(&plan)?;
    run.write_rest(&plan)?;
    run.reads(&plan)?;
    Ok(run
        .slots
        .into_iter()
        .map(|s| s.outcome.expect("every entry ran"))
        .collect())
}

type Step = std::result::Result<(), Failure>;

impl Run<'_, '_> {
    fn deletes(&mut self, plan: &Plan) -> Step {
        for &i in &plan.deletes {
            let w = &self.works[i];
            let t = w.entry.res_type.as_str();
            let Action::Delete { target } = &w.entry.action else {
                continue;
            };
            let ids: Vec<String> = match target {
                Target::Id(id) => vec![id.clone()],
                Target::Query(q) => {
                    let cond = condition(t, q).map_err(at(i))?;
                    let many = self.settings.delete_multiple;
                    let limit = if many { 1000 } else { 2 };
                    let found = self
                        .tx
                        .find(t, &cond.filter, &w.ctx, limit + 1)
                        .map_err(store_at(i))?;
                    if found.len() > 1 && !many {
                        return Err(at(i)(multiple(t, q)));
                    }
                    if found.len() as i64 > limit {
                        return Err(at(i)(
                            Error::new(
                                ErrorKind::PreconditionFailed,
                                format!("the condition '{q}' matches more than {limit} resources"),
                            )
                            .with_code(fhir_model::IssueCode::TooCostly),
                        ));
                    }
                    found.into_iter().map(|m| m.id).collect()
                }
            };
            for id in &ids {
                match self.tx.delete(t, id, &w.ctx) {
                    // Deleting what does not exist is a success (http.html#delete).
                    Ok(_) | Err(StoreError::NotFound(_)) => {}
                    Err(e) => return Err(store_at(i)(e)),
                }
            }
            self.slots[i].outcome = Some(EntryOutcome {
                status: 204,
                location: None,
                version: None,
                last_modified: None,
                body: None,
                touched: Vec::new(),
                read: false,
                unchanged: false,
            });
        }
        Ok(())
    }

    /// Conditional creates by one identifier, looked up together per type.
    fn find_identifiers(
        &mut self,
        plan: &Plan,
    ) -> std::result::Result<HashMap<usize, Vec<store::Match>>, Failure> {
        let mut prefound = HashMap::new();
        for (t, group) in &plan.by_identifier {
            let keys: Vec<(String, String)> = group.iter().map(|(_, k)| k.clone()).collect();
            let first = group[0].0;
            let mut found = self
                .tx
                .find_identifiers(t, &keys, &self.works[first].match_ctx)
                .map_err(store_at(first))?;
            for (i, key) in group {
                prefound.insert(*i, found.remove(key).unwrap_or_default());
            }
        }
        Ok(prefound)
    }

    /// Settles the id each write is about, before any reference to it is rewritten; a
    /// conditional create that found its match is done here.
    fn identify(&mut self, plan: &Plan, mut prefound: HashMap<usize, Vec<store::Match>>) -> Step {
        let mut seen: HashSet<String> = HashSet::new();
        for &i in &plan.writes {
            let Some(id) = self.identify_one(i, prefound.remove(&i))? else {
                continue;
            };
            let w = &self.works[i];
            let key = format!("{}/{id}", w.entry.res_type);
            if !seen.insert(key.clone()) {
                return Err(at(i)(Error::invalid(format!(
                    "{key} is the target of more than one entry of this transaction"
                ))));
            }
            if let Some(full) = &w.entry.full_url {
                self.full_urls.insert(full.clone(), key);
            }
            self.slots[i].id = Some(id);
        }
        Ok(())
    }

    fn identify_one(
        &mut self,
        i: usize,
        prefound: Option<Vec<store::Match>>,
    ) -> std::result::Result<Option<String>, Failure> {
        let fresh = || uuid::Uuid::new_v4().to_string();
        let w = &self.works[i];
        let t = w.entry.res_type.as_str();
        let id = match (&w.entry.action, prefound) {
            (
                Action::Create {
                    if_none_exist: Some(q),
                    ..
                },
                Some(mut found),
            ) => match found.len() {
                0 => fresh(),
                1 => {
                    let m = found.pop().expect("one match");
                    self.tx.audit_read(t, &m, &w.match_ctx);
                    let id = m.id.clone();
                    let written = Written::found(m);
                    self.slots[i].outcome = Some(EntryOutcome::written(written, t));
                    id
                }
                _ => return Err(at(i)(multiple(t, q))),
            },
            (
                Action::Create {
                    resource,
                    if_none_exist: Some(q),
                },
                None,
            ) => {
                let cond = condition(t, q).map_err(at(i))?;
                match self
                    .tx
                    .create_condition(t, resource, &cond, &w.match_ctx)
                    .map_err(store_at(i))?
                {
                    Some(found) => {
                        let id = found.id.clone();
                        let found = if t == "Patient" {
                            identify::link_identifiers(self.tx, found, resource, &w.ctx)
                                .map_err(at(i))?
                        } else {
                            found
                        };
                        self.slots[i].outcome = Some(EntryOutcome::written(found, t));
                        id
                    }
                    None => fresh(),
                }
            }
            (Action::Create { .. }, _) => fresh(),
            (
                Action::Update {
                    target: Target::Id(id),
                    ..
                }
                | Action::Patch {
                    target: Target::Id(id),
                    ..
                },
                _,
            ) => id.clone(),
            (
                Action::Update {
                    target: Target::Query(q),
                    resource,
                    ..
                },
                _,
            ) => {
                let cond = condition(t, q).map_err(at(i))?;
                self.tx.lock_condition(t, q).map_err(store_at(i))?;
                let found = self
                    .tx
                    .find(t, &cond.filter, &w.match_ctx, 2)
                    .map_err(store_at(i))?;
                let body_id = resource["id"].as_str();
                match found.as_slice() {
                    [] => body_id.map(str::to_string).unwrap_or_else(fresh),
                    [m] => {
                        if body_id.is_some_and(|b| b != m.id) {
                            return Err(at(i)(Error::invalid(format!(
                                "the resource's id '{}' is not the id of the {t} the condition \
                                 '{q}' matches",
                                body_id.unwrap_or_default()
                            ))));
                        }
                        m.id.clone()
                    }
                    _ => return Err(at(i)(multiple(t, q))),
                }
            }
            (
                Action::Patch {
                    target: Target::Query(q),
                    ..
                },
                _,
            ) => {
                let cond = condition(t, q).map_err(at(i))?;
                let found = self
                    .tx
                    .find(t, &cond.filter, &w.match_ctx, 2)
                    .map_err(store_at(i))?;
                match found.as_slice() {
                    [] => return Err(at(i)(Error::not_found(format!("no {t} matches '{q}'")))),
                    [m] => m.id.clone(),
                    _ => return Err(at(i)(multiple(t, q))),
                }
            }
            _ => return Ok(None),
        };
        Ok(Some(id))
    }

    /// Rewrites `fullUrl` references and resolves conditional references in what is written.
    fn rewrite_references(&mut self, plan: &Plan) -> Step {
        // Entries this Bundle writes, by the identifiers a conditional reference may name.
        let locals: Vec<identify::Local> = plan
            .writes
            .iter()
            .filter_map(|&i| {
                let e = &self.works[i].entry;
                let id = self.slots[i].id.clone()?;
                let (condition, resource) = match &e.action {
                    Action::Create {
                        resource,
                        if_none_exist,
                    } => (if_none_exist.clone(), resource),
                    Action::Update {
                        resource, target, ..
                    } => (
                        match target {
                            Target::Query(q) => Some(q.clone()),
                            Target::Id(_) => None,
                        },
                        resource,
                    ),
                    _ => return None,
                };
                Some((
                    e.res_type.clone(),
                    condition,
                    resource["identifier"].clone(),
                    id,
                ))
            })
            .collect();
        let mut resolved: HashMap<String, String> = HashMap::new();
        for &i in &plan.writes {
            if self.slots[i].outcome.is_some() {
                continue;
            }
            let w = &mut self.works[i];
            let resource = match &mut w.entry.action {
                Action::Create { resource, .. } | Action::Update { resource, .. } => resource,
                _ => continue,
            };
            let tx = &mut *self.tx;
            let match_ctx = &w.match_ctx;
            let mut resolve = |reference: &str| -> Result<String> {
                if let Some(r) = resolved.get(reference) {
                    return Ok(r.clone());
                }
                let target = identify::resolve_conditional(tx, reference, &locals, match_ctx)?;
                resolved.insert(reference.to_string(), target.clone());
                Ok(target)
            };
            refs::rewrite(resource, &self.full_urls, &mut resolve).map_err(at(i))?;
        }
        Ok(())
    }

    /// Plain creates, and updates of ids not stored yet (a first load), share multi-row
    /// inserts; Patients go one by one, so that a clash of NHS numbers names its entry.
    fn insert_together(&mut self, plan: &Plan) -> Step {
        let pending = |s: &Slot, w: &Work| s.outcome.is_none() && w.entry.res_type != "Patient";
        let fresh_updates: Vec<(String, String)> = plan
            .writes
            .iter()
            .filter(|&&i| pending(&self.slots[i], &self.works[i]))
            .filter_map(|&i| match &self.works[i].entry.action {
                Action::Update { if_match: None, .. } => Some((
                    self.works[i].entry.res_type.clone(),
                    self.slots[i].id.clone()?,
                )),
                _ => None,
            })
            .collect();
        let stored = self.tx.existing(&fresh_updates)?;
        for method in [store::InsertMethod::Post, store::InsertMethod::Put] {
            let bulk: Vec<usize> = plan
                .writes
                .iter()
                .copied()
                .filter(|&i| {
                    let (s, w) = (&self.slots[i], &self.works[i]);
                    pending(s, w)
                        && s.id.as_ref().is_some_and(|id| match &w.entry.action {
                            Action::Create { .. } => method == store::InsertMethod::Post,
                            Action::Update { if_match: None, .. } => {
                                method == store::InsertMethod::Put
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
                let id = self.slots[i].id.clone().unwrap_or_default();
                let w = &mut self.works[i];
                if let Action::Create { resource, .. } | Action::Update { resource, .. } =
                    &mut w.entry.action
                {
                    items.push((w.entry.res_type.clone(), id, std::mem::take(resource)));
                }
            }
            let with_ctx = items
                .into_iter()
                .zip(&bulk)
                .map(|((t, id, body), &i)| (t, id, body, &self.works[i].ctx))
                .collect();
            let created = self.tx.create_many(with_ctx, method)?;
            for (w, &i) in created.into_iter().zip(&bulk) {
                self.slots[i].outcome =
                    Some(EntryOutcome::written(w, &self.works[i].entry.res_type));
            }
        }
        Ok(())
    }

    /// The writes not done yet, one by one.
    fn write_rest(&mut self, plan: &Plan) -> Step {
        for &i in &plan.writes {
            if self.slots[i].outcome.is_some() {
                continue;
            }
            let Some(id) = self.slots[i].id.clone() else {
                continue;
            };
            let w = &mut self.works[i];
            let t = w.entry.res_type.clone();
            let written = match &mut w.entry.action {
                Action::Create { resource, .. } => {
                    let body = std::mem::take(resource);
                    self.tx.create_with_id(&t, &id, body, &w.ctx)
                }
                Action::Update {
                    resource, if_match, ..
                } => {
                    let body = std::mem::take(resource);
                    self.tx.update(&t, &id, body, *if_match, &w.ctx)
                }
                Action::Patch {
                    patch, if_match, ..
                } => {
                    let patched =
                        patched(self.tx, &t, &id, patch, *if_match, &w.ctx).map_err(at(i))?;
                    self.tx.update(&t, &id, patched, *if_match, &w.ctx)
                }
                _ => continue,
            };
            self.slots[i].outcome = Some(EntryOutcome::written(written.map_err(store_at(i))?, &t));
        }
        Ok(())
    }

    /// GET entries, inside the transaction, so they see its writes and its access rules.
    fn reads(&mut self, plan: &Plan) -> Step {
        for &i in &plan.reads {
            let outcome = self.read_one(i).map_err(at(i))?;
            self.slots[i].outcome = Some(outcome);
        }
        Ok(())
    }

    fn read_one(&mut self, i: usize) -> Result<EntryOutcome> {
        let w = &self.works[i];
        let t = w.entry.res_type.as_str();
        let access = w.ctx.access.clone().unwrap_or_default();
        match &w.entry.action {
            Action::Read { id, version } => {
                let found = self.tx.read_checked(t, id, *version, &access)?;
                let s = crate::read::judge(found, t, id, *version, access.routes(), |_| {})?;
                if s.deleted {
                    return Err(crate::read::gone(t, &s));
                }
                Ok(EntryOutcome {
                    location: Some(format!("{t}/{id}/_history/{}", s.version)),
                    version: Some(s.version),
                    last_modified: Some(s.last_updated),
                    ..EntryOutcome::read(
                        200,
                        Body::Stored(s.body.unwrap_or_default()),
                        s.compartments,
                    )
                })
            }
            Action::Search { query } => {
                let params = search::text::pairs(query)?;
                let plan = crate::search::plan(
                    self.settings,
                    Some(&access),
                    &[t.to_string()],
                    &params,
                    false,
                    None,
                    search::Care::Plain,
                )?;
                let output = Output::default();
                let q = crate::search::query(&plan, None, Some(&access), &output);
                let page = self.tx.query_resources(&q)?;
                let (included, cut) = if plan.includes.is_empty() || page.rows.is_empty() {
                    (Vec::new(), false)
                } else {
                    self.tx.include(
                        &plan.includes,
                        &page.rows,
                        self.settings.search_max_count as usize,
                        Some(&access),
                    )?
                };
                let self_base = format!("{}/{t}", self.settings.base_url);
                let set = crate::searchset::searchset(
                    self.settings,
                    &plan,
                    access.routes(),
                    page,
                    included,
                    cut,
                    &self_base,
                    &output,
                );
                let mut touched: Vec<String> = set.touched().cloned().collect();
                touched.sort();
                touched.dedup();
                Ok(EntryOutcome::read(
                    200,
                    Body::Json(set.to_value(&output)?),
                    touched,
                ))
            }
            _ => Err(internal("a read phase entry is not a GET")),
        }
    }
}

/// The current version of a resource with a patch applied, validated like an update's body.
fn patched(
    tx: &mut Tx<'_>,
    t: &str,
    id: &str,
    patch: &PatchDoc,
    if_match: Option<i32>,
    ctx: &WriteContext,
) -> Result<Value> {
    let access = ctx.access.clone().unwrap_or_default();
    let found = tx.read_checked(t, id, None, &access)?;
    let current = match found {
        // A deletion the client may not see is as absent as a resource it may not see.
        Some((s, Visibility::Visible)) if s.deleted => {
            return Err(Error::new(ErrorKind::Gone, format!("{t}/{id} was deleted")))
        }
        other => crate::read::judge(other, t, id, None, access.routes(), |_| {})?,
    };
    if let Some(expected) = if_match {
        if expected != current.version {
            return Err(Error::new(
                ErrorKind::PreconditionFailed,
                format!(
                    "If-Match names version {expected} but {t}/{id} is at version {}",
                    current.version
                ),
            ));
        }
    }
    let body = current.body.unwrap_or_default();
    let value: Value = serde_json::from_slice(&body).map_err(internal)?;
    crate::patch::apply(&value, patch)
}
