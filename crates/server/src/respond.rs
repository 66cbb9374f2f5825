//! Writing an interaction's [`Outcome`] as an HTTP response: status, `ETag`,
//! `Last-Modified`, `Location`, `Content-Type`, and `Prefer: return=` for writes.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use interactions::outcome::etag;
use interactions::render::FHIR_JSON;
use interactions::{Outcome, Output, Prefer, ReturnPref, VersionMeta};
use serde_json::json;

use crate::error::ApiError;

/// An HTTP date for `Last-Modified`.
pub fn http_date(at: DateTime<Utc>) -> String {
    at.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// The request's `Prefer` header.
pub fn prefer(req: &HttpRequest) -> Prefer {
    Prefer::parse(
        req.headers()
            .get_all("prefer")
            .filter_map(|h| h.to_str().ok()),
    )
}

/// The response to an outcome, written as `output` asks.
pub fn respond(
    req: &HttpRequest,
    outcome: Outcome,
    output: &Output,
    base_url: &str,
) -> Result<HttpResponse, ApiError> {
    match outcome {
        Outcome::Resource {
            status,
            meta,
            body,
            written,
            issues,
        } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            let mut res = HttpResponse::build(status);
            versioned(&mut res, &meta);
            if !written {
                res.insert_header((header::CONTENT_TYPE, output.content_type()));
                return Ok(res.body(output.render_stored(&body)?));
            }
            res.insert_header((
                header::LOCATION,
                format!("{base_url}/{}", meta.versioned_reference()),
            ));
            match prefer(req).return_pref {
                ReturnPref::Minimal => Ok(res.finish()),
                ReturnPref::OperationOutcome => {
                    // The profile findings of a `warn` write, then what was written.
                    let mut all = issues;
                    all.push(json!({"severity": "information", "code": "informational",
                        "diagnostics": format!("{}/{} is at version {}", meta.res_type, meta.id, meta.version)}));
                    let oo = json!({"resourceType": "OperationOutcome", "issue": all});
                    res.insert_header((header::CONTENT_TYPE, FHIR_JSON));
                    Ok(res.body(serde_json::to_vec(&oo).map_err(interactions::internal)?))
                }
                ReturnPref::Representation => {
                    res.insert_header((header::CONTENT_TYPE, output.content_type()));
                    Ok(res.body(output.render_stored(&body)?))
                }
            }
        }
        Outcome::NotModified(meta) => {
            let mut res = HttpResponse::NotModified();
            versioned(&mut res, &meta);
            Ok(res.finish())
        }
        Outcome::NoContent(version) => {
            let mut res = HttpResponse::NoContent();
            if let Some(v) = version {
                res.insert_header((header::ETAG, etag(v)));
            }
            Ok(res.finish())
        }
        Outcome::SearchSet(set) => Ok(HttpResponse::Ok()
            .insert_header((header::CONTENT_TYPE, output.content_type()))
            .body(set.render(output)?)),
        Outcome::Bundle(bundle) => Ok(HttpResponse::Ok()
            .insert_header((header::CONTENT_TYPE, output.content_type()))
            .body(bundle.render(output)?)),
        Outcome::Json(value) => Ok(HttpResponse::Ok()
            .insert_header((header::CONTENT_TYPE, output.content_type()))
            .body(output.render(&value)?)),
    }
}

fn versioned(res: &mut actix_web::HttpResponseBuilder, meta: &VersionMeta) {
    res.insert_header((header::ETAG, etag(meta.version)));
    res.insert_header((header::LAST_MODIFIED, http_date(meta.last_updated)));
}
