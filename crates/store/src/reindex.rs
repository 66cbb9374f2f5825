//! Rebuilding index rows when the search-parameter definitions change, so a new or corrected
//! parameter applies to resources stored before it existed.

use diesel::sql_types::{BigInt, Bytea, Text};
use diesel::{Connection, QueryableByName, RunQueryDsl};

use crate::error::StoreError;
use crate::index_rows;
use crate::pool::Store;
use crate::sql::{query, Bind};

/// Resources re-indexed per transaction.
const BATCH: i64 = 500;

#[derive(QueryableByName)]
struct Hash {
    #[diesel(sql_type = Text)]
    definitions_hash: String,
}

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = BigInt)]
    rid: i64,
    #[diesel(sql_type = Text)]
    res_type: String,
    #[diesel(sql_type = Bytea)]
    body: Vec<u8>,
}

impl Store {
    /// Rebuilds every current resource's index rows and compartments when `definitions_hash`
    /// differs from the one recorded (or always, with `force`); returns how many were rebuilt.
    pub fn ensure_index_current(
        &self,
        definitions_hash: &str,
        force: bool,
    ) -> Result<usize, StoreError> {
        let mut conn = self.conn()?;
        let recorded: Vec<Hash> =
            query("SELECT definitions_hash FROM index_state", &[]).load(&mut conn)?;
        let empty: Vec<Row> = query(
            "SELECT rid, res_type, ''::bytea AS body FROM resource LIMIT 1",
            &[],
        )
        .load(&mut conn)?;
        let up_to_date = recorded
            .first()
            .is_some_and(|h| h.definitions_hash == definitions_hash);
        if (up_to_date && !force) || (recorded.is_empty() && empty.is_empty()) {
            record(&mut conn, definitions_hash)?;
            return Ok(0);
        }
        let mut after = 0i64;
        let mut done = 0usize;
        loop {
            let batch = conn.transaction::<_, StoreError, _>(|conn| {
                let rows: Vec<Row> = query(
                    "SELECT rid, res_type, body FROM resource WHERE rid > $1 AND NOT deleted \
                     ORDER BY rid LIMIT $2 FOR UPDATE",
                    &[Bind::BigInt(after), Bind::BigInt(BATCH)],
                )
                .load(conn)?;
                for row in &rows {
                    let value: serde_json::Value =
                        serde_json::from_slice(&row.body).map_err(|e| {
                            StoreError::Invalid(format!("stored body of rid {}: {e}", row.rid))
                        })?;
                    index_rows::clear_many(conn, &[row.rid])?;
                    index_rows::insert(
                        conn,
                        row.rid,
                        &row.res_type,
                        &fhir_model::index::extract(&value),
                    )?;
                    query(
                        "UPDATE resource SET compartments = $1, sec_labels = $2, alert_codes = $3 \
                         WHERE rid = $4",
                        &[
                            Bind::TextArray(fhir_model::compartment::patient_compartments(&value)),
                            Bind::TextArray(fhir_model::access::security_labels(&value)),
                            Bind::TextArray(fhir_model::access::alert_codes(&value)),
                            Bind::BigInt(row.rid),
                        ],
                    )
                    .execute(conn)?;
                    if row.res_type == "Patient" {
                        if let Some(id) = value["id"].as_str() {
                            crate::relationship::sync_registered_practices(conn, id, &value)?;
                        }
                    }
                }
                Ok(rows.iter().map(|r| r.rid).collect::<Vec<_>>())
            })?;
            done += batch.len();
            match batch.last() {
                Some(last) => after = *last,
                None => break,
            }
        }
        rebuild_history_access(&mut conn)?;
        record(&mut conn, definitions_hash)?;
        // Rebuilt tables have fresh rows and stale statistics; plans chosen on them can be
        // orders of magnitude off until autovacuum gets round to it.
        query("ANALYZE", &[]).execute(&mut conn)?;
        Ok(done)
    }
}

#[derive(QueryableByName)]
struct HistoryRow {
    #[diesel(sql_type = BigInt)]
    hid: i64,
    #[diesel(sql_type = Bytea)]
    body: Vec<u8>,
}

/// Recomputes what the access rules read from every historical version (compartments, labels,
/// alert codes); deletion markers take them from the version before.
fn rebuild_history_access(conn: &mut diesel::pg::PgConnection) -> Result<(), StoreError> {
    let mut after = 0i64;
    loop {
        let last = conn.transaction::<_, StoreError, _>(|conn| {
            let rows: Vec<HistoryRow> = query(
                "SELECT hid, body FROM resource_history WHERE hid > $1 AND body IS NOT NULL \
                 ORDER BY hid LIMIT $2",
                &[Bind::BigInt(after), Bind::BigInt(BATCH)],
            )
            .load(conn)?;
            for row in &rows {
                let value: serde_json::Value = serde_json::from_slice(&row.body)
                    .map_err(|e| StoreError::Invalid(format!("history row {}: {e}", row.hid)))?;
                query(
                    "UPDATE resource_history SET compartments = $1, sec_labels = $2, \
                     alert_codes = $3 WHERE hid = $4",
                    &[
                        Bind::TextArray(fhir_model::compartment::patient_compartments(&value)),
                        Bind::TextArray(fhir_model::access::security_labels(&value)),
                        Bind::TextArray(fhir_model::access::alert_codes(&value)),
                        Bind::BigInt(row.hid),
                    ],
                )
                .execute(conn)?;
            }
            Ok(rows.last().map(|r| r.hid))
        })?;
        match last {
            Some(hid) => after = hid,
            None => break,
        }
    }
    query(
        "UPDATE resource_history d SET compartments = p.compartments, sec_labels = p.sec_labels, \
         alert_codes = p.alert_codes FROM resource_history p \
         WHERE d.deleted AND p.res_type = d.res_type AND p.id = d.id AND p.version = d.version - 1",
        &[],
    )
    .execute(conn)?;
    Ok(())
}

fn record(conn: &mut diesel::pg::PgConnection, hash: &str) -> Result<(), StoreError> {
    query(
        "INSERT INTO index_state (singleton, definitions_hash) VALUES (TRUE, $1) \
         ON CONFLICT (singleton) DO UPDATE SET definitions_hash = $1, rebuilt_at = now()",
        &[Bind::Text(hash.to_string())],
    )
    .execute(conn)?;
    Ok(())
}
