//! A Bundle built by an interaction whose entries may hold stored resources (a batch or
//! transaction response). Written out by [`StoredBundle::render`], which copies the stored
//! bodies in as they are when nothing asks to change them, as a searchset does: parsing each
//! body back into a value only to write it out again was a tenth of a feed transaction's CPU.

use serde_json::{Map, Value};

use crate::error::{internal, Result};
use crate::render::Output;

/// A Bundle: its head (every element but `entry`) and its entries.
pub struct StoredBundle {
    head: Map<String, Value>,
    entries: Vec<StoredEntry>,
}

/// One entry: its elements other than `resource`, and the stored resource when it has one.
struct StoredEntry {
    elements: Map<String, Value>,
    resource: Option<Vec<u8>>,
}

impl StoredBundle {
    /// A Bundle of `head`'s elements (an object; `entry` is given by [`StoredBundle::push`]).
    pub fn new(head: Value) -> StoredBundle {
        let head = match head {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        StoredBundle {
            head,
            entries: Vec::new(),
        }
    }

    /// Adds an entry of `elements` (an object) and, when the entry carries one, a stored
    /// resource, which goes after `fullUrl`.
    pub fn push(&mut self, elements: Value, resource: Option<Vec<u8>>) {
        let elements = match elements {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        self.entries.push(StoredEntry { elements, resource });
    }

    /// The Bundle as a value, each stored resource subset as `output` asks.
    pub fn to_value(&self, output: &Output) -> Result<Value> {
        let mut bundle = self.head.clone();
        if !self.entries.is_empty() {
            let entries = self
                .entries
                .iter()
                .map(|e| {
                    let resource = match &e.resource {
                        Some(body) => {
                            let v: Value = serde_json::from_slice(body).map_err(internal)?;
                            Some(output.subset(&v))
                        }
                        None => None,
                    };
                    Ok(Value::Object(in_order(&e.elements, resource)))
                })
                .collect::<Result<Vec<_>>>()?;
            bundle.insert("entry".into(), Value::Array(entries));
        }
        Ok(Value::Object(bundle))
    }

    /// The Bundle written out; stored resources are copied in as they are when `output` allows.
    pub fn render(&self, output: &Output) -> Result<Vec<u8>> {
        if !output.is_verbatim() {
            return output.render(&self.to_value(output)?);
        }
        let mut out = Vec::with_capacity(
            256 + self
                .entries
                .iter()
                .map(|e| 256 + e.resource.as_ref().map_or(0, Vec::len))
                .sum::<usize>(),
        );
        out.push(b'{');
        let mut first = true;
        for (k, v) in &self.head {
            member(&mut out, &mut first, k, |out| write_value(out, v))?;
        }
        if !self.entries.is_empty() {
            member(&mut out, &mut first, "entry", |out| {
                out.push(b'[');
                for (i, e) in self.entries.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write_entry(out, e)?;
                }
                out.push(b']');
                Ok(())
            })?;
        }
        out.push(b'}');
        Ok(out)
    }
}

/// An entry's members in FHIR's order: `fullUrl`, then `resource`, then the rest.
fn in_order(elements: &Map<String, Value>, resource: Option<Value>) -> Map<String, Value> {
    let mut m = Map::with_capacity(elements.len() + 1);
    if let Some(u) = elements.get("fullUrl") {
        m.insert("fullUrl".into(), u.clone());
    }
    if let Some(r) = resource {
        m.insert("resource".into(), r);
    }
    for (k, v) in elements {
        if k != "fullUrl" {
            m.insert(k.clone(), v.clone());
        }
    }
    m
}

fn write_entry(out: &mut Vec<u8>, e: &StoredEntry) -> Result<()> {
    out.push(b'{');
    let mut first = true;
    if let Some(u) = e.elements.get("fullUrl") {
        member(out, &mut first, "fullUrl", |out| write_value(out, u))?;
    }
    if let Some(body) = &e.resource {
        member(out, &mut first, "resource", |out| {
            out.extend_from_slice(body);
            Ok(())
        })?;
    }
    for (k, v) in &e.elements {
        if k != "fullUrl" {
            member(out, &mut first, k, |out| write_value(out, v))?;
        }
    }
    out.push(b'}');
    Ok(())
}

/// Writes `"key":` (after a comma unless it is the object's first member), then the value.
fn member(
    out: &mut Vec<u8>,
    first: &mut bool,
    key: &str,
    value: impl FnOnce(&mut Vec<u8>) -> Result<()>,
) -> Result<()> {
    if !*first {
        out.push(b',');
    }
    *first = false;
    serde_json::to_writer(&mut *out, key).map_err(internal)?;
    out.push(b':');
    value(out)
}

fn write_value(out: &mut Vec<u8>, v: &Value) -> Result<()> {
    serde_json::to_writer(out, v).map_err(internal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::Format;
    use serde_json::json;

    fn sample() -> StoredBundle {
        let mut b = StoredBundle::new(json!({"resourceType": "Bundle", "type": "batch-response"}));
        b.push(
            json!({"fullUrl": "http://h/fhir/Observation/1", "response": {"status": "201 Created"}}),
            Some(br#"{"resourceType":"Observation","id":"1","text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"},"status":"final","code":{"text":"x"}}"#.to_vec()),
        );
        b.push(json!({"response": {"status": "404 Not Found"}}), None);
        b.push(
            json!({}),
            Some(br#"{"resourceType":"Patient","id":"p"}"#.to_vec()),
        );
        b
    }

    #[test]
    fn verbatim_output_copies_bodies_in_and_equals_the_value_written_out() {
        let b = sample();
        let plain = Output::default();
        let bytes = b.render(&plain).unwrap();
        let parsed: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(parsed, b.to_value(&plain).unwrap());
        assert_eq!(parsed["entry"][0]["resource"]["status"], "final");
        assert_eq!(parsed["entry"][2]["resource"]["id"], "p");
        assert!(parsed["entry"][1].get("resource").is_none());
        let text = String::from_utf8(bytes).unwrap();
        assert!(
            text.contains(r#"{"fullUrl":"http://h/fhir/Observation/1","resource":{"resourceType":"Observation""#),
            "fullUrl, then the resource as stored: {text}"
        );
    }

    #[test]
    fn other_outputs_subset_and_format_each_resource() {
        let b = sample();
        let summary = Output {
            summary: Some(fhir_model::summary::SummaryMode::Data),
            ..Output::default()
        };
        let parsed: Value = serde_json::from_slice(&b.render(&summary).unwrap()).unwrap();
        let resource = &parsed["entry"][0]["resource"];
        assert_eq!(resource["status"], "final");
        assert!(
            resource.get("text").is_none(),
            "_summary=data drops the narrative"
        );
        let xml = Output {
            format: Format::Xml,
            ..Output::default()
        };
        let text = String::from_utf8(b.render(&xml).unwrap()).unwrap();
        assert!(
            text.contains("<Bundle xmlns=\"http://hl7.org/fhir\">"),
            "{text}"
        );
        assert!(text.contains("<status value=\"final\"/>"), "{text}");
    }
}
