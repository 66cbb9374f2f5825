//! `read` and `vread`: GET /fhir/{type}/{id}[/_history/{vid}], with `If-None-Match` and
//! `If-Modified-Since` answered by 304 (http://hl7.org/fhir/R4/http.html#read).

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};

use super::{blocking, logical_id, resource_type};
use crate::auth::{authorize, hidden_from_patients, withheld, Authorized};
use crate::error::ApiError;
use crate::format::Output;
use crate::query::Params;
use crate::respond::{etag, http_date, parse_etag, resource_response, VersionInfo};
use crate::state::AppState;
use authz::Interaction;
use store::Visibility;

/// Handles a read of the current version.
pub async fn read(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let res_type = resource_type(&req)?;
    let id = logical_id(&req)?;
    let auth = authorize(&req, &state, Some(&res_type), Interaction::Read)?;
    let output = Output::from_request(&req, &Params::parse(req.query_string())?)?;
    let stored = load(&state, &auth, &res_type, &id, None).await?;
    respond(&req, &state, &auth, &res_type, stored, &output)
}

/// Loads a version with the request's access rules: hidden is absent (404), withheld by limits
/// a claim or break-glass lifts is 403 saying how.
pub(crate) async fn load(
    state: &AppState,
    auth: &Authorized,
    res_type: &str,
    id: &str,
    version: Option<i32>,
) -> Result<store::Stored, ApiError> {
    let store = state.store.clone();
    let (t, i) = (res_type.to_string(), id.to_string());
    let missing = || match version {
        None => ApiError::not_found(format!("{res_type}/{id} is not known")),
        Some(v) => ApiError::not_found(format!("{res_type}/{id} has no version {v}")),
    };
    match auth.access.clone() {
        None => blocking(move || match version {
            None => store.read(&t, &i),
            Some(v) => store.vread(&t, &i, v),
        })
        .await?
        .ok_or_else(missing),
        Some(access) => {
            let found = blocking(move || store.read_checked(&t, &i, version, &access))
                .await?
                .ok_or_else(missing)?;
            match found {
                (stored, Visibility::Visible) => Ok(stored),
                (stored, Visibility::Withheld) => {
                    auth.touched(&stored.compartments);
                    Err(withheld(&format!("{res_type}/{id}")))
                }
                (_, Visibility::Hidden) => Err(missing()),
            }
        }
    }
}

/// Handles a read of one version.
pub async fn vread(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let res_type = resource_type(&req)?;
    let id = logical_id(&req)?;
    let vid = req.match_info().get("vid").unwrap_or_default();
    let version: i32 = vid.parse().ok().filter(|v| *v > 0).ok_or_else(|| {
        ApiError::not_found(format!("'{vid}' is not a version of {res_type}/{id}"))
    })?;
    let auth = authorize(&req, &state, Some(&res_type), Interaction::Vread)?;
    let output = Output::from_request(&req, &Params::parse(req.query_string())?)?;
    let stored = load(&state, &auth, &res_type, &id, Some(version)).await?;
    respond(&req, &state, &auth, &res_type, stored, &output)
}

fn respond(
    req: &HttpRequest,
    state: &AppState,
    auth: &Authorized,
    res_type: &str,
    stored: store::Stored,
    output: &Output,
) -> Result<HttpResponse, ApiError> {
    auth.touched(&stored.compartments);
    auth.resource(
        format!("{res_type}/{}/_history/{}", stored.id, stored.version),
        hidden_from_patients(
            &state.security.policy,
            &stored.sec_labels,
            &stored.alert_codes,
        ),
    );
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
