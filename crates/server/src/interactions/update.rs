//! `update`: PUT /fhir/{type}/{id}, update-as-create for a client-chosen id, `If-Match` for
//! optimistic locking (http://hl7.org/fhir/R4/http.html#update).

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

use super::{blocking, check_type, logical_id, resource_type};
use crate::auth::authorize;
use crate::error::ApiError;
use crate::format::{read_resource, Output};
use crate::query::Params;
use crate::respond::{parse_etag, resource_response, VersionInfo};
use crate::state::AppState;
use authz::Interaction;

/// Handles an update.
pub async fn update(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let res_type = resource_type(&req)?;
    let id = logical_id(&req)?;
    let auth = authorize(&req, &state, Some(&res_type), Interaction::Update)?;
    let output = Output::from_request(&req, &Params::parse(req.query_string())?)?;
    let if_match = match req.headers().get("if-match") {
        None => None,
        Some(h) => Some(h.to_str().ok().and_then(parse_etag).ok_or_else(|| {
            ApiError::bad_request("If-Match must be a version ETag such as W/\"3\"")
        })?),
    };
    let body = read_resource(&req, payload, state.config.max_body).await?;
    check_type(&body, &res_type)?;
    match body.get("id").and_then(|v| v.as_str()) {
        Some(body_id) if body_id == id => {}
        Some(body_id) => {
            return Err(ApiError {
                status: StatusCode::BAD_REQUEST,
                issues: vec![(
                    "invalid",
                    format!("The body's id '{body_id}' does not match the URL's id '{id}'"),
                    Some(format!("{res_type}.id")),
                )],
                www_authenticate: None,
            })
        }
        None => {
            return Err(ApiError {
                status: StatusCode::BAD_REQUEST,
                issues: vec![(
                    "required",
                    format!("An update must carry the id '{id}' in the body"),
                    Some(format!("{res_type}.id")),
                )],
                www_authenticate: None,
            })
        }
    }
    fhir_model::format::check_business_rules(&body)?;
    let store = state.store.clone();
    let (t, i) = (res_type.clone(), id.clone());
    let ctx = auth.write_context(&state);
    let written = blocking(move || store.update(&t, &i, body, if_match, &ctx)).await?;
    auth.recorded();
    let status = if written.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let info = VersionInfo {
        res_type: &res_type,
        id: &id,
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

/// Handles a conditional update: PUT /fhir/{type}?search updates the one match, creates when
/// there is none, and is a 412 when several match.
pub async fn conditional(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let res_type = resource_type(&req)?;
    let query = req.query_string().to_string();
    if query.is_empty() {
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "not-supported",
            "PUT needs an id (PUT /fhir/Type/id) or a search (PUT /fhir/Type?identifier=…)",
        ));
    }
    let if_match = super::bundle::if_match(&req)?;
    let body = read_resource(&req, payload, state.config.max_body).await?;
    check_type(&body, &res_type)?;
    fhir_model::format::check_business_rules(&body)?;
    let action = super::bundle::Action::Update {
        target: super::bundle::Target::Query(query),
        resource: body,
        if_match,
    };
    super::bundle::single(req, state, res_type, action).await
}
