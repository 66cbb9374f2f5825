//! The items search evaluates over: JSON values reached by plain navigation, with no record of
//! where they are. Choice elements are told by their type suffix (`valueQuantity`), which is all
//! index extraction needs and keeps evaluation on every write cheap.

use std::borrow::Cow;

use serde_json::Value;

use super::ast::Expression;
use super::eval::{self, reference_type, Item};
use super::typed::lower_first;

/// One item of a search collection.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node<'a> {
    /// The JSON value (owned for computed values).
    pub value: Cow<'a, Value>,
    /// The element name it was reached by (e.g. `telecom`), to tell look-alike types apart.
    pub name: Option<&'a str>,
    /// The FHIR type when known: from a choice suffix (`valueQuantity`) or from `resolve()`.
    pub type_name: Option<String>,
}

impl<'a> Node<'a> {
    /// The evaluation root: a resource.
    pub fn root(v: &'a Value) -> Self {
        Node {
            value: Cow::Borrowed(v),
            name: None,
            type_name: None,
        }
    }
}

/// Evaluates a search expression against `focus`. Search evaluation cannot fail (several items
/// read as true, and a leading name that is not the resource's type is a child), so this
/// yields the items alone.
pub(crate) fn evaluate<'a>(expression: &Expression, focus: &[Node<'a>]) -> Vec<Node<'a>> {
    debug_assert_eq!(expression.dialect, super::Dialect::Search);
    eval::evaluate(expression, focus).unwrap_or_default()
}

impl Item for Node<'_> {
    fn computed(value: Value) -> Self {
        Node {
            value: Cow::Owned(value),
            name: None,
            type_name: None,
        }
    }

    fn value(&self) -> &Value {
        &self.value
    }

    fn children(&self, name: &str, out: &mut Vec<Self>) {
        // Computed values have no children, and only borrowed objects can lend out references.
        let Cow::Borrowed(Value::Object(obj)) = self.value else {
            return;
        };
        if let Some((k, v)) = obj.get_key_value(name) {
            push_flat(out, v, k, None);
            return;
        }
        for (k, v) in obj.iter() {
            if let Some(type_name) = k.strip_prefix(name).and_then(choice_type_name) {
                push_flat(out, v, k, Some(type_name));
            }
        }
    }

    fn fhir_type(&self) -> Option<&str> {
        if let Some(t) = &self.type_name {
            return Some(t);
        }
        match self.value.as_ref() {
            Value::Bool(_) => Some("boolean"),
            Value::String(_) => Some("string"),
            Value::Number(_) => Some("decimal"),
            Value::Object(o) => o.get("resourceType").and_then(Value::as_str),
            _ => None,
        }
    }

    fn resolved(self) -> Self {
        let t = reference_type(&self.value);
        Node {
            type_name: t,
            ..self
        }
    }
}

/// Appends a child's items: each item of an array, nulls (placeholders that keep primitive
/// arrays aligned with their `_name` extension arrays) skipped.
fn push_flat<'a>(out: &mut Vec<Node<'a>>, v: &'a Value, name: &'a str, type_name: Option<String>) {
    match v {
        Value::Array(items) => {
            for item in items.iter().filter(|i| !i.is_null()) {
                out.push(Node {
                    value: Cow::Borrowed(item),
                    name: Some(name),
                    type_name: type_name.clone(),
                });
            }
        }
        Value::Null => {}
        other => out.push(Node {
            value: Cow::Borrowed(other),
            name: Some(name),
            type_name,
        }),
    }
}

/// Primitive FHIR types that can appear as a choice-element suffix (`value[x]` → `valueString`).
const PRIMITIVE_CHOICE_TYPES: &[&str] = &[
    "Base64Binary",
    "Boolean",
    "Canonical",
    "Code",
    "Date",
    "DateTime",
    "Decimal",
    "Id",
    "Instant",
    "Integer",
    "Markdown",
    "Oid",
    "PositiveInt",
    "String",
    "Time",
    "UnsignedInt",
    "Uri",
    "Url",
    "Uuid",
];

/// Complex FHIR types that can appear as a choice-element suffix (`value[x]` → `valueQuantity`).
const COMPLEX_CHOICE_TYPES: &[&str] = &[
    "Address",
    "Age",
    "Annotation",
    "Attachment",
    "CodeableConcept",
    "Coding",
    "ContactPoint",
    "Count",
    "Distance",
    "Duration",
    "HumanName",
    "Identifier",
    "Money",
    "Period",
    "Quantity",
    "Range",
    "Ratio",
    "Reference",
    "SampledData",
    "Signature",
    "Timing",
    "ContactDetail",
    "Contributor",
    "DataRequirement",
    "Expression",
    "ParameterDefinition",
    "RelatedArtifact",
    "TriggerDefinition",
    "UsageContext",
    "Dosage",
    "Meta",
];

/// The FHIR type a choice suffix names, if it names one: primitive type names are spelt in lower
/// camel case (`dateTime`), complex ones in Pascal case.
fn choice_type_name(suffix: &str) -> Option<String> {
    if PRIMITIVE_CHOICE_TYPES.contains(&suffix) {
        Some(lower_first(suffix))
    } else if COMPLEX_CHOICE_TYPES.contains(&suffix) {
        Some(suffix.to_string())
    } else {
        None
    }
}
