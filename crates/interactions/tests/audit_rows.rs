//! The audit trail's narrow rows against the events authz builds: every shape of record the
//! request path writes is stored both ways (the whole event, as before, and its facts) in a
//! real PostgreSQL, and the `audit_resource` view must serve the same AuditEvent, the same
//! access columns, and keys that find the same values.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use authz::audit::AuditRecord;
use authz::principal::Principal;
use fhir_model::{AuditAction, RestInteraction};
use serde_json::Value;
use store::audit_keys::keys_of;
use store::{AuditRow, Store, StoreConfig};

mod common;
use common::{psql, TestDatabase};

fn principal(fhir_user: Option<&str>, extras: bool) -> Arc<Principal> {
    Arc::new(Principal {
        subject: "user-1".into(),
        role: "gp".into(),
        org: extras.then(|| "G82984".into()),
        client_id: extras.then(|| "viewer".into()),
        jti: extras.then(|| "jti-1".into()),
        patient: None,
        fhir_user: fhir_user.map(str::to_string),
        name: extras.then(|| "Dr Á Jones".into()),
        scopes: vec![],
        purpose_of_use: None,
        break_glass_reason: None,
    })
}

/// Every shape of record the request path writes: with and without a caller, a FHIR user
/// (a practitioner, a patient, an absolute URL), patients, resources, a query, a failure,
/// break-glass and the sensitive flag.
fn records() -> Vec<AuditRecord> {
    let base = AuditRecord {
        interaction: RestInteraction::Read,
        action: AuditAction::Read,
        status: 200,
        request_id: "req-1".into(),
        recorded: "2026-12-04T10:00:00.123Z".into(),
        ..AuditRecord::default()
    };
    let mut out = vec![
        base.clone(),
        AuditRecord {
            status: 401,
            outcome_desc: Some("no token".into()),
            address: Some("10.0.0.7".into()),
            ..base.clone()
        },
    ];
    for (user, extras) in [
        (None, false),
        (Some("Practitioner/pr-1"), true),
        (Some("Patient/p-9"), false),
        (
            Some("https://fhir.example.org/fhir/Practitioner/pr-2"),
            true,
        ),
    ] {
        out.push(AuditRecord {
            principal: Some(principal(user, extras)),
            resource: Some("Observation/obs-1/_history/3".into()),
            patients: vec!["p-1".into()],
            address: extras.then(|| "127.0.0.1".into()),
            ..base.clone()
        });
        out.push(AuditRecord {
            principal: Some(principal(user, extras)),
            interaction: RestInteraction::SearchType,
            action: AuditAction::Execute,
            query: Some("Observation?subject=p-1&code=x".into()),
            patients: vec!["p-1".into(), "p-2".into()],
            purpose: Some("BTG".into()),
            review_reason: Some("collapsed in clinic".into()),
            sensitive: true,
            status: 500,
            ..base.clone()
        });
        out.push(AuditRecord {
            principal: Some(principal(user, extras)),
            interaction: RestInteraction::Transaction,
            action: AuditAction::Update,
            resource: Some("Patient/p-1/_history/2".into()),
            more_resources: vec!["Condition/c-1/_history/1".into()],
            status: 403,
            ..base.clone()
        });
    }
    // A history query long enough that PostgreSQL's base64 would break its lines, with text
    // JSON escapes; a caller whose name needs escaping.
    out.push(AuditRecord {
        principal: Some(principal(Some("Patient/p-3"), true)),
        interaction: RestInteraction::HistoryType,
        query: Some(format!(
            "Patient/_history?_since=2026-01-01&note=\"Ålander\"\\{}",
            "x".repeat(150)
        )),
        outcome_desc: Some("line one\nline \"two\"\t<b>".into()),
        status: 400,
        ..base.clone()
    });
    out
}

#[test]
fn index_entries_from_the_facts_give_the_keys_the_event_gives() {
    let mut compared = 0;
    for record in records() {
        for (body, e) in record.events().iter().zip(record.indexed_events()) {
            let from_json = keys_of(&fhir_model::index::extract(body));
            let from_facts = keys_of(&e.entries);
            assert_eq!(from_facts, from_json, "{body}");
            assert!(from_facts.1.is_some(), "the date is indexed: {body}");
            compared += 1;
        }
    }
    assert!(compared > 10);
}

/// What the view serves of every stored event, by row order.
fn served(url: &str) -> Vec<Value> {
    let json = psql(
        url,
        "SELECT coalesce(json_agg(json_build_object('body', convert_from(body, 'UTF8')::json, \
         'compartments', compartments, 'labels', sec_labels, 'org', org, 'recorded', recorded, \
         'keys', keys || routine, 'narrow', NOT whole, 'stored_keys', keys, \
         'agent_key', agent_key, 'user_sub', user_sub, 'request_id', request_id, \
         'flagged', flagged) ORDER BY rid), '[]') FROM audit_resource r",
    );
    match serde_json::from_str(&json).expect("JSON") {
        Value::Array(rows) => rows,
        other => panic!("not an array: {other}"),
    }
}

/// A narrow row's keys are not indexed: a search finds the row by what each key implies on
/// an indexed column (search::audit's anchors), which must therefore hold for every key.
fn assert_anchored(row: &Value) {
    use fhir_model::access::{AUDIT_FLAG_SYSTEM, REQUEST_ID_SYSTEM, USER_ID_SYSTEM};
    use store::audit_keys as k;
    let compartments = key_set(&row["compartments"]);
    for key in key_set(&row["stored_keys"]) {
        let parts: Vec<&str> = key.split(k::SEP).collect();
        let holds = match parts.as_slice() {
            ["patient" | "entity", target] if target.starts_with("Patient/") => {
                compartments.contains(&target["Patient/".len()..])
            }
            ["agent", _] => row["agent_key"] == key.as_str(),
            ["agent:identifier", s, v] if *s == USER_ID_SYSTEM => row["user_sub"] == *v,
            ["entity:identifier", v] => row["request_id"] == *v,
            ["entity:identifier", s, v] if *s == REQUEST_ID_SYSTEM => row["request_id"] == *v,
            ["_tag", "review"] => row["flagged"] == true,
            ["_tag", s, "review"] if *s == AUDIT_FLAG_SYSTEM => row["flagged"] == true,
            _ => true,
        };
        assert!(holds, "{key:?} is not anchored on {row}");
    }
    assert!(
        row["agent_key"].is_null()
            || key_set(&row["stored_keys"]).contains(row["agent_key"].as_str().unwrap()),
        "{row}"
    );
    // A `patient` search of narrow rows reads `compartments` alone: its ids are exactly the
    // ids of the row's `patient` keys.
    let patients: BTreeSet<String> = key_set(&row["stored_keys"])
        .into_iter()
        .filter_map(|key| {
            key.strip_prefix(&k::reference_key("patient", "Patient/"))
                .map(str::to_string)
        })
        .collect();
    assert_eq!(patients, compartments, "{row}");
}

fn key_set(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .expect("keys")
        .iter()
        .map(|k| k.as_str().expect("a key").to_string())
        .collect()
}

#[test]
fn a_narrow_row_serves_the_event_its_record_gives() {
    let db = TestDatabase::create("audit_rows");
    let store = Store::connect(&StoreConfig {
        database_url: db.url.clone(),
        pool_size: 2,
        connect_timeout: Duration::from_secs(10),
        statement_timeout: Some(Duration::from_secs(10)),
    })
    .expect("connect");
    store.migrate().expect("migrate");
    let records = records();
    let mut writer = store.audit_writer();
    for record in &records {
        let whole = record
            .indexed_events()
            .into_iter()
            .zip(record.events())
            .map(|(e, body)| AuditRow::indexed(body, &e.entries).expect("a row"))
            .collect();
        writer.write(whole).expect("whole events stored");
        writer
            .write(interactions::audit_rows::audit_rows(record))
            .expect("narrow rows stored");
    }
    let rows = served(&db.url);
    let mut compared = 0;
    let mut at = 0;
    for record in &records {
        let n = record.indexed_events().len();
        let (whole, narrow) = (&rows[at..at + n], &rows[at + n..at + 2 * n]);
        at += 2 * n;
        for (w, m) in whole.iter().zip(narrow) {
            assert_eq!(m["narrow"], true, "{m}");
            let (mut wb, mut mb) = (w["body"].clone(), m["body"].clone());
            for b in [&mut wb, &mut mb] {
                let o = b.as_object_mut().expect("an object");
                o.remove("id");
                o["meta"]
                    .as_object_mut()
                    .expect("meta")
                    .remove("lastUpdated");
            }
            assert_eq!(mb, wb, "served bodies differ");
            assert!(
                fhir_model::validate::validate_resource(&m["body"]).is_empty(),
                "{}",
                m["body"]
            );
            for column in ["compartments", "labels", "org", "recorded"] {
                assert_eq!(m[column], w[column], "{column} of {}", w["body"]);
            }
            // The view's routine keys may hold more (every value of a routine parameter); every
            // key of the whole event must be found on the narrow row.
            let (wk, mk) = (key_set(&w["keys"]), key_set(&m["keys"]));
            let missing: Vec<_> = wk.difference(&mk).collect();
            assert!(
                missing.is_empty(),
                "keys missing: {missing:?} of {}",
                w["body"]
            );
            assert_anchored(m);
            compared += 1;
        }
    }
    assert_eq!(at, rows.len());
    assert!(compared > 10);
    // A text column cannot hold NUL, which JSON carried escaped: the fact keeps the rest.
    let odd = AuditRecord {
        outcome_desc: Some("bad\0value".into()),
        status: 400,
        ..records[0].clone()
    };
    writer
        .write(interactions::audit_rows::audit_rows(&odd))
        .expect("a NUL does not fail the batch");
    let last = served(&db.url).pop().expect("a row");
    assert_eq!(last["body"]["outcomeDesc"], "bad\u{fffd}value");
    drop(store);
}
