//! History at instance, type and system level (http://hl7.org/fhir/R4/http.html#history):
//! newest first, paged by a keyset on the history row id so pages stay stable while writes go on.

use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::sql_types::{BigInt, Bool, Bytea, Integer, Nullable, Text, Timestamptz};
use diesel::{QueryableByName, RunQueryDsl};

use crate::access::Access;
use crate::error::StoreError;
use crate::pool::Store;
use crate::sql::{query, Bind};
use crate::version_check::{self, Candidate};

/// Which history is asked for.
#[derive(Debug, Clone)]
pub enum HistoryScope {
    /// `GET /fhir/_history`.
    System,
    /// `GET /fhir/{type}/_history`.
    Type(String),
    /// `GET /fhir/{type}/{id}/_history`.
    Instance(String, String),
}

/// A history request.
#[derive(Debug, Clone)]
pub struct HistoryQuery {
    /// Which resources.
    pub scope: HistoryScope,
    /// `_since`: only versions written at or after this instant.
    pub since: Option<DateTime<Utc>>,
    /// `_at`: only the version current at this instant, per resource.
    pub at: Option<DateTime<Utc>>,
    /// Page size.
    pub count: i64,
    /// Keyset cursor: only rows with a history id below this (the last row of the previous page).
    pub before: Option<i64>,
    /// Snapshot: rows written after the first page was served are left out of later pages.
    pub snapshot: Option<i64>,
    /// The request's access rules, applied to each version; `None` admits everything.
    pub access: Option<Access>,
}

/// One version in a history page.
#[derive(Debug, Clone, QueryableByName)]
pub struct HistoryEntry {
    /// Position in the global history (cursor for the next page).
    #[diesel(sql_type = BigInt)]
    pub hid: i64,
    /// Resource type.
    #[diesel(sql_type = Text)]
    pub res_type: String,
    /// Logical id.
    #[diesel(sql_type = Text)]
    pub id: String,
    /// Version number.
    #[diesel(sql_type = Integer)]
    pub version: i32,
    /// When it was written.
    #[diesel(sql_type = Timestamptz)]
    pub last_updated: DateTime<Utc>,
    /// True for a deletion.
    #[diesel(sql_type = Bool)]
    pub deleted: bool,
    /// `POST`, `PUT` or `DELETE`: how the version came to be.
    #[diesel(sql_type = Text)]
    pub method: String,
    /// The body (none for a deletion).
    #[diesel(sql_type = Nullable<Bytea>)]
    pub body: Option<Vec<u8>>,
    /// The patients whose compartment held the version.
    #[diesel(sql_type = diesel::sql_types::Array<Text>)]
    pub compartments: Vec<String>,
}

/// A page of history.
#[derive(Debug, Clone)]
pub struct HistoryPage {
    /// The versions, newest first.
    pub entries: Vec<HistoryEntry>,
    /// How many versions match in all (within the snapshot).
    pub total: i64,
    /// The snapshot to pass back for the following pages.
    pub snapshot: i64,
    /// True when more rows follow this page.
    pub more: bool,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

impl Store {
    /// One page of history.
    pub fn history(&self, q: &HistoryQuery) -> Result<HistoryPage, StoreError> {
        history_on(&mut *self.conn()?, q)
    }
}

/// One page of history, on `conn` (a [`crate::Session`]'s when the request can be cancelled).
pub(crate) fn history_on(
    conn: &mut PgConnection,
    q: &HistoryQuery,
) -> Result<HistoryPage, StoreError> {
    // AuditEvents live in the audit trail, whose rows are their only versions.
    let (versions, current) = match &q.scope {
        HistoryScope::System => ("resource_history", "resource"),
        HistoryScope::Type(t) | HistoryScope::Instance(t, _) => (
            crate::audit_rows::history_table(t),
            crate::audit_rows::current_table(t),
        ),
    };
    let snapshot = match q.snapshot {
        Some(s) => s,
        None => {
            let rows: Vec<Count> = query(
                &format!("SELECT COALESCE(MAX(hid), 0) AS n FROM {versions}"),
                &[],
            )
            .load(conn)?;
            rows.first().map_or(0, |c| c.n)
        }
    };
    let mut conds = vec!["h.hid <= $1".to_string()];
    let mut binds = vec![Bind::BigInt(snapshot)];
    match &q.scope {
        // The audit trail is its own log (it is not in `resource_history`): system history is
        // about the record. `AuditEvent/_history` serves it.
        HistoryScope::System => {}
        HistoryScope::Type(t) => {
            binds.push(Bind::Text(t.clone()));
            conds.push(format!("h.res_type = ${}", binds.len()));
        }
        HistoryScope::Instance(t, id) => {
            binds.push(Bind::Text(t.clone()));
            conds.push(format!("h.res_type = ${}", binds.len()));
            binds.push(Bind::Text(id.clone()));
            conds.push(format!("h.id = ${}", binds.len()));
        }
    }
    if let Some(since) = q.since {
        binds.push(Bind::OptTime(Some(since)));
        conds.push(format!("h.last_updated >= ${}", binds.len()));
    }
    let base = if let Some(at) = q.at {
        // The version current at `at`: the newest one written at or before it, per resource.
        binds.push(Bind::OptTime(Some(at)));
        conds.push(format!("h.last_updated <= ${}", binds.len()));
        format!(
            "(SELECT DISTINCT ON (h.res_type, h.id) h.* FROM {versions} h WHERE {} \
                 ORDER BY h.res_type, h.id, h.version DESC) h",
            conds.join(" AND ")
        )
    } else {
        format!(
            "(SELECT h.* FROM {versions} h WHERE {}) h",
            conds.join(" AND ")
        )
    };
    // Access applies to the version chosen (under `_at`, a hidden version is not replaced by
    // an older visible one): each version is judged by its own row and content, and the
    // resource as it is now must be visible too (see `version_visibility`).
    let visible = match &q.access {
        Some(a) => {
            let in_scope = |t: &String| match &q.scope {
                HistoryScope::System => true,
                HistoryScope::Type(s) | HistoryScope::Instance(s, _) => s == t,
            };
            let restricted: Vec<String> =
                a.restricted_types().into_iter().filter(in_scope).collect();
            let admitted = if restricted.is_empty() {
                Vec::new()
            } else {
                let mut cb = binds.clone();
                let cond = version_visibility(a, &restricted, None, &mut cb);
                let candidates: Vec<Candidate> = query(
                    &format!(
                        "SELECT h.hid, h.res_type, h.body FROM {base} \
                             JOIN {current} r ON r.rid = h.rid WHERE {cond}"
                    ),
                    &cb,
                )
                .load(conn)?;
                version_check::admitted(conn, a, &candidates)?
            };
            let cond = version_visibility(a, &restricted, Some(admitted), &mut binds);
            format!("EXISTS (SELECT 1 FROM {current} r WHERE r.rid = h.rid AND {cond})")
        }
        None => "TRUE".into(),
    };
    let count_sql = format!("SELECT COUNT(*) AS n FROM {base} WHERE {visible}");
    let total: Vec<Count> = crate::shapes::shaped(&count_sql, &binds).load(conn)?;
    let total = total.first().map_or(0, |c| c.n);
    let mut page_binds = binds.clone();
    let cursor = match q.before {
        Some(before) => {
            page_binds.push(Bind::BigInt(before));
            format!("WHERE {visible} AND h.hid < ${}", page_binds.len())
        }
        None => format!("WHERE {visible}"),
    };
    page_binds.push(Bind::BigInt(q.count + 1));
    let sql = format!(
            "SELECT h.hid, h.res_type, h.id, h.version, h.last_updated, h.deleted, h.method, h.body, h.compartments \
             FROM {base} {cursor} ORDER BY h.hid DESC LIMIT ${}",
            page_binds.len()
        );
    let mut entries: Vec<HistoryEntry> = crate::shapes::shaped(&sql, &page_binds).load(conn)?;
    let more = entries.len() as i64 > q.count;
    entries.truncate(q.count as usize);
    Ok(HistoryPage {
        entries,
        total,
        snapshot,
        more,
    })
}

/// The condition that the version `h` of the resource whose current row is `r` is visible: `h`
/// by its own row (labels, compartments, alerts, writer) and `r` by every rule, restrictions
/// included. The current version is the latest judgement of who may see the resource (a
/// relabelling, a move to another patient, a change of category), and past versions mostly hold
/// the same facts, so a resource hidden now hides its whole history. A past version of a type in
/// `restricted` meets the restriction by its own content: with `admitted`, when it is among
/// those ids (judged by `version_check`); without, the condition selects exactly the past
/// versions still to judge.
fn version_visibility(
    access: &Access,
    restricted: &[String],
    admitted: Option<Vec<i64>>,
    binds: &mut Vec<Bind>,
) -> String {
    let own = access.unrestricted().predicate("h", binds);
    let current = access.predicate("r", binds);
    binds.push(Bind::TextArray(restricted.to_vec()));
    let t = binds.len();
    match admitted {
        None => {
            format!("h.version <> r.version AND h.res_type = ANY(${t}) AND {own} AND {current}")
        }
        Some(ids) => {
            binds.push(Bind::BigIntArray(ids));
            let a = binds.len();
            format!(
                "{own} AND {current} AND (h.version = r.version OR NOT (h.res_type = ANY(${t})) \
                 OR h.hid = ANY(${a}))"
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::Filter;

    fn lab_only() -> Access {
        Access {
            restrictions: vec![(
                "Observation".into(),
                Filter {
                    sql: "r.rid IN (SELECT x.rid FROM idx_token x WHERE x.code = $1)".into(),
                    binds: vec![Bind::Text("laboratory".into())],
                },
            )],
            visible_labels: Some(vec![]),
            ..Access::default()
        }
    }

    #[test]
    fn a_past_version_meets_a_restriction_only_when_judged_by_its_own_content() {
        let restricted = vec!["Observation".to_string()];
        let mut b = Vec::new();
        let sql = version_visibility(&lab_only(), &restricted, Some(vec![7]), &mut b);
        // Its own row (labels) and the current row (labels and restriction) ...
        assert!(sql.starts_with("h.sec_labels <@ $1 AND "), "{sql}");
        assert!(sql.contains("r.sec_labels <@"), "{sql}");
        assert!(sql.contains("idx_token x WHERE x.code"), "{sql}");
        // ... and the restriction on the version: the current one, or one judged admitted.
        assert!(
            sql.ends_with(
                "(h.version = r.version OR NOT (h.res_type = ANY($5)) OR h.hid = ANY($6))"
            ),
            "{sql}"
        );
        assert_eq!(b.last(), Some(&Bind::BigIntArray(vec![7])));
        // Without the judged ids, the condition selects the past versions left to judge.
        let mut b = Vec::new();
        let sql = version_visibility(&lab_only(), &restricted, None, &mut b);
        assert!(
            sql.starts_with("h.version <> r.version AND h.res_type = ANY($5)"),
            "{sql}"
        );
    }
}
