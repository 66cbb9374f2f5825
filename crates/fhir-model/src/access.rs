//! What a resource says about who may see it: its security labels (`meta.security`) and the
//! codings that classify an alert (Flag category and code). The store keeps both beside every
//! version so that access rules are a cheap array test in SQL, and the policy (crate `authz`)
//! decides which of them each role may see.

use serde_json::Value;

/// HL7 v3 Confidentiality (`R` restricted, `V` very restricted, …).
pub const CONFIDENTIALITY_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";
/// HL7 v3 ActCode, whose sensitivity codes (`PSY`, `HIV`, `SEX`, `SDV`, `ETH`, …) label content.
pub const ACT_CODE_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
/// The project's own access labels (e.g. `third-party`: information about someone else).
pub const ACCESS_LABEL_SYSTEM: &str = "https://invicta.example.org/fhir/CodeSystem/access-label";
/// Identifier system of request ids, on an entity of every AuditEvent
/// (`AuditEvent?entity:identifier=<system>|<id>` finds a request's records).
pub const REQUEST_ID_SYSTEM: &str = "https://invicta.example.org/fhir/Id/request-id";
/// Code system of the audit trail's flags (`review`: break-glass or a relationship claim).
pub const AUDIT_FLAG_SYSTEM: &str = "https://invicta.example.org/fhir/CodeSystem/audit-flag";
/// Identifier system of user ids (`sub`) from tokens, on an AuditEvent's agent.
pub const USER_ID_SYSTEM: &str = "https://invicta.example.org/fhir/Id/user";

/// The access-relevant security labels of a resource, as bare codes: confidentiality `R` and
/// `V` (the lower levels `U`, `L`, `M`, `N` restrict nothing and are left out), every v3 ActCode
/// code, every project access label, and the labels its content calls for
/// (`labelling`, so a resource stored before a rule existed is judged by it too). Sorted,
/// without duplicates.
pub fn security_labels(resource: &Value) -> Vec<String> {
    let mut out: Vec<String> = crate::labelling::content_labels(resource)
        .into_iter()
        .map(str::to_string)
        .collect();
    if let Some(labels) = resource["meta"]["security"].as_array() {
        for coding in labels {
            let (Some(system), Some(code)) = (coding["system"].as_str(), coding["code"].as_str())
            else {
                continue;
            };
            let keep = match system {
                CONFIDENTIALITY_SYSTEM => matches!(code, "R" | "V"),
                ACT_CODE_SYSTEM | ACCESS_LABEL_SYSTEM => true,
                _ => false,
            };
            if keep {
                out.push(code.to_string());
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The codings of a Flag's `category` and `code`, as `system|code`: what recognises a
/// safeguarding alert. Empty for every other resource type.
pub fn alert_codes(resource: &Value) -> Vec<String> {
    if resource["resourceType"].as_str() != Some("Flag") {
        return Vec::new();
    }
    let mut concepts: Vec<&Value> = Vec::new();
    if let Some(categories) = resource["category"].as_array() {
        concepts.extend(categories);
    }
    concepts.push(&resource["code"]);
    let mut out: Vec<String> = concepts
        .iter()
        .filter_map(|c| c["coding"].as_array())
        .flatten()
        .filter_map(|coding| {
            Some(format!(
                "{}|{}",
                coding["system"].as_str().unwrap_or(""),
                coding["code"].as_str()?
            ))
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn labels_keep_only_restricting_codes() {
        let r = json!({"resourceType": "Observation", "meta": {"security": [
            {"system": CONFIDENTIALITY_SYSTEM, "code": "N"},
            {"system": CONFIDENTIALITY_SYSTEM, "code": "R"},
            {"system": ACT_CODE_SYSTEM, "code": "PSY"},
            {"system": ACCESS_LABEL_SYSTEM, "code": "third-party"},
            {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "HTEST"},
            {"code": "V"}
        ]}});
        assert_eq!(security_labels(&r), vec!["PSY", "R", "third-party"]);
        assert!(security_labels(&json!({"resourceType": "Patient"})).is_empty());
    }

    #[test]
    fn alert_codes_come_from_flags_only() {
        let flag = json!({"resourceType": "Flag",
            "category": [{"coding": [{"system": "https://invicta.example.org/fhir/CodeSystem/flag-category", "code": "safeguarding"}]}],
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "766561000000109"}]}});
        assert_eq!(
            alert_codes(&flag),
            vec![
                "http://snomed.info/sct|766561000000109",
                "https://invicta.example.org/fhir/CodeSystem/flag-category|safeguarding"
            ]
        );
        let obs = json!({"resourceType": "Observation", "code": {"coding": [{"system": "s", "code": "c"}]}});
        assert!(alert_codes(&obs).is_empty());
    }
}
