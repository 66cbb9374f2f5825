//! The searchable values of the AuditEvents in [`crate::audit`], taken from the record's facts
//! rather than by evaluating every AuditEvent search parameter over the JSON: the audit trail
//! writes one event per request, and `fhir_model::index::extract` cost several times what
//! building the event did. The entries give the audit trail the same search keys as
//! `extract` over the event (token display texts, which no key holds, are left out); the
//! server's `audit_sink` tests hold the two to that over every shape of record.

use fhir_model::index::{date_range, normalize_string, parse_reference, IndexEntry, IndexValue};
use fhir_model::RestInteraction;

use crate::audit::{
    AuditRecord, AUDIT_FLAG_SYSTEM, CLIENT_ID_SYSTEM, REQUEST_ID_SYSTEM, ROLE_SYSTEM,
    USER_ID_SYSTEM,
};

pub(crate) const EVENT_TYPE_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/audit-event-type";
pub(crate) const ENTITY_TYPE_SYSTEM: &str =
    "http://terminology.hl7.org/CodeSystem/audit-entity-type";
pub(crate) const OBJECT_ROLE_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/object-role";
pub(crate) const ACT_REASON_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-ActReason";
/// AuditEvent.source.site of every event.
pub(crate) const SITE: &str = "Invicta";

/// One of a record's AuditEvents, named by its patient, with the index entries of its
/// searchable values (the audit trail stores the record's facts and these; the event is built
/// when read).
#[derive(Debug, Clone)]
pub struct IndexedEvent {
    /// The patient the event is about, if any.
    pub patient: Option<String>,
    /// Its searchable values (`fhir_model::index::IndexEntry`), as `extract` would find them.
    pub entries: Vec<IndexEntry>,
}

/// Text that search indexes: `None` for empty or blank text, as `extract` skips it.
fn text(s: &str) -> Option<String> {
    (!s.trim().is_empty()).then(|| s.to_string())
}

struct Entries(Vec<IndexEntry>);

impl Entries {
    fn push(&mut self, param: &str, value: IndexValue) {
        self.0.push(IndexEntry {
            param: param.to_string(),
            value,
        });
    }

    fn token(&mut self, param: &str, system: Option<&str>, code: &str) {
        let system = system.and_then(text);
        let code = text(code);
        if system.is_some() || code.is_some() {
            self.push(
                param,
                IndexValue::Token {
                    system,
                    code,
                    text: None,
                    of_type: None,
                },
            );
        }
    }

    /// A Reference (`reference` and/or `identifier`); one whose target is a Patient is also
    /// the `patient` parameter's.
    fn reference(
        &mut self,
        param: &str,
        reference: Option<&str>,
        identifier: Option<(&str, &str)>,
    ) {
        let parsed = reference
            .filter(|r| !r.trim().is_empty())
            .map(parse_reference)
            .unwrap_or_default();
        let identifier_system = identifier.and_then(|(s, _)| text(s));
        let identifier_value = identifier.and_then(|(_, v)| text(v));
        if parsed == Default::default() && identifier_value.is_none() {
            return;
        }
        let value = IndexValue::Reference {
            target_type: parsed.target_type,
            target_id: parsed.target_id,
            url: parsed.url,
            identifier_system,
            identifier_value,
        };
        if matches!(&value, IndexValue::Reference { target_type: Some(t), .. } if t == "Patient") {
            self.push("patient", value.clone());
        }
        self.push(param, value);
    }

    fn string(&mut self, param: &str, s: &str) {
        let normalized = normalize_string(s);
        if !normalized.is_empty() {
            self.push(
                param,
                IndexValue::String {
                    value: s.to_string(),
                    normalized,
                },
            );
        }
    }

    fn entity(&mut self, type_code: &str, role_code: &str) {
        self.token("entity-type", Some(ENTITY_TYPE_SYSTEM), type_code);
        self.token("entity-role", Some(OBJECT_ROLE_SYSTEM), role_code);
    }
}

impl AuditRecord {
    /// The search index entries of [`AuditRecord::event`] for `patient`.
    pub(crate) fn index_entries(&self, patient: Option<&str>) -> Vec<IndexEntry> {
        let mut e = Entries(Vec::with_capacity(32));
        e.token("type", Some(EVENT_TYPE_SYSTEM), "rest");
        e.token(
            "subtype",
            Some(RestInteraction::SYSTEM),
            self.interaction.code(),
        );
        e.token("action", None, self.action.code());
        if let Some((start, end)) = date_range(&self.recorded) {
            e.push(
                "date",
                IndexValue::Date {
                    start: Some(start),
                    end: Some(end),
                },
            );
        }
        e.token("outcome", None, self.outcome_code());
        e.token("purpose", Some(ACT_REASON_SYSTEM), self.purpose_code());
        if let Some(p) = &self.principal {
            e.reference(
                "agent",
                p.fhir_user.as_deref(),
                Some((USER_ID_SYSTEM, &p.subject)),
            );
            e.token("agent-role", Some(ROLE_SYSTEM), &p.role);
            if let Some(jti) = &p.jti {
                e.push(
                    "policy",
                    IndexValue::Uri {
                        value: format!("urn:invicta:token:{jti}"),
                    },
                );
            }
            if let Some(org) = &p.org {
                e.token("altid", None, org);
            }
            if let Some(addr) = &self.address {
                e.string("address", addr);
            }
            if let Some(client) = &p.client_id {
                e.reference("agent", None, Some((CLIENT_ID_SYSTEM, client)));
            }
        } else if let Some(addr) = &self.address {
            e.string("address", addr);
        }
        if let Some(p) = patient {
            e.reference("entity", Some(&format!("Patient/{p}")), None);
            e.entity("1", "1");
        }
        for r in self.resource.iter().chain(self.more_resources.iter()) {
            e.reference("entity", Some(r), None);
            e.entity("2", "4");
        }
        if self.query.is_some() {
            e.entity("2", "24");
        }
        e.reference("entity", None, Some((REQUEST_ID_SYSTEM, &self.request_id)));
        e.entity("2", "3");
        e.token("site", None, SITE);
        if self.review_reason.is_some() {
            e.token("_tag", Some(AUDIT_FLAG_SYSTEM), "review");
        }
        if self.sensitive {
            e.token(
                "_security",
                Some(fhir_model::access::ACCESS_LABEL_SYSTEM),
                "audit-sensitive",
            );
        }
        e.0
    }
}
