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
    /// The patient a search is anchored on (its compartment), whose relationship a statement
    /// looks up once instead of once per row. Only a shortcut: the rule is the same whoever
    /// it names, since that patient's rows pass exactly when the one lookup finds the
    /// relationship.
    pub anchor: Option<String>,
}

/// Code system of the ways to see withheld data ([`Access::routes`]).
pub const ACCESS_ROUTE_SYSTEM: &str = "https://invicta.example.org/fhir/CodeSystem/access-route";

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
    /// The user may break glass (not in force yet): what a withheld answer may offer.
    pub may_break_glass: bool,
    /// Every search parameter the restrictions name, so a past version is judged on those
    /// values alone; empty when not known (then every value is extracted).
    pub restriction_params: Vec<String>,
}

/// The relationship condition over the row aliased `alias`: every patient whose compartment
/// holds it is related to the organisation (SQL expression `org`) or is the launch patient
/// (`launch`). Written as one equality probe of (org_code, patient_id) per patient of the row,
/// a plan that does not depend on statistics: the earlier form, the related patients gathered
/// with `patient_id = ANY(...)`, was planned from the organisation alone whenever it looked
/// small, so every row read all of its relationships (README: Reads). With `anchor` (a
/// patient, SQL expression), that patient's relationship is looked up once for the statement
/// (an uncorrelated subquery, which PostgreSQL runs as an InitPlan) and only the row's other
/// patients are probed: a compartment's rows all name its patient, and the per-row probe was
/// half of a `$timeline` page's time.
pub(crate) fn related_sql(alias: &str, launch: &str, org: &str, anchor: Option<&str>) -> String {
    let live = "(cr.expires_at IS NULL OR cr.expires_at > now())";
    let anchored = match anchor {
        Some(p) => format!(
            " AND cp.id IS DISTINCT FROM (SELECT cr.patient_id FROM care_relationship cr \
             WHERE cr.org_code = {org} AND cr.patient_id = {p}::text AND {live} LIMIT 1)"
        ),
        None => String::new(),
    };
    format!(
        "NOT EXISTS (SELECT 1 FROM unnest({alias}.compartments) AS cp(id) \
         WHERE cp.id IS DISTINCT FROM {launch}::text{anchored} AND NOT EXISTS (SELECT 1 \
         FROM care_relationship cr WHERE cr.org_code = {org} AND cr.patient_id = cp.id \
         AND {live}))"
    )
}

impl Access {
    /// The condition over the row aliased `alias`, pushing its values onto `binds` and numbering
    /// placeholders after them. Scope restrictions are judged on the current row of the same
    /// resource (index rows exist for current versions only): for a `resource_history` row use
    /// [`Access::unrestricted`] and judge its restriction on its content (`version_check`).
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
            let anchor = rel
                .anchor
                .as_ref()
                .map(|p| bind(binds, Bind::Text(p.clone())));
            conds.push(related_sql(a, &launch, &o, anchor.as_deref()));
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

    /// The rules that need no other table, evaluated on a row already loaded (the read path,
    /// which thereby stays on prepared statements). Exactly the conditions [`Access::predicate`]
    /// writes, except the relationship and the scope restrictions, which the caller checks.
    pub fn admits_row(
        &self,
        res_type: &str,
        compartments: &[String],
        labels: &[String],
        alerts: &[String],
        org: Option<&str>,
    ) -> bool {
        let type_ok = match &self.types {
            TypeRule::All => true,
            TypeRule::AllExcept(types) => !types.iter().any(|t| t == res_type),
            TypeRule::Only(types) => types.iter().any(|t| t == res_type),
        };
        let compartment_ok = self
            .compartment
            .as_ref()
            .is_none_or(|p| compartments.contains(p));
        let labels_ok = match &self.visible_labels {
            None => true,
            Some(visible) => {
                let within = |extra: Option<&str>| {
                    labels
                        .iter()
                        .all(|l| visible.contains(l) || Some(l.as_str()) == extra)
                };
                within(None)
                    || (self.own_org.is_some()
                        && org == self.own_org.as_deref()
                        && within(Some("V")))
            }
        };
        let alerts_ok = !alerts.iter().any(|a| self.hidden_alerts.contains(a));
        let org_ok = self
            .only_org
            .as_ref()
            .is_none_or(|o| org == Some(o.as_str()));
        type_ok && compartment_ok && labels_ok && alerts_ok && org_ok
    }

    /// These rules for rows of `types` only: a type rule they all pass and restrictions on
    /// other types are always true there, so they are dropped (less for PostgreSQL to plan).
    pub fn narrowed_to(&self, types: &[String]) -> Access {
        let admits = |t: &String| match &self.types {
            TypeRule::All => true,
            TypeRule::AllExcept(ex) => !ex.contains(t),
            TypeRule::Only(only) => only.contains(t),
        };
        let mut a = self.clone();
        if types.iter().all(admits) {
            a.types = TypeRule::All;
        }
        a.restrictions.retain(|(t, _)| types.contains(t));
        a
    }

    /// These rules with `patient`'s relationship looked up once per statement rather than per
    /// row ([`RelationshipRule::anchor`]): for a search confined to that patient's compartment.
    pub fn anchored_on(&self, patient: &str) -> Access {
        let mut a = self.clone();
        if let Some(rel) = a.relationship.as_mut() {
            rel.anchor = Some(patient.to_string());
        }
        a
    }

    /// These rules without the scope restrictions: what a past version is judged by from its
    /// own row (its restriction is judged on its content, `version_check`).
    pub fn unrestricted(&self) -> Access {
        Access {
            restrictions: Vec::new(),
            ..self.clone()
        }
    }

    /// The types that carry a scope restriction.
    pub fn restricted_types(&self) -> Vec<String> {
        self.restrictions.iter().map(|(t, _)| t.clone()).collect()
    }

    /// The scope restriction on `res_type`, if any.
    pub fn restriction(&self, res_type: &str) -> Option<&Filter> {
        self.restrictions
            .iter()
            .find(|(t, _)| t == res_type)
            .map(|(_, f)| f)
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

    /// What the user may do to see what these rules withhold: `relationship-claim` (when a
    /// relationship is needed) and `break-glass` (when the role may), codes of
    /// [`ACCESS_ROUTE_SYSTEM`].
    pub fn routes(&self) -> Vec<&'static str> {
        let mut routes = Vec::new();
        if self.relationship.is_some() {
            routes.push("relationship-claim");
        }
        if self.may_break_glass {
            routes.push("break-glass");
        }
        routes
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
    fn row_rules_match_the_sql_rules() {
        let a = Access {
            types: TypeRule::AllExcept(vec!["AuditEvent".into()]),
            compartment: Some("p1".into()),
            visible_labels: Some(vec!["PSY".into()]),
            own_org: Some("X".into()),
            hidden_alerts: vec!["s|sg".into()],
            ..Access::default()
        };
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let p1 = s(&["p1"]);
        assert!(a.admits_row("Observation", &p1, &s(&["PSY"]), &[], None));
        assert!(!a.admits_row("AuditEvent", &p1, &[], &[], None));
        assert!(!a.admits_row("Observation", &s(&["p2"]), &[], &[], None));
        assert!(!a.admits_row("Observation", &p1, &s(&["R"]), &[], None));
        assert!(!a.admits_row("Observation", &p1, &s(&["V"]), &[], Some("Y")));
        assert!(a.admits_row("Observation", &p1, &s(&["V", "PSY"]), &[], Some("X")));
        assert!(!a.admits_row("Flag", &p1, &[], &s(&["s|sg"]), None));
        let feed = Access {
            only_org: Some("F".into()),
            ..Access::default()
        };
        assert!(feed.admits_row("Flag", &[], &[], &[], Some("F")));
        assert!(!feed.admits_row("Flag", &[], &[], &[], None));
    }

    #[test]
    fn narrowing_drops_only_rules_that_always_hold() {
        let f = Filter {
            sql: "TRUE".into(),
            binds: vec![],
        };
        let a = Access {
            types: TypeRule::AllExcept(vec!["AuditEvent".into()]),
            restrictions: vec![("Observation".into(), f.clone()), ("Flag".into(), f)],
            ..Access::default()
        };
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let obs = a.narrowed_to(&s(&["Observation"]));
        assert_eq!(obs.types, TypeRule::All);
        assert_eq!(obs.restrictions.len(), 1);
        assert_eq!(obs.restrictions[0].0, "Observation");
        let mixed = a.narrowed_to(&s(&["Observation", "AuditEvent"]));
        assert_eq!(mixed.types, a.types, "AuditEvent must still be excluded");
        let only = Access {
            types: TypeRule::Only(vec!["AuditEvent".into()]),
            ..Access::default()
        };
        assert_eq!(only.narrowed_to(&s(&["Patient"])).types, only.types);
    }

    #[test]
    fn lifting_drops_relationship_and_r_only() {
        let a = Access {
            visible_labels: Some(vec![]),
            hidden_alerts: vec!["s|c".into()],
            relationship: Some(RelationshipRule {
                org: "X".into(),
                launch_patient: None,
                anchor: None,
            }),
            liftable_labels: vec!["R".into()],
            may_break_glass: true,
            ..Access::default()
        };
        assert!(a.liftable());
        let l = a.lifted();
        assert!(l.relationship.is_none() && !l.liftable());
        assert_eq!(l.visible_labels, Some(vec!["R".to_string()]));
        assert_eq!(l.hidden_alerts, a.hidden_alerts);
    }
}
