//! Judging past versions by their own content. Index rows exist for current versions only, so a
//! scope restriction (`Observation.rs?category=laboratory`), compiled as a condition over the
//! index tables, says nothing about an older version. Here a version's index values are
//! extracted from its body and the same compiled condition runs over them, in tables of the same
//! names that shadow the real ones for that one statement: the rule a version meets is exactly
//! the rule a current resource meets. What cannot be judged this way is not admitted.

use diesel::pg::PgConnection;
use diesel::sql_types::{BigInt, Bytea, Nullable, Text};
use diesel::{QueryableByName, RunQueryDsl};
use fhir_model::index::IndexEntry;

use crate::access::Access;
use crate::error::StoreError;
use crate::index_rows;
use crate::sql::{query, Bind};

/// How many versions one judging statement takes.
const JUDGE_BATCH: usize = 500;

/// A past version to judge.
#[derive(Debug, Clone, QueryableByName)]
pub(crate) struct Candidate {
    /// Its history row id.
    #[diesel(sql_type = BigInt)]
    pub hid: i64,
    /// Its resource type.
    #[diesel(sql_type = Text)]
    pub res_type: String,
    /// Its body; `None` for a deletion.
    #[diesel(sql_type = Nullable<Bytea>)]
    pub body: Option<Vec<u8>>,
}

#[derive(QueryableByName)]
struct Hid {
    #[diesel(sql_type = BigInt)]
    hid: i64,
}

/// True when a restriction's condition can be judged on a version's own index values: one
/// that follows references (a chain, `_has`) reads other resources' rows, which the shadowing
/// would hide, so it cannot.
fn judgeable(access: &Access, res_type: &str) -> bool {
    access
        .restriction(res_type)
        .is_none_or(|f| !f.sql.contains("JOIN resource "))
}

/// The history row ids among `candidates` whose own content meets the scope restriction on
/// their type (versions of unrestricted types are all admitted). A deletion, a body that does
/// not parse, or a restriction that cannot be judged on one version admits nothing.
pub(crate) fn admitted(
    conn: &mut PgConnection,
    access: &Access,
    candidates: &[Candidate],
) -> Result<Vec<i64>, StoreError> {
    let mut out = Vec::new();
    let mut judged: Vec<(i64, String, Vec<IndexEntry>)> = Vec::new();
    for c in candidates {
        if access.restriction(&c.res_type).is_none() {
            out.push(c.hid);
            continue;
        }
        if !judgeable(access, &c.res_type) {
            continue;
        }
        let Some(value) = c
            .body
            .as_deref()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok())
        else {
            continue;
        };
        let entries = if access.restriction_params.is_empty() {
            fhir_model::index::extract(&value)
        } else {
            fhir_model::index::extract_params(&value, &access.restriction_params)
        };
        judged.push((c.hid, c.res_type.clone(), entries));
    }
    let only_restrictions = Access {
        restrictions: access.restrictions.clone(),
        ..Access::default()
    };
    for batch in judged.chunks(JUDGE_BATCH) {
        // Keyed by the negated history id: real row ids are positive, so nothing in a shadow
        // table can be mistaken for a real resource's row, nor the reverse.
        let rows: Vec<(i64, &str, &[IndexEntry])> = batch
            .iter()
            .map(|(hid, t, e)| (-*hid, t.as_str(), e.as_slice()))
            .collect();
        let mut binds = Vec::new();
        let shadows = index_rows::shadow_tables(&rows, &mut binds);
        binds.push(Bind::BigIntArray(
            batch.iter().map(|(h, _, _)| *h).collect(),
        ));
        let hids = binds.len();
        let cond = only_restrictions.predicate("r", &mut binds);
        let with = if shadows.is_empty() {
            String::new()
        } else {
            format!("WITH {} ", shadows.join(", "))
        };
        let sql = format!(
            "{with}SELECT -r.rid AS hid FROM (SELECT -h.hid AS rid, h.res_type, h.id, h.version, \
             h.last_updated, h.deleted, h.body, h.compartments, h.sec_labels, h.alert_codes, h.org \
             FROM resource_history h WHERE h.hid = ANY(${hids})) r WHERE {cond}"
        );
        let rows: Vec<Hid> = query(&sql, &binds).load(conn)?;
        out.extend(rows.into_iter().map(|h| h.hid));
    }
    Ok(out)
}
