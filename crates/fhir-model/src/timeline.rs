//! The clinical date of an event in a person's record, for `Patient/$timeline` and the
//! `start`/`end` of `$everything`: one documented rule per resource type, each an ordered list of
//! elements of which the first present one dates the event.
//!
//! A type without a rule (RelatedPerson, Coverage, the Patient itself …) is not an event and is
//! not on the timeline. A resource of a type with a rule but none of its elements present is
//! dated by when the record learned of it (`meta.lastUpdated`), so no event silently drops out.

use chrono::{DateTime, Utc};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::OnceLock;

use crate::fhirpath::{self, Dialect, Expression, Node};
use crate::index::{self, IndexValue};
use crate::search_params::ParamType;

/// The element that dates a resource when its type's rule finds nothing.
pub const RECORDED: &str = "meta.lastUpdated";

/// Per type, the elements that date an event, first present one wins (README, "$timeline").
/// Stored timeline rows follow these rules: bump `INDEX_FORMAT_VERSION` in `search_params`
/// when they change, so existing resources are re-dated at the next start.
pub const RULES: &[(&str, &[&str])] = &[
    (
        "AdverseEvent",
        &["AdverseEvent.date", "AdverseEvent.recordedDate"],
    ),
    (
        "AllergyIntolerance",
        &[
            "AllergyIntolerance.onset",
            "AllergyIntolerance.recordedDate",
        ],
    ),
    ("Appointment", &["Appointment.start", "Appointment.created"]),
    ("CarePlan", &["CarePlan.period", "CarePlan.created"]),
    ("CareTeam", &["CareTeam.period"]),
    (
        "ClinicalImpression",
        &["ClinicalImpression.effective", "ClinicalImpression.date"],
    ),
    (
        "Communication",
        &["Communication.sent", "Communication.received"],
    ),
    (
        "CommunicationRequest",
        &[
            "CommunicationRequest.occurrence",
            "CommunicationRequest.authoredOn",
        ],
    ),
    ("Composition", &["Composition.date"]),
    ("Condition", &["Condition.onset", "Condition.recordedDate"]),
    ("Consent", &["Consent.dateTime", "Consent.provision.period"]),
    ("DetectedIssue", &["DetectedIssue.identified"]),
    (
        "DeviceRequest",
        &["DeviceRequest.occurrence", "DeviceRequest.authoredOn"],
    ),
    (
        "DeviceUseStatement",
        &["DeviceUseStatement.timing", "DeviceUseStatement.recordedOn"],
    ),
    (
        "DiagnosticReport",
        &["DiagnosticReport.effective", "DiagnosticReport.issued"],
    ),
    (
        "DocumentReference",
        &["DocumentReference.context.period", "DocumentReference.date"],
    ),
    ("Encounter", &["Encounter.period"]),
    ("EpisodeOfCare", &["EpisodeOfCare.period"]),
    ("FamilyMemberHistory", &["FamilyMemberHistory.date"]),
    ("Flag", &["Flag.period"]),
    ("Goal", &["Goal.start", "Goal.statusDate"]),
    ("ImagingStudy", &["ImagingStudy.started"]),
    (
        "Immunization",
        &["Immunization.occurrence", "Immunization.recorded"],
    ),
    ("List", &["List.date"]),
    ("Media", &["Media.created", "Media.issued"]),
    (
        "MedicationAdministration",
        &["MedicationAdministration.effective"],
    ),
    (
        "MedicationDispense",
        &[
            "MedicationDispense.whenHandedOver",
            "MedicationDispense.whenPrepared",
        ],
    ),
    ("MedicationRequest", &["MedicationRequest.authoredOn"]),
    (
        "MedicationStatement",
        &[
            "MedicationStatement.effective",
            "MedicationStatement.dateAsserted",
        ],
    ),
    ("NutritionOrder", &["NutritionOrder.dateTime"]),
    (
        "Observation",
        &["Observation.effective", "Observation.issued"],
    ),
    ("Procedure", &["Procedure.performed"]),
    ("QuestionnaireResponse", &["QuestionnaireResponse.authored"]),
    ("RiskAssessment", &["RiskAssessment.occurrence"]),
    (
        "ServiceRequest",
        &["ServiceRequest.occurrence", "ServiceRequest.authoredOn"],
    ),
    (
        "Specimen",
        &["Specimen.collection.collected", "Specimen.receivedTime"],
    ),
    ("VisionPrescription", &["VisionPrescription.dateWritten"]),
];

/// When an event happened and which element said so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventDate {
    /// The instant the event starts (a date's first moment).
    pub at: DateTime<Utc>,
    /// The element that gave it (`Encounter.period`, or [`RECORDED`]).
    pub element: &'static str,
}

fn compiled() -> &'static HashMap<&'static str, Vec<(&'static str, Expression)>> {
    static CACHE: OnceLock<HashMap<&'static str, Vec<(&'static str, Expression)>>> =
        OnceLock::new();
    CACHE.get_or_init(|| {
        RULES
            .iter()
            .map(|(t, paths)| {
                let exprs = paths
                    .iter()
                    .filter_map(|p| Some((*p, fhirpath::parse(p, Dialect::Search).ok()?)))
                    .collect();
                (*t, exprs)
            })
            .collect()
    })
}

/// Whether resources of `resource_type` are events on a timeline.
pub fn is_event_type(resource_type: &str) -> bool {
    compiled().contains_key(resource_type)
}

/// Every type with a timeline rule, sorted.
pub fn event_types() -> Vec<&'static str> {
    let mut types: Vec<&str> = RULES.iter().map(|(t, _)| *t).collect();
    types.sort_unstable();
    types
}

/// The clinical date of `resource` by its type's rule; `None` for a type that is not an event
/// or a resource with neither a dated element nor `meta.lastUpdated`.
pub fn event_date(resource: &Value) -> Option<EventDate> {
    let rt = resource.get("resourceType")?.as_str()?;
    let rules = compiled().get(rt)?;
    let root = [Node::root(resource)];
    for (element, expr) in rules {
        let first = fhirpath::evaluate(expr, &root)
            .iter()
            .flat_map(|n| index::values_of(ParamType::Date, n))
            .find_map(|v| match v {
                IndexValue::Date { start, end } => start.or(end),
                _ => None,
            });
        if let Some(at) = first {
            return Some(EventDate { at, element });
        }
    }
    let recorded = resource.pointer("/meta/lastUpdated")?.as_str()?;
    Some(EventDate {
        at: index::date_range(recorded)?.0,
        element: RECORDED,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(v: Value) -> Option<(String, &'static str)> {
        event_date(&v).map(|e| (e.at.to_rfc3339(), e.element))
    }

    #[test]
    fn every_rule_parses_and_names_a_compartment_type() {
        for (t, paths) in RULES {
            assert_eq!(
                compiled()[t].len(),
                paths.len(),
                "{t}: a path does not parse"
            );
            assert!(
                crate::compartment::patient_compartment_types()
                    .iter()
                    .any(|c| c == t),
                "{t} is not in the Patient compartment"
            );
        }
    }

    #[test]
    fn first_present_element_wins() {
        let enc = json!({"resourceType": "Encounter",
            "period": {"start": "2026-03-01T10:00:00Z", "end": "2026-03-04"}});
        assert_eq!(
            at(enc),
            Some(("2026-03-01T10:00:00+00:00".into(), "Encounter.period"))
        );
        let cond = json!({"resourceType": "Condition", "recordedDate": "2025-06-02"});
        assert_eq!(
            at(cond),
            Some(("2025-06-02T00:00:00+00:00".into(), "Condition.recordedDate"))
        );
        let onset = json!({"resourceType": "Condition", "onsetDateTime": "2024-01",
            "recordedDate": "2025-06-02"});
        assert_eq!(at(onset).unwrap().1, "Condition.onset");
        let ended = json!({"resourceType": "Flag", "period": {"end": "2026-01-01"}});
        assert_eq!(at(ended).unwrap().0, "2026-01-02T00:00:00+00:00");
    }

    #[test]
    fn undated_events_fall_back_to_when_recorded_and_non_events_have_none() {
        let obs = json!({"resourceType": "Observation", "valueString": "x",
            "meta": {"lastUpdated": "2026-11-30T09:15:00.120Z"}});
        assert_eq!(at(obs).unwrap().1, RECORDED);
        let text_onset = json!({"resourceType": "Condition", "onsetString": "childhood"});
        assert_eq!(at(text_onset), None);
        assert_eq!(
            at(json!({"resourceType": "RelatedPerson", "meta": {"lastUpdated": "2026-01-01"}})),
            None
        );
        assert_eq!(at(json!({"resourceType": "Patient"})), None);
        assert!(is_event_type("Encounter") && !is_event_type("Patient"));
    }
}
