//! The documents of the repository's `profiles/` folder, embedded in the binary: the server
//! reads nothing from disk to validate. A test keeps this list and the folder in step.

use serde_json::Value;

use crate::issue::{Issue, IssueCode, ModelError};

macro_rules! embedded {
    ($($file:literal),* $(,)?) => {
        &[$(($file, include_str!(concat!("../../../../profiles/", $file)))),*]
    };
}

/// Every document, by file name.
pub(crate) const FILES: &[(&str, &str)] = embedded![
    "CodeSystem-flag-category.json",
    "ValueSet-allergyintolerance-clinical.json",
    "ValueSet-allergyintolerance-verification.json",
    "ValueSet-care-plan-category.json",
    "ValueSet-condition-clinical.json",
    "ValueSet-condition-ver-status.json",
    "ValueSet-flag-category.json",
    "ValueSet-nhs-number-verification-status.json",
    // The default profile of each type is the first listed for it.
    "StructureDefinition-Invicta-Patient.json",
    "StructureDefinition-Invicta-AllergyIntolerance.json",
    "StructureDefinition-Invicta-Observation.json",
    "StructureDefinition-Invicta-Flag.json",
    "StructureDefinition-Invicta-CarePlan.json",
    "StructureDefinition-Invicta-MedicationStatement.json",
    "StructureDefinition-Invicta-Encounter.json",
    "StructureDefinition-Invicta-Condition.json",
    "StructureDefinition-Invicta-EpisodeOfCare.json",
    "StructureDefinition-Invicta-ServiceRequest.json",
    "StructureDefinition-Invicta-Consent.json",
    "StructureDefinition-Invicta-DiagnosticReport.json",
    "StructureDefinition-Invicta-Immunization.json",
    "StructureDefinition-Invicta-MedicationRequest.json",
    "StructureDefinition-Invicta-CareTeam.json",
    "StructureDefinition-Invicta-RelatedPerson.json",
    "StructureDefinition-Invicta-Practitioner.json",
    "StructureDefinition-Invicta-Organization.json",
    "StructureDefinition-Invicta-Location.json",
];

/// The documents, parsed.
pub(crate) fn documents() -> Result<Vec<Value>, ModelError> {
    FILES
        .iter()
        .map(|(name, text)| {
            serde_json::from_str(text).map_err(|e| {
                ModelError::single(Issue::general(
                    IssueCode::Invalid,
                    format!("profiles/{name}: {e}"),
                ))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::FILES;

    #[test]
    fn every_document_in_the_folder_is_embedded() {
        let folder = concat!(env!("CARGO_MANIFEST_DIR"), "/../../profiles");
        let mut on_disk: Vec<String> = std::fs::read_dir(folder)
            .expect("profiles folder")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| {
                ["StructureDefinition-", "ValueSet-", "CodeSystem-"]
                    .iter()
                    .any(|k| n.starts_with(k))
                    && n.ends_with(".json")
            })
            .collect();
        on_disk.sort();
        let mut embedded: Vec<String> = FILES.iter().map(|(n, _)| n.to_string()).collect();
        embedded.sort();
        assert_eq!(on_disk, embedded);
    }
}
