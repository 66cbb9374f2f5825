//! What the R4 element table says about JSON keys: the type of a child element, and the key an
//! element name is stored under. Patch navigation is typed by it, which is what lets `value`
//! find `valueQuantity` without guessing and lets a patch ask whether an element repeats.

use serde_json::{Map, Value};

use crate::elements::{table, ElementDef, TypeDef};

/// The table's type for a resource, from its `resourceType`.
pub(crate) fn resource_type_of(value: &Value) -> Option<&'static str> {
    table_type_name(value.get("resourceType")?.as_str()?)
}

/// The table's own copy of a type name, which outlives the value it was read from.
pub(crate) fn table_type_name(name: &str) -> Option<&'static str> {
    table().types.get_key_value(name).map(|(k, _)| k.as_str())
}

/// The table's definition of a complex type or resource.
pub(crate) fn type_def(ty: Option<&str>) -> Option<&'static TypeDef> {
    table().types.get(ty?)
}

/// The table's definition of element `key` of type `ty`.
pub(crate) fn element_def(ty: Option<&str>, key: &str) -> Option<&'static ElementDef> {
    type_def(ty)?.props.get(key)
}

/// The declared type of element `key` of `ty`, or, for contained resources and untyped data, the
/// `resourceType` of the value itself.
pub(crate) fn child_type(ty: Option<&str>, key: &str, value: &Value) -> Option<&'static str> {
    match element_def(ty, key) {
        Some(def) if def.type_name != "ResourceList" => Some(def.type_name.as_str()),
        _ => resource_type_of(value),
    }
}

/// True when `key` looks like the choice element `name[x]` expanded, e.g. `valueQuantity` for
/// `value`. Only a guess from the spelling; typed navigation uses [`is_declared_choice`].
fn is_choice_of(key: &str, name: &str) -> bool {
    key.strip_prefix(name)
        .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_uppercase()))
}

/// True when the table's element `key` is `name[x]` expanded: the suffix must spell the element's
/// own type, which tells `valueQuantity` (a Quantity) apart from `linkId` (a string, not an id).
fn is_declared_choice(key: &str, name: &str, def: &ElementDef) -> bool {
    is_choice_of(key, name)
        && key
            .get(name.len()..)
            .is_some_and(|suffix| suffix == def.type_name || lower_first(suffix) == def.type_name)
}

/// `DateTime` to `dateTime`: how a value[x] suffix names a primitive type.
pub(crate) fn lower_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_ascii_lowercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

/// The key under which element `name` is stored in `obj`, and whether it was found as a choice
/// expansion. The table decides when the type is known; otherwise the JSON's own keys do.
pub(crate) fn resolve_key(
    obj: &Map<String, Value>,
    ty: Option<&str>,
    name: &str,
) -> Option<(String, bool)> {
    if let Some(td) = type_def(ty) {
        if td.props.contains_key(name) {
            return obj.contains_key(name).then(|| (name.to_string(), false));
        }
        let mut declared_choices = td
            .props
            .iter()
            .filter(|(k, def)| is_declared_choice(k, name, def))
            .map(|(k, _)| k)
            .peekable();
        if declared_choices.peek().is_some() {
            return declared_choices
                .find(|k| obj.contains_key(k.as_str()))
                .map(|k| (k.clone(), true));
        }
        // Not in the table: only the exact key, since guessing choices would misread prefixes.
        return obj.contains_key(name).then(|| (name.to_string(), false));
    }
    if obj.contains_key(name) {
        return Some((name.to_string(), false));
    }
    let mut found = obj.keys().filter(|k| is_choice_of(k, name));
    match (found.next(), found.next()) {
        (Some(only), None) => Some((only.clone(), true)),
        _ => None,
    }
}
