//! create, read, vread, update, delete, conditional create and conditional read.

use serde_json::json;

use crate::harness::{patient, patient_with_nhs, Server};

#[test]
fn create_read_update_delete_cycle() {
    let s = Server::start();
    let r = s.send_json("POST", "/Patient", &patient("Jones"), &[]);
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("etag"), Some("W/\"1\""));
    let location = r.header("location").unwrap().to_string();
    assert!(
        location.starts_with(&format!("{}/Patient/", s.base)) && location.ends_with("/_history/1"),
        "{location}"
    );
    assert!(r.header("last-modified").is_some());
    let created = r.json();
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["meta"]["versionId"], "1");

    let read = s.get(&format!("/Patient/{id}"), &[]);
    assert_eq!(read.status, 200);
    assert_eq!(read.json(), created);
    assert!(read
        .header("content-type")
        .unwrap()
        .starts_with("application/fhir+json"));

    let xml = s.get(
        &format!("/Patient/{id}"),
        &[("Accept", "application/fhir+xml")],
    );
    assert_eq!(xml.status, 200);
    let text = String::from_utf8(xml.body.clone()).unwrap();
    assert!(text.contains("<family value=\"Jones\"/>"), "{text}");
    let xml2 = s.get(&format!("/Patient/{id}?_format=xml"), &[]);
    assert_eq!(xml2.body, xml.body);

    let mut changed = created.clone();
    changed["name"][0]["family"] = json!("Jones-Smith");
    let stale = s.send_json(
        "PUT",
        &format!("/Patient/{id}"),
        &changed,
        &[("If-Match", "W/\"7\"")],
    );
    stale.outcome(412);
    let ok = s.send_json(
        "PUT",
        &format!("/Patient/{id}"),
        &changed,
        &[("If-Match", "W/\"1\"")],
    );
    assert_eq!(ok.status, 200, "{}", String::from_utf8_lossy(&ok.body));
    assert_eq!(ok.header("etag"), Some("W/\"2\""));
    assert!(ok.header("location").unwrap().ends_with("/_history/2"));

    let hist = s.get(&format!("/Patient/{id}/_history"), &[]).json();
    assert_eq!(hist["type"], "history");
    assert_eq!(hist["total"], 2);
    assert_eq!(hist["entry"][0]["resource"]["meta"]["versionId"], "2");
    assert_eq!(hist["entry"][1]["resource"]["meta"]["versionId"], "1");

    let v1 = s.get(&format!("/Patient/{id}/_history/1"), &[]);
    assert_eq!(v1.status, 200);
    assert_eq!(v1.json()["name"][0]["family"], "Jones");
    s.get(&format!("/Patient/{id}/_history/9"), &[])
        .outcome(404);

    let del = s.delete(&format!("/Patient/{id}"));
    assert_eq!(del.status, 204);
    s.get(&format!("/Patient/{id}"), &[]).outcome(410);
    assert_eq!(s.delete(&format!("/Patient/{id}")).status, 204);
    s.get("/Patient/never-was", &[]).outcome(404);
    assert_eq!(
        s.get(&format!("/Patient/{id}/_history"), &[]).json()["total"],
        3
    );
    // A deleted resource can be brought back by an update.
    let back = s.send_json("PUT", &format!("/Patient/{id}"), &changed, &[]);
    assert_eq!(back.status, 201);
    assert_eq!(back.json()["meta"]["versionId"], "4");
}

#[test]
fn update_as_create_and_no_op_update() {
    let s = Server::start();
    let mut p = patient("Khan");
    p["id"] = json!("pat-khan");
    let r = s.send_json("PUT", "/Patient/pat-khan", &p, &[]);
    assert_eq!(r.status, 201);
    assert_eq!(r.json()["meta"]["versionId"], "1");
    // The same content again creates no new version.
    let again = s.send_json("PUT", "/Patient/pat-khan", &p, &[]);
    assert_eq!(again.status, 200);
    assert_eq!(again.header("etag"), Some("W/\"1\""));
    let hist = s.get("/Patient/pat-khan/_history", &[]).json();
    assert_eq!(hist["total"], 1);
    assert_eq!(hist["entry"][0]["request"]["method"], "PUT");
    assert_eq!(hist["entry"][0]["request"]["url"], "Patient/pat-khan");
    assert_eq!(hist["entry"][0]["response"]["status"], "201 Created");
    // The body's id must match the URL.
    s.send_json("PUT", "/Patient/other", &p, &[]).outcome(400);
    let mut no_id = p.clone();
    no_id.as_object_mut().unwrap().remove("id");
    s.send_json("PUT", "/Patient/pat-khan", &no_id, &[])
        .outcome(400);
}

#[test]
fn conditional_read_and_prefer() {
    let s = Server::start();
    let r = s.send_json(
        "POST",
        "/Patient",
        &patient("Evans"),
        &[("Prefer", "return=minimal")],
    );
    assert_eq!(r.status, 201);
    assert!(r.body.is_empty());
    let loc = r.header("location").unwrap().to_string();
    let id = loc.split('/').rev().nth(2).unwrap().to_string();
    let not_modified = s.get(&format!("/Patient/{id}"), &[("If-None-Match", "W/\"1\"")]);
    assert_eq!(not_modified.status, 304);
    let modified = s.get(&format!("/Patient/{id}"), &[("If-None-Match", "W/\"0\"")]);
    assert_eq!(modified.status, 200);
    let lm = modified.header("last-modified").unwrap().to_string();
    assert_eq!(
        s.get(&format!("/Patient/{id}"), &[("If-Modified-Since", &lm)])
            .status,
        304
    );
    let old = "Mon, 01 Jan 2001 00:00:00 GMT";
    assert_eq!(
        s.get(&format!("/Patient/{id}"), &[("If-Modified-Since", old)])
            .status,
        200
    );

    let oo = s.send_json(
        "POST",
        "/Patient",
        &patient("Evans"),
        &[("Prefer", "return=OperationOutcome")],
    );
    assert_eq!(oo.status, 201);
    assert_eq!(oo.json()["resourceType"], "OperationOutcome");
}

#[test]
fn conditional_create_finds_the_existing_match() {
    let s = Server::start();
    let cond = [(
        "If-None-Exist",
        "identifier=https://fhir.nhs.uk/Id/nhs-number|9434765919",
    )];
    let price = patient_with_nhs("Price", "9434765919");
    let first = s.send_json("POST", "/Patient", &price, &cond);
    assert_eq!(first.status, 201);
    let second = s.send_json("POST", "/Patient", &price, &cond);
    assert_eq!(second.status, 200);
    assert_eq!(first.json()["id"], second.json()["id"]);
    s.send_json(
        "POST",
        "/Patient",
        &patient("Price"),
        &[("If-None-Exist", "bogus=1")],
    )
    .outcome(400);
}

#[test]
fn concurrent_updates_lose_no_version() {
    let s = Server::start();
    let mut p = patient("Race");
    p["id"] = json!("racer");
    assert_eq!(s.send_json("PUT", "/Patient/racer", &p, &[]).status, 201);
    let threads = 6;
    let per_thread = 5;
    std::thread::scope(|scope| {
        for t in 0..threads {
            let s = &s;
            let p = p.clone();
            scope.spawn(move || {
                for i in 0..per_thread {
                    let mut body = p.clone();
                    body["name"][0]["given"] = json!([format!("t{t}-{i}")]);
                    let r = s.send_json("PUT", "/Patient/racer", &body, &[]);
                    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
                }
            });
        }
    });
    let current = s.get("/Patient/racer", &[]).json();
    let expected = 1 + threads * per_thread;
    assert_eq!(current["meta"]["versionId"], expected.to_string());
    let hist = s.get("/Patient/racer/_history?_count=100", &[]).json();
    assert_eq!(hist["total"], expected);
}

#[test]
fn xml_bodies_are_accepted() {
    let s = Server::start();
    let xml = r#"<Patient xmlns="http://hl7.org/fhir"><name><family value="Okafor"/></name><birthDate value="1990-01-02"/></Patient>"#;
    let r = s.send(
        "POST",
        "/Patient",
        &[("Content-Type", "application/fhir+xml")],
        xml.as_bytes(),
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert_eq!(v["name"][0]["family"], "Okafor");
    assert_eq!(v["birthDate"], "1990-01-02");
}

#[test]
fn a_resource_with_very_many_index_values_is_stored_whole() {
    let s = Server::start();
    // 12,000 distinct given names give 24,000 string index rows (given and name): more binds
    // than one PostgreSQL statement can carry, so the store must split its inserts.
    let given: Vec<String> = (0..12_000).map(|i| format!("G{i}")).collect();
    let mut p = patient("Many");
    p["id"] = json!("many");
    p["name"][0]["given"] = json!(given);
    let r = s.send_json("PUT", "/Patient/many", &p, &[]);
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let rows = crate::harness::sql_value(
        &s.db_url,
        "SELECT count(*) FROM idx_string WHERE param = 'given'",
    );
    assert_eq!(rows, "12000");
    assert_eq!(
        s.get("/Patient/many", &[]).json()["name"][0]["given"][11_999],
        "G11999"
    );
}
