//! What a client reads before it has a token: the CapabilityStatement, the SMART
//! configuration, and the public keys of the server's own tokens.

use actix_web::{web, HttpRequest, HttpResponse};

use crate::error::ApiError;
use crate::format::output_of;
use crate::respond::respond;
use crate::state::AppState;

/// `GET [base]/metadata`.
pub async fn metadata(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let output = output_of(&req)?;
    let outcome = interactions::capabilities::metadata(&state.services, &output);
    respond(&req, outcome, &output, &state.config.base_url)
}

/// `GET [base]/OperationDefinition/Patient-timeline`: the definition of Invicta's own
/// `$timeline`, which the CapabilityStatement names.
pub async fn timeline_definition(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let output = output_of(&req)?;
    let outcome = interactions::capabilities::timeline_definition(&output);
    respond(&req, outcome, &output, &state.config.base_url)
}

/// `GET [base]/.well-known/smart-configuration`.
pub async fn smart_configuration(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(interactions::capabilities::smart_configuration(
        &state.services,
    ))
}

/// `GET [base]/.well-known/openid-configuration` (the issuer is the FHIR base by default).
pub async fn openid_configuration(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(interactions::capabilities::openid_configuration(
        &state.services,
    ))
}

/// `GET [base]/.well-known/jwks.json`: the public keys of the server's own tokens (the same
/// document as `/.well-known/jwks.json`).
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    super::oauth::jwks(state).await
}
