//! `Store::transaction` against a real PostgreSQL: a caller's own error type rolls back and comes
//! out unchanged. Like the end-to-end tests, this needs the PostgreSQL of `INVICTA_TEST_ADMIN_URL`
//! (default `postgres://postgres@127.0.0.1:5432/postgres`) and fails, never skips, without it; it
//! works in a database of its own, dropped at the end.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use fhir_model::AuditAction;
use serde_json::json;
use store::{Change, Store, StoreConfig, StoreError, WriteContext};

mod common;
use common::TestDb;

fn store(db: &TestDb) -> Store {
    let store = Store::connect(&StoreConfig {
        database_url: db.url.clone(),
        pool_size: 2,
        connect_timeout: Duration::from_secs(10),
        statement_timeout: None,
    })
    .expect("connect");
    store.migrate().expect("migrate");
    store
}

/// How many AuditEvents the audit trail holds.
fn audit_count(store: &Store) -> i64 {
    let q = store::ResourceQuery {
        types: vec!["AuditEvent".into()],
        compartment: None,
        referenced_from: None,
        filter: None,
        sort: Vec::new(),
        after: None,
        backward: false,
        snapshot: None,
        limit: 0,
        count_total: true,
        access: None,
        stable_plan: false,
    };
    store.query_resources(&q).unwrap().total.unwrap()
}

/// A caller's error type that knows nothing of diesel.
#[derive(Debug)]
enum CallerError {
    Mine(u32),
    Store(StoreError),
}

impl From<StoreError> for CallerError {
    fn from(e: StoreError) -> Self {
        CallerError::Store(e)
    }
}

/// A write context whose audit hook remembers the actions it was shown and journals one event
/// per change, so a rollback can be seen to take the audit rows with it.
fn audited(seen: Arc<Mutex<Vec<AuditAction>>>) -> WriteContext {
    WriteContext {
        audit: Some(Arc::new(move |changes: &[Change]| {
            let mut seen = seen.lock().unwrap();
            changes
                .iter()
                .map(|c| {
                    seen.push(c.action);
                    let event = json!({"resourceType": "AuditEvent", "action": c.action.code()});
                    store::AuditRow::new(event).expect("an audit row")
                })
                .collect::<Vec<_>>()
        })),
        ..WriteContext::default()
    }
}

#[test]
fn a_callers_error_rolls_back_and_comes_out_unchanged() {
    let db = TestDb::create("tx");
    let store = store(&db);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let ctx = audited(seen.clone());
    let patient = json!({"resourceType": "Patient", "active": true});

    // The caller's own failure, after a write: nothing stays, the error is the caller's.
    let out: Result<(), CallerError> = store.transaction(|tx| {
        tx.create_with_id("Patient", "rolled-back", patient.clone(), &ctx)?;
        tx.flush()?;
        Err(CallerError::Mine(7))
    });
    assert!(matches!(out, Err(CallerError::Mine(7))), "{out:?}");
    assert!(store.read("Patient", "rolled-back").unwrap().is_none());

    // A store failure inside the closure reaches the caller through `From<StoreError>`.
    let out: Result<(), CallerError> = store.transaction(|tx| {
        tx.create_with_id("Patient", "twice", patient.clone(), &ctx)?;
        tx.create_with_id("Patient", "twice", patient.clone(), &ctx)?;
        Ok(())
    });
    assert!(
        matches!(out, Err(CallerError::Store(StoreError::Conflict(_)))),
        "{out:?}"
    );
    assert!(store.read("Patient", "twice").unwrap().is_none());
    assert_eq!(
        audit_count(&store),
        0,
        "rolled-back writes store no AuditEvents"
    );

    // Success commits, audit included; the store's own error type still works unchanged.
    let written = store
        .transaction(|tx| -> Result<_, CallerError> {
            Ok(tx.create_with_id("Patient", "kept", patient.clone(), &ctx)?)
        })
        .unwrap();
    assert_eq!(written.version, 1);
    assert!(store.read("Patient", "kept").unwrap().is_some());
    let deleted = store.delete("Patient", "kept", &ctx).unwrap();
    assert_eq!(deleted, 2);
    assert_eq!(audit_count(&store), 2);
    assert_eq!(
        *seen.lock().unwrap(),
        [
            AuditAction::Create,
            AuditAction::Create,
            AuditAction::Delete
        ],
        "the hook ran at each flush, the rolled-back one included; its events went with it"
    );
}
