//! The legitimate-relationship table: registered practices (from Patient writes), feed sources
//! (from feed writes, see `Tx::source`) and self-claimed relationships.

use diesel::pg::PgConnection;
use diesel::{QueryableByName, RunQueryDsl};
use serde_json::Value;

use crate::error::StoreError;
use crate::pool::Store;
use crate::sql::{query, Bind};

impl Store {
    /// Records a self-claimed relationship between an organisation and patients, valid for
    /// `days`; an existing claim is renewed with the new reason.
    pub fn claim_relationship(
        &self,
        patients: &[String],
        org: &str,
        reason: &str,
        days: i32,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        query(
            "INSERT INTO care_relationship (patient_id, org_code, kind, reason, expires_at) \
             SELECT unnest($1::text[]), $2, 'self-claimed', $3, now() + make_interval(days => $4) \
             ON CONFLICT (patient_id, org_code, kind) DO UPDATE \
             SET reason = EXCLUDED.reason, expires_at = EXCLUDED.expires_at",
            &[
                Bind::TextArray(patients.to_vec()),
                Bind::Text(org.into()),
                Bind::Text(reason.into()),
                Bind::Int(days),
            ],
        )
        .execute(&mut conn)?;
        Ok(())
    }
}

/// Replaces a Patient's `registered-gp` relationships with its current registered practices.
pub(crate) fn sync_registered_practices(
    conn: &mut PgConnection,
    id: &str,
    patient: &Value,
) -> Result<(), StoreError> {
    let practices = registered_practices(conn, patient)?;
    query(
        "DELETE FROM care_relationship WHERE patient_id = $1 AND kind = 'registered-gp' \
         AND NOT (org_code = ANY($2))",
        &[Bind::Text(id.into()), Bind::TextArray(practices.clone())],
    )
    .execute(conn)?;
    query(
        "INSERT INTO care_relationship (patient_id, org_code, kind) \
         SELECT $1, unnest($2::text[]), 'registered-gp' ON CONFLICT DO NOTHING",
        &[Bind::Text(id.into()), Bind::TextArray(practices)],
    )
    .execute(conn)?;
    Ok(())
}

/// ODS system for organisation codes.
pub(crate) const ODS_SYSTEM: &str = "https://fhir.nhs.uk/Id/ods-organization-code";

#[derive(QueryableByName)]
struct BodyRow {
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Bytea>)]
    body: Option<Vec<u8>>,
}

/// ODS codes of a Patient's registered practices: from `generalPractitioner` references that
/// carry an ODS identifier, or that point at a stored Organization with one.
fn registered_practices(
    conn: &mut PgConnection,
    patient: &Value,
) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::new();
    for gp in patient["generalPractitioner"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if gp["identifier"]["system"].as_str() == Some(ODS_SYSTEM) {
            if let Some(code) = gp["identifier"]["value"].as_str() {
                out.push(code.to_string());
                continue;
            }
        }
        let Some(org_id) = gp["reference"]
            .as_str()
            .and_then(|r| r.strip_prefix("Organization/"))
        else {
            continue;
        };
        let rows: Vec<BodyRow> = query(
            "SELECT body FROM resource WHERE res_type = 'Organization' AND id = $1 AND NOT deleted",
            &[Bind::Text(org_id.to_string())],
        )
        .load(conn)?;
        let org: Option<Value> = rows
            .into_iter()
            .next()
            .and_then(|r| r.body)
            .and_then(|b| serde_json::from_slice(&b).ok());
        if let Some(org) = org {
            out.extend(
                org["identifier"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|i| i["system"].as_str() == Some(ODS_SYSTEM))
                    .filter_map(|i| i["value"].as_str().map(str::to_string)),
            );
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}
