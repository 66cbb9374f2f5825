//! A database transaction holding any number of writes and reads, as a transaction Bundle needs.
//! Each write stores its current row at once (that row's lock and unique key order concurrent
//! writers) and leaves its history row, index rows, relationships, access check and audit record
//! pending; they are written together, a few multi-row statements for the whole transaction,
//! before anything reads through the transaction and before it commits.

use std::sync::Arc;

use diesel::pg::PgConnection;
use diesel::sql_types::BigInt;
use diesel::{Connection, QueryableByName, RunQueryDsl};
use fhir_model::index::IndexEntry;

use crate::access::Access;
use crate::audit_rows::insert_audit_rows;
use crate::context::{AuditHook, Change};
use crate::error::StoreError;
use crate::index_rows;
use crate::pool::Store;
use crate::shapes::shaped_write;
use crate::sql::Bind;

/// An open transaction. Get one from [`Store::transaction`]; it commits when the closure
/// returns `Ok` and rolls back otherwise.
pub struct Tx<'c> {
    pub(crate) conn: &'c mut PgConnection,
    pending: Pending,
    /// Advisory lock keys this transaction holds (they are held until it ends).
    locked: std::collections::HashSet<String>,
}

/// A new version to check: its row id and `Type/id` (for the message).
type Checked = (i64, String);

/// Writes not yet sent to the database.
#[derive(Default)]
struct Pending {
    /// History rows to copy from the current rows: (row id, HTTP method).
    history: Vec<(i64, &'static str)>,
    /// Rows whose existing index rows must go (updates and deletes of stored resources).
    clears: Vec<i64>,
    /// New index rows, by row id; a later write of the same row replaces an earlier one.
    index: Vec<(i64, String, Vec<IndexEntry>)>,
    /// (patient, organisation) source relationships.
    sources: Vec<(String, String)>,
    /// New versions that must meet the access rules they were written under.
    checks: Vec<(Arc<Access>, Vec<Checked>)>,
    /// Changes to audit, grouped by the hook that records them.
    changes: Vec<(AuditHook, Vec<Change>)>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.history.is_empty()
            && self.clears.is_empty()
            && self.index.is_empty()
            && self.sources.is_empty()
            && self.checks.is_empty()
            && self.changes.is_empty()
    }
}

impl Store {
    /// Runs `f` in one database transaction: everything it wrote commits together, or (when it
    /// returns an error) nothing does. The error is the caller's own type, as with diesel's
    /// `Connection::transaction`: a caller's failure rolls back and comes out unchanged, and a
    /// failure of the store (connection, flush, commit) comes out through `E::from`.
    pub fn transaction<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        // Whatever the transaction audits goes into this month's partition of the audit trail.
        self.prepare_audit_partitions()?;
        let mut conn = self.conn()?;
        let out = conn.transaction(|conn| {
            let mut tx = Tx {
                conn,
                pending: Pending::default(),
                locked: Default::default(),
            };
            let out = f(&mut tx).map_err(Abort::Caller)?;
            tx.flush().map_err(Abort::Store)?;
            Ok(out)
        });
        out.map_err(|abort| match abort {
            Abort::Caller(e) => e,
            Abort::Store(e) => E::from(e),
        })
    }
}

/// Why a transaction rolled back. diesel's `transaction` needs an error it can build from its
/// own (a failed commit or rollback); the caller's error type need not offer that, so it travels
/// beside the store's instead.
enum Abort<E> {
    /// The caller's closure failed.
    Caller(E),
    /// The store failed: the connection, a flush, the commit.
    Store(StoreError),
}

impl<E> From<diesel::result::Error> for Abort<E> {
    fn from(e: diesel::result::Error) -> Self {
        Abort::Store(e.into())
    }
}

impl<'c> Tx<'c> {
    /// Takes the advisory locks of `keys` not held yet, in one statement and in sorted order, so
    /// two transactions locking overlapping sets never wait on each other crosswise.
    pub fn lock_keys(&mut self, keys: impl IntoIterator<Item = String>) -> Result<(), StoreError> {
        let mut fresh: Vec<String> = keys
            .into_iter()
            .filter(|k| !self.locked.contains(k))
            .collect();
        if fresh.is_empty() {
            return Ok(());
        }
        fresh.sort();
        fresh.dedup();
        shaped_write(
            "SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) FROM unnest($1::text[]) AS k \
             ORDER BY k",
            &[Bind::TextArray(fresh.clone())],
        )
        .execute(self.conn)?;
        self.locked.extend(fresh);
        Ok(())
    }

    /// Queues the history row of the version just written to `rid`'s current row. A row
    /// written twice in one transaction has its first version's history sent before the second
    /// overwrites it.
    pub(crate) fn history(&mut self, rid: i64, method: &'static str) -> Result<(), StoreError> {
        self.pending.history.push((rid, method));
        Ok(())
    }

    /// Sends queued history rows when `rid` has one, before its current row changes again.
    pub(crate) fn before_rewrite(&mut self, rid: i64) -> Result<(), StoreError> {
        if self.pending.history.iter().any(|(r, _)| *r == rid) {
            let history = std::mem::take(&mut self.pending.history);
            copy_history(self.conn, &history)?;
        }
        Ok(())
    }

    pub(crate) fn clear_index(&mut self, rid: i64) {
        self.pending.index.retain(|(r, _, _)| *r != rid);
        self.pending.clears.push(rid);
    }

    pub(crate) fn index(&mut self, rid: i64, res_type: &str, entries: Vec<IndexEntry>) {
        self.pending.index.retain(|(r, _, _)| *r != rid);
        self.pending
            .index
            .push((rid, res_type.to_string(), entries));
    }

    pub(crate) fn source(&mut self, patients: &[String], org: &str) {
        for p in patients {
            self.pending.sources.push((p.clone(), org.to_string()));
        }
    }

    pub(crate) fn check(&mut self, access: &Arc<Access>, rid: i64, reference: String) {
        match self.pending.checks.last_mut() {
            Some((a, rows)) if Arc::ptr_eq(a, access) => rows.push((rid, reference)),
            _ => self
                .pending
                .checks
                .push((access.clone(), vec![(rid, reference)])),
        }
    }

    pub(crate) fn audit(&mut self, hook: &Option<AuditHook>, change: Change) {
        let Some(hook) = hook else { return };
        match self.pending.changes.last_mut() {
            Some((h, changes)) if Arc::ptr_eq(h, hook) => changes.push(change),
            _ => self.pending.changes.push((hook.clone(), vec![change])),
        }
    }

    /// Writes the source relationships now, so a check of what the client may see counts them.
    pub(crate) fn flush_sources(&mut self) -> Result<(), StoreError> {
        let sources = std::mem::take(&mut self.pending.sources);
        if sources.is_empty() {
            return Ok(());
        }
        let (patients, orgs): (Vec<String>, Vec<String>) = sources.into_iter().unzip();
        shaped_write(
            "INSERT INTO care_relationship (patient_id, org_code, kind) \
             SELECT p, o, 'source' FROM unnest($1::text[], $2::text[]) AS s(p, o) \
             ON CONFLICT DO NOTHING",
            &[Bind::TextArray(patients), Bind::TextArray(orgs)],
        )
        .execute(self.conn)?;
        Ok(())
    }

    /// Sends every pending write; runs before any read through the transaction and before commit.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let history = std::mem::take(&mut self.pending.history);
        copy_history(self.conn, &history)?;
        let mut clears = std::mem::take(&mut self.pending.clears);
        if !clears.is_empty() {
            clears.sort_unstable();
            clears.dedup();
            index_rows::clear_many(self.conn, &clears)?;
        }
        let index = std::mem::take(&mut self.pending.index);
        if !index.is_empty() {
            let all: Vec<(i64, &str, &[IndexEntry])> = index
                .iter()
                .map(|(rid, t, e)| (*rid, t.as_str(), e.as_slice()))
                .collect();
            index_rows::insert_many(self.conn, &all)?;
        }
        self.flush_sources()?;
        for (access, rows) in std::mem::take(&mut self.pending.checks) {
            check_rows(self.conn, &access, &rows)?;
        }
        for (hook, changes) in std::mem::take(&mut self.pending.changes) {
            insert_audit_rows(self.conn, hook(&changes))?;
        }
        Ok(())
    }
}

#[derive(QueryableByName)]
struct Hidden {
    #[diesel(sql_type = BigInt)]
    rid: i64,
}

/// Refuses the transaction when a new version is outside the rules it was written under.
fn check_rows(
    conn: &mut PgConnection,
    access: &Access,
    rows: &[(i64, String)],
) -> Result<(), StoreError> {
    let mut binds = vec![Bind::BigIntArray(rows.iter().map(|(r, _)| *r).collect())];
    let cond = access.predicate("r", &mut binds);
    let hidden: Vec<Hidden> = shaped_write(
        &format!("SELECT r.rid FROM resource r WHERE r.rid = ANY($1) AND NOT ({cond}) LIMIT 1"),
        &binds,
    )
    .load(conn)?;
    match hidden.first() {
        None => Ok(()),
        Some(h) => {
            let reference = rows
                .iter()
                .find(|(r, _)| *r == h.rid)
                .map_or("a resource", |(_, s)| s.as_str());
            Err(StoreError::outside_rules(reference))
        }
    }
}

/// Copies the current rows into history: the bodies are already in the database, so they are
/// not sent twice.
fn copy_history(conn: &mut PgConnection, rows: &[(i64, &'static str)]) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    shaped_write(
        "INSERT INTO resource_history (rid, res_type, id, version, last_updated, deleted, method, \
         body, compartments, sec_labels, alert_codes, org) \
         SELECT r.rid, r.res_type, r.id, r.version, r.last_updated, r.deleted, m.method, r.body, \
         r.compartments, r.sec_labels, r.alert_codes, r.org \
         FROM unnest($1::bigint[], $2::text[]) WITH ORDINALITY AS m(rid, method, n) \
         CROSS JOIN LATERAL (SELECT x.* FROM resource x WHERE x.rid = m.rid OFFSET 0) r \
         ORDER BY m.n",
        &[
            Bind::BigIntArray(rows.iter().map(|(r, _)| *r).collect()),
            Bind::TextArray(rows.iter().map(|(_, m)| m.to_string()).collect()),
        ],
    )
    .execute(conn)?;
    Ok(())
}

impl Tx<'_> {
    /// [`Store::read_checked`] inside the transaction (it sees the transaction's own writes).
    pub fn read_checked(
        &mut self,
        res_type: &str,
        id: &str,
        version: Option<i32>,
        access: &Access,
    ) -> Result<Option<(crate::Stored, crate::Visibility)>, StoreError> {
        self.flush()?;
        crate::read::read_checked_on(self.conn, res_type, id, version, access)
    }

    /// [`Store::query_resources`] inside the transaction.
    pub fn query_resources(
        &mut self,
        q: &crate::ResourceQuery,
    ) -> Result<crate::ResourcePage, StoreError> {
        self.flush()?;
        crate::query::query_resources_on(self.conn, q)
    }

    /// [`Store::include`] inside the transaction.
    pub fn include(
        &mut self,
        specs: &[crate::IncludeSpec],
        matches: &[crate::FoundResource],
        limit: usize,
        access: Option<&Access>,
    ) -> Result<(Vec<crate::FoundResource>, bool), StoreError> {
        self.flush()?;
        crate::include::include_on(self.conn, specs, matches, limit, access)
    }
}
