//! References between a transaction's entries: `fullUrl`s (`urn:uuid:`, absolute URLs) are
//! replaced by the `Type/id` each entry resolved to, and conditional references
//! (`Patient?identifier=…`) by the one resource their search finds.

use std::collections::HashMap;

use serde_json::Value;

use crate::error::Error;

/// Nesting beyond this is refused rather than walked (a hostile body must not exhaust the stack).
const MAX_DEPTH: usize = 64;

/// True when `reference` is a conditional reference (`Type?query`).
pub fn is_conditional(reference: &str) -> bool {
    match reference.split_once('?') {
        Some((t, q)) => !q.is_empty() && fhir_model::elements::is_resource_type(t),
        None => false,
    }
}

/// Rewrites the references of `value`: a string that is some entry's `fullUrl` becomes that
/// entry's `Type/id` (wherever it appears, as `urn:uuid:` values may sit in any uri), and a
/// conditional `reference` is replaced by what `resolve` returns for it.
pub fn rewrite(
    value: &mut Value,
    full_urls: &HashMap<String, String>,
    resolve: &mut dyn FnMut(&str) -> Result<String, Error>,
) -> Result<(), Error> {
    walk(value, full_urls, resolve, 0, false)
}

fn walk(
    value: &mut Value,
    full_urls: &HashMap<String, String>,
    resolve: &mut dyn FnMut(&str) -> Result<String, Error>,
    depth: usize,
    is_reference: bool,
) -> Result<(), Error> {
    if depth > MAX_DEPTH {
        return Err(Error::invalid("the resource is nested too deeply"));
    }
    match value {
        Value::String(s) => {
            if let Some(target) = full_urls.get(s.as_str()) {
                *s = target.clone();
            } else if is_reference && is_conditional(s) {
                *s = resolve(s)?;
            }
        }
        Value::Array(items) => {
            for item in items {
                walk(item, full_urls, resolve, depth + 1, is_reference)?;
            }
        }
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                walk(v, full_urls, resolve, depth + 1, k == "reference")?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// The `identifier=system|value` of a conditional reference, when that is all it asks.
pub fn single_identifier(query: &str) -> Option<(Option<String>, String)> {
    let pairs = search::text::pairs(query).ok()?;
    match pairs.as_slice() {
        [(k, v)] if k == "identifier" => match v.split_once('|') {
            Some((s, val)) => Some(((!s.is_empty()).then(|| s.to_string()), val.to_string())),
            None => Some((None, v.clone())),
        },
        _ => None,
    }
}

/// True when `resource` carries the identifier.
pub fn has_identifier(resource: &Value, system: Option<&str>, value: &str) -> bool {
    resource["identifier"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|i| {
            i["value"].as_str() == Some(value)
                && system.is_none_or(|s| i["system"].as_str() == Some(s))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rewrites_full_urls_and_conditional_references() {
        let mut map = HashMap::new();
        map.insert("urn:uuid:1".to_string(), "Patient/p1".to_string());
        let mut v = json!({
            "subject": {"reference": "urn:uuid:1"},
            "performer": [{"reference": "Practitioner?identifier=x|1"}],
            "note": [{"text": "Patient?identifier=x|1"}],
            "focus": [{"reference": "urn:uuid:unknown"}]
        });
        let mut asked = Vec::new();
        rewrite(&mut v, &map, &mut |r| {
            asked.push(r.to_string());
            Ok("Practitioner/d1".into())
        })
        .unwrap();
        assert_eq!(v["subject"]["reference"], "Patient/p1");
        assert_eq!(v["performer"][0]["reference"], "Practitioner/d1");
        assert_eq!(v["note"][0]["text"], "Patient?identifier=x|1");
        assert_eq!(v["focus"][0]["reference"], "urn:uuid:unknown");
        assert_eq!(asked, ["Practitioner?identifier=x|1"]);
    }

    #[test]
    fn reads_a_single_identifier_condition() {
        assert_eq!(
            single_identifier("identifier=https://fhir.nhs.uk/Id/nhs-number|9434765919"),
            Some((
                Some("https://fhir.nhs.uk/Id/nhs-number".into()),
                "9434765919".into()
            ))
        );
        assert_eq!(single_identifier("name=x"), None);
        assert!(is_conditional("Patient?identifier=a|b"));
        assert!(!is_conditional("Patient/1"));
        assert!(!is_conditional("Nope?x=1"));
    }
}
