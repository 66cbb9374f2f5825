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

/// Most shapes that become prepared statements in one process.
pub const MAX_SHAPES: usize = 64;
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
    if !prepare {
        return false;
    }
    let mut h = DefaultHasher::new();
    sql.hash(&mut h);
    let key = h.finish();
    let mut guard = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    let r = guard.get_or_insert_with(Registry::default);
    if r.admitted.contains(&key) {
        return true;
    }
    if r.admitted.len() >= MAX_SHAPES {
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
