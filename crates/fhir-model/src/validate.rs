//! Structural validation of a FHIR JSON resource against the R4 element table: unknown elements,
//! wrong JSON types, cardinality, primitive formats (including impossible calendar dates) and
//! required bindings, each reported with the FHIRPath of the element.

use serde_json::{Map, Value};

use crate::elements::{table, ElementDef, TypeDef};
use crate::issue::{shorten, Issue, IssueCode};

/// Stop collecting after this many issues: a hostile body must not produce a huge response.
const MAX_ISSUES: usize = 50;

/// Validates a resource (an object with `resourceType`), returning every issue found.
pub fn validate_resource(resource: &Value) -> Vec<Issue> {
    let mut issues = Vec::new();
    check_resource(resource, "", &mut issues);
    issues.truncate(MAX_ISSUES);
    issues
}

fn check_resource(value: &Value, prefix: &str, issues: &mut Vec<Issue>) {
    let Some(obj) = value.as_object() else {
        let path = if prefix.is_empty() { "$" } else { prefix };
        issues.push(Issue::at(
            IssueCode::Structure,
            path,
            "A resource must be a JSON object",
        ));
        return;
    };
    let Some(rt) = obj.get("resourceType").and_then(Value::as_str) else {
        let path = if prefix.is_empty() { "$" } else { prefix };
        issues.push(Issue::at(IssueCode::Required, path, "Missing resourceType"));
        return;
    };
    let Some(def) = table().types.get(rt).filter(|t| t.resource) else {
        let path = if prefix.is_empty() {
            "resourceType"
        } else {
            prefix
        };
        issues.push(Issue::at(
            IssueCode::NotSupported,
            path,
            format!("Unknown resource type '{rt}'"),
        ));
        return;
    };
    // Contained resources are addressed through their container's path.
    let path = if prefix.is_empty() {
        rt.to_string()
    } else {
        prefix.to_string()
    };
    check_object(def, obj, &path, true, issues);
}

fn check_object(
    def: &TypeDef,
    obj: &Map<String, Value>,
    path: &str,
    is_resource: bool,
    issues: &mut Vec<Issue>,
) {
    if obj.is_empty() {
        issues.push(Issue::at(
            IssueCode::Structure,
            path,
            "Objects must not be empty",
        ));
        return;
    }
    for (key, value) in obj {
        if issues.len() >= MAX_ISSUES {
            return;
        }
        if is_resource && key == "resourceType" {
            continue;
        }
        let child = format!("{path}.{key}");
        if key == "fhir_comments" {
            continue;
        }
        if let Some(base) = key.strip_prefix('_') {
            check_primitive_extension(def, base, value, &child, issues);
            continue;
        }
        let Some(element) = def.props.get(key) else {
            issues.push(Issue::at(
                IssueCode::Structure,
                &child,
                format!("Unknown element '{key}'"),
            ));
            continue;
        };
        check_element(
            element,
            value,
            &child,
            obj.contains_key(&format!("_{key}")),
            issues,
        );
    }
    for required in def.missing_mandatory(obj) {
        issues.push(Issue::at(
            IssueCode::Required,
            &format!("{path}.{required}"),
            format!("Missing required element '{required}'"),
        ));
    }
}

fn check_element(
    element: &ElementDef,
    value: &Value,
    path: &str,
    has_extension: bool,
    issues: &mut Vec<Issue>,
) {
    if element.array {
        let Some(items) = value.as_array() else {
            issues.push(Issue::at(
                IssueCode::Structure,
                path,
                "This element repeats: it must be a JSON array",
            ));
            return;
        };
        if items.is_empty() {
            issues.push(Issue::at(
                IssueCode::Structure,
                path,
                "Arrays must not be empty",
            ));
        }
        for (i, item) in items.iter().enumerate() {
            let item_path = format!("{path}[{i}]");
            // A null keeps positions aligned with the `_element` array of extensions.
            if item.is_null() && has_extension && is_primitive(&element.type_name) {
                continue;
            }
            check_value(element, item, &item_path, issues);
        }
    } else if value.is_array() {
        issues.push(Issue::at(
            IssueCode::Structure,
            path,
            "This element does not repeat: it must not be an array",
        ));
    } else {
        check_value(element, value, path, issues);
    }
}

fn is_primitive(type_name: &str) -> bool {
    table().primitives.contains_key(type_name)
}

fn check_value(element: &ElementDef, value: &Value, path: &str, issues: &mut Vec<Issue>) {
    let name = element.type_name.as_str();
    if name == "ResourceList" {
        check_resource(value, path, issues);
        return;
    }
    if let Some(prim) = table().primitives.get(name) {
        check_primitive(name, &prim.json, prim.pattern.as_ref(), value, path, issues);
        if !element.codes.is_empty() {
            if let Some(code) = value.as_str() {
                if !element.codes.iter().any(|c| c == code) {
                    issues.push(Issue::at(
                        IssueCode::Value,
                        path,
                        format!(
                            "'{code}' is not one of the allowed codes: {}",
                            element.codes.join(", ")
                        ),
                    ));
                }
            }
        }
        return;
    }
    let Some(def) = table().types.get(name) else {
        return;
    };
    match value.as_object() {
        Some(obj) => check_object(def, obj, path, false, issues),
        None => issues.push(Issue::at(
            IssueCode::Structure,
            path,
            format!(
                "Expected a JSON object ({name}), found {}",
                json_kind(value)
            ),
        )),
    }
}

fn check_primitive(
    name: &str,
    json: &str,
    pattern: Option<&regex::Regex>,
    value: &Value,
    path: &str,
    issues: &mut Vec<Issue>,
) {
    let text = match (json, value) {
        ("boolean", Value::Bool(_)) => return,
        ("number", Value::Number(n)) => n.to_string(),
        ("string", Value::String(s)) => s.clone(),
        _ => {
            let want = match json {
                "boolean" => "a JSON boolean",
                "number" => "a JSON number",
                _ => "a JSON string",
            };
            issues.push(Issue::at(
                IssueCode::Structure,
                path,
                format!("Expected {want} for {name}, found {}", json_kind(value)),
            ));
            return;
        }
    };
    // FHIR strings exclude control characters other than tab, CR and LF (and PostgreSQL text
    // cannot hold NUL at all).
    if json == "string"
        && text
            .chars()
            .any(|c| c < ' ' && !matches!(c, '\t' | '\r' | '\n'))
    {
        issues.push(Issue::at(
            IssueCode::Value,
            path,
            format!("A {name} value must not contain control characters"),
        ));
        return;
    }
    if json == "string" && text.trim().is_empty() {
        issues.push(Issue::at(
            IssueCode::Value,
            path,
            format!("A {name} value must not be empty or only whitespace"),
        ));
        return;
    }
    if let Some(re) = pattern {
        if !re.is_match(&text) {
            issues.push(Issue::at(
                IssueCode::Value,
                path,
                format!("'{}' is not a valid {name}", shorten(&text, 64)),
            ));
            return;
        }
    }
    // Narratives are copied into XML as written: they must be one well-formed XHTML div.
    if name == "xhtml" && !crate::narrative::is_one_xhtml_div(&text) {
        issues.push(Issue::at(
            IssueCode::Value,
            path,
            "The narrative must be one well-formed XHTML element, \
             <div xmlns=\"http://www.w3.org/1999/xhtml\">...</div>",
        ));
        return;
    }
    if name == "decimal" && crate::index::decimal_bounds(&text).is_none() {
        issues.push(Issue::at(
            IssueCode::Value,
            path,
            format!(
                "'{}' is outside the decimals this server holds (a magnitude below 7.9e28, \
                 at most 28 significant digits and {} digits after the point)",
                shorten(&text, 64),
                crate::index::MAX_DECIMAL_FRACTION_DIGITS
            ),
        ));
        return;
    }
    let valid = match name {
        "date" | "dateTime" | "instant" => valid_calendar_date(&text),
        "integer" => text.parse::<i32>().is_ok(),
        "positiveInt" => text.parse::<i32>().is_ok_and(|n| n > 0),
        "unsignedInt" => text.parse::<i32>().is_ok_and(|n| n >= 0),
        _ => true,
    };
    if !valid {
        issues.push(Issue::at(
            IssueCode::Value,
            path,
            format!("'{}' is not a valid {name}", shorten(&text, 64)),
        ));
    }
}

/// The pattern admits 31 days in every month: the day must exist in that month and year.
fn valid_calendar_date(text: &str) -> bool {
    let (Some(y), Some(m), Some(d)) = (text.get(0..4), text.get(5..7), text.get(8..10)) else {
        return true;
    };
    let (Ok(y), Ok(m), Ok(d)) = (y.parse::<i32>(), m.parse::<u32>(), d.parse::<u32>()) else {
        return false;
    };
    chrono::NaiveDate::from_ymd_opt(y, m, d).is_some()
}

fn check_primitive_extension(
    def: &TypeDef,
    base: &str,
    value: &Value,
    path: &str,
    issues: &mut Vec<Issue>,
) {
    let Some(element) = def.props.get(base).filter(|e| is_primitive(&e.type_name)) else {
        issues.push(Issue::at(
            IssueCode::Structure,
            path,
            format!("Unknown element '_{base}': there is no primitive element '{base}'"),
        ));
        return;
    };
    let Some(element_def) = table().types.get("Element") else {
        return;
    };
    let mut check_one = |v: &Value, p: &str| match v {
        Value::Null if element.array => {}
        Value::Object(obj) => check_object(element_def, obj, p, false, issues),
        other => issues.push(Issue::at(
            IssueCode::Structure,
            p,
            format!("Expected a JSON object, found {}", json_kind(other)),
        )),
    };
    match (element.array, value) {
        (true, Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                check_one(item, &format!("{path}[{i}]"));
            }
        }
        (false, v) if !v.is_array() => check_one(v, path),
        _ => issues.push(Issue::at(
            IssueCode::Structure,
            path,
            "Cardinality of the extension element does not match its primitive",
        )),
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::validate_resource;
    use serde_json::json;

    fn first(v: serde_json::Value) -> Option<(String, String)> {
        validate_resource(&v)
            .into_iter()
            .next()
            .map(|i| (i.expression.unwrap_or_default(), i.diagnostics))
    }

    #[test]
    fn accepts_a_valid_patient() {
        let p = json!({"resourceType": "Patient", "id": "a1", "name": [{"family": "Smith", "given": ["Jo"]}],
            "birthDate": "1970-02-28", "_birthDate": {"extension": [{"url": "http://x", "valueString": "y"}]},
            "deceasedDateTime": "2020-01-01T10:00:00Z", "multipleBirthInteger": 2});
        assert_eq!(validate_resource(&p), vec![]);
    }

    #[test]
    fn reports_paths() {
        let cases = [
            (json!({"resourceType": "Patient", "foo": 1}), "Patient.foo"),
            (
                json!({"resourceType": "Patient", "birthDate": "2024-02-30"}),
                "Patient.birthDate",
            ),
            (
                json!({"resourceType": "Patient", "birthDate": "garbage"}),
                "Patient.birthDate",
            ),
            (
                json!({"resourceType": "Patient", "name": {"family": "x"}}),
                "Patient.name",
            ),
            (
                json!({"resourceType": "Patient", "name": [{"family": 1}]}),
                "Patient.name[0].family",
            ),
            (
                json!({"resourceType": "Patient", "gender": "blue"}),
                "Patient.gender",
            ),
            (
                json!({"resourceType": "Patient", "id": "bad id!"}),
                "Patient.id",
            ),
            (
                json!({"resourceType": "Patient", "name": [{"family": "a\u{0}b"}]}),
                "Patient.name[0].family",
            ),
            (
                json!({"resourceType": "Patient", "multipleBirthInteger": 1.5}),
                "Patient.multipleBirthInteger",
            ),
            (
                json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                "valueQuantity": {"value": "abc"}}),
                "Observation.valueQuantity.value",
            ),
            (
                json!({"resourceType": "Observation", "status": "final"}),
                "Observation.code",
            ),
            (
                serde_json::from_str(
                    r#"{"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                "valueQuantity": {"value": 1e2147483647}}"#,
                )
                .unwrap(),
                "Observation.valueQuantity.value",
            ),
            (
                serde_json::from_str(
                    r#"{"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                "valueQuantity": {"value": 1e-40}}"#,
                )
                .unwrap(),
                "Observation.valueQuantity.value",
            ),
            (
                json!({"resourceType": "Patient", "multipleBirthInteger": 2147483648_i64}),
                "Patient.multipleBirthInteger",
            ),
            (
                json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                "valueSampledData": {"origin": {"value": 1}, "period": 1, "dimensions": 0}}),
                "Observation.valueSampledData.dimensions",
            ),
            (
                json!({"resourceType": "Patient", "birthDate": "99999-01-01"}),
                "Patient.birthDate",
            ),
            (
                json!({"resourceType": "Patient", "birthDate": "0000-01-01"}),
                "Patient.birthDate",
            ),
            (
                json!({"resourceType": "Patient", "text": {"status": "generated",
                    "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div></text><evil/>"}}),
                "Patient.text.div",
            ),
            (
                json!({"resourceType": "Patient", "text": {"status": "generated", "div": "<div>x</div>"}}),
                "Patient.text.div",
            ),
            (
                json!({"resourceType": "Patient", "contained": [{"resourceType": "Organization", "bogus": true}]}),
                "Patient.contained[0].bogus",
            ),
        ];
        for (body, path) in cases {
            let got = first(body.clone());
            assert_eq!(
                got.as_ref().map(|g| g.0.as_str()),
                Some(path),
                "{body} -> {got:?}"
            );
        }
    }
}
