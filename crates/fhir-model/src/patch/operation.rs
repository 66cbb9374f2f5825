//! Reads a FHIRPath Patch `Parameters` document into operations, and turns `value` parts into the
//! JSON to store in the resource.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::PatchError;
use crate::elements::table;
use crate::fhirpath::typed::{element_def, lower_first, type_def};
use crate::fhirpath::{self, Dialect, Expression};

/// Deepest nesting of anonymous-type `part`s accepted, bounding recursion on hostile input.
const MAX_PART_DEPTH: usize = 32;

/// The part names the specification defines for an operation.
const PART_NAMES: [&str; 7] = [
    "type",
    "path",
    "name",
    "value",
    "index",
    "source",
    "destination",
];

/// The five FHIRPath Patch operation types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Add,
    Insert,
    Delete,
    Replace,
    Move,
}

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Add => "add",
            Kind::Insert => "insert",
            Kind::Delete => "delete",
            Kind::Replace => "replace",
            Kind::Move => "move",
        }
    }
}

/// One decoded operation; the parts that its type needs are guaranteed present.
#[derive(Debug)]
pub(crate) struct Operation<'p> {
    /// What the operation does.
    pub kind: Kind,
    /// The path as written, for messages.
    pub path_text: &'p str,
    /// The path, parsed.
    pub path: Expression,
    /// Element name to add (add).
    pub name: Option<&'p str>,
    /// The `value` part itself (add, insert, replace), built into JSON once the target's type
    /// is known.
    pub value: Option<&'p Value>,
    /// Position to insert at (insert).
    pub index: Option<usize>,
    /// Position to move from (move).
    pub source: Option<usize>,
    /// Position to move to (move).
    pub destination: Option<usize>,
}

/// Decodes every operation up front, so a malformed document is refused before anything is
/// applied.
pub(crate) fn decode(parameters: &Value) -> Result<Vec<Operation<'_>>, PatchError> {
    let obj = parameters.as_object().ok_or_else(|| {
        PatchError::malformed("a FHIRPath Patch document must be a Parameters resource")
    })?;
    if obj.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
        return Err(PatchError::malformed(
            "a FHIRPath Patch document must be a Parameters resource (resourceType 'Parameters')",
        ));
    }
    let params = match obj.get("parameter") {
        None => return Ok(Vec::new()),
        Some(Value::Array(params)) => params,
        Some(_) => {
            return Err(PatchError::malformed(
                "Parameters.parameter must be an array",
            ))
        }
    };
    params
        .iter()
        .enumerate()
        .map(|(i, param)| {
            decode_one(param).map_err(|e| {
                let kind = declared_type(param).unwrap_or("?");
                PatchError::malformed(e).in_operation(i + 1, kind)
            })
        })
        .collect()
}

/// The operation type as written, for messages about an operation that failed to decode.
fn declared_type(param: &Value) -> Option<&str> {
    param
        .get("part")?
        .as_array()?
        .iter()
        .find(|p| p.get("name").and_then(Value::as_str) == Some("type"))
        .and_then(|p| value_x(p.as_object()?).ok().flatten())
        .and_then(|(_, v)| v.as_str())
}

fn decode_one(param: &Value) -> Result<Operation<'_>, String> {
    let obj = param
        .as_object()
        .ok_or("a parameter must be a JSON object")?;
    match obj.get("name").and_then(Value::as_str) {
        Some("operation") => {}
        Some(other) => {
            return Err(format!(
            "the parameter is named '{other}'; FHIRPath Patch parameters must be named 'operation'"
        ))
        }
        None => return Err("the parameter has no name".to_string()),
    }
    let parts = obj
        .get("part")
        .and_then(Value::as_array)
        .ok_or("the operation has no parts")?;
    let mut by_name: HashMap<&str, &Value> = HashMap::new();
    for part in parts {
        let name = part
            .get("name")
            .and_then(Value::as_str)
            .ok_or("every part must have a name")?;
        if !PART_NAMES.contains(&name) {
            return Err(format!(
                "unknown part '{name}' (expected type, path, name, value, index, source, destination)"
            ));
        }
        if by_name.insert(name, part).is_some() {
            return Err(format!("part '{name}' appears more than once"));
        }
    }
    let required = |name: &str| {
        by_name
            .get(name)
            .copied()
            .ok_or_else(|| format!("the '{name}' part is missing"))
    };
    let kind = match string_part(required("type")?, "type")? {
        "add" => Kind::Add,
        "insert" => Kind::Insert,
        "delete" => Kind::Delete,
        "replace" => Kind::Replace,
        "move" => Kind::Move,
        other => {
            return Err(format!(
                "unknown operation type '{other}' (expected add, insert, delete, replace or move)"
            ))
        }
    };
    let path_text = string_part(required("path")?, "path")?;
    let path = fhirpath::parse(path_text, Dialect::Patch)
        .map_err(|e| format!("path '{path_text}' is not a supported FHIRPath expression: {e}"))?;
    let mut op = Operation {
        kind,
        path_text,
        path,
        name: None,
        value: None,
        index: None,
        source: None,
        destination: None,
    };
    if kind == Kind::Add {
        let name = string_part(required("name")?, "name")?;
        if !is_element_name(name) {
            return Err(format!("'{name}' is not a valid element name"));
        }
        op.name = Some(name);
    }
    if matches!(kind, Kind::Add | Kind::Insert | Kind::Replace) {
        let value = required("value")?;
        // Built untyped here only to report a broken value as malformed before anything runs;
        // the real build happens once the target's type is known.
        build_value(value, None)?;
        op.value = Some(value);
    }
    if kind == Kind::Insert {
        op.index = Some(integer_part(required("index")?, "index")?);
    }
    if kind == Kind::Move {
        op.source = Some(integer_part(required("source")?, "source")?);
        op.destination = Some(integer_part(required("destination")?, "destination")?);
    }
    Ok(op)
}

/// FHIR element names, optionally with the `_` of a primitive's extension companion.
fn is_element_name(name: &str) -> bool {
    let bare = name.strip_prefix('_').unwrap_or(name);
    bare.starts_with(|c: char| c.is_ascii_alphabetic())
        && bare.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The part's single `value[x]` member as (type suffix, value), if it has one.
fn value_x(part: &Map<String, Value>) -> Result<Option<(&str, &Value)>, String> {
    let mut found = part.iter().filter_map(|(k, v)| {
        let suffix = k.strip_prefix("value")?;
        suffix
            .starts_with(|c: char| c.is_ascii_uppercase())
            .then_some((suffix, v))
    });
    match (found.next(), found.next()) {
        (None, _) => Ok(None),
        (Some(one), None) => Ok(Some(one)),
        (Some((a, _)), Some((b, _))) => Err(format!(
            "a part has more than one value[x] (value{a} and value{b})"
        )),
    }
}

fn string_part<'p>(part: &'p Value, name: &str) -> Result<&'p str, String> {
    part.as_object()
        .and_then(|p| value_x(p).ok().flatten())
        .and_then(|(_, v)| v.as_str())
        .ok_or_else(|| format!("the '{name}' part must have a string value (e.g. valueString)"))
}

fn integer_part(part: &Value, name: &str) -> Result<usize, String> {
    part.as_object()
        .and_then(|p| value_x(p).ok().flatten())
        .and_then(|(_, v)| v.as_u64())
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| format!("the '{name}' part must be a non-negative integer (valueInteger)"))
}

/// The value[x] type suffix of a `value` part (`Quantity` for `valueQuantity`), if it has one.
pub(crate) fn value_suffix(part: &Value) -> Option<&str> {
    value_x(part.as_object()?)
        .ok()
        .flatten()
        .map(|(suffix, _)| suffix)
}

/// The key an element named `name` takes in an object of type `container`: a choice element
/// named by its base (`deceased`) is stored under its typed key (`deceasedBoolean`).
pub(crate) fn element_key(container: Option<&str>, name: &str, suffix: Option<&str>) -> String {
    if let (Some(td), Some(suffix)) = (type_def(container), suffix) {
        if !td.props.contains_key(name) {
            let typed = format!("{name}{suffix}");
            if td.props.contains_key(&typed) {
                return typed;
            }
        }
    }
    name.to_string()
}

/// The JSON to store for a `value` part whose element has type `ty` (when known): its value[x],
/// its resource, or an object built from its nested parts.
pub(crate) fn build_value(part: &Value, ty: Option<&str>) -> Result<Value, String> {
    build_at(part, ty, 0)
}

fn build_at(part: &Value, ty: Option<&str>, depth: usize) -> Result<Value, String> {
    if depth > MAX_PART_DEPTH {
        return Err(format!(
            "the value nests more than {MAX_PART_DEPTH} levels of parts"
        ));
    }
    let part = part.as_object().ok_or("a part must be a JSON object")?;
    let typed = value_x(part)?;
    let resource = part.get("resource");
    let nested = part.get("part");
    let present = [typed.is_some(), resource.is_some(), nested.is_some()]
        .iter()
        .filter(|p| **p)
        .count();
    if present != 1 {
        return Err(
            "a value must have exactly one of a value[x], a resource, or nested parts".to_string(),
        );
    }
    if let Some((suffix, value)) = typed {
        return coerce(suffix, value);
    }
    if let Some(resource) = resource {
        if resource
            .get("resourceType")
            .and_then(Value::as_str)
            .is_none()
        {
            return Err("a part's resource must be a resource with a resourceType".to_string());
        }
        return Ok(resource.clone());
    }
    let nested = nested
        .and_then(Value::as_array)
        .ok_or("nested parts must be an array")?;
    let mut out = Map::new();
    for sub in nested {
        let name = sub
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| is_element_name(n))
            .ok_or("every nested part must have a valid element name")?;
        let key = element_key(ty, name, value_suffix(sub));
        let def = element_def(ty, &key);
        let child_ty = def
            .map(|d| d.type_name.as_str())
            .filter(|t| *t != "ResourceList");
        let value = build_at(sub, child_ty, depth + 1)?;
        match out.get_mut(&key) {
            Some(Value::Array(items)) => items.push(value),
            Some(existing) => {
                let first = existing.take();
                *existing = Value::Array(vec![first, value]);
            }
            None if def.is_some_and(|d| d.array) => {
                out.insert(key, Value::Array(vec![value]));
            }
            None => {
                out.insert(key, value);
            }
        }
    }
    Ok(Value::Object(out))
}

/// Checks a value[x] against its type and converts primitives written as the wrong JSON kind
/// (`"5"` for an integer), so the resource holds numbers as numbers and booleans as booleans.
fn coerce(suffix: &str, value: &Value) -> Result<Value, String> {
    let wrong = |expected: &str| format!("value{suffix} must be {expected}");
    let Some(primitive) = table().primitives.get(&lower_first(suffix)) else {
        // Complex types (and types this table does not know) are stored as given.
        return match value {
            Value::Object(_) => Ok(value.clone()),
            _ => Err(wrong("a JSON object")),
        };
    };
    match (primitive.json.as_str(), value) {
        ("number", Value::Number(_))
        | ("boolean", Value::Bool(_))
        | ("string", Value::String(_)) => Ok(value.clone()),
        ("number", Value::String(s)) => serde_json::from_str::<Value>(s.trim())
            .ok()
            .filter(Value::is_number)
            .ok_or_else(|| wrong("a number")),
        ("boolean", Value::String(s)) => match s.as_str() {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(wrong("true or false")),
        },
        ("string", Value::Number(n)) => Ok(Value::String(n.to_string())),
        ("string", Value::Bool(b)) => Ok(Value::String(b.to_string())),
        ("number", _) => Err(wrong("a number")),
        ("boolean", _) => Err(wrong("true or false")),
        _ => Err(wrong("a string")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn op(parts: Value) -> Value {
        json!({"resourceType": "Parameters", "parameter": [{"name": "operation", "part": parts}]})
    }

    #[test]
    fn decodes_each_operation_type() {
        let doc = json!({"resourceType": "Parameters", "parameter": [
            {"name": "operation", "part": [
                {"name": "type", "valueCode": "add"},
                {"name": "path", "valueString": "Patient"},
                {"name": "name", "valueString": "birthDate"},
                {"name": "value", "valueDate": "1930-01-01"}]},
            {"name": "operation", "part": [
                {"name": "type", "valueCode": "insert"},
                {"name": "path", "valueString": "Patient.identifier"},
                {"name": "index", "valueInteger": 1},
                {"name": "value", "valueIdentifier": {"value": "x"}}]},
            {"name": "operation", "part": [
                {"name": "type", "valueCode": "delete"},
                {"name": "path", "valueString": "Patient.birthDate"}]},
            {"name": "operation", "part": [
                {"name": "type", "valueCode": "replace"},
                {"name": "path", "valueString": "Patient.active"},
                {"name": "value", "valueBoolean": true}]},
            {"name": "operation", "part": [
                {"name": "type", "valueCode": "move"},
                {"name": "path", "valueString": "Patient.identifier"},
                {"name": "source", "valueInteger": 3},
                {"name": "destination", "valueInteger": 0}]}
        ]});
        let ops = decode(&doc).unwrap();
        let kinds: Vec<_> = ops.iter().map(|o| o.kind).collect();
        assert_eq!(
            kinds,
            [
                Kind::Add,
                Kind::Insert,
                Kind::Delete,
                Kind::Replace,
                Kind::Move
            ]
        );
        assert_eq!(ops[0].name, Some("birthDate"));
        assert_eq!(ops[1].index, Some(1));
        assert_eq!((ops[4].source, ops[4].destination), (Some(3), Some(0)));
        assert!(decode(&json!({"resourceType": "Parameters"}))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn malformed_documents() {
        let cases = [
            (json!([]), "Parameters resource"),
            (json!({"resourceType": "Patient"}), "Parameters resource"),
            (
                json!({"resourceType": "Parameters", "parameter": {}}),
                "must be an array",
            ),
            (
                json!({"resourceType": "Parameters", "parameter": [{"name": "op", "part": []}]}),
                "must be named 'operation'",
            ),
            (
                op(json!([{"name": "path", "valueString": "Patient"}])),
                "'type' part is missing",
            ),
            (
                op(
                    json!([{"name": "type", "valueCode": "upsert"}, {"name": "path", "valueString": "Patient"}]),
                ),
                "unknown operation type 'upsert'",
            ),
            (
                op(
                    json!([{"name": "type", "valueCode": "delete"}, {"name": "path", "valueString": "Patient..x"}]),
                ),
                "not a supported FHIRPath expression",
            ),
            (
                op(
                    json!([{"name": "type", "valueCode": "replace"}, {"name": "path", "valueString": "Patient.a"}]),
                ),
                "'value' part is missing",
            ),
            (
                op(
                    json!([{"name": "type", "valueCode": "add"}, {"name": "path", "valueString": "Patient"},
                          {"name": "name", "valueString": "a.b"}, {"name": "value", "valueString": "x"}]),
                ),
                "not a valid element name",
            ),
            (
                op(
                    json!([{"name": "type", "valueCode": "insert"}, {"name": "path", "valueString": "Patient.a"},
                          {"name": "index", "valueInteger": -1}, {"name": "value", "valueString": "x"}]),
                ),
                "non-negative integer",
            ),
            (
                op(
                    json!([{"name": "type", "valueCode": "move"}, {"name": "path", "valueString": "Patient.a"},
                          {"name": "source", "valueInteger": 1}]),
                ),
                "'destination' part is missing",
            ),
            (
                op(
                    json!([{"name": "type", "valueCode": "delete"}, {"name": "path", "valueString": "Patient"},
                          {"name": "path", "valueString": "Patient"}]),
                ),
                "more than once",
            ),
            (
                op(
                    json!([{"name": "type", "valueCode": "delete"}, {"name": "where", "valueString": "x"}]),
                ),
                "unknown part 'where'",
            ),
            (
                op(
                    json!([{"name": "type", "valueCode": "replace"}, {"name": "path", "valueString": "Patient.a"},
                          {"name": "value", "valueString": "x", "valueCode": "y"}]),
                ),
                "more than one value[x]",
            ),
            (
                op(
                    json!([{"name": "type", "valueCode": "replace"}, {"name": "path", "valueString": "Patient.a"},
                          {"name": "value"}]),
                ),
                "exactly one of",
            ),
            (
                op(
                    json!([{"name": "type", "valueCode": "replace"}, {"name": "path", "valueString": "Patient.a"},
                          {"name": "value", "valueInteger": "many"}]),
                ),
                "must be a number",
            ),
            (
                op(
                    json!([{"name": "type", "valueCode": "replace"}, {"name": "path", "valueString": "Patient.a"},
                          {"name": "value", "valueHumanName": "Bob"}]),
                ),
                "JSON object",
            ),
        ];
        for (doc, fragment) in cases {
            let e = decode(&doc).unwrap_err();
            assert!(e.is_malformed(), "{doc}");
            assert!(e.message().contains(fragment), "{doc}: {e}");
        }
        let e = decode(&op(json!([{"name": "type", "valueCode": "replace"}]))).unwrap_err();
        assert!(e.message().starts_with("operation 1 (replace):"), "{e}");
    }

    #[test]
    fn values_are_coerced_to_their_json_kind() {
        let built = |part: Value| build_value(&part, None);
        assert_eq!(built(json!({"valueInteger": "5"})).unwrap(), json!(5));
        assert_eq!(built(json!({"valueDecimal": 1.5})).unwrap(), json!(1.5));
        assert_eq!(built(json!({"valueBoolean": "true"})).unwrap(), json!(true));
        assert_eq!(built(json!({"valueString": 12})).unwrap(), json!("12"));
        assert_eq!(
            built(json!({"valueDate": "2020-01-01"})).unwrap(),
            json!("2020-01-01")
        );
        assert!(built(json!({"valueBoolean": 1})).is_err());
        assert!(built(json!({"valueString": ["a"]})).is_err());
        assert!(built(json!({"valueDate": null})).is_err());
        assert_eq!(
            built(json!({"resource": {"resourceType": "Basic"}})).unwrap(),
            json!({"resourceType": "Basic"})
        );
        assert!(built(json!({"resource": {"id": "x"}})).is_err());
    }

    #[test]
    fn nested_parts_build_anonymous_types_using_the_table() {
        let part = json!({"name": "value", "part": [
            {"name": "name", "valueHumanName": {"text": "a name"}},
            {"name": "telecom", "valueContactPoint": {"system": "phone", "value": "1"}},
            {"name": "relationship", "part": [{"name": "text", "valueString": "friend"}]}
        ]});
        let built = build_value(&part, Some("Patient_Contact")).unwrap();
        assert_eq!(
            built,
            json!({
                "name": {"text": "a name"},
                "telecom": [{"system": "phone", "value": "1"}],
                "relationship": [{"text": "friend"}]
            })
        );
        // Without a type, only repetition makes an array.
        let part = json!({"part": [
            {"name": "given", "valueString": "a"},
            {"name": "given", "valueString": "b"},
            {"name": "family", "valueString": "c"}
        ]});
        assert_eq!(
            build_value(&part, None).unwrap(),
            json!({"given": ["a", "b"], "family": "c"})
        );
        // Choice elements inside an anonymous type take their typed key.
        let part = json!({"part": [{"name": "value", "valueQuantity": {"value": 1}}]});
        assert_eq!(
            build_value(&part, Some("Observation_Component")).unwrap(),
            json!({"valueQuantity": {"value": 1}})
        );
    }

    #[test]
    fn nested_parts_are_depth_capped() {
        let mut part = json!({"name": "x", "valueString": "leaf"});
        for _ in 0..(MAX_PART_DEPTH + 2) {
            part = json!({"name": "x", "part": [part]});
        }
        assert!(build_value(&part, None)
            .unwrap_err()
            .contains("nests more than"));
    }

    #[test]
    fn element_keys_follow_choice_types() {
        assert_eq!(
            element_key(Some("Patient"), "deceased", Some("Boolean")),
            "deceasedBoolean"
        );
        assert_eq!(
            element_key(Some("Patient"), "birthDate", Some("Date")),
            "birthDate"
        );
        assert_eq!(element_key(None, "deceased", Some("Boolean")), "deceased");
    }
}
