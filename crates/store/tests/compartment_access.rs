//! A search confined to a patient's compartment looks that patient's relationship up once per
//! statement (`RelationshipRule::anchor`) instead of once per row. The shortcut must not
//! change what the rule admits: a row that also names an unrelated patient stays hidden, and
//! nothing of an unrelated patient's compartment shows, whether the search is a compartment
//! search, `$everything`'s (with what the record refers to) or a timeline. Needs the PostgreSQL
//! of `INVICTA_TEST_ADMIN_URL` and fails, never skips, without it.

use std::time::Duration;

use diesel::{Connection, PgConnection, RunQueryDsl};
use serde_json::json;
use store::{
    Access, RelationshipRule, ResourceQuery, SortColumn, SortKey, Store, StoreConfig, WriteContext,
};

mod common;
use common::TestDb;

const ORG: &str = "A81001";

fn query(compartment: &str, referenced_from: bool, timeline: bool) -> ResourceQuery {
    let types: Vec<String> = ["Patient", "Observation", "Organization"]
        .iter()
        .map(|t| t.to_string())
        .collect();
    ResourceQuery {
        types: if timeline {
            vec!["Observation".into()]
        } else {
            types
        },
        compartment: Some(compartment.into()),
        referenced_from: referenced_from.then(|| vec!["Patient".into(), "Observation".into()]),
        filter: None,
        sort: if timeline {
            vec![SortKey {
                column: SortColumn::EventDate,
                descending: true,
            }]
        } else {
            Vec::new()
        },
        after: None,
        backward: false,
        snapshot: None,
        limit: 50,
        count_total: true,
        access: Some(Access {
            relationship: Some(RelationshipRule {
                org: ORG.into(),
                launch_patient: None,
                anchor: None,
            }),
            ..Access::default()
        }),
        stable_plan: true,
    }
}

fn ids(store: &Store, q: &ResourceQuery) -> (Vec<String>, Option<i64>, bool) {
    let page = store.query_resources(q).expect("search");
    let mut ids: Vec<String> = page
        .rows
        .iter()
        .map(|r| format!("{}/{}", r.res_type, r.id))
        .collect();
    ids.sort();
    (ids, page.total, page.withheld)
}

#[test]
fn the_anchor_shortcut_admits_what_the_relationship_rule_admits() {
    let db = TestDb::create("compartment_access");
    let store = Store::connect(&StoreConfig {
        database_url: db.url.clone(),
        pool_size: 2,
        connect_timeout: Duration::from_secs(10),
        statement_timeout: None,
    })
    .expect("connect");
    store.migrate().expect("migrate");
    let ctx = WriteContext::default();
    let put = |t: &str, id: &str, body: serde_json::Value| {
        store.update(t, id, body, None, &ctx).expect("write");
    };
    put(
        "Organization",
        "practice",
        json!({"resourceType": "Organization", "name": "practice"}),
    );
    for p in ["p1", "p2"] {
        put(
            "Patient",
            p,
            json!({"resourceType": "Patient",
                   "generalPractitioner": [{"reference": "Organization/practice"}]}),
        );
    }
    let obs = |subject: &str, performer: Option<&str>| {
        let mut v = json!({"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
            "subject": {"reference": format!("Patient/{subject}")},
            "effectiveDateTime": "2026-01-01T10:00:00Z"});
        if let Some(p) = performer {
            v["performer"] = json!([{"reference": format!("Patient/{p}")}]);
        }
        v
    };
    put("Observation", "o1", obs("p1", None));
    // In both compartments: hidden from an organisation related to p1 alone.
    put("Observation", "shared", obs("p1", Some("p2")));
    put("Observation", "o2", obs("p2", None));
    let mut conn = PgConnection::establish(&db.url).expect("connect");
    diesel::sql_query(format!(
        "INSERT INTO care_relationship (patient_id, org_code, kind) \
         VALUES ('p1', '{ORG}', 'registered-gp')"
    ))
    .execute(&mut conn)
    .expect("relationship");

    let (got, total, withheld) = ids(&store, &query("p1", false, false));
    assert_eq!(got, ["Observation/o1", "Patient/p1"]);
    assert_eq!(total, Some(2));
    assert!(withheld, "the shared Observation was withheld by the rule");

    let (got, total, _) = ids(&store, &query("p1", true, false));
    assert_eq!(
        got,
        ["Observation/o1", "Organization/practice", "Patient/p1"]
    );
    assert_eq!(total, Some(3));

    let (got, _, _) = ids(&store, &query("p1", false, true));
    assert_eq!(got, ["Observation/o1"]);

    for (refs, timeline) in [(false, false), (true, false), (false, true)] {
        let (got, total, withheld) = ids(&store, &query("p2", refs, timeline));
        assert!(got.is_empty(), "p2 is unrelated: {got:?}");
        assert_eq!(total, Some(0));
        // `$everything`'s set is built from the visible members alone (the operation refuses
        // an unrelated patient before it searches), so only the others can tell.
        assert!(
            withheld || refs,
            "p2's record was withheld ({refs}, {timeline})"
        );
    }

    // Once related, p2's record shows, the shared Observation in both.
    diesel::sql_query(format!(
        "INSERT INTO care_relationship (patient_id, org_code, kind) \
         VALUES ('p2', '{ORG}', 'registered-gp')"
    ))
    .execute(&mut conn)
    .expect("relationship");
    let (got, _, withheld) = ids(&store, &query("p1", false, false));
    assert_eq!(got, ["Observation/o1", "Observation/shared", "Patient/p1"]);
    assert!(!withheld);
    let (got, _, _) = ids(&store, &query("p2", false, true));
    assert_eq!(got, ["Observation/o2", "Observation/shared"]);
}
