//! The R4 element table: every resource and data type, its elements, their types, which are
//! mandatory, and the codes of required bindings. Derived by `gen/gen_elements.py` from the
//! official R4 JSON Schema and, for mandatory primitive and choice elements (which the schema
//! never lists), from the StructureDefinitions' `min` as fhirbolt's generated types carry it.

use std::collections::HashMap;
use std::sync::OnceLock;

use regex::Regex;
use serde_json::Value;

/// One element of a type: its type name, whether it repeats, and the allowed codes if bound.
#[derive(Debug)]
pub struct ElementDef {
    /// Name of a primitive (`date`) or complex type (`HumanName`), or `ResourceList`.
    pub type_name: String,
    /// True for elements with max cardinality `*`.
    pub array: bool,
    /// Codes of a required binding (empty when unbound).
    pub codes: Vec<String>,
}

/// A complex type or resource.
#[derive(Debug)]
pub struct TypeDef {
    /// True for resource types.
    pub resource: bool,
    /// Elements with min cardinality 1; a choice is written `name[x]`.
    pub required: Vec<String>,
    /// Elements by JSON property name (choice types expanded, e.g. `valueQuantity`).
    pub props: HashMap<String, ElementDef>,
}

impl TypeDef {
    /// True when the JSON property `key` (`status`, `medicationReference`) is, or is a form of,
    /// a mandatory element.
    pub fn is_mandatory(&self, key: &str) -> bool {
        self.required.iter().any(|r| match r.strip_suffix("[x]") {
            Some(choice) => is_choice_form(key, choice) && self.props.contains_key(key),
            None => r == key,
        })
    }

    /// The mandatory elements `obj` lacks (neither the value nor its `_` extension is there).
    pub fn missing_mandatory<'a>(&'a self, obj: &serde_json::Map<String, Value>) -> Vec<&'a str> {
        self.required
            .iter()
            .filter(|r| match r.strip_suffix("[x]") {
                Some(choice) => !obj.keys().any(|k| {
                    let base = k.strip_prefix('_').unwrap_or(k);
                    is_choice_form(base, choice) && self.props.contains_key(base)
                }),
                None => !obj.contains_key(r.as_str()) && !obj.contains_key(&format!("_{r}")),
            })
            .map(String::as_str)
            .collect()
    }
}

/// `valueQuantity` is a form of the choice `value`.
pub(crate) fn is_choice_form(key: &str, choice: &str) -> bool {
    key.strip_prefix(choice)
        .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_uppercase()))
}

/// A primitive type: the JSON kind it is written as and its regular expression.
#[derive(Debug)]
pub struct PrimitiveDef {
    /// `string`, `number` or `boolean`.
    pub json: String,
    /// The spec's regular expression, compiled.
    pub pattern: Option<Regex>,
}

/// The whole table.
#[derive(Debug)]
pub struct Elements {
    /// Complex types and resources by name.
    pub types: HashMap<String, TypeDef>,
    /// Primitive types by name.
    pub primitives: HashMap<String, PrimitiveDef>,
}

static TABLE: OnceLock<Elements> = OnceLock::new();

/// The table, parsed on first use.
pub fn table() -> &'static Elements {
    TABLE.get_or_init(load)
}

/// True when `name` is an R4 resource type.
pub fn is_resource_type(name: &str) -> bool {
    table().types.get(name).is_some_and(|t| t.resource)
}

/// Every R4 resource type name, sorted.
pub fn resource_types() -> Vec<&'static str> {
    let mut names: Vec<&str> = table()
        .types
        .iter()
        .filter(|(_, t)| t.resource)
        .map(|(n, _)| n.as_str())
        .collect();
    names.sort_unstable();
    names
}

fn load() -> Elements {
    let raw: Value = serde_json::from_str(include_str!("../data/r4-elements.json"))
        .expect("embedded element table is valid JSON");
    let primitives = raw["primitives"]
        .as_object()
        .expect("primitives")
        .iter()
        .map(|(name, p)| {
            let pattern = p["pattern"]
                .as_str()
                .map(|re| Regex::new(re).expect("spec regex compiles"));
            let json = p["json"].as_str().unwrap_or("string").to_string();
            (name.clone(), PrimitiveDef { json, pattern })
        })
        .collect();
    let types = raw["types"]
        .as_object()
        .expect("types")
        .iter()
        .map(|(name, t)| {
            let props = t["props"]
                .as_object()
                .expect("props")
                .iter()
                .map(|(prop, e)| {
                    let codes = e
                        .get(2)
                        .and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .filter_map(|c| c.as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default();
                    let def = ElementDef {
                        type_name: e[0].as_str().unwrap_or_default().to_string(),
                        array: e[1].as_i64() == Some(1),
                        codes,
                    };
                    (prop.clone(), def)
                })
                .collect();
            let required = t["required"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|r| r.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            let def = TypeDef {
                resource: t["resource"].as_bool().unwrap_or(false),
                required,
                props,
            };
            (name.clone(), def)
        })
        .collect();
    Elements { types, primitives }
}
