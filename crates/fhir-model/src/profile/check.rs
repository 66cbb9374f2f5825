//! Applying a compiled profile to a resource held as JSON.
//!
//! The walk follows the profile's tree, not the resource's, so its depth is the profile's
//! (bounded when loaded) and its work is what the profile names. Content of the wrong JSON shape
//! is skipped: reporting it is structural validation's job.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::load::{Criterion, Element, Slicing};
use super::terminology::ValueSet;
use crate::issue::{shorten, Finding, Issue, IssueCode, Severity};
use crate::json_equal::{json_contains, json_equal};

/// Stop after this many findings: a hostile body must not produce a huge response.
pub(crate) const MAX_FINDINGS: usize = 50;

/// Checks `resource` (whose type the profile constrains) against the rules rooted at `root`.
pub(crate) fn check(
    root: &Element,
    value_sets: &HashMap<String, ValueSet>,
    resource: &Value,
) -> Vec<Finding> {
    let mut checker = Checker {
        value_sets,
        resource,
        findings: Vec::new(),
    };
    let item = Item {
        path: root.name.clone(),
        value: resource,
        type_name: root.type_name,
    };
    checker.each(root, std::slice::from_ref(&item), &root.name);
    checker.findings
}

struct Checker<'a> {
    value_sets: &'a HashMap<String, ValueSet>,
    /// The resource as a whole, where `#id` references find their contained targets.
    resource: &'a Value,
    findings: Vec<Finding>,
}

/// One occurrence of an element in the resource.
struct Item<'v> {
    /// Its FHIRPath (`Patient.identifier[0]`).
    path: String,
    value: &'v Value,
    /// Its R4 type, known from the element or, for a choice, from its JSON name.
    type_name: Option<&'static str>,
}

impl Checker<'_> {
    fn full(&self) -> bool {
        self.findings.len() >= MAX_FINDINGS
    }

    fn report(&mut self, severity: Severity, code: IssueCode, path: &str, message: String) {
        if !self.full() {
            self.findings.push(Finding {
                severity,
                issue: Issue::at(code, path, message),
            });
        }
    }

    fn error(&mut self, code: IssueCode, path: &str, message: String) {
        self.report(Severity::Error, code, path, message);
    }

    /// The element's occurrences under `parent`: their number, cardinality and each one.
    fn element(&mut self, el: &Element, parent: &Map<String, Value>, parent_path: &str) {
        let mut items = Vec::new();
        let mut count = 0;
        if el.is_choice() {
            for (key, type_name) in &el.choices {
                let n = occurrences(parent, key);
                if n == 0 {
                    continue;
                }
                count += n;
                let path = format!("{parent_path}.{key}");
                if !el.allows_type(type_name) {
                    self.error(
                        IssueCode::Structure,
                        &path,
                        format!(
                            "{} may only be {} here, not {type_name}",
                            el.name,
                            el.allowed_types()
                        ),
                    );
                    continue;
                }
                push_items(&mut items, parent.get(key), &path, Some(type_name));
            }
        } else {
            count = occurrences(parent, &el.name);
            let path = format!("{parent_path}.{}", el.name);
            push_items(&mut items, parent.get(&el.name), &path, el.type_name);
        }
        let path = format!("{parent_path}.{}", el.fhirpath_name());
        self.cardinality(el, count, &path, None);
        self.each(el, &items, &path);
    }

    fn cardinality(&mut self, el: &Element, count: usize, path: &str, slice: Option<&str>) {
        let what = match slice {
            Some(name) => format!("slice '{name}' of {}", el.name),
            None => el.name.clone(),
        };
        if count < el.min {
            self.error(
                IssueCode::Required,
                path,
                format!(
                    "{what} needs at least {} occurrence{}, found {count}",
                    el.min,
                    plural(el.min)
                ),
            );
        }
        if let Some(max) = el.max.filter(|max| count > *max) {
            self.error(
                IssueCode::Structure,
                path,
                format!(
                    "{what} allows at most {max} occurrence{}, found {count}",
                    plural(max)
                ),
            );
        }
    }

    /// Checks each occurrence, then how they divide into slices.
    fn each(&mut self, el: &Element, items: &[Item], path: &str) {
        for item in items {
            if self.full() {
                return;
            }
            self.item(el, item);
        }
        if let Some(slicing) = &el.slicing {
            self.slices(el, slicing, items, path);
        }
    }

    fn item(&mut self, el: &Element, item: &Item) {
        if let Some(fixed) = &el.fixed {
            if !json_equal(item.value, fixed) {
                self.error(
                    IssueCode::Value,
                    &item.path,
                    format!("must be exactly {}", compact(fixed)),
                );
            }
        }
        if let Some(pattern) = &el.pattern {
            if !json_contains(item.value, pattern) {
                self.error(
                    IssueCode::Value,
                    &item.path,
                    format!("must match the pattern {}", compact(pattern)),
                );
            }
        }
        if let (Some(max), Some(text)) = (el.max_length, item.value.as_str()) {
            if text.chars().count() > max {
                self.error(
                    IssueCode::Value,
                    &item.path,
                    format!("is longer than {max} characters"),
                );
            }
        }
        if let Some(vs) = el.binding.as_ref().and_then(|url| self.value_sets.get(url)) {
            if let Some(problem) = binding_problem(vs, item.type_name, item.value) {
                self.error(IssueCode::CodeInvalid, &item.path, problem);
            }
        }
        if item.type_name == Some("Reference") {
            self.reference(el, item);
        }
        for constraint in &el.constraints {
            for breach in (constraint.check)(item.value) {
                self.report(
                    constraint.severity,
                    IssueCode::BusinessRule,
                    &format!("{}{}", item.path, breach.below),
                    format!(
                        "{}: {} ({})",
                        constraint.key, constraint.human, breach.detail
                    ),
                );
            }
        }
        if let Some(obj) = item.value.as_object() {
            for child in &el.children {
                if self.full() {
                    return;
                }
                self.element(child, obj, &item.path);
            }
        }
    }

    fn reference(&mut self, el: &Element, item: &Item) {
        let Some(targets) = el
            .types
            .iter()
            .find(|t| t.code == "Reference")
            .and_then(|t| t.targets.as_ref())
        else {
            return;
        };
        let Some(actual) = reference_type(item.value, self.resource) else {
            return;
        };
        if !targets.iter().any(|t| *t == actual) {
            self.error(
                IssueCode::Structure,
                &item.path,
                format!(
                    "refers to a {actual}, but may only refer to {}",
                    targets.join(" or ")
                ),
            );
        }
    }

    fn slices(&mut self, el: &Element, slicing: &Slicing, items: &[Item], path: &str) {
        let mut sliced = vec![false; items.len()];
        for slice in &el.slices {
            let mut members = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let belongs = slice
                    .criteria
                    .iter()
                    .all(|(steps, criterion)| self.meets(item.value, steps, criterion));
                if belongs {
                    sliced[i] = true;
                    members.push(item);
                }
            }
            self.cardinality(&slice.element, members.len(), path, Some(&slice.name));
            for member in members {
                if self.full() {
                    return;
                }
                self.item(&slice.element, member);
            }
        }
        if slicing.closed {
            let names: Vec<&str> = el.slices.iter().map(|s| s.name.as_str()).collect();
            for (item, _) in items.iter().zip(&sliced).filter(|(_, s)| !**s) {
                self.error(
                    IssueCode::Structure,
                    &item.path,
                    format!(
                        "matches none of the slices of {} ({}), and no others are allowed",
                        el.name,
                        names.join(", ")
                    ),
                );
            }
        }
    }

    /// True when some value at `steps` below `value` meets the criterion.
    fn meets(&self, value: &Value, steps: &[String], criterion: &Criterion) -> bool {
        let mut values = vec![value];
        for step in steps {
            values = values
                .into_iter()
                .filter_map(|v| v.get(step))
                .flat_map(|v| match v {
                    Value::Array(items) => items.iter().collect(),
                    other => vec![other],
                })
                .collect();
        }
        values.into_iter().any(|v| match criterion {
            Criterion::Fixed(fixed) => json_equal(v, fixed),
            Criterion::Pattern(pattern) => json_contains(v, pattern),
            Criterion::InValueSet { url, type_name } => self
                .value_sets
                .get(url)
                .is_some_and(|vs| binding_problem(vs, *type_name, v).is_none() && is_coded(v)),
        })
    }
}

/// How many times `key` occurs in `parent`, counting a primitive's `_key` extensions too.
fn occurrences(parent: &Map<String, Value>, key: &str) -> usize {
    let count = |v: Option<&Value>| match v {
        None | Some(Value::Null) => 0,
        Some(Value::Array(items)) => items.len(),
        Some(_) => 1,
    };
    count(parent.get(key)).max(count(parent.get(&format!("_{key}"))))
}

fn push_items<'v>(
    items: &mut Vec<Item<'v>>,
    value: Option<&'v Value>,
    path: &str,
    type_name: Option<&'static str>,
) {
    match value {
        None | Some(Value::Null) => {}
        Some(Value::Array(values)) => {
            for (i, value) in values.iter().enumerate() {
                // A null only keeps a primitive array aligned with its `_name` extensions.
                if !value.is_null() {
                    items.push(Item {
                        path: format!("{path}[{i}]"),
                        value,
                        type_name,
                    });
                }
            }
        }
        Some(value) => items.push(Item {
            path: path.to_string(),
            value,
            type_name,
        }),
    }
}

/// What is wrong with a coded value under a required binding, if anything. A value of the wrong
/// JSON shape is left to structural validation.
fn binding_problem(vs: &ValueSet, type_name: Option<&str>, value: &Value) -> Option<String> {
    let shape = match (type_name, value) {
        (Some(t), _) => t,
        (None, Value::String(_)) => "code",
        (None, Value::Object(o)) if o.contains_key("coding") || !o.contains_key("code") => {
            "CodeableConcept"
        }
        (None, _) => "Coding",
    };
    match (shape, value) {
        ("code", Value::String(code)) => (!vs.contains_code(code)).then(|| {
            format!(
                "'{}' is not in the value set {}",
                shorten(code, 80),
                vs.describe()
            )
        }),
        ("Coding", Value::Object(_)) => (!coding_in(vs, value)).then(|| {
            format!(
                "'{}' is not in the value set {}",
                describe_coding(value),
                vs.describe()
            )
        }),
        ("CodeableConcept", Value::Object(_)) => {
            let codings = value["coding"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default();
            if codings.iter().any(|c| coding_in(vs, c)) {
                return None;
            }
            let found: Vec<String> = codings.iter().take(3).map(describe_coding).collect();
            Some(if found.is_empty() {
                format!(
                    "has no coding, and needs one from the value set {}",
                    vs.describe()
                )
            } else {
                format!(
                    "no coding ({}{}) is in the value set {}",
                    found.join(", "),
                    if codings.len() > 3 { ", ..." } else { "" },
                    vs.describe()
                )
            })
        }
        _ => None,
    }
}

/// True when the value has the shape of something coded (a slice by binding needs a code).
fn is_coded(value: &Value) -> bool {
    value.is_string() || value.get("code").is_some() || value.get("coding").is_some()
}

fn coding_in(vs: &ValueSet, coding: &Value) -> bool {
    match (coding["system"].as_str(), coding["code"].as_str()) {
        (Some(system), Some(code)) => vs.contains(system, code),
        _ => false,
    }
}

fn describe_coding(coding: &Value) -> String {
    format!(
        "{}|{}",
        shorten(coding["system"].as_str().unwrap_or(""), 80),
        shorten(coding["code"].as_str().unwrap_or(""), 80)
    )
}

/// The resource type a reference points at: a contained resource's for `#id`, else what the
/// reference text or its `type` says.
fn reference_type(reference: &Value, resource: &Value) -> Option<String> {
    if let Some(local) = reference["reference"]
        .as_str()
        .and_then(|r| r.strip_prefix('#'))
    {
        return resource["contained"]
            .as_array()?
            .iter()
            .find(|c| c["id"] == local)?["resourceType"]
            .as_str()
            .map(str::to_string);
    }
    crate::fhirpath::reference_type(reference)
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// A profile's value as compact JSON for a message.
fn compact(value: &Value) -> String {
    shorten(&value.to_string(), 80)
}
