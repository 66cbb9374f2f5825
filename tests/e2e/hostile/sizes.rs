//! Hostile input: sizes of bodies and of what a valid body may hold.

use serde_json::json;

use super::{answered, refused, still_healthy, versions};
use crate::harness::{patient, Server};

#[test]
fn bodies_over_the_limits_are_refused_before_they_are_read_whole() {
    let s = Server::start();
    let before = versions(&s);
    let json_ct = [("Content-Type", "application/fhir+json")];
    let over = format!(
        r#"{{"resourceType":"Patient","name":[{{"text":"{}"}}]}}"#,
        "x".repeat(17 * 1024 * 1024)
    );
    refused(
        "body over the limit",
        &s.send("POST", "/Patient", &json_ct, over.as_bytes()),
    );
    refused(
        "Bundle over the limit",
        &s.send(
            "POST",
            "",
            &json_ct,
            over.replace("Patient", "Bundle").as_bytes(),
        ),
    );
    let r = super::raw(
        &s,
        b"POST /fhir/Patient HTTP/1.1\r\nHost: x\r\nContent-Type: application/fhir+json\r\nContent-Length: 99999999999999999999\r\n\r\n{}",
    )
    .expect("an answer to an absurd Content-Length");
    assert!((400..500).contains(&r.0), "absurd Content-Length: {}", r.0);
    let entries: Vec<_> = (0..10_001)
        .map(|_| json!({"request": {"method": "GET", "url": "Patient?_count=1"}}))
        .collect();
    let bundle = json!({"resourceType": "Bundle", "type": "batch", "entry": entries});
    refused(
        "batch over the entry limit",
        &s.send_json("POST", "", &bundle, &[]),
    );
    assert_eq!(versions(&s), before, "refused bodies wrote nothing");
    still_healthy(&s);
}

#[test]
fn large_valid_resources_are_stored_or_refused_never_failed() {
    let s = Server::start();
    let mut p = patient("Many");
    p["name"] = json!((0..20_000)
        .map(|i| json!({"family": format!("F{i}"), "given": ["G"]}))
        .collect::<Vec<_>>());
    answered("20,000 names", &s.send_json("POST", "/Patient", &p, &[]));
    let mut p = patient("Wide");
    p["identifier"] = json!((0..20_000)
        .map(|i| json!({"system": "urn:x", "value": format!("{i}")}))
        .collect::<Vec<_>>());
    answered(
        "20,000 identifiers",
        &s.send_json("POST", "/Patient", &p, &[]),
    );
    let elements = (0..5_000)
        .map(|i| format!("e{i}"))
        .collect::<Vec<_>>()
        .join(",");
    answered(
        "_elements of 5,000 names",
        &s.get(&format!("/Patient?_elements={elements}"), &[]),
    );
    still_healthy(&s);
}
