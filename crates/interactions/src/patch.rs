//! `patch` (http://hl7.org/fhir/R4/http.html#patch): a JSON Patch (`application/json-patch+json`)
//! or a FHIRPath Patch (a `Parameters` resource) applied to the current version, the result
//! validated like the body of an update. Instance and conditional patches run as one-entry
//! transactions ([`crate::transaction::single`]).

use fhir_model::IssueCode;
use serde_json::Value;

use crate::error::{Error, ErrorKind, Result};
use crate::transaction::PatchDoc;

/// Reads a patch document by its media type (lower-cased, parameters allowed).
pub fn document(content_type: &str, body: &[u8]) -> Result<PatchDoc> {
    let ct = content_type.to_ascii_lowercase();
    if ct.starts_with("application/json-patch+json") {
        // Parsed within the nesting limit before anything recurses over it.
        return Ok(PatchDoc::Json(fhir_model::format::parse_json_value(body)?));
    }
    let parameters = if ct.starts_with("application/fhir+json")
        || ct.starts_with("application/json")
    {
        let v = fhir_model::format::parse_json_value(body)?;
        parameters_only(&v)?;
        fhir_model::format::check_resource(v)?
    } else if ct.starts_with("application/fhir+xml") || ct.starts_with("application/xml") {
        let v = fhir_model::format::parse_xml(body)?;
        parameters_only(&v)?;
        v
    } else {
        return Err(Error::new(
            ErrorKind::UnsupportedMediaType,
            format!("PATCH takes application/json-patch+json (JSON Patch) or application/fhir+json (FHIRPath Patch), not '{ct}'"),
        ));
    };
    Ok(PatchDoc::FhirPath(parameters))
}

fn parameters_only(v: &Value) -> Result<()> {
    if v["resourceType"].as_str() == Some("Parameters") {
        Ok(())
    } else {
        Err(Error::invalid("A FHIRPath Patch is a Parameters resource"))
    }
}

/// Applies a patch document to a resource and validates the result.
pub(crate) fn apply(resource: &Value, patch: &PatchDoc) -> Result<Value> {
    let result = match patch {
        PatchDoc::Json(p) => fhir_model::patch::apply_json_patch(resource, p),
        PatchDoc::FhirPath(p) => fhir_model::patch::apply_fhirpath_patch(resource, p),
    };
    let patched = result.map_err(|e| {
        let kind = if e.is_malformed() {
            ErrorKind::Invalid
        } else {
            ErrorKind::Unprocessable
        };
        Error::coded(
            kind,
            IssueCode::Processing,
            format!("The patch cannot be applied: {e}"),
        )
    })?;
    let mut checked = fhir_model::format::check_resource(patched).map_err(|e| {
        Error::from(e)
            .with_kind(ErrorKind::Unprocessable)
            .prefixed("The patched resource is not valid: ")
    })?;
    fhir_model::format::check_business_rules(&checked)?;
    if let Some(meta) = checked.get_mut("meta").and_then(Value::as_object_mut) {
        meta.remove("versionId");
        meta.remove("lastUpdated");
    }
    Ok(checked)
}
