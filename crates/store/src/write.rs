//! Creating, updating and deleting resources: each a single transaction that writes the current
//! row, a history row and the index rows, with a row lock so concurrent writers of one resource
//! queue up instead of losing a version.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::sql_types::{BigInt, Bool, Integer, Text};
use diesel::{Connection, QueryableByName, RunQueryDsl};
use serde_json::Value;

use crate::access::Access;
use crate::error::StoreError;
use crate::index_rows;
use crate::meta::{content_of, now_millis, stamp};
use crate::pool::Store;
use crate::sql::{query, Bind, Filter};

/// The outcome of a write.
#[derive(Debug, Clone)]
pub struct Written {
    /// Logical id.
    pub id: String,
    /// Version now current.
    pub version: i32,
    /// When that version was written.
    pub last_updated: DateTime<Utc>,
    /// The stored body (what a read returns).
    pub body: Vec<u8>,
    /// True when this write created the resource (or revived a deleted one).
    pub created: bool,
    /// True when nothing was written: the content equalled the current version, or a
    /// conditional create found its match.
    pub unchanged: bool,
}

/// A search condition for conditional interactions, compiled by the `search` crate.
#[derive(Debug, Clone)]
pub struct Condition {
    /// The query as the client wrote it (for messages and for the lock key).
    pub query: String,
    /// The SQL condition over `resource r`.
    pub filter: Filter,
}

/// What a write changed, for the AuditEvent recorded with it.
#[derive(Debug, Clone)]
pub struct Change<'a> {
    /// Resource type.
    pub res_type: &'a str,
    /// Logical id.
    pub id: &'a str,
    /// The version now current.
    pub version: i32,
    /// `C`, `U` or `D` (FHIR AuditEvent.action); a write that changed nothing is `R`.
    pub action: &'static str,
    /// The patients whose compartment holds the resource.
    pub compartments: &'a [String],
    /// The version's security labels (`fhir_model::access::security_labels`).
    pub labels: &'a [String],
    /// The version's alert codes (`fhir_model::access::alert_codes`).
    pub alerts: &'a [String],
}

/// Builds the AuditEvents (JSON) stored in the same transaction as a write.
pub type AuditHook = Arc<dyn Fn(&Change) -> Vec<Value> + Send + Sync>;

/// Who is writing and what must hold, for one write.
#[derive(Clone, Default)]
pub struct WriteContext {
    /// ODS code of the writer's organisation, kept as the version's `org`.
    pub org: Option<String>,
    /// The request's access rules: the current version (for an update or delete) and the new one
    /// must both meet them, or the transaction rolls back with `Forbidden`.
    pub access: Option<Access>,
    /// Record a `source` relationship between `org` and the patients of the new version.
    pub record_source: bool,
    /// The audit record of the write, committed in the same transaction.
    pub audit: Option<AuditHook>,
}

impl std::fmt::Debug for WriteContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteContext")
            .field("org", &self.org)
            .field("access", &self.access)
            .field("record_source", &self.record_source)
            .field("audit", &self.audit.is_some())
            .finish()
    }
}

/// A version ready to store: its bytes and what the access rules read from it.
struct Prepared {
    bytes: Vec<u8>,
    compartments: Vec<String>,
    labels: Vec<String>,
    alerts: Vec<String>,
    value: Value,
}

fn prepare(body: Value, id: &str, version: i32, at: DateTime<Utc>) -> Result<Prepared, StoreError> {
    let stamped = stamp(body, id, version, at);
    let bytes = serde_json::to_vec(&stamped).map_err(|e| StoreError::Invalid(e.to_string()))?;
    Ok(Prepared {
        bytes,
        compartments: fhir_model::compartment::patient_compartments(&stamped),
        labels: fhir_model::access::security_labels(&stamped),
        alerts: fhir_model::access::alert_codes(&stamped),
        value: stamped,
    })
}

#[derive(QueryableByName)]
struct CurrentRow {
    #[diesel(sql_type = BigInt)]
    rid: i64,
    #[diesel(sql_type = Integer)]
    version: i32,
    #[diesel(sql_type = Bool)]
    deleted: bool,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Bytea>)]
    body: Option<Vec<u8>>,
}

#[derive(QueryableByName)]
struct Rid {
    #[diesel(sql_type = BigInt)]
    rid: i64,
}

#[derive(QueryableByName)]
struct MatchRow {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Integer)]
    version: i32,
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    last_updated: DateTime<Utc>,
    #[diesel(sql_type = diesel::sql_types::Bytea)]
    body: Vec<u8>,
    #[diesel(sql_type = diesel::sql_types::Array<Text>)]
    compartments: Vec<String>,
}

impl Store {
    /// Creates a resource with a new server-assigned id. With a condition (`If-None-Exist`),
    /// returns the single existing match unchanged instead, or fails when several match.
    pub fn create(
        &self,
        res_type: &str,
        body: Value,
        condition: Option<&Condition>,
        ctx: &WriteContext,
    ) -> Result<Written, StoreError> {
        let mut conn = self.conn()?;
        conn.transaction(|conn| {
            if let Some(cond) = condition {
                lock_condition(conn, res_type, &cond.query)?;
                let matches = find_matches(conn, res_type, &cond.filter, ctx, 2)?;
                match matches.len() {
                    0 => {}
                    1 => {
                        let m = matches.into_iter().next().expect("one match");
                        let found: Value = serde_json::from_slice(&m.body).unwrap_or(Value::Null);
                        audit(
                            conn,
                            ctx,
                            &Change {
                                res_type,
                                id: &m.id,
                                version: m.version,
                                action: "R",
                                compartments: &m.compartments,
                                labels: &fhir_model::access::security_labels(&found),
                                alerts: &fhir_model::access::alert_codes(&found),
                            },
                        )?;
                        return Ok(Written {
                            id: m.id,
                            version: m.version,
                            last_updated: m.last_updated,
                            body: m.body,
                            created: false,
                            unchanged: true,
                        });
                    }
                    _ => {
                        return Err(StoreError::MultipleMatches(format!(
                            "If-None-Exist '{}' matches more than one {res_type}",
                            cond.query
                        )))
                    }
                }
            }
            let id = uuid::Uuid::new_v4().to_string();
            insert_new(conn, res_type, &id, body, ctx)
        })
    }

    /// Updates (or, for an unknown id, creates) a resource. `if_match` is the version the client
    /// based its change on; a different current version fails with a conflict.
    pub fn update(
        &self,
        res_type: &str,
        id: &str,
        body: Value,
        if_match: Option<i32>,
        ctx: &WriteContext,
    ) -> Result<Written, StoreError> {
        let mut conn = self.conn()?;
        conn.transaction(|conn| {
            let current = match lock_current(conn, res_type, id)? {
                Some(row) => row,
                None => {
                    if let Some(expected) = if_match {
                        return Err(StoreError::VersionConflict {
                            resource: format!("{res_type}/{id}"),
                            current: 0,
                            expected,
                        });
                    }
                    // Two clients creating the same id race here: the loser of the unique key
                    // falls back to updating what the winner wrote.
                    if let Some(written) =
                        try_insert_new(conn, res_type, id, body.clone(), "PUT", ctx)?
                    {
                        return Ok(written);
                    }
                    lock_current(conn, res_type, id)?
                        .ok_or_else(|| StoreError::NotFound(format!("{res_type}/{id}")))?
                }
            };
            if let Some(expected) = if_match {
                if expected != current.version {
                    return Err(StoreError::VersionConflict {
                        resource: format!("{res_type}/{id}"),
                        current: current.version,
                        expected,
                    });
                }
            }
            if !current.deleted {
                check_visible(conn, current.rid, ctx, res_type, id)?;
            }
            if !current.deleted {
                if let Some(stored) = current.body.as_deref() {
                    let old: Value = serde_json::from_slice(stored).unwrap_or(Value::Null);
                    if content_of(&old) == content_of(&body) {
                        let last_updated = old["meta"]["lastUpdated"]
                            .as_str()
                            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                            .map(|d| d.with_timezone(&Utc))
                            .unwrap_or_else(now_millis);
                        audit(
                            conn,
                            ctx,
                            &Change {
                                res_type,
                                id,
                                version: current.version,
                                action: "R",
                                compartments: &fhir_model::compartment::patient_compartments(&old),
                                labels: &fhir_model::access::security_labels(&old),
                                alerts: &fhir_model::access::alert_codes(&old),
                            },
                        )?;
                        return Ok(Written {
                            id: id.to_string(),
                            version: current.version,
                            last_updated,
                            body: stored.to_vec(),
                            created: false,
                            unchanged: true,
                        });
                    }
                }
            }
            write_version(conn, &current, res_type, id, body, ctx)
        })
    }

    /// Deletes a resource logically. Deleting a deleted resource changes nothing; an unknown one
    /// is `NotFound`. Returns the deleting version, or the earlier one when already deleted.
    pub fn delete(&self, res_type: &str, id: &str, ctx: &WriteContext) -> Result<i32, StoreError> {
        let mut conn = self.conn()?;
        conn.transaction(|conn| {
            let current = lock_current(conn, res_type, id)?
                .ok_or_else(|| StoreError::NotFound(format!("{res_type}/{id}")))?;
            if current.deleted {
                return Ok(current.version);
            }
            check_visible(conn, current.rid, ctx, res_type, id)?;
            let version = current.version + 1;
            let at = now_millis();
            // The deletion marker keeps the last version's compartments and labels, so that its
            // history entry is hidden from exactly those who could not see that version.
            query(
                "UPDATE resource SET version = $1, last_updated = $2, deleted = TRUE, body = NULL \
                 WHERE rid = $3",
                &[
                    Bind::Int(version),
                    Bind::OptTime(Some(at)),
                    Bind::BigInt(current.rid),
                ],
            )
            .execute(conn)?;
            query(
                "INSERT INTO resource_history (rid, res_type, id, version, last_updated, deleted, \
                 method, body, compartments, sec_labels, alert_codes, org) \
                 SELECT rid, res_type, id, version, last_updated, TRUE, 'DELETE', NULL, \
                 compartments, sec_labels, alert_codes, $2 FROM resource WHERE rid = $1",
                &[Bind::BigInt(current.rid), Bind::OptText(ctx.org.clone())],
            )
            .execute(conn)?;
            index_rows::clear(conn, current.rid)?;
            let last: Value = current
                .body
                .as_deref()
                .and_then(|b| serde_json::from_slice::<Value>(b).ok())
                .unwrap_or(Value::Null);
            audit(
                conn,
                ctx,
                &Change {
                    res_type,
                    id,
                    version,
                    action: "D",
                    compartments: &fhir_model::compartment::patient_compartments(&last),
                    labels: &fhir_model::access::security_labels(&last),
                    alerts: &fhir_model::access::alert_codes(&last),
                },
            )?;
            Ok(version)
        })
    }
}

fn lock_current(
    conn: &mut PgConnection,
    res_type: &str,
    id: &str,
) -> Result<Option<CurrentRow>, StoreError> {
    let rows: Vec<CurrentRow> = query(
        "SELECT rid, version, deleted, body FROM resource WHERE res_type = $1 AND id = $2 FOR UPDATE",
        &[Bind::Text(res_type.into()), Bind::Text(id.into())],
    )
    .load(conn)?;
    Ok(rows.into_iter().next())
}

/// Serialises conditional writes with the same query, so two feeds creating the same person at
/// the same moment produce one resource.
fn lock_condition(conn: &mut PgConnection, res_type: &str, q: &str) -> Result<(), StoreError> {
    query(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
        &[Bind::Text(format!("{res_type}?{q}"))],
    )
    .execute(conn)?;
    Ok(())
}

fn find_matches(
    conn: &mut PgConnection,
    res_type: &str,
    filter: &Filter,
    ctx: &WriteContext,
    limit: i64,
) -> Result<Vec<MatchRow>, StoreError> {
    let mut binds = vec![Bind::Text(res_type.into())];
    let mut sql = format!(
        "SELECT r.id, r.version, r.last_updated, r.body, r.compartments FROM resource r \
         WHERE r.res_type = $1 AND NOT r.deleted AND ({})",
        filter.renumbered(1)
    );
    binds.extend(filter.binds.iter().cloned());
    // A conditional create sees only what the client may see; a match hidden from it is
    // refused rather than silently duplicated or revealed.
    if let Some(access) = &ctx.access {
        let visible = access.predicate("r", &mut binds);
        let hidden: Vec<MatchRow> =
            query(&format!("{sql} AND NOT ({visible}) LIMIT 1"), &binds).load(conn)?;
        if !hidden.is_empty() {
            return Err(StoreError::Forbidden(format!(
                "the condition matches a {res_type} this client may not see"
            )));
        }
    }
    sql.push_str(&format!(" LIMIT {limit}"));
    Ok(query(&sql, &binds).load(conn)?)
}

/// Refuses the write when the current version is outside the client's access rules.
fn check_visible(
    conn: &mut PgConnection,
    rid: i64,
    ctx: &WriteContext,
    res_type: &str,
    id: &str,
) -> Result<(), StoreError> {
    let Some(access) = &ctx.access else {
        return Ok(());
    };
    let mut binds = vec![Bind::BigInt(rid)];
    let cond = access.predicate("r", &mut binds);
    let rows: Vec<Rid> = query(
        &format!("SELECT r.rid FROM resource r WHERE r.rid = $1 AND {cond}"),
        &binds,
    )
    .load(conn)?;
    if rows.is_empty() {
        return Err(StoreError::Forbidden(format!(
            "{res_type}/{id} is outside what this client may change"
        )));
    }
    Ok(())
}

/// Stores the write's audit record in the same transaction.
fn audit(conn: &mut PgConnection, ctx: &WriteContext, change: &Change) -> Result<(), StoreError> {
    if let Some(hook) = &ctx.audit {
        insert_audit_events(conn, hook(change))?;
    }
    Ok(())
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

fn insert_new(
    conn: &mut PgConnection,
    res_type: &str,
    id: &str,
    body: Value,
    ctx: &WriteContext,
) -> Result<Written, StoreError> {
    try_insert_new(conn, res_type, id, body, "POST", ctx)?
        .ok_or_else(|| StoreError::Invalid(format!("{res_type}/{id} already exists")))
}

fn try_insert_new(
    conn: &mut PgConnection,
    res_type: &str,
    id: &str,
    body: Value,
    method: &str,
    ctx: &WriteContext,
) -> Result<Option<Written>, StoreError> {
    let at = now_millis();
    let v = prepare(body, id, 1, at)?;
    let rows: Vec<Rid> = query(
        "INSERT INTO resource (res_type, id, version, last_updated, deleted, body, compartments, \
         sec_labels, alert_codes, org) \
         VALUES ($1, $2, 1, $3, FALSE, $4, $5, $6, $7, $8) ON CONFLICT (res_type, id) DO NOTHING RETURNING rid",
        &[
            Bind::Text(res_type.into()),
            Bind::Text(id.into()),
            Bind::OptTime(Some(at)),
            Bind::Bytes(v.bytes.clone()),
            Bind::TextArray(v.compartments.clone()),
            Bind::TextArray(v.labels.clone()),
            Bind::TextArray(v.alerts.clone()),
            Bind::OptText(ctx.org.clone()),
        ],
    )
    .load(conn)?;
    let Some(Rid { rid }) = rows.into_iter().next() else {
        return Ok(None);
    };
    // A new Patient's registered practice is related before the check, so a practice can
    // register a patient it may then see.
    relationships(conn, res_type, id, &v, ctx)?;
    check_visible(conn, rid, ctx, res_type, id)?;
    insert_history(conn, rid, res_type, id, 1, at, &v, method, ctx)?;
    index_rows::insert(conn, rid, res_type, &fhir_model::index::extract(&v.value))?;
    audit(
        conn,
        ctx,
        &Change {
            res_type,
            id,
            version: 1,
            action: "C",
            compartments: &v.compartments,
            labels: &v.labels,
            alerts: &v.alerts,
        },
    )?;
    Ok(Some(Written {
        id: id.to_string(),
        version: 1,
        last_updated: at,
        body: v.bytes,
        created: true,
        unchanged: false,
    }))
}

fn write_version(
    conn: &mut PgConnection,
    current: &CurrentRow,
    res_type: &str,
    id: &str,
    body: Value,
    ctx: &WriteContext,
) -> Result<Written, StoreError> {
    let version = current.version + 1;
    let at = now_millis();
    let v = prepare(body, id, version, at)?;
    query(
        "UPDATE resource SET version = $1, last_updated = $2, deleted = FALSE, body = $3, \
         compartments = $4, sec_labels = $5, alert_codes = $6, org = $7 WHERE rid = $8",
        &[
            Bind::Int(version),
            Bind::OptTime(Some(at)),
            Bind::Bytes(v.bytes.clone()),
            Bind::TextArray(v.compartments.clone()),
            Bind::TextArray(v.labels.clone()),
            Bind::TextArray(v.alerts.clone()),
            Bind::OptText(ctx.org.clone()),
            Bind::BigInt(current.rid),
        ],
    )
    .execute(conn)?;
    relationships(conn, res_type, id, &v, ctx)?;
    check_visible(conn, current.rid, ctx, res_type, id)?;
    insert_history(conn, current.rid, res_type, id, version, at, &v, "PUT", ctx)?;
    index_rows::clear(conn, current.rid)?;
    index_rows::insert(
        conn,
        current.rid,
        res_type,
        &fhir_model::index::extract(&v.value),
    )?;
    audit(
        conn,
        ctx,
        &Change {
            res_type,
            id,
            version,
            action: if current.deleted { "C" } else { "U" },
            compartments: &v.compartments,
            labels: &v.labels,
            alerts: &v.alerts,
        },
    )?;
    Ok(Written {
        id: id.to_string(),
        version,
        last_updated: at,
        body: v.bytes,
        created: current.deleted,
        unchanged: false,
    })
}

#[allow(clippy::too_many_arguments)]
fn insert_history(
    conn: &mut PgConnection,
    rid: i64,
    res_type: &str,
    id: &str,
    version: i32,
    at: DateTime<Utc>,
    v: &Prepared,
    method: &str,
    ctx: &WriteContext,
) -> Result<(), StoreError> {
    query(
        "INSERT INTO resource_history (rid, res_type, id, version, last_updated, deleted, method, \
         body, compartments, sec_labels, alert_codes, org) \
         VALUES ($1, $2, $3, $4, $5, FALSE, $6, $7, $8, $9, $10, $11)",
        &[
            Bind::BigInt(rid),
            Bind::Text(res_type.into()),
            Bind::Text(id.into()),
            Bind::Int(version),
            Bind::OptTime(Some(at)),
            Bind::Text(method.into()),
            Bind::Bytes(v.bytes.clone()),
            Bind::TextArray(v.compartments.clone()),
            Bind::TextArray(v.labels.clone()),
            Bind::TextArray(v.alerts.clone()),
            Bind::OptText(ctx.org.clone()),
        ],
    )
    .execute(conn)?;
    Ok(())
}

/// Keeps the legitimate-relationship table in step with a write: a Patient's registered
/// practice, and (for feeds) the writer's organisation as a source of the patients' data.
fn relationships(
    conn: &mut PgConnection,
    res_type: &str,
    id: &str,
    v: &Prepared,
    ctx: &WriteContext,
) -> Result<(), StoreError> {
    if res_type == "Patient" {
        sync_registered_practices(conn, id, &v.value)?;
    }
    if let (true, Some(org)) = (ctx.record_source, &ctx.org) {
        if !v.compartments.is_empty() {
            query(
                "INSERT INTO care_relationship (patient_id, org_code, kind) \
                 SELECT unnest($1::text[]), $2, 'source' ON CONFLICT DO NOTHING",
                &[
                    Bind::TextArray(v.compartments.clone()),
                    Bind::Text(org.clone()),
                ],
            )
            .execute(conn)?;
        }
    }
    Ok(())
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
const ODS_SYSTEM: &str = "https://fhir.nhs.uk/Id/ods-organization-code";

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

impl Store {
    /// Stores a batch of AuditEvents in one transaction (one commit for many requests).
    pub fn record_audit(&self, events: Vec<Value>) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        conn.transaction(|conn| insert_audit_events(conn, events))
    }

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
