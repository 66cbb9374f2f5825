//! Profiles over HTTP: `$validate` answers with findings at their paths and writes nothing;
//! writes under `INVICTA_PROFILES` off, warn and reject.

use serde_json::{json, Value};

use crate::harness::{Resp, Server};

const VERIFICATION: &str =
    "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus";
const VERIFICATION_CODES: &str =
    "https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatusEngland";

fn patient(nhs: &str) -> Value {
    json!({"resourceType": "Patient", "name": [{"family": "Valid"}],
        "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": nhs,
            "extension": [{"url": VERIFICATION, "valueCodeableConcept": {"coding": [
                {"system": VERIFICATION_CODES, "code": "01"}]}}]}]})
}

fn observation() -> Value {
    json!({"resourceType": "Observation", "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "2823-3"}]},
        "subject": {"reference": "Patient/x"}})
}

/// The OperationOutcome's issues as (severity, code, first expression).
fn findings(r: &Resp) -> Vec<(String, String, String)> {
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let oo = r.json();
    assert_eq!(oo["resourceType"], "OperationOutcome");
    oo["issue"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["severity"].as_str().unwrap().to_string(),
                i["code"].as_str().unwrap().to_string(),
                i["expression"][0].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn has(found: &[(String, String, String)], severity: &str, code: &str, path: &str) -> bool {
    found
        .iter()
        .any(|(s, c, p)| s == severity && c == code && p == path)
}

#[test]
fn validate_reports_findings_at_their_paths_and_stores_nothing() {
    let s = Server::start();
    let versions = || s.get("/_history?_count=0", &[]).json()["total"].clone();
    let before = versions();

    // Valid: one information issue.
    let ok = findings(&s.send_json("POST", "/Patient/$validate", &patient("9434765919"), &[]));
    assert_eq!(ok.len(), 1, "{ok:?}");
    assert_eq!(ok[0].0, "information");
    // Every sample file of the record validates against its type's profile.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let order = std::fs::read_to_string(dir.join("load-order.txt")).unwrap();
    for file in order
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('['))
    {
        let v: Value = serde_json::from_slice(&std::fs::read(dir.join(file)).unwrap()).unwrap();
        let rt = v["resourceType"].as_str().unwrap();
        let found = findings(&s.send_json("POST", &format!("/{rt}/$validate"), &v, &[]));
        assert!(!found.iter().any(|f| f.0 == "error"), "{file}: {found:?}");
    }

    let mut bad_nhs = patient("9434765918");
    let mut no_category = observation();
    no_category.as_object_mut().unwrap().remove("category");
    let mut to_practitioner = observation();
    to_practitioner["subject"] = json!({"reference": "Practitioner/p"});
    let mut value_string = observation();
    value_string["valueQuantity"] = json!({"value": "high"});
    let allergy = json!({"resourceType": "AllergyIntolerance", "patient": {"reference": "Patient/x"},
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "91936005"}]},
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": "current"}]}});
    let flag = json!({"resourceType": "Flag", "status": "active", "subject": {"reference": "Patient/x"},
        "code": {"text": "x"},
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/flag-category", "code": "urgent"}]}]});
    let unverified = {
        let mut p = patient("9434765919");
        p["identifier"][0]
            .as_object_mut()
            .unwrap()
            .remove("extension");
        p
    };
    bad_nhs["name"] = json!([{"family": "Bad"}]);
    let cases: Vec<(&str, Value, (&str, &str, &str))> = vec![
        (
            "Patient",
            bad_nhs,
            ("error", "business-rule", "Patient.identifier[0].value"),
        ),
        (
            "Patient",
            unverified,
            ("warning", "business-rule", "Patient.identifier[0]"),
        ),
        (
            "Observation",
            no_category,
            ("error", "required", "Observation.category"),
        ),
        (
            "Observation",
            to_practitioner,
            ("error", "structure", "Observation.subject"),
        ),
        (
            "Observation",
            value_string,
            ("error", "structure", "Observation.valueQuantity.value"),
        ),
        (
            "AllergyIntolerance",
            allergy,
            ("error", "code-invalid", "AllergyIntolerance.clinicalStatus"),
        ),
        ("Flag", flag, ("error", "code-invalid", "Flag.category[0]")),
    ];
    for (t, resource, (sev, code, path)) in cases {
        let found = findings(&s.send_json("POST", &format!("/{t}/$validate"), &resource, &[]));
        assert!(
            has(&found, sev, code, path),
            "{t}: want {sev} {code} at {path}: {found:?}"
        );
        // The Parameters form gives the same.
        let wrapped = json!({"resourceType": "Parameters", "parameter": [
            {"name": "resource", "resource": resource}, {"name": "mode", "valueCode": "create"}]});
        let again = findings(&s.send_json("POST", &format!("/{t}/$validate"), &wrapped, &[]));
        assert!(has(&again, sev, code, path), "{t} (Parameters): {again:?}");
    }

    // mode=update checks the id against the URL; a named profile is used; errors of the call.
    let mut with_id = patient("9434765919");
    with_id["id"] = json!("someone-else");
    let found = findings(&s.send_json("POST", "/Patient/me/$validate", &with_id, &[]));
    assert!(has(&found, "error", "invalid", "Patient.id"), "{found:?}");
    let found = findings(&s.send_json(
        "POST",
        "/Observation/$validate?profile=https://invicta.example.org/fhir/StructureDefinition/Invicta-Observation",
        &observation(),
        &[],
    ));
    assert_eq!(found[0].0, "information", "{found:?}");
    s.send_json(
        "POST",
        "/Observation/$validate?profile=https://nowhere.example/StructureDefinition/x",
        &observation(),
        &[],
    )
    .outcome(400);
    s.send_json("POST", "/Patient/$validate", &observation(), &[])
        .outcome(400);
    s.send_json(
        "POST",
        "/Patient/$validate?mode=destroy",
        &patient("9434765919"),
        &[],
    )
    .outcome(400);
    assert_eq!(s.get("/Patient/$validate", &[]).status, 405);
    // XML is read and judged too.
    let xml = s.send(
        "POST",
        "/Patient/$validate",
        &[("Content-Type", "application/fhir+xml")],
        br#"<Patient xmlns="http://hl7.org/fhir"><active value="maybe"/></Patient>"#,
    );
    let xml = findings(&xml);
    assert!(xml.iter().any(|f| f.0 == "error"), "{xml:?}");

    assert_eq!(versions(), before, "$validate wrote something");
}

#[test]
fn writes_follow_the_enforcement_setting() {
    let mut no_category = observation();
    no_category.as_object_mut().unwrap().remove("category");

    // reject: 422 with the finding, nothing stored, in REST and in a transaction.
    let s = Server::start_with(&[("INVICTA_PROFILES", "reject")]);
    let r = s.send_json("POST", "/Observation", &no_category, &[]);
    let o = r.outcome(422);
    assert!(o.to_string().contains("Observation.category"), "{o}");
    let tx = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": observation(), "request": {"method": "POST", "url": "Observation"}},
        {"resource": no_category, "request": {"method": "POST", "url": "Observation"}}]});
    s.send_json("POST", "", &tx, &[]).outcome(422);
    assert_eq!(s.get("/Observation?_summary=count", &[]).json()["total"], 0);
    assert_eq!(
        s.send_json("POST", "/Observation", &observation(), &[])
            .status,
        201
    );

    // warn (the default): written, and the findings come back.
    let s = Server::start();
    let r = s.send_json(
        "POST",
        "/Observation",
        &no_category,
        &[("Prefer", "return=OperationOutcome")],
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let issues = r.json()["issue"].to_string();
    assert!(
        issues.contains("Observation.category") && issues.contains("informational"),
        "{issues}"
    );
    let batch = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": no_category, "request": {"method": "POST", "url": "Observation"}},
        {"resource": observation(), "request": {"method": "POST", "url": "Observation"}}]});
    let b = s.send_json("POST", "", &batch, &[]).json();
    assert_eq!(b["entry"][0]["response"]["status"], "201 Created");
    assert!(
        b["entry"][0]["response"]["outcome"]
            .to_string()
            .contains("Observation.category"),
        "{b}"
    );
    assert!(b["entry"][1]["response"].get("outcome").is_none(), "{b}");

    // off: nothing checked.
    let s = Server::start_with(&[("INVICTA_PROFILES", "off")]);
    let r = s.send_json(
        "POST",
        "/Observation",
        &no_category,
        &[("Prefer", "return=OperationOutcome")],
    );
    assert_eq!(r.status, 201);
    assert!(!r.json()["issue"]
        .to_string()
        .contains("Observation.category"));
}
