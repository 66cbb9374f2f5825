//! `delete`: DELETE /fhir/{type}/{id}, a logical delete recorded as a version
//! (http://hl7.org/fhir/R4/http.html#delete).

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use super::{blocking, logical_id, resource_type};
use crate::error::ApiError;
use crate::respond::etag;
use crate::state::AppState;

/// Handles a delete: 204 whether it deleted now or was already deleted; 404 when unknown.
pub async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let res_type = resource_type(&req)?;
    let id = logical_id(&req)?;
    let store = state.store.clone();
    let version = blocking(move || store.delete(&res_type, &id)).await?;
    Ok(HttpResponse::NoContent()
        .insert_header((header::ETAG, etag(version)))
        .finish())
}
