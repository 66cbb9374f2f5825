//! `_summary` and `_elements`: subsets of a resource for reading
//! (http://hl7.org/fhir/R4/search.html#summary).

use serde_json::{json, Map, Value};

use crate::elements::table;

/// Which `_summary` form was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SummaryMode {
    /// `true`: only the elements marked as summary.
    True,
    /// `text`: text, id, meta and the mandatory top-level elements.
    Text,
    /// `data`: everything but the narrative.
    Data,
    /// `count`: no resources at all (search only).
    Count,
    /// `false`: the whole resource.
    False,
}

impl SummaryMode {
    /// Parses the parameter value; `None` for anything not in the spec.
    pub fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "true" => SummaryMode::True,
            "text" => SummaryMode::Text,
            "data" => SummaryMode::Data,
            "count" => SummaryMode::Count,
            "false" => SummaryMode::False,
            _ => return None,
        })
    }
}

/// Top-level elements flagged isSummary in the R4 definitions of the types with search support.
/// Other types fall back to their mandatory elements (the schema-derived table has no flags).
fn summary_elements(resource_type: &str) -> &'static [&'static str] {
    match resource_type {
        "Patient" => &[
            "identifier",
            "active",
            "name",
            "telecom",
            "gender",
            "birthDate",
            "deceasedBoolean",
            "deceasedDateTime",
            "address",
            "managingOrganization",
            "link",
        ],
        "Observation" => &[
            "identifier",
            "basedOn",
            "partOf",
            "status",
            "code",
            "subject",
            "focus",
            "encounter",
            "effectiveDateTime",
            "effectivePeriod",
            "effectiveTiming",
            "effectiveInstant",
            "issued",
            "performer",
            "valueQuantity",
            "valueCodeableConcept",
            "valueString",
            "valueBoolean",
            "valueInteger",
            "valueRange",
            "valueRatio",
            "valueSampledData",
            "valueTime",
            "valueDateTime",
            "valuePeriod",
            "hasMember",
            "derivedFrom",
            "component",
        ],
        "MedicationStatement" => &[
            "identifier",
            "basedOn",
            "partOf",
            "status",
            "category",
            "medicationCodeableConcept",
            "medicationReference",
            "subject",
            "context",
            "effectiveDateTime",
            "effectivePeriod",
            "dateAsserted",
        ],
        "AllergyIntolerance" => &[
            "identifier",
            "clinicalStatus",
            "verificationStatus",
            "type",
            "category",
            "criticality",
            "code",
            "patient",
            "asserter",
        ],
        "Flag" => &[
            "identifier",
            "status",
            "category",
            "code",
            "subject",
            "period",
            "encounter",
            "author",
        ],
        "CarePlan" => &[
            "identifier",
            "instantiatesCanonical",
            "instantiatesUri",
            "basedOn",
            "replaces",
            "partOf",
            "status",
            "intent",
            "category",
            "title",
            "description",
            "subject",
            "encounter",
            "period",
            "created",
            "author",
            "addresses",
        ],
        _ => &[],
    }
}

const ALWAYS: &[&str] = &["resourceType", "id", "meta", "implicitRules"];

/// Applies `_summary`; returns the resource unchanged for `false`.
pub fn apply_summary(resource: &Value, mode: SummaryMode) -> Value {
    let Some(obj) = resource.as_object() else {
        return resource.clone();
    };
    let rt = obj
        .get("resourceType")
        .and_then(Value::as_str)
        .unwrap_or("");
    let keep: Box<dyn Fn(&str) -> bool> = match mode {
        SummaryMode::False => return resource.clone(),
        SummaryMode::Data => Box::new(|k: &str| k != "text"),
        SummaryMode::True | SummaryMode::Count => {
            let list = summary_elements(rt);
            Box::new(move |k: &str| {
                ALWAYS.contains(&k) || list.contains(&k) || is_mandatory(rt, k) || is_modifier(k)
            })
        }
        SummaryMode::Text => {
            Box::new(move |k: &str| ALWAYS.contains(&k) || k == "text" || is_mandatory(rt, k))
        }
    };
    subsetted(obj, |k| keep(k.trim_start_matches('_')))
}

/// Applies `_elements` (a list of top-level element names); mandatory elements are kept.
pub fn apply_elements(resource: &Value, elements: &[String]) -> Value {
    let Some(obj) = resource.as_object() else {
        return resource.clone();
    };
    let rt = obj
        .get("resourceType")
        .and_then(Value::as_str)
        .unwrap_or("");
    subsetted(obj, |k| {
        let base = k.trim_start_matches('_');
        ALWAYS.contains(&base)
            || is_mandatory(rt, base)
            || elements.iter().any(|e| base == e || choice_of(base, e))
    })
}

/// `value` asked for matches `valueQuantity` in JSON.
fn choice_of(key: &str, asked: &str) -> bool {
    key.strip_prefix(asked)
        .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_uppercase()))
}

fn is_mandatory(resource_type: &str, key: &str) -> bool {
    table()
        .types
        .get(resource_type)
        .is_some_and(|t| t.is_mandatory(key))
}

fn is_modifier(key: &str) -> bool {
    key == "modifierExtension"
}

/// Keeps the chosen keys and marks the result with the SUBSETTED security tag.
fn subsetted(obj: &Map<String, Value>, keep: impl Fn(&str) -> bool) -> Value {
    let mut out: Map<String, Value> = obj
        .iter()
        .filter(|(k, _)| keep(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let tag = json!({
        "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
        "code": "SUBSETTED",
        "display": "subsetted"
    });
    let meta = out
        .entry("meta")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(meta) = meta.as_object_mut() {
        let tags = meta.entry("tag").or_insert_with(|| Value::Array(vec![]));
        if let Some(tags) = tags.as_array_mut() {
            tags.push(tag);
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_true_drops_non_summary_elements() {
        let p = json!({"resourceType": "Patient", "id": "1", "text": {"status": "generated", "div": "<div/>"},
            "name": [{"family": "X"}], "contact": [{"name": {"family": "Y"}}], "birthDate": "2000"});
        let s = apply_summary(&p, SummaryMode::True);
        assert!(s.get("contact").is_none() && s.get("text").is_none());
        assert!(s.get("name").is_some() && s.get("birthDate").is_some());
        assert_eq!(s["meta"]["tag"][0]["code"], "SUBSETTED");
        let d = apply_summary(&p, SummaryMode::Data);
        assert!(d.get("text").is_none() && d.get("contact").is_some());
        let t = apply_summary(&p, SummaryMode::Text);
        assert!(t.get("text").is_some() && t.get("name").is_none());
    }

    #[test]
    fn elements_keep_mandatory_and_choices() {
        let o = json!({"resourceType": "Observation", "id": "1", "status": "final", "code": {"text": "x"},
            "valueQuantity": {"value": 1}, "note": [{"text": "n"}]});
        let e = apply_elements(&o, &["value".to_string()]);
        assert!(e.get("valueQuantity").is_some() && e.get("code").is_some());
        assert!(e.get("note").is_none());
    }

    /// One full resource of each care-record type, each with its mandatory elements.
    fn care_record() -> Vec<Value> {
        let text = json!({"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"});
        let subject = json!({"reference": "Patient/p1"});
        let concept =
            json!({"coding": [{"system": "http://snomed.info/sct", "code": "1"}], "text": "c"});
        vec![
            json!({"resourceType": "Patient", "id": "p1", "text": text, "active": true,
                "name": [{"family": "F"}], "gender": "female", "birthDate": "1960-01-01",
                "contact": [{"name": {"family": "C"}}]}),
            json!({"resourceType": "Observation", "id": "o1", "text": text, "status": "final",
                "category": [concept], "code": concept, "subject": subject,
                "effectiveDateTime": "2024-01-01", "valueQuantity": {"value": 5.4, "unit": "mmol/L"},
                "note": [{"text": "n"}], "interpretation": [concept]}),
            json!({"resourceType": "MedicationStatement", "id": "m1", "text": text, "status": "active",
                "medicationCodeableConcept": concept, "subject": subject,
                "effectivePeriod": {"start": "2024-01-01"}, "dosage": [{"text": "once daily"}],
                "note": [{"text": "n"}]}),
            json!({"resourceType": "MedicationStatement", "id": "m2", "status": "completed",
                "medicationReference": {"reference": "Medication/x"}, "subject": subject}),
            json!({"resourceType": "AllergyIntolerance", "id": "a1", "text": text,
                "clinicalStatus": concept, "code": concept, "patient": subject,
                "reaction": [{"manifestation": [concept]}], "note": [{"text": "n"}]}),
            json!({"resourceType": "Flag", "id": "f1", "text": text, "status": "active",
                "category": [concept], "code": concept, "subject": subject,
                "period": {"start": "2024-01-01"}}),
            json!({"resourceType": "CarePlan", "id": "c1", "text": text, "status": "active",
                "intent": "plan", "title": "t", "subject": subject,
                "activity": [{"detail": {"status": "scheduled", "code": concept}}],
                "note": [{"text": "n"}]}),
        ]
    }

    #[test]
    fn every_subsetted_care_record_body_is_still_valid() {
        let element_lists: [&[&str]; 4] = [
            &["id"],
            &["subject", "patient"],
            &["note"],
            &["value", "medication", "effective"],
        ];
        for resource in care_record() {
            crate::format::check_resource(resource.clone()).expect("the full resource is valid");
            let mut subsets: Vec<(String, Value)> =
                [SummaryMode::True, SummaryMode::Text, SummaryMode::Data]
                    .into_iter()
                    .map(|m| (format!("_summary={m:?}"), apply_summary(&resource, m)))
                    .collect();
            for list in element_lists {
                let list: Vec<String> = list.iter().map(|e| e.to_string()).collect();
                subsets.push((
                    format!("_elements={}", list.join(",")),
                    apply_elements(&resource, &list),
                ));
            }
            for (what, subset) in subsets {
                if let Err(e) = crate::format::check_resource(subset.clone()) {
                    panic!("{} {what}: {e}\n{subset}", resource["resourceType"]);
                }
            }
        }
    }

    #[test]
    fn mandatory_primitives_and_choices_survive_text_and_elements() {
        let m = &care_record()[2];
        let t = apply_summary(m, SummaryMode::Text);
        for key in ["status", "medicationCodeableConcept", "subject", "text"] {
            assert!(t.get(key).is_some(), "{key}: {t}");
        }
        assert!(t.get("dosage").is_none());
        let e = apply_elements(&care_record()[6], &["title".to_string()]);
        assert!(e.get("status").is_some() && e.get("intent").is_some() && e.get("note").is_none());
    }
}
