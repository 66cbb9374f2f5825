//! The access rules of one request as a SQL condition over a resource row (current or
//! historical), so that every path that reads resources (search, count, include, revinclude,
//! chains, `_has`, history, read) applies the same rules in the same statement and a hidden
//! resource can never show, not even in a total. Crate `authz` decides the rules; this module
//! only turns them into SQL.

use crate::sql::{Bind, Filter};

/// Which resource types a request may see at all.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TypeRule {
    /// Every type.
    #[default]
    All,
    /// Every type except these.
    AllExcept(Vec<String>),
    /// Only these types.
    Only(Vec<String>),
}

/// The legitimate-relationship rule: rows in a patient's compartment are visible only when the
/// user's organisation has a current relationship with that patient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelationshipRule {
    /// The user's organisation (ODS code).
    pub org: String,
    /// The patient of an active EHR launch (the token's `patient`), related for this token.
    pub launch_patient: Option<String>,
}

/// What one request may see. `Default` admits everything (no rule active).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Access {
    /// Visible resource types.
    pub types: TypeRule,
    /// Per type, a condition over `resource r` its rows must also meet (scope restrictions such
    /// as `patient/Observation.rs?category=laboratory`), compiled by the `search` crate.
    pub restrictions: Vec<(String, Filter)>,
    /// `patient/` context: only rows in this patient's compartment.
    pub compartment: Option<String>,
    /// Security labels (see `fhir_model::access::security_labels`) the user may see; `None`
    /// for all. A row is visible when every label it carries is in the set. `V` is never in
    /// it: very restricted rows are visible to their own organisation only.
    pub visible_labels: Option<Vec<String>>,
    /// The user's organisation, which sees its own `V` rows.
    pub own_org: Option<String>,
    /// Alert codings (`system|code`) the user may not see (safeguarding alerts).
    pub hidden_alerts: Vec<String>,
    /// The legitimate-relationship rule, when the role needs one and no break-glass lifts it.
    pub relationship: Option<RelationshipRule>,
    /// Only rows written by this organisation (feed systems see their own source's data).
    pub only_org: Option<String>,
    /// Labels break-glass would make visible for this user (`R` for roles that may break glass).
    pub liftable_labels: Vec<String>,
}

impl Access {
    /// The condition over the row aliased `alias` (a `resource` or `resource_history` row),
    /// pushing its values onto `binds` and numbering placeholders after them.
    pub fn predicate(&self, alias: &str, binds: &mut Vec<Bind>) -> String {
        let a = alias;
        let mut conds: Vec<String> = Vec::new();
        let bind = |binds: &mut Vec<Bind>, b: Bind| {
            binds.push(b);
            format!("${}", binds.len())
        };
        match &self.types {
            TypeRule::All => {}
            TypeRule::AllExcept(types) => {
                let p = bind(binds, Bind::TextArray(types.clone()));
                conds.push(format!("NOT ({a}.res_type = ANY({p}))"));
            }
            TypeRule::Only(types) => {
                let p = bind(binds, Bind::TextArray(types.clone()));
                conds.push(format!("{a}.res_type = ANY({p})"));
            }
        }
        for (res_type, filter) in &self.restrictions {
            let t = bind(binds, Bind::Text(res_type.clone()));
            let sql = filter.renumbered(binds.len());
            binds.extend(filter.binds.iter().cloned());
            // A filter over `resource r` applies to any alias through its row id; for the
            // current row itself it is inlined.
            let cond = if a == "r" {
                format!("({sql})")
            } else {
                format!("EXISTS (SELECT 1 FROM resource r WHERE r.rid = {a}.rid AND ({sql}))")
            };
            conds.push(format!("({a}.res_type <> {t} OR {cond})"));
        }
        if let Some(patient) = &self.compartment {
            let p = bind(binds, Bind::TextArray(vec![patient.clone()]));
            conds.push(format!("{a}.compartments @> {p}"));
        }
        if let Some(visible) = &self.visible_labels {
            let v = bind(binds, Bind::TextArray(visible.clone()));
            match &self.own_org {
                Some(org) => {
                    let mut with_v = visible.clone();
                    with_v.push("V".into());
                    let vv = bind(binds, Bind::TextArray(with_v));
                    let o = bind(binds, Bind::Text(org.clone()));
                    conds.push(format!(
                        "({a}.sec_labels <@ {v} OR ({a}.org = {o} AND {a}.sec_labels <@ {vv}))"
                    ));
                }
                None => conds.push(format!("{a}.sec_labels <@ {v}")),
            }
        }
        if !self.hidden_alerts.is_empty() {
            let h = bind(binds, Bind::TextArray(self.hidden_alerts.clone()));
            conds.push(format!("NOT ({a}.alert_codes && {h})"));
        }
        if let Some(rel) = &self.relationship {
            let o = bind(binds, Bind::Text(rel.org.clone()));
            let launch = bind(binds, Bind::OptText(rel.launch_patient.clone()));
            // Every patient whose compartment holds the row must be related to the organisation.
            conds.push(format!(
                "NOT EXISTS (SELECT 1 FROM unnest({a}.compartments) AS cp(id) \
                 WHERE cp.id IS DISTINCT FROM {launch}::text AND NOT EXISTS (SELECT 1 FROM care_relationship cr \
                 WHERE cr.patient_id = cp.id AND cr.org_code = {o} \
                 AND (cr.expires_at IS NULL OR cr.expires_at > now())))"
            ));
        }
        if let Some(org) = &self.only_org {
            let o = bind(binds, Bind::Text(org.clone()));
            conds.push(format!("{a}.org = {o}"));
        }
        if conds.is_empty() {
            "TRUE".into()
        } else {
            conds.join(" AND ")
        }
    }

    /// These rules without the limits break-glass may lift (relationship and `R` labels), to
    /// tell whether anything was withheld for those reasons alone.
    pub fn lifted(&self) -> Access {
        let mut a = self.clone();
        a.relationship = None;
        if let Some(v) = a.visible_labels.as_mut() {
            v.extend(self.liftable_labels.iter().cloned());
        }
        a.liftable_labels.clear();
        a
    }

    /// True when a relationship claim or break-glass could reveal more than these rules do.
    pub fn liftable(&self) -> bool {
        self.relationship.is_some() || !self.liftable_labels.is_empty()
    }

    /// This rule set as a standalone filter over `resource r`.
    pub fn as_filter(&self) -> Filter {
        let mut binds = Vec::new();
        let sql = self.predicate("r", &mut binds);
        Filter { sql, binds }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_admits_everything() {
        let mut b = Vec::new();
        assert_eq!(Access::default().predicate("r", &mut b), "TRUE");
        assert!(b.is_empty());
    }

    #[test]
    fn placeholders_follow_existing_binds() {
        let a = Access {
            compartment: Some("p1".into()),
            visible_labels: Some(vec!["PSY".into()]),
            ..Access::default()
        };
        let mut b = vec![Bind::Int(1), Bind::Int(2)];
        let sql = a.predicate("h", &mut b);
        assert_eq!(sql, "h.compartments @> $3 AND h.sec_labels <@ $4");
        assert_eq!(b.len(), 4);
    }

    #[test]
    fn restrictions_wrap_other_aliases() {
        let a = Access {
            restrictions: vec![(
                "Observation".into(),
                Filter {
                    sql: "r.res_type = ANY($1) AND r.id = $2".into(),
                    binds: vec![
                        Bind::TextArray(vec!["Observation".into()]),
                        Bind::Text("x".into()),
                    ],
                },
            )],
            ..Access::default()
        };
        let mut b = Vec::new();
        let sql = a.predicate("c1", &mut b);
        assert!(sql.contains("c1.res_type <> $1 OR EXISTS (SELECT 1 FROM resource r WHERE r.rid = c1.rid AND (r.res_type = ANY($2) AND r.id = $3))"), "{sql}");
        assert_eq!(b.len(), 3);
    }

    #[test]
    fn lifting_drops_relationship_and_r_only() {
        let a = Access {
            visible_labels: Some(vec![]),
            hidden_alerts: vec!["s|c".into()],
            relationship: Some(RelationshipRule {
                org: "X".into(),
                launch_patient: None,
            }),
            liftable_labels: vec!["R".into()],
            ..Access::default()
        };
        assert!(a.liftable());
        let l = a.lifted();
        assert!(l.relationship.is_none() && !l.liftable());
        assert_eq!(l.visible_labels, Some(vec!["R".to_string()]));
        assert_eq!(l.hidden_alerts, a.hidden_alerts);
    }
}
