#![no_main]
//! Fuzz target patch: the input's first byte chooses the format (even: JSON Patch, odd: FHIRPath
//! Patch as a Parameters resource), the rest is the patch document, read as the server reads it
//! and applied to a fixed Patient. Applying must answer, and a result must pass or fail
//! `check_resource` without panicking.

use std::sync::OnceLock;

use fhir_model::format::{check_resource, parse_json, parse_json_value};
use fhir_model::patch::{apply_fhirpath_patch, apply_json_patch};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn patient() -> &'static Value {
    static PATIENT: OnceLock<Value> = OnceLock::new();
    PATIENT.get_or_init(|| {
        serde_json::json!({
            "resourceType": "Patient", "id": "p1", "active": true,
            "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9434765919"}],
            "name": [{"use": "official", "family": "Jones", "given": ["Ann", "B"]}],
            "telecom": [{"system": "phone", "value": "01234"}],
            "birthDate": "1980-05-01", "_birthDate": {"extension": [{"url": "http://e/x", "valueString": "y"}]},
            "contact": [{"name": {"family": "Smith"}, "telecom": [{"system": "email", "value": "a@b"}]}],
            "extension": [{"url": "http://e/a", "extension": [{"url": "b", "valueCode": "c"}]}]
        })
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&kind, doc)) = data.split_first() else {
        return;
    };
    let result = if kind % 2 == 0 {
        let Ok(doc) = parse_json_value(doc) else {
            return;
        };
        apply_json_patch(patient(), &doc)
    } else {
        let Ok(doc) = parse_json(doc) else {
            return;
        };
        apply_fhirpath_patch(patient(), &doc)
    };
    if let Ok(patched) = result {
        let _ = check_resource(patched);
    }
});
