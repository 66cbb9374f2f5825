//! The move from the earlier layout of the audit trail (AuditEvents as resources with history
//! and index rows, plus a journal of events not yet projected) to the `audit_event` table, on a
//! database built by the migrations before it and holding data in that layout. Needs the
//! PostgreSQL of `INVICTA_TEST_ADMIN_URL`; fails, never skips, without it.

mod common;

use std::time::Duration;

use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl};
use diesel_migrations::{FileBasedMigrations, MigrationHarness};
use store::audit_keys::{is_routine, reference_key, token_code_key};
use store::{Access, AuditRow, Bind, Filter, ResourceQuery, Store, StoreConfig};

use common::TestDb;

/// The last migration of the earlier layout.
const BEFORE: &str = "2026-12-02-000014";

#[derive(QueryableByName)]
struct N {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

fn count(conn: &mut PgConnection, sql: &str) -> i64 {
    diesel::sql_query(sql).get_result::<N>(conn).unwrap().n
}

fn event(id: &str, patient: &str, request: &str) -> String {
    format!(
        r#"{{"resourceType":"AuditEvent","id":"{id}","meta":{{"versionId":"1","lastUpdated":"2026-11-20T10:00:00.000Z"}},"type":{{"system":"http://terminology.hl7.org/CodeSystem/audit-event-type","code":"rest"}},"action":"R","recorded":"2026-11-20T10:00:00Z","outcome":"0","agent":[{{"who":{{"identifier":{{"system":"https://u","value":"dr-1"}}}},"requestor":true}}],"source":{{"observer":{{"display":"Invicta"}}}},"entity":[{{"what":{{"reference":"Patient/{patient}"}}}},{{"what":{{"identifier":{{"system":"https://invicta.example.org/fhir/Id/request-id","value":"{request}"}}}}}}]}}"#
    )
}

/// Runs the migrations up to and including `last`.
fn migrate_to(conn: &mut PgConnection, last: &str) {
    let migrations =
        FileBasedMigrations::find_migrations_directory_in_path(env!("CARGO_MANIFEST_DIR")).unwrap();
    loop {
        let pending = conn.pending_migrations(migrations.clone()).unwrap();
        let Some(next) = pending.first() else {
            panic!("migration {last} not found");
        };
        let name = next.name().to_string();
        conn.run_migration(next.as_ref()).unwrap();
        if name.starts_with(last) {
            return;
        }
    }
}

fn connect(url: &str) -> Store {
    Store::connect(&StoreConfig {
        database_url: url.to_string(),
        pool_size: 2,
        connect_timeout: Duration::from_secs(10),
        statement_timeout: None,
    })
    .unwrap()
}

/// AuditEvents found by `sql` over the audit row `r` (`$1` is the searched types, as the
/// search crate's filters have it; `binds` follow).
fn audit_total(store: &Store, sql: &str, binds: Vec<Bind>) -> Option<i64> {
    let mut all = vec![Bind::TextArray(vec!["AuditEvent".into()])];
    all.extend(binds);
    store
        .query_resources(&ResourceQuery {
            types: vec!["AuditEvent".into()],
            compartment: None,
            referenced_from: None,
            filter: Some(Filter {
                sql: sql.into(),
                binds: all,
            }),
            sort: Vec::new(),
            after: None,
            backward: false,
            snapshot: None,
            limit: 10,
            count_total: true,
            access: None,
            stable_plan: false,
        })
        .unwrap()
        .total
}

#[test]
fn routine_keys_are_found_in_rows_written_before_and_after_they_left_the_index() {
    let db = TestDb::create("audit_routine");
    let mut conn = PgConnection::establish(&db.url).unwrap();
    migrate_to(&mut conn, "2026-12-03-000015");
    // An event as the server before the split stored it: every key under the index.
    let read = token_code_key("action", "R");
    let p1 = reference_key("patient", "Patient/p1");
    diesel::sql_query(
        "CREATE TABLE audit_event_2026_11 PARTITION OF audit_event \
         FOR VALUES FROM ('2026-11-01T00:00:00Z') TO ('2026-12-01T00:00:00Z')",
    )
    .execute(&mut conn)
    .unwrap();
    let body = event("old-1", "p1", "req-old");
    diesel::sql_query(format!(
        "INSERT INTO audit_event (id, last_updated, recorded, body, compartments, sec_labels, keys) \
         VALUES ('old-1', '2026-11-20T10:00:00Z', '2026-11-20T10:00:00Z', \
         convert_to($${body}$$, 'UTF8'), ARRAY['p1'], '{{}}', ARRAY['{read}', '{p1}'])"
    ))
    .execute(&mut conn)
    .unwrap();

    let store = connect(&db.url);
    store.migrate().unwrap();
    let fresh: serde_json::Value = serde_json::from_str(&event("unused", "p1", "req-new")).unwrap();
    store
        .audit_writer()
        .write(vec![AuditRow::new(fresh).unwrap()])
        .unwrap();

    #[derive(QueryableByName)]
    struct Keys {
        #[diesel(sql_type = diesel::sql_types::Array<diesel::sql_types::Text>)]
        keys: Vec<String>,
        #[diesel(sql_type = diesel::sql_types::Array<diesel::sql_types::Text>)]
        routine: Vec<String>,
    }
    let new: Keys = diesel::sql_query("SELECT keys, routine FROM audit_event WHERE id <> 'old-1'")
        .get_result(&mut conn)
        .unwrap();
    assert!(new.routine.contains(&read), "{:?}", new.routine);
    assert!(new.routine.iter().all(|k| is_routine(k)));
    assert!(new.keys.contains(&p1) && !new.keys.iter().any(|k| is_routine(k)));

    // Every partition's key index has no pending list: the one that existed before, set by the
    // migration, and this month's, made by the writer.
    #[derive(QueryableByName)]
    struct Gin {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        all: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        off: i64,
    }
    let gin: Gin = diesel::sql_query(
        "SELECT count(*) AS all, count(*) FILTER (WHERE c.reloptions @> '{fastupdate=off}') AS off \
         FROM pg_inherits h JOIN pg_index i ON i.indrelid = h.inhrelid \
         JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam \
         WHERE h.inhparent = 'audit_event'::regclass AND a.amname = 'gin'",
    )
    .get_result(&mut conn)
    .unwrap();
    assert!(
        gin.all >= 2 && gin.off == gin.all,
        "{} of {}",
        gin.off,
        gin.all
    );

    // The condition the search crate compiles a routine value to finds both rows.
    let routine_and_patient = "(r.routine && $2 OR r.keys && $2) AND r.keys @> $3";
    assert_eq!(
        audit_total(
            &store,
            routine_and_patient,
            vec![
                Bind::TextArray(vec![read.clone()]),
                Bind::TextArray(vec![p1.clone()])
            ]
        ),
        Some(2)
    );
    let delete = token_code_key("action", "D");
    assert_eq!(
        audit_total(
            &store,
            "(r.keys && $2)",
            vec![Bind::TextArray(vec![delete])]
        ),
        Some(0)
    );
}

#[test]
fn audit_events_of_the_earlier_layout_move_into_the_audit_trail_whole() {
    let db = TestDb::create("audit_move");
    let mut conn = PgConnection::establish(&db.url).unwrap();
    migrate_to(&mut conn, BEFORE);
    // Two AuditEvents as the earlier server stored them, a clinical resource beside them, and
    // one journal row not yet projected.
    let old = [("ae-1", "p1", "req-1"), ("ae-2", "p2", "req-2")];
    for (id, patient, request) in old {
        let body = event(id, patient, request);
        diesel::sql_query(format!(
            "WITH r AS (INSERT INTO resource (res_type, id, version, last_updated, body, compartments) \
             VALUES ('AuditEvent', '{id}', 1, '2026-11-20T10:00:00Z', convert_to($${body}$$, 'UTF8'), \
             ARRAY['{patient}']) RETURNING rid) \
             , h AS (INSERT INTO resource_history (rid, res_type, id, version, last_updated, deleted, method, body) \
             SELECT rid, 'AuditEvent', '{id}', 1, '2026-11-20T10:00:00Z', FALSE, 'POST', \
             convert_to($${body}$$, 'UTF8') FROM r) \
             INSERT INTO idx_reference (rid, res_type, param, target_type, target_id) \
             SELECT rid, 'AuditEvent', 'patient', 'Patient', '{patient}' FROM r"
        ))
        .execute(&mut conn)
        .unwrap();
    }
    diesel::sql_query(
        "INSERT INTO resource (res_type, id, version, last_updated, body) \
         VALUES ('Patient', 'p1', 1, now(), convert_to('{\"resourceType\":\"Patient\",\"id\":\"p1\"}', 'UTF8'))",
    )
    .execute(&mut conn)
    .unwrap();
    let journalled = event("unused", "p1", "req-3");
    diesel::sql_query(format!(
        "INSERT INTO audit_journal (body) VALUES (convert_to($${journalled}$$, 'UTF8'))"
    ))
    .execute(&mut conn)
    .unwrap();

    let store = connect(&db.url);
    store.migrate().unwrap();
    assert_eq!(store.move_legacy_audit().unwrap(), 3);
    assert_eq!(
        store.move_legacy_audit().unwrap(),
        0,
        "a second run has nothing to move"
    );

    for table in ["resource", "resource_history", "idx_reference"] {
        assert_eq!(
            count(
                &mut conn,
                &format!("SELECT count(*) AS n FROM {table} WHERE res_type = 'AuditEvent'")
            ),
            0,
            "{table}"
        );
    }
    assert_eq!(
        count(&mut conn, "SELECT count(*) AS n FROM audit_journal"),
        0
    );
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM resource WHERE res_type = 'Patient'"
        ),
        1,
        "the clinical record is left alone"
    );
    // Each moved event keeps its id and its bytes, and is found by its patient.
    let (stored, _) = store
        .read_checked("AuditEvent", "ae-1", None, &Access::default())
        .unwrap()
        .expect("ae-1 is readable");
    assert_eq!(
        String::from_utf8(stored.body.unwrap()).unwrap(),
        event("ae-1", "p1", "req-1")
    );
    let of_patient = |p: &str| {
        store
            .query_resources(&ResourceQuery {
                types: vec!["AuditEvent".into()],
                compartment: None,
                referenced_from: None,
                filter: Some(Filter {
                    sql: "r.keys @> $2".into(),
                    // `$1` is the searched types, as the search crate's filters have it.
                    binds: vec![
                        Bind::TextArray(vec!["AuditEvent".into()]),
                        Bind::TextArray(vec![reference_key("patient", &format!("Patient/{p}"))]),
                    ],
                }),
                sort: Vec::new(),
                after: None,
                backward: false,
                snapshot: None,
                limit: 10,
                count_total: true,
                access: None,
                stable_plan: false,
            })
            .unwrap()
    };
    let p1 = of_patient("p1");
    assert_eq!(p1.total, Some(2), "ae-1 and the journalled event");
    let ids: Vec<&str> = p1.rows.iter().map(|r| r.id.as_str()).collect();
    assert!(ids.contains(&"ae-1"), "{ids:?}");
    assert_eq!(of_patient("p2").total, Some(1));
    // A patient's own rules find their events by the compartment too.
    let patient_rules = Access {
        compartment: Some("p2".into()),
        ..Access::default()
    };
    assert!(store
        .read_checked("AuditEvent", "ae-2", None, &patient_rules)
        .unwrap()
        .is_some_and(|(_, v)| v == store::Visibility::Visible));
    assert!(store
        .read_checked("AuditEvent", "ae-1", None, &patient_rules)
        .unwrap()
        .is_some_and(|(_, v)| v == store::Visibility::Hidden));
}
