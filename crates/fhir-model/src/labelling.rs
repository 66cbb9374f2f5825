//! Labels from content: a resource whose coded content is sensitive (a mental health episode,
//! a sexual health diagnosis, a child protection plan) gets the matching security label at
//! every write, whoever sent it, so the role policy's label rules apply to it although its
//! source system did not label it. The rules are data (`profiles/sensitive-content.json`).

use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::OnceLock;

use crate::access::{ACCESS_LABEL_SYSTEM, ACT_CODE_SYSTEM};
use crate::index::{extract_params, IndexValue};

const RULES: &str = include_str!("../../../profiles/sensitive-content.json");

#[derive(Deserialize)]
struct RuleFile {
    rules: Vec<Rule>,
}

/// One rule: resources of `type` whose parameter `param` holds one of `codes` get `label`.
#[derive(Deserialize)]
struct Rule {
    label: String,
    #[serde(rename = "type")]
    resource_type: String,
    param: String,
    codes: Vec<String>,
}

fn rules() -> &'static [Rule] {
    static RULE_SET: OnceLock<Vec<Rule>> = OnceLock::new();
    // The file is part of the build and checked by the unit tests below.
    RULE_SET.get_or_init(|| {
        serde_json::from_str::<RuleFile>(RULES)
            .map(|f| f.rules)
            .unwrap_or_default()
    })
}

/// The system a label's code belongs to: v3 ActCode sensitivity codes, else the project's own.
fn system_of(label: &str) -> &'static str {
    if label.bytes().all(|b| b.is_ascii_uppercase()) {
        ACT_CODE_SYSTEM
    } else {
        ACCESS_LABEL_SYSTEM
    }
}

/// The labels `resource`'s content calls for, sorted and without duplicates.
pub fn content_labels(resource: &Value) -> Vec<&'static str> {
    let Some(rt) = resource.get("resourceType").and_then(Value::as_str) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for rule in rules().iter().filter(|r| r.resource_type == rt) {
        let values = extract_params(resource, std::slice::from_ref(&rule.param));
        let hit = values.iter().any(|e| match &e.value {
            IndexValue::Token {
                system: Some(s),
                code: Some(c),
                ..
            } => rule.codes.iter().any(|k| k.split_once('|') == Some((s, c))),
            _ => false,
        });
        if hit {
            out.push(rule.label.as_str());
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Adds to `meta.security` each label the content calls for that is not there yet.
pub fn apply(resource: &mut Value) {
    let wanted = content_labels(resource);
    if wanted.is_empty() {
        return;
    }
    let Some(obj) = resource.as_object_mut() else {
        return;
    };
    let meta = obj.entry("meta").or_insert_with(|| json!({}));
    if !meta.is_object() {
        *meta = json!({});
    }
    let security = meta
        .as_object_mut()
        .map(|m| m.entry("security").or_insert_with(|| json!([])));
    let Some(Value::Array(security)) = security else {
        return;
    };
    for label in wanted {
        let system = system_of(label);
        let present = security
            .iter()
            .any(|c| c["system"].as_str() == Some(system) && c["code"].as_str() == Some(label));
        if !present {
            security.push(json!({"system": system, "code": label}));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_and_name_real_parameters() {
        let parsed: RuleFile = serde_json::from_str(RULES).expect("sensitive-content.json");
        assert!(!parsed.rules.is_empty());
        for r in &parsed.rules {
            let p = crate::search_params::lookup(&r.resource_type, &r.param)
                .unwrap_or_else(|| panic!("{}.{} is no parameter", r.resource_type, r.param));
            assert_eq!(p.kind, crate::search_params::ParamType::Token);
            assert!(r.codes.iter().all(|c| c.contains('|')), "{}", r.label);
        }
    }

    #[test]
    fn mental_health_episode_is_labelled_once_and_others_are_not() {
        let mut ep = json!({"resourceType": "EpisodeOfCare", "type": [{"coding": [{
            "system": "https://invicta.example.org/fhir/CodeSystem/episode-type",
            "code": "mental-health"}]}]});
        apply(&mut ep);
        apply(&mut ep);
        assert_eq!(
            ep["meta"]["security"],
            json!([{"system": ACT_CODE_SYSTEM, "code": "PSY"}])
        );
        assert_eq!(crate::access::security_labels(&ep), ["PSY"]);
        let mut social = json!({"resourceType": "EpisodeOfCare", "type": [{"coding": [{
            "system": "https://invicta.example.org/fhir/CodeSystem/episode-type",
            "code": "social-care-adults"}]}]});
        apply(&mut social);
        assert!(social.get("meta").is_none());
    }

    #[test]
    fn child_protection_plan_gets_the_project_label() {
        let plan = json!({"resourceType": "CarePlan", "category": [{"coding": [{
            "system": "https://invicta.example.org/fhir/CodeSystem/care-plan-category",
            "code": "child-protection-plan"}]}]});
        assert_eq!(content_labels(&plan), ["safeguarding"]);
        assert_eq!(system_of("safeguarding"), ACCESS_LABEL_SYSTEM);
    }
}
