//! `patch`: PATCH /fhir/{type}/{id} and conditional PATCH /fhir/{type}?search with a JSON Patch
//! (`application/json-patch+json`) or a FHIRPath Patch (a `Parameters` resource); the patched
//! resource is validated like the body of an update (http://hl7.org/fhir/R4/http.html#patch).

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde_json::Value;

use super::bundle::{self, Action, PatchDoc, Target};
use super::resource_type;
use crate::error::ApiError;
use crate::state::AppState;

/// Applies a patch document to a resource and validates the result.
pub(crate) fn apply(resource: &Value, patch: &PatchDoc) -> Result<Value, ApiError> {
    let result = match patch {
        PatchDoc::Json(p) => fhir_model::patch::apply_json_patch(resource, p),
        PatchDoc::FhirPath(p) => fhir_model::patch::apply_fhirpath_patch(resource, p),
    };
    let patched = result.map_err(|e| {
        let status = if e.is_malformed() {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        ApiError::new(
            status,
            "processing",
            format!("The patch cannot be applied: {e}"),
        )
    })?;
    let mut checked = fhir_model::format::check_resource(patched).map_err(|e| {
        let mut err = ApiError::from(e);
        err.status = StatusCode::UNPROCESSABLE_ENTITY;
        for issue in &mut err.issues {
            issue.1 = format!("The patched resource is not valid: {}", issue.1);
        }
        err
    })?;
    fhir_model::format::check_business_rules(&checked)?;
    if let Some(obj) = checked.as_object_mut() {
        if let Some(meta) = obj.get_mut("meta").and_then(Value::as_object_mut) {
            meta.remove("versionId");
            meta.remove("lastUpdated");
        }
    }
    Ok(checked)
}

/// Handles PATCH on an instance or, with a query and no id, a conditional patch.
pub async fn patch(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let res_type = resource_type(&req)?;
    let target = match req.match_info().get("id") {
        Some(_) => Target::Id(super::logical_id(&req)?),
        None if !req.query_string().is_empty() => Target::Query(req.query_string().to_string()),
        None => return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "not-supported",
            "PATCH needs an id (PATCH /fhir/Type/id) or a search (PATCH /fhir/Type?identifier=…)",
        )),
    };
    let doc = read_patch(&req, payload, state.config.max_body).await?;
    let action = Action::Patch {
        target,
        patch: doc,
        if_match: super::bundle::if_match(&req)?,
    };
    bundle::single(req, state, res_type, action).await
}

async fn read_patch(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<PatchDoc, ApiError> {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    crate::format::check_charset(&ct)?;
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::bad_request(format!("Could not read the body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-costly",
                format!("The body is larger than the limit of {limit} bytes"),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    if ct.starts_with("application/json-patch+json") {
        // Parsed within the nesting limit before anything recurses over it.
        let v = fhir_model::format::parse_json_value(&body)?;
        return Ok(PatchDoc::Json(v));
    }
    if ct.starts_with("application/fhir+json") || ct.starts_with("application/json") {
        let v = fhir_model::format::parse_json_value(&body)?;
        if v["resourceType"].as_str() != Some("Parameters") {
            return Err(ApiError::bad_request(
                "A FHIRPath Patch is a Parameters resource",
            ));
        }
        let v = fhir_model::format::check_resource(v)?;
        return Ok(PatchDoc::FhirPath(v));
    }
    if ct.starts_with("application/fhir+xml") || ct.starts_with("application/xml") {
        let v = fhir_model::format::parse_xml(&body)?;
        if v["resourceType"].as_str() != Some("Parameters") {
            return Err(ApiError::bad_request(
                "A FHIRPath Patch is a Parameters resource",
            ));
        }
        return Ok(PatchDoc::FhirPath(v));
    }
    Err(ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "not-supported",
        format!("PATCH takes application/json-patch+json (JSON Patch) or application/fhir+json (FHIRPath Patch), not '{ct}'"),
    ))
}
