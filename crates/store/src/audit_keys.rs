//! The search keys of an AuditEvent row: one text per searchable value, in one array under one
//! GIN index, so an equality search of the audit trail is an index probe and writing an event
//! costs one row instead of a resource, a history row and a dozen index rows. The values nearly
//! every event carries ([`ROUTINE`]) go to a second, unindexed array instead. The writer
//! ([`keys_of`]) and the search compiler (crate `search`, through the `*_key` functions) build
//! keys here, so the two cannot disagree on the format.
//!
//! Formats (`·` is [`SEP`]; every part is bounded by [`crate::equality_key`]):
//! - token: `param·code` and `param·system·code` (system empty when the coding has none)
//! - reference: `param·Type/id`, or `param·url` for an absolute one; a Reference.identifier
//!   gives `param:identifier·value` and `param:identifier·system·value`
//! - string: `param·normalised text` (prefix searches read the keys with `LIKE`)
//! - uri: `param·uri`
//!
//! Dates are not keys: `date` is the `recorded` column and `_lastUpdated` the row's own.

use fhir_model::index::{IndexEntry, IndexValue};

use crate::index_key::{equality_key, prefix_key};

/// Separates the parts of a key. Values never hold it: [`part`] replaces it.
pub const SEP: char = '\u{1f}';
/// Separates keys where a row's keys travel as one text (the writer's batch insert); no key
/// holds it.
pub const LIST_SEP: char = '\u{1e}';

/// `s` without the separators.
fn clean(s: &str) -> String {
    s.replace([SEP, LIST_SEP], "\u{fffd}")
}

/// One part of a key: bounded like any index key, with [`SEP`] replaced so parts never run
/// into each other.
fn part(s: &str) -> String {
    let bounded = equality_key(s);
    if bounded.contains([SEP, LIST_SEP]) {
        clean(&bounded)
    } else {
        bounded.into_owned()
    }
}

/// `param·code`: a token with this code in any system.
pub fn token_code_key(param: &str, code: &str) -> String {
    format!("{param}{SEP}{}", part(code))
}

/// `param·system·code`: a token with this code in this system (`""`: in no system).
pub fn token_system_key(param: &str, system: &str, code: &str) -> String {
    format!("{param}{SEP}{}{SEP}{}", part(system), part(code))
}

/// The start of every `param·system·…` key: a token in this system, any code.
pub fn token_system_prefix(param: &str, system: &str) -> String {
    format!("{param}{SEP}{}{SEP}", part(system))
}

/// `param·target`: a reference to `Type/id` or to an absolute URL.
pub fn reference_key(param: &str, target: &str) -> String {
    format!("{param}{SEP}{}", part(target))
}

/// `param:identifier·value`.
pub fn identifier_value_key(param: &str, value: &str) -> String {
    format!("{param}:identifier{SEP}{}", part(value))
}

/// `param:identifier·system·value`.
pub fn identifier_key(param: &str, system: &str, value: &str) -> String {
    format!(
        "{param}:identifier{SEP}{}{SEP}{}",
        part(system),
        part(value)
    )
}

/// The start of every `param:identifier·system·…` key.
pub fn identifier_system_prefix(param: &str, system: &str) -> String {
    format!("{param}:identifier{SEP}{}{SEP}", part(system))
}

/// The start of every key of a string or uri parameter (`param·`).
pub fn param_prefix(param: &str) -> String {
    format!("{param}{SEP}")
}

/// `param·text`: a string parameter's normalised value (its prefix key) or a uri.
pub fn text_key(param: &str, text: &str) -> String {
    format!("{param}{SEP}{}", clean(prefix_key(text)))
}

/// Token values nearly every AuditEvent the server writes carries, by parameter: their keys go
/// to the row's unindexed `routine` column, not under the GIN index (a search for one matches
/// most of the trail, where an index is no help, and indexing them was most of what writing
/// an event cost). Keys in any system count (`param·code` and `param·system·code`), so the
/// writer and the search compiler decide from the key alone.
pub const ROUTINE: &[(&str, &[&str])] = &[
    ("type", &["rest"]),
    ("site", &["Invicta"]),
    ("action", &["R", "E"]),
    ("outcome", &["0"]),
    ("purpose", &["TREAT"]),
    (
        "subtype",
        &[
            "read",
            "vread",
            "search-type",
            "search-system",
            "history-instance",
        ],
    ),
    ("entity-type", &["1", "2"]),
    ("entity-role", &["1", "3", "4", "24"]),
];

/// Whether `key` is a routine token value ([`ROUTINE`]), kept out of the index.
pub fn is_routine(key: &str) -> bool {
    let mut parts = key.split(SEP);
    let Some(param) = parts.next() else {
        return false;
    };
    let Some((_, codes)) = ROUTINE.iter().find(|(p, _)| *p == param) else {
        return false;
    };
    let rest: Vec<&str> = parts.collect();
    match rest.as_slice() {
        [code] | [_, code] => codes.contains(code),
        _ => false,
    }
}

/// The keys of an AuditEvent's index entries, and its `date` (AuditEvent.recorded).
pub fn keys_of(entries: &[IndexEntry]) -> (Vec<String>, Option<chrono::DateTime<chrono::Utc>>) {
    let mut keys = Vec::with_capacity(entries.len() * 2);
    let mut recorded = None;
    for e in entries {
        let p = e.param.as_str();
        if p == "_id" {
            // The row's own column.
            continue;
        }
        match &e.value {
            IndexValue::Token { system, code, .. } => {
                if let Some(code) = code {
                    keys.push(token_code_key(p, code));
                    keys.push(token_system_key(p, system.as_deref().unwrap_or(""), code));
                } else if let Some(system) = system {
                    // A system without a code: found by `system|` only.
                    keys.push(token_system_prefix(p, system));
                }
            }
            IndexValue::Reference {
                target_type,
                target_id,
                url,
                identifier_system,
                identifier_value,
            } => {
                match (target_type, target_id, url) {
                    (Some(t), Some(id), _) => keys.push(reference_key(p, &format!("{t}/{id}"))),
                    (_, _, Some(url)) => keys.push(reference_key(p, url)),
                    _ => {}
                }
                if let Some(value) = identifier_value {
                    keys.push(identifier_value_key(p, value));
                    keys.push(identifier_key(
                        p,
                        identifier_system.as_deref().unwrap_or(""),
                        value,
                    ));
                }
            }
            IndexValue::String { normalized, .. } => keys.push(text_key(p, normalized)),
            IndexValue::Uri { value } => keys.push(text_key(p, value)),
            IndexValue::Date { start, .. } if p == "date" => recorded = recorded.or(*start),
            _ => {}
        }
    }
    keys.sort();
    keys.dedup();
    (keys, recorded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_audit_event_has_a_key_per_searchable_value() {
        let event = json!({
            "resourceType": "AuditEvent", "id": "a1",
            "meta": {"tag": [{"system": "https://f/flag", "code": "review"}]},
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest"},
            "subtype": [{"system": "http://hl7.org/fhir/restful-interaction", "code": "read"}],
            "action": "R", "recorded": "2026-12-03T10:00:00Z", "outcome": "0",
            "agent": [{"who": {"reference": "Practitioner/pr1", "identifier": {"system": "https://u", "value": "u1"}},
                       "altId": "G1", "requestor": true}],
            "source": {"observer": {"display": "x"}},
            "entity": [{"what": {"reference": "Patient/p1"}},
                       {"what": {"identifier": {"system": "https://req", "value": "r\u{1f}1"}}}]
        });
        let (keys, recorded) = keys_of(&fhir_model::index::extract(&event));
        for want in [
            token_code_key("action", "R"),
            token_system_key("action", "", "R"),
            token_code_key("subtype", "read"),
            token_system_key("subtype", "http://hl7.org/fhir/restful-interaction", "read"),
            token_code_key("altid", "G1"),
            token_system_key("_tag", "https://f/flag", "review"),
            reference_key("patient", "Patient/p1"),
            reference_key("entity", "Patient/p1"),
            reference_key("agent", "Practitioner/pr1"),
            identifier_key("entity", "https://req", "r\u{fffd}1"),
            identifier_value_key("agent", "u1"),
        ] {
            assert!(keys.contains(&want), "{want:?} missing from {keys:?}");
        }
        assert!(is_routine(&token_system_key("action", "", "R")));
        assert!(is_routine(&token_code_key("subtype", "read")));
        assert!(!is_routine(&token_code_key("subtype", "create")));
        assert!(!is_routine(&token_code_key("action", "D")));
        assert!(!is_routine(&token_code_key("altid", "R")));
        assert!(!is_routine(&reference_key("patient", "Patient/p1")));
        assert!(!is_routine(&token_system_prefix("action", "")));
        assert_eq!(
            recorded,
            chrono::DateTime::parse_from_rfc3339("2026-12-03T10:00:00Z")
                .ok()
                .map(|d| d.to_utc())
        );
    }
}
