//! The authorization decision of one interaction: the caller's token and role, the resource
//! type and the interaction become an [`Authorized`], which carries the rules the store applies.
//! Nothing else makes an `Authorized`, and every interaction that reaches data takes one.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use authz::audit::AuditRecord;
use authz::{Emergency, Interaction, Policy, Principal, Rules, TypeSet};
use search::text::encode;
use store::{Access, Filter, RelationshipRule, TypeRule};

use crate::caller::{AuditState, Caller};
use crate::error::{Error, ErrorKind, Result};
use crate::services::Services;

/// `meta.source` of versions written by an OAuth client: this prefix and the client id.
pub const SOURCE_CLIENT_PREFIX: &str = "https://invicta.example.org/fhir/source/client/";
/// `meta.source` of versions written by a user token without a client id.
pub const SOURCE_USER_PREFIX: &str = "https://invicta.example.org/fhir/source/user/";

/// Decisions by token and question; bounded by clearing when full.
#[derive(Default)]
pub(crate) struct DecisionCache {
    decisions: std::sync::Mutex<HashMap<DecisionKey, Arc<Allowed>>>,
}

/// A decision's inputs besides the token.
type DecisionKey = (u64, Option<String>, Interaction, Emergency);

/// What an allowed decision hands the interaction.
struct Allowed {
    access: Arc<Access>,
    break_glass: Option<authz::BreakGlass>,
    claim: Option<String>,
}

/// Entries kept before the cache is cleared.
const CACHE_LIMIT: usize = 20_000;

impl DecisionCache {
    fn get_or(
        &self,
        key: DecisionKey,
        make: impl FnOnce() -> Result<Arc<Allowed>>,
    ) -> Result<Arc<Allowed>> {
        if let Some(v) = self
            .decisions
            .lock()
            .ok()
            .and_then(|m| m.get(&key).cloned())
        {
            return Ok(v);
        }
        let v = make()?;
        if let Ok(mut m) = self.decisions.lock() {
            if m.len() >= CACHE_LIMIT {
                m.clear();
            }
            m.insert(key, v.clone());
        }
        Ok(v)
    }
}

/// An authorised request: the rules to apply (none when authentication is off) and the audit
/// record it completes. Made only by [`authorize`].
pub struct Authorized {
    access: Option<Arc<Access>>,
    principal: Option<Arc<Principal>>,
    audit: Rc<RefCell<AuditState>>,
}

/// Decides the request: 403 when the interaction is not allowed, else its rules.
pub fn authorize(
    services: &Services,
    caller: &Caller,
    res_type: Option<&str>,
    interaction: Interaction,
) -> Result<Authorized> {
    let Some(principal) = caller.principal.clone() else {
        return Ok(Authorized {
            access: None,
            principal: None,
            audit: caller.audit.clone(),
        });
    };
    let key = (
        caller.token,
        res_type.map(str::to_string),
        interaction,
        caller.emergency.clone(),
    );
    let allowed = services
        .decisions
        .get_or(key, || {
            let decision = authz::decide(
                &services.policy,
                &principal,
                res_type,
                interaction,
                &caller.emergency,
            )
            .map_err(|d| Error::new(ErrorKind::Forbidden, d.0))?;
            Ok(Arc::new(Allowed {
                access: Arc::new(to_access(&decision.rules)?),
                break_glass: decision.break_glass,
                claim: decision.relationship_claim,
            }))
        })
        .inspect_err(|e| {
            caller.audit.borrow_mut().record.outcome_desc =
                e.issues.first().map(|i| i.diagnostics.clone());
        })?;
    {
        let mut a = caller.audit.borrow_mut();
        if let Some(bg) = &allowed.break_glass {
            a.record.purpose = Some(bg.purpose.clone());
            a.record.review_reason = Some(format!("break-glass: {}", bg.reason));
        }
        if let Some(c) = &allowed.claim {
            a.record.purpose = Some("TREAT".into());
            a.record.review_reason = Some(format!("self-claimed relationship: {c}"));
            a.claim = Some(c.clone());
        }
    }
    Ok(Authorized {
        access: Some(allowed.access.clone()),
        principal: Some(principal),
        audit: caller.audit.clone(),
    })
}

impl Authorized {
    /// The rules the store applies (`None`: authentication is off).
    pub fn access(&self) -> Option<&Arc<Access>> {
        self.access.as_ref()
    }

    /// The caller.
    pub fn principal(&self) -> Option<&Arc<Principal>> {
        self.principal.as_ref()
    }

    /// The patient a token is confined to (a `patient/` scope), if any.
    pub fn compartment(&self) -> Option<String> {
        self.access.as_ref().and_then(|a| a.compartment.clone())
    }

    /// Notes in the audit record what the request touched.
    pub fn touched<'a>(&self, patients: impl IntoIterator<Item = &'a String>) {
        let mut a = self.audit.borrow_mut();
        for p in patients {
            if !a.record.patients.contains(p) {
                a.record.patients.push(p.clone());
            }
        }
    }

    /// Names the resource read or written in the audit record.
    pub fn resource(&self, reference: String, sensitive: bool) {
        let mut a = self.audit.borrow_mut();
        a.record.resource = Some(reference);
        a.record.sensitive |= sensitive;
    }

    /// Names the interaction in the audit record (`transaction` or `batch` for a Bundle).
    pub fn interaction(&self, name: &str, action: &str) {
        let mut a = self.audit.borrow_mut();
        a.record.interaction = name.to_string();
        a.record.action = action.to_string();
    }

    /// Records the query of a search or history.
    pub fn query(&self, q: String) {
        self.audit.borrow_mut().record.query = Some(q);
    }

    /// Marks the audit record as stored by the interaction (in a write's own transaction).
    pub fn recorded(&self) {
        self.audit.borrow_mut().recorded = true;
    }

    /// The context of a write: the caller's organisation, the rules old and new versions must
    /// meet, and the audit record, stored in the write's own transaction.
    pub fn write_context(&self, services: &Services) -> store::WriteContext {
        let audit = match services.settings.audit {
            true => Some(audit_hook(
                self.audit.borrow().record.clone(),
                services.policy.clone(),
            )),
            false => None,
        };
        store::WriteContext {
            org: self.org(),
            source: self.source(),
            access: self.access.clone(),
            record_source: self.is_feed(&services.policy),
            audit,
        }
    }

    /// The writing system as a URI for `meta.source`: the OAuth client, else the user.
    pub fn source(&self) -> Option<String> {
        self.principal.as_ref().map(|p| match &p.client_id {
            Some(c) => format!("{SOURCE_CLIENT_PREFIX}{c}"),
            None => format!("{SOURCE_USER_PREFIX}{}", p.subject),
        })
    }

    /// The organisation of the caller.
    pub fn org(&self) -> Option<String> {
        self.principal.as_ref().and_then(|p| p.org.clone())
    }

    /// True when the caller is a feed (writes record it as a source of the patients' data).
    fn is_feed(&self, policy: &Policy) -> bool {
        self.principal
            .as_ref()
            .is_some_and(|p| policy.role(&p.role).is_some_and(|r| r.own_source_only))
    }
}

/// The audit hook of a request's writes: its record, completed per change. Changes with the same
/// action about the same patients share their AuditEvents.
pub fn audit_hook(base: AuditRecord, policy: Arc<Policy>) -> store::AuditHook {
    Arc::new(move |changes: &[store::Change]| {
        let mut groups: Vec<(&str, &[String], Vec<&store::Change>)> = Vec::new();
        for c in changes {
            match groups
                .iter_mut()
                .find(|(a, p, _)| *a == c.action && *p == c.compartments.as_slice())
            {
                Some((_, _, members)) => members.push(c),
                None => groups.push((c.action, &c.compartments, vec![c])),
            }
        }
        let mut events = Vec::new();
        for (action, patients, members) in groups {
            let mut r = base.clone();
            r.action = action.to_string();
            let mut refs = members
                .iter()
                .map(|c| format!("{}/{}/_history/{}", c.res_type, c.id, c.version));
            r.resource = refs.next();
            r.more_resources = refs.collect();
            r.sensitive |= members
                .iter()
                .any(|c| hidden_from_patients(&policy, &c.labels, &c.alerts));
            r.patients = patients.to_vec();
            r.status = 200;
            events.extend(r.events());
        }
        events
    })
}

/// True when labels or alert codes make a resource hidden from patients, so the audit record
/// of its access is kept from the patient's view of who saw their record.
pub fn hidden_from_patients(policy: &Policy, labels: &[String], alerts: &[String]) -> bool {
    let patient = policy.role("patient");
    let seen = |l: &String| patient.is_some_and(|r| r.labels.contains(l));
    let sees_alerts = patient.is_some_and(|r| r.safeguarding);
    labels.iter().any(|l| !seen(l))
        || (!sees_alerts
            && alerts
                .iter()
                .any(|a| policy.safeguarding_alerts.contains(a)))
}

/// The rules in the store's terms, with scope restrictions compiled by the search crate.
fn to_access(rules: &Rules) -> Result<Access> {
    let mut restrictions = Vec::new();
    let mut restriction_params: Vec<String> = Vec::new();
    for (t, sides) in &rules.restrictions {
        let mut all = Vec::new();
        for alternatives in sides {
            let mut any = Vec::new();
            for conds in alternatives {
                for (k, _) in conds {
                    let code = k.split([':', '.']).next().unwrap_or(k).to_string();
                    if !restriction_params.contains(&code) {
                        restriction_params.push(code);
                    }
                }
                let q: Vec<String> = conds
                    .iter()
                    .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
                    .collect();
                any.push(search::compile_condition(t, &q.join("&")).map_err(|e| {
                    Error::new(
                        ErrorKind::Forbidden,
                        format!("a scope restriction on {t} cannot be applied: {e}"),
                    )
                })?);
            }
            all.push(join(&any, " OR "));
        }
        restrictions.push((t.clone(), join(&all, " AND ")));
    }
    Ok(Access {
        types: match &rules.types {
            TypeSet::All => TypeRule::All,
            TypeSet::AllExcept(v) => TypeRule::AllExcept(v.clone()),
            TypeSet::Only(v) => TypeRule::Only(v.clone()),
        },
        restrictions,
        compartment: rules.compartment.clone(),
        visible_labels: Some(rules.visible_labels.clone()),
        own_org: rules.own_org.clone(),
        hidden_alerts: rules.hidden_alerts.clone(),
        relationship: rules
            .relationship
            .as_ref()
            .map(|(org, launch)| RelationshipRule {
                org: org.clone(),
                launch_patient: launch.clone(),
            }),
        only_org: rules.only_org.clone(),
        liftable_labels: rules.liftable_labels.clone(),
        restriction_params,
    })
}

/// Joins filters (each numbered from `$1`) into one.
fn join(filters: &[Filter], op: &str) -> Filter {
    let mut binds = Vec::new();
    let mut parts = Vec::new();
    for f in filters {
        parts.push(format!("({})", f.renumbered(binds.len())));
        binds.extend(f.binds.iter().cloned());
    }
    Filter {
        sql: parts.join(op),
        binds,
    }
}
