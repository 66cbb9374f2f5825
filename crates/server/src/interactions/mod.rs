//! One module per FHIR RESTful interaction (http://hl7.org/fhir/R4/http.html).

pub mod bundle;
pub mod capabilities;
pub mod create;
pub mod delete;
pub mod everything;
pub mod history;
pub mod patch;
pub mod read;
pub mod search;
pub mod update;

use actix_web::HttpRequest;

use crate::error::ApiError;

/// The `{type}` path segment, which must be an R4 resource type.
pub(crate) fn resource_type(req: &HttpRequest) -> Result<String, ApiError> {
    let t = req.match_info().get("type").unwrap_or_default();
    if fhir_model::elements::is_resource_type(t) {
        Ok(t.to_string())
    } else {
        Err(ApiError::not_found(format!(
            "'{t}' is not a supported resource type"
        )))
    }
}

/// The `{id}` path segment, which must be a valid logical id.
pub(crate) fn logical_id(req: &HttpRequest) -> Result<String, ApiError> {
    let id = req.match_info().get("id").unwrap_or_default();
    if fhir_model::is_valid_id(id) {
        Ok(id.to_string())
    } else {
        Err(ApiError::bad_request(format!(
            "'{id}' is not a valid id ([A-Za-z0-9-.]{{1,64}})"
        )))
    }
}

/// Runs blocking store work on the blocking pool, never on an executor thread.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T, ApiError>
where
    F: FnOnce() -> Result<T, store::StoreError> + Send + 'static,
    T: Send + 'static,
{
    Ok(actix_web::web::block(f).await??)
}

/// Checks a parsed body against the URL's type.
pub(crate) fn check_type(body: &serde_json::Value, res_type: &str) -> Result<(), ApiError> {
    let found = body["resourceType"].as_str().unwrap_or("");
    if found == res_type {
        Ok(())
    } else {
        Err(ApiError {
            status: actix_web::http::StatusCode::BAD_REQUEST,
            issues: vec![(
                "invalid",
                format!("The body is a {found} but the URL is for {res_type}"),
                Some("resourceType".into()),
            )],
            www_authenticate: None,
        })
    }
}
