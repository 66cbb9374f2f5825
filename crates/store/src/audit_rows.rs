//! The audit trail's storage: `audit_event`, one narrow row per AuditEvent, appended in one
//! multi-row statement per batch (many requests share a commit) and never changed. A row holds
//! what the access rules read, its search keys (`audit_keys`) and either the event's facts
//! (`AuditFacts`, the request path's events: the view builds the AuditEvent from them) or the
//! event whole; reads, searches and history read it through the `audit_resource` view, shaped
//! like `resource`.
//! Nothing is deferred: once the insert commits, the event is durable and searchable.

use std::collections::HashSet;
use std::sync::Mutex;

use chrono::{DateTime, Datelike, Duration, TimeZone, Utc};
use diesel::pg::PgConnection;
use diesel::sql_types::{BigInt, Bytea, Text, Timestamptz};
use diesel::{Connection, QueryableByName, RunQueryDsl};
use fhir_model::index::IndexEntry;
use serde_json::Value;

use crate::audit_facts::{storable, AuditFacts};
use crate::audit_keys::{is_routine, keys_of, LIST_SEP};
use crate::error::StoreError;
use crate::meta::{now_millis, prepare};
use crate::pool::Store;
use crate::sql::{query, Bind};

/// Events moved per transaction from the layout of earlier versions.
const MOVE_BATCH: i64 = 2000;

/// Row length (bytes) the toaster compresses a row's columns to before it moves any to the
/// TOAST table. At PostgreSQL's default (about 2 kB) most events' bodies went out of line, an
/// insert into a second table and its index per event; compressed, an event's row is about
/// 2.2 kB, and at this target it stays whole on its heap page (three to a page). Measured on
/// 50,000 events of `make bench-auth`: 2,560 bytes an event with the default (half of it in
/// TOAST), 2,732 at 2300 or 2500, 4,097 at 3072 (compression stops at the body).
const TOAST_TARGET: u32 = 2500;

/// Advisory lock key that serialises creating partitions.
const PARTITION_LOCK: i64 = 7_231_015;

/// Months whose partition this process has seen exist, by database (its URL): tests run
/// several databases in one process.
static PARTITIONS: Mutex<Option<HashSet<(String, i32, u32)>>> = Mutex::new(None);

/// The table that holds a type's rows, shaped like `resource` (`audit_resource` for
/// AuditEvent, which lives in the audit trail).
pub(crate) fn current_table(res_type: &str) -> &'static str {
    if res_type == "AuditEvent" {
        "audit_resource"
    } else {
        "resource"
    }
}

/// The table that holds a type's versions, shaped like `resource_history`.
pub(crate) fn history_table(res_type: &str) -> &'static str {
    if res_type == "AuditEvent" {
        "audit_resource"
    } else {
        "resource_history"
    }
}

/// An AuditEvent made ready to store (id, meta, search keys), off the writer's path.
pub struct AuditRow(Row);

impl AuditRow {
    /// Stamps `event` (an AuditEvent, already built and valid) with a new id and the time now.
    /// Ids are UUIDv7, time-ordered, so the id index grows at its right edge rather than
    /// dirtying a random page per event.
    pub fn new(event: Value) -> Result<AuditRow, StoreError> {
        row_of(event, uuid::Uuid::now_v7().to_string(), now_millis(), None).map(AuditRow)
    }

    /// As [`AuditRow::new`], with the event's search index `entries` already made (by its
    /// builder, from what it knows), so the event is not searched for them again. They must
    /// be what `fhir_model::index::extract` finds in the event, up to what the keys hold.
    pub fn indexed(event: Value, entries: &[IndexEntry]) -> Result<AuditRow, StoreError> {
        row_of(
            event,
            uuid::Uuid::now_v7().to_string(),
            now_millis(),
            Some(entries),
        )
        .map(AuditRow)
    }

    /// A narrow row: the event's `facts`, from which the `audit_resource` view builds the
    /// AuditEvent when it is read, and the keys of its search index `entries` (made by its
    /// builder from the same facts; AuditEvent.recorded is their `date`). The routine keys
    /// are not stored: the view makes them.
    pub fn narrow(facts: AuditFacts, entries: &[IndexEntry]) -> AuditRow {
        let (keys, recorded) = keys_of(entries);
        let keys: Vec<String> = keys.into_iter().filter(|k| !is_routine(k)).collect();
        let agent = crate::audit_keys::param_prefix("agent");
        let agent_key = keys.iter().find(|k| k.starts_with(&agent)).cloned();
        AuditRow(Row {
            at: now_millis(),
            id: uuid::Uuid::now_v7().to_string(),
            recorded,
            body: None,
            compartments: joined(&facts.compartments()),
            labels: joined(&facts.labels()),
            org: facts
                .caller
                .as_ref()
                .and_then(|c| c.org.as_deref())
                .map(storable),
            keys: keys.join(&LIST_SEP.to_string()),
            routine: String::new(),
            agent_key,
            facts: Some(facts),
        })
    }
}

/// A connection of its own that stores batches of AuditEvents, so the audit trail's writers
/// never wait for the pool, nor pay its check-out ping.
pub struct AuditWriter {
    store: Store,
    conn: Option<PgConnection>,
}

impl AuditWriter {
    /// Stores `rows` in one statement (atomic on its own; one round trip and one commit),
    /// connecting again first when the last attempt lost the connection.
    pub fn write(&mut self, rows: Vec<AuditRow>) -> Result<(), StoreError> {
        self.store.prepare_audit_partitions()?;
        let conn = match &mut self.conn {
            Some(c) => c,
            None => self.conn.insert(self.store.dedicated_connection()?),
        };
        let result = insert_rows(conn, rows.into_iter().map(|r| r.0).collect());
        if result.is_err() {
            // Whatever went wrong, the next batch starts on a fresh connection.
            self.conn = None;
        }
        result
    }
}

impl Store {
    /// A writer for the audit trail, on a connection of its own (opened at its first write).
    pub fn audit_writer(&self) -> AuditWriter {
        AuditWriter {
            store: self.clone(),
            conn: None,
        }
    }

    /// Creates the audit trail's partitions for this month and, from a week before it ends,
    /// the next, each in a transaction of its own; called before every transaction that may
    /// store AuditEvents (free once the months are known).
    pub fn prepare_audit_partitions(&self) -> Result<(), StoreError> {
        let at = now_millis();
        let ahead = at + Duration::days(7);
        for m in [(at.year(), at.month()), (ahead.year(), ahead.month())] {
            if !known(&self.url, m) {
                ensure_partition(&mut *self.conn()?, &self.url, m)?;
            }
        }
        Ok(())
    }

    /// Moves AuditEvents stored by earlier versions (as resources with history and index rows,
    /// or as journal rows not yet projected) into the audit trail, in batches of their own
    /// transactions; returns how many. Idempotent and safe to interrupt: a batch moves whole.
    pub fn move_legacy_audit(&self) -> Result<usize, StoreError> {
        // Journal rows are stored as of now; resources keep their own months.
        self.prepare_audit_partitions()?;
        let months: Vec<Month> = query(
            "SELECT DISTINCT date_part('year', last_updated AT TIME ZONE 'UTC')::int AS y, \
             date_part('month', last_updated AT TIME ZONE 'UTC')::int AS m \
             FROM resource WHERE res_type = 'AuditEvent'",
            &[],
        )
        .load(&mut *self.conn()?)?;
        for m in months {
            ensure_partition(&mut *self.conn()?, &self.url, (m.y, m.m as u32))?;
        }
        let mut total = 0;
        loop {
            let mut conn = self.conn()?;
            let n = conn.transaction(|conn| move_resource_batch(conn))?;
            total += n;
            if n < MOVE_BATCH as usize {
                break;
            }
        }
        loop {
            let mut conn = self.conn()?;
            let n = conn.transaction(|conn| move_journal_batch(conn))?;
            total += n;
            if n < MOVE_BATCH as usize {
                return Ok(total);
            }
        }
    }
}

/// The first instant of the month holding `at`.
fn month_start(year: i32, month: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(year, month, 1, 0, 0, 0)
        .single()
        .expect("the first of a month exists")
}

fn next_month(year: i32, month: u32) -> (i32, u32) {
    if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    }
}

fn known(db: &str, (year, month): (i32, u32)) -> bool {
    let known = PARTITIONS.lock().unwrap_or_else(|e| e.into_inner());
    known
        .as_ref()
        .is_some_and(|k| k.contains(&(db.to_string(), year, month)))
}

/// Creates the partition of one month unless it exists, in a transaction of its own (never the
/// caller's, whose rollback would leave this process believing in a partition that is gone).
fn ensure_partition(
    conn: &mut PgConnection,
    db: &str,
    (year, month): (i32, u32),
) -> Result<(), StoreError> {
    let (ny, nm) = next_month(year, month);
    let from = month_start(year, month).to_rfc3339();
    let to = month_start(ny, nm).to_rfc3339();
    // Serialised, so processes starting together do not race to create the same partition.
    let sql = format!(
        "CREATE TABLE IF NOT EXISTS audit_event_{year:04}_{month:02} PARTITION OF audit_event \
         FOR VALUES FROM ('{from}') TO ('{to}') WITH (toast_tuple_target = {TOAST_TARGET})"
    );
    conn.transaction(|conn| -> Result<(), StoreError> {
        query(
            "SELECT pg_advisory_xact_lock($1)",
            &[Bind::BigInt(PARTITION_LOCK)],
        )
        .execute(conn)?;
        diesel::sql_query(sql).execute(conn)?;
        // Keys go into the index at insert: a pending list's merge stalls whichever writer
        // finds it full (migration `audit_keys_no_pending_list`). A partitioned index cannot
        // take the setting, so each partition's does.
        diesel::sql_query(format!(
            "DO $$ DECLARE ix regclass; BEGIN \
             FOR ix IN SELECT i.indexrelid::regclass FROM pg_index i \
             JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam \
             WHERE i.indrelid = 'audit_event_{year:04}_{month:02}'::regclass AND a.amname = 'gin' \
             AND NOT coalesce(c.reloptions @> '{{fastupdate=off}}', false) \
             LOOP EXECUTE format('ALTER INDEX %s SET (fastupdate = off)', ix); END LOOP; END $$"
        ))
        .execute(conn)?;
        Ok(())
    })?;
    PARTITIONS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(HashSet::new)
        .insert((db.to_string(), year, month));
    Ok(())
}

#[derive(QueryableByName)]
struct Month {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    y: i32,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    m: i32,
}

/// One event ready to insert.
struct Row {
    at: DateTime<Utc>,
    id: String,
    recorded: Option<DateTime<Utc>>,
    /// The event whole; none in a narrow row, which has its facts instead.
    body: Option<Vec<u8>>,
    compartments: String,
    labels: String,
    org: Option<String>,
    keys: String,
    routine: String,
    /// A narrow row's agent reference key (`agent·…`), indexed: its keys are not.
    agent_key: Option<String>,
    facts: Option<AuditFacts>,
}

/// Texts as one, as the insert splits them.
fn joined(parts: &[String]) -> String {
    parts
        .iter()
        .map(|p| storable(&p.replace(LIST_SEP, "\u{fffd}")))
        .collect::<Vec<_>>()
        .join(&LIST_SEP.to_string())
}

/// An event stamped with a new id and `at`, with what its row holds; its search keys from
/// `entries` when the caller made them, else from the event.
fn row_of(
    event: Value,
    id: String,
    at: DateTime<Utc>,
    entries: Option<&[IndexEntry]>,
) -> Result<Row, StoreError> {
    let v = prepare(event, &id, 1, at)?;
    let (keys, recorded) = match entries {
        Some(entries) => keys_of(entries),
        None => keys_of(&fhir_model::index::extract(&v.value)),
    };
    let (routine, keys): (Vec<String>, Vec<String>) = keys.into_iter().partition(|k| is_routine(k));
    let org = v.value["agent"]
        .as_array()
        .and_then(|agents| agents.iter().find_map(|a| a["altId"].as_str()))
        .map(str::to_string);
    Ok(Row {
        at,
        id,
        recorded,
        body: Some(v.bytes),
        compartments: joined(&v.compartments),
        labels: joined(&v.labels),
        org,
        keys: keys.join(&LIST_SEP.to_string()),
        routine: routine.join(&LIST_SEP.to_string()),
        agent_key: None,
        facts: None,
    })
}

/// Inserts AuditEvents (already built and valid) with new ids, in one statement. The month's
/// partition must exist ([`Store::prepare_audit_partitions`]).
pub(crate) fn insert_audit_events(
    conn: &mut PgConnection,
    events: &[Value],
) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let at = now_millis();
    let rows = events
        .iter()
        .map(|e| row_of(e.clone(), uuid::Uuid::now_v7().to_string(), at, None))
        .collect::<Result<Vec<_>, _>>()?;
    insert_rows(conn, rows)
}

/// Inserts rows made by [`AuditRow`]'s constructors, in one statement. The month's partition
/// must exist ([`Store::prepare_audit_partitions`]).
pub(crate) fn insert_audit_rows(
    conn: &mut PgConnection,
    rows: Vec<AuditRow>,
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    insert_rows(conn, rows.into_iter().map(|r| r.0).collect())
}

/// Inserts prepared rows in one statement.
fn insert_rows(conn: &mut PgConnection, rows: Vec<Row>) -> Result<(), StoreError> {
    let n = rows.len();
    let mut ids = Vec::with_capacity(n);
    let mut times = Vec::with_capacity(n);
    let mut recorded = Vec::with_capacity(n);
    let mut bodies = Vec::with_capacity(n);
    let mut compartments = Vec::with_capacity(n);
    let mut labels = Vec::with_capacity(n);
    let mut orgs = Vec::with_capacity(n);
    let mut keys = Vec::with_capacity(n);
    let mut routine = Vec::with_capacity(n);
    let mut agent_keys = Vec::with_capacity(n);
    let mut facts = FactColumns::with_capacity(n);
    for r in rows {
        times.push(Some(r.at));
        ids.push(r.id);
        recorded.push(r.recorded);
        bodies.push(r.body);
        compartments.push(r.compartments);
        labels.push(r.labels);
        orgs.push(r.org);
        keys.push(r.keys);
        routine.push(r.routine);
        agent_keys.push(r.agent_key);
        facts.push(r.facts.as_ref());
    }
    let mut binds = vec![
        Bind::TextArray(ids),
        Bind::OptTimeArray(times),
        Bind::OptTimeArray(recorded),
        Bind::OptBytesArray(bodies),
        Bind::TextArray(compartments),
        Bind::TextArray(labels),
        Bind::OptTextArray(orgs),
        Bind::TextArray(keys),
        Bind::TextArray(routine),
    ];
    binds.extend(facts.columns.into_iter().map(Bind::OptTextArray));
    binds.push(Bind::OptTextArray(agent_keys));
    // One statement of fixed text for any batch: prepared once per connection.
    crate::shapes::shaped_hinted(
        "INSERT INTO audit_event (id, last_updated, recorded, body, compartments, sec_labels, \
         org, keys, routine, interaction, action, outcome, outcome_desc, purpose, review_reason, \
         request_id, address, sensitive, user_sub, fhir_user, user_name, role, jti, client_id, \
         patient, resources, query, agent_key) \
         SELECT u.id, u.at, u.recorded, u.body, \
         string_to_array(u.c, E'\\x1e'), string_to_array(u.l, E'\\x1e'), u.org, \
         string_to_array(u.k, E'\\x1e'), string_to_array(u.r, E'\\x1e'), \
         u.interaction, u.action, u.outcome, u.outcome_desc, u.purpose, u.review_reason, \
         u.request_id, u.address, u.sensitive::boolean, u.user_sub, u.fhir_user, u.user_name, \
         u.role, u.jti, u.client_id, u.patient, string_to_array(u.resources, E'\\x1e'), u.query, \
         u.agent_key \
         FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[], $4::bytea[], $5::text[], \
         $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], \
         $13::text[], $14::text[], $15::text[], $16::text[], $17::text[], $18::text[], \
         $19::text[], $20::text[], $21::text[], $22::text[], $23::text[], $24::text[], \
         $25::text[], $26::text[], $27::text[], $28::text[]) AS u(id, at, recorded, body, c, l, org, k, r, \
         interaction, action, outcome, outcome_desc, purpose, review_reason, request_id, \
         address, sensitive, user_sub, fhir_user, user_name, role, jti, client_id, patient, \
         resources, query, agent_key)",
        &binds,
        true,
    )
    .execute(conn)?;
    Ok(())
}

/// The facts of a batch's rows, a text array per column in the insert's order (NULL where
/// a row has none: it has a body instead).
struct FactColumns {
    columns: Vec<Vec<Option<String>>>,
}

impl FactColumns {
    const COUNT: usize = 18;

    fn with_capacity(n: usize) -> FactColumns {
        FactColumns {
            columns: (0..Self::COUNT).map(|_| Vec::with_capacity(n)).collect(),
        }
    }

    fn push(&mut self, facts: Option<&AuditFacts>) {
        let values: [Option<String>; Self::COUNT] = match facts {
            None => Default::default(),
            Some(f) => {
                let text = |s: &str| Some(storable(s));
                let opt = |s: &Option<String>| s.as_deref().map(storable);
                let c = f.caller.as_ref();
                [
                    text(&f.interaction),
                    text(&f.action),
                    text(&f.outcome),
                    opt(&f.outcome_desc),
                    text(&f.purpose),
                    opt(&f.review_reason),
                    text(&f.request_id),
                    opt(&f.address),
                    Some(if f.sensitive { "t" } else { "f" }.to_string()),
                    c.map(|c| storable(&c.subject)),
                    c.and_then(|c| opt(&c.fhir_user)),
                    c.and_then(|c| opt(&c.name)),
                    c.map(|c| storable(&c.role)),
                    c.and_then(|c| opt(&c.jti)),
                    c.and_then(|c| opt(&c.client_id)),
                    opt(&f.patient),
                    Some(joined(&f.resources)),
                    opt(&f.query),
                ]
            }
        };
        for (column, value) in self.columns.iter_mut().zip(values) {
            column.push(value);
        }
    }
}

#[derive(QueryableByName)]
struct LegacyRow {
    #[diesel(sql_type = BigInt)]
    rid: i64,
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Timestamptz)]
    last_updated: DateTime<Utc>,
    #[diesel(sql_type = Bytea)]
    body: Vec<u8>,
}

/// Moves up to [`MOVE_BATCH`] AuditEvent resources, keeping their ids, bodies and times.
fn move_resource_batch(conn: &mut PgConnection) -> Result<usize, StoreError> {
    let legacy: Vec<LegacyRow> = query(
        "SELECT rid, id, last_updated, body FROM resource \
         WHERE res_type = 'AuditEvent' AND body IS NOT NULL ORDER BY rid LIMIT $1 FOR UPDATE",
        &[Bind::BigInt(MOVE_BATCH)],
    )
    .load(conn)?;
    if legacy.is_empty() {
        return Ok(0);
    }
    let mut rows = Vec::with_capacity(legacy.len());
    for l in &legacy {
        let event: Value = serde_json::from_slice(&l.body).map_err(|e| {
            StoreError::Invalid(format!("stored AuditEvent {} is not JSON: {e}", l.id))
        })?;
        let mut row = row_of(event, l.id.clone(), l.last_updated, None)?;
        // The body as it was served, byte for byte.
        row.body = Some(l.body.clone());
        rows.push(row);
    }
    let n = rows.len();
    insert_rows(conn, rows)?;
    let rids = Bind::BigIntArray(legacy.iter().map(|l| l.rid).collect());
    for table in crate::index_rows::TABLES {
        query(
            &format!("DELETE FROM {table} WHERE res_type = 'AuditEvent' AND rid = ANY($1)"),
            std::slice::from_ref(&rids),
        )
        .execute(conn)?;
    }
    query(
        "DELETE FROM resource_history WHERE rid = ANY($1)",
        std::slice::from_ref(&rids),
    )
    .execute(conn)?;
    query("DELETE FROM resource WHERE rid = ANY($1)", &[rids]).execute(conn)?;
    Ok(n)
}

#[derive(QueryableByName)]
struct JournalRow {
    #[diesel(sql_type = BigInt)]
    seq: i64,
    #[diesel(sql_type = Bytea)]
    body: Vec<u8>,
}

/// Stores up to [`MOVE_BATCH`] rows of the journal that earlier versions kept.
fn move_journal_batch(conn: &mut PgConnection) -> Result<usize, StoreError> {
    let mut rows: Vec<JournalRow> = query(
        "DELETE FROM audit_journal WHERE seq IN \
         (SELECT seq FROM audit_journal ORDER BY seq LIMIT $1) RETURNING seq, body",
        &[Bind::BigInt(MOVE_BATCH)],
    )
    .load(conn)?;
    rows.sort_by_key(|r| r.seq);
    let events = rows
        .iter()
        .map(|r| {
            serde_json::from_slice(&r.body).map_err(|e| {
                StoreError::Invalid(format!("audit journal row {} is not JSON: {e}", r.seq))
            })
        })
        .collect::<Result<Vec<Value>, _>>()?;
    insert_audit_events(conn, &events)?;
    Ok(rows.len())
}
