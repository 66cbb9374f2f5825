//! Creating, updating and deleting resources inside a [`Tx`]: each write stores the current row
//! under a row lock (so concurrent writers of one resource queue up instead of losing a version)
//! and queues its history row, index rows and audit record for the transaction's next flush.
//! The `Store` methods here are the single-resource forms, one transaction each.

use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::sql_types::{BigInt, Bool, Integer, Text};
use diesel::{QueryableByName, RunQueryDsl};
use fhir_model::AuditAction;
use serde_json::Value;

use crate::context::{Change, WriteContext};
use crate::error::StoreError;
use crate::identity;
use crate::index_key::equality_key;
use crate::meta::{content_of, now_millis, prepare, provenance, Prepared};
use crate::pool::Store;
use crate::relationship::sync_registered_practices;
use crate::shapes::shaped_write;
use crate::sql::{query, Bind, Filter};
use crate::tx::Tx;

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

impl Written {
    /// The answer of a conditional create that found its match: that version, unchanged.
    pub fn found(m: Match) -> Written {
        Written {
            id: m.id,
            version: m.version,
            last_updated: m.last_updated,
            body: m.body,
            created: false,
            unchanged: true,
        }
    }
}

/// A search condition for conditional interactions, compiled by the `search` crate.
#[derive(Debug, Clone)]
pub struct Condition {
    /// The query as the client wrote it (for messages and for the lock key).
    pub query: String,
    /// The SQL condition over `resource r`.
    pub filter: Filter,
}

/// How new resources in a multi-row insert were asked for, as history records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertMethod {
    /// Created under an id the server chose (`POST`).
    Post,
    /// Created under the client's id (`PUT` of an id not stored yet).
    Put,
}

impl InsertMethod {
    /// The HTTP method history entries show.
    pub fn as_str(self) -> &'static str {
        match self {
            InsertMethod::Post => "POST",
            InsertMethod::Put => "PUT",
        }
    }
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
struct IdentifiedMatch {
    #[diesel(sql_type = BigInt)]
    rid: i64,
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
    #[diesel(sql_type = Text)]
    key_system: String,
    #[diesel(sql_type = Text)]
    key_value: String,
}

#[derive(QueryableByName)]
struct TypeId {
    #[diesel(sql_type = Text)]
    res_type: String,
    #[diesel(sql_type = Text)]
    id: String,
}

#[derive(QueryableByName)]
struct Rid {
    #[diesel(sql_type = BigInt)]
    rid: i64,
}

/// A resource a conditional interaction matched.
#[derive(QueryableByName, Debug, Clone)]
pub struct Match {
    /// Logical id.
    #[diesel(sql_type = Text)]
    pub id: String,
    /// Current version.
    #[diesel(sql_type = Integer)]
    pub version: i32,
    /// When it was written.
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    pub last_updated: DateTime<Utc>,
    /// The stored body.
    #[diesel(sql_type = diesel::sql_types::Bytea)]
    pub body: Vec<u8>,
    /// The patients whose compartment holds it.
    #[diesel(sql_type = diesel::sql_types::Array<Text>)]
    pub compartments: Vec<String>,
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
        self.transaction(|tx| tx.create(res_type, body, condition, ctx))
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
        self.transaction(|tx| tx.update(res_type, id, body, if_match, ctx))
    }

    /// Deletes a resource logically. Deleting a deleted resource changes nothing; an unknown one
    /// is `NotFound`. Returns the deleting version, or the earlier one when already deleted.
    pub fn delete(&self, res_type: &str, id: &str, ctx: &WriteContext) -> Result<i32, StoreError> {
        self.transaction(|tx| tx.delete(res_type, id, ctx))
    }
}

impl Tx<'_> {
    /// Creates a resource with a new id; with a condition, see [`Store::create`].
    pub fn create(
        &mut self,
        res_type: &str,
        body: Value,
        condition: Option<&Condition>,
        ctx: &WriteContext,
    ) -> Result<Written, StoreError> {
        if let Some(cond) = condition {
            if let Some(found) = self.create_condition(res_type, &body, cond, ctx)? {
                return Ok(found);
            }
        }
        let id = uuid::Uuid::new_v4().to_string();
        self.create_with_id(res_type, &id, body, ctx)
    }

    /// Takes the locks of a conditional create and looks for its match: `Some` when exactly one
    /// resource matches (returned unchanged and audited as read), `None` when none does.
    pub fn create_condition(
        &mut self,
        res_type: &str,
        body: &Value,
        cond: &Condition,
        ctx: &WriteContext,
    ) -> Result<Option<Written>, StoreError> {
        self.lock_condition(res_type, &cond.query)?;
        if res_type == "Patient" {
            self.lock_keys(identity::lock_keys(&identity::nhs_numbers(body)))?;
        }
        let mut matches = self.find(res_type, &cond.filter, ctx, 2)?;
        match matches.len() {
            0 => Ok(None),
            1 => {
                let m = matches.pop().expect("one match");
                self.audit_read(res_type, &m, ctx);
                Ok(Some(Written::found(m)))
            }
            _ => Err(StoreError::MultipleMatches(format!(
                "The condition '{}' matches more than one {res_type}",
                cond.query
            ))),
        }
    }

    /// Records that a conditional interaction read a resource without changing it.
    pub fn audit_read(&mut self, res_type: &str, m: &Match, ctx: &WriteContext) {
        let found: Value = serde_json::from_slice(&m.body).unwrap_or(Value::Null);
        self.audit(
            &ctx.audit,
            Change {
                res_type: res_type.to_string(),
                id: m.id.clone(),
                version: m.version,
                action: AuditAction::Read,
                compartments: m.compartments.clone(),
                labels: fhir_model::access::security_labels(&found),
                alerts: fhir_model::access::alert_codes(&found),
            },
        );
    }

    /// Creates a resource under an id chosen before (a transaction Bundle assigns the ids of its
    /// creates first, to rewrite the references between its entries).
    pub fn create_with_id(
        &mut self,
        res_type: &str,
        id: &str,
        body: Value,
        ctx: &WriteContext,
    ) -> Result<Written, StoreError> {
        self.try_insert_new(res_type, id, body, "POST", ctx)?
            .ok_or_else(|| StoreError::Conflict(format!("{res_type}/{id} already exists")))
    }

    /// Creates resources under ids chosen before (fresh UUIDs), their current rows in one
    /// multi-row statement: the bulk of a feed's transaction is plain creates, and one round
    /// trip per resource would dominate its cost. An id already taken fails the whole call.
    pub fn create_many(
        &mut self,
        items: Vec<(String, String, Value, &WriteContext)>,
        method: InsertMethod,
    ) -> Result<Vec<Written>, StoreError> {
        let method = method.as_str();
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let at = now_millis();
        let mut prepared = Vec::with_capacity(items.len());
        for (res_type, id, body, ctx) in items {
            let body = provenance(body, ctx.source.as_deref(), ctx.org.as_deref());
            let v = prepare(body, &id, 1, at)?;
            prepared.push((res_type, id, v, ctx));
        }
        let mut rids: Vec<i64> = Vec::with_capacity(prepared.len());
        // Eight binds per row; a chunk stays far below PostgreSQL's 65,535.
        for chunk in prepared.chunks(2000) {
            let mut binds = vec![Bind::OptTime(Some(at))];
            let mut rows = Vec::with_capacity(chunk.len());
            for (res_type, id, v, ctx) in chunk {
                let n = binds.len();
                rows.push(format!(
                    "(${}, ${}, 1, $1, FALSE, ${}, ${}, ${}, ${}, ${})",
                    n + 1,
                    n + 2,
                    n + 3,
                    n + 4,
                    n + 5,
                    n + 6,
                    n + 7
                ));
                binds.extend([
                    Bind::Text(res_type.clone()),
                    Bind::Text(id.clone()),
                    Bind::Bytes(v.bytes.clone()),
                    Bind::TextArray(v.compartments.clone()),
                    Bind::TextArray(v.labels.clone()),
                    Bind::TextArray(v.alerts.clone()),
                    Bind::OptText(ctx.org.clone()),
                ]);
            }
            // WITH ORDINALITY keeps the returned row ids in the order the rows were sent.
            let k = binds.len();
            binds.push(Bind::TextArray(
                chunk.iter().map(|(t, ..)| t.clone()).collect(),
            ));
            binds.push(Bind::TextArray(
                chunk.iter().map(|(_, i, ..)| i.clone()).collect(),
            ));
            let inserted: Vec<Rid> = shaped_write(
                &format!(
                    "WITH ins AS (INSERT INTO resource (res_type, id, version, last_updated, deleted, \
                     body, compartments, sec_labels, alert_codes, org) VALUES {} \
                     ON CONFLICT (res_type, id) DO NOTHING RETURNING rid, res_type, id) \
                     SELECT ins.rid FROM ins JOIN unnest(${}::text[], ${}::text[]) WITH ORDINALITY \
                     AS k(t, i, n) ON k.t = ins.res_type AND k.i = ins.id ORDER BY k.n",
                    rows.join(", "),
                    k + 1,
                    k + 2
                ),
                &binds,
            )
            .load(self.conn)?;
            if inserted.len() != chunk.len() {
                return Err(StoreError::Conflict(
                    "a resource with one of the new ids already exists".into(),
                ));
            }
            rids.extend(inserted.into_iter().map(|r| r.rid));
        }
        let mut out = Vec::with_capacity(prepared.len());
        for ((res_type, id, v, ctx), rid) in prepared.into_iter().zip(rids) {
            self.after_write(rid, &res_type, &id, &v, method, ctx)?;
            self.audit(
                &ctx.audit,
                Change {
                    res_type: res_type.clone(),
                    id: id.clone(),
                    version: 1,
                    action: AuditAction::Create,
                    compartments: v.compartments,
                    labels: v.labels,
                    alerts: v.alerts,
                },
            );
            out.push(Written {
                id,
                version: 1,
                last_updated: at,
                body: v.bytes,
                created: true,
                unchanged: false,
            });
        }
        Ok(out)
    }

    /// Which of these `(type, id)` pairs have a current row (deleted or not), in one statement.
    pub fn existing(
        &mut self,
        keys: &[(String, String)],
    ) -> Result<std::collections::HashSet<(String, String)>, StoreError> {
        if keys.is_empty() {
            return Ok(Default::default());
        }
        // One index probe per key (see find_identifiers).
        let rows: Vec<TypeId> = shaped_write(
            "SELECT r.res_type, r.id FROM unnest($1::text[], $2::text[]) AS k(t, i) \
             CROSS JOIN LATERAL (SELECT x.res_type, x.id FROM resource x \
             WHERE x.res_type = k.t AND x.id = k.i OFFSET 0) r",
            &[
                Bind::TextArray(keys.iter().map(|(t, _)| t.clone()).collect()),
                Bind::TextArray(keys.iter().map(|(_, i)| i.clone()).collect()),
            ],
        )
        .load(self.conn)?;
        Ok(rows.into_iter().map(|r| (r.res_type, r.id)).collect())
    }

    /// Updates (or creates) a resource; see [`Store::update`].
    pub fn update(
        &mut self,
        res_type: &str,
        id: &str,
        body: Value,
        if_match: Option<i32>,
        ctx: &WriteContext,
    ) -> Result<Written, StoreError> {
        let current = match lock_current(self.conn, res_type, id)? {
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
                    self.try_insert_new(res_type, id, body.clone(), "PUT", ctx)?
                {
                    return Ok(written);
                }
                lock_current(self.conn, res_type, id)?
                    .ok_or_else(|| StoreError::NotFound(format!("{res_type}/{id}")))?
            }
        };
        if !self.visible_now(current.rid, ctx)? {
            // As for an id that is free but whose new version would be outside the client's
            // rules: the hidden resource is neither overwritten nor revealed (an `If-Match`
            // answers as for a missing resource). A hidden deletion is not revived either: its
            // history would then be judged against a current version the client wrote.
            return Err(match if_match {
                Some(expected) => StoreError::VersionConflict {
                    resource: format!("{res_type}/{id}"),
                    current: 0,
                    expected,
                },
                None => StoreError::outside_rules(&format!("{res_type}/{id}")),
            });
        }
        if let Some(expected) = if_match {
            if expected != current.version {
                return Err(StoreError::VersionConflict {
                    resource: format!("{res_type}/{id}"),
                    current: current.version,
                    expected,
                });
            }
        }
        let body = provenance(body, ctx.source.as_deref(), ctx.org.as_deref());
        if !current.deleted {
            if let Some(stored) = current.body.as_deref() {
                let old: Value = serde_json::from_slice(stored).unwrap_or(Value::Null);
                if content_of(&old) == content_of(&body) {
                    let last_updated = old["meta"]["lastUpdated"]
                        .as_str()
                        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                        .map(|d| d.with_timezone(&Utc))
                        .unwrap_or_else(now_millis);
                    self.audit(
                        &ctx.audit,
                        Change {
                            res_type: res_type.to_string(),
                            id: id.to_string(),
                            version: current.version,
                            action: AuditAction::Read,
                            compartments: fhir_model::compartment::patient_compartments(&old),
                            labels: fhir_model::access::security_labels(&old),
                            alerts: fhir_model::access::alert_codes(&old),
                        },
                    );
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
        self.write_version(&current, res_type, id, body, ctx)
    }

    /// Deletes a resource; see [`Store::delete`].
    pub fn delete(
        &mut self,
        res_type: &str,
        id: &str,
        ctx: &WriteContext,
    ) -> Result<i32, StoreError> {
        let current = lock_current(self.conn, res_type, id)?
            .ok_or_else(|| StoreError::NotFound(format!("{res_type}/{id}")))?;
        // A resource the client may not see is, for its delete, as if it did not exist.
        if !self.visible_now(current.rid, ctx)? {
            return Err(StoreError::NotFound(format!("{res_type}/{id}")));
        }
        if current.deleted {
            return Ok(current.version);
        }
        self.before_rewrite(current.rid)?;
        let version = current.version + 1;
        let at = now_millis();
        // The deletion marker keeps the last version's compartments and labels, so that its
        // history entry is hidden from exactly those who could not see that version.
        shaped_write(
            "UPDATE resource SET version = $1, last_updated = $2, deleted = TRUE, body = NULL, \
             org = $3 WHERE rid = $4",
            &[
                Bind::Int(version),
                Bind::OptTime(Some(at)),
                Bind::OptText(ctx.org.clone()),
                Bind::BigInt(current.rid),
            ],
        )
        .execute(self.conn)?;
        if res_type == "Patient" {
            identity::release(self.conn, id)?;
        }
        self.history(current.rid, "DELETE")?;
        self.clear_index(current.rid);
        let last: Value = current
            .body
            .as_deref()
            .and_then(|b| serde_json::from_slice::<Value>(b).ok())
            .unwrap_or(Value::Null);
        self.audit(
            &ctx.audit,
            Change {
                res_type: res_type.to_string(),
                id: id.to_string(),
                version,
                action: AuditAction::Delete,
                compartments: fhir_model::compartment::patient_compartments(&last),
                labels: fhir_model::access::security_labels(&last),
                alerts: fhir_model::access::alert_codes(&last),
            },
        );
        Ok(version)
    }

    /// Serialises conditional writes with the same query, so two feeds creating the same
    /// person at the same moment produce one resource.
    pub fn lock_condition(&mut self, res_type: &str, q: &str) -> Result<(), StoreError> {
        self.lock_keys([condition_key(res_type, q)])
    }

    /// Current resources of `res_type` matching `filter` that the client may see, at most
    /// `limit`. A resource it may not see is, for a conditional write, as if it did not exist:
    /// it is never matched, so it is neither changed nor revealed (README, "Writes and hidden
    /// resources").
    pub fn find(
        &mut self,
        res_type: &str,
        filter: &Filter,
        ctx: &WriteContext,
        limit: i64,
    ) -> Result<Vec<Match>, StoreError> {
        self.flush()?;
        let mut binds = vec![Bind::Text(res_type.into())];
        let mut sql = format!(
            "SELECT r.id, r.version, r.last_updated, r.body, r.compartments FROM resource r \
             WHERE r.res_type = $1 AND NOT r.deleted AND ({})",
            filter.renumbered(1)
        );
        binds.extend(filter.binds.iter().cloned());
        if let Some(access) = &ctx.access {
            let visible = access.predicate("r", &mut binds);
            sql.push_str(&format!(" AND {visible}"));
        }
        sql.push_str(&format!(" LIMIT {limit}"));
        Ok(query(&sql, &binds).load(self.conn)?)
    }

    /// Current resources of `res_type` carrying each `system|value` identifier, for many
    /// conditions `identifier=system|value` at once (a feed's transaction has one per entry).
    /// The same as [`Tx::find`] per condition: a match hidden from the client is left out.
    pub fn find_identifiers(
        &mut self,
        res_type: &str,
        keys: &[(String, String)],
        ctx: &WriteContext,
    ) -> Result<std::collections::HashMap<(String, String), Vec<Match>>, StoreError> {
        self.flush()?;
        let rows: Vec<IdentifiedMatch> = shaped_write(
            // One index probe per key, whatever the planner believes about the table: the
            // LATERAL subquery behind OFFSET 0 cannot be flattened into a hash join or a scan of
            // every identifier of the type, which is what a join against the keys became while
            // statistics lagged a bulk load (265 ms instead of 1 ms at 350k Observations).
            "SELECT r.rid, r.id, r.version, r.last_updated, r.body, r.compartments, \
             k.s AS key_system, k.v AS key_value \
             FROM unnest($2::text[], $3::text[]) AS k(s, v) \
             CROSS JOIN LATERAL (SELECT t.rid FROM idx_token t WHERE t.res_type = $1 \
             AND t.param = 'identifier' AND t.code = k.v AND t.system = k.s OFFSET 0) t \
             JOIN resource r ON r.rid = t.rid AND NOT r.deleted",
            &[
                Bind::Text(res_type.into()),
                Bind::TextArray(
                    keys.iter()
                        .map(|(s, _)| equality_key(s).into_owned())
                        .collect(),
                ),
                Bind::TextArray(
                    keys.iter()
                        .map(|(_, v)| equality_key(v).into_owned())
                        .collect(),
                ),
            ],
        )
        .load(self.conn)?;
        // Index keys of long identifiers are folded (`index_key`); answer with the keys asked.
        let asked: std::collections::HashMap<(String, String), &(String, String)> = keys
            .iter()
            .map(|k| {
                (
                    (
                        equality_key(&k.0).into_owned(),
                        equality_key(&k.1).into_owned(),
                    ),
                    k,
                )
            })
            .collect();
        let rows: Vec<IdentifiedMatch> = rows
            .into_iter()
            .map(|mut r| {
                if let Some((s, v)) = asked.get(&(r.key_system.clone(), r.key_value.clone())) {
                    r.key_system = s.clone();
                    r.key_value = v.clone();
                }
                r
            })
            .collect();
        let rows = match (&ctx.access, rows.is_empty()) {
            (Some(access), false) => {
                let mut binds = vec![Bind::BigIntArray(rows.iter().map(|r| r.rid).collect())];
                let visible = access.predicate("r", &mut binds);
                let shown: std::collections::HashSet<i64> = shaped_write(
                    &format!("SELECT r.rid FROM resource r WHERE r.rid = ANY($1) AND {visible}"),
                    &binds,
                )
                .load::<Rid>(self.conn)?
                .into_iter()
                .map(|r| r.rid)
                .collect();
                rows.into_iter()
                    .filter(|r| shown.contains(&r.rid))
                    .collect()
            }
            _ => rows,
        };
        let mut out: std::collections::HashMap<(String, String), Vec<Match>> = Default::default();
        let mut seen = std::collections::HashSet::new();
        for r in rows {
            // A resource carrying the same identifier twice is one match.
            if !seen.insert((r.rid, r.key_system.clone(), r.key_value.clone())) {
                continue;
            }
            out.entry((r.key_system, r.key_value))
                .or_default()
                .push(Match {
                    id: r.id,
                    version: r.version,
                    last_updated: r.last_updated,
                    body: r.body,
                    compartments: r.compartments,
                });
        }
        Ok(out)
    }

    /// True when the client's access rules admit the current row (a deletion marker keeps the
    /// last version's labels and compartments; under a scope restriction it cannot be judged
    /// and is not admitted).
    fn visible_now(&mut self, rid: i64, ctx: &WriteContext) -> Result<bool, StoreError> {
        if ctx.access.is_none() {
            return Ok(true);
        }
        self.admits("r.rid = $1", vec![Bind::BigInt(rid)], ctx)
    }

    /// Whether the client may see the resource named by type and id (false when none exists).
    fn visible_by_id(
        &mut self,
        res_type: &str,
        id: &str,
        ctx: &WriteContext,
    ) -> Result<bool, StoreError> {
        let binds = vec![Bind::Text(res_type.into()), Bind::Text(id.into())];
        self.admits("r.res_type = $1 AND r.id = $2", binds, ctx)
    }

    /// Whether a current row matching `key` (over `binds`) meets the client's access rules.
    fn admits(
        &mut self,
        key: &str,
        mut binds: Vec<Bind>,
        ctx: &WriteContext,
    ) -> Result<bool, StoreError> {
        let cond = match &ctx.access {
            Some(access) => {
                self.flush_sources()?;
                access.predicate("r", &mut binds)
            }
            None => "TRUE".into(),
        };
        let rows: Vec<Rid> = shaped_write(
            &format!("SELECT r.rid FROM resource r WHERE {key} AND {cond}"),
            &binds,
        )
        .load(self.conn)?;
        Ok(!rows.is_empty())
    }

    fn try_insert_new(
        &mut self,
        res_type: &str,
        id: &str,
        body: Value,
        method: &'static str,
        ctx: &WriteContext,
    ) -> Result<Option<Written>, StoreError> {
        let at = now_millis();
        let body = provenance(body, ctx.source.as_deref(), ctx.org.as_deref());
        let v = prepare(body, id, 1, at)?;
        let rows: Vec<Rid> = shaped_write(
            "INSERT INTO resource (res_type, id, version, last_updated, deleted, body, compartments, \
             sec_labels, alert_codes, org) \
             VALUES ($1, $2, 1, $3, FALSE, $4, $5, $6, $7, $8) ON CONFLICT (res_type, id) DO NOTHING \
             RETURNING rid",
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
        .load(self.conn)?;
        let Some(Rid { rid }) = rows.into_iter().next() else {
            return Ok(None);
        };
        self.after_write(rid, res_type, id, &v, method, ctx)?;
        self.audit(
            &ctx.audit,
            Change {
                res_type: res_type.to_string(),
                id: id.to_string(),
                version: 1,
                action: AuditAction::Create,
                compartments: v.compartments,
                labels: v.labels,
                alerts: v.alerts,
            },
        );
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
        &mut self,
        current: &CurrentRow,
        res_type: &str,
        id: &str,
        body: Value,
        ctx: &WriteContext,
    ) -> Result<Written, StoreError> {
        self.before_rewrite(current.rid)?;
        let version = current.version + 1;
        let at = now_millis();
        let v = prepare(body, id, version, at)?;
        shaped_write(
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
        .execute(self.conn)?;
        if !current.deleted {
            self.clear_index(current.rid);
        }
        self.after_write(current.rid, res_type, id, &v, "PUT", ctx)?;
        self.audit(
            &ctx.audit,
            Change {
                res_type: res_type.to_string(),
                id: id.to_string(),
                version,
                action: if current.deleted {
                    AuditAction::Create
                } else {
                    AuditAction::Update
                },
                compartments: v.compartments,
                labels: v.labels,
                alerts: v.alerts,
            },
        );
        Ok(Written {
            id: id.to_string(),
            version,
            last_updated: at,
            body: v.bytes,
            created: current.deleted,
            unchanged: false,
        })
    }

    /// What every new version needs besides its current row: the person's identity and
    /// registered practices (Patients), source relationships, the access check, history and
    /// index rows.
    fn after_write(
        &mut self,
        rid: i64,
        res_type: &str,
        id: &str,
        v: &Prepared,
        method: &'static str,
        ctx: &WriteContext,
    ) -> Result<(), StoreError> {
        if res_type == "Patient" {
            if let Some((nhs, holder)) =
                identity::claim(self.conn, id, &identity::nhs_numbers(&v.value))?
            {
                // A Patient the writer may not see is not named (README, hidden resources).
                let shown = self.visible_by_id("Patient", &holder, ctx)?;
                return Err(identity::conflict(&nhs, shown.then_some(holder.as_str())));
            }
            // A new Patient's registered practice is related before the access check, so a
            // practice can register a patient it may then see.
            sync_registered_practices(self.conn, id, &v.value)?;
        }
        if let (true, Some(org)) = (ctx.record_source, &ctx.org) {
            self.source(&v.compartments, org);
        }
        if let Some(access) = &ctx.access {
            self.check(access, rid, format!("{res_type}/{id}"));
        }
        self.history(rid, method)?;
        self.index(rid, res_type, fhir_model::index::extract(&v.value));
        Ok(())
    }
}

/// The advisory lock key of a conditional write's condition.
pub fn condition_key(res_type: &str, q: &str) -> String {
    format!("{res_type}?{q}")
}

fn lock_current(
    conn: &mut PgConnection,
    res_type: &str,
    id: &str,
) -> Result<Option<CurrentRow>, StoreError> {
    let rows: Vec<CurrentRow> = shaped_write(
        "SELECT rid, version, deleted, body FROM resource WHERE res_type = $1 AND id = $2 FOR UPDATE",
        &[Bind::Text(res_type.into()), Bind::Text(id.into())],
    )
    .load(conn)?;
    Ok(rows.into_iter().next())
}
