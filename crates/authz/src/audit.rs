//! AuditEvents shaped after IHE Basic Audit Log Patterns (BALP): one per patient a request
//! touched (one with no patient entity when it touched none or was refused), naming who (user,
//! role, organisation, client, token `jti`), what (the patient, the resource or the query), the
//! outcome, the purpose of use and the request id.

use base64::Engine;
use fhir_model::{AuditAction, RestInteraction};
use serde_json::{json, Value};

pub use crate::audit_index::IndexedEvent;
use crate::audit_index::{
    ACT_REASON_SYSTEM, ENTITY_TYPE_SYSTEM, EVENT_TYPE_SYSTEM, OBJECT_ROLE_SYSTEM, SITE,
};
use crate::policy::Policy;
use crate::principal::Principal;

pub use fhir_model::access::{AUDIT_FLAG_SYSTEM, REQUEST_ID_SYSTEM, USER_ID_SYSTEM};
/// Code system of care-record roles (agent.role).
pub const ROLE_SYSTEM: &str = "https://invicta.example.org/fhir/CodeSystem/care-record-role";
/// Identifier system of OAuth client ids.
pub const CLIENT_ID_SYSTEM: &str = "https://invicta.example.org/fhir/Id/oauth-client";
/// ODS organisation codes.
pub const ODS_SYSTEM: &str = "https://fhir.nhs.uk/Id/ods-organization-code";

/// Everything an audit record says about one request.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    /// The caller, when the token was valid.
    pub principal: Option<std::sync::Arc<Principal>>,
    /// The FHIR interaction (`read`, `vread`, `search-type`, `history-instance`, `create`, …).
    pub interaction: RestInteraction,
    /// Create, read, update, delete or execute (searches, operations, Bundles).
    pub action: AuditAction,
    /// The resource read or written, as `Type/id/_history/v`.
    pub resource: Option<String>,
    /// Further resources the request wrote (a transaction Bundle), as `Type/id/_history/v`.
    pub more_resources: Vec<String>,
    /// The query string of a search or history.
    pub query: Option<String>,
    /// The patients the request touched.
    pub patients: Vec<String>,
    /// HTTP status of the response.
    pub status: u16,
    /// Why it failed, when it did.
    pub outcome_desc: Option<String>,
    /// Purpose of use in force (`TREAT` unless break-glass or a claim).
    pub purpose: Option<String>,
    /// Break-glass or relationship-claim reason; such records are flagged for review.
    pub review_reason: Option<String>,
    /// The request id (`X-Request-Id`).
    pub request_id: String,
    /// The client's network address.
    pub address: Option<String>,
    /// When the request arrived (RFC 3339).
    pub recorded: String,
    /// Mark the records as about information withheld from patients (`audit-sensitive`), so
    /// a patient listing who viewed their record is not told that such information exists.
    pub sensitive: bool,
}

impl Default for AuditRecord {
    /// An empty record. Its interaction and action are placeholders (an operation executed):
    /// every record is built from a request, which names both.
    fn default() -> Self {
        AuditRecord {
            principal: None,
            interaction: RestInteraction::Operation,
            action: AuditAction::Execute,
            resource: None,
            more_resources: Vec::new(),
            query: None,
            patients: Vec::new(),
            status: 0,
            outcome_desc: None,
            purpose: None,
            review_reason: None,
            request_id: String::new(),
            address: None,
            recorded: String::new(),
            sensitive: false,
        }
    }
}

impl AuditRecord {
    /// The AuditEvents for this record: one per patient, or one without a patient.
    pub fn events(&self) -> Vec<Value> {
        if self.patients.is_empty() {
            vec![self.event(None)]
        } else {
            self.patients.iter().map(|p| self.event(Some(p))).collect()
        }
    }

    /// The patients of [`AuditRecord::events`] with the search index entries of each event,
    /// made from the facts (in the order of `events`).
    pub fn indexed_events(&self) -> Vec<IndexedEvent> {
        let one = |p: Option<&str>| IndexedEvent {
            patient: p.map(str::to_string),
            entries: self.index_entries(p),
        };
        if self.patients.is_empty() {
            vec![one(None)]
        } else {
            self.patients.iter().map(|p| one(Some(p))).collect()
        }
    }

    /// AuditEvent.outcome: success, minor failure (refused or bad request) or serious failure.
    pub fn outcome_code(&self) -> &'static str {
        match self.status {
            0..=399 => "0",
            400..=499 => "4",
            _ => "8",
        }
    }

    /// The purpose of use in force.
    pub fn purpose_code(&self) -> &str {
        self.purpose.as_deref().unwrap_or("TREAT")
    }

    /// One AuditEvent, about `patient` when the request touched one.
    fn event(&self, patient: Option<&str>) -> Value {
        let outcome = self.outcome_code();
        let mut agents = Vec::new();
        match &self.principal {
            Some(p) => {
                let mut who = json!({"identifier": {"system": USER_ID_SYSTEM, "value": p.subject}});
                if let Some(fu) = &p.fhir_user {
                    who["reference"] = json!(fu);
                }
                if let Some(n) = &p.name {
                    who["display"] = json!(n);
                }
                let mut agent = json!({
                    "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP", "display": "information recipient"}]},
                    "role": [{"coding": [{"system": ROLE_SYSTEM, "code": p.role}]}],
                    "who": who,
                    "requestor": true
                });
                if let Some(jti) = &p.jti {
                    agent["policy"] = json!([format!("urn:invicta:token:{jti}")]);
                }
                if let Some(org) = &p.org {
                    agent["location"] = json!({"display": format!("ODS {org}")});
                    agent["altId"] = json!(org);
                }
                if let Some(addr) = &self.address {
                    agent["network"] = json!({"address": addr, "type": "2"});
                }
                agents.push(agent);
                if let Some(client) = &p.client_id {
                    agents.push(json!({
                        "type": {"coding": [{"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110150", "display": "Application"}]},
                        "who": {"identifier": {"system": CLIENT_ID_SYSTEM, "value": client}},
                        "requestor": false
                    }));
                }
            }
            None => {
                let mut agent = json!({
                    "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}]},
                    "who": {"display": "unauthenticated client"},
                    "requestor": true
                });
                if let Some(addr) = &self.address {
                    agent["network"] = json!({"address": addr, "type": "2"});
                }
                agents.push(agent);
            }
        }
        let mut entities = Vec::new();
        if let Some(p) = patient {
            entities.push(json!({
                "what": {"reference": format!("Patient/{p}")},
                "type": {"system": ENTITY_TYPE_SYSTEM, "code": "1", "display": "Person"},
                "role": {"system": OBJECT_ROLE_SYSTEM, "code": "1", "display": "Patient"}
            }));
        }
        for r in self.resource.iter().chain(self.more_resources.iter()) {
            entities.push(json!({
                "what": {"reference": r},
                "type": {"system": ENTITY_TYPE_SYSTEM, "code": "2", "display": "System Object"},
                "role": {"system": OBJECT_ROLE_SYSTEM, "code": "4", "display": "Domain Resource"}
            }));
        }
        if let Some(q) = &self.query {
            entities.push(json!({
                "type": {"system": ENTITY_TYPE_SYSTEM, "code": "2", "display": "System Object"},
                "role": {"system": OBJECT_ROLE_SYSTEM, "code": "24", "display": "Query"},
                "query": base64::engine::general_purpose::STANDARD.encode(q.as_bytes())
            }));
        }
        let mut request = json!({
            "what": {"identifier": {"system": REQUEST_ID_SYSTEM, "value": self.request_id}},
            "type": {"system": ENTITY_TYPE_SYSTEM, "code": "2", "display": "System Object"},
            "role": {"system": OBJECT_ROLE_SYSTEM, "code": "3", "display": "Report"}
        });
        if let Some(reason) = &self.review_reason {
            request["detail"] = json!([{"type": "reason", "valueString": reason}]);
        }
        entities.push(request);
        let purpose = self.purpose_code();
        let mut event = json!({
            "resourceType": "AuditEvent",
            "type": {"system": EVENT_TYPE_SYSTEM, "code": "rest", "display": "RESTful Operation"},
            "subtype": [{"system": RestInteraction::SYSTEM, "code": self.interaction.code()}],
            "action": self.action.code(),
            "recorded": self.recorded,
            "outcome": outcome,
            "purposeOfEvent": [{"coding": [{"system": ACT_REASON_SYSTEM, "code": purpose}]}],
            "agent": agents,
            "source": {
                "site": SITE,
                "observer": {"display": "Invicta FHIR server"},
                "type": [{"system": "http://terminology.hl7.org/CodeSystem/security-source-type", "code": "4", "display": "Application Server"}]
            },
            "entity": entities
        });
        if let Some(desc) = &self.outcome_desc {
            event["outcomeDesc"] = json!(desc);
        }
        let mut meta = serde_json::Map::new();
        if self.review_reason.is_some() {
            meta.insert(
                "tag".into(),
                json!([{"system": AUDIT_FLAG_SYSTEM, "code": "review", "display": "Flagged for privacy review"}]),
            );
        }
        if self.sensitive {
            meta.insert(
                "security".into(),
                json!([{"system": fhir_model::access::ACCESS_LABEL_SYSTEM, "code": "audit-sensitive"}]),
            );
        }
        if !meta.is_empty() {
            event
                .as_object_mut()
                .expect("object")
                .insert("meta".into(), Value::Object(meta));
        }
        event
    }
}

/// A resource a request changed (or, for a conditional write that matched, read), as the audit
/// trail sees it: crate `store` reports its writes in these terms without authz knowing it.
#[derive(Debug, Clone)]
pub struct ChangedResource<'a> {
    /// What was done.
    pub action: AuditAction,
    /// The patients whose compartment holds the resource.
    pub patients: &'a [String],
    /// The version, as `Type/id/_history/v`.
    pub reference: String,
    /// The version's security labels.
    pub labels: &'a [String],
    /// The version's alert codes (`system|code`).
    pub alerts: &'a [String],
}

/// The records of a request's changes: `base` completed once per group of changes with the same
/// action about the same patients (groups in order of first appearance), so a transaction of a
/// thousand writes about one patient leaves one AuditEvent, not a thousand.
pub fn change_records(
    base: &AuditRecord,
    changes: &[ChangedResource<'_>],
    policy: &Policy,
) -> Vec<AuditRecord> {
    let mut groups: Vec<(AuditAction, &[String], Vec<&ChangedResource<'_>>)> = Vec::new();
    for c in changes {
        match groups
            .iter_mut()
            .find(|(a, p, _)| *a == c.action && *p == c.patients)
        {
            Some((_, _, members)) => members.push(c),
            None => groups.push((c.action, c.patients, vec![c])),
        }
    }
    groups
        .into_iter()
        .map(|(action, patients, members)| {
            let mut r = base.clone();
            r.action = action;
            let mut refs = members.iter().map(|c| c.reference.clone());
            r.resource = refs.next();
            r.more_resources = refs.collect();
            r.sensitive |= members
                .iter()
                .any(|c| policy.hidden_from_patients(c.labels, c.alerts));
            r.patients = patients.to_vec();
            r.status = 200;
            r
        })
        .collect()
}

/// The AuditEvents of a request's changes: those of [`change_records`], in order.
pub fn change_events(
    base: &AuditRecord,
    changes: &[ChangedResource<'_>],
    policy: &Policy,
) -> Vec<Value> {
    change_records(base, changes, policy)
        .iter()
        .flat_map(AuditRecord::events)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_valid_r4_and_one_per_patient() {
        let rec = AuditRecord {
            principal: Some(std::sync::Arc::new(Principal {
                subject: "u1".into(),
                role: "gp".into(),
                org: Some("G82984".into()),
                client_id: Some("app".into()),
                jti: Some("j1".into()),
                patient: None,
                fhir_user: Some("Practitioner/p".into()),
                name: Some("Dr A".into()),
                scopes: vec![],
                purpose_of_use: None,
                break_glass_reason: None,
            })),
            interaction: RestInteraction::SearchType,
            action: AuditAction::Execute,
            query: Some("Observation?code=1".into()),
            patients: vec!["a".into(), "b".into()],
            status: 200,
            purpose: Some("BTG".into()),
            review_reason: Some("collapsed".into()),
            request_id: "r1".into(),
            address: Some("127.0.0.1".into()),
            recorded: "2026-11-24T10:00:00.000Z".into(),
            sensitive: true,
            ..AuditRecord::default()
        };
        let events = rec.events();
        assert_eq!(events.len(), 2);
        for e in &events {
            let issues = fhir_model::validate::validate_resource(e);
            assert!(issues.is_empty(), "{issues:?}\n{e}");
            fhir_model::format::check_resource(e.clone()).unwrap();
        }
        assert_eq!(events[1]["entity"][0]["what"]["reference"], "Patient/b");
        assert_eq!(events[0]["action"], "E");
        assert_eq!(
            events[0]["subtype"],
            json!([{"system": "http://hl7.org/fhir/restful-interaction", "code": "search-type"}])
        );
        assert_eq!(events[0]["meta"]["tag"][0]["code"], "review");
        let refused = AuditRecord {
            interaction: RestInteraction::Read,
            action: AuditAction::Read,
            status: 401,
            request_id: "r2".into(),
            recorded: "2026-11-24T10:00:00Z".into(),
            ..AuditRecord::default()
        };
        let e = refused.events();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0]["outcome"], "4");
        assert!(fhir_model::validate::validate_resource(&e[0]).is_empty());
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn changes_with_one_action_about_the_same_patients_share_records() {
        let policy = Policy::default_policy();
        let base = AuditRecord {
            interaction: RestInteraction::Transaction,
            action: AuditAction::Execute,
            request_id: "r3".into(),
            recorded: "2026-11-24T10:00:00.000Z".into(),
            status: 0,
            ..AuditRecord::default()
        };
        let (a, b, ab, none) = (
            strings(&["a"]),
            strings(&["b"]),
            strings(&["a", "b"]),
            Vec::new(),
        );
        let third_party = strings(&["third-party"]);
        let change = |action, patients, reference: &str, labels| ChangedResource {
            action,
            patients,
            reference: reference.to_string(),
            labels,
            alerts: &[],
        };
        let changes = [
            change(AuditAction::Create, &a, "Observation/1/_history/1", &none),
            change(AuditAction::Update, &a, "Observation/2/_history/3", &none),
            change(AuditAction::Create, &b, "Observation/4/_history/1", &none),
            change(
                AuditAction::Create,
                &a,
                "Condition/5/_history/1",
                &third_party,
            ),
            change(AuditAction::Create, &ab, "Encounter/6/_history/1", &none),
            change(AuditAction::Update, &a, "Observation/7/_history/2", &none),
            change(AuditAction::Read, &none, "Organization/8/_history/4", &none),
        ];
        let records = change_records(&base, &changes, &policy);
        let summary: Vec<(AuditAction, Vec<String>, Vec<String>, bool)> = records
            .iter()
            .map(|r| {
                let refs = r
                    .resource
                    .iter()
                    .chain(&r.more_resources)
                    .cloned()
                    .collect();
                (r.action, r.patients.clone(), refs, r.sensitive)
            })
            .collect();
        assert_eq!(
            summary,
            [
                (
                    AuditAction::Create,
                    a.clone(),
                    strings(&["Observation/1/_history/1", "Condition/5/_history/1"]),
                    true
                ),
                (
                    AuditAction::Update,
                    a.clone(),
                    strings(&["Observation/2/_history/3", "Observation/7/_history/2"]),
                    false
                ),
                (
                    AuditAction::Create,
                    b.clone(),
                    strings(&["Observation/4/_history/1"]),
                    false
                ),
                (
                    AuditAction::Create,
                    ab.clone(),
                    strings(&["Encounter/6/_history/1"]),
                    false
                ),
                (
                    AuditAction::Read,
                    none.clone(),
                    strings(&["Organization/8/_history/4"]),
                    false
                ),
            ]
        );
        for r in &records {
            assert_eq!(r.status, 200);
            assert_eq!(r.interaction, RestInteraction::Transaction);
            assert_eq!(r.request_id, "r3");
        }
        // One AuditEvent per patient of each record, one for a record about no patient.
        let events = change_events(&base, &changes, &policy);
        assert_eq!(events.len(), 1 + 1 + 1 + 2 + 1);
        assert_eq!(events[0]["action"], "C");
        assert_eq!(events[1]["action"], "U");
        assert_eq!(events[5]["action"], "R");
        assert_eq!(events[0]["subtype"][0]["code"], "transaction");
        assert_eq!(events[0]["meta"]["security"][0]["code"], "audit-sensitive");
        assert!(events[1].get("meta").is_none());
        assert!(change_records(&base, &[], &policy).is_empty());
    }
}
