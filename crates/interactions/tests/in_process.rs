//! The interaction layer driven in process, without HTTP: a real PostgreSQL database of its
//! own, the shipped role policy, and callers as the gate would make them. The same functions
//! serve the REST handlers, Bundle entries and `invicta load`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use authz::audit::AuditRecord;
use authz::{Emergency, Interaction, Policy};
use interactions::read::ReadRequest;
use interactions::search::SearchRequest;
use interactions::{
    authorize, write, Caller, ErrorKind, Outcome, Output, Prefer, Services, Settings,
};
use serde_json::{json, Value};
use store::{Store, StoreConfig};

mod common;
use common::TestDatabase;

/// A test's own database, dropped when the test ends.
struct Db {
    services: Services,
    _database: TestDatabase,
}

impl std::ops::Deref for Db {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.services
    }
}

/// A fresh database of this test's own, migrated; fails loudly when PostgreSQL is missing.
fn services() -> Db {
    let database = TestDatabase::create("interactions");
    let store = Store::connect(&StoreConfig {
        database_url: database.url.clone(),
        pool_size: 4,
        connect_timeout: Duration::from_secs(10),
        statement_timeout: Some(Duration::from_secs(10)),
    })
    .expect("connect");
    store.migrate().expect("migrate");
    let settings = Settings {
        base_url: "http://invicta.test/fhir".into(),
        issuer: "http://invicta.test/fhir".into(),
        auth_base: "http://localhost/auth".into(),
        bundle_max_entries: 100,
        delete_multiple: false,
        search_default_count: 20,
        search_max_count: 100,
        search_explain: false,
        cursor_key: search::CursorKey::from_secret(b"in-process tests"),
        audit: true,
        profiles: interactions::conformance::Enforcement::Warn,
    };
    let policy = Policy::from_json(authz::policy::DEFAULT_POLICY).expect("the shipped policy");
    Db {
        services: Services::new(store, settings, Arc::new(policy)),
        _database: database,
    }
}

/// Token numbers of the callers made here, one each.
static TOKENS: AtomicUsize = AtomicUsize::new(0);

/// A caller as the gate makes one from verified claims.
fn caller(services: &Services, claims: Value) -> Caller {
    let claims = claims.as_object().unwrap().clone();
    let principal = authz::from_claims(&claims, &services.policy, "role").expect("a principal");
    Caller::new(
        Some(Arc::new(principal)),
        TOKENS.fetch_add(1, Ordering::SeqCst) as u64,
        None,
        Emergency::default(),
        AuditRecord::default(),
    )
}

fn feed(services: &Services) -> Caller {
    caller(
        services,
        json!({"sub": "feed", "role": "feed", "scope": "system/*.crus", "org": "RX1"}),
    )
}

fn resource(outcome: Outcome) -> Value {
    match outcome {
        Outcome::Resource { body, .. } => serde_json::from_slice(&body).unwrap(),
        _ => panic!("not a resource outcome"),
    }
}

fn patient(id: &str) -> Value {
    json!({"resourceType": "Patient", "id": id, "name": [{"family": "Okafor"}],
        "birthDate": "1980-02-03"})
}

#[tokio::test]
async fn create_read_and_search_without_http() {
    let s = services();
    let c = feed(&s);
    let auth = authorize(&s, &c, Some("Patient"), Interaction::Update).unwrap();
    let written = write::update(&s, &auth, "Patient", "p1", patient("p1"), None)
        .await
        .unwrap();
    let Outcome::Resource { status, meta, .. } = &written else {
        panic!("a written version")
    };
    assert_eq!((*status, meta.version), (201, 1));
    assert!(
        c.audit.borrow().recorded,
        "a write stores its audit record itself"
    );

    let auth = authorize(&s, &c, Some("Patient"), Interaction::Read).unwrap();
    let read = ReadRequest {
        res_type: "Patient".into(),
        id: "p1".into(),
        ..Default::default()
    };
    let got = resource(interactions::read::read(&s, &auth, &read).await.unwrap());
    assert_eq!(got["name"][0]["family"], "Okafor");
    assert_eq!(got["meta"]["versionId"], "1");
    let current = ReadRequest {
        if_none_match: Some("W/\"1\"".into()),
        ..read.clone()
    };
    assert!(matches!(
        interactions::read::read(&s, &auth, &current).await.unwrap(),
        Outcome::NotModified(_)
    ));
    let missing = ReadRequest {
        id: "nobody".into(),
        ..read
    };
    let err = interactions::read::read(&s, &auth, &missing)
        .await
        .err()
        .unwrap();
    assert_eq!((err.kind, err.status()), (ErrorKind::NotFound, 404));

    let auth = authorize(&s, &c, Some("Patient"), Interaction::Search).unwrap();
    let request = SearchRequest {
        types: vec!["Patient".into()],
        params: vec![("family".into(), "okafor".into())],
        self_base: "http://invicta.test/fhir/Patient".into(),
        ..Default::default()
    };
    let Outcome::SearchSet(set) =
        interactions::search::search(&s, &auth, request, &Output::default())
            .await
            .unwrap()
    else {
        panic!("a searchset")
    };
    let bundle = set.to_value(&Output::default()).unwrap();
    assert_eq!(bundle["entry"][0]["resource"]["id"], "p1");
    assert_eq!(bundle["link"][0]["relation"], "self");
    // The spliced rendering and the parsed one are the same Bundle.
    let spliced: Value = serde_json::from_slice(&set.render(&Output::default()).unwrap()).unwrap();
    assert_eq!(spliced, bundle);
}

#[tokio::test]
async fn a_transaction_is_all_or_nothing() {
    let s = services();
    let c = feed(&s);
    let bundle = |second: Value| {
        json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"fullUrl": "urn:uuid:1", "resource": patient("t1"),
             "request": {"method": "PUT", "url": "Patient/t1"}},
            second,
        ]})
    };
    let bad = json!({"resource": {"resourceType": "Observation", "status": "final",
        "code": {"text": "x"}, "subject": {"reference": "Patient?identifier=nobody|1"}},
        "request": {"method": "POST", "url": "Observation"}});
    let err = interactions::transaction::process(&s, &c, bundle(bad), Prefer::default())
        .await
        .err()
        .expect("an unresolvable conditional reference fails the transaction");
    assert_eq!(err.status(), 412);
    assert!(
        err.issues[0].diagnostics.starts_with("Bundle.entry[1]"),
        "{}",
        err.message()
    );
    let auth = authorize(&s, &c, Some("Patient"), Interaction::Read).unwrap();
    let t1 = ReadRequest {
        res_type: "Patient".into(),
        id: "t1".into(),
        ..Default::default()
    };
    assert!(
        interactions::read::read(&s, &auth, &t1).await.is_err(),
        "nothing of a failed transaction is kept"
    );

    let good = json!({"resource": {"resourceType": "Observation", "status": "final",
        "code": {"text": "x"}, "subject": {"reference": "urn:uuid:1"}},
        "request": {"method": "POST", "url": "Observation"}});
    let Outcome::Bundle(response) =
        interactions::transaction::process(&s, &c, bundle(good), Prefer::default())
            .await
            .unwrap()
    else {
        panic!("a transaction-response")
    };
    let response = response.to_value(&Output::default()).unwrap();
    assert_eq!(response["type"], "transaction-response");
    assert_eq!(response["entry"][0]["response"]["status"], "201 Created");
    assert_eq!(
        response["entry"][1]["resource"]["subject"]["reference"], "Patient/t1",
        "fullUrl references are rewritten to what the transaction wrote"
    );
}

#[tokio::test]
async fn a_role_without_the_interaction_is_refused_before_any_work() {
    let s = services();
    let c = caller(
        &s,
        json!({"sub": "r", "role": "receptionist", "scope": "user/*.cruds", "org": "A81001"}),
    );
    let err = authorize(&s, &c, Some("Condition"), Interaction::Read)
        .err()
        .expect("a receptionist reads no Condition");
    assert_eq!((err.kind, err.status()), (ErrorKind::Forbidden, 403));
    assert!(
        c.audit.borrow().record.outcome_desc.is_some(),
        "the refusal is in the audit record"
    );
}
