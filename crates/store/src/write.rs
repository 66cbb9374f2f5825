//! Creating, updating and deleting resources: each a single transaction that writes the current
//! row, a history row and the index rows, with a row lock so concurrent writers of one resource
//! queue up instead of losing a version.

use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::sql_types::{BigInt, Bool, Integer, Text};
use diesel::{Connection, QueryableByName, RunQueryDsl};
use serde_json::Value;

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
}

impl Store {
    /// Creates a resource with a new server-assigned id. With a condition (`If-None-Exist`),
    /// returns the single existing match unchanged instead, or fails when several match.
    pub fn create(
        &self,
        res_type: &str,
        body: Value,
        condition: Option<&Condition>,
    ) -> Result<Written, StoreError> {
        let mut conn = self.conn()?;
        conn.transaction(|conn| {
            if let Some(cond) = condition {
                lock_condition(conn, res_type, &cond.query)?;
                let matches = find_matches(conn, res_type, &cond.filter, 2)?;
                match matches.len() {
                    0 => {}
                    1 => {
                        let m = matches.into_iter().next().expect("one match");
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
            insert_new(conn, res_type, &id, body)
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
                    if let Some(written) = try_insert_new(conn, res_type, id, body.clone(), "PUT")?
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
                if let Some(stored) = current.body.as_deref() {
                    let old: Value = serde_json::from_slice(stored).unwrap_or(Value::Null);
                    if content_of(&old) == content_of(&body) {
                        let last_updated = old["meta"]["lastUpdated"]
                            .as_str()
                            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                            .map(|d| d.with_timezone(&Utc))
                            .unwrap_or_else(now_millis);
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
            write_version(conn, &current, res_type, id, body)
        })
    }

    /// Deletes a resource logically. Deleting a deleted resource changes nothing; an unknown one
    /// is `NotFound`. Returns the deleting version, or the earlier one when already deleted.
    pub fn delete(&self, res_type: &str, id: &str) -> Result<i32, StoreError> {
        let mut conn = self.conn()?;
        conn.transaction(|conn| {
            let current = lock_current(conn, res_type, id)?
                .ok_or_else(|| StoreError::NotFound(format!("{res_type}/{id}")))?;
            if current.deleted {
                return Ok(current.version);
            }
            let version = current.version + 1;
            let at = now_millis();
            query(
                "UPDATE resource SET version = $1, last_updated = $2, deleted = TRUE, body = NULL, \
                 compartments = '{}' WHERE rid = $3",
                &[Bind::Int(version), Bind::OptTime(Some(at)), Bind::BigInt(current.rid)],
            )
            .execute(conn)?;
            insert_history(conn, current.rid, res_type, id, version, at, None, "DELETE")?;
            index_rows::clear(conn, current.rid)?;
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
    limit: i64,
) -> Result<Vec<MatchRow>, StoreError> {
    let sql = format!(
        "SELECT r.id, r.version, r.last_updated, r.body FROM resource r \
         WHERE r.res_type = $1 AND NOT r.deleted AND ({}) LIMIT {limit}",
        filter.renumbered(1)
    );
    let mut binds = vec![Bind::Text(res_type.into())];
    binds.extend(filter.binds.iter().cloned());
    Ok(query(&sql, &binds).load(conn)?)
}

fn insert_new(
    conn: &mut PgConnection,
    res_type: &str,
    id: &str,
    body: Value,
) -> Result<Written, StoreError> {
    try_insert_new(conn, res_type, id, body, "POST")?
        .ok_or_else(|| StoreError::Invalid(format!("{res_type}/{id} already exists")))
}

fn try_insert_new(
    conn: &mut PgConnection,
    res_type: &str,
    id: &str,
    body: Value,
    method: &str,
) -> Result<Option<Written>, StoreError> {
    let at = now_millis();
    let stamped = stamp(body, id, 1, at);
    let bytes = serde_json::to_vec(&stamped).map_err(|e| StoreError::Invalid(e.to_string()))?;
    let compartments = fhir_model::compartment::patient_compartments(&stamped);
    let rows: Vec<Rid> = query(
        "INSERT INTO resource (res_type, id, version, last_updated, deleted, body, compartments) \
         VALUES ($1, $2, 1, $3, FALSE, $4, $5) ON CONFLICT (res_type, id) DO NOTHING RETURNING rid",
        &[
            Bind::Text(res_type.into()),
            Bind::Text(id.into()),
            Bind::OptTime(Some(at)),
            Bind::Bytes(bytes.clone()),
            Bind::TextArray(compartments),
        ],
    )
    .load(conn)?;
    let Some(Rid { rid }) = rows.into_iter().next() else {
        return Ok(None);
    };
    insert_history(conn, rid, res_type, id, 1, at, Some(&bytes), method)?;
    index_rows::insert(conn, rid, res_type, &fhir_model::index::extract(&stamped))?;
    Ok(Some(Written {
        id: id.to_string(),
        version: 1,
        last_updated: at,
        body: bytes,
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
) -> Result<Written, StoreError> {
    let version = current.version + 1;
    let at = now_millis();
    let stamped = stamp(body, id, version, at);
    let bytes = serde_json::to_vec(&stamped).map_err(|e| StoreError::Invalid(e.to_string()))?;
    let compartments = fhir_model::compartment::patient_compartments(&stamped);
    query(
        "UPDATE resource SET version = $1, last_updated = $2, deleted = FALSE, body = $3, \
         compartments = $4 WHERE rid = $5",
        &[
            Bind::Int(version),
            Bind::OptTime(Some(at)),
            Bind::Bytes(bytes.clone()),
            Bind::TextArray(compartments),
            Bind::BigInt(current.rid),
        ],
    )
    .execute(conn)?;
    insert_history(
        conn,
        current.rid,
        res_type,
        id,
        version,
        at,
        Some(&bytes),
        "PUT",
    )?;
    index_rows::clear(conn, current.rid)?;
    index_rows::insert(
        conn,
        current.rid,
        res_type,
        &fhir_model::index::extract(&stamped),
    )?;
    Ok(Written {
        id: id.to_string(),
        version,
        last_updated: at,
        body: bytes,
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
    body: Option<&[u8]>,
    method: &str,
) -> Result<(), StoreError> {
    query(
        "INSERT INTO resource_history (rid, res_type, id, version, last_updated, deleted, method, body) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            Bind::BigInt(rid),
            Bind::Text(res_type.into()),
            Bind::Text(id.into()),
            Bind::Int(version),
            Bind::OptTime(Some(at)),
            Bind::Bool(body.is_none()),
            Bind::Text(method.into()),
            Bind::OptBytes(body.map(<[u8]>::to_vec)),
        ],
    )
    .execute(conn)?;
    Ok(())
}
