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

    // start/end are reported as ignored, or refused under strict handling.
    let lenient = s.get("/Patient/ev-1/$everything?start=2020-01-01", &[]);
    assert!(
        lenient.json().to_string().contains("start"),
        "a warning names start"
    );
    s.get(
        "/Patient/ev-1/$everything?start=2020-01-01",
        &[("Prefer", "handling=strict")],
    )
    .outcome(400);

    // Errors: unknown patient, other types, a _type outside the compartment, a patient-less call.
    s.get("/Patient/nobody/$everything", &[]).outcome(404);
    s.get("/Observation/ev-obs-0/$everything", &[]).outcome(404);
    s.get("/Patient/ev-1/$everything?_type=Organization", &[])
        .outcome(400);
    s.get("/Patient/$everything", &[]).outcome(400);
    // The CapabilityStatement declares the operation.
    let cs = s.get("/metadata", &[]).json();
    let patient_cap = cs["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "Patient")
        .cloned()
        .unwrap();
    assert_eq!(patient_cap["operation"][0]["name"], "everything");
}
