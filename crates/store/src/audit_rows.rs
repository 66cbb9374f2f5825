//! AuditEvents as stored resources: many at once, in three statements.

use diesel::pg::PgConnection;
use diesel::sql_types::{BigInt, Text};
use diesel::{Connection, QueryableByName, RunQueryDsl};
use serde_json::Value;

use crate::error::StoreError;
use crate::index_rows;
use crate::meta::now_millis;
use crate::pool::Store;
use crate::sql::{query, Bind};
use crate::write::prepare;

impl Store {
    /// Stores a batch of AuditEvents in one transaction (one commit for many requests).
    pub fn record_audit(&self, events: Vec<Value>) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        conn.transaction(|conn| insert_audit_events(conn, events))
    }
}

/// Inserts AuditEvents (already built and valid) with new ids: three statements for the whole
/// batch (current rows, history rows, index rows), so many requests share one commit cheaply.
pub(crate) fn insert_audit_events(
    conn: &mut PgConnection,
    events: Vec<Value>,
) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let at = now_millis();
    let mut prepared = Vec::with_capacity(events.len());
    for event in events {
        let id = uuid::Uuid::new_v4().to_string();
        let v = prepare(event, &id, 1, at)?;
        prepared.push((id, v));
    }
    let mut binds = vec![Bind::OptTime(Some(at))];
    let mut rows = Vec::with_capacity(prepared.len());
    for (id, v) in &prepared {
        binds.push(Bind::Text(id.clone()));
        binds.push(Bind::Bytes(v.bytes.clone()));
        binds.push(Bind::TextArray(v.compartments.clone()));
        binds.push(Bind::TextArray(v.labels.clone()));
        let n = binds.len();
        rows.push(format!(
            "('AuditEvent', ${}, 1, $1, FALSE, ${}, ${}, ${n}, '{{}}')",
            n - 3,
            n - 2,
            n - 1
        ));
    }
    let inserted: Vec<RidId> = query(
        &format!(
            "INSERT INTO resource (res_type, id, version, last_updated, deleted, body, \
             compartments, sec_labels, alert_codes) VALUES {} RETURNING rid, id",
            rows.join(", ")
        ),
        &binds,
    )
    .load(conn)?;
    let rid_of: std::collections::HashMap<&str, i64> =
        inserted.iter().map(|r| (r.id.as_str(), r.rid)).collect();
    query(
        "INSERT INTO resource_history (rid, res_type, id, version, last_updated, deleted, method, \
         body, compartments, sec_labels, alert_codes) \
         SELECT r.rid, r.res_type, r.id, 1, r.last_updated, FALSE, 'POST', r.body, \
         r.compartments, r.sec_labels, r.alert_codes FROM resource r WHERE r.rid = ANY($1)",
        &[Bind::BigIntArray(inserted.iter().map(|r| r.rid).collect())],
    )
    .execute(conn)?;
    let extracted: Vec<(i64, Vec<fhir_model::index::IndexEntry>)> = prepared
        .iter()
        .filter_map(|(id, v)| {
            rid_of
                .get(id.as_str())
                .map(|rid| (*rid, fhir_model::index::extract(&v.value)))
        })
        .collect();
    let all: Vec<(i64, &str, &[fhir_model::index::IndexEntry])> = extracted
        .iter()
        .map(|(rid, e)| (*rid, "AuditEvent", e.as_slice()))
        .collect();
    index_rows::insert_many(conn, &all)
}

#[derive(QueryableByName)]
struct RidId {
    #[diesel(sql_type = BigInt)]
    rid: i64,
    #[diesel(sql_type = Text)]
    id: String,
}
