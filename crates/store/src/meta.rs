//! The server-owned parts of a stored resource (id, `meta.versionId`, `meta.lastUpdated`,
//! provenance) and a version made ready to store.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};

use crate::error::StoreError;

/// Returns the resource with its id and meta set, keys ordered resourceType, id, meta, rest.
pub(crate) fn stamp(body: Value, id: &str, version: i32, at: DateTime<Utc>) -> Value {
    let Value::Object(mut obj) = body else {
        return body;
    };
    let resource_type = obj.remove("resourceType").unwrap_or(Value::Null);
    obj.remove("id");
    let mut meta = match obj.remove("meta") {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    meta.remove("versionId");
    meta.remove("lastUpdated");
    let mut new_meta = Map::new();
    new_meta.insert("versionId".into(), Value::String(version.to_string()));
    new_meta.insert("lastUpdated".into(), Value::String(instant(at)));
    new_meta.extend(meta);
    let mut out = Map::new();
    out.insert("resourceType".into(), resource_type);
    out.insert("id".into(), Value::String(id.to_string()));
    out.insert("meta".into(), Value::Object(new_meta));
    out.extend(obj);
    Value::Object(out)
}

/// ODS organisation codes, the system of the provenance tag.
pub const ODS_TAG_SYSTEM: &str = "https://fhir.nhs.uk/Id/ods-organization-code";

/// Stamps who sent a version: `meta.source` is the writing system and a `meta.tag` in the ODS
/// system names its organisation. Both replace whatever the body claimed, so provenance comes
/// from the authenticated client and never from the body alone. Adds the security labels its
/// content calls for (`fhir_model::labelling`) too, before any comparison with the stored
/// version, so an unchanged resource stays unchanged.
pub(crate) fn provenance(mut body: Value, source: Option<&str>, org: Option<&str>) -> Value {
    fhir_model::labelling::apply(&mut body);
    if source.is_none() && org.is_none() {
        return body;
    }
    let Value::Object(mut obj) = body else {
        return body;
    };
    let meta = obj
        .entry("meta")
        .or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    let meta = meta.as_object_mut().expect("meta is an object");
    if let Some(source) = source {
        meta.insert("source".into(), Value::String(source.to_string()));
    }
    if let Some(org) = org {
        let mut tags: Vec<Value> = match meta.remove("tag") {
            Some(Value::Array(tags)) => tags
                .into_iter()
                .filter(|t| t["system"].as_str() != Some(ODS_TAG_SYSTEM))
                .collect(),
            _ => Vec::new(),
        };
        tags.push(serde_json::json!({"system": ODS_TAG_SYSTEM, "code": org}));
        meta.insert("tag".into(), Value::Array(tags));
    }
    Value::Object(obj)
}

/// The resource without server-owned fields, for no-op detection.
pub(crate) fn content_of(body: &Value) -> Value {
    let mut v = body.clone();
    if let Some(obj) = v.as_object_mut() {
        obj.remove("id");
        let empty = match obj.get_mut("meta").and_then(Value::as_object_mut) {
            Some(meta) => {
                meta.remove("versionId");
                meta.remove("lastUpdated");
                meta.is_empty()
            }
            None => false,
        };
        if empty {
            obj.remove("meta");
        }
    }
    v
}

/// A FHIR instant with millisecond precision in UTC.
pub fn instant(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Now, truncated to what an instant in the body carries, so the body and the row agree.
pub(crate) fn now_millis() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
}

/// A version ready to store: its bytes and what the access rules read from it.
pub(crate) struct Prepared {
    pub bytes: Vec<u8>,
    pub compartments: Vec<String>,
    pub labels: Vec<String>,
    pub alerts: Vec<String>,
    pub value: Value,
}

pub(crate) fn prepare(
    body: Value,
    id: &str,
    version: i32,
    at: DateTime<Utc>,
) -> Result<Prepared, StoreError> {
    let stamped = stamp(body, id, version, at);
    let bytes = serde_json::to_vec(&stamped).map_err(|e| StoreError::Invalid(e.to_string()))?;
    Ok(Prepared {
        bytes,
        compartments: fhir_model::compartment::patient_compartments(&stamped),
        labels: fhir_model::access::security_labels(&stamped),
        alerts: fhir_model::access::alert_codes(&stamped),
        value: stamped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stamps_and_strips() {
        let at = DateTime::from_timestamp_millis(1_700_000_000_123).unwrap();
        let body = json!({"name": [], "resourceType": "Patient", "meta": {"profile": ["p"], "versionId": "9"}});
        let s = stamp(body, "x", 2, at);
        let keys: Vec<&String> = s.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["resourceType", "id", "meta", "name"]);
        assert_eq!(s["meta"]["versionId"], "2");
        assert_eq!(s["meta"]["lastUpdated"], "2023-11-14T22:13:20.123Z");
        assert_eq!(s["meta"]["profile"][0], "p");
        let p = provenance(
            json!({"resourceType": "Patient", "meta": {"source": "forged", "tag": [
                {"system": ODS_TAG_SYSTEM, "code": "FORGED"}, {"system": "x", "code": "keep"}]}}),
            Some("urn:invicta:client:feed"),
            Some("R0X"),
        );
        assert_eq!(p["meta"]["source"], "urn:invicta:client:feed");
        assert_eq!(
            p["meta"]["tag"],
            json!([{"system": "x", "code": "keep"}, {"system": ODS_TAG_SYSTEM, "code": "R0X"}])
        );
        assert_eq!(
            content_of(&s),
            json!({"resourceType": "Patient", "meta": {"profile": ["p"]}, "name": []})
        );
    }
}
