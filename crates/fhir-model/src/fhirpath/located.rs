//! The items a patch evaluates over: elements typed by the R4 element table that remember where
//! they live in the resource, so that patch operations can change them in place.

use std::borrow::Cow;

use serde_json::Value;

use super::ast::Expression;
use super::eval::{self, reference_type, Item};
use super::typed::{child_type, resolve_key, resource_type_of, table_type_name};

/// One step of a location inside a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg {
    /// A member of an object.
    Key(String),
    /// A position in an array.
    Index(usize),
}

/// An element an expression selected: where it is and what the element table says it is. It
/// holds no borrow of the resource, so the resource can then be changed at `loc`.
#[derive(Debug, Clone)]
pub(crate) struct Selected {
    /// Path from the resource root to the element.
    pub loc: Vec<Seg>,
    /// Type name from the element table (`HumanName`, `Patient_Contact`, `string`), when known.
    pub ty: Option<&'static str>,
    /// The base name used to reach a choice element (`value` for `valueQuantity`), so a replace
    /// can rename the key when the new value has another type.
    pub choice_base: Option<String>,
}

/// Evaluates `expression` against `resource`, giving each selected element with its location.
pub(crate) fn select(resource: &Value, expression: &Expression) -> Result<Vec<Selected>, String> {
    let root = Located {
        loc: Some(Vec::new()),
        value: Cow::Borrowed(resource),
        ty: resource_type_of(resource),
        choice_base: None,
    };
    eval::evaluate(expression, &[root])?
        .into_iter()
        .map(|item| match item.loc {
            Some(loc) => Ok(Selected {
                loc,
                ty: item.ty,
                choice_base: item.choice_base,
            }),
            None => Err("the expression gives a computed value, not an element".to_string()),
        })
        .collect()
}

/// An item of a patch collection: an element of the resource, or a computed value (a literal,
/// a boolean) that has no location.
#[derive(Debug, Clone)]
struct Located<'a> {
    loc: Option<Vec<Seg>>,
    value: Cow<'a, Value>,
    ty: Option<&'static str>,
    choice_base: Option<String>,
}

impl<'a> Item for Located<'a> {
    fn computed(value: Value) -> Self {
        Located {
            loc: None,
            value: Cow::Owned(value),
            ty: None,
            choice_base: None,
        }
    }

    fn value(&self) -> &Value {
        &self.value
    }

    /// One child per repeat; JSON nulls (placeholders that keep primitive arrays aligned with
    /// their `_name` extension arrays) are not elements.
    fn children(&self, name: &str, out: &mut Vec<Self>) {
        let (Some(loc), Cow::Borrowed(Value::Object(obj))) = (&self.loc, &self.value) else {
            return;
        };
        let Some((key, choice)) = resolve_key(obj, self.ty, name) else {
            return;
        };
        let Some(child) = obj.get(&key) else {
            return;
        };
        let make = |loc: Vec<Seg>, value: &'a Value| Located {
            loc: Some(loc),
            value: Cow::Borrowed(value),
            ty: child_type(self.ty, &key, value),
            choice_base: choice.then(|| name.to_string()),
        };
        let mut base = loc.clone();
        base.push(Seg::Key(key.clone()));
        match child {
            Value::Null => {}
            Value::Array(items) => out.extend(
                items
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(i, v)| {
                        let mut loc = base.clone();
                        loc.push(Seg::Index(i));
                        make(loc, v)
                    }),
            ),
            single => out.push(make(base, single)),
        }
    }

    fn fhir_type(&self) -> Option<&str> {
        self.ty
    }

    fn resolved(self) -> Self {
        let ty = reference_type(&self.value).and_then(|t| table_type_name(&t));
        Located { ty, ..self }
    }
}
