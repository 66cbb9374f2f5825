//! `create`: POST /fhir/{type}; a conditional create (`If-None-Exist`) takes the path of a
//! transaction entry, which also links another source's identifiers to a Patient it finds
//! (http://hl7.org/fhir/R4/http.html#create).

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

use super::{blocking, check_type, resource_type};
use crate::auth::authorize;
use crate::error::ApiError;
use crate::format::{read_resource, Output};
use crate::query::Params;
use crate::respond::{resource_response, VersionInfo};
use crate::state::AppState;
use authz::Interaction;

/// Handles a create.
pub async fn create(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let res_type = resource_type(&req)?;
    let auth = authorize(&req, &state, Some(&res_type), Interaction::Create)?;
    let output = Output::from_request(&req, &Params::parse(req.query_string())?)?;
    let body = read_resource(&req, payload, state.config.max_body).await?;
    check_type(&body, &res_type)?;
    fhir_model::format::check_business_rules(&body)?;
    if let Some(h) = req.headers().get("if-none-exist") {
        let q = h
            .to_str()
            .map_err(|_| ApiError::bad_request("If-None-Exist is not valid text"))?;
        let q = q
            .trim_start_matches(&format!("{res_type}?"))
            .trim_start_matches('?');
        // Checked here so a bad condition is a 400 before anything is locked.
        search::compile_condition(&res_type, q)?;
        let action = super::bundle::Action::Create {
            resource: body,
            if_none_exist: Some(q.to_string()),
        };
        return super::bundle::single(req, state, res_type, action).await;
    }
    let store = state.store.clone();
    let t = res_type.clone();
    let ctx = auth.write_context(&state);
    let written = blocking(move || store.create(&t, body, None, &ctx)).await?;
    auth.recorded();
    let status = if written.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let info = VersionInfo {
        res_type: &res_type,
        id: &written.id,
        version: written.version,
        last_updated: written.last_updated,
    };
    resource_response(
        &req,
        status,
        &info,
        &written.body,
        &output,
        Some(&state.config.base_url),
        true,
    )
}
