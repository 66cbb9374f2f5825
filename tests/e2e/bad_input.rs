//! Malformed requests get a 4xx with an OperationOutcome and leave nothing in the database.

use serde_json::json;

use crate::harness::{sql_value, Server};

#[test]
fn malformed_bodies_are_refused_and_leave_no_trace() {
    let s = Server::start();
    let json_ct = [("Content-Type", "application/fhir+json")];
    let cases: Vec<(&str, Vec<u8>, u16, Option<&str>)> = vec![
        ("unknown element", br#"{"resourceType":"Patient","favouriteColour":"blue"}"#.to_vec(), 400, Some("Patient.favouriteColour")),
        ("wrong type", br#"{"resourceType":"Patient","name":[{"family":42}]}"#.to_vec(), 400, Some("Patient.name[0].family")),
        ("not an array", br#"{"resourceType":"Patient","name":{"family":"x"}}"#.to_vec(), 400, Some("Patient.name")),
        ("impossible date", br#"{"resourceType":"Patient","birthDate":"2023-02-29"}"#.to_vec(), 400, Some("Patient.birthDate")),
        ("bad code", br#"{"resourceType":"Patient","gender":"sometimes"}"#.to_vec(), 400, Some("Patient.gender")),
        ("missing mandatory", br#"{"resourceType":"Observation","code":{"text":"x"}}"#.to_vec(), 400, Some("Observation.status")),
        ("wrong resourceType", br#"{"resourceType":"Observation","status":"final","code":{"text":"x"}}"#.to_vec(), 400, Some("resourceType")),
        ("unknown resourceType", br#"{"resourceType":"Dragon"}"#.to_vec(), 400, None),
        ("bad NHS number", br#"{"resourceType":"Patient","identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9434765918"}]}"#.to_vec(), 422, Some("Patient.identifier[0].value")),
        ("invalid JSON", br#"{"resourceType":"Patient","#.to_vec(), 400, None),
        ("invalid UTF-8", b"{\"resourceType\":\"Patient\",\"gender\":\"\xff\"}".to_vec(), 400, None),
        ("control character", br#"{"resourceType":"Patient","name":[{"family":"a\u0000b"}]}"#.to_vec(), 400, Some("Patient.name[0].family")),
        ("not an object", b"[1,2]".to_vec(), 400, None),
        ("empty body", b"".to_vec(), 400, None),
    ];
    for (what, body, status, expr) in cases {
        let r = s.send("POST", "/Patient", &json_ct, &body);
        let oo = r.outcome(status);
        if let Some(expr) = expr {
            let got = &oo["issue"][0]["expression"][0];
            assert_eq!(got, expr, "{what}: {oo}");
        }
    }
    let big = format!(
        r#"{{"resourceType":"Patient","name":[{{"text":"{}"}}]}}"#,
        "x".repeat(20 * 1024 * 1024)
    );
    s.send("POST", "/Patient", &json_ct, big.as_bytes())
        .outcome(413);
    s.send(
        "POST",
        "/Patient",
        &[("Content-Type", "text/plain")],
        b"hello",
    )
    .outcome(415);
    s.send(
        "PUT",
        "/Patient/bad%20id",
        &json_ct,
        br#"{"resourceType":"Patient","id":"bad id"}"#,
    )
    .outcome(400);
    s.send("POST", "/Dragon", &json_ct, br#"{"resourceType":"Dragon"}"#)
        .outcome(404);
    s.send("PATCH", "/Patient", &json_ct, b"{}").outcome(405);
    s.get("/Patient/x?_summary=maybe", &[]).outcome(400);
    s.get("/Patient/x", &[("Accept", "text/csv")]).outcome(406);
    s.get("/nowhere/at/all/really", &[]).outcome(404);

    assert_eq!(
        sql_value(
            &s.db_url,
            "SELECT count(*) FROM resource WHERE res_type <> 'AuditEvent'"
        ),
        "0"
    );
    assert_eq!(
        sql_value(
            &s.db_url,
            "SELECT count(*) FROM resource_history WHERE res_type <> 'AuditEvent'"
        ),
        "0"
    );
    assert_eq!(
        sql_value(
            &s.db_url,
            "SELECT count(*) FROM idx_string WHERE res_type <> 'AuditEvent'"
        ),
        "0"
    );
    assert_eq!(s.get("/_history", &[]).json()["total"], json!(0));
}

#[test]
fn errors_come_in_the_format_asked_for() {
    let s = Server::start();
    let r = s.get("/Patient/nobody", &[("Accept", "application/fhir+xml")]);
    assert_eq!(r.status, 404);
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("application/fhir+xml"));
    let text = String::from_utf8(r.body).unwrap();
    assert!(
        text.contains("<OperationOutcome") && text.contains("not-found"),
        "{text}"
    );
    let r = s.send(
        "POST",
        "/Patient?_format=xml",
        &[("Content-Type", "application/fhir+json")],
        br#"{"resourceType":"Patient","birthDate":"2023-02-29"}"#,
    );
    assert_eq!(r.status, 400);
    let text = String::from_utf8(r.body).unwrap();
    assert!(
        text.contains("<expression value=\"Patient.birthDate\"/>"),
        "{text}"
    );
    // JSON stays the default.
    s.get("/Patient/nobody", &[]).outcome(404);
}
