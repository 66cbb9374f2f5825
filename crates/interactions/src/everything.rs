//! `Patient/$everything` (http://hl7.org/fhir/R4/patient-operation-everything.html): the
//! patient, every resource in their compartment the caller may see, and the resources those
//! refer to (Practitioners, Organizations, Locations, Medications …: each once), as a searchset
//! Bundle paged like any search. It is one search over every type, so the access rules apply
//! inside the SQL exactly as they do for searches: nothing hidden shows, not even in `total`,
//! and nothing only a hidden resource refers to. `start` and `end` bound clinical dates
//! (`fhir_model::timeline`): events dated in range stay, undated resources always do.
//!
//! Without an id (`GET [base]/Patient/$everything`) it serves the compartments of every patient
//! the caller may see: a token confined to one patient gets that patient's record with what it
//! refers to; a user or system token gets every compartment resource its rules admit.

use crate::authorize::Authorized;
use crate::caller::Caller;
use crate::error::{Error, Result};
use crate::operation_params::sort_out;
use crate::outcome::Outcome;
use crate::read;
use crate::render::Output;
use crate::search::{authorize_types, search, SearchRequest};
use crate::services::Services;

/// Parameters passed on to the search as they are (paging, totals, care dates and output
/// shaping).
const PASSED_ON: &[&str] = &[
    "start",
    "end",
    "_count",
    "_cursor",
    "_lastUpdated",
    "_total",
    "_format",
    "_pretty",
    "_summary",
    "_elements",
    // Honoured only when the server is started with INVICTA_SEARCH_EXPLAIN (operators).
    "_explain",
];

/// The patient `id` names, or for a token confined to one patient (a `patient/` scope, such as
/// a citizen's) with no id, that patient; `None` for a type-level request by anyone else.
pub fn patient_of(auth: &Authorized, id: Option<String>) -> Option<String> {
    id.or_else(|| auth.compartment())
}

/// The patient `id` names, or for a token confined to one patient (a `patient/` scope, such as
/// a citizen's) with no id, that patient.
pub fn which_patient(auth: &Authorized, id: Option<String>) -> Result<String> {
    id.or_else(|| auth.compartment()).ok_or_else(|| {
        Error::invalid(
            "Patient/$everything without a patient id is served only to a token confined to \
             one patient (a patient/ scope); name the patient: \
             GET [base]/Patient/{id}/$everything",
        )
    })
}

/// `GET [base]/Patient/{id}/$everything`: a compartment search over every compartment type.
/// `auth` is the caller's decision to read the Patient; the search across the compartment's
/// types is decided for them.
#[allow(clippy::too_many_arguments)]
pub async fn everything(
    services: &Services,
    auth: &Authorized,
    caller: &Caller,
    id: Option<String>,
    params: Vec<(String, String)>,
    strict: bool,
    audit_query: String,
    output: &Output,
) -> Result<Outcome> {
    auth.interaction(
        fhir_model::RestInteraction::Operation,
        fhir_model::AuditAction::Execute,
    );
    // An unknown or hidden patient is a 404, one withheld by limits a claim or break-glass lifts
    // a 403 that says how, exactly as a read of the Patient.
    if let Some(id) = &id {
        read::load(services, auth, "Patient", id, None).await?;
    }
    // The audit trail is about the record, not part of it.
    let members: Vec<String> = fhir_model::compartment::patient_compartment_types()
        .iter()
        .filter(|t| *t != "AuditEvent")
        .cloned()
        .collect();
    // One patient's record brings what it refers to, of any type; the type-level request
    // reads compartments only.
    let types: Vec<String> = match &id {
        Some(_) => fhir_model::search_params::searchable_types()
            .iter()
            .filter(|t| **t != "AuditEvent")
            .map(|t| t.to_string())
            .collect(),
        None => members.clone(),
    };
    let self_base = match &id {
        Some(id) => format!("{}/Patient/{id}/$everything", services.settings.base_url),
        None => format!("{}/Patient/$everything", services.settings.base_url),
    };
    let params = params
        .into_iter()
        .map(|(k, v)| match k.as_str() {
            "_since" => ("_lastUpdated".to_string(), format!("ge{v}")),
            _ => (k, v),
        })
        .collect();
    let p = sort_out("$everything", params, types, PASSED_ON, strict, self_base)?;
    let referenced_from = id.is_some().then_some(members);
    let req = SearchRequest {
        types: p.types,
        compartment: id,
        params: p.passed,
        self_base: p.self_base,
        ignored: p.ignored,
        strict,
        audit_query,
        care: search::Care::Everything,
        referenced_from,
    };
    let all = authorize_types(services, caller, &req.types)?;
    search(services, &all, req, output).await
}
