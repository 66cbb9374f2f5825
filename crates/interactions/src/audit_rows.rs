//! A request's audit record as the audit trail stores it: narrow rows of facts and search keys
//! (`store::AuditFacts`), one per AuditEvent the record gives. The events' JSON is built by
//! the `audit_resource` view when they are read, never on the request's path.

use authz::audit::AuditRecord;
use store::{AuditCaller, AuditFacts, AuditRow};

/// The rows of `record`'s AuditEvents: one per patient, or one without a patient.
pub fn audit_rows(record: &AuditRecord) -> Vec<AuditRow> {
    record
        .indexed_events()
        .into_iter()
        .map(|e| AuditRow::narrow(facts(record, e.patient), &e.entries))
        .collect()
}

/// The facts of `record`'s event about `patient`.
pub fn facts(record: &AuditRecord, patient: Option<String>) -> AuditFacts {
    AuditFacts {
        interaction: record.interaction.code().to_string(),
        action: record.action.code().to_string(),
        outcome: record.outcome_code().to_string(),
        outcome_desc: record.outcome_desc.clone(),
        purpose: record.purpose_code().to_string(),
        review_reason: record.review_reason.clone(),
        request_id: record.request_id.clone(),
        address: record.address.clone(),
        sensitive: record.sensitive,
        caller: record.principal.as_ref().map(|p| AuditCaller {
            subject: p.subject.clone(),
            role: p.role.clone(),
            fhir_user: p.fhir_user.clone(),
            name: p.name.clone(),
            org: p.org.clone(),
            client_id: p.client_id.clone(),
            jti: p.jti.clone(),
        }),
        patient,
        resources: record
            .resource
            .iter()
            .chain(&record.more_resources)
            .cloned()
            .collect(),
        query: record.query.clone(),
    }
}
