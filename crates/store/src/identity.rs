//! One person per NHS number: the `person_identity` table maps each NHS number to the one
//! Patient it identifies, claimed by Patient writes inside their transaction.

use diesel::pg::PgConnection;
use diesel::sql_types::Text;
use diesel::{QueryableByName, RunQueryDsl};
use fhir_model::nhs_number::NHS_NUMBER_SYSTEM;
use serde_json::Value;

use crate::error::StoreError;
use crate::sql::{query, Bind};

/// The NHS numbers a Patient carries, sorted and without repeats.
pub(crate) fn nhs_numbers(patient: &Value) -> Vec<String> {
    let mut out: Vec<String> = patient["identifier"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["system"].as_str() == Some(NHS_NUMBER_SYSTEM))
        .filter_map(|i| i["value"].as_str())
        .map(str::to_string)
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The advisory lock keys that serialise writers of the same NHS numbers until commit, so a
/// conditional create that finds no Patient cannot race another that is creating one.
pub(crate) fn lock_keys(numbers: &[String]) -> Vec<String> {
    numbers.iter().map(|n| format!("nhs-number:{n}")).collect()
}

#[derive(QueryableByName)]
struct Owner {
    #[diesel(sql_type = Text)]
    nhs_number: String,
    #[diesel(sql_type = Text)]
    patient_id: String,
}

/// Makes `numbers` the NHS numbers of Patient `id`; a number another Patient holds is a
/// conflict, answered as `(number, holder)` for the caller to refuse with [`conflict`].
pub(crate) fn claim(
    conn: &mut PgConnection,
    id: &str,
    numbers: &[String],
) -> Result<Option<(String, String)>, StoreError> {
    query(
        "DELETE FROM person_identity WHERE patient_id = $1 AND NOT (nhs_number = ANY($2))",
        &[Bind::Text(id.into()), Bind::TextArray(numbers.to_vec())],
    )
    .execute(conn)?;
    if numbers.is_empty() {
        return Ok(None);
    }
    query(
        "INSERT INTO person_identity (nhs_number, patient_id) SELECT unnest($2::text[]), $1 \
         ON CONFLICT DO NOTHING",
        &[Bind::Text(id.into()), Bind::TextArray(numbers.to_vec())],
    )
    .execute(conn)?;
    let taken: Vec<Owner> = query(
        "SELECT nhs_number, patient_id FROM person_identity \
         WHERE nhs_number = ANY($2) AND patient_id <> $1 LIMIT 1",
        &[Bind::Text(id.into()), Bind::TextArray(numbers.to_vec())],
    )
    .load(conn)?;
    Ok(taken
        .into_iter()
        .next()
        .map(|o| (o.nhs_number, o.patient_id)))
}

/// The refusal of a second Patient with an NHS number; `holder` names the Patient that has it
/// when the writer may see that Patient (else the answer says no more than that it exists).
pub(crate) fn conflict(nhs_number: &str, holder: Option<&str>) -> StoreError {
    let reference = format!("'Patient?identifier={NHS_NUMBER_SYSTEM}|{nhs_number}'");
    StoreError::Conflict(match holder {
        Some(h) => format!(
            "NHS number {nhs_number} already identifies Patient/{h}: one person has one Patient \
             record. Refer to the person with the conditional reference {reference}, or update \
             Patient/{h} instead"
        ),
        None => format!(
            "NHS number {nhs_number} already identifies a Patient: one person has one Patient \
             record. Refer to the person with the conditional reference {reference}"
        ),
    })
}

/// Frees a deleted Patient's NHS numbers.
pub(crate) fn release(conn: &mut PgConnection, id: &str) -> Result<(), StoreError> {
    query(
        "DELETE FROM person_identity WHERE patient_id = $1",
        &[Bind::Text(id.into())],
    )
    .execute(conn)?;
    Ok(())
}
