//! Prepared statements for the query shapes a server runs again and again. A search's SQL text
//! depends only on its shape (which parameters, modifiers, sort keys, rules); every value is a
//! bind. Planning such a statement cost about as much as running it, so a shape seen often is
//! sent as a statement diesel prepares once per connection, and PostgreSQL reuses its plan
//! (`plan_cache_mode = auto`: custom plans for the first executions, then the generic plan when
//! it is estimated no worse).
//!
//! That estimate can be badly wrong: a generic plan judges `code = $n` by the column's number
//! of distinct values, so `status=active` looks rare and a plan may start from it (measured: a
//! patient's active medicines 6 times slower, recent results 200 times). By default
//! ([`PreparedSearches::Stable`]) only statements marked stable are prepared: search shapes
//! that crate `search` built to keep one good plan (an anchor, every other condition fenced)
//! and fixed internal statements.
//!
//! The number of shapes that may become prepared statements is bounded ([`MAX_SHAPES`]): shapes
//! are client-chosen, and every prepared statement holds memory on each pooled connection and
//! in PostgreSQL. A shape qualifies on its [`ADMIT_AFTER`]th sighting while there is room; the
//! rest run as one-off statements, as before.
//!
//! Writes ([`shaped_write`]: rows inserted from arrays, probes by key) are prepared too, under a
//! bound of their own so that a feed's statements never take the searches' room: parsing and
//! planning them afresh was about a quarter of PostgreSQL's CPU for a feed's transaction.

use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Mutex;

use diesel::pg::{Pg, PgConnection};
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{
    Array, BigInt, Bool, Bytea, Integer, Nullable, Text, Timestamptz, Untyped,
};
use diesel::{QueryResult, RunQueryDsl};

use crate::sql::Bind;

/// Most search shapes that become prepared statements in one process.
pub const MAX_SHAPES: usize = 64;
/// Most write shapes that become prepared statements in one process (a transaction's index
/// insert varies with the index tables its resources have rows in).
pub const MAX_WRITE_SHAPES: usize = 64;
/// Most binds of a write that is prepared: a bulk load's multi-row insert (thousands of binds)
/// would hold a large plan on every pooled connection, and its planning is shared by its rows.
const MAX_WRITE_BINDS: usize = 256;
/// Sightings before a shape becomes a prepared statement (one-off shapes never do).
const ADMIT_AFTER: u32 = 3;
/// Most shapes whose sightings are counted; past it the counts start again.
const MAX_COUNTED: usize = 4096;

#[derive(Default)]
struct Registry {
    admitted: HashSet<u64>,
    seen: HashMap<u64, u32>,
}

static REGISTRY: Mutex<Option<Registry>> = Mutex::new(None);
static WRITES: Mutex<Option<Registry>> = Mutex::new(None);

/// Which recurring statements become prepared statements (`INVICTA_PREPARED_SEARCHES`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreparedSearches {
    /// None: for a connection pooler that cannot keep a session's prepared statements
    /// (PgBouncer in transaction mode before 1.21), and to measure what they save.
    Off,
    /// Statements marked stable (the default).
    Stable,
    /// Every recurring shape, whatever PostgreSQL's generic plan makes of it.
    All,
}

static MODE: AtomicU8 = AtomicU8::new(1);

/// Sets which statements become prepared statements in this process.
pub fn set_prepared_searches(mode: PreparedSearches) {
    MODE.store(mode as u8, Ordering::Relaxed);
}

/// True unless prepared searches are off, which also keeps every statement on PostgreSQL's
/// default plan choice (to measure what generic plans save).
pub(crate) fn generic_plans_allowed() -> bool {
    MODE.load(Ordering::Relaxed) != PreparedSearches::Off as u8
}

/// True when `sql` is a shape to prepare: admitted now or before.
fn admitted(sql: &str, stable: bool) -> bool {
    let prepare = match MODE.load(Ordering::Relaxed) {
        0 => false,
        1 => stable,
        _ => true,
    };
    prepare && counted(&REGISTRY, MAX_SHAPES, sql)
}

/// True when the write `sql` is a shape to prepare: admitted now or before, in the writes' own
/// bound.
fn write_admitted(sql: &str) -> bool {
    MODE.load(Ordering::Relaxed) != PreparedSearches::Off as u8
        && counted(&WRITES, MAX_WRITE_SHAPES, sql)
}

/// Counts a sighting of `sql` in `registry`; true once it is admitted (at most `max` are).
fn counted(registry: &Mutex<Option<Registry>>, max: usize, sql: &str) -> bool {
    let mut h = DefaultHasher::new();
    sql.hash(&mut h);
    let key = h.finish();
    let mut guard = registry.lock().unwrap_or_else(|e| e.into_inner());
    let r = guard.get_or_insert_with(Registry::default);
    if r.admitted.contains(&key) {
        return true;
    }
    if r.admitted.len() >= max {
        return false;
    }
    if r.seen.len() >= MAX_COUNTED {
        r.seen.clear();
    }
    let n = r.seen.entry(key).or_insert(0);
    *n += 1;
    if *n >= ADMIT_AFTER {
        r.seen.remove(&key);
        r.admitted.insert(key);
        return true;
    }
    false
}

/// A statement of dynamic text with its binds, prepared and cached by diesel when its shape is
/// admitted (see the module documentation) and run as a one-off statement otherwise.
pub(crate) struct Shaped<'a> {
    sql: &'a str,
    binds: &'a [Bind],
    cache: bool,
}

/// Serialises the tests that depend on which shapes this process has admitted.
#[cfg(test)]
pub(crate) static TEST_LOCK: Mutex<()> = Mutex::new(());

/// Forgets every shape seen or admitted (tests only).
#[cfg(test)]
pub(crate) fn forget_shapes() {
    *REGISTRY.lock().unwrap_or_else(|e| e.into_inner()) = None;
    *WRITES.lock().unwrap_or_else(|e| e.into_inner()) = None;
}

/// How many search shapes are admitted (tests only).
#[cfg(test)]
pub(crate) fn admitted_searches() -> usize {
    REGISTRY
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .map_or(0, |r| r.admitted.len())
}

/// The statement `sql` with `binds`, to `load` or `execute`; prepared only when every recurring
/// shape is ([`PreparedSearches::All`]).
pub(crate) fn shaped<'a>(sql: &'a str, binds: &'a [Bind]) -> Shaped<'a> {
    shaped_hinted(sql, binds, false)
}

/// The statement `sql` with `binds`; `stable` when its plan suits every value it may be given.
pub(crate) fn shaped_hinted<'a>(sql: &'a str, binds: &'a [Bind], stable: bool) -> Shaped<'a> {
    Shaped {
        sql,
        binds,
        cache: admitted(sql, stable),
    }
}

/// A write, or a lookup a write makes, whose plan suits every value (rows from arrays, probes
/// by key): prepared once it recurs, unless prepared statements are off.
pub(crate) fn shaped_write<'a>(sql: &'a str, binds: &'a [Bind]) -> Shaped<'a> {
    Shaped {
        sql,
        binds,
        cache: binds.len() <= MAX_WRITE_BINDS && write_admitted(sql),
    }
}

impl QueryId for Shaped<'_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for Shaped<'_> {
    type SqlType = Untyped;
}

impl RunQueryDsl<PgConnection> for Shaped<'_> {}

impl QueryFragment<Pg> for Shaped<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        if !self.cache {
            out.unsafe_to_cache_prepared();
        }
        // The text holds `$n` placeholders already; the binds follow in their order.
        out.push_sql(self.sql);
        for b in self.binds {
            match b {
                Bind::Text(v) => out.push_bind_param_value_only::<Text, _>(v)?,
                Bind::OptText(v) => out.push_bind_param_value_only::<Nullable<Text>, _>(v)?,
                Bind::Int(v) => out.push_bind_param_value_only::<Integer, _>(v)?,
                Bind::BigInt(v) => out.push_bind_param_value_only::<BigInt, _>(v)?,
                Bind::OptTime(v) => {
                    out.push_bind_param_value_only::<Nullable<Timestamptz>, _>(v)?
                }
                Bind::TextArray(v) => out.push_bind_param_value_only::<Array<Text>, _>(v)?,
                Bind::BigIntArray(v) => out.push_bind_param_value_only::<Array<BigInt>, _>(v)?,
                Bind::OptTextArray(v) => {
                    out.push_bind_param_value_only::<Array<Nullable<Text>>, _>(v)?
                }
                Bind::OptTimeArray(v) => {
                    out.push_bind_param_value_only::<Array<Nullable<Timestamptz>>, _>(v)?
                }
                Bind::Bool(v) => out.push_bind_param_value_only::<Bool, _>(v)?,
                Bind::Bytes(v) => out.push_bind_param_value_only::<Bytea, _>(v)?,
                Bind::OptBytes(v) => out.push_bind_param_value_only::<Nullable<Bytea>, _>(v)?,
                Bind::BytesArray(v) => out.push_bind_param_value_only::<Array<Bytea>, _>(v)?,
                Bind::OptBytesArray(v) => {
                    out.push_bind_param_value_only::<Array<Nullable<Bytea>>, _>(v)?
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shape_is_prepared_from_its_third_sighting_and_the_number_of_shapes_is_bounded() {
        let _serial = TEST_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        forget_shapes();
        set_prepared_searches(PreparedSearches::All);
        let shape = "SELECT 1 WHERE $1 = 'shape-test-a'";
        assert!(!admitted(shape, false));
        assert!(!admitted(shape, false));
        assert!(admitted(shape, false));
        assert!(admitted(shape, false));
        let mut admitted_now = 0;
        for i in 0..(MAX_SHAPES * 2) {
            let s = format!("SELECT {i} WHERE $1 = 'shape-test-b'");
            for _ in 0..ADMIT_AFTER {
                if admitted(&s, true) {
                    admitted_now += 1;
                }
            }
        }
        assert!(admitted_now < MAX_SHAPES, "{admitted_now}");
        assert!(admitted(shape, false), "an admitted shape stays admitted");
        set_prepared_searches(PreparedSearches::Stable);
        assert!(
            !admitted(shape, false),
            "by default only stable statements are prepared"
        );
        assert!(admitted(shape, true));
        forget_shapes();
    }
}

#[cfg(test)]
mod write_tests {
    //! Against the PostgreSQL of `INVICTA_TEST_ADMIN_URL`, like the crate's database tests
    //! (fails, never skips, without it).

    use std::time::Duration;

    use diesel::sql_types::{BigInt, Text};
    use diesel::QueryableByName;

    use super::*;
    use crate::test_db as common;
    use crate::{Store, StoreConfig, WriteContext};

    #[derive(QueryableByName)]
    struct Prepared {
        #[diesel(sql_type = Text)]
        statement: String,
        #[diesel(sql_type = BigInt)]
        runs: i64,
    }

    /// The prepared statements of the store's one connection, with how often each ran.
    fn prepared(store: &Store) -> Vec<(String, i64)> {
        let mut conn = store.conn().unwrap();
        let rows: Vec<Prepared> = diesel::sql_query(
            "SELECT statement, (generic_plans + custom_plans)::bigint AS runs \
             FROM pg_prepared_statements",
        )
        .load(&mut *conn)
        .unwrap();
        rows.into_iter().map(|p| (p.statement, p.runs)).collect()
    }

    fn runs_of(statements: &[(String, i64)], text: &str) -> i64 {
        statements
            .iter()
            .filter(|(s, _)| s.contains(text))
            .map(|(_, n)| *n)
            .sum()
    }

    fn store_of(url: &str) -> Store {
        Store::connect(&StoreConfig {
            database_url: url.to_string(),
            // One connection, so every write below is on the one inspected.
            pool_size: 1,
            connect_timeout: Duration::from_secs(10),
            statement_timeout: None,
        })
        .unwrap()
    }

    fn create_observations(store: &Store, n: usize) {
        let ctx = WriteContext::default();
        for i in 0..n {
            let obs = serde_json::json!({"resourceType": "Observation", "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                "subject": {"reference": "Patient/p1"},
                "effectiveDateTime": format!("2026-01-0{}", i + 1)});
            store.create("Observation", obs, None, &ctx).unwrap();
        }
    }

    #[test]
    fn recurring_writes_run_prepared_in_their_own_bound_and_not_when_preparing_is_off() {
        let _serial = TEST_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        forget_shapes();
        let db = common::TestDb::create("prepared_writes");
        let store = store_of(&db.url);
        store.migrate().unwrap();
        create_observations(&store, 5);
        let statements = prepared(&store);
        // Admitted at the third sighting: the third to fifth creates ran prepared.
        for text in [
            "INSERT INTO resource (",
            "INSERT INTO resource_history",
            "INSERT INTO idx_token",
        ] {
            assert!(
                runs_of(&statements, text) >= 3,
                "'{text}' did not run as a prepared statement: {statements:?}"
            );
        }
        assert_eq!(admitted_searches(), 0, "writes took the searches' room");

        // Off is for poolers that cannot keep a session's statements: nothing is prepared.
        set_prepared_searches(PreparedSearches::Off);
        forget_shapes();
        let unprepared = store_of(&db.url);
        create_observations(&unprepared, 5);
        let statements = prepared(&unprepared);
        set_prepared_searches(PreparedSearches::Stable);
        assert_eq!(
            runs_of(&statements, "INSERT INTO"),
            0,
            "a write was prepared with prepared statements off: {statements:?}"
        );
        forget_shapes();
    }
}
