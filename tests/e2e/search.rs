//! Search: each parameter type, modifier and prefix against hand-computed result sets.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::harness::Server;

fn put(s: &Server, v: Value) {
    let path = format!(
        "/{}/{}",
        v["resourceType"].as_str().unwrap(),
        v["id"].as_str().unwrap()
    );
    let r = s.send_json("PUT", &path, &v, &[]);
    assert!(
        r.status == 201 || r.status == 200,
        "{path}: {}",
        String::from_utf8_lossy(&r.body)
    );
}

fn ids(s: &Server, query: &str) -> BTreeSet<String> {
    let r = s.get(query, &[]);
    assert_eq!(
        r.status,
        200,
        "{query}: {}",
        String::from_utf8_lossy(&r.body)
    );
    let b = r.json();
    assert_eq!(b["type"], "searchset");
    let found: BTreeSet<String> = b["entry"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|e| e["search"]["mode"] == "match")
                .map(|e| e["resource"]["id"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        b["total"],
        found.len(),
        "{query}: total disagrees with entries"
    );
    found
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn seed(s: &Server) {
    let nhs = "https://fhir.nhs.uk/Id/nhs-number";
    put(
        s,
        json!({"resourceType": "Patient", "id": "p1", "active": true, "gender": "female",
        "identifier": [{"system": nhs, "value": "9434765919"}, {"system": "urn:hosp", "value": "H1",
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]}}],
        "name": [{"family": "Thornton", "given": ["Margaret", "Ann"]}], "birthDate": "1938-02-11",
        "address": [{"city": "Canterbury", "postalCode": "CT1 2AB"}]}),
    );
    put(
        s,
        json!({"resourceType": "Patient", "id": "p2", "active": false, "gender": "male",
        "identifier": [{"system": nhs, "value": "9000000009"}],
        "name": [{"family": "Thorne", "given": ["Daniel"]}], "birthDate": "1990-06",
        "address": [{"city": "Dover"}]}),
    );
    put(
        s,
        json!({"resourceType": "Patient", "id": "p3", "gender": "female",
        "name": [{"family": "Ó Briain", "given": ["Zoë"]}], "birthDate": "2019-12-31"}),
    );
    put(
        s,
        json!({"resourceType": "Patient", "id": "p4", "gender": "other",
        "name": [{"family": "Smith, Jr", "given": ["Al"]}]}),
    );
    let obs = |id: &str, patient: &str, code: &str, value: f64, unit: &str, when: &str| {
        json!({"resourceType": "Observation", "id": id, "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": code}], "text": "lab"},
            "subject": {"reference": format!("Patient/{patient}")},
            "effectiveDateTime": when,
            "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}})
    };
    put(
        s,
        obs(
            "o1",
            "p1",
            "59261-8",
            48.0,
            "mmol/mol",
            "2026-11-02T09:30:00Z",
        ),
    );
    put(
        s,
        obs(
            "o2",
            "p1",
            "59261-8",
            5.4,
            "mmol/mol",
            "2025-01-15T10:00:00+01:00",
        ),
    );
    put(s, obs("o3", "p2", "2823-3", 4.1, "mmol/L", "2026-03-01"));
    put(
        s,
        obs("o4", "p3", "2823-3", 5.44, "mmol/L", "2024-12-31T23:59:59Z"),
    );
    put(
        s,
        json!({"resourceType": "Observation", "id": "o5", "status": "preliminary",
        "code": {"text": "note only"}, "subject": {"reference": "Patient/p2"}}),
    );
    // Deleted resources and old versions never match.
    put(
        s,
        json!({"resourceType": "Patient", "id": "gone", "name": [{"family": "Thornbury"}]}),
    );
    assert_eq!(s.delete("/Patient/gone").status, 204);
    put(
        s,
        json!({"resourceType": "Patient", "id": "renamed", "name": [{"family": "Thorpe"}]}),
    );
    put(
        s,
        json!({"resourceType": "Patient", "id": "renamed", "name": [{"family": "Walker"}]}),
    );
}

#[test]
fn parameter_types_modifiers_and_prefixes() {
    let s = Server::start();
    seed(&s);
    let cases: &[(&str, &[&str])] = &[
        // string: case- and accent-insensitive prefix, :exact, :contains
        ("/Patient?family=thorn", &["p1", "p2"]),
        ("/Patient?family=THORNTON", &["p1"]),
        ("/Patient?family=o briain", &["p3"]),
        ("/Patient?given=zoe", &["p3"]),
        ("/Patient?family:exact=Thorne", &["p2"]),
        ("/Patient?family:exact=thorne", &[]),
        ("/Patient?family:contains=orn", &["p1", "p2"]),
        ("/Patient?name=ann", &["p1"]),
        ("/Patient?address-city=cant", &["p1"]),
        ("/Patient?family=Smith\\,%20Jr", &["p4"]),
        ("/Patient?family=walker", &["renamed"]),
        ("/Patient?family=thorp", &[]),
        // token
        ("/Patient?gender=female", &["p1", "p3"]),
        ("/Patient?gender=female,male", &["p1", "p2", "p3"]),
        ("/Patient?gender:not=female", &["p2", "p4", "renamed"]),
        (
            "/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|9434765919",
            &["p1"],
        ),
        ("/Patient?identifier=9000000009", &["p2"]),
        ("/Patient?identifier=urn:hosp|", &["p1"]),
        ("/Patient?identifier=|H1", &[]),
        ("/Patient?identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|MR|H1", &["p1"]),
        ("/Patient?identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|MR|9434765919", &[]),
        ("/Patient?identifier=H1", &["p1"]),
        ("/Patient?active=true", &["p1"]),
        ("/Patient?active:missing=true", &["p3", "p4", "renamed"]),
        ("/Observation?code=http://loinc.org|59261-8", &["o1", "o2"]),
        ("/Observation?code:text=lab", &["o1", "o2", "o3", "o4"]),
        (
            "/Observation?category=laboratory&code=2823-3",
            &["o3", "o4"],
        ),
        // date: partial precision as ranges, prefixes, zones
        ("/Patient?birthdate=1990", &["p2"]),
        ("/Patient?birthdate=1990-06-15", &[]),
        ("/Patient?birthdate=lt1990", &["p1"]),
        ("/Patient?birthdate=ge1990-06-30", &["p2", "p3"]),
        ("/Patient?birthdate=gt2019-12-30&birthdate=lt2020", &["p3"]),
        ("/Patient?birthdate:missing=true", &["p4", "renamed"]),
        ("/Observation?date=2026", &["o1", "o3"]),
        ("/Observation?date=2025-01-15", &["o2"]),
        ("/Observation?date=2025-01-15T09:00:00Z", &["o2"]),
        ("/Observation?date=sa2026-03-01", &["o1"]),
        ("/Observation?date=eb2025", &["o4"]),
        ("/Observation?date=ne2026", &["o2", "o4"]),
        // quantity and number: precision-implied ranges, units
        ("/Observation?value-quantity=5.4", &["o2", "o4"]),
        ("/Observation?value-quantity=5.40", &["o2"]),
        ("/Observation?value-quantity=gt5", &["o1", "o2", "o4"]),
        ("/Observation?value-quantity=le4.1", &["o3"]),
        (
            "/Observation?value-quantity=5.4|http://unitsofmeasure.org|mmol/L",
            &["o4"],
        ),
        ("/Observation?value-quantity=ap48||mmol/mol", &["o1"]),
        // reference
        ("/Observation?subject=Patient/p1", &["o1", "o2"]),
        ("/Observation?subject=p2", &["o3", "o5"]),
        ("/Observation?subject:Patient=p3", &["o4"]),
        ("/Observation?patient=p1,p3", &["o1", "o2", "o4"]),
        ("/Observation?subject=SERVER/Patient/p1", &["o1", "o2"]),
        (
            "/Observation?subject.name=thornton&subject=p1",
            &["o1", "o2"],
        ),
        // special parameters and compartments
        ("/Patient?_id=p1,p3", &["p1", "p3"]),
        ("/Patient?_lastUpdated=gt2000-01-01,lt1990&family=thornt", &["p1"]),
        ("/Patient?_lastUpdated=lt2000-01-01", &[]),
        ("/Patient/p1/Observation", &["o1", "o2"]),
        ("/Patient/p2/Observation?status=preliminary", &["o5"]),
        ("/?_type=Patient,Observation&_id=p1,o5", &["p1", "o5"]),
    ];
    for (query, expected) in cases {
        let query = query.replace("SERVER", &s.base);
        assert_eq!(ids(&s, &query), set(expected), "{query}");
    }
}

#[test]
fn paging_totals_sorting_and_errors() {
    let s = Server::start();
    for i in 0..7 {
        put(
            &s,
            json!({"resourceType": "Patient", "id": format!("pg{i}"), "gender": "female",
            "name": [{"family": format!("Page{i}")}]}),
        );
    }
    // Follow next links; every match appears once even with a write between pages.
    let mut seen = Vec::new();
    let mut url = format!("{}/Patient?gender=female&_count=3", s.base);
    let mut pages = 0;
    loop {
        let b = s.get(&url, &[]).json();
        assert_eq!(b["total"], 7);
        for e in b["entry"].as_array().unwrap() {
            seen.push(e["resource"]["id"].as_str().unwrap().to_string());
        }
        pages += 1;
        if pages == 1 {
            put(
                &s,
                json!({"resourceType": "Patient", "id": "late", "gender": "female"}),
            );
        }
        match b["link"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["relation"] == "next")
        {
            Some(l) => url = l["url"].as_str().unwrap().to_string(),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, (0..7).map(|i| format!("pg{i}")).collect::<Vec<_>>());

    let sorted = s.get("/Patient?_sort=-_id&_count=2", &[]).json();
    let first: Vec<&str> = sorted["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(first, ["pg6", "pg5"]);
    let count_only = s.get("/Patient?_summary=count", &[]).json();
    assert_eq!(count_only["total"], 8);
    assert!(count_only.get("entry").is_none());
    let no_total = s.get("/Patient?_total=none", &[]).json();
    assert!(no_total.get("total").is_none());
    // POST _search has the same semantics.
    let r = s.send(
        "POST",
        "/Patient/_search",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"family=page1",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["total"], 1);

    // Lenient: ignored parameters are left out of the self link and reported; strict: 400.
    let lenient = s.get("/Patient?nonsense=1&family=page2", &[]).json();
    assert_eq!(lenient["total"], 1);
    let self_link = lenient["link"][0]["url"].as_str().unwrap();
    assert!(
        self_link.contains("family=page2") && !self_link.contains("nonsense"),
        "{self_link}"
    );
    assert!(lenient["entry"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["search"]["mode"] == "outcome"));
    let strict = s.get("/Patient?nonsense=1", &[("Prefer", "handling=strict")]);
    assert!(String::from_utf8_lossy(&strict.body).contains("nonsense"));
    strict.outcome(400);
    for bad in [
        "/Patient?birthdate=2024-13",
        "/Patient?birthdate=xx2024",
        "/Observation?value-quantity=abc",
        "/Patient?_count=-1",
        "/Patient?active:missing=perhaps",
        "/Patient?_cursor=zz",
        "/Patient?family=%zz",
        "/Patient?birthdate=2024-03-05T10:2%C3%A9:00Z",
        "/Patient?_cursor=a%C3%A9",
        "/Patient?family=a%00b",
    ] {
        s.get(bad, &[]).outcome(400);
    }
    // Injection attempts are plain values.
    assert!(ids(&s, "/Patient?family=x%27%3B%20DROP%20TABLE%20resource%3B--").is_empty());
    assert_eq!(s.get("/Patient?_summary=count", &[]).json()["total"], 8);
}

#[test]
fn chains_and_reverse_chains() {
    let s = Server::start();
    seed(&s);
    put(
        &s,
        json!({"resourceType": "Flag", "id": "f1", "status": "active",
        "category": [{"coding": [{"system": "https://invicta.example.org/fhir/CodeSystem/flag-category", "code": "safeguarding"}]}],
        "code": {"text": "Safeguarding concern"}, "subject": {"reference": "Patient/p2"}}),
    );
    put(
        &s,
        json!({"resourceType": "Flag", "id": "f2", "status": "inactive",
        "code": {"text": "Lives alone"}, "subject": {"reference": "Patient/p1"}}),
    );
    let cases: &[(&str, &[&str])] = &[
        ("/Observation?subject:Patient.name=thornton", &["o1", "o2"]),
        ("/Observation?patient.family=thorne", &["o3", "o5"]),
        (
            "/Observation?subject.identifier=https://fhir.nhs.uk/Id/nhs-number|9434765919",
            &["o1", "o2"],
        ),
        (
            "/Observation?subject:Patient.gender=female&code=2823-3",
            &["o4"],
        ),
        ("/Patient?_has:Observation:subject:code=59261-8", &["p1"]),
        (
            "/Patient?_has:Observation:patient:code=2823-3",
            &["p2", "p3"],
        ),
        ("/Patient?_has:Flag:patient:category=safeguarding", &["p2"]),
        (
            "/Patient?_has:Observation:subject:_has:Flag:patient:code:text=x",
            &[],
        ),
        (
            "/Patient?_has:Observation:subject:date=2026&gender=male",
            &["p2"],
        ),
    ];
    for (query, expected) in cases {
        assert_eq!(ids(&s, query), set(expected), "{query}");
    }
    s.get("/Observation?subject:Organization.name=x", &[])
        .outcome(400);
    s.get("/Patient?_has:Observation:code:status=final", &[])
        .outcome(400);
}

fn by_mode(s: &Server, query: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let b = s.get(query, &[]).json();
    let mut matched = BTreeSet::new();
    let mut included = BTreeSet::new();
    for e in b["entry"].as_array().cloned().unwrap_or_default() {
        let id = e["resource"]["id"].as_str().unwrap_or_default().to_string();
        match e["search"]["mode"].as_str() {
            Some("match") => matched.insert(id),
            Some("include") => included.insert(id),
            _ => false,
        };
    }
    (matched, included)
}

#[test]
fn include_and_revinclude() {
    let s = Server::start();
    seed(&s);
    put(
        &s,
        json!({"resourceType": "Flag", "id": "f1", "status": "active",
        "code": {"text": "Safeguarding concern"}, "subject": {"reference": "Patient/p2"}}),
    );
    put(
        &s,
        json!({"resourceType": "Flag", "id": "f2", "status": "active",
        "code": {"text": "Lives alone"}, "subject": {"reference": "Patient/p1"}}),
    );
    let cases: &[(&str, &[&str], &[&str])] = &[
        (
            "/Observation?_id=o1&_include=Observation:subject",
            &["o1"],
            &["p1"],
        ),
        (
            "/Observation?_id=o1,o2&_include=Observation:subject:Patient",
            &["o1", "o2"],
            &["p1"],
        ),
        ("/Observation?_id=o1&_include=*", &["o1"], &["p1"]),
        (
            "/Patient?_id=p1&_revinclude=Observation:subject",
            &["p1"],
            &["o1", "o2"],
        ),
        (
            "/Patient?_id=p2&_revinclude=Flag:patient&_revinclude=Observation:patient",
            &["p2"],
            &["f1", "o3", "o5"],
        ),
        (
            "/Observation?_id=o1&_include=Observation:subject&_revinclude:iterate=Flag:patient",
            &["o1"],
            &["p1", "f2"],
        ),
        (
            "/Observation?_id=o1&_include=Observation:performer",
            &["o1"],
            &[],
        ),
    ];
    for (query, matched, included) in cases {
        assert_eq!(by_mode(&s, query), (set(matched), set(included)), "{query}");
    }
    // Includes never change the total, which counts matches only.
    assert_eq!(
        s.get("/Patient?_id=p1&_revinclude=Observation:subject", &[])
            .json()["total"],
        1
    );
    s.get("/Observation?_include=Observation:code", &[])
        .outcome(400);
    s.get("/Observation?_include=nonsense", &[]).outcome(400);
    let cs = s.get("/metadata", &[]).json();
    let obs = cs["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "Observation")
        .unwrap()
        .clone();
    assert!(obs["searchInclude"]
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v == "Observation:subject"));
    let pat = cs["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "Patient")
        .unwrap()
        .clone();
    assert!(pat["searchRevInclude"]
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v == "Flag:patient"));
}

/// Every match in order, following next links.
fn ordered(s: &Server, query: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut url = s.url(query);
    loop {
        let r = s.get(&url, &[]);
        assert_eq!(r.status, 200, "{url}: {}", String::from_utf8_lossy(&r.body));
        let b = r.json();
        for e in b["entry"].as_array().cloned().unwrap_or_default() {
            if e["search"]["mode"] == "match" {
                out.push(e["resource"]["id"].as_str().unwrap().to_string());
            }
        }
        match b["link"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["relation"] == "next")
        {
            Some(l) => url = l["url"].as_str().unwrap().to_string(),
            None => return out,
        }
    }
}

#[test]
fn sorting_by_parameters_with_paging() {
    let s = Server::start();
    seed(&s);
    let cases: &[(&str, &[&str])] = &[
        (
            "/Patient?_sort=family",
            &["p3", "p4", "p2", "p1", "renamed"],
        ),
        (
            "/Patient?_sort=family&_count=2",
            &["p3", "p4", "p2", "p1", "renamed"],
        ),
        (
            "/Patient?_sort=-birthdate&_count=2",
            &["p3", "p2", "p1", "p4", "renamed"],
        ),
        (
            "/Patient?_sort=birthdate&_count=1",
            &["p1", "p2", "p3", "p4", "renamed"],
        ),
        (
            "/Observation?_sort=-date&_count=2",
            &["o1", "o3", "o2", "o4", "o5"],
        ),
        (
            "/Observation?_sort=value-quantity&_count=3",
            &["o3", "o2", "o4", "o1", "o5"],
        ),
        (
            "/Observation?_sort=status,-date&_count=2",
            &["o1", "o3", "o2", "o4", "o5"],
        ),
        (
            "/Patient?_sort=gender,family&_count=2",
            &["p3", "p1", "p2", "p4", "renamed"],
        ),
    ];
    for (query, expected) in cases {
        let expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
        assert_eq!(ordered(&s, query), expected, "{query}");
    }
    s.get("/Patient?_sort=a,b,c,d", &[]).outcome(400);
    s.get("/Patient?_sort=link", &[("Prefer", "handling=strict")])
        .outcome(400);
}

/// The pages of a search, following `relation` links from `start`.
fn pages(s: &Server, start: &str, relation: &str) -> (Vec<Vec<String>>, String) {
    let mut out = Vec::new();
    let mut url = s.url(start);
    loop {
        let b = s.get(&url, &[]).json();
        out.push(
            b["entry"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|e| e["resource"]["id"].as_str().unwrap().to_string())
                .collect(),
        );
        match b["link"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["relation"] == relation)
        {
            Some(l) => url = l["url"].as_str().unwrap().to_string(),
            None => return (out, url),
        }
    }
}

#[test]
fn previous_links_walk_back_through_the_same_pages() {
    let s = Server::start();
    seed(&s);
    for query in [
        "/Observation?_sort=-date&_count=2",
        "/Patient?_count=2",
        "/Patient?_sort=family,-_id&_count=3",
    ] {
        let (forward, last_url) = pages(&s, query, "next");
        assert!(forward.len() >= 2, "{query}");
        let (mut backward, _) = pages(&s, &last_url, "previous");
        backward.reverse();
        assert_eq!(backward, forward, "{query}");
    }
    // The first page has no previous link.
    let first = s.get("/Patient?_count=2", &[]).json();
    assert!(!first["link"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["relation"] == "previous"));
}

#[test]
fn explain_is_for_operators_only() {
    let s = Server::start_with(&[("INVICTA_SEARCH_EXPLAIN", "on")]);
    seed(&s);
    let r = s
        .get(
            "/Observation?code=http://loinc.org|59261-8&_explain=true",
            &[],
        )
        .json();
    assert_eq!(r["resourceType"], "Parameters");
    let sql = r["parameter"][0]["valueString"].as_str().unwrap();
    assert!(
        sql.contains("idx_token") && !sql.contains("59261-8"),
        "{sql}"
    );
    let plan = r["parameter"][2]["valueString"].as_str().unwrap();
    assert!(
        plan.contains("Scan") && plan.contains("actual time"),
        "{plan}"
    );
    // The same statement with its values, runnable by hand (psql, pgbench), gives the same rows.
    assert_eq!(r["parameter"][3]["name"], "sql-with-values");
    let literal = r["parameter"][3]["valueString"].as_str().unwrap();
    assert!(
        literal.contains("'59261-8'::text") && !literal.contains('$'),
        "{literal}"
    );
    let ids = crate::harness::sql_value(
        &s.db_url,
        &format!("SELECT string_agg(p.id, ',' ORDER BY p.rid) FROM ({literal}) p"),
    );
    let served: Vec<String> = s
        .get("/Observation?code=http://loinc.org|59261-8", &[])
        .json()["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, served.join(","));
    // Off by default: the parameter is unknown and ignored.
    let off = Server::start();
    let b = off.get("/Patient?_explain=true", &[]).json();
    assert_eq!(b["resourceType"], "Bundle");
}

#[test]
fn composite_parameters_pair_values_from_the_same_element() {
    let s = Server::start();
    seed(&s);
    let bp = |id: &str, sys: f64, dia: f64| {
        json!({"resourceType": "Observation", "id": id, "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
            "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2026-05-01",
            "component": [
                {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                 "valueQuantity": {"value": sys, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}},
                {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
                 "valueQuantity": {"value": dia, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}}]})
    };
    put(&s, bp("bp-high", 165.0, 95.0));
    put(&s, bp("bp-normal", 120.0, 150.0));
    put(
        &s,
        json!({"resourceType": "Observation", "id": "smoker", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "72166-2"}]},
        "valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct", "code": "77176002"}]}}),
    );
    let cases: &[(&str, &[&str])] = &[
        ("/Observation?component-code-value-quantity=http://loinc.org|8480-6$gt140", &["bp-high"]),
        ("/Observation?component-code-value-quantity=8462-4$gt140", &["bp-normal"]),
        ("/Observation?component-code-value-quantity=8480-6$gt140|http://unitsofmeasure.org|mm[Hg]", &["bp-high"]),
        ("/Observation?component-code-value-quantity=8480-6$gt140|http://unitsofmeasure.org|kg", &[]),
        ("/Observation?code-value-quantity=http://loinc.org|59261-8$gt40", &["o1"]),
        ("/Observation?code-value-quantity=59261-8$5.4,2823-3$4.1", &["o2", "o3"]),
        ("/Observation?code-value-concept=72166-2$http://snomed.info/sct|77176002", &["smoker"]),
        ("/Observation?combo-code-value-quantity=8480-6$ge165", &["bp-high"]),
    ];
    for (query, expected) in cases {
        assert_eq!(ids(&s, query), set(expected), "{query}");
    }
    s.get("/Observation?code-value-quantity=59261-8", &[])
        .outcome(400);
    s.get("/Observation?code-value-quantity=59261-8$abc", &[])
        .outcome(400);
}
