//! Checks of the parts of a request every interaction shares: type, id, and a body's type.

use crate::error::{Error, ErrorKind, Result};

/// Checks that `t` names an R4 resource type (404 when not: it is a path segment).
pub fn resource_type(t: &str) -> Result<String> {
    if fhir_model::elements::is_resource_type(t) {
        Ok(t.to_string())
    } else {
        Err(Error::not_found(format!(
            "'{t}' is not a supported resource type"
        )))
    }
}

/// Checks that `id` is a valid logical id.
pub fn logical_id(id: &str) -> Result<String> {
    if fhir_model::is_valid_id(id) {
        Ok(id.to_string())
    } else {
        Err(Error::invalid(format!(
            "'{id}' is not a valid id ([A-Za-z0-9-.]{{1,64}})"
        )))
    }
}

/// Checks a parsed body against the URL's type.
pub(crate) fn check_type(body: &serde_json::Value, res_type: &str) -> Result<()> {
    let found = body["resourceType"].as_str().unwrap_or("");
    if found == res_type {
        Ok(())
    } else {
        Err(Error::at(
            ErrorKind::Invalid,
            fhir_model::IssueCode::Invalid,
            "resourceType",
            format!("The body is a {found} but the URL is for {res_type}"),
        ))
    }
}
