//! The rows that belong to a resource row (its versions, search index rows and timeline rows)
//! carry no foreign key to `resource` (migration `rows_of_a_resource_without_foreign_keys`:
//! the checks cost a fifth of bulk loading), so the store's own writes must keep them whole.
//! Every kind of write, a rolled-back transaction and a forced reindex leave no such row
//! without its resource. Needs the PostgreSQL of `INVICTA_TEST_ADMIN_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`) and fails, never skips, without it.

use std::time::Duration;

use diesel::sql_types::{BigInt, Text};
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl};
use serde_json::json;
use store::{Store, StoreConfig, StoreError, WriteContext};

mod common;
use common::TestDb;

/// The tables whose rows belong to a resource row by `rid`.
const BELONGING: &[&str] = &[
    "resource_history",
    "idx_string",
    "idx_token",
    "idx_date",
    "idx_reference",
    "idx_quantity",
    "idx_number",
    "idx_uri",
    "idx_composite",
    "idx_timeline",
];

#[derive(QueryableByName)]
struct Orphans {
    #[diesel(sql_type = Text)]
    tbl: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
    #[diesel(sql_type = BigInt)]
    rows: i64,
}

/// For each belonging table: rows without their resource, and rows in all.
fn orphans(url: &str) -> Vec<(String, i64, i64)> {
    let mut conn = PgConnection::establish(url).expect("connect");
    BELONGING
        .iter()
        .map(|t| {
            let r: Vec<Orphans> = diesel::sql_query(format!(
                "SELECT '{t}' AS tbl, \
                 COUNT(*) FILTER (WHERE NOT EXISTS \
                   (SELECT 1 FROM resource r WHERE r.rid = x.rid))::bigint AS n, \
                 COUNT(*)::bigint AS rows FROM {t} x"
            ))
            .load(&mut conn)
            .expect("count");
            let r = r.into_iter().next().expect("one row");
            (r.tbl, r.n, r.rows)
        })
        .collect()
}

#[test]
fn no_write_leaves_a_row_without_its_resource() {
    let db = TestDb::create("resource_rows");
    let store = Store::connect(&StoreConfig {
        database_url: db.url.clone(),
        pool_size: 2,
        connect_timeout: Duration::from_secs(10),
        statement_timeout: None,
    })
    .expect("connect");
    store.migrate().expect("migrate");
    let ctx = WriteContext::default();
    let patient = |family: &str| {
        json!({"resourceType": "Patient", "name": [{"family": family}],
               "identifier": [{"system": "https://example.org/mrn", "value": family}],
               "birthDate": "1950-01-01"})
    };
    let observation = |p: &str| {
        json!({"resourceType": "Observation", "status": "final",
               "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
               "subject": {"reference": format!("Patient/{p}")},
               "effectiveDateTime": "2026-01-01T10:00:00Z",
               "valueQuantity": {"value": 13.2, "unit": "g/dL",
                                 "system": "http://unitsofmeasure.org", "code": "g/dL"}})
    };

    store
        .update("Patient", "p1", patient("Smith"), None, &ctx)
        .unwrap();
    store
        .update("Patient", "p1", patient("Smyth"), None, &ctx)
        .unwrap();
    let obs = store
        .create("Observation", observation("p1"), None, &ctx)
        .unwrap();
    store.delete("Observation", &obs.id, &ctx).unwrap();
    store
        .transaction(|tx| -> Result<(), StoreError> {
            tx.create_with_id("Patient", "p2", patient("Jones"), &ctx)?;
            tx.create("Observation", observation("p2"), None, &ctx)?;
            tx.create("Observation", observation("p2"), None, &ctx)?;
            Ok(())
        })
        .unwrap();
    // A transaction that fails after its rows were flushed takes them all back.
    let failed = store.transaction(|tx| -> Result<(), StoreError> {
        tx.create_with_id("Patient", "p3", patient("Brown"), &ctx)?;
        tx.create("Observation", observation("p3"), None, &ctx)?;
        tx.flush()?;
        tx.create_with_id("Patient", "p3", patient("Brown"), &ctx)?;
        Ok(())
    });
    assert!(matches!(failed, Err(StoreError::Conflict(_))), "{failed:?}");
    assert!(store.read("Patient", "p3").unwrap().is_none());
    store.ensure_index_current("forced", true).unwrap();

    let counts = orphans(&db.url);
    for (table, n, _) in &counts {
        assert_eq!(*n, 0, "{table} holds {n} rows whose resource row is gone");
    }
    // The writes above did write such rows, so the check looked at something.
    for table in [
        "resource_history",
        "idx_token",
        "idx_reference",
        "idx_timeline",
    ] {
        let rows = counts.iter().find(|c| c.0 == table).unwrap().2;
        assert!(
            rows > 0,
            "{table} is empty: the test wrote nothing to check"
        );
    }
}
