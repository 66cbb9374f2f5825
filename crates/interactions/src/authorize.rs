//! The authorization decision of one interaction: the caller's token and role, the resource
//! type and the interaction become an [`Authorized`], which carries the rules the store applies.
//! Nothing else makes an `Authorized`, and every interaction that reaches data takes one.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use authz::audit::{AuditRecord, ChangedResource};
use authz::cache::{unix_now, AsDecisionQuery, DecisionQuery};
use authz::{Interaction, Policy, Principal, Rules, TypeSet};
use fhir_model::{AuditAction, RestInteraction};
use search::text::encode;
use store::{Access, Filter, RelationshipRule, TypeRule};

use crate::caller::{AuditState, Caller};
use crate::decisions::Allowed;
use crate::error::{Error, ErrorKind, Result};
use crate::services::Services;

/// `meta.source` of versions written by an OAuth client: this prefix and the client id.
pub const SOURCE_CLIENT_PREFIX: &str = "https://invicta.example.org/fhir/source/client/";
/// `meta.source` of versions written by a user token without a client id.
pub const SOURCE_USER_PREFIX: &str = "https://invicta.example.org/fhir/source/user/";

/// An authorised request: the rules to apply (none when authentication is off) and the audit
/// record it completes. Made only by [`authorize`].
pub struct Authorized {
    access: Option<Arc<Access>>,
    principal: Option<Arc<Principal>>,
    audit: Rc<RefCell<AuditState>>,
}

impl Authorized {
    /// Who the client is for read-your-writes routing: the user and app of its token, or its
    /// network address when authentication is off.
    pub fn routing_key(&self) -> String {
        routing_key(self.principal.as_deref(), &self.audit.borrow().record)
    }
}

/// The routing key of a caller (see [`Authorized::routing_key`]).
pub fn routing_key(principal: Option<&Principal>, record: &authz::audit::AuditRecord) -> String {
    match principal {
        Some(p) => format!(
            "{}\u{1f}{}",
            p.subject,
            p.client_id.as_deref().unwrap_or_default()
        ),
        None => record.address.clone().unwrap_or_default(),
    }
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
    let query = DecisionQuery {
        token: caller.token,
        res_type,
        interaction,
        emergency: &caller.emergency,
    };
    let allowed = services
        .decisions
        .decisions
        .get_or_try_insert(&query as &dyn AsDecisionQuery, unix_now(), || {
            let decision = authz::decide(
                &services.policy,
                &principal,
                res_type,
                interaction,
                &caller.emergency,
            )
            .map_err(|d| Error::new(ErrorKind::Forbidden, d.0))?;
            let allowed = Arc::new(Allowed {
                access: Arc::new(to_access(&decision.rules)?),
                break_glass: decision.break_glass,
                claim: decision.relationship_claim,
            });
            Ok((query.to_key(), allowed, caller.token_exp))
        })
        .inspect_err(|e: &Error| {
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
    pub fn interaction(&self, name: RestInteraction, action: AuditAction) {
        let mut a = self.audit.borrow_mut();
        a.record.interaction = name;
        a.record.action = action;
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

/// The audit hook of a request's writes: its record, completed per change, as the audit trail's
/// narrow rows. Changes with the same action about the same patients share their AuditEvents
/// (`authz::audit::change_records`).
pub fn audit_hook(base: AuditRecord, policy: Arc<Policy>) -> store::AuditHook {
    Arc::new(move |changes: &[store::Change]| {
        let changed: Vec<ChangedResource<'_>> = changes
            .iter()
            .map(|c| ChangedResource {
                action: c.action,
                patients: &c.compartments,
                reference: format!("{}/{}/_history/{}", c.res_type, c.id, c.version),
                labels: &c.labels,
                alerts: &c.alerts,
            })
            .collect();
        authz::audit::change_records(&base, &changed, &policy)
            .iter()
            .flat_map(crate::audit_rows::audit_rows)
            .collect()
    })
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
            all.push(Filter::any(any));
        }
        restrictions.push((t.clone(), Filter::all(all)));
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
                anchor: None,
            }),
        only_org: rules.only_org.clone(),
        liftable_labels: rules.liftable_labels.clone(),
        may_break_glass: rules.may_break_glass,
        restriction_params,
    })
}
