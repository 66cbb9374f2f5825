//! `batch` and `transaction` (http://hl7.org/fhir/R4/http.html#transaction), and the one-entry
//! transactions conditional writes and patches run as. A Bundle is data before it is work:
//! each entry is checked against the guard table of [`entry`] and becomes an [`Action`]; the
//! actions are partitioned once into phases ([`plan`]); [`exec`] runs the phases in the
//! specification's order on one small context inside one database transaction.
//! A batch runs each entry in a transaction of its own and answers each.

mod entry;
mod exec;
mod identify;
mod plan;
mod refs;
mod response;
mod work;

pub use entry::{parse as parse_entry, Action, Entry, EntryError, PatchDoc, Target};
pub use work::{Body, EntryOutcome, Failure, Work};

use authz::Interaction;
use fhir_model::{AuditAction, RestInteraction};
use serde_json::Value;

use crate::authorize::{authorize, Authorized};
use crate::caller::Caller;
use crate::error::{Error, ErrorKind, Result};
use crate::outcome::{Outcome, Prefer, VersionMeta};
use crate::services::{Services, Settings};

/// `POST [base]` with a batch or transaction Bundle. Every entry is read, checked and
/// authorised before anything runs; a transaction fails whole on its first bad entry.
pub async fn process(
    services: &Services,
    caller: &Caller,
    bundle: Value,
    prefer: Prefer,
) -> Result<Outcome> {
    let settings = services.settings.clone();
    if bundle["resourceType"].as_str() != Some("Bundle") {
        return Err(Error::invalid(
            "POST to the base URL takes a Bundle of type batch or transaction",
        ));
    }
    let transaction = match bundle["type"].as_str() {
        Some("transaction") => true,
        Some("batch") => false,
        other => {
            return Err(Error::invalid(format!(
                "Bundle.type must be batch or transaction, not {}",
                other.map_or("missing".to_string(), |t| format!("'{t}'"))
            )))
        }
    };
    let raw = match &bundle["entry"] {
        Value::Array(entries) => entries.as_slice(),
        Value::Null => &[],
        _ => return Err(Error::invalid("Bundle.entry must be an array")),
    };
    if raw.len() > settings.bundle_max_entries {
        return Err(Error::new(
            ErrorKind::PayloadTooLarge,
            format!(
                "The Bundle has {} entries; the limit is {}",
                raw.len(),
                settings.bundle_max_entries
            ),
        ));
    }
    let (kind, interaction) = if transaction {
        ("transaction", RestInteraction::Transaction)
    } else {
        ("batch", RestInteraction::Batch)
    };
    caller.name_interaction(interaction, AuditAction::Execute);

    let mut works: Vec<std::result::Result<Work, Error>> = Vec::with_capacity(raw.len());
    // Per entry, the profile findings a write carries back under `warn` enforcement.
    let mut warnings: Vec<Vec<Value>> = Vec::with_capacity(raw.len());
    let mut hook = None;
    for (i, e) in raw.iter().enumerate() {
        let mut found = Vec::new();
        let checked = entry::parse(i, e, &settings.base_url)
            .map_err(Error::from)
            .and_then(|entry| {
                let auth = authorize(services, caller, Some(&entry.res_type), entry.interaction())?;
                if let Action::Create { resource, .. } | Action::Update { resource, .. } =
                    &entry.action
                {
                    found = crate::conformance::on_write(services, resource)?;
                }
                let mut work = Work::new(entry, &auth, services);
                // One audit hook for the request, so its changes share their AuditEvents.
                match &hook {
                    None => hook = work.ctx.audit.clone(),
                    Some(h) => work.ctx.audit = Some(h.clone()),
                }
                Ok(work)
            });
        warnings.push(found);
        match checked {
            Err(e) if transaction => return Err(at_entry(i, raw.get(i), e)),
            other => works.push(other),
        }
    }
    let has_reads = works.iter().flatten().any(|w| w.entry.is_read());
    let store = services.store.clone();
    let run_settings = settings.clone();
    let results: Vec<std::result::Result<EntryOutcome, Error>> = if transaction {
        let mut works: Vec<Work> = works.into_iter().flatten().collect();
        let outcome = crate::pool::in_pool(move || run(&store, &mut works, &run_settings)).await?;
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
        crate::pool::in_pool(move || {
            works
                .into_iter()
                .map(|w| {
                    run(&store, &mut [w?], &run_settings)
                        .map(|mut o| o.remove(0))
                        .map_err(|f| f.error)
                })
                .collect::<Vec<_>>()
        })
        .await?
    };
    if let Ok(auth) = authorize(services, caller, None, Interaction::Search) {
        for o in results.iter().flatten() {
            auth.touched(&o.touched);
        }
        if !has_reads && results.iter().all(|r| r.is_ok()) {
            // Every change was audited in its own transaction.
            auth.recorded();
        }
    }
    Ok(Outcome::Bundle(response::bundle(
        kind,
        &results,
        &warnings,
        prefer.return_pref,
        &settings.base_url,
    )?))
}

/// Runs works in one database transaction; a failure rolls back all of them.
pub fn run(
    store: &store::Store,
    works: &mut [Work],
    settings: &Settings,
) -> std::result::Result<Vec<EntryOutcome>, Failure> {
    store.transaction(|tx| exec::run(tx, works, settings))
}

/// Runs one interaction as a one-entry transaction (conditional create, update and delete,
/// patch) and answers it as a plain REST interaction.
pub async fn single(
    services: &Services,
    auth: &Authorized,
    res_type: &str,
    action: Action,
) -> Result<Outcome> {
    let entry = Entry {
        index: 0,
        full_url: None,
        res_type: res_type.to_string(),
        action,
    };
    let work = Work::new(entry, auth, services);
    let store = services.store.clone();
    let settings = services.settings.clone();
    let mut outcomes = crate::pool::in_pool(move || run(&store, &mut [work], &settings))
        .await?
        .map_err(|f| f.error)?;
    auth.recorded();
    let o = outcomes.remove(0);
    let (Some(location), Some(version), Some(at)) = (&o.location, o.version, o.last_modified)
    else {
        return Ok(Outcome::NoContent(None));
    };
    let id = location.split('/').nth(1).unwrap_or_default().to_string();
    let body = match o.body {
        Some(Body::Stored(b)) => b,
        _ => Vec::new(),
    };
    Ok(Outcome::Resource {
        status: o.status,
        meta: VersionMeta {
            res_type: res_type.to_string(),
            id,
            version,
            last_updated: at,
        },
        body,
        written: true,
        issues: Vec::new(),
    })
}

/// The error of a failed transaction, naming the entry to blame.
fn at_entry(index: usize, raw: Option<&Value>, mut error: Error) -> Error {
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
        issue.diagnostics = format!("{label}: {}", issue.diagnostics);
        issue.expression = Some(match issue.expression.take() {
            Some(path) => format!("Bundle.entry[{index}].resource.{path}"),
            None => format!("Bundle.entry[{index}]"),
        });
    }
    error
}
