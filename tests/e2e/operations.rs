//! Health, readiness, the CapabilityStatement, request ids and read-time subsetting.

use serde_json::json;

use crate::harness::{patient, Server};

#[test]
fn health_ready_metadata_and_request_ids() {
    let s = Server::start();
    assert_eq!(
        ureq::get(&format!("{}/health", s.root))
            .call()
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        ureq::get(&format!("{}/ready", s.root))
            .call()
            .unwrap()
            .status(),
        200
    );
    let m = s.get("/metadata", &[("X-Request-Id", "trace-me-42")]);
    assert_eq!(m.status, 200);
    assert_eq!(m.header("x-request-id"), Some("trace-me-42"));
    assert!(s.get("/metadata", &[]).header("x-request-id").is_some());
    let cs = m.json();
    assert_eq!(cs["resourceType"], "CapabilityStatement");
    assert_eq!(cs["fhirVersion"], "4.0.1");
    let resources = cs["rest"][0]["resource"].as_array().unwrap();
    let patient_cap = resources.iter().find(|r| r["type"] == "Patient").unwrap();
    let params: Vec<&str> = patient_cap["searchParam"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for p in ["identifier", "family", "birthdate", "_id", "_lastUpdated"] {
        assert!(params.contains(&p), "{p} missing from {params:?}");
    }
    for t in [
        "Observation",
        "Flag",
        "CarePlan",
        "AllergyIntolerance",
        "MedicationStatement",
        "Encounter",
    ] {
        assert!(resources.iter().any(|r| r["type"] == t), "{t}");
    }
    let xml = s.get("/metadata?_format=application/fhir+xml", &[]);
    assert!(String::from_utf8(xml.body)
        .unwrap()
        .contains("<CapabilityStatement"));
}

#[test]
fn summary_elements_and_pretty_on_read() {
    let s = Server::start();
    let mut p = patient("Ward");
    p["id"] = json!("ward");
    p["text"] = json!({"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Ward</div>"});
    p["contact"] = json!([{"name": {"family": "Ward", "given": ["Sam"]}}]);
    assert_eq!(s.send_json("PUT", "/Patient/ward", &p, &[]).status, 201);
    let summary = s.get("/Patient/ward?_summary=true", &[]).json();
    assert!(summary.get("contact").is_none() && summary.get("text").is_none());
    assert!(summary.get("name").is_some());
    assert_eq!(summary["meta"]["tag"][0]["code"], "SUBSETTED");
    let data = s.get("/Patient/ward?_summary=data", &[]).json();
    assert!(data.get("text").is_none() && data.get("contact").is_some());
    let elements = s.get("/Patient/ward?_elements=birthDate", &[]).json();
    assert!(elements.get("birthDate").is_some() && elements.get("name").is_none());
    let pretty = s.get("/Patient/ward?_pretty=true", &[]);
    assert!(String::from_utf8(pretty.body)
        .unwrap()
        .contains("\n  \"resourceType\""));
}

#[test]
fn changed_parameter_definitions_rebuild_the_index_at_start() {
    let mut s = Server::start();
    let flag = json!({"resourceType": "Flag", "id": "alert", "status": "active",
        "code": {"text": "Lives alone"}, "subject": {"reference": "Patient/someone"}});
    assert_eq!(s.send_json("PUT", "/Flag/alert", &flag, &[]).status, 201);
    assert_eq!(s.get("/Flag?status=active", &[]).json()["total"], 1);
    // As if the rows had been written under older definitions that lacked Flag status.
    crate::harness::sql_value(&s.db_url, "DELETE FROM idx_token WHERE param = 'status'");
    crate::harness::sql_value(&s.db_url, "UPDATE resource SET compartments = '{}'");
    crate::harness::sql_value(
        &s.db_url,
        "UPDATE index_state SET definitions_hash = 'older'",
    );
    assert_eq!(s.get("/Flag?status=active", &[]).json()["total"], 0);
    s.kill();
    s.spawn();
    assert_eq!(s.get("/Flag?status=active", &[]).json()["total"], 1);
    assert_eq!(s.get("/Patient/someone/Flag", &[]).json()["total"], 1);
}
