//! Index-value extraction: the values of a resource's search parameters, in the shapes the
//! R4 search rules (<http://hl7.org/fhir/R4/search.html>) match against.
//!
//! Each parameter's FHIRPath expression from the embedded table selects elements; each element
//! is then turned into index values according to the parameter type and the element's data type
//! (HumanName, Address, CodeableConcept, Period, Quantity, ...), which is told from the choice
//! suffix, the element name or, failing those, the JSON shape.

mod compiled;
mod dates;
mod decimal;

use crate::fhirpath::{self, Node};
use crate::search_params::{self, ParamType, SearchParamDef, COMMON_RESOURCE};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use std::collections::HashSet;
use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// One value of one search parameter of a resource.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IndexEntry {
    /// Search parameter code.
    pub param: String,
    /// The value to match against.
    pub value: IndexValue,
}

/// An index value, shaped by search parameter type.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IndexValue {
    /// display value and its normalised form (lower-case, accents removed, whitespace collapsed)
    String {
        /// The text as stored.
        value: String,
        /// The text as matched.
        normalized: String,
    },
    /// a coded value; `text` carries display/CodeableConcept.text/Identifier.type.text for :text
    Token {
        /// Code system (Coding.system, Identifier.system).
        system: Option<String>,
        /// The code or identifier value.
        code: Option<String>,
        /// Human-readable text for the `:text` modifier.
        text: Option<String>,
        /// For an Identifier, one coding of `Identifier.type` (system, code), for `:of-type`.
        of_type: Option<(Option<String>, String)>,
    },
    /// half-open instant range [start, end); None = unbounded on that side
    Date {
        /// Inclusive start.
        start: Option<DateTime<Utc>>,
        /// Exclusive end.
        end: Option<DateTime<Utc>>,
    },
    /// a reference: type and id for relative (or absolute-with-Type/id) refs, the full url for absolute/canonical ones, plus Reference.identifier
    Reference {
        /// Target resource type.
        target_type: Option<String>,
        /// Target logical id.
        target_id: Option<String>,
        /// The full URL of an absolute or canonical reference.
        url: Option<String>,
        /// Reference.identifier.system.
        identifier_system: Option<String>,
        /// Reference.identifier.value.
        identifier_value: Option<String>,
    },
    /// decimal text values; low/high are the precision-implied bounds (5.4 -> [5.35, 5.45))
    Quantity {
        /// The value as written (exponent expanded).
        value: String,
        /// Lower precision bound (inclusive).
        low: String,
        /// Upper precision bound (exclusive).
        high: String,
        /// Unit system (usually UCUM).
        system: Option<String>,
        /// Coded unit.
        code: Option<String>,
        /// Human-readable unit.
        unit: Option<String>,
    },
    /// A number with its precision-implied bounds, as decimal text.
    Number {
        /// The value as written (exponent expanded).
        value: String,
        /// Lower precision bound (inclusive).
        low: String,
        /// Upper precision bound (exclusive).
        high: String,
    },
    /// A composite value: the coded first component and the value of the second, taken from the
    /// same element (the resource, or one `component`), so pairs never mix across elements.
    Composite {
        /// First component's code system.
        system: Option<String>,
        /// First component's code.
        code: Option<String>,
        /// The second component's value (Token, Quantity, String or Date).
        value: Box<IndexValue>,
    },
    /// A URI, matched as text.
    Uri {
        /// The URI.
        value: String,
    },
    /// A place on a person's timeline: the patient whose compartment holds the resource and
    /// the resource's clinical date (the entry's `param` names the element that gave it).
    Event {
        /// The patient's id.
        patient: String,
        /// The clinical date.
        at: DateTime<Utc>,
    },
}

/// A parsed reference string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedReference {
    /// Target resource type, when the text names one.
    pub target_type: Option<String>,
    /// Target logical id, when the text names one.
    pub target_id: Option<String>,
    /// The full text of an absolute (URL, URN) reference.
    pub url: Option<String>,
}

fn is_type_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next().is_some_and(|f| f.is_ascii_uppercase()) && c.all(|c| c.is_ascii_alphanumeric())
}

fn is_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// `[.., Type, id]` or `[.., Type, id, _history, vid]` → (Type, id).
fn type_and_id(segments: &[&str]) -> Option<(String, String)> {
    let tail = match segments {
        [.., t, i, "_history", _] => [*t, *i],
        [.., t, i] => [*t, *i],
        _ => return None,
    };
    (is_type_name(tail[0]) && is_id(tail[1])).then(|| (tail[0].to_string(), tail[1].to_string()))
}

/// Split a Reference.reference text into type/id and/or url.
///
/// `Type/id` and `Type/id/_history/n` give type and id; absolute URLs keep the full text and
/// also give type and id when their last segments look like `Type/id`; URNs keep only the
/// text; `#contained` references give nothing, as they point inside the same resource.
pub fn parse_reference(text: &str) -> ParsedReference {
    let text = text.trim();
    if text.is_empty() || text.starts_with('#') {
        return ParsedReference::default();
    }
    if text.contains("://") || text.starts_with("urn:") {
        let tail = text.split(['?', '#']).next().unwrap_or(text);
        let segments: Vec<&str> = tail.trim_end_matches('/').split('/').collect();
        let (target_type, target_id) = if text.starts_with("urn:") {
            (None, None)
        } else {
            type_and_id(&segments).map_or((None, None), |(t, i)| (Some(t), Some(i)))
        };
        return ParsedReference {
            target_type,
            target_id,
            url: Some(text.to_string()),
        };
    }
    let segments: Vec<&str> = text.split('/').collect();
    match (segments.len(), type_and_id(&segments)) {
        (2 | 4, Some((t, i))) => ParsedReference {
            target_type: Some(t),
            target_id: Some(i),
            url: None,
        },
        _ => ParsedReference {
            url: Some(text.to_string()),
            ..Default::default()
        },
    }
}

/// Lower-case, strip accents and collapse whitespace, so that string search is case- and
/// accent-insensitive as R4 requires.
pub fn normalize_string(s: &str) -> String {
    let stripped: String = s.nfd().filter(|c| !is_combining_mark(*c)).collect();
    stripped
        .nfc()
        .flat_map(char::to_lowercase)
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Every index entry of a resource: its search parameters' values (the common Resource ones
/// included) and, for an event in patients' compartments, its place on each one's timeline.
pub fn extract(resource: &Value) -> Vec<IndexEntry> {
    let mut out = extract_where(resource, |_| true);
    if let Some(event) = crate::timeline::event_date(resource) {
        for patient in crate::compartment::patient_compartments(resource) {
            out.push(IndexEntry {
                param: event.element.to_string(),
                value: IndexValue::Event {
                    patient,
                    at: event.at,
                },
            });
        }
    }
    out
}

/// The index entries of a resource for the parameters named `codes` only (what judging one
/// condition on a resource needs, at a fraction of the cost of [`extract`]).
pub fn extract_params(resource: &Value, codes: &[String]) -> Vec<IndexEntry> {
    extract_where(resource, |p| codes.contains(&p.code))
}

/// Parameters the resource row holds as columns (`id`, `last_updated`), which searches read
/// there: index rows for them would only repeat the row.
pub const ROW_COLUMNS: &[&str] = &["_id", "_lastUpdated"];

fn extract_where(resource: &Value, wanted: impl Fn(&SearchParamDef) -> bool) -> Vec<IndexEntry> {
    let Some(rt) = resource.get("resourceType").and_then(Value::as_str) else {
        return Vec::new();
    };
    let params = if search_params::is_searchable(rt) {
        search_params::params_for(rt)
    } else {
        search_params::params_for(COMMON_RESOURCE)
    };
    let root = [Node::root(resource)];
    let mut out = Vec::new();
    let mut codes: Vec<&str> = Vec::new();
    for p in params
        .into_iter()
        .filter(|p| wanted(p) && !ROW_COLUMNS.contains(&p.code.as_str()))
    {
        let Some(compiled) = compiled::compiled(p) else {
            continue;
        };
        let values = if p.kind == ParamType::Composite {
            composite_values(compiled, &root)
        } else {
            fhirpath::evaluate(&compiled.expr, &root)
                .iter()
                .flat_map(|node| values_of(p.kind, node))
                .collect()
        };
        let again = codes.contains(&p.code.as_str());
        codes.push(&p.code);
        let start = out.len();
        for value in unique(values) {
            // A code defined twice (rare) must not repeat a value the first definition gave.
            if again
                && out[..start]
                    .iter()
                    .any(|e: &IndexEntry| e.param == p.code && e.value == value)
            {
                continue;
            }
            out.push(IndexEntry {
                param: p.code.clone(),
                value,
            });
        }
    }
    out
}

/// `values` without repeats, in their order. Most parameters give a handful of values, which
/// are compared directly; many are put through a set, so the cost stays linear.
fn unique(values: Vec<IndexValue>) -> Vec<IndexValue> {
    const FEW: usize = 16;
    if values.len() <= FEW {
        let mut out: Vec<IndexValue> = Vec::with_capacity(values.len());
        for v in values {
            if !out.contains(&v) {
                out.push(v);
            }
        }
        return out;
    }
    let mut seen = HashSet::with_capacity(values.len());
    let keep: Vec<bool> = values.iter().map(|v| seen.insert(v)).collect();
    values
        .into_iter()
        .zip(keep)
        .filter_map(|(v, k)| k.then_some(v))
        .collect()
}

/// The kind of a composite's second component, from the parameter its definition names.
pub fn composite_value_kind(p: &SearchParamDef) -> Option<ParamType> {
    compiled::second_kind(p)
}

fn composite_values(compiled: &compiled::Compiled, root: &[Node<'_>]) -> Vec<IndexValue> {
    let Some((first, second, kind)) = &compiled.parts else {
        return Vec::new();
    };
    let kind = *kind;
    let mut out = Vec::new();
    for context in fhirpath::evaluate(&compiled.expr, root) {
        let ctx = [context];
        let mut codes = Vec::new();
        for node in fhirpath::evaluate(first, &ctx) {
            tokens(&node, &mut codes);
        }
        let mut values = Vec::new();
        for node in fhirpath::evaluate(second, &ctx) {
            values.extend(values_of(kind, &node));
        }
        for c in &codes {
            let IndexValue::Token { system, code, .. } = c else {
                continue;
            };
            if code.is_none() {
                continue;
            }
            for v in &values {
                out.push(IndexValue::Composite {
                    system: system.clone(),
                    code: code.clone(),
                    value: Box::new(v.clone()),
                });
            }
        }
    }
    out
}

/// The index values of one selected element under a parameter type.
pub(crate) fn values_of(kind: ParamType, node: &Node<'_>) -> Vec<IndexValue> {
    let mut out = Vec::new();
    match kind {
        ParamType::String => strings(node, &mut out),
        ParamType::Token => tokens(node, &mut out),
        ParamType::Date => date_values(node, &mut out),
        ParamType::Reference => references(&node.value, &mut out),
        ParamType::Quantity => quantities(node, &mut out),
        ParamType::Number => {
            if let Some(b) = number_text(&node.value).and_then(|t| decimal::bounds(&t)) {
                out.push(IndexValue::Number {
                    value: b.value,
                    low: b.low,
                    high: b.high,
                });
            }
        }
        ParamType::Uri => {
            if let Some(s) = node.value.as_str().filter(|s| !s.is_empty()) {
                out.push(IndexValue::Uri {
                    value: s.to_string(),
                });
            }
        }
        // Composites are built per element by `composite_values`; special ones are not indexed.
        ParamType::Composite | ParamType::Special => {}
    }
    out
}

fn str_field<'v>(o: &'v Map<String, Value>, k: &str) -> Option<&'v str> {
    o.get(k)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
}

fn owned(s: Option<&str>) -> Option<String> {
    s.map(str::to_string)
}

fn push_string(s: &str, out: &mut Vec<IndexValue>) {
    let normalized = normalize_string(s);
    if !normalized.is_empty() {
        out.push(IndexValue::String {
            value: s.to_string(),
            normalized,
        });
    }
}

/// HumanName and Address parts that R4 string search matches, in a fixed order.
const STRING_PARTS: &[&str] = &[
    "text",
    "family",
    "given",
    "prefix",
    "suffix",
    "line",
    "city",
    "district",
    "state",
    "postalCode",
    "country",
];

fn strings(node: &Node<'_>, out: &mut Vec<IndexValue>) {
    match node.value.as_ref() {
        Value::String(s) => push_string(s, out),
        Value::Object(o) => {
            for key in STRING_PARTS {
                match o.get(*key) {
                    Some(Value::String(s)) => push_string(s, out),
                    Some(Value::Array(items)) => {
                        for s in items.iter().filter_map(Value::as_str) {
                            push_string(s, out);
                        }
                    }
                    _ => {}
                }
            }
        }
        _ => {}
    }
}

fn push_token(
    system: Option<&str>,
    code: Option<&str>,
    text: Option<&str>,
    out: &mut Vec<IndexValue>,
) {
    if system.is_none() && code.is_none() && text.is_none() {
        return;
    }
    out.push(IndexValue::Token {
        system: owned(system),
        code: owned(code),
        text: owned(text),
        of_type: None,
    });
}

/// ContactPoint.system codes; a `{system, value}` pair with one of these is a ContactPoint.
const CONTACT_SYSTEMS: &[&str] = &["phone", "fax", "email", "pager", "url", "sms", "other"];

fn is_contact_point(node: &Node<'_>, o: &Map<String, Value>) -> bool {
    node.type_name.as_deref() == Some("ContactPoint")
        || node.name == Some("telecom")
        || (o.contains_key("value")
            && !o.contains_key("type")
            && !o.contains_key("assigner")
            && str_field(o, "system").is_some_and(|s| CONTACT_SYSTEMS.contains(&s)))
}

fn tokens(node: &Node<'_>, out: &mut Vec<IndexValue>) {
    let o = match node.value.as_ref() {
        Value::String(s) if !s.trim().is_empty() => return push_token(None, Some(s), None, out),
        Value::Bool(b) => {
            return push_token(None, Some(if *b { "true" } else { "false" }), None, out)
        }
        Value::Number(n) => return push_token(None, Some(&n.to_string()), None, out),
        Value::Object(o) => o,
        _ => return,
    };
    if is_contact_point(node, o) {
        push_token(None, str_field(o, "value"), None, out);
    } else if o.contains_key("coding") || node.type_name.as_deref() == Some("CodeableConcept") {
        codeable_concept(o, out);
    } else if o.contains_key("value") {
        // Identifier; its type text serves the :text modifier.
        let type_text = o
            .get("type")
            .and_then(Value::as_object)
            .and_then(concept_text);
        let before = out.len();
        push_token(
            str_field(o, "system"),
            str_field(o, "value"),
            type_text,
            out,
        );
        // One more row per typed coding (e.g. v2-0203 MR), so `:of-type` can match the pair.
        if let (Some(value), Some(codings)) = (
            str_field(o, "value"),
            o.get("type")
                .and_then(|t| t.get("coding"))
                .and_then(Value::as_array),
        ) {
            if out.len() > before {
                for c in codings.iter().filter_map(Value::as_object) {
                    if let Some(code) = str_field(c, "code") {
                        out.push(IndexValue::Token {
                            system: owned(str_field(o, "system")),
                            code: Some(value.to_string()),
                            text: owned(type_text),
                            of_type: Some((owned(str_field(c, "system")), code.to_string())),
                        });
                    }
                }
            }
        }
    } else if o.contains_key("code") || o.contains_key("system") || o.contains_key("display") {
        push_token(
            str_field(o, "system"),
            str_field(o, "code"),
            str_field(o, "display"),
            out,
        );
    } else {
        // A CodeableConcept with text only.
        codeable_concept(o, out);
    }
}

/// CodeableConcept.text, else the first coding display.
fn concept_text(cc: &Map<String, Value>) -> Option<&str> {
    str_field(cc, "text").or_else(|| {
        cc.get("coding")?
            .as_array()?
            .iter()
            .filter_map(Value::as_object)
            .find_map(|c| str_field(c, "display"))
    })
}

fn codeable_concept(o: &Map<String, Value>, out: &mut Vec<IndexValue>) {
    let text = str_field(o, "text");
    let codings: Vec<&Map<String, Value>> = o
        .get("coding")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_object).collect())
        .unwrap_or_default();
    let before = out.len();
    for c in codings {
        push_token(
            str_field(c, "system"),
            str_field(c, "code"),
            text.or_else(|| str_field(c, "display")),
            out,
        );
    }
    if out.len() == before {
        push_token(None, None, text, out);
    }
}

fn push_range(start: Option<DateTime<Utc>>, end: Option<DateTime<Utc>>, out: &mut Vec<IndexValue>) {
    if start.is_some() || end.is_some() {
        out.push(IndexValue::Date { start, end });
    }
}

fn period(o: &Map<String, Value>, out: &mut Vec<IndexValue>) {
    let start = str_field(o, "start")
        .and_then(dates::date_range)
        .map(|r| r.0);
    let end = str_field(o, "end").and_then(dates::date_range).map(|r| r.1);
    push_range(start, end, out);
}

fn date_values(node: &Node<'_>, out: &mut Vec<IndexValue>) {
    // A string-typed choice (e.g. CarePlan scheduledString) is free text, not a date.
    if node.type_name.as_deref() == Some("string") {
        return;
    }
    match node.value.as_ref() {
        Value::String(s) => {
            if let Some((s, e)) = dates::date_range(s) {
                push_range(Some(s), Some(e), out);
            }
        }
        Value::Object(o) if o.contains_key("event") || o.contains_key("repeat") => {
            // Timing: each event, and the bounds of the repeat when given as a Period.
            for e in o
                .get("event")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some((s, e)) = e.as_str().and_then(dates::date_range) {
                    push_range(Some(s), Some(e), out);
                }
            }
            if let Some(b) = o
                .get("repeat")
                .and_then(|r| r.get("boundsPeriod"))
                .and_then(Value::as_object)
            {
                period(b, out);
            }
        }
        Value::Object(o) => period(o, out),
        _ => {}
    }
}

fn references(v: &Value, out: &mut Vec<IndexValue>) {
    match v {
        // canonical/uri used as a reference
        Value::String(s) if !s.trim().is_empty() => out.push(IndexValue::Reference {
            target_type: None,
            target_id: None,
            url: Some(s.clone()),
            identifier_system: None,
            identifier_value: None,
        }),
        Value::Object(o) => {
            let parsed = str_field(o, "reference")
                .map(parse_reference)
                .unwrap_or_default();
            let ident = o.get("identifier").and_then(Value::as_object);
            let identifier_system = ident.and_then(|i| str_field(i, "system"));
            let identifier_value = ident.and_then(|i| str_field(i, "value"));
            if parsed == ParsedReference::default() && identifier_value.is_none() {
                return;
            }
            let target_type = parsed.target_type.or_else(|| owned(str_field(o, "type")));
            out.push(IndexValue::Reference {
                target_type,
                target_id: parsed.target_id,
                url: parsed.url,
                identifier_system: owned(identifier_system),
                identifier_value: owned(identifier_value),
            });
        }
        _ => {}
    }
}

/// The exact decimal text of a JSON number (or a numeric string, as some senders use).
fn number_text(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

fn quantities(node: &Node<'_>, out: &mut Vec<IndexValue>) {
    // SampledData has no single value to compare against.
    if node.type_name.as_deref() == Some("SampledData") {
        return;
    }
    let Value::Object(o) = node.value.as_ref() else {
        return;
    };
    let Some(b) = o
        .get("value")
        .and_then(number_text)
        .and_then(|t| decimal::bounds(&t))
    else {
        return;
    };
    out.push(IndexValue::Quantity {
        value: b.value,
        low: b.low,
        high: b.high,
        system: owned(str_field(o, "system")),
        code: owned(str_field(o, "code")),
        unit: owned(str_field(o, "unit")),
    });
}

#[cfg(test)]
mod tests;

/// The half-open instant range `[start, end)` a FHIR date, dateTime or instant covers at its
/// precision (`2024` is the whole year); no zone means UTC. `None` when the text is not a date.
pub fn date_range(text: &str) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    dates::date_range(text)
}

/// Most digits after the point a decimal may have.
pub const MAX_DECIMAL_FRACTION_DIGITS: u32 = decimal::MAX_FRACTION_DIGITS;

/// A decimal's value and the bounds its precision implies, as exact decimal text:
/// `5.4` → (`5.4`, `5.35`, `5.45`). `None` when the text is not a decimal.
pub fn decimal_bounds(text: &str) -> Option<(String, String, String)> {
    decimal::bounds(text).map(|b| (b.value, b.low, b.high))
}
