//! Evaluates an expression over collections of items. The evaluator is generic over the item
//! type ([`Item`]), so search navigates plain JSON with nothing to spare while patch navigates
//! with the element table and remembers where each element lives.

use std::slice;

use serde_json::Value;

use super::ast::{Dialect, Expr, Expression, Head, Path, Step};
use crate::json_equal::json_equal;

/// What the evaluator needs of one item of a collection.
pub(crate) trait Item: Clone {
    /// An item holding a computed value (a literal, an operator's boolean), which is not an
    /// element of the resource.
    fn computed(value: Value) -> Self;
    /// The item's JSON value.
    fn value(&self) -> &Value;
    /// Appends the child elements called `name`, one per repeat.
    fn children(&self, name: &str, out: &mut Vec<Self>);
    /// The item's FHIR type as far as it is known, for `is`, `as` and `ofType`.
    fn fhir_type(&self) -> Option<&str>;
    /// The item typed as the resource its reference points at (`resolve()`).
    fn resolved(self) -> Self;
}

/// Evaluates `expression` with `focus` as the input collection.
pub(crate) fn evaluate<I: Item>(expression: &Expression, focus: &[I]) -> Result<Vec<I>, String> {
    Evaluator {
        dialect: expression.dialect,
    }
    .eval(&expression.expr, focus)
}

struct Evaluator {
    dialect: Dialect,
}

impl Evaluator {
    fn eval<I: Item>(&self, e: &Expr, focus: &[I]) -> Result<Vec<I>, String> {
        match e {
            Expr::Literal(v) => Ok(vec![I::computed(v.clone())]),
            Expr::Path(path) => self.path(path, focus),
            Expr::Union(operands) => {
                let Some((first, rest)) = operands.split_first() else {
                    return Ok(Vec::new());
                };
                let mut out = self.eval(first, focus)?;
                for operand in rest {
                    for n in self.eval(operand, focus)? {
                        if !out.iter().any(|o| o.value() == n.value()) {
                            out.push(n);
                        }
                    }
                }
                Ok(out)
            }
            // Three-valued logic, stopping at the first operand that decides the result.
            Expr::And(operands) => {
                let mut result = Some(true);
                for operand in operands {
                    match self.truth(&self.eval(operand, focus)?)? {
                        Some(false) => return Ok(boolean(false)),
                        None => result = None,
                        Some(true) => {}
                    }
                }
                Ok(maybe_boolean(result))
            }
            Expr::Or(operands) => {
                let mut result = Some(false);
                for operand in operands {
                    match self.truth(&self.eval(operand, focus)?)? {
                        Some(true) => return Ok(boolean(true)),
                        None => result = None,
                        Some(false) => {}
                    }
                }
                Ok(maybe_boolean(result))
            }
            Expr::Xor(operands) => {
                let mut result = Some(false);
                for operand in operands {
                    let t = self.truth(&self.eval(operand, focus)?)?;
                    result = result.zip(t).map(|(a, b)| a != b);
                }
                Ok(maybe_boolean(result))
            }
            Expr::Compare {
                left,
                right,
                negated,
            } => {
                let (l, r) = (self.eval(left, focus)?, self.eval(right, focus)?);
                // Comparing with an empty collection gives empty, which where() reads as false.
                if l.is_empty() || r.is_empty() {
                    return Ok(Vec::new());
                }
                let equal = l.len() == r.len()
                    && l.iter()
                        .zip(&r)
                        .all(|(a, b)| json_equal(a.value(), b.value()));
                Ok(boolean(equal != *negated))
            }
        }
    }

    fn path<I: Item>(&self, path: &Path, focus: &[I]) -> Result<Vec<I>, String> {
        let mut items = match &path.head {
            Head::This => focus.to_vec(),
            Head::Expr(e) => self.eval(e, focus)?,
            Head::TypeOrChild(name) => {
                let mut out = Vec::new();
                for n in focus {
                    if names_resource_type(n.value(), name) {
                        out.push(n.clone());
                    } else {
                        n.children(name, &mut out);
                    }
                }
                out
            }
            Head::ResourceType(root) => {
                for n in focus {
                    match n.value().get("resourceType").and_then(Value::as_str) {
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
                focus.to_vec()
            }
        };
        for step in &path.steps {
            items = self.step(step, items)?;
        }
        Ok(items)
    }

    /// Applies one step. Steps that keep or drop items work in place, as the search side runs
    /// on every write.
    fn step<I: Item>(&self, step: &Step, mut items: Vec<I>) -> Result<Vec<I>, String> {
        Ok(match step {
            Step::Member(name) => {
                let mut out = Vec::new();
                for n in &items {
                    n.children(name, &mut out);
                }
                out
            }
            Step::Index(i) => {
                if *i < items.len() {
                    items.swap(0, *i);
                    items.truncate(1);
                } else {
                    items.clear();
                }
                items
            }
            Step::First => {
                items.truncate(1);
                items
            }
            Step::Last => {
                let last = items.pop();
                items.clear();
                items.extend(last);
                items
            }
            Step::Where(criteria) => {
                let mut failure = None;
                items.retain(|n| {
                    failure.is_none()
                        && self.holds(criteria, n).unwrap_or_else(|e| {
                            failure = Some(e);
                            false
                        })
                });
                match failure {
                    Some(e) => return Err(e),
                    None => items,
                }
            }
            Step::Exists(criteria) => {
                let any = match criteria {
                    Some(criteria) => {
                        let mut any = false;
                        for n in &items {
                            if self.holds(criteria, n)? {
                                any = true;
                                break;
                            }
                        }
                        any
                    }
                    None => !items.is_empty(),
                };
                boolean(any)
            }
            Step::Empty => boolean(items.is_empty()),
            Step::Not => maybe_boolean(self.truth(&items)?.map(|b| !b)),
            Step::OfType(ty) => {
                items.retain(|n| type_matches(n.fhir_type(), ty));
                items
            }
            Step::Is(ty) => {
                if items.is_empty() {
                    Vec::new()
                } else {
                    boolean(items.iter().all(|n| type_matches(n.fhir_type(), ty)))
                }
            }
            Step::Resolve => items.into_iter().map(Item::resolved).collect(),
        })
    }

    /// Whether `criteria` are true for one item.
    fn holds<I: Item>(&self, criteria: &Expr, item: &I) -> Result<bool, String> {
        Ok(self.truth(&self.eval(criteria, slice::from_ref(item))?)? == Some(true))
    }

    /// A collection read as a boolean. Search follows FHIRPath's three-valued logic (empty is
    /// unknown) and reads several items as true; a patch reads empty as false and refuses
    /// several items, since it must not guess which element it changes.
    fn truth<I: Item>(&self, collection: &[I]) -> Result<Option<bool>, String> {
        match (collection, self.dialect) {
            ([], Dialect::Search) => Ok(None),
            ([], Dialect::Patch) => Ok(Some(false)),
            ([single], _) => Ok(Some(single.value().as_bool().unwrap_or(true))),
            (_, Dialect::Search) => Ok(Some(true)),
            (many, Dialect::Patch) => Err(format!(
                "where() criteria gave {} values for one item; they must give a single boolean",
                many.len()
            )),
        }
    }
}

fn boolean<I: Item>(b: bool) -> Vec<I> {
    vec![I::computed(Value::Bool(b))]
}

fn maybe_boolean<I: Item>(b: Option<bool>) -> Vec<I> {
    b.map(boolean).unwrap_or_default()
}

/// Whether a leading `name` in a search expression names the type of the resource `value`.
fn names_resource_type(value: &Value, name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_uppercase())
        && value
            .get("resourceType")
            .and_then(Value::as_str)
            .is_some_and(|rt| rt == name || name == "Resource" || name == "DomainResource")
}

/// Whether an item of type `actual` satisfies a type test against `wanted`.
fn type_matches(actual: Option<&str>, wanted: &str) -> bool {
    let Some(actual) = actual else {
        return false;
    };
    if actual.eq_ignore_ascii_case(wanted) {
        return true;
    }
    // Quantity's profiles are Quantities too.
    wanted.eq_ignore_ascii_case("Quantity")
        && matches!(
            actual,
            "Age" | "Count" | "Distance" | "Duration" | "SimpleQuantity" | "MoneyQuantity"
        )
}

/// The resource type a Reference (or canonical string) points at, when it can be told from the
/// text, else its declared `type`.
pub(crate) fn reference_type(v: &Value) -> Option<String> {
    let (text, declared) = match v {
        Value::String(s) => (Some(s.as_str()), None),
        Value::Object(o) => (
            o.get("reference").and_then(Value::as_str),
            o.get("type").and_then(Value::as_str),
        ),
        _ => (None, None),
    };
    if let Some(t) = text.and_then(|t| crate::index::parse_reference(t).target_type) {
        return Some(t);
    }
    declared.map(str::to_string)
}
