//! The care-record role policy (`profiles/role-policy.json`): per role, the most it may ever do
//! (a ceiling of SMART scopes), which security labels it sees, whether it sees safeguarding
//! alerts, whether it needs a legitimate relationship and whether it may break glass. Loaded
//! and validated once at start; an invalid policy stops the server.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;

use crate::scope::{parse_scope, ResourceScope, Scope};

/// The policy shipped with the server.
pub const DEFAULT_POLICY: &str = include_str!("../../../profiles/role-policy.json");

/// Labels a policy may name: confidentiality `R`, v3 ActCode sensitivity codes and the
/// project's own access labels. `V` is deliberately absent: it is never granted by role.
const KNOWN_LABELS: &[&str] = &[
    "R",
    "PSY",
    "HIV",
    "SEX",
    "SDV",
    "ETH",
    "ETHUD",
    "SUD",
    "GDIS",
    "third-party",
    "audit-sensitive",
    "safeguarding",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[allow(dead_code)]
    description: Option<String>,
    wildcard_excludes: Vec<String>,
    safeguarding_alerts: Vec<CodingFile>,
    break_glass_reasons: Vec<String>,
    relationship_claim_days: i32,
    roles: BTreeMap<String, RoleFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CodingFile {
    system: String,
    code: String,
    #[allow(dead_code)]
    display: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleFile {
    name: String,
    job_roles: Vec<String>,
    ceiling: Vec<String>,
    labels: Vec<String>,
    safeguarding: bool,
    relationship: bool,
    break_glass: bool,
    #[serde(default)]
    own_source_only: bool,
}

/// One role's limits.
#[derive(Debug, Clone)]
pub struct RolePolicy {
    /// Role id (`gp`, `patient`, …).
    pub id: String,
    /// Human name.
    pub name: String,
    /// NHS national RBAC job-role codes (`R0260`) that map to this role.
    pub job_roles: Vec<String>,
    /// The most the role may do, as scopes.
    pub ceiling: Vec<ResourceScope>,
    /// The ceiling as written (for documentation and the token tool).
    pub ceiling_text: Vec<String>,
    /// Security labels the role sees.
    pub labels: Vec<String>,
    /// Sees safeguarding alerts.
    pub safeguarding: bool,
    /// Needs a legitimate relationship with a patient to see their record (`user/` access).
    pub relationship: bool,
    /// May ask for break-glass access.
    pub break_glass: bool,
    /// Sees and changes only data its own organisation wrote (feed systems).
    pub own_source_only: bool,
}

/// The whole policy.
#[derive(Debug, Clone)]
pub struct Policy {
    roles: BTreeMap<String, RolePolicy>,
    by_job_role: HashMap<String, String>,
    /// Types a `*` in a ceiling does not cover (AuditEvent: only named grants reach it).
    pub wildcard_excludes: Vec<String>,
    /// Alert codings (`system|code`) that make a Flag a safeguarding alert.
    pub safeguarding_alerts: Vec<String>,
    /// Purpose-of-use codes that ask for break-glass.
    pub break_glass_reasons: Vec<String>,
    /// How long a self-claimed relationship lasts.
    pub relationship_claim_days: i32,
}

impl Policy {
    /// The shipped default policy.
    pub fn default_policy() -> Policy {
        Policy::from_json(DEFAULT_POLICY).expect("the shipped role policy is valid")
    }

    /// Parses and validates a policy document.
    pub fn from_json(text: &str) -> Result<Policy, String> {
        let file: PolicyFile =
            serde_json::from_str(text).map_err(|e| format!("role policy: {e}"))?;
        let mut roles = BTreeMap::new();
        let mut by_job_role = HashMap::new();
        for (id, r) in file.roles {
            if id.is_empty() || !id.bytes().all(|b| b.is_ascii_lowercase() || b == b'-') {
                return Err(format!(
                    "role policy: role id '{id}' must be lower-case letters and '-'"
                ));
            }
            let mut ceiling = Vec::new();
            for text in &r.ceiling {
                match parse_scope(text) {
                    Ok(Scope::Resource(s)) => {
                        let names_audit = s.resource_type.as_deref() == Some("AuditEvent");
                        let p = s.permissions;
                        if names_audit && (p.create || p.update || p.delete) {
                            return Err(format!(
                                "role policy: role '{id}' may not write AuditEvents ('{text}')"
                            ));
                        }
                        ceiling.push(s);
                    }
                    Ok(Scope::Other(_)) => {
                        return Err(format!(
                            "role policy: role '{id}' ceiling '{text}' is not a resource scope"
                        ))
                    }
                    Err(e) => return Err(format!("role policy: role '{id}': {e}")),
                }
            }
            for l in &r.labels {
                if !KNOWN_LABELS.contains(&l.as_str()) {
                    return Err(format!(
                        "role policy: role '{id}' names unknown label '{l}'"
                    ));
                }
            }
            for j in &r.job_roles {
                if let Some(other) = by_job_role.insert(j.clone(), id.clone()) {
                    return Err(format!(
                        "role policy: job role {j} maps to both '{other}' and '{id}'"
                    ));
                }
            }
            roles.insert(
                id.clone(),
                RolePolicy {
                    id,
                    name: r.name,
                    job_roles: r.job_roles,
                    ceiling,
                    ceiling_text: r.ceiling,
                    labels: r.labels,
                    safeguarding: r.safeguarding,
                    relationship: r.relationship,
                    break_glass: r.break_glass,
                    own_source_only: r.own_source_only,
                },
            );
        }
        if roles.is_empty() {
            return Err("role policy: no roles".into());
        }
        if file.relationship_claim_days <= 0 {
            return Err("role policy: relationship_claim_days must be positive".into());
        }
        for t in &file.wildcard_excludes {
            if !fhir_model::elements::is_resource_type(t) {
                return Err(format!("role policy: '{t}' is not a resource type"));
            }
        }
        Ok(Policy {
            roles,
            by_job_role,
            wildcard_excludes: file.wildcard_excludes,
            safeguarding_alerts: file
                .safeguarding_alerts
                .into_iter()
                .map(|c| format!("{}|{}", c.system, c.code))
                .collect(),
            break_glass_reasons: file.break_glass_reasons,
            relationship_claim_days: file.relationship_claim_days,
        })
    }

    /// Reads and validates a policy file.
    pub fn load(path: &std::path::Path) -> Result<Policy, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read role policy {}: {e}", path.display()))?;
        Policy::from_json(&text)
    }

    /// A role by id.
    pub fn role(&self, id: &str) -> Option<&RolePolicy> {
        self.roles.get(id)
    }

    /// The role an NHS job-role code (`R0260`) maps to.
    pub fn role_for_job_role(&self, code: &str) -> Option<&RolePolicy> {
        self.by_job_role.get(code).and_then(|id| self.roles.get(id))
    }

    /// Every role, by id.
    pub fn roles(&self) -> impl Iterator<Item = &RolePolicy> {
        self.roles.values()
    }

    /// True when labels or alert codes make a resource hidden from patients, so the audit record
    /// of its access is kept from the patient's view of who saw their record.
    pub fn hidden_from_patients(&self, labels: &[String], alerts: &[String]) -> bool {
        let patient = self.role("patient");
        let seen = |l: &String| patient.is_some_and(|r| r.labels.contains(l));
        let sees_alerts = patient.is_some_and(|r| r.safeguarding);
        labels.iter().any(|l| !seen(l))
            || (!sees_alerts && alerts.iter().any(|a| self.safeguarding_alerts.contains(a)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_policy_has_every_role() {
        let p = Policy::default_policy();
        for id in [
            "gp",
            "hospital-clinician",
            "paramedic",
            "community-nurse",
            "mental-health-clinician",
            "pharmacist",
            "social-worker-adults",
            "social-worker-children",
            "safeguarding-lead",
            "receptionist",
            "patient",
            "privacy-officer",
            "feed",
        ] {
            assert!(p.role(id).is_some(), "{id}");
        }
        assert_eq!(p.role_for_job_role("R0260").unwrap().id, "gp");
        assert_eq!(p.role_for_job_role("R0001").unwrap().id, "privacy-officer");
        assert!(p.role_for_job_role("R9999").is_none());
    }

    #[test]
    fn hidden_from_patients_follows_the_patient_role() {
        let p = Policy::default_policy();
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(!p.hidden_from_patients(&[], &[]));
        // Patients see these labels (their own sensitive information)...
        assert!(!p.hidden_from_patients(&s(&["PSY", "HIV"]), &[]));
        // ...not these, nor one label among many they do not.
        assert!(p.hidden_from_patients(&s(&["third-party"]), &[]));
        assert!(p.hidden_from_patients(&s(&["PSY", "R"]), &[]));
        // Safeguarding alerts are hidden from patients; other alerts are not.
        let alert = "http://snomed.info/sct|766561000000109";
        assert!(p.hidden_from_patients(&[], &s(&[alert])));
        assert!(!p.hidden_from_patients(&[], &s(&["http://snomed.info/sct|1"])));
        // A policy without a patient role hides every labelled resource.
        let mut v: serde_json::Value = serde_json::from_str(DEFAULT_POLICY).unwrap();
        v["roles"].as_object_mut().unwrap().remove("patient");
        let no_patients = Policy::from_json(&v.to_string()).unwrap();
        assert!(no_patients.hidden_from_patients(&s(&["PSY"]), &[]));
        assert!(no_patients.hidden_from_patients(&[], &s(&[alert])));
        assert!(!no_patients.hidden_from_patients(&[], &[]));
    }

    #[test]
    fn invalid_policies_are_refused() {
        let base: serde_json::Value = serde_json::from_str(DEFAULT_POLICY).unwrap();
        let broken = |f: &dyn Fn(&mut serde_json::Value)| {
            let mut v = base.clone();
            f(&mut v);
            Policy::from_json(&v.to_string())
        };
        assert!(broken(&|v| v["roles"]["gp"]["ceiling"][0] = "user/Dragon.rs".into()).is_err());
        assert!(broken(&|v| v["roles"]["gp"]["labels"][0] = "V".into()).is_err());
        assert!(broken(
            &|v| v["roles"]["privacy-officer"]["ceiling"][0] = "user/AuditEvent.rud".into()
        )
        .is_err());
        assert!(broken(&|v| v["roles"]["gp"]["job_roles"][0] = "R0001".into()).is_err());
        assert!(broken(&|v| v["roles"]["gp"]["colour"] = "blue".into()).is_err());
    }
}
