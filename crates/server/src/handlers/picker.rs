//! `GET|POST /auth/pick`: the patient picker of a clinician's standalone launch. Searching and
//! checking a choice are FHIR interactions run as the signed-in clinician (their role, their
//! organisation, `user/Patient.rs`) through `interactions`, so the picker offers only patients
//! the access rules let them see, and each search or check is audited as theirs.

use std::sync::Arc;

use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use auth_server::picker::{Candidate, PickerQuery};
use auth_server::Person;
use authz::audit::AuditRecord;
use fhir_model::{AuditAction, RestInteraction};
use interactions::search::SearchRequest;
use interactions::{Caller, Outcome, Output};

use super::oauth::{browser, browser_form, signed_in};
use crate::request_id::RequestId;
use crate::state::AppState;

/// Most patients the picker lists.
const MAX_FOUND: usize = 20;

/// The picker.
pub async fn pick(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let (_, form) = match browser_form(&req, body).await {
        Ok(x) => x,
        Err(html) => return html,
    };
    let request = form.get("request").unwrap_or_default().to_string();
    let (session, person) = match signed_in(&req, &state, &request).await {
        Ok(x) => x,
        Err(to_signin) => return to_signin,
    };
    if let Err(reply) = state.auth.picker_request(&request, &person).await {
        return browser(&state, reply).await;
    }
    let caller = caller_for(&req, &person);
    let mut status = None;
    let reply = if req.method() == actix_web::http::Method::POST {
        let patient = form.get("patient").unwrap_or_default();
        let seen = visible(&state, &caller, patient).await;
        status = Some(if seen { 200 } else { 403 });
        if seen {
            state
                .auth
                .pick(
                    &request,
                    &session,
                    form.get("csrf").unwrap_or_default(),
                    patient,
                )
                .await
        } else {
            auth_server::BrowserReply::page_of(
                403,
                auth_server::pages::refusal(
                    "You cannot open this record",
                    "That patient is not one whose record you may see.",
                ),
            )
        }
    } else {
        let query = PickerQuery {
            nhs_number: form.get("nhs_number").map(str::to_string),
            family: form.get("family").map(str::to_string),
            birthdate: form.get("birthdate").map(str::to_string),
        };
        let found = match query.search_params() {
            Some(params) => {
                status = Some(200);
                Some(search(&state, &caller, params).await)
            }
            None => None,
        };
        state
            .auth
            .picker_page(&request, &session, &query, found.as_deref())
    };
    if let Some(status) = status {
        audit(&state, &caller, status).await;
    }
    browser(&state, reply).await
}

/// The clinician as a caller of FHIR interactions: their role and organisation, allowed to read
/// and search Patients (within their role's ceiling and the access rules).
fn caller_for(req: &HttpRequest, person: &Person) -> Caller {
    let principal = authz::Principal {
        subject: person.sub.clone(),
        role: person.role.clone(),
        org: person.org.clone(),
        client_id: None,
        jti: None,
        patient: None,
        fhir_user: person.fhir_user.clone(),
        name: person.name.clone(),
        scopes: authz::parse_scopes("user/Patient.rs")
            .unwrap_or_default()
            .into_iter()
            .filter_map(|s| match s {
                authz::Scope::Resource(r) => Some(r),
                authz::Scope::Other(_) => None,
            })
            .collect(),
        purpose_of_use: None,
        break_glass_reason: None,
    };
    let principal = Arc::new(principal);
    let record = AuditRecord {
        principal: Some(principal.clone()),
        interaction: RestInteraction::SearchType,
        action: AuditAction::Execute,
        request_id: req
            .extensions()
            .get::<RequestId>()
            .map(|r| r.0.clone())
            .unwrap_or_default(),
        address: req
            .connection_info()
            .realip_remote_addr()
            .map(str::to_string),
        recorded: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        ..AuditRecord::default()
    };
    // A fresh key per request: the decision cache must not share this synthetic caller's
    // decisions with anyone's token.
    let key = uuid::Uuid::new_v4().as_u128() as u64;
    let exp = chrono::Utc::now().timestamp() + 60;
    Caller::new(Some(principal), key, Some(exp), Default::default(), record)
}

/// The Patients the clinician may see that match.
async fn search(
    state: &AppState,
    caller: &Caller,
    mut params: Vec<(String, String)>,
) -> Vec<Candidate> {
    params.push(("_count".into(), MAX_FOUND.to_string()));
    let Ok(auth) = interactions::authorize(
        &state.services,
        caller,
        Some("Patient"),
        authz::Interaction::Search,
    ) else {
        return Vec::new();
    };
    let audit_query = params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let request = SearchRequest {
        types: vec!["Patient".into()],
        params,
        self_base: format!("{}/Patient", state.config.base_url),
        audit_query: format!("Patient?{audit_query}"),
        ..SearchRequest::default()
    };
    let output = Output::default();
    match interactions::search::search(&state.services, &auth, request, &output).await {
        Ok(Outcome::SearchSet(set)) => set
            .to_value(&output)
            .ok()
            .and_then(|b| b["entry"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter(|e| e["resource"]["resourceType"] == "Patient")
            .map(|e| Candidate::from_patient(&e["resource"]))
            .collect(),
        _ => Vec::new(),
    }
}

/// True when the clinician may read `Patient/{id}`.
async fn visible(state: &AppState, caller: &Caller, id: &str) -> bool {
    if interactions::logical_id(id).is_err() {
        return false;
    }
    caller.name_interaction(RestInteraction::Read, AuditAction::Read);
    let Ok(auth) = interactions::authorize(
        &state.services,
        caller,
        Some("Patient"),
        authz::Interaction::Read,
    ) else {
        return false;
    };
    let request = interactions::read::ReadRequest {
        res_type: "Patient".into(),
        id: id.into(),
        ..Default::default()
    };
    auth.resource(format!("Patient/{id}"), false);
    matches!(
        interactions::read::read(&state.services, &auth, &request).await,
        Ok(Outcome::Resource { .. })
    )
}

/// Writes the AuditEvents of what the picker did as the clinician.
async fn audit(state: &AppState, caller: &Caller, status: u16) {
    let events = {
        let a = caller.audit.borrow();
        if !state.security.audit.enabled() || a.recorded {
            return;
        }
        let mut record = a.record.clone();
        record.status = status;
        interactions::audit_rows::audit_rows(&record)
    };
    if let Err(e) = state.security.audit.record_rows(events).await {
        tracing::error!(error = %e.0, "the patient picker's audit records could not be written");
    }
}
