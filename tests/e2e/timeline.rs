//! `Patient/$timeline`: a person's events from several sources in clinical-date order, each
//! labelled with its date and source; `start`, `end`, `_type`, `_sort`, paging; the same access
//! rules as a search; the errors a client can provoke; the operation's definition.

use serde_json::{json, Value};

use crate::harness::{patient, Resp, Server};

const ODS: &str = "https://fhir.nhs.uk/Id/ods-organization-code";
const PRACTICE: &str = "G82984";
const TRUST: &str = "RWF";

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// Ids of a page's matches in order, with each entry's event date and source.
fn events(r: &Resp) -> Vec<(String, String, Option<String>)> {
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()["entry"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|e| e["search"]["mode"] == "match")
        .map(|e| {
            let label = &e["extension"][0];
            assert_eq!(
                label["url"],
                "https://invicta.example.org/fhir/StructureDefinition/timeline-event"
            );
            let part = |name: &str| {
                label["extension"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|x| x["url"] == name)
                    .cloned()
            };
            (
                format!(
                    "{}/{}",
                    e["resource"]["resourceType"].as_str().unwrap(),
                    e["resource"]["id"].as_str().unwrap()
                ),
                part("date").unwrap()["valueDateTime"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                part("source").map(|s| s["valueIdentifier"]["value"].as_str().unwrap().into()),
            )
        })
        .collect()
}

fn ids(r: &Resp) -> Vec<String> {
    events(r).into_iter().map(|e| e.0).collect()
}

/// Two patients; p1's record written by the practice's and the trust's feeds.
fn record(s: &Server) {
    let put = |org: &str, v: Value| {
        let path = format!(
            "/{}/{}",
            v["resourceType"].as_str().unwrap(),
            v["id"].as_str().unwrap()
        );
        let h = bearer(&s.token("feed", "system/*.crus", Some(org), None));
        let r = s.send_json("PUT", &path, &v, &[("Authorization", &h)]);
        assert_eq!(
            r.status,
            201,
            "{path}: {}",
            String::from_utf8_lossy(&r.body)
        );
    };
    put(
        PRACTICE,
        json!({"resourceType": "Organization", "id": "tl-practice", "name": "Practice",
               "identifier": [{"system": ODS, "value": PRACTICE}]}),
    );
    for id in ["tl-1", "tl-2"] {
        let mut p = patient("Timeline");
        p["id"] = json!(id);
        p["generalPractitioner"] = json!([{"reference": "Organization/tl-practice"}]);
        put(PRACTICE, p);
    }
    let code = json!({"coding": [{"system": "http://snomed.info/sct", "code": "1234567"}]});
    let me = json!({"reference": "Patient/tl-1"});
    put(
        TRUST,
        json!({"resourceType": "Encounter", "id": "tl-ae", "status": "finished",
               "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "EMER"},
               "subject": me, "period": {"start": "2026-02-10T22:15:00Z", "end": "2026-02-11T03:00:00Z"}}),
    );
    put(
        TRUST,
        json!({"resourceType": "Observation", "id": "tl-potassium", "status": "final",
               "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
               "code": code, "subject": me, "effectiveDateTime": "2026-02-10T23:00:00Z"}),
    );
    put(
        PRACTICE,
        json!({"resourceType": "Condition", "id": "tl-diabetes", "code": code, "subject": me,
               "onsetDateTime": "2018-06"}),
    );
    put(
        PRACTICE,
        json!({"resourceType": "MedicationRequest", "id": "tl-rx", "status": "active",
               "intent": "order", "medicationCodeableConcept": code, "subject": me,
               "authoredOn": "2026-03-01"}),
    );
    put(
        PRACTICE,
        json!({"resourceType": "ServiceRequest", "id": "tl-referral", "status": "active",
               "intent": "order", "code": code, "subject": me, "authoredOn": "2025-11-20"}),
    );
    put(
        PRACTICE,
        json!({"resourceType": "Immunization", "id": "tl-covid-vacc", "status": "completed",
               "vaccineCode": code, "patient": me, "occurrenceDateTime": "2021-01-15"}),
    );
    // Sensitive by its code (a mental health diagnosis): labelled PSY by the server.
    put(
        TRUST,
        json!({"resourceType": "Condition", "id": "tl-bipolar", "subject": me,
               "code": {"coding": [{"system": "http://snomed.info/sct", "code": "13746004"}]},
               "onsetDateTime": "2020-09-01"}),
    );
    // Not an event: no place on the timeline.
    put(
        PRACTICE,
        json!({"resourceType": "RelatedPerson", "id": "tl-carer", "patient": me}),
    );
    put(
        TRUST,
        json!({"resourceType": "Observation", "id": "tl-theirs", "status": "final", "code": code,
               "subject": {"reference": "Patient/tl-2"}, "effectiveDateTime": "2026-01-01"}),
    );
}

/// p1's events, newest first.
const NEWEST_FIRST: [&str; 7] = [
    "MedicationRequest/tl-rx",
    "Observation/tl-potassium",
    "Encounter/tl-ae",
    "ServiceRequest/tl-referral",
    "Immunization/tl-covid-vacc",
    "Condition/tl-bipolar",
    "Condition/tl-diabetes",
];

#[test]
fn the_timeline_orders_a_record_from_several_sources_and_labels_each_event() {
    let s = Server::secure();
    record(&s);
    let gp = bearer(&s.token("gp", "user/*.rs", Some(PRACTICE), None));
    let h = [("Authorization", gp.as_str())];
    let r = s.get("/Patient/tl-1/$timeline", &h);
    let got = events(&r);
    assert_eq!(
        got.iter().map(|e| e.0.as_str()).collect::<Vec<_>>(),
        NEWEST_FIRST
    );
    let find = |id: &str| got.iter().find(|e| e.0 == id).unwrap().clone();
    assert_eq!(
        find("Encounter/tl-ae"),
        (
            "Encounter/tl-ae".into(),
            "2026-02-10T22:15:00.000Z".into(),
            Some(TRUST.into())
        )
    );
    assert_eq!(find("Condition/tl-diabetes").1, "2018-06-01T00:00:00.000Z");
    assert_eq!(find("Condition/tl-diabetes").2.as_deref(), Some(PRACTICE));
    assert_eq!(r.json()["total"], NEWEST_FIRST.len());
    // The diagnosis was labelled by its code at the write, visibly.
    let dx = s.get("/Condition/tl-bipolar", &h).json();
    assert_eq!(
        dx["meta"]["security"],
        json!([{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "PSY"}])
    );

    // Oldest first, a window, a type filter.
    let mut oldest = NEWEST_FIRST.to_vec();
    oldest.reverse();
    assert_eq!(
        ids(&s.get("/Patient/tl-1/$timeline?_sort=date", &h)),
        oldest
    );
    assert_eq!(
        ids(&s.get(
            "/Patient/tl-1/$timeline?start=2025-11-20&end=2026-02-10",
            &h
        )),
        [
            "Observation/tl-potassium",
            "Encounter/tl-ae",
            "ServiceRequest/tl-referral"
        ]
    );
    assert_eq!(
        ids(&s.get("/Patient/tl-1/$timeline?_type=Condition,Immunization", &h)),
        [
            "Immunization/tl-covid-vacc",
            "Condition/tl-bipolar",
            "Condition/tl-diabetes"
        ]
    );

    // Paging in twos walks the same order exactly once, with _sort and _type kept.
    let mut walked = Vec::new();
    let mut next = Some("/Patient/tl-1/$timeline?_count=2&_sort=date".to_string());
    while let Some(path) = next.take() {
        let page = s.get(&path, &h);
        let page_ids = ids(&page);
        assert!(page_ids.len() <= 2);
        walked.extend(page_ids);
        next = page.json()["link"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["relation"] == "next")
            .map(|l| {
                let url = l["url"].as_str().unwrap();
                assert!(
                    url.contains("$timeline") && url.contains("_sort=date"),
                    "{url}"
                );
                url[url.find("/Patient/").unwrap()..].to_string()
            });
    }
    assert_eq!(walked, oldest);
    // A timeline's page link does not serve a compartment search.
    let first = s.get("/Patient/tl-1/$timeline?_count=1", &h).json();
    let cursor = first["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["relation"] == "next")
        .unwrap()["url"]
        .as_str()
        .unwrap()
        .split("_cursor=")
        .nth(1)
        .unwrap()
        .to_string();
    s.get(&format!("/Patient/tl-1/Condition?_cursor={cursor}"), &h)
        .outcome(400);

    // The same rules as searches: a social worker sees the contacts and referrals only; a
    // pharmacist the medicines and immunisations; a paramedic all but the labelled diagnosis;
    // the patient their own; nobody anyone else's.
    let as_role = |role: &str, scope: &str| {
        let b = bearer(&s.token(role, scope, Some(PRACTICE), None));
        ids(&s.get("/Patient/tl-1/$timeline", &[("Authorization", b.as_str())]))
    };
    let without = |gone: &[&str]| -> Vec<&str> {
        NEWEST_FIRST
            .iter()
            .copied()
            .filter(|i| !gone.contains(i))
            .collect()
    };
    assert_eq!(
        as_role("social-worker-adults", "user/*.rs"),
        ["Encounter/tl-ae", "ServiceRequest/tl-referral"]
    );
    assert_eq!(
        as_role("pharmacist", "user/*.rs"),
        [
            "MedicationRequest/tl-rx",
            "Observation/tl-potassium",
            "Immunization/tl-covid-vacc"
        ]
    );
    assert_eq!(
        as_role("paramedic", "user/*.rs"),
        without(&["Condition/tl-bipolar"])
    );
    let receptionist = bearer(&s.token("receptionist", "user/*.rs", Some(PRACTICE), None));
    let r = s.get(
        "/Patient/tl-1/$timeline",
        &[("Authorization", receptionist.as_str())],
    );
    assert!(ids(&r).is_empty(), "a receptionist reads no clinical type");
    let citizen = bearer(&s.token("patient", "patient/*.rs", None, Some("tl-1")));
    let hc = [("Authorization", citizen.as_str())];
    assert_eq!(ids(&s.get("/Patient/tl-1/$timeline", &hc)), NEWEST_FIRST);
    assert_eq!(ids(&s.get("/Patient/$timeline", &hc)), NEWEST_FIRST);
    s.get("/Patient/tl-2/$timeline", &hc).outcome(404);
    let elsewhere = bearer(&s.token("gp", "user/*.rs", Some("G82977"), None));
    let o = s
        .get(
            "/Patient/tl-1/$timeline",
            &[("Authorization", elsewhere.as_str())],
        )
        .outcome(403);
    assert!(o.to_string().contains("X-Relationship-Claim"), "{o}");
}

#[test]
fn timeline_errors_and_definition() {
    let s = Server::start();
    let mut p = patient("Errors");
    p["id"] = json!("tl-e");
    assert_eq!(s.send_json("PUT", "/Patient/tl-e", &p, &[]).status, 201);
    for bad in [
        "_type=RelatedPerson",
        "_type=Nonsense",
        "start=last-week",
        "end=2026-13",
        "_sort=_lastUpdated",
        "_count=ten",
    ] {
        s.get(&format!("/Patient/tl-e/$timeline?{bad}"), &[])
            .outcome(400);
    }
    s.get(
        "/Patient/tl-e/$timeline?foo=bar",
        &[("Prefer", "handling=strict")],
    )
    .outcome(400);
    assert_eq!(s.get("/Patient/tl-e/$timeline?foo=bar", &[]).status, 200);
    s.get("/Patient/nobody/$timeline", &[]).outcome(404);
    s.get("/Observation/x/$timeline", &[]).outcome(404);
    s.get("/Patient/$timeline", &[]).outcome(400);
    assert_eq!(
        s.send("POST", "/Patient/tl-e/$timeline", &[], b"").status,
        405
    );
    // The operation is declared and its definition served.
    let cs = s.get("/metadata", &[]).json();
    let ops = cs["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "Patient")
        .unwrap()["operation"]
        .clone();
    let op = ops
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "timeline")
        .cloned()
        .expect("timeline in the CapabilityStatement");
    let def = s.get("/OperationDefinition/Patient-timeline", &[]).json();
    assert_eq!(def["resourceType"], "OperationDefinition");
    assert_eq!(def["url"], op["definition"]);
    assert_eq!(def["code"], "timeline");
}
