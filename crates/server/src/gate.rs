//! The gate every `/fhir` request passes (except `metadata` and the SMART discovery
//! documents): it verifies the bearer token, hands the handler a [`Caller`], and after the
//! handler has answered, records a claimed relationship and writes the request's AuditEvents,
//! waiting for them to commit before the response leaves.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, ResponseError};
use authz::audit::AuditRecord;
use authz::Emergency;
use chrono::{SecondsFormat, Utc};
use fhir_model::{AuditAction, RestInteraction};
use interactions::{Caller, ErrorKind};

use crate::error::ApiError;
use crate::security::authenticate;
use crate::state::AppState;

fn open_path(path: &str) -> bool {
    path == "/fhir/metadata" || path.starts_with("/fhir/.well-known/")
}

/// The middleware: authenticate, run the handler, audit, answer.
pub async fn gate(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let path = req.path().to_string();
    if !path.starts_with("/fhir") || open_path(&path) {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let sec = &state.security;
    let request_id = req
        .extensions()
        .get::<crate::request_id::RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    let mut record = AuditRecord {
        interaction: guess_interaction(req.method().as_str(), &path),
        action: match req.method().as_str() {
            "POST" => AuditAction::Create,
            "PUT" | "PATCH" => AuditAction::Update,
            "DELETE" => AuditAction::Delete,
            _ => AuditAction::Read,
        },
        request_id,
        ..AuditRecord::default()
    };
    // Only an audit trail reads these, and formatting them shows in a read's profile.
    if sec.audit.enabled() {
        record.address = req
            .connection_info()
            .realip_remote_addr()
            .map(str::to_string);
        record.recorded = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
    }
    let (principal, token, token_exp) = if sec.enabled {
        match authenticate(&req, sec).await {
            Ok((p, t, exp)) => (Some(p), t, exp),
            Err(e) => {
                record.status = 401;
                record.outcome_desc = Some(e.to_string());
                let events = if sec.audit.enabled() {
                    interactions::audit_rows::audit_rows(&record)
                } else {
                    Vec::new()
                };
                if let Err(a) = sec.audit.record_rows(events).await {
                    return Ok(req.into_response(a.error_response()).map_into_right_body());
                }
                return Ok(req.into_response(e.error_response()).map_into_right_body());
            }
        }
    } else {
        (None, 0, None)
    };
    record.principal = principal.clone();
    let emergency = emergency(&req);
    // What the client's next reads must see: anything but a read, and a read that claimed a
    // relationship or broke glass (both leave rows later reads depend on).
    let changes = !matches!(req.method().as_str(), "GET" | "HEAD")
        || emergency.relationship_claim.is_some()
        || emergency.purpose_of_use.is_some();
    let caller = Caller::new(principal.clone(), token, token_exp, emergency, record);
    let audit = caller.audit.clone();
    req.extensions_mut().insert(caller);
    let (http_req, res) = next.call(req).await?.into_parts();
    if changes && state.services.replicas.is_some() {
        let key =
            interactions::authorize::routing_key(principal.as_deref(), &audit.borrow().record);
        state.services.wrote(&key);
    }
    let status = res.status();
    let (events, claim) = {
        let mut a = audit.borrow_mut();
        a.record.status = status.as_u16();
        if status.is_client_error() || status.is_server_error() {
            a.record.patients.clear();
        }
        let claim = a
            .claim
            .clone()
            .filter(|_| status.is_success() && !a.record.patients.is_empty())
            .map(|c| (c, a.record.patients.clone()));
        (
            (!a.recorded && sec.audit.enabled())
                .then(|| interactions::audit_rows::audit_rows(&a.record)),
            claim,
        )
    };
    if let (Some((reason, patients)), Some(org)) =
        (claim, principal.as_ref().and_then(|p| p.org.clone()))
    {
        let store = state.services.store.clone();
        let days = sec.policy.relationship_claim_days;
        let done =
            web::block(move || store.claim_relationship(&patients, &org, &reason, days)).await;
        if !matches!(done, Ok(Ok(()))) {
            let e = ApiError::new(
                ErrorKind::Unavailable,
                "The relationship claim could not be recorded; nothing was returned",
            );
            return Ok(ServiceResponse::new(http_req, e.error_response()).map_into_right_body());
        }
    }
    if let Some(events) = events {
        if let Err(e) = sec.audit.record_rows(events).await {
            // Nothing leaves without its audit record.
            return Ok(ServiceResponse::new(http_req, e.error_response()).map_into_right_body());
        }
    }
    Ok(ServiceResponse::new(http_req, res).map_into_left_body())
}

/// Break-glass and relationship-claim headers.
fn emergency(req: &ServiceRequest) -> Emergency {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|h| h.to_str().ok())
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    Emergency {
        purpose_of_use: header("x-purpose-of-use"),
        reason: header("x-break-glass-reason"),
        relationship_claim: header("x-relationship-claim"),
    }
}

/// The interaction a request is, for the audit record of a request refused before any
/// handler names it.
fn guess_interaction(method: &str, path: &str) -> RestInteraction {
    let segments: Vec<&str> = path
        .trim_start_matches("/fhir")
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let history = segments.contains(&"_history");
    match (method, segments.len(), history) {
        ("GET", 0, _) => RestInteraction::SearchSystem,
        ("POST", 0, _) => RestInteraction::Batch,
        ("GET", 1, false) => RestInteraction::SearchType,
        ("GET", 1, true) => RestInteraction::HistorySystem,
        ("GET", 2, true) => RestInteraction::HistoryType,
        ("GET", 3, true) => RestInteraction::HistoryInstance,
        ("GET", 4, true) => RestInteraction::Vread,
        ("GET", 2, false) => RestInteraction::Read,
        ("GET", 3, false) => RestInteraction::SearchType,
        ("POST", _, _) if path.ends_with("_search") => RestInteraction::SearchType,
        ("POST", _, _) => RestInteraction::Create,
        ("PUT", _, _) => RestInteraction::Update,
        ("PATCH", _, _) => RestInteraction::Patch,
        ("DELETE", _, _) => RestInteraction::Delete,
        _ => RestInteraction::Operation,
    }
}
