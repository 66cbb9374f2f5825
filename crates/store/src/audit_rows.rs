//! The audit trail's storage. A request's AuditEvents go into `audit_journal` as one narrow row
//! each, in one prepared statement: that is all a response waits for. A projector turns journal
//! rows into AuditEvent resources (current row, history row, index rows) in large batches and
//! deletes them in the same transaction; whatever reads AuditEvents calls
//! [`Store::project_audit_all`] first, so reads see every event committed before them.

use diesel::pg::{Pg, PgConnection};
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sql_types::{Array, BigInt, Bool, Bytea, Text};
use diesel::{Connection, QueryResult, QueryableByName, RunQueryDsl};
use serde_json::Value;

use crate::error::StoreError;
use crate::index_rows;
use crate::meta::{now_millis, prepare};
use crate::pool::Store;
use crate::sql::{query, Bind};

/// Journal rows projected per transaction.
pub const PROJECT_BATCH: i64 = 5000;

/// Advisory lock key that serialises projections, so a drain waits for one in flight.
const PROJECT_LOCK: i64 = 7_231_008;

impl Store {
    /// Journals a batch of AuditEvents in one transaction (one commit for many requests).
    pub fn record_audit(&self, events: Vec<Value>) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        conn.transaction(|conn| journal_audit_events(conn, &events))
    }

    /// Projects up to `batch` journal rows, oldest first, into AuditEvent resources in one
    /// transaction; returns how many. Concurrent projections queue on an advisory lock.
    pub fn project_audit(&self, batch: i64) -> Result<usize, StoreError> {
        let mut conn = self.conn()?;
        conn.transaction(|conn| {
            query(
                "SELECT pg_advisory_xact_lock($1)",
                &[Bind::BigInt(PROJECT_LOCK)],
            )
            .execute(conn)?;
            let rows: Vec<JournalRow> = query(
                "DELETE FROM audit_journal WHERE seq IN \
                 (SELECT seq FROM audit_journal ORDER BY seq LIMIT $1) RETURNING seq, body",
                &[Bind::BigInt(batch)],
            )
            .load(conn)?;
            let mut rows = rows;
            rows.sort_by_key(|r| r.seq);
            let n = rows.len();
            let mut events = Vec::with_capacity(n);
            for r in rows {
                events.push(serde_json::from_slice(&r.body).map_err(|e| {
                    StoreError::Invalid(format!("audit journal row {} is not JSON: {e}", r.seq))
                })?);
            }
            insert_audit_events(conn, events)?;
            Ok(n)
        })
    }

    /// Projects the whole journal: after it returns, every AuditEvent committed before the call
    /// is a resource that reads and searches see. Cheap when the journal is empty.
    pub fn project_audit_all(&self) -> Result<usize, StoreError> {
        let mut total = 0;
        loop {
            if total == 0 && !self.journal_pending()? {
                return Ok(0);
            }
            let n = self.project_audit(PROJECT_BATCH)?;
            total += n;
            if n < PROJECT_BATCH as usize {
                return Ok(total);
            }
        }
    }

    /// True when the journal holds rows (including rows a running projection is taking).
    fn journal_pending(&self) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let row: Pending = query(
            "SELECT EXISTS (SELECT 1 FROM audit_journal) AS pending",
            &[],
        )
        .get_result(&mut conn)?;
        Ok(row.pending)
    }
}

/// Journals AuditEvents: one statement of fixed text, prepared once per connection.
pub(crate) fn journal_audit_events(
    conn: &mut PgConnection,
    events: &[Value],
) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let mut bodies = Vec::with_capacity(events.len());
    for e in events {
        bodies.push(serde_json::to_vec(e).map_err(|e| StoreError::Invalid(e.to_string()))?);
    }
    JournalInsert { bodies }.execute(conn)?;
    Ok(())
}

struct JournalInsert {
    bodies: Vec<Vec<u8>>,
}

impl QueryId for JournalInsert {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl RunQueryDsl<PgConnection> for JournalInsert {}

impl QueryFragment<Pg> for JournalInsert {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("INSERT INTO audit_journal (body) SELECT unnest(");
        out.push_bind_param::<Array<Bytea>, _>(&self.bodies)?;
        out.push_sql(")");
        Ok(())
    }
}

#[derive(QueryableByName)]
struct JournalRow {
    #[diesel(sql_type = BigInt)]
    seq: i64,
    #[diesel(sql_type = Bytea)]
    body: Vec<u8>,
}

#[derive(QueryableByName)]
struct Pending {
    #[diesel(sql_type = Bool)]
    pending: bool,
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
