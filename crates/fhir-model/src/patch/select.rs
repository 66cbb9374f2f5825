//! Evaluates a parsed FHIRPath subset against a resource, yielding where each selected element
//! lives (not just its value) so patch operations can change it in place.
//!
//! The R4 element table types each node as navigation proceeds; that is what lets `value` find
//! `valueQuantity` without guessing, and lets callers ask whether an element repeats.

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::fhirpath::{Expr, Literal, Path, Step};
use crate::json_equal::json_equal;
use crate::elements::{table, ElementDef, TypeDef};

/// One step of a location inside a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg {
    /// A member of an object.
    Key(String),
    /// A position in an array.
    Index(usize),
}

/// A selected element: where it is, what it holds, and what the element table says it is.
#[derive(Debug, Clone)]
pub(crate) struct Node<'a> {
    /// Path from the resource root to the element.
    pub loc: Vec<Seg>,
    /// The element's current value.
    pub value: &'a Value,
    /// Type name from the element table (`HumanName`, `Patient_Contact`, `string`), when known.
    pub ty: Option<&'static str>,
    /// The base name used to reach a choice element (`value` for `valueQuantity`), so a replace
    /// can rename the key when the new value has another type.
    pub choice_base: Option<String>,
}

/// The table's type for a resource, from its `resourceType`.
pub(crate) fn resource_type_of(value: &Value) -> Option<&'static str> {
    let name = value.get("resourceType")?.as_str()?;
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

/// Evaluates a top-level path against the resource.
pub(crate) fn select<'a>(resource: &'a Value, path: &Path) -> Result<Vec<Node<'a>>, String> {
    if let Some(root) = &path.root {
        match resource.get("resourceType").and_then(Value::as_str) {
            Some(rt) if rt == root => {}
            Some(rt) => {
                return Err(format!(
                    "the path starts with '{root}' but the resource is a {rt}"
                ))
            }
            None => {
                return Err(format!(
                    "the path starts with '{root}' but the resource has no resourceType"
                ))
            }
        }
    }
    let start = Node {
        loc: Vec::new(),
        value: resource,
        ty: resource_type_of(resource),
        choice_base: None,
    };
    apply_steps(vec![start], &path.steps)
}

fn apply_steps<'a>(mut nodes: Vec<Node<'a>>, steps: &[Step]) -> Result<Vec<Node<'a>>, String> {
    for step in steps {
        nodes = match step {
            Step::Member(name) => nodes.iter().flat_map(|n| children(n, name)).collect(),
            Step::Index(i) => nodes.into_iter().nth(*i).into_iter().collect(),
            Step::First => nodes.into_iter().next().into_iter().collect(),
            Step::Last => nodes.into_iter().last().into_iter().collect(),
            Step::Where(criteria) => {
                let mut kept = Vec::new();
                for node in nodes {
                    if truthy(&evaluate(criteria, &node)?)? {
                        kept.push(node);
                    }
                }
                kept
            }
        };
    }
    Ok(nodes)
}

/// The child elements `name` of a node, one per repeat; JSON nulls (placeholders that keep
/// primitive arrays aligned with their `_name` extension arrays) are not elements.
fn children<'a>(node: &Node<'a>, name: &str) -> Vec<Node<'a>> {
    let Some(obj) = node.value.as_object() else {
        return Vec::new();
    };
    let Some((key, choice)) = resolve_key(obj, node.ty, name) else {
        return Vec::new();
    };
    let Some(child) = obj.get(&key) else {
        return Vec::new();
    };
    let make = |loc: Vec<Seg>, value: &'a Value| Node {
        loc,
        value,
        ty: child_type(node.ty, &key, value),
        choice_base: choice.then(|| name.to_string()),
    };
    let mut base = node.loc.clone();
    base.push(Seg::Key(key.clone()));
    match child {
        Value::Null => Vec::new(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .filter(|(_, v)| !v.is_null())
            .map(|(i, v)| {
                let mut loc = base.clone();
                loc.push(Seg::Index(i));
                make(loc, v)
            })
            .collect(),
        single => vec![make(base, single)],
    }
}

/// Evaluates criteria for one item, giving a FHIRPath collection.
fn evaluate<'a>(expr: &Expr, item: &Node<'a>) -> Result<Vec<Cow<'a, Value>>, String> {
    let boolean = |b: bool| Ok(vec![Cow::Owned(Value::Bool(b))]);
    match expr {
        Expr::Path(path) => Ok(apply_steps(vec![item.clone()], &path.steps)?
            .into_iter()
            .map(|n| Cow::Borrowed(n.value))
            .collect()),
        Expr::Literal(literal) => Ok(vec![Cow::Owned(literal_value(literal)?)]),
        Expr::Compare {
            left,
            right,
            negated,
        } => {
            let (l, r) = (evaluate(left, item)?, evaluate(right, item)?);
            // FHIRPath: comparing with an empty collection gives empty, which where() treats as
            // false.
            if l.is_empty() || r.is_empty() {
                return Ok(Vec::new());
            }
            let equal = l.len() == r.len() && l.iter().zip(&r).all(|(a, b)| json_equal(a, b));
            boolean(equal != *negated)
        }
        Expr::And(operands) => {
            for operand in operands {
                if !truthy(&evaluate(operand, item)?)? {
                    return boolean(false);
                }
            }
            boolean(true)
        }
        Expr::Or(operands) => {
            for operand in operands {
                if truthy(&evaluate(operand, item)?)? {
                    return boolean(true);
                }
            }
            boolean(false)
        }
    }
}

fn literal_value(literal: &Literal) -> Result<Value, String> {
    Ok(match literal {
        Literal::String(s) => Value::String(s.clone()),
        Literal::Bool(b) => Value::Bool(*b),
        Literal::Number(n) => {
            serde_json::from_str(n).map_err(|_| format!("'{n}' is not a valid number"))?
        }
    })
}

/// FHIRPath's boolean reading of a collection: empty is false, a single boolean is itself, any
/// other single item is true, and more than one item is an error.
fn truthy(collection: &[Cow<'_, Value>]) -> Result<bool, String> {
    match collection {
        [] => Ok(false),
        [single] => Ok(single.as_bool().unwrap_or(true)),
        many => Err(format!(
            "where() criteria gave {} values for one item; they must give a single boolean",
            many.len()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::super::fhirpath::parse_path;
    use super::*;
    use serde_json::json;

    fn patient() -> Value {
        json!({
            "resourceType": "Patient",
            "id": "p1",
            "active": true,
            "identifier": [
                {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9000000009"},
                {"system": "http://example.org/mrn", "value": "M1", "type": {"coding": [{"code": "MR"}]}}
            ],
            "name": [
                {"use": "official", "family": "Chalmers", "given": ["Peter", "James"]},
                {"use": "usual", "given": ["Jim"]}
            ],
            "telecom": [
                {"system": "phone", "value": "1", "use": "work", "rank": 2},
                {"system": "phone", "value": "2", "use": "home", "rank": 1},
                {"system": "email", "value": "3", "use": "home"}
            ],
            "deceasedBoolean": false,
            "contained": [{"resourceType": "Observation", "id": "o", "valueQuantity": {"value": 1}}]
        })
    }

    fn locs(resource: &Value, path: &str) -> Vec<Vec<Seg>> {
        let parsed = parse_path(path).unwrap();
        select(resource, &parsed)
            .unwrap()
            .into_iter()
            .map(|n| n.loc)
            .collect()
    }

    fn key(k: &str) -> Seg {
        Seg::Key(k.to_string())
    }

    #[test]
    fn navigation_flattens_collections() {
        let p = patient();
        assert_eq!(locs(&p, "Patient.name.given").len(), 3);
        assert_eq!(
            locs(&p, "Patient.name.given[2]"),
            [vec![
                key("name"),
                Seg::Index(1),
                key("given"),
                Seg::Index(0)
            ]]
        );
        assert_eq!(locs(&p, "name.given"), locs(&p, "Patient.name.given"));
        assert_eq!(locs(&p, "Patient"), [Vec::<Seg>::new()]);
        assert_eq!(locs(&p, "Patient.active"), [vec![key("active")]]);
        assert!(locs(&p, "Patient.birthDate").is_empty());
        assert!(locs(&p, "Patient.name[5]").is_empty());
        assert_eq!(
            locs(&p, "Patient.name.first().given.last()"),
            [vec![
                key("name"),
                Seg::Index(0),
                key("given"),
                Seg::Index(1)
            ]]
        );
    }

    #[test]
    fn where_filters_with_and_bool_and_number() {
        let p = patient();
        assert_eq!(
            locs(&p, "Patient.telecom.where(system='phone' and use='home')"),
            [vec![key("telecom"), Seg::Index(1)]]
        );
        assert_eq!(
            locs(
                &p,
                "Patient.identifier.where(system = 'https://fhir.nhs.uk/Id/nhs-number').value"
            ),
            [vec![key("identifier"), Seg::Index(0), key("value")]]
        );
        assert_eq!(locs(&p, "telecom.where(rank = 1.0)").len(), 1);
        assert_eq!(locs(&p, "telecom.where(use != 'home')").len(), 1);
        assert_eq!(
            locs(&p, "telecom.where(use = 'work' or system = 'email')").len(),
            2
        );
        assert_eq!(locs(&p, "Patient.where(active = true)").len(), 1);
        assert_eq!(locs(&p, "Patient.where(active)").len(), 1);
        assert!(locs(&p, "Patient.where(active = false)").is_empty());
        assert_eq!(
            locs(&p, "identifier.where(type.coding.code = 'MR')"),
            [vec![key("identifier"), Seg::Index(1)]]
        );
        assert_eq!(locs(&p, "name.given.where($this = 'Jim')").len(), 1);
        // A missing element compares as empty, which does not match.
        assert!(locs(&p, "telecom.where(period = 'x')").is_empty());
    }

    #[test]
    fn multi_valued_criteria_are_an_error() {
        let p = patient();
        let parsed = parse_path("Patient.name.where(given)").unwrap();
        assert!(select(&p, &parsed).unwrap_err().contains("single boolean"));
    }

    #[test]
    fn choice_elements_and_contained_resources() {
        let p = patient();
        let parsed = parse_path("Patient.deceased").unwrap();
        let nodes = select(&p, &parsed).unwrap();
        assert_eq!(nodes.len(), 1);
        assert_eq!(nodes[0].loc, [key("deceasedBoolean")]);
        assert_eq!(nodes[0].choice_base.as_deref(), Some("deceased"));
        assert_eq!(nodes[0].ty, Some("boolean"));
        let parsed = parse_path("Patient.contained[0].value.value").unwrap();
        let nodes = select(&p, &parsed).unwrap();
        assert_eq!(nodes.len(), 1);
        assert_eq!(nodes[0].value, &json!(1));
        let parsed = parse_path("Patient.contained.where(id = 'o').value").unwrap();
        assert_eq!(select(&p, &parsed).unwrap()[0].ty, Some("Quantity"));
        // Untyped data still finds choice expansions from its own keys.
        let untyped = json!({"valueString": "x"});
        assert_eq!(locs(&untyped, "value"), [vec![key("valueString")]]);
    }

    #[test]
    fn typed_navigation_does_not_mistake_prefixes_for_choices() {
        let q = json!({"resourceType": "QuestionnaireResponse", "item": [{"linkId": "1"}]});
        assert!(locs(&q, "item.link").is_empty());
    }

    #[test]
    fn leading_type_must_match() {
        let p = patient();
        let parsed = parse_path("Observation.status").unwrap();
        assert!(select(&p, &parsed)
            .unwrap_err()
            .contains("resource is a Patient"));
    }
}
