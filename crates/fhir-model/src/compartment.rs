//! Patient compartment membership, from the R4 Patient CompartmentDefinition held in the
//! embedded search-parameter table.

use crate::fhirpath::{self, Dialect, Expression, Node};
use crate::index::parse_reference;
use crate::search_params;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::OnceLock;

/// Compiled compartment expressions by resource type.
fn expressions(resource_type: &str) -> &'static [Expression] {
    static CACHE: OnceLock<HashMap<String, Vec<Expression>>> = OnceLock::new();
    CACHE
        .get_or_init(|| {
            search_params::compartment_table()
                .iter()
                .map(|(t, ps)| {
                    let exprs = ps
                        .iter()
                        .filter_map(|p| fhirpath::parse(&p.expression, Dialect::Search).ok())
                        .collect();
                    (t.clone(), exprs)
                })
                .collect()
        })
        .get(resource_type)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The Patient id a Reference (or reference text) points at, if it points at a Patient.
fn patient_id(v: &Value) -> Option<String> {
    let text = match v {
        Value::Object(o) => o.get("reference")?.as_str()?,
        Value::String(s) => s,
        _ => return None,
    };
    let r = parse_reference(text);
    (r.target_type.as_deref() == Some("Patient"))
        .then_some(r.target_id)
        .flatten()
}

/// Ids of the patients whose compartment holds this resource.
pub fn patient_compartments(resource: &Value) -> Vec<String> {
    let Some(rt) = resource.get("resourceType").and_then(Value::as_str) else {
        return Vec::new();
    };
    let mut ids = Vec::new();
    if rt == "Patient" {
        if let Some(id) = resource.get("id").and_then(Value::as_str) {
            ids.push(id.to_string());
        }
    }
    let root = [Node::root(resource)];
    for e in expressions(rt) {
        ids.extend(
            fhirpath::evaluate(e, &root)
                .iter()
                .filter_map(|n| patient_id(&n.value)),
        );
    }
    ids.sort();
    ids.dedup();
    ids
}

/// Resource types that can be in a Patient's compartment (the Patient itself included), sorted.
pub fn patient_compartment_types() -> &'static [String] {
    static TYPES: OnceLock<Vec<String>> = OnceLock::new();
    TYPES.get_or_init(|| {
        let mut types: Vec<String> = search_params::compartment_table().keys().cloned().collect();
        if !types.iter().any(|t| t == "Patient") {
            types.push("Patient".into());
        }
        types.sort();
        types
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn compartments() {
        let cases: Vec<(&str, Value, Vec<&str>)> = vec![
            (
                "patient itself and linked patients",
                json!({"resourceType": "Patient", "id": "p1",
                       "link": [{"other": {"reference": "Patient/p0"}, "type": "replaces"},
                                {"other": {"reference": "RelatedPerson/r1"}, "type": "seealso"}]}),
                vec!["p0", "p1"],
            ),
            (
                "observation subject and performer",
                json!({"resourceType": "Observation", "status": "final",
                       "subject": {"reference": "Patient/p1"},
                       "performer": [{"reference": "Practitioner/d1"},
                                     {"reference": "https://other.example/fhir/Patient/p2/_history/3"},
                                     {"reference": "Patient/p1"}]}),
                vec!["p1", "p2"],
            ),
            (
                "observation about a group",
                json!({"resourceType": "Observation", "subject": {"reference": "Group/g1"}}),
                vec![],
            ),
            (
                "allergy recorder and asserter patients",
                json!({"resourceType": "AllergyIntolerance",
                       "patient": {"reference": "Patient/p1"},
                       "recorder": {"reference": "Patient/p3"},
                       "asserter": {"reference": "Patient/p4"}}),
                vec!["p1", "p3", "p4"],
            ),
            (
                "allergy recorded by a practitioner",
                json!({"resourceType": "AllergyIntolerance",
                       "patient": {"reference": "Patient/p1"},
                       "recorder": {"reference": "Practitioner/d1"}}),
                vec!["p1"],
            ),
            (
                "encounter",
                json!({"resourceType": "Encounter", "subject": {"reference": "Patient/p9"},
                       "participant": [{"individual": {"reference": "Practitioner/d1"}}]}),
                vec!["p9"],
            ),
            (
                "contained and identifier-only references are not members",
                json!({"resourceType": "Condition",
                       "subject": {"reference": "#p"},
                       "asserter": {"identifier": {"value": "x"}, "type": "Patient"}}),
                vec![],
            ),
            (
                "type without compartment",
                json!({"resourceType": "Organization", "id": "o1",
                       "partOf": {"reference": "Patient/p1"}}),
                vec![],
            ),
            (
                "unknown type",
                json!({"resourceType": "Nonsense", "subject": {"reference": "Patient/p1"}}),
                vec![],
            ),
            (
                "no resource type",
                json!({"subject": {"reference": "Patient/p1"}}),
                vec![],
            ),
        ];
        for (name, resource, want) in cases {
            assert_eq!(patient_compartments(&resource), want, "{name}");
        }
    }
}
