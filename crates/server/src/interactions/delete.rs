//! `delete`: DELETE /fhir/{type}/{id}, a logical delete recorded as a version
//! (http://hl7.org/fhir/R4/http.html#delete).

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use super::{blocking, logical_id, resource_type};
use crate::auth::authorize;
use crate::error::ApiError;
use crate::respond::etag;
use crate::state::AppState;
use authz::Interaction;

/// Handles a delete: 204 whether it deleted now or was already deleted; 404 when unknown.
pub async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let res_type = resource_type(&req)?;
    let id = logical_id(&req)?;
    let auth = authorize(&req, &state, Some(&res_type), Interaction::Delete)?;
    let store = state.store.clone();
    let ctx = auth.write_context(&state);
    let version = blocking(move || store.delete(&res_type, &id, &ctx)).await?;
    auth.recorded();
    Ok(HttpResponse::NoContent()
        .insert_header((header::ETAG, etag(version)))
        .finish())
}

/// Handles a conditional delete: DELETE /fhir/{type}?search deletes the match (every match when
/// `INVICTA_CONDITIONAL_DELETE=multiple`, else several matches are a 412).
pub async fn conditional(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let res_type = resource_type(&req)?;
    let query = req.query_string().to_string();
    if query.is_empty() {
        return Err(ApiError::new(
            actix_web::http::StatusCode::METHOD_NOT_ALLOWED,
            "not-supported",
            "DELETE needs an id (DELETE /fhir/Type/id) or a search (DELETE /fhir/Type?identifier=…)",
        ));
    }
    let action = super::bundle::Action::Delete {
        target: super::bundle::Target::Query(query),
    };
    super::bundle::single(req, state, res_type, action).await
}
