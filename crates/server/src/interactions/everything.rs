//! `Patient/$everything` (http://hl7.org/fhir/R4/patient-operation-everything.html): the
//! patient and every resource in their compartment the caller may see, as a searchset Bundle
//! paged like any search. It is a compartment search over every compartment type, so the access
//! rules apply inside the SQL exactly as they do for searches: nothing hidden shows, not even
//! in `total`.

use actix_web::{web, HttpRequest, HttpResponse};
use authz::Interaction;
use search::text::{encode, pairs};

use super::search::{prefers_strict, run};
use super::{logical_id, read, resource_type};
use crate::auth::authorize;
use crate::error::ApiError;
use crate::state::AppState;

/// Parameters passed on to the search as they are (paging, totals and output shaping).
const PASSED_ON: &[&str] = &[
    "_count",
    "_cursor",
    "_lastUpdated",
    "_total",
    "_format",
    "_pretty",
    "_summary",
    "_elements",
];

/// `GET /fhir/Patient/{id}/$everything`.
pub async fn instance(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    only_patient(&req)?;
    let id = logical_id(&req)?;
    everything(&req, &state, id).await
}

/// `GET /fhir/Patient/$everything`: for a token confined to one patient (a `patient/` scope,
/// such as a citizen's), that patient's record. Other callers name the patient.
pub async fn by_type(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    only_patient(&req)?;
    let auth = authorize(&req, &state, Some("Patient"), Interaction::Read)?;
    let id = auth
        .access
        .as_ref()
        .and_then(|a| a.compartment.clone())
        .ok_or_else(|| {
            ApiError::bad_request(
                "Patient/$everything without a patient id is served only to a token confined to \
                 one patient (a patient/ scope); name the patient: \
                 GET [base]/Patient/{id}/$everything",
            )
        })?;
    everything(&req, &state, id).await
}

fn only_patient(req: &HttpRequest) -> Result<(), ApiError> {
    let t = resource_type(req)?;
    if t == "Patient" {
        Ok(())
    } else {
        Err(ApiError::not_found(format!(
            "$everything is defined on Patient, not on {t}"
        )))
    }
}

async fn everything(
    req: &HttpRequest,
    state: &AppState,
    id: String,
) -> Result<HttpResponse, ApiError> {
    let auth = authorize(req, state, Some("Patient"), Interaction::Read)?;
    auth.interaction(
        fhir_model::RestInteraction::Operation,
        fhir_model::AuditAction::Execute,
    );
    // An unknown or hidden patient is a 404, one withheld by limits a claim or break-glass lifts
    // a 403 that says how, exactly as a read of the Patient.
    read::load(state, &auth, "Patient", &id, None).await?;
    // The audit trail is about the record, not part of it.
    let mut types: Vec<String> = fhir_model::compartment::patient_compartment_types()
        .iter()
        .filter(|t| *t != "AuditEvent")
        .cloned()
        .collect();
    let mut self_base = format!("{}/Patient/{id}/$everything", state.config.base_url);
    let mut params = Vec::new();
    let mut ignored = Vec::new();
    for (name, value) in pairs(req.query_string())? {
        match name.as_str() {
            "_since" => params.push(("_lastUpdated".to_string(), format!("ge{value}"))),
            "_type" => {
                let mut wanted = Vec::new();
                for t in value.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                    if !types.iter().any(|k| k == t) {
                        return Err(ApiError::bad_request(format!(
                            "_type names '{t}', which is not a type of the Patient compartment"
                        )));
                    }
                    wanted.push(t.to_string());
                }
                if !wanted.is_empty() {
                    types = wanted;
                }
                self_base = format!("{self_base}?_type={}", encode(&value));
            }
            "start" | "end" => ignored.push(format!(
                "{name} (care-date ranges are not supported; _since filters by last update)"
            )),
            n if PASSED_ON.contains(&n) => params.push((name, value)),
            _ => ignored.push(name),
        }
    }
    if !ignored.is_empty() && prefers_strict(req) {
        return Err(ApiError::bad_request(format!(
            "$everything does not support: {}",
            ignored.join(", ")
        )));
    }
    run(req, state, types, Some(id), params, self_base, ignored).await
}
