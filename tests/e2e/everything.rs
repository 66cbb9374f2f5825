//! `Patient/$everything`: the patient's compartment across types, `_type`, `_since`, paging,
//! and the errors a client can provoke. Access rules over it are in the permission matrix.

use serde_json::{json, Value};

use crate::harness::{patient, Resp, Server};

fn ids(r: &Resp) -> Vec<String> {
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let mut out: Vec<String> = r.json()["entry"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|e| e["search"]["mode"] == "match")
        .map(|e| {
            format!(
                "{}/{}",
                e["resource"]["resourceType"].as_str().unwrap(),
                e["resource"]["id"].as_str().unwrap()
            )
        })
        .collect();
    out.sort();
    out
}

fn put(s: &Server, v: Value) -> String {
    let path = format!(
        "/{}/{}",
        v["resourceType"].as_str().unwrap(),
        v["id"].as_str().unwrap()
    );
    let r = s.send_json("PUT", &path, &v, &[]);
    assert_eq!(
        r.status,
        201,
        "{path}: {}",
        String::from_utf8_lossy(&r.body)
    );
    path.trim_start_matches('/').to_string()
}

#[test]
fn everything_returns_the_compartment_pages_and_filters() {
    let s = Server::start();
    let mut p1 = patient("Everyone");
    p1["id"] = json!("ev-1");
    let mut p2 = patient("Other");
    p2["id"] = json!("ev-2");
    let mut want = vec![put(&s, p1)];
    put(&s, p2);
    let subject = |p: &str| json!({"reference": format!("Patient/{p}")});
    let code = json!({"coding": [{"system": "http://snomed.info/sct", "code": "1234567"}]});
    for (i, p) in ["ev-1", "ev-1", "ev-2"].iter().enumerate() {
        let path = put(
            &s,
            json!({"resourceType": "Observation", "id": format!("ev-obs-{i}"), "status": "final",
                   "code": code, "subject": subject(p)}),
        );
        if *p == "ev-1" {
            want.push(path);
        }
    }
    want.push(put(
        &s,
        json!({"resourceType": "AllergyIntolerance", "id": "ev-allergy", "code": code,
               "patient": subject("ev-1")}),
    ));
    // A type outside the searchable six is part of the record too.
    want.push(put(
        &s,
        json!({"resourceType": "Condition", "id": "ev-condition", "code": code,
               "subject": subject("ev-1")}),
    ));
    want.sort();

    let all = s.get("/Patient/ev-1/$everything?_total=accurate", &[]);
    assert_eq!(ids(&all), want);
    assert_eq!(all.json()["total"], want.len());

    // Paging: next links walk the whole record exactly once.
    let mut seen = Vec::new();
    let mut next = Some("/Patient/ev-1/$everything?_count=2".to_string());
    let mut pages = 0;
    while let Some(path) = next.take() {
        let page = s.get(&path, &[]);
        assert!(ids(&page).len() <= 2);
        seen.extend(ids(&page));
        pages += 1;
        next = page.json()["link"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["relation"] == "next")
            .map(|l| {
                let url = l["url"].as_str().unwrap();
                let at = url.find("/Patient/").unwrap();
                assert!(url.contains("$everything"), "{url}");
                url[at..].to_string()
            });
    }
    seen.sort();
    assert_eq!(seen, want);
    assert_eq!(pages, want.len().div_ceil(2));

    // _type narrows, and survives paging.
    let obs = s.get("/Patient/ev-1/$everything?_type=Observation,Patient", &[]);
    let expect: Vec<String> = want
        .iter()
        .filter(|p| p.starts_with("Observation/") || p.starts_with("Patient/"))
        .cloned()
        .collect();
    assert_eq!(ids(&obs), expect);
    let first = s.get("/Patient/ev-1/$everything?_type=Observation&_count=1", &[]);
    let next = first.json()["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["relation"] == "next")
        .map(|l| l["url"].as_str().unwrap().to_string())
        .expect("a next page");
    assert!(next.contains("_type=Observation"), "{next}");

    // _since: only what changed after the instant.
    std::thread::sleep(std::time::Duration::from_millis(20));
    let since = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    std::thread::sleep(std::time::Duration::from_millis(20));
    let changed = put(
        &s,
        json!({"resourceType": "Observation", "id": "ev-obs-later", "status": "final",
               "code": code, "subject": subject("ev-1")}),
    );
    let later = s.get(
        &format!(
            "/Patient/ev-1/$everything?_since={}",
            since.replace('+', "%2B")
        ),
        &[],
    );
    assert_eq!(ids(&later), vec![changed]);

    // Errors: unknown patient, other types, a type it never returns.
    s.get("/Patient/nobody/$everything", &[]).outcome(404);
    s.get("/Observation/ev-obs-0/$everything", &[]).outcome(404);
    s.get("/Patient/ev-1/$everything?_type=AuditEvent", &[])
        .outcome(400);
    s.get("/Patient/ev-1/$everything?start=yesterday", &[])
        .outcome(400);
    // The CapabilityStatement declares the operation.
    let cs = s.get("/metadata", &[]).json();
    let patient_cap = cs["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "Patient")
        .cloned()
        .unwrap();
    let ops: Vec<&str> = patient_cap["operation"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(ops, ["validate", "everything", "timeline"]);
    assert_eq!(
        patient_cap["supportedProfile"][0],
        "https://invicta.example.org/fhir/StructureDefinition/Invicta-Patient"
    );
}

/// A person's record with dated events, undated resources and what they refer to.
fn dated_record(s: &Server) {
    for (id, family) in [("dr-1", "Dated"), ("dr-2", "Elsewhere")] {
        let mut p = patient(family);
        p["id"] = json!(id);
        p["generalPractitioner"] = json!([{"reference": "Organization/dr-practice"}]);
        if id == "dr-1" {
            put(
                s,
                json!({"resourceType": "Organization", "id": "dr-practice", "name": "Practice"}),
            );
            put(
                s,
                json!({"resourceType": "Organization", "id": "dr-trust", "name": "Trust"}),
            );
            put(
                s,
                json!({"resourceType": "Practitioner", "id": "dr-gp", "name": [{"family": "Gp"}]}),
            );
            put(
                s,
                json!({"resourceType": "Practitioner", "id": "dr-other", "name": [{"family": "Other"}]}),
            );
            put(
                s,
                json!({"resourceType": "Location", "id": "dr-ward", "name": "Ward 1",
                       "managingOrganization": {"reference": "Organization/dr-trust"}}),
            );
        }
        put(s, p);
    }
    let code = json!({"coding": [{"system": "http://snomed.info/sct", "code": "1234567"}]});
    let subject = json!({"reference": "Patient/dr-1"});
    put(
        s,
        json!({"resourceType": "Encounter", "id": "dr-admission", "status": "finished",
               "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
               "subject": subject, "period": {"start": "2024-05-01T09:00:00Z", "end": "2024-05-09"},
               "serviceProvider": {"reference": "Organization/dr-trust"},
               "location": [{"location": {"reference": "Location/dr-ward"}}]}),
    );
    put(
        s,
        json!({"resourceType": "Condition", "id": "dr-old", "code": code, "subject": subject,
               "onsetDateTime": "2019-02-03", "recorder": {"reference": "Practitioner/dr-gp"}}),
    );
    put(
        s,
        json!({"resourceType": "Observation", "id": "dr-recent", "status": "final", "code": code,
               "subject": subject, "effectiveDateTime": "2026-03-01",
               "performer": [{"reference": "Practitioner/dr-gp"}, {"reference": "Organization/dr-trust"}]}),
    );
    put(
        s,
        json!({"resourceType": "RelatedPerson", "id": "dr-carer", "patient": subject,
               "name": [{"family": "Carer"}]}),
    );
    // Another person's record refers to the other practitioner.
    put(
        s,
        json!({"resourceType": "Observation", "id": "dr-theirs", "status": "final", "code": code,
               "subject": {"reference": "Patient/dr-2"}, "effectiveDateTime": "2026-03-02",
               "performer": [{"reference": "Practitioner/dr-other"}]}),
    );
}

#[test]
fn everything_brings_what_the_record_refers_to_once_and_bounds_care_dates() {
    let s = Server::start();
    dated_record(&s);
    let record = [
        "Condition/dr-old",
        "Encounter/dr-admission",
        "Observation/dr-recent",
        "Patient/dr-1",
        "RelatedPerson/dr-carer",
    ];
    let referenced = [
        "Location/dr-ward",
        "Organization/dr-practice",
        "Organization/dr-trust",
        "Practitioner/dr-gp",
    ];
    let mut all: Vec<String> = record
        .iter()
        .chain(&referenced)
        .map(|s| s.to_string())
        .collect();
    all.sort();
    let r = s.get("/Patient/dr-1/$everything?_total=accurate", &[]);
    assert_eq!(
        ids(&r),
        all,
        "each referenced resource once, none of dr-2's"
    );
    assert_eq!(r.json()["total"], all.len());
    // Paged in ones, still each once.
    let mut seen = Vec::new();
    let mut next = Some("/Patient/dr-1/$everything?_count=1".to_string());
    while let Some(path) = next.take() {
        let page = s.get(&path, &[]);
        seen.extend(ids(&page));
        next = page.json()["link"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["relation"] == "next")
            .map(|l| {
                let url = l["url"].as_str().unwrap();
                url[url.find("/Patient/").unwrap()..].to_string()
            });
    }
    seen.sort();
    assert_eq!(seen, all);
    // _type may name a referenced type.
    let orgs = s.get("/Patient/dr-1/$everything?_type=Organization", &[]);
    assert_eq!(
        ids(&orgs),
        ["Organization/dr-practice", "Organization/dr-trust"]
    );

    // start/end bound clinical dates; undated resources (and what is referenced) stay.
    let undated: Vec<&str> = ["Patient/dr-1", "RelatedPerson/dr-carer"]
        .into_iter()
        .chain(referenced)
        .collect();
    let with = |events: &[&str]| {
        let mut v: Vec<String> = undated
            .iter()
            .chain(events)
            .map(|s| s.to_string())
            .collect();
        v.sort();
        v
    };
    let r = s.get("/Patient/dr-1/$everything?start=2025-01-01", &[]);
    assert_eq!(ids(&r), with(&["Observation/dr-recent"]));
    let r = s.get("/Patient/dr-1/$everything?end=2024-05", &[]);
    assert_eq!(
        ids(&r),
        with(&["Condition/dr-old", "Encounter/dr-admission"])
    );
    let r = s.get(
        "/Patient/dr-1/$everything?start=2024-05-01&end=2024-05-01",
        &[],
    );
    assert_eq!(ids(&r), with(&["Encounter/dr-admission"]));

    // Type-level: every patient's compartment, nothing outside one.
    let r = s.get("/Patient/$everything?_count=100", &[]);
    let got = ids(&r);
    for want in record
        .iter()
        .chain(&["Patient/dr-2", "Observation/dr-theirs"])
    {
        assert!(got.contains(&want.to_string()), "{want} in {got:?}");
    }
    assert!(
        !got.iter().any(|g| g.starts_with("Practitioner/")),
        "{got:?}"
    );
}
