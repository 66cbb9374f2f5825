//! FHIRPath Patch (<http://hl7.org/fhir/R4/fhirpatch.html>): add, insert, delete, replace and move
//! operations addressed by FHIRPath expressions.

use serde_json::{Map, Value};

use super::operation::{build_value, decode, element_key, value_suffix, Kind, Operation};
use super::{check_result, PatchError};
use crate::fhirpath::typed::{element_def, resolve_key};
use crate::fhirpath::{select, Expression, Seg, Selected};

/// Applies a FHIRPath Patch `Parameters` document to `resource`, all or nothing.
pub fn apply_fhirpath_patch(resource: &Value, parameters: &Value) -> Result<Value, PatchError> {
    let ops = decode(parameters)?;
    let mut doc = resource.clone();
    for (i, op) in ops.iter().enumerate() {
        apply(&mut doc, op).map_err(|e| e.in_operation(i + 1, op.kind.name()))?;
    }
    check_result(resource, &doc)?;
    Ok(doc)
}

fn apply(doc: &mut Value, op: &Operation<'_>) -> Result<(), PatchError> {
    match op.kind {
        Kind::Add => add(doc, op),
        Kind::Insert => insert(doc, op),
        Kind::Delete => delete(doc, op),
        Kind::Replace => replace(doc, op),
        Kind::Move => move_item(doc, op),
    }
}

fn targets(doc: &Value, path: &Expression, text: &str) -> Result<Vec<Selected>, PatchError> {
    select(doc, path).map_err(|e| PatchError::unprocessable(format!("path '{text}': {e}")))
}

fn exactly_one(doc: &Value, op: &Operation<'_>) -> Result<Selected, PatchError> {
    let mut found = targets(doc, &op.path, op.path_text)?;
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(PatchError::unprocessable(format!(
            "path '{}' selects nothing; exactly one element is required",
            op.path_text
        ))),
        n => Err(PatchError::unprocessable(format!(
            "path '{}' selects {n} elements; exactly one is required",
            op.path_text
        ))),
    }
}

/// For insert and move, whose path names a list: the one element holding it, and the list's
/// name. Selecting the holder rather than the items lets an empty or absent list be addressed.
fn list_holder(doc: &Value, op: &Operation<'_>) -> Result<(Selected, String), PatchError> {
    let Some((parent, name)) = op.path.split_last_member() else {
        return Err(PatchError::malformed(format!(
            "path '{}' must end with the name of a repeating element",
            op.path_text
        )));
    };
    let mut found = targets(doc, &parent, op.path_text)?;
    match found.len() {
        1 => Ok((found.remove(0), name.to_string())),
        n => Err(PatchError::unprocessable(format!(
            "path '{}' finds {n} elements that could hold '{name}'; exactly one is required",
            op.path_text
        ))),
    }
}

fn get<'v>(mut v: &'v Value, loc: &[Seg]) -> Option<&'v Value> {
    for seg in loc {
        v = match seg {
            Seg::Key(k) => v.as_object()?.get(k)?,
            Seg::Index(i) => v.as_array()?.get(*i)?,
        };
    }
    Some(v)
}

fn get_mut<'v>(mut v: &'v mut Value, loc: &[Seg]) -> Option<&'v mut Value> {
    for seg in loc {
        v = match seg {
            Seg::Key(k) => v.as_object_mut()?.get_mut(k)?,
            Seg::Index(i) => v.as_array_mut()?.get_mut(*i)?,
        };
    }
    Some(v)
}

fn object_at<'v>(
    doc: &'v mut Value,
    loc: &[Seg],
    text: &str,
    child: &str,
) -> Result<&'v mut Map<String, Value>, PatchError> {
    get_mut(doc, loc)
        .and_then(Value::as_object_mut)
        .ok_or_else(|| {
            PatchError::unprocessable(format!(
                "path '{text}' selects a primitive value, which cannot hold '{child}'"
            ))
        })
}

/// Applies the same edit to a primitive list's `_name` companion (which carries each item's id
/// and extensions, position by position) so the two stay aligned.
fn edit_companion(
    holder: &mut Map<String, Value>,
    key: &str,
    old_len: usize,
    edit: impl FnOnce(&mut Vec<Value>),
) {
    if key.starts_with('_') {
        return;
    }
    let companion = format!("_{key}");
    if let Some(Value::Array(items)) = holder.get_mut(&companion) {
        if items.len() != old_len {
            return;
        }
        edit(items);
        if items.iter().all(Value::is_null) {
            holder.shift_remove(&companion);
        }
    }
}

fn value_part<'p>(op: &Operation<'p>) -> Result<&'p Value, PatchError> {
    op.value
        .ok_or_else(|| PatchError::malformed("the 'value' part is missing"))
}

fn add(doc: &mut Value, op: &Operation<'_>) -> Result<(), PatchError> {
    let name = op
        .name
        .ok_or_else(|| PatchError::malformed("the 'name' part is missing"))?;
    let part = value_part(op)?;
    let target = exactly_one(doc, op)?;
    let key = element_key(target.ty, name, value_suffix(part));
    let def = element_def(target.ty, &key);
    let value_ty = def
        .map(|d| d.type_name.as_str())
        .filter(|t| *t != "ResourceList");
    let value = build_value(part, value_ty).map_err(PatchError::malformed)?;
    // The table is the only source of cardinality; an element it does not know is added as a
    // single value unless the resource already holds it as a list.
    let repeats = def.is_some_and(|d| d.array);
    let holder = object_at(doc, &target.loc, op.path_text, name)?;
    match holder.get_mut(&key) {
        None | Some(Value::Null) => {
            let stored = if repeats {
                Value::Array(vec![value])
            } else {
                value
            };
            holder.insert(key, stored);
        }
        Some(Value::Array(items)) => {
            let old_len = items.len();
            items.push(value);
            edit_companion(holder, &key, old_len, |c| c.push(Value::Null));
        }
        Some(existing) if repeats => {
            let first = existing.take();
            *existing = Value::Array(vec![first, value]);
        }
        Some(_) => {
            return Err(PatchError::unprocessable(format!(
                "'{key}' already has a value and does not repeat; use replace to change it"
            )))
        }
    }
    Ok(())
}

fn insert(doc: &mut Value, op: &Operation<'_>) -> Result<(), PatchError> {
    let part = value_part(op)?;
    let index = op
        .index
        .ok_or_else(|| PatchError::malformed("the 'index' part is missing"))?;
    let (target, name) = list_holder(doc, op)?;
    let holder = object_at(doc, &target.loc, op.path_text, &name)?;
    let key = resolve_key(holder, target.ty, &name)
        .map(|(k, _)| k)
        .unwrap_or_else(|| name.clone());
    let def = element_def(target.ty, &key);
    if def.is_some_and(|d| !d.array) {
        return Err(PatchError::unprocessable(format!(
            "'{key}' does not repeat, so insert cannot be used; use add or replace"
        )));
    }
    let value_ty = def
        .map(|d| d.type_name.as_str())
        .filter(|t| *t != "ResourceList");
    let value = build_value(part, value_ty).map_err(PatchError::malformed)?;
    let out_of_range = |len: usize| {
        PatchError::unprocessable(format!(
            "index {index} is out of range for '{key}', which has {len} item(s) (0 to {len} allowed)"
        ))
    };
    match holder.get_mut(&key) {
        None | Some(Value::Null) => {
            if index != 0 {
                return Err(out_of_range(0));
            }
            holder.insert(key, Value::Array(vec![value]));
        }
        Some(Value::Array(items)) => {
            let old_len = items.len();
            if index > old_len {
                return Err(out_of_range(old_len));
            }
            items.insert(index, value);
            edit_companion(holder, &key, old_len, |c| c.insert(index, Value::Null));
        }
        Some(_) => {
            return Err(PatchError::unprocessable(format!(
                "'{key}' holds a single value, not a list"
            )))
        }
    }
    Ok(())
}

fn move_item(doc: &mut Value, op: &Operation<'_>) -> Result<(), PatchError> {
    let (Some(source), Some(destination)) = (op.source, op.destination) else {
        return Err(PatchError::malformed(
            "the 'source' and 'destination' parts are required",
        ));
    };
    let (target, name) = list_holder(doc, op)?;
    let holder = object_at(doc, &target.loc, op.path_text, &name)?;
    let key = resolve_key(holder, target.ty, &name)
        .map(|(k, _)| k)
        .unwrap_or_else(|| name.clone());
    let Some(Value::Array(items)) = holder.get_mut(&key) else {
        return Err(PatchError::unprocessable(format!(
            "path '{}' does not select a list",
            op.path_text
        )));
    };
    let len = items.len();
    for (what, index) in [("source", source), ("destination", destination)] {
        if index >= len {
            return Err(PatchError::unprocessable(format!(
                "{what} index {index} is out of range for '{key}', which has {len} item(s)"
            )));
        }
    }
    let item = items.remove(source);
    items.insert(destination, item);
    edit_companion(holder, &key, len, |c| {
        let moved = c.remove(source);
        c.insert(destination, moved);
    });
    Ok(())
}

fn delete(doc: &mut Value, op: &Operation<'_>) -> Result<(), PatchError> {
    let mut found = targets(doc, &op.path, op.path_text)?;
    let target = match found.len() {
        0 => return Ok(()),
        1 => found.remove(0),
        n => {
            return Err(PatchError::unprocessable(format!(
                "path '{}' selects {n} elements; delete removes at most one",
                op.path_text
            )))
        }
    };
    if target.loc.is_empty() {
        return Err(PatchError::unprocessable(
            "cannot delete the resource itself",
        ));
    }
    // Remove the element, then any object or list left empty by its removal: FHIR forbids
    // empty elements.
    let mut loc = target.loc;
    loop {
        remove_one(doc, &loc);
        loc.pop();
        let now_empty = match get(doc, &loc) {
            Some(Value::Object(m)) => m.is_empty(),
            Some(Value::Array(a)) => a.is_empty(),
            _ => false,
        };
        if loc.is_empty() || !now_empty {
            return Ok(());
        }
    }
}

fn remove_one(doc: &mut Value, loc: &[Seg]) {
    let Some((last, parent_loc)) = loc.split_last() else {
        return;
    };
    match (last, get_mut(doc, parent_loc)) {
        (Seg::Key(k), Some(Value::Object(holder))) => {
            holder.shift_remove(k);
            // A deleted primitive takes its id and extensions with it.
            if !k.starts_with('_') {
                holder.shift_remove(&format!("_{k}"));
            }
        }
        (Seg::Index(i), Some(Value::Array(items))) if *i < items.len() => {
            let old_len = items.len();
            items.remove(*i);
            if let Some((Seg::Key(k), holder_loc)) = parent_loc.split_last() {
                if let Some(Value::Object(holder)) = get_mut(doc, holder_loc) {
                    edit_companion(holder, k, old_len, |c| {
                        c.remove(*i);
                    });
                }
            }
        }
        _ => {}
    }
}

fn replace(doc: &mut Value, op: &Operation<'_>) -> Result<(), PatchError> {
    let part = value_part(op)?;
    let target = exactly_one(doc, op)?;
    let Some((last, parent_loc)) = target.loc.split_last() else {
        return Err(PatchError::unprocessable(
            "cannot replace the resource itself",
        ));
    };
    let suffix = value_suffix(part);
    let value = build_value(part, target.ty).map_err(PatchError::malformed)?;
    // A choice element reached by its base name takes the new value's type: replacing
    // `Observation.value` (a valueQuantity) with a valueString stores valueString.
    let renamed = match (&target.choice_base, suffix, last) {
        (Some(base), Some(suffix), Seg::Key(old)) => {
            let new_key = format!("{base}{suffix}");
            (new_key != *old).then(|| (old.clone(), new_key))
        }
        _ => None,
    };
    match renamed {
        None => {
            let slot = get_mut(doc, &target.loc).ok_or_else(|| {
                PatchError::unprocessable(format!("path '{}' could not be resolved", op.path_text))
            })?;
            *slot = value;
        }
        Some((old_key, new_key)) => {
            let holder = object_at(doc, parent_loc, op.path_text, &new_key)?;
            let old_companion = format!("_{old_key}");
            let entries = std::mem::take(holder);
            let mut value = Some(value);
            for (k, v) in entries {
                if k == old_key {
                    if let Some(new_value) = value.take() {
                        holder.insert(new_key.clone(), new_value);
                    }
                } else if k != old_companion && k != new_key {
                    // A stale value under the new key (two types of one choice, which is invalid
                    // anyway) must not overwrite the replacement.
                    holder.insert(k, v);
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// One operation's parameter entry, from (part name, part body) pairs.
    fn operation(parts: &[(&str, Value)]) -> Value {
        let parts: Vec<Value> = parts
            .iter()
            .map(|(name, body)| {
                let mut part = body.as_object().cloned().unwrap_or_default();
                part.shift_insert(0, "name".to_string(), json!(name));
                Value::Object(part)
            })
            .collect();
        json!({"name": "operation", "part": parts})
    }

    fn params(ops: Vec<Value>) -> Value {
        json!({"resourceType": "Parameters", "parameter": ops})
    }

    fn add_op(path: &str, name: &str, value: Value) -> Value {
        operation(&[
            ("type", json!({"valueCode": "add"})),
            ("path", json!({"valueString": path})),
            ("name", json!({"valueString": name})),
            ("value", value),
        ])
    }

    fn insert_op(path: &str, index: i64, value: Value) -> Value {
        operation(&[
            ("type", json!({"valueCode": "insert"})),
            ("path", json!({"valueString": path})),
            ("index", json!({"valueInteger": index})),
            ("value", value),
        ])
    }

    fn delete_op(path: &str) -> Value {
        operation(&[
            ("type", json!({"valueCode": "delete"})),
            ("path", json!({"valueString": path})),
        ])
    }

    fn replace_op(path: &str, value: Value) -> Value {
        operation(&[
            ("type", json!({"valueCode": "replace"})),
            ("path", json!({"valueString": path})),
            ("value", value),
        ])
    }

    fn move_op(path: &str, source: i64, destination: i64) -> Value {
        operation(&[
            ("type", json!({"valueCode": "move"})),
            ("path", json!({"valueString": path})),
            ("source", json!({"valueInteger": source})),
            ("destination", json!({"valueInteger": destination})),
        ])
    }

    fn ok(resource: &Value, ops: Vec<Value>) -> Value {
        apply_fhirpath_patch(resource, &params(ops)).unwrap()
    }

    fn err(resource: &Value, ops: Vec<Value>) -> PatchError {
        let before = resource.clone();
        let e = apply_fhirpath_patch(resource, &params(ops)).unwrap_err();
        assert_eq!(*resource, before);
        e
    }

    fn patient() -> Value {
        json!({"resourceType": "Patient", "id": "p1", "birthDate": "1920-01-01"})
    }

    fn identifiers(n: usize) -> Value {
        let items: Vec<Value> = (1..=n)
            .map(|i| json!({"system": "http://example.org", "value": format!("value {i}")}))
            .collect();
        json!({"resourceType": "Patient", "identifier": items})
    }

    fn identifier_values(resource: &Value) -> Vec<String> {
        resource["identifier"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["value"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn empty_patch_changes_nothing() {
        assert_eq!(ok(&patient(), vec![]), patient());
    }

    #[test]
    fn replace_primitive_with_or_without_type_name() {
        let out = ok(
            &patient(),
            vec![replace_op(
                "Patient.birthDate",
                json!({"valueDate": "1930-01-01"}),
            )],
        );
        assert_eq!(out["birthDate"], json!("1930-01-01"));
        let out = ok(
            &patient(),
            vec![replace_op("birthDate", json!({"valueDate": "1931-01-01"}))],
        );
        assert_eq!(out["birthDate"], json!("1931-01-01"));
    }

    #[test]
    fn replace_nested_and_complex() {
        let p = json!({"resourceType": "Patient",
            "contact": [{"name": {"text": "a name"}, "gender": "male"}],
            "maritalStatus": {"id": "1", "text": "married"}});
        let out = ok(
            &p,
            vec![
                replace_op("Patient.contact[0].gender", json!({"valueCode": "female"})),
                replace_op(
                    "Patient.contact[0].name.text",
                    json!({"valueString": "the name"}),
                ),
                replace_op(
                    "Patient.maritalStatus",
                    json!({"valueCodeableConcept": {"id": "2", "text": "not married"}}),
                ),
            ],
        );
        assert_eq!(
            out["contact"],
            json!([{"name": {"text": "the name"}, "gender": "female"}])
        );
        assert_eq!(
            out["maritalStatus"],
            json!({"id": "2", "text": "not married"})
        );
    }

    #[test]
    fn replace_choice_takes_the_new_type() {
        let obs = json!({"resourceType": "Observation", "status": "final",
            "valueQuantity": {"value": 1}, "_valueQuantity": {"id": "x"}, "note": [{"text": "n"}]});
        let out = ok(
            &obs,
            vec![replace_op(
                "Observation.value",
                json!({"valueString": "high"}),
            )],
        );
        assert_eq!(
            out,
            json!({"resourceType": "Observation", "status": "final",
            "valueString": "high", "note": [{"text": "n"}]})
        );
        let keys: Vec<_> = out.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["resourceType", "status", "valueString", "note"]);
        let out = ok(
            &obs,
            vec![replace_op(
                "Observation.value.value",
                json!({"valueDecimal": 2.5}),
            )],
        );
        assert_eq!(out["valueQuantity"]["value"], json!(2.5));
    }

    #[test]
    fn replace_requires_exactly_one() {
        let p =
            json!({"resourceType": "Patient", "name": [{"given": ["a", "b"]}, {"given": ["c"]}]});
        let e = err(
            &p,
            vec![
                replace_op("Patient.name[1].given[0]", json!({"valueString": "x"})),
                replace_op("Patient.name.given", json!({"valueString": "x"})),
            ],
        );
        assert_eq!(
            e.message(),
            "operation 2 (replace): path 'Patient.name.given' selects 3 elements; exactly one is required"
        );
        assert!(!e.is_malformed());
        let e = err(
            &p,
            vec![replace_op(
                "Patient.birthDate",
                json!({"valueDate": "2000"}),
            )],
        );
        assert!(e.message().contains("selects nothing"), "{e}");
        let e = err(&p, vec![replace_op("Patient", json!({"valueString": "x"}))]);
        assert!(e.message().contains("resource itself"), "{e}");
    }

    #[test]
    fn delete_primitive_nested_complex_and_missing() {
        let out = ok(&patient(), vec![delete_op("Patient.birthDate")]);
        assert_eq!(out, json!({"resourceType": "Patient", "id": "p1"}));
        // Deleting something absent is not an error.
        assert_eq!(ok(&out, vec![delete_op("Patient.birthDate")]), out);
        let p = json!({"resourceType": "Patient",
            "contact": [{"name": {"text": "a name"}, "gender": "male"}],
            "maritalStatus": {"text": "married"}});
        let out = ok(
            &p,
            vec![
                delete_op("Patient.contact[0].name.text"),
                delete_op("Patient.maritalStatus"),
            ],
        );
        assert_eq!(
            out,
            json!({"resourceType": "Patient", "contact": [{"gender": "male"}]})
        );
        // Emptied parents go too, all the way up.
        let out = ok(&out, vec![delete_op("Patient.contact[0].gender")]);
        assert_eq!(out, json!({"resourceType": "Patient"}));
    }

    #[test]
    fn delete_list_items() {
        let p = identifiers(3);
        assert_eq!(
            identifier_values(&ok(&p, vec![delete_op("Patient.identifier[0]")])),
            ["value 2", "value 3"]
        );
        assert_eq!(
            identifier_values(&ok(&p, vec![delete_op("Patient.identifier[1]")])),
            ["value 1", "value 3"]
        );
        assert_eq!(
            identifier_values(&ok(&p, vec![delete_op("Patient.identifier[2]")])),
            ["value 1", "value 2"]
        );
        let e = err(&p, vec![delete_op("Patient.identifier")]);
        assert!(
            e.message()
                .contains("selects 3 elements; delete removes at most one"),
            "{e}"
        );
        let e = err(&p, vec![delete_op("Patient")]);
        assert!(e.message().contains("resource itself"), "{e}");
    }

    #[test]
    fn delete_with_where_and() {
        let p = json!({"resourceType": "Patient", "telecom": [
            {"system": "phone", "value": "1", "use": "work"},
            {"system": "phone", "value": "2", "use": "home"},
            {"system": "email", "value": "3", "use": "home"}]});
        let out = ok(
            &p,
            vec![delete_op(
                "Patient.telecom.where(system='phone' and use='home')",
            )],
        );
        let values: Vec<_> = out["telecom"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["value"].clone())
            .collect();
        assert_eq!(values, [json!("1"), json!("3")]);
        let e = err(&p, vec![delete_op("Patient.telecom.where(use='home')")]);
        assert!(e.message().contains("selects 2 elements"), "{e}");
    }

    #[test]
    fn delete_keeps_primitive_extensions_aligned() {
        let p = json!({"resourceType": "Patient", "name": [{
            "given": ["a", "b", "c"],
            "_given": [null, {"extension": [{"url": "u", "valueString": "x"}]}, null]}],
            "birthDate": "2000-01-01", "_birthDate": {"id": "d"}});
        let out = ok(
            &p,
            vec![
                delete_op("Patient.name.given[0]"),
                delete_op("Patient.birthDate"),
            ],
        );
        assert_eq!(
            out,
            json!({"resourceType": "Patient", "name": [{
            "given": ["b", "c"],
            "_given": [{"extension": [{"url": "u", "valueString": "x"}]}, null]}]})
        );
        let out = ok(&out, vec![delete_op("Patient.name.given[0]")]);
        assert_eq!(
            out,
            json!({"resourceType": "Patient", "name": [{"given": ["c"]}]})
        );
    }

    #[test]
    fn add_primitive_complex_and_nested() {
        let p = json!({"resourceType": "Patient", "contact": [{"name": {"text": "a name"}}]});
        let out = ok(
            &p,
            vec![
                add_op("Patient", "birthDate", json!({"valueDate": "1930-01-01"})),
                add_op(
                    "Patient",
                    "maritalStatus",
                    json!({"valueCodeableConcept": {"text": "married"}}),
                ),
                add_op("Patient.contact[0]", "gender", json!({"valueCode": "male"})),
                add_op("Patient", "active", json!({"valueBoolean": true})),
                add_op("Patient", "multipleBirth", json!({"valueInteger": 2})),
            ],
        );
        assert_eq!(
            out,
            json!({"resourceType": "Patient",
            "contact": [{"name": {"text": "a name"}, "gender": "male"}],
            "birthDate": "1930-01-01",
            "maritalStatus": {"text": "married"},
            "active": true,
            "multipleBirthInteger": 2})
        );
    }

    #[test]
    fn add_creates_lists_for_repeating_elements() {
        let out = ok(
            &json!({"resourceType": "Patient"}),
            vec![add_op(
                "Patient",
                "identifier",
                json!({"valueIdentifier": {"value": "value 3"}}),
            )],
        );
        assert_eq!(out["identifier"], json!([{"value": "value 3"}]));
        let out = ok(
            &identifiers(2),
            vec![add_op(
                "Patient",
                "identifier",
                json!({"valueIdentifier": {"system": "http://example.org", "value": "value 3"}}),
            )],
        );
        assert_eq!(identifier_values(&out), ["value 1", "value 2", "value 3"]);
        // An element the table does not know follows the resource's own shape.
        let b = json!({"resourceType": "Unknown", "things": [1]});
        assert_eq!(
            ok(
                &b,
                vec![add_op("Unknown", "things", json!({"valueInteger": 2}))]
            )["things"],
            json!([1, 2])
        );
        assert_eq!(
            ok(
                &b,
                vec![add_op("Unknown", "other", json!({"valueInteger": 2}))]
            )["other"],
            json!(2)
        );
    }

    #[test]
    fn add_anonymous_type_from_nested_parts() {
        let value = json!({"part": [
            {"name": "name", "valueHumanName": {"text": "a name"}},
            {"name": "telecom", "valueContactPoint": {"system": "phone", "value": "1"}},
            {"name": "telecom", "valueContactPoint": {"system": "email", "value": "e"}},
            {"name": "gender", "valueCode": "female"}
        ]});
        let out = ok(
            &json!({"resourceType": "Patient"}),
            vec![add_op("Patient", "contact", value)],
        );
        assert_eq!(
            out,
            json!({"resourceType": "Patient", "contact": [{
            "name": {"text": "a name"},
            "telecom": [{"system": "phone", "value": "1"}, {"system": "email", "value": "e"}],
            "gender": "female"}]})
        );
    }

    #[test]
    fn consecutive_operations_see_earlier_results() {
        let p = json!({"resourceType": "Patient", "contact": [{"name": {"text": "a"}}]});
        let out = ok(
            &p,
            vec![
                add_op("Patient.contact[0]", "gender", json!({"valueCode": "male"})),
                add_op(
                    "Patient",
                    "contact",
                    json!({"part": [{"name": "name", "valueHumanName": {"text": "b"}}]}),
                ),
                add_op(
                    "Patient.contact[1]",
                    "gender",
                    json!({"valueCode": "female"}),
                ),
            ],
        );
        assert_eq!(
            out["contact"],
            json!([
            {"name": {"text": "a"}, "gender": "male"},
            {"name": {"text": "b"}, "gender": "female"}])
        );
    }

    #[test]
    fn add_errors() {
        let p = json!({"resourceType": "Patient", "birthDate": "2000-01-01",
            "identifier": [{"use": "official", "value": "123"}], "name": [{}, {}]});
        let e = err(
            &p,
            vec![add_op(
                "Patient.identifier.where(use = 'official').period",
                "end",
                json!({"valueDate": "2021-12-01"}),
            )],
        );
        assert_eq!(
            e.message(),
            "operation 1 (add): path 'Patient.identifier.where(use = 'official').period' selects nothing; exactly one element is required"
        );
        let e = err(
            &p,
            vec![add_op(
                "Patient",
                "birthDate",
                json!({"valueDate": "2001-01-01"}),
            )],
        );
        assert!(e.message().contains("does not repeat; use replace"), "{e}");
        let e = err(
            &p,
            vec![add_op(
                "Patient.birthDate",
                "x",
                json!({"valueString": "y"}),
            )],
        );
        assert!(e.message().contains("primitive"), "{e}");
        let e = err(
            &p,
            vec![add_op("Patient.name", "text", json!({"valueString": "y"}))],
        );
        assert!(e.message().contains("selects 2 elements"), "{e}");
    }

    #[test]
    fn insert_in_list() {
        let value =
            json!({"valueIdentifier": {"system": "http://example.org", "value": "value 3"}});
        let p = identifiers(2);
        assert_eq!(
            identifier_values(&ok(
                &p,
                vec![insert_op("Patient.identifier", 1, value.clone())]
            )),
            ["value 1", "value 3", "value 2"]
        );
        assert_eq!(
            identifier_values(&ok(
                &p,
                vec![insert_op("Patient.identifier", 0, value.clone())]
            )),
            ["value 3", "value 1", "value 2"]
        );
        assert_eq!(
            identifier_values(&ok(&p, vec![insert_op("identifier", 2, value.clone())])),
            ["value 1", "value 2", "value 3"]
        );
        let out = ok(
            &json!({"resourceType": "Patient"}),
            vec![insert_op("Patient.identifier", 0, value.clone())],
        );
        assert_eq!(identifier_values(&out), ["value 3"]);
        let e = err(&p, vec![insert_op("Patient.identifier", 3, value.clone())]);
        assert!(e.message().contains("index 3 is out of range"), "{e}");
        assert!(!e.is_malformed());
        let e = err(
            &patient(),
            vec![insert_op(
                "Patient.birthDate",
                0,
                json!({"valueDate": "2000"}),
            )],
        );
        assert!(e.message().contains("does not repeat"), "{e}");
        let e = err(&p, vec![insert_op("Patient.identifier[0]", 0, value)]);
        assert!(e.is_malformed(), "{e}");
    }

    #[test]
    fn insert_keeps_primitive_extensions_aligned() {
        let p =
            json!({"resourceType": "Patient", "name": [{"given": ["a"], "_given": [{"id": "g"}]}]});
        let out = ok(
            &p,
            vec![insert_op(
                "Patient.name[0].given",
                0,
                json!({"valueString": "z"}),
            )],
        );
        assert_eq!(
            out["name"][0],
            json!({"given": ["z", "a"], "_given": [null, {"id": "g"}]})
        );
    }

    #[test]
    fn move_reorders_lists() {
        let p = identifiers(4);
        type Case<'a> = (&'a [(i64, i64)], [&'a str; 4]);
        let cases: [Case; 6] = [
            (&[(3, 1)], ["value 1", "value 4", "value 2", "value 3"]),
            (&[(3, 0)], ["value 4", "value 1", "value 2", "value 3"]),
            (&[(3, 2)], ["value 1", "value 2", "value 4", "value 3"]),
            (&[(0, 3)], ["value 2", "value 3", "value 4", "value 1"]),
            (
                &[(1, 0), (2, 1)],
                ["value 2", "value 3", "value 1", "value 4"],
            ),
            (
                &[(3, 0), (3, 1), (3, 2)],
                ["value 4", "value 3", "value 2", "value 1"],
            ),
        ];
        for (moves, expected) in cases {
            let ops = moves
                .iter()
                .map(|(s, d)| move_op("Patient.identifier", *s, *d))
                .collect();
            assert_eq!(identifier_values(&ok(&p, ops)), expected, "{moves:?}");
        }
    }

    #[test]
    fn move_errors() {
        let p = identifiers(2);
        let e = err(&p, vec![move_op("Patient.identifier", 2, 0)]);
        assert!(
            e.message().contains("source index 2 is out of range"),
            "{e}"
        );
        let e = err(&p, vec![move_op("Patient.identifier", 0, 2)]);
        assert!(e.message().contains("destination index 2"), "{e}");
        let e = err(&p, vec![move_op("Patient.name", 0, 0)]);
        assert!(e.message().contains("does not select a list"), "{e}");
    }

    #[test]
    fn failure_leaves_input_unchanged() {
        let p = identifiers(2);
        // `err` asserts the input is unchanged; the first operation succeeds before the second fails.
        let e = err(
            &p,
            vec![
                delete_op("Patient.identifier[0]"),
                move_op("Patient.identifier", 5, 0),
            ],
        );
        assert!(e.message().starts_with("operation 2 (move)"), "{e}");
    }

    #[test]
    fn refuses_identity_changes() {
        let e = err(
            &patient(),
            vec![replace_op("Patient.id", json!({"valueId": "p2"}))],
        );
        assert!(!e.is_malformed());
        assert!(e.message().contains("'id'"), "{e}");
        let e = err(&patient(), vec![delete_op("Patient.id")]);
        assert!(e.message().contains("'id'"), "{e}");
        let e = err(
            &json!({"resourceType": "Patient"}),
            vec![add_op("Patient", "id", json!({"valueId": "x"}))],
        );
        assert!(e.message().contains("'id'"), "{e}");
        let e = err(
            &patient(),
            vec![add_op(
                "Patient",
                "resourceType",
                json!({"valueString": "Group"}),
            )],
        );
        assert!(e.message().contains("resourceType"), "{e}");
        let e = err(
            &patient(),
            vec![replace_op(
                "Patient.resourceType",
                json!({"valueString": "Group"}),
            )],
        );
        assert!(
            e.message().contains("resourceType") || e.message().contains("selects nothing"),
            "{e}"
        );
    }

    #[test]
    fn malformed_and_unprocessable_are_told_apart() {
        let e = err(&patient(), vec![delete_op("Patient.name.exists()")]);
        assert!(e.is_malformed());
        assert!(
            e.message()
                .contains("unsupported FHIRPath function 'exists()'"),
            "{e}"
        );
        let e = err(&patient(), vec![delete_op("Observation.status")]);
        assert!(!e.is_malformed());
        assert!(e.message().contains("resource is a Patient"), "{e}");
        // A malformed later operation is reported even if an earlier one would fail to apply.
        let e = err(
            &patient(),
            vec![
                replace_op("Patient.gender", json!({"valueCode": "male"})),
                delete_op("Patient.["),
            ],
        );
        assert!(e.is_malformed());
        assert!(e.message().starts_with("operation 2 (delete)"), "{e}");
    }

    #[test]
    fn contained_resources_can_be_patched_and_added() {
        let p = json!({"resourceType": "Patient", "contained": [
            {"resourceType": "Practitioner", "id": "pr", "name": [{"family": "A"}]}]});
        let out = ok(
            &p,
            vec![
                replace_op(
                    "Patient.contained.where(id = 'pr').name.family",
                    json!({"valueString": "B"}),
                ),
                add_op(
                    "Patient",
                    "contained",
                    json!({"resource": {"resourceType": "Organization", "id": "o"}}),
                ),
            ],
        );
        assert_eq!(out["contained"][0]["name"][0]["family"], json!("B"));
        assert_eq!(
            out["contained"][1],
            json!({"resourceType": "Organization", "id": "o"})
        );
    }
}
