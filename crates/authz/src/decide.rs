//! The access decision for one request: whether the interaction is allowed at all (token scopes
//! intersected with the role's ceiling), and the [`Rules`] that say which resources it may see
//! or change. The rules are data; `store` and `search` turn them into SQL.

use crate::policy::{Policy, RolePolicy};
use crate::principal::Principal;
use crate::scope::{Context, Interaction, ResourceScope};

/// Which resource types are visible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeSet {
    /// Every type.
    All,
    /// Every type but these.
    AllExcept(Vec<String>),
    /// Only these.
    Only(Vec<String>),
}

/// A restriction as search conditions: any of the alternatives, each all of its `(param, value)`.
pub type Alternatives = Vec<Vec<(String, String)>>;

/// What a request may see or change.
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    /// Visible types.
    pub types: TypeSet,
    /// Per type, restrictions every row of that type must meet (each entry of the inner list
    /// must hold: one from the token's scopes, one from the role's ceiling).
    pub restrictions: Vec<(String, Vec<Alternatives>)>,
    /// `patient/` context: only this patient's compartment.
    pub compartment: Option<String>,
    /// Security labels visible.
    pub visible_labels: Vec<String>,
    /// The caller's organisation (sees its own `V` resources).
    pub own_org: Option<String>,
    /// Alert codings hidden (safeguarding).
    pub hidden_alerts: Vec<String>,
    /// Relationship needed with this organisation (and the launch patient counts as related).
    pub relationship: Option<(String, Option<String>)>,
    /// Only rows written by this organisation.
    pub only_org: Option<String>,
    /// Labels break-glass would reveal to this user (so a withheld read can say so).
    pub liftable_labels: Vec<String>,
    /// The role may break glass and has not (so a withheld answer can offer it).
    pub may_break_glass: bool,
}

/// Emergency access asked for with the request (headers) or in the token.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Emergency {
    /// `X-Purpose-Of-Use` (v3-ActReason, e.g. `BTG`, `ETREAT`).
    pub purpose_of_use: Option<String>,
    /// `X-Break-Glass-Reason`.
    pub reason: Option<String>,
    /// `X-Relationship-Claim`.
    pub relationship_claim: Option<String>,
}

/// An allowed request.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// What it may see or change.
    pub rules: Rules,
    /// Break-glass is in force (audit it, flag it for review).
    pub break_glass: Option<BreakGlass>,
    /// A self-claimed relationship is in force, with its reason.
    pub relationship_claim: Option<String>,
}

/// An emergency access in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakGlass {
    /// The purpose of use (`BTG`, `ETREAT`).
    pub purpose: String,
    /// The user's reason.
    pub reason: String,
}

/// Why a request is refused (403).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Denied(pub String);

/// The permission letter an interaction needs.
fn covers(scope: &ResourceScope, interaction: Interaction) -> bool {
    scope.permissions.covers(interaction)
}

/// True when `scope` names `res_type` (a ceiling's `*` leaves out the policy's excluded types).
fn names(scope: &ResourceScope, res_type: &str, excludes: &[String], is_ceiling: bool) -> bool {
    match &scope.resource_type {
        Some(t) => t == res_type,
        None => !(is_ceiling && excludes.iter().any(|e| e == res_type)),
    }
}

/// Token and ceiling scopes that together allow `interaction` on `res_type`.
fn grants<'a>(
    policy: &Policy,
    role: &'a RolePolicy,
    principal: &'a Principal,
    res_type: &str,
    interactions: &[Interaction],
) -> (Vec<&'a ResourceScope>, Vec<&'a ResourceScope>) {
    let ok = |s: &ResourceScope, ceiling: bool| {
        names(s, res_type, &policy.wildcard_excludes, ceiling)
            && interactions.iter().any(|i| covers(s, *i))
    };
    let ceiling: Vec<&ResourceScope> = role.ceiling.iter().filter(|c| ok(c, true)).collect();
    let token: Vec<&ResourceScope> = principal
        .scopes
        .iter()
        .filter(|t| ok(t, false) && ceiling.iter().any(|c| c.context == t.context))
        .collect();
    let ceiling = ceiling
        .into_iter()
        .filter(|c| token.iter().any(|t| t.context == c.context))
        .collect();
    (token, ceiling)
}

/// The restriction of one side: `None` when some scope is unrestricted.
fn side(scopes: &[&ResourceScope]) -> Option<Alternatives> {
    if scopes.iter().any(|s| s.restrictions.is_empty()) {
        None
    } else {
        Some(scopes.iter().map(|s| s.restrictions.clone()).collect())
    }
}

/// Decides a request on `res_type` (`None` for a system-level search or history).
pub fn decide(
    policy: &Policy,
    principal: &Principal,
    res_type: Option<&str>,
    interaction: Interaction,
    emergency: &Emergency,
) -> Result<Decision, Denied> {
    let role = policy
        .role(&principal.role)
        .ok_or_else(|| Denied(format!("'{}' is not a care-record role", principal.role)))?;
    let writing = matches!(
        interaction,
        Interaction::Create | Interaction::Update | Interaction::Delete
    );
    if writing && res_type == Some("AuditEvent") {
        return Err(Denied(
            "AuditEvents are read-only: no one may create, change or delete them".into(),
        ));
    }
    // What the rules are about: the interaction itself for writes; for reads and searches,
    // anything the caller may read or search (included and chained resources too).
    let letters: Vec<Interaction> = if writing {
        vec![interaction]
    } else {
        vec![Interaction::Read, Interaction::Search]
    };
    if let Some(t) = res_type {
        let (token, _) = grants(policy, role, principal, t, &[interaction]);
        if token.is_empty() {
            return Err(Denied(format!(
                "the role '{}' with the scopes granted may not {} {t}",
                role.id,
                verb(interaction)
            )));
        }
    }
    let mut allowed = Vec::new();
    let mut denied = Vec::new();
    let mut restrictions = Vec::new();
    for t in fhir_model::elements::resource_types() {
        let (token, ceiling) = grants(policy, role, principal, t, &letters);
        if token.is_empty() {
            denied.push(t.to_string());
            continue;
        }
        allowed.push(t.to_string());
        let parts: Vec<Alternatives> = [side(&token), side(&ceiling)]
            .into_iter()
            .flatten()
            .collect();
        if !parts.is_empty() {
            restrictions.push((t.to_string(), parts));
        }
    }
    if allowed.is_empty() {
        return Err(Denied(format!(
            "the role '{}' with the scopes granted may not {} anything",
            role.id,
            verb(interaction)
        )));
    }
    let types = if denied.is_empty() {
        TypeSet::All
    } else if denied.len() < allowed.len() {
        TypeSet::AllExcept(denied)
    } else {
        TypeSet::Only(allowed)
    };
    // `patient/` only when no user- or system-level grant applies.
    let confined = !principal.scopes.iter().any(|s| {
        s.context != Context::Patient && role.ceiling.iter().any(|c| c.context == s.context)
    });
    let compartment = if confined {
        Some(principal.patient.clone().ok_or_else(|| {
            Denied("patient/ scopes need a token with a 'patient' launch context".into())
        })?)
    } else {
        None
    };
    let purpose = emergency
        .purpose_of_use
        .clone()
        .or_else(|| principal.purpose_of_use.clone());
    let break_glass = match purpose {
        Some(p) if policy.break_glass_reasons.contains(&p) => {
            if !role.break_glass {
                return Err(Denied(format!(
                    "the role '{}' may not break glass",
                    role.id
                )));
            }
            let reason = emergency
                .reason
                .clone()
                .or_else(|| principal.break_glass_reason.clone())
                .filter(|r| !r.trim().is_empty())
                .ok_or_else(|| {
                    Denied("break-glass needs a reason (X-Break-Glass-Reason)".into())
                })?;
            Some(BreakGlass { purpose: p, reason })
        }
        Some(p) => {
            return Err(Denied(format!(
                "purpose of use '{p}' is not one this server accepts ({})",
                policy.break_glass_reasons.join(", ")
            )))
        }
        None => None,
    };
    let claim = emergency
        .relationship_claim
        .clone()
        .filter(|c| !c.trim().is_empty());
    let needs_relationship = role.relationship && compartment.is_none();
    if claim.is_some() && !needs_relationship {
        return Err(Denied(format!(
            "the role '{}' does not use relationship claims here",
            role.id
        )));
    }
    let relationship =
        (needs_relationship && break_glass.is_none() && claim.is_none()).then(|| {
            (
                principal.org.clone().unwrap_or_default(),
                principal.patient.clone(),
            )
        });
    let liftable_labels: Vec<String> =
        if role.break_glass && break_glass.is_none() && !role.labels.iter().any(|l| l == "R") {
            vec!["R".into()]
        } else {
            Vec::new()
        };
    let mut visible_labels = role.labels.clone();
    if break_glass.is_some() && !visible_labels.iter().any(|l| l == "R") {
        visible_labels.push("R".into());
    }
    let only_org = if role.own_source_only {
        Some(principal.org.clone().ok_or_else(|| {
            Denied("a feed client's token must name its organisation ('org')".into())
        })?)
    } else {
        None
    };
    Ok(Decision {
        rules: Rules {
            types,
            restrictions,
            compartment,
            visible_labels,
            own_org: principal.org.clone(),
            hidden_alerts: if role.safeguarding {
                Vec::new()
            } else {
                policy.safeguarding_alerts.clone()
            },
            relationship,
            only_org,
            liftable_labels,
            may_break_glass: role.break_glass && break_glass.is_none(),
        },
        break_glass,
        relationship_claim: claim,
    })
}

fn verb(i: Interaction) -> &'static str {
    match i {
        Interaction::Read | Interaction::Vread => "read",
        Interaction::HistoryInstance | Interaction::HistoryType => "read the history of",
        Interaction::Search => "search",
        Interaction::Create => "create",
        Interaction::Update => "update",
        Interaction::Delete => "delete",
    }
}

/// The scopes a role's token carries when none are asked for: its whole ceiling.
pub fn default_scopes(role: &RolePolicy) -> String {
    role.ceiling_text.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scope::parse_scopes;
    use crate::scope::Scope;

    fn principal(role: &str, scopes: &str, patient: Option<&str>) -> Principal {
        Principal {
            subject: "u".into(),
            role: role.into(),
            org: Some("G82984".into()),
            client_id: None,
            jti: None,
            patient: patient.map(str::to_string),
            fhir_user: None,
            name: None,
            scopes: parse_scopes(scopes)
                .unwrap()
                .into_iter()
                .filter_map(|s| match s {
                    Scope::Resource(r) => Some(r),
                    _ => None,
                })
                .collect(),
            purpose_of_use: None,
            break_glass_reason: None,
        }
    }

    fn d(p: &Principal, t: Option<&str>, i: Interaction) -> Result<Decision, Denied> {
        decide(&Policy::default_policy(), p, t, i, &Emergency::default())
    }

    #[test]
    fn scopes_meet_the_ceiling() {
        let gp = principal("gp", "user/*.cruds", None);
        assert!(d(&gp, Some("Observation"), Interaction::Create).is_ok());
        assert!(d(&gp, Some("AuditEvent"), Interaction::Search).is_err());
        assert!(d(&gp, Some("AuditEvent"), Interaction::Delete).is_err());
        let r = d(&gp, Some("Patient"), Interaction::Read).unwrap().rules;
        assert_eq!(r.types, TypeSet::AllExcept(vec!["AuditEvent".into()]));
        assert!(r.relationship.is_some() && r.compartment.is_none());
        let rec = principal("receptionist", "user/*.cruds", None);
        assert!(d(&rec, Some("Observation"), Interaction::Read).is_err());
        assert!(d(&rec, Some("Patient"), Interaction::Delete).is_err());
        assert!(d(&rec, Some("Patient"), Interaction::Update).is_ok());
        let po = principal("privacy-officer", "user/*.rs", None);
        let r = d(&po, Some("AuditEvent"), Interaction::Search)
            .unwrap()
            .rules;
        assert_eq!(r.types, TypeSet::Only(vec!["AuditEvent".into()]));
    }

    #[test]
    fn restrictions_from_both_sides() {
        let ph = principal("pharmacist", "user/*.rs", None);
        let r = d(&ph, Some("Observation"), Interaction::Search)
            .unwrap()
            .rules;
        let obs = r
            .restrictions
            .iter()
            .find(|(t, _)| t == "Observation")
            .unwrap();
        assert_eq!(obs.1.len(), 1);
        assert_eq!(obs.1[0][0][0].0, "category");
        let pt = principal(
            "patient",
            "patient/Observation.rs?category=vital-signs patient/Patient.rs",
            Some("p1"),
        );
        let r = d(&pt, Some("Observation"), Interaction::Search)
            .unwrap()
            .rules;
        assert_eq!(r.compartment.as_deref(), Some("p1"));
        assert!(r.relationship.is_none());
        assert_eq!(
            r.hidden_alerts.len(),
            Policy::default_policy().safeguarding_alerts.len()
        );
        assert!(d(&pt, Some("Flag"), Interaction::Search).is_err());
    }

    #[test]
    fn patient_scopes_need_a_patient_and_break_glass_needs_a_reason() {
        let pt = principal("patient", "patient/*.rs", None);
        assert!(d(&pt, Some("Patient"), Interaction::Read).is_err());
        let gp = principal("gp", "user/*.rs", None);
        let pol = Policy::default_policy();
        let e = Emergency {
            purpose_of_use: Some("BTG".into()),
            ..Emergency::default()
        };
        assert!(decide(&pol, &gp, Some("Patient"), Interaction::Read, &e).is_err());
        let e = Emergency {
            purpose_of_use: Some("BTG".into()),
            reason: Some("unconscious in ED".into()),
            ..Emergency::default()
        };
        let dec = decide(&pol, &gp, Some("Patient"), Interaction::Read, &e).unwrap();
        assert!(dec.break_glass.is_some() && dec.rules.relationship.is_none());
        let ph = principal("pharmacist", "user/*.rs", None);
        assert!(decide(&pol, &ph, Some("Patient"), Interaction::Read, &e).is_err());
    }
}
