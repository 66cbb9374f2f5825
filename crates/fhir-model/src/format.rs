//! Reading and writing resources as FHIR JSON and XML. fhirbolt is used here and nowhere else:
//! its serde code is generic and would be compiled again in every crate that called it, so it
//! sits behind these non-generic functions over bytes and `serde_json::Value`.

use fhirbolt::model::r4::Resource as R4Resource;
use fhirbolt::serde::{DeserializationConfig, DeserializationMode};
use serde_json::Value;

use crate::issue::{Issue, IssueCode, ModelError};
use crate::nhs_number;
use crate::validate::validate_resource;

/// Parses and validates a JSON resource body: UTF-8, JSON syntax, R4 structure and primitive
/// formats, then fhirbolt's strict reading as a second opinion (cardinality of mandatory elements).
pub fn parse_json(bytes: &[u8]) -> Result<Value, ModelError> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        ModelError::single(Issue::general(
            IssueCode::Invalid,
            format!("The body is not valid UTF-8 (at byte {})", e.valid_up_to()),
        ))
    })?;
    let value: Value = serde_json::from_str(text).map_err(|e| {
        ModelError::single(Issue::general(
            IssueCode::Invalid,
            format!("The body is not valid JSON: {e}"),
        ))
    })?;
    check_resource(value)
}

/// Checks an already-parsed JSON value as a resource, exactly as [`parse_json`] does.
pub fn check_resource(value: Value) -> Result<Value, ModelError> {
    let issues = validate_resource(&value);
    if !issues.is_empty() {
        return Err(ModelError { issues });
    }
    let strict = DeserializationConfig {
        mode: DeserializationMode::Strict,
    };
    let checked = guarded(|| {
        fhirbolt::json::from_json_value::<R4Resource>(value.clone(), Some(strict))
            .map(|_| ())
            .map_err(|e| e.to_string())
    });
    if let Err(e) = checked {
        let rt = value["resourceType"].as_str().unwrap_or("Resource");
        return Err(ModelError::single(fhirbolt_issue(rt, &e)));
    }
    Ok(value)
}

/// Parses an XML resource body into its JSON form and validates it like JSON.
pub fn parse_xml(bytes: &[u8]) -> Result<Value, ModelError> {
    if std::str::from_utf8(bytes).is_err() {
        return Err(ModelError::single(Issue::general(
            IssueCode::Invalid,
            "The body is not valid UTF-8",
        )));
    }
    let strict = DeserializationConfig {
        mode: DeserializationMode::Strict,
    };
    let value = guarded(|| {
        let resource: R4Resource = fhirbolt::xml::from_slice(bytes, Some(strict))
            .map_err(|e| format!("The body is not a valid FHIR XML resource: {e}"))?;
        fhirbolt::json::to_json_value(resource, None)
            .map_err(|e| format!("The XML resource cannot be represented as JSON: {e}"))
    })
    .map_err(|e| ModelError::single(Issue::general(IssueCode::Invalid, e)))?;
    check_resource(value)
}

/// Writes a (valid) JSON resource as FHIR XML.
pub fn to_xml(value: &Value) -> Result<Vec<u8>, ModelError> {
    let strict = DeserializationConfig {
        mode: DeserializationMode::Strict,
    };
    guarded(|| {
        let resource: R4Resource = fhirbolt::json::from_json_value(value.clone(), Some(strict))
            .map_err(|e| e.to_string())?;
        fhirbolt::xml::to_vec(&resource, None).map_err(|e| e.to_string())
    })
    .map_err(|e| ModelError::single(Issue::general(IssueCode::Invalid, e)))
}

/// fhirbolt panics on some inputs (seen: lax JSON reading of unknown elements); a panic in a
/// parser must become an error answer, never a dropped connection.
fn guarded<T>(f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|_| Err("The content could not be processed by the FHIR parser".into()))
}

/// Rules beyond structure (HTTP 422 when broken): every NHS number must pass its check digit.
pub fn check_business_rules(resource: &Value) -> Result<(), ModelError> {
    let mut issues = Vec::new();
    let rt = resource["resourceType"].as_str().unwrap_or("Resource");
    if let Some(ids) = resource.get("identifier").and_then(Value::as_array) {
        for (i, ident) in ids.iter().enumerate() {
            if ident.get("system").and_then(Value::as_str) != Some(nhs_number::NHS_NUMBER_SYSTEM) {
                continue;
            }
            let value = ident.get("value").and_then(Value::as_str).unwrap_or("");
            if !nhs_number::is_valid(value) {
                issues.push(Issue::at(
                    IssueCode::BusinessRule,
                    &format!("{rt}.identifier[{i}].value"),
                    format!("'{value}' is not a valid NHS number (10 digits with a Modulus 11 check digit)"),
                ));
            }
        }
    }
    if issues.is_empty() {
        Ok(())
    } else {
        Err(ModelError { issues })
    }
}

/// fhirbolt's messages name the field but not its path: keep what can be recovered.
fn fhirbolt_issue(resource_type: &str, message: &str) -> Issue {
    let field = message
        .split('`')
        .nth(1)
        .filter(|f| f.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
    let code = if message.starts_with("missing field") {
        IssueCode::Required
    } else {
        IssueCode::Structure
    };
    let diagnostics = format!("Invalid {resource_type}: {message}");
    match field {
        Some(f) if message.starts_with("missing field") => {
            Issue::at(code, &format!("{resource_type}.{f}"), diagnostics)
        }
        _ => Issue::general(code, diagnostics),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_through_xml() {
        let body = br#"{"resourceType":"Patient","id":"p1","active":true,"name":[{"family":"Jones","given":["Ann"]}],"birthDate":"1980-05-01"}"#;
        let v = parse_json(body).unwrap();
        let xml = to_xml(&v).unwrap();
        let text = String::from_utf8(xml.clone()).unwrap();
        assert!(text.contains("<family value=\"Jones\"/>"), "{text}");
        assert_eq!(parse_xml(&xml).unwrap(), v);
    }

    #[test]
    fn missing_mandatory_element_is_named() {
        let err = parse_json(br#"{"resourceType":"Observation","code":{"text":"x"}}"#).unwrap_err();
        assert_eq!(
            err.issues[0].expression.as_deref(),
            Some("Observation.status")
        );
    }

    #[test]
    fn syntax_and_encoding_errors() {
        assert!(parse_json(b"{\"resourceType\":").is_err());
        assert!(parse_json(b"\xff\xfe").is_err());
        assert!(parse_xml(b"<Patient xmlns=\"http://hl7.org/fhir\"><bogus/></Patient>").is_err());
    }

    #[test]
    fn nhs_number_rule() {
        let bad = serde_json::json!({"resourceType": "Patient", "identifier": [
            {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9434765918"}]});
        let err = check_business_rules(&bad).unwrap_err();
        assert!(err.is_business_rule());
        assert_eq!(
            err.issues[0].expression.as_deref(),
            Some("Patient.identifier[0].value")
        );
        let good = serde_json::json!({"resourceType": "Patient", "identifier": [
            {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9434765919"}]});
        assert!(check_business_rules(&good).is_ok());
    }
}
