//! Which plans a pooled connection's parameterised statements get (`plan_cache_mode`).
//!
//! A stable search shape (`ResourceQuery::stable_plan`) was built so that one plan suits every
//! value, but under PostgreSQL's default (`auto`) a prepared statement keeps its generic plan
//! only when that plan's estimated cost is no higher than the custom plans' average, and for
//! these shapes it rarely is (an array of types and a row-id bound estimate worse without
//! their values): every execution was planned afresh, about three quarters of PostgreSQL's CPU
//! for an NHS-number lookup (`make bench-search`). So a session running a stable search sets
//! `force_generic_plan` on its connection. Every other statement must keep the default: a
//! one-off statement's binds are what its plan is made for. The mode is kept in the pooled
//! connection's extensions, so a connection changes mode only when its use does.

use diesel::RunQueryDsl;

use crate::error::StoreError;
use crate::pool::Conn;

/// The plan mode a connection is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PlanMode {
    /// The session's default (`RESET plan_cache_mode`): what the database is configured with.
    Default,
    /// `force_generic_plan`: for stable search shapes only.
    Generic,
    /// A change failed part way: the next use sets its mode whatever this says.
    Unknown,
}

/// Puts `conn` in `mode` (never [`PlanMode::Unknown`]), with one statement when it is in
/// another.
pub(crate) fn ensure(conn: &mut Conn, mode: PlanMode) -> Result<(), StoreError> {
    // A new connection has no mark: it is in the default mode.
    let current = Conn::extensions(conn)
        .get::<PlanMode>()
        .copied()
        .unwrap_or(PlanMode::Default);
    if current == mode {
        return Ok(());
    }
    let sql = match mode {
        PlanMode::Generic => "SET plan_cache_mode = force_generic_plan",
        PlanMode::Default | PlanMode::Unknown => "RESET plan_cache_mode",
    };
    Conn::extensions_mut(conn).insert(PlanMode::Unknown);
    diesel::sql_query(sql).execute(&mut **conn)?;
    Conn::extensions_mut(conn).insert(mode);
    Ok(())
}

#[cfg(test)]
mod tests {
    //! Against the PostgreSQL of `INVICTA_TEST_ADMIN_URL`, like the crate's database tests
    //! (fails, never skips, without it).

    use std::time::Duration;

    use diesel::sql_types::{BigInt, Text};
    use diesel::QueryableByName;

    use super::*;
    use crate::{ResourceQuery, Store, StoreConfig};

    use crate::test_db as common;

    #[derive(QueryableByName)]
    struct Setting {
        #[diesel(sql_type = Text)]
        mode: String,
    }

    #[derive(QueryableByName)]
    struct Plans {
        #[diesel(sql_type = BigInt)]
        generic: i64,
        #[diesel(sql_type = BigInt)]
        custom: i64,
    }

    fn mode(conn: &mut Conn) -> String {
        let rows: Vec<Setting> =
            diesel::sql_query("SELECT current_setting('plan_cache_mode') AS mode")
                .load(&mut **conn)
                .unwrap();
        rows[0].mode.clone()
    }

    /// Generic and custom plans made so far for the connection's search statements.
    fn search_plans(conn: &mut Conn) -> (i64, i64) {
        let rows: Vec<Plans> = diesel::sql_query(
            "SELECT COALESCE(SUM(generic_plans), 0)::bigint AS generic, \
             COALESCE(SUM(custom_plans), 0)::bigint AS custom \
             FROM pg_prepared_statements WHERE statement LIKE '%FROM resource r%'",
        )
        .load(&mut **conn)
        .unwrap();
        (rows[0].generic, rows[0].custom)
    }

    fn query(stable: bool) -> ResourceQuery {
        ResourceQuery {
            types: vec!["Patient".into()],
            compartment: None,
            referenced_from: None,
            filter: None,
            sort: Vec::new(),
            after: None,
            backward: false,
            snapshot: None,
            limit: 10,
            count_total: false,
            access: None,
            stable_plan: stable,
        }
    }

    #[test]
    fn stable_searches_run_on_generic_plans_and_leave_every_other_use_the_default() {
        // The search's shape must be admitted as a prepared statement: no other test may fill
        // the process's shapes meanwhile.
        let _serial = crate::shapes::TEST_LOCK
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        crate::shapes::forget_shapes();
        let db = common::TestDb::create("plan_mode");
        // One connection, so every use below is on the same one.
        let store = Store::connect(&StoreConfig {
            database_url: db.url.clone(),
            pool_size: 1,
            connect_timeout: Duration::from_secs(10),
            statement_timeout: None,
        })
        .unwrap();
        store.migrate().unwrap();
        let guard = store.cancel_guard();
        for _ in 0..8 {
            let mut session = store.session(&guard.token()).unwrap();
            session.query_resources(&query(true)).unwrap();
        }
        let mut conn = store.conn_any_plan_mode().unwrap();
        assert_eq!(mode(&mut conn), "force_generic_plan");
        let (generic, custom) = search_plans(&mut conn);
        assert!(
            generic > 0,
            "the prepared stable search ran on no generic plan"
        );
        assert_eq!(custom, 0, "a stable search was planned for its values");
        drop(conn);

        let mut conn = store.conn().unwrap();
        assert_eq!(mode(&mut conn), "auto", "a plain check-out has the default");
        drop(conn);

        let mut session = store.session(&guard.token()).unwrap();
        session.query_resources(&query(true)).unwrap();
        session.query_resources(&query(false)).unwrap();
        drop(session);
        let mut conn = store.conn_any_plan_mode().unwrap();
        assert_eq!(mode(&mut conn), "auto", "a search of no stable shape");
        guard.disarm();
    }

    /// The first page of a patient's whole record (`$everything`'s shape), counted.
    fn record_page(after: Option<crate::Cursor>) -> ResourceQuery {
        ResourceQuery {
            types: vec![
                "Patient".into(),
                "Observation".into(),
                "Organization".into(),
            ],
            compartment: Some("p1".into()),
            referenced_from: Some(vec!["Patient".into(), "Observation".into()]),
            limit: 2,
            count_total: true,
            after,
            ..query(false)
        }
    }

    #[test]
    fn a_records_first_page_runs_on_a_generic_plan_with_the_rows_its_values_give() {
        let _serial = crate::shapes::TEST_LOCK
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        crate::shapes::forget_shapes();
        let db = common::TestDb::create("plan_mode_record");
        let store = Store::connect(&StoreConfig {
            database_url: db.url.clone(),
            pool_size: 1,
            connect_timeout: Duration::from_secs(10),
            statement_timeout: None,
        })
        .unwrap();
        store.migrate().unwrap();
        let ctx = crate::WriteContext::default();
        let org = serde_json::json!({"resourceType": "Organization", "name": "Practice"});
        store.update("Organization", "o1", org, None, &ctx).unwrap();
        for p in ["p1", "p2"] {
            let patient = serde_json::json!({"resourceType": "Patient",
                "managingOrganization": {"reference": "Organization/o1"}});
            store.update("Patient", p, patient, None, &ctx).unwrap();
            for _ in 0..3 {
                let obs = serde_json::json!({"resourceType": "Observation", "status": "final",
                    "code": {"text": "x"}, "subject": {"reference": format!("Patient/{p}")}});
                store.create("Observation", obs, None, &ctx).unwrap();
            }
        }
        let guard = store.cancel_guard();
        let mut pages = Vec::new();
        for _ in 0..6 {
            let mut session = store.session(&guard.token()).unwrap();
            pages.push(session.query_resources(&record_page(None)).unwrap());
        }
        let mut conn = store.conn_any_plan_mode().unwrap();
        assert_eq!(mode(&mut conn), "force_generic_plan");
        let (generic, custom) = search_plans(&mut conn);
        assert!(
            generic > 0,
            "the record's first page ran on no generic plan"
        );
        assert_eq!(
            custom, 0,
            "the record's first page was planned for its values"
        );
        drop(conn);
        // p1's Patient, its three Observations and the Organization it refers to: five, of
        // which the page holds two; the last run (generic) gives what the first (custom) did.
        let (first, last) = (&pages[0], &pages[5]);
        assert_eq!(last.total, Some(5));
        assert!(last.more);
        let ids = |p: &crate::ResourcePage| -> Vec<String> {
            p.rows
                .iter()
                .map(|r| format!("{}/{}", r.res_type, r.id))
                .collect()
        };
        assert_eq!(ids(first), ids(last));
        // A later page is planned for its values, in the default mode.
        let rid = last.rows.last().unwrap().rid;
        let mut session = store.session(&guard.token()).unwrap();
        let next = session
            .query_resources(&ResourceQuery {
                snapshot: Some(last.snapshot),
                ..record_page(Some(crate::Cursor {
                    values: Vec::new(),
                    rid,
                }))
            })
            .unwrap();
        drop(session);
        assert_eq!(next.rows.len(), 2);
        let mut conn = store.conn_any_plan_mode().unwrap();
        assert_eq!(mode(&mut conn), "auto", "a later page of the record");
        guard.disarm();
    }
}
