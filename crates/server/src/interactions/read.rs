//! `read` and `vread`: GET /fhir/{type}/{id}[/_history/{vid}], with `If-None-Match` and
//! `If-Modified-Since` answered by 304 (http://hl7.org/fhir/R4/http.html#read).

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};

use super::{blocking, logical_id, resource_type};
use crate::error::ApiError;
use crate::format::Output;
use crate::query::Params;
use crate::respond::{etag, http_date, parse_etag, resource_response, VersionInfo};
use crate::state::AppState;

/// Handles a read of the current version.
pub async fn read(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let res_type = resource_type(&req)?;
    let id = logical_id(&req)?;
    let output = Output::from_request(&req, &Params::parse(req.query_string())?)?;
    let store = state.store.clone();
    let (t, i) = (res_type.clone(), id.clone());
    let stored = blocking(move || store.read(&t, &i))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("{res_type}/{id} is not known")))?;
    respond(&req, &res_type, stored, &output)
}

/// Handles a read of one version.
pub async fn vread(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let res_type = resource_type(&req)?;
    let id = logical_id(&req)?;
    let vid = req.match_info().get("vid").unwrap_or_default();
    let version: i32 = vid.parse().ok().filter(|v| *v > 0).ok_or_else(|| {
        ApiError::not_found(format!("'{vid}' is not a version of {res_type}/{id}"))
    })?;
    let output = Output::from_request(&req, &Params::parse(req.query_string())?)?;
    let store = state.store.clone();
    let (t, i) = (res_type.clone(), id.clone());
    let stored = blocking(move || store.vread(&t, &i, version))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("{res_type}/{id} has no version {version}")))?;
    respond(&req, &res_type, stored, &output)
}

fn respond(
    req: &HttpRequest,
    res_type: &str,
    stored: store::Stored,
    output: &Output,
) -> Result<HttpResponse, ApiError> {
    let Some(body) = stored.body.as_deref().filter(|_| !stored.deleted) else {
        let mut e = ApiError::new(
            StatusCode::GONE,
            "deleted",
            format!(
                "{res_type}/{} was deleted (version {})",
                stored.id, stored.version
            ),
        );
        e.status = StatusCode::GONE;
        return Err(e);
    };
    if not_modified(req, stored.version, stored.last_updated) {
        return Ok(HttpResponse::NotModified()
            .insert_header((header::ETAG, etag(stored.version)))
            .insert_header((header::LAST_MODIFIED, http_date(stored.last_updated)))
            .finish());
    }
    let info = VersionInfo {
        res_type,
        id: &stored.id,
        version: stored.version,
        last_updated: stored.last_updated,
    };
    resource_response(req, StatusCode::OK, &info, body, output, None, false)
}

fn not_modified(req: &HttpRequest, version: i32, last_updated: DateTime<Utc>) -> bool {
    if let Some(inm) = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|h| h.to_str().ok())
    {
        return inm
            .split(',')
            .any(|t| t.trim() == "*" || parse_etag(t) == Some(version));
    }
    if let Some(ims) = req
        .headers()
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|h| h.to_str().ok())
        .and_then(|s| DateTime::parse_from_rfc2822(s).ok())
    {
        // HTTP dates have whole seconds; the stored instant has milliseconds.
        return last_updated.timestamp() <= ims.timestamp();
    }
    false
}
