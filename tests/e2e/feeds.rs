//! Data feeds: batch and transaction Bundles, conditional interactions, PATCH, one Patient per
//! NHS number, provenance from the feed's token, idempotent replays.

use serde_json::{json, Value};

use crate::harness::{fresh_nhs_number, patient, patient_with_nhs, sql_value, Resp, Server};

const NHS: &str = "https://fhir.nhs.uk/Id/nhs-number";

fn post_bundle(s: &Server, bundle: &Value, headers: &[(&str, &str)]) -> Resp {
    s.send_json("POST", "", bundle, headers)
}

fn observation(subject: &str, code: &str) -> Value {
    json!({
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": subject},
        "valueQuantity": {"value": 4.2, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"}
    })
}

fn statuses(r: &Resp) -> Vec<String> {
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["response"]["status"].as_str().unwrap_or("").to_string())
        .collect()
}

fn count(s: &Server, sql: &str) -> i64 {
    sql_value(&s.db_url, sql).parse().expect("a count")
}

fn resources(s: &Server) -> i64 {
    count(
        s,
        "SELECT count(*) FROM resource WHERE res_type <> 'AuditEvent'",
    )
}

fn versions(s: &Server) -> i64 {
    count(
        s,
        "SELECT count(*) FROM resource_history WHERE res_type <> 'AuditEvent'",
    )
}

/// A feed message about one person: the Patient by conditional create, results that refer to
/// it by `urn:uuid:` and by conditional reference, and an update of a stored Practitioner.
fn person_bundle(nhs: &str, family: &str) -> Value {
    let cond = format!("identifier={NHS}|{nhs}");
    json!({
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": "urn:uuid:6a2b3c4d-0000-4000-8000-000000000001",
             "resource": patient_with_nhs(family, nhs),
             "request": {"method": "POST", "url": "Patient", "ifNoneExist": cond}},
            {"fullUrl": "urn:uuid:6a2b3c4d-0000-4000-8000-000000000002",
             "resource": observation("urn:uuid:6a2b3c4d-0000-4000-8000-000000000001", "2823-3"),
             "request": {"method": "POST", "url": "Observation"}},
            {"resource": {"resourceType": "Condition",
                          "subject": {"reference": format!("Patient?identifier={NHS}|{nhs}")},
                          "code": {"text": "Asthma"}},
             "request": {"method": "POST", "url": "Condition"}},
            {"fullUrl": "http://example.org/fhir/Practitioner/dr-lee",
             "resource": {"resourceType": "Practitioner", "id": "dr-lee", "name": [{"family": "Lee"}]},
             "request": {"method": "PUT", "url": "Practitioner/dr-lee"}},
            {"request": {"method": "GET", "url": format!("Patient?identifier={NHS}|{nhs}")}}
        ]
    })
}

#[test]
fn transactions_resolve_references_and_answer_every_entry() {
    let s = Server::start();
    let nhs = fresh_nhs_number();
    let r = post_bundle(&s, &person_bundle(&nhs, "Okafor"), &[]);
    assert_eq!(
        statuses(&r),
        [
            "201 Created",
            "201 Created",
            "201 Created",
            "201 Created",
            "200 OK"
        ]
    );
    let b = r.json();
    assert_eq!(b["type"], "transaction-response");
    let location = b["entry"][0]["response"]["location"].as_str().unwrap();
    let patient_id = location.split('/').nth(1).unwrap().to_string();
    assert!(location.ends_with("/_history/1"), "{location}");
    assert_eq!(b["entry"][0]["response"]["etag"], "W/\"1\"");
    // The urn:uuid and the conditional reference both point at the created Patient.
    let obs = b["entry"][1]["resource"].clone();
    assert_eq!(obs["subject"]["reference"], format!("Patient/{patient_id}"));
    assert_eq!(
        b["entry"][2]["resource"]["subject"]["reference"],
        format!("Patient/{patient_id}")
    );
    // The search in the same transaction sees the Patient it created.
    assert_eq!(b["entry"][4]["resource"]["type"], "searchset");
    assert_eq!(
        b["entry"][4]["resource"]["entry"][0]["resource"]["id"],
        patient_id.as_str()
    );
    let stored = s.get(&format!("/Observation?subject=Patient/{patient_id}"), &[]);
    assert_eq!(stored.json()["entry"].as_array().map(Vec::len), Some(1));

    // A second feed message about the same person attaches to the same Patient.
    let again = post_bundle(
        &s,
        &person_bundle(&nhs, "Okafor"),
        &[("Prefer", "return=minimal")],
    );
    let st = statuses(&again);
    assert_eq!(st[0], "200 OK", "the Patient is found, not created again");
    let b = again.json();
    assert!(b["entry"][1].get("resource").is_none(), "return=minimal");
    // Condition is stored but not searchable here: count it in the database.
    let conditions = count(
        &s,
        &format!(
            "SELECT count(*) FROM resource WHERE res_type = 'Condition' \
             AND convert_from(body, 'UTF8')::jsonb->'subject'->>'reference' = 'Patient/{patient_id}'"
        ),
    );
    assert_eq!(conditions, 2);
    assert_eq!(
        count(
            &s,
            "SELECT count(*) FROM resource WHERE res_type = 'Patient'"
        ),
        1
    );
}

#[test]
fn a_failing_entry_rolls_the_whole_transaction_back() {
    let s = Server::start();
    let nhs = fresh_nhs_number();
    let mut entries = vec![json!({
        "fullUrl": "urn:uuid:7a000000-0000-4000-8000-000000000000",
        "resource": patient_with_nhs("Novak", &nhs),
        "request": {"method": "POST", "url": "Patient"}
    })];
    for i in 1..60 {
        let mut o = observation("urn:uuid:7a000000-0000-4000-8000-000000000000", "718-7");
        if i == 49 {
            o["status"] = json!("not-a-status");
        }
        entries.push(json!({"resource": o, "request": {"method": "POST", "url": "Observation"}}));
    }
    let mut bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": entries});
    let before = (resources(&s), versions(&s));
    let oo = post_bundle(&s, &bundle, &[]).outcome(400);
    let text = oo.to_string();
    assert!(text.contains("Bundle.entry[49]"), "{text}");
    assert_eq!((resources(&s), versions(&s)), before);

    // A failure found only while writing (a stale If-Match on the 50th entry) also leaves no
    // trace: the 49 creates before it are rolled back.
    let stored = s.send_json(
        "PUT",
        "/Practitioner/p-stale",
        &json!({"resourceType": "Practitioner", "id": "p-stale"}),
        &[],
    );
    assert_eq!(stored.status, 201);
    bundle["entry"][49] = json!({
        "resource": {"resourceType": "Practitioner", "id": "p-stale", "active": true},
        "request": {"method": "PUT", "url": "Practitioner/p-stale", "ifMatch": "W/\"7\""}
    });
    let before = (resources(&s), versions(&s));
    let oo = post_bundle(&s, &bundle, &[]).outcome(412);
    assert!(oo.to_string().contains("Bundle.entry[49]"), "{oo}");
    assert_eq!((resources(&s), versions(&s)), before);
    // A conditional reference that finds nobody fails the transaction too.
    let orphan = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": observation(&format!("Patient?identifier={NHS}|{}", fresh_nhs_number()), "718-7"),
         "request": {"method": "POST", "url": "Observation"}}
    ]});
    post_bundle(&s, &orphan, &[]).outcome(412);
    assert_eq!((resources(&s), versions(&s)), before);
}

#[test]
fn a_batch_answers_each_entry_on_its_own() {
    let s = Server::start();
    let mut bad = observation("Patient/nobody", "718-7");
    bad["status"] = json!("bogus");
    let batch = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": patient("Ito"), "request": {"method": "POST", "url": "Patient"}},
        {"resource": bad, "request": {"method": "POST", "url": "Observation"}},
        {"request": {"method": "GET", "url": "Patient/does-not-exist"}},
        {"request": {"method": "DELETE", "url": "Flag/never-was"}},
        {"request": {"method": "FETCH", "url": "Patient"}}
    ]});
    let r = post_bundle(&s, &batch, &[]);
    let st = statuses(&r);
    assert_eq!(st[0], "201 Created");
    assert_eq!(st[1], "400 Bad Request");
    assert_eq!(st[2], "404 Not Found");
    assert_eq!(st[3], "204 No Content");
    assert_eq!(st[4], "400 Bad Request");
    let b = r.json();
    assert_eq!(b["type"], "batch-response");
    assert_eq!(
        b["entry"][1]["response"]["outcome"]["resourceType"],
        "OperationOutcome"
    );
    assert_eq!(
        count(
            &s,
            "SELECT count(*) FROM resource WHERE res_type = 'Patient'"
        ),
        1
    );
    // Not a batch or transaction, or too many entries: one clear error.
    post_bundle(
        &s,
        &json!({"resourceType": "Bundle", "type": "collection"}),
        &[],
    )
    .outcome(400);
    post_bundle(&s, &patient("Nope"), &[]).outcome(400);
}

#[test]
fn bundle_size_limits_are_enforced() {
    let s = Server::start_with(&[
        ("INVICTA_BUNDLE_MAX_ENTRIES", "3"),
        ("INVICTA_BUNDLE_MAX_BYTES", "20000"),
    ]);
    let entry =
        json!({"resource": patient("Many"), "request": {"method": "POST", "url": "Patient"}});
    let four =
        json!({"resourceType": "Bundle", "type": "batch", "entry": [entry, entry, entry, entry]});
    post_bundle(&s, &four, &[]).outcome(413);
    let big = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": {"resourceType": "Patient", "name": [{"text": "x".repeat(30000)}]},
         "request": {"method": "POST", "url": "Patient"}}
    ]});
    post_bundle(&s, &big, &[]).outcome(413);
    assert_eq!(resources(&s), 0);
}

#[test]
fn concurrent_conditional_creates_of_one_nhs_number_make_one_patient() {
    let s = Server::start();
    let nhs = fresh_nhs_number();
    let cond = format!("identifier={NHS}|{nhs}");
    let body = patient_with_nhs("Race", &nhs);
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..20)
            .map(|i| {
                let (s, cond, body) = (&s, &cond, &body);
                scope.spawn(move || {
                    if i % 2 == 0 {
                        s.send_json("POST", "/Patient", body, &[("If-None-Exist", cond)])
                            .status
                    } else {
                        let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
                            {"fullUrl": "urn:uuid:8a000000-0000-4000-8000-000000000000",
                             "resource": body, "request": {"method": "POST", "url": "Patient", "ifNoneExist": cond}},
                            {"resource": observation("urn:uuid:8a000000-0000-4000-8000-000000000000", "718-7"),
                             "request": {"method": "POST", "url": "Observation"}}
                        ]});
                        s.send_json("POST", "", &bundle, &[]).status
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 201),
        "{statuses:?}"
    );
    assert_eq!(
        count(
            &s,
            "SELECT count(*) FROM resource WHERE res_type = 'Patient'"
        ),
        1
    );
    // Every result of the ten transactions is about that one Patient.
    let id = sql_value(
        &s.db_url,
        "SELECT id FROM resource WHERE res_type = 'Patient'",
    );
    let attached = s.get(
        &format!("/Observation?subject=Patient/{id}&_total=accurate"),
        &[],
    );
    assert_eq!(attached.json()["total"], 10);
    // A second Patient with the same NHS number, by any route, is refused.
    let dup = s.send_json("POST", "/Patient", &patient_with_nhs("Twin", &nhs), &[]);
    let oo = dup.outcome(409);
    assert!(oo.to_string().contains(&format!("Patient/{id}")), "{oo}");
    let put = s.send_json(
        "PUT",
        "/Patient/twin",
        &{
            let mut p = patient_with_nhs("Twin", &nhs);
            p["id"] = json!("twin");
            p
        },
        &[],
    );
    put.outcome(409);
}

#[test]
fn replaying_a_feed_creates_no_new_versions() {
    let s = Server::start();
    let nhs = fresh_nhs_number();
    let cond = format!("identifier={NHS}|{nhs}");
    let feed = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:9a000000-0000-4000-8000-000000000000",
         "resource": patient_with_nhs("Replay", &nhs),
         "request": {"method": "PUT", "url": format!("Patient?{cond}")}},
        {"resource": {"resourceType": "Observation", "id": "replay-hb", "status": "final",
                      "code": {"text": "Hb"}, "subject": {"reference": "urn:uuid:9a000000-0000-4000-8000-000000000000"}},
         "request": {"method": "PUT", "url": "Observation/replay-hb"}},
        {"resource": {"resourceType": "AllergyIntolerance",
                      "identifier": [{"system": "urn:feed:allergy", "value": "a-1"}],
                      "patient": {"reference": format!("Patient?{cond}")}, "code": {"text": "Penicillin"}},
         "request": {"method": "POST", "url": "AllergyIntolerance", "ifNoneExist": "identifier=urn:feed:allergy|a-1"}}
    ]});
    assert_eq!(
        statuses(&post_bundle(&s, &feed, &[])),
        ["201 Created", "201 Created", "201 Created"]
    );
    let before = (resources(&s), versions(&s));
    for _ in 0..2 {
        assert_eq!(
            statuses(&post_bundle(&s, &feed, &[])),
            ["200 OK", "200 OK", "200 OK"]
        );
    }
    assert_eq!((resources(&s), versions(&s)), before);
    // Two stored matches for one entry's condition: 412, nothing written.
    let twin = json!({"resourceType": "AllergyIntolerance",
        "identifier": [{"system": "urn:feed:allergy", "value": "a-2"}],
        "patient": {"reference": "Patient/x"}, "code": {"text": "Latex"}});
    for _ in 0..2 {
        assert_eq!(
            s.send_json("POST", "/AllergyIntolerance", &twin, &[])
                .status,
            201
        );
    }
    let ambiguous = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": twin, "request": {"method": "POST", "url": "AllergyIntolerance",
                                       "ifNoneExist": "identifier=urn:feed:allergy|a-2"}}
    ]});
    post_bundle(&s, &ambiguous, &[]).outcome(412);
    let before = (resources(&s), versions(&s));
    // A changed message makes exactly one new version.
    let mut changed = feed.clone();
    changed["entry"][1]["resource"]["status"] = json!("amended");
    post_bundle(&s, &changed, &[]);
    assert_eq!(versions(&s), before.1 + 1);
}

#[test]
fn conditional_update_and_delete() {
    let s = Server::start();
    let nhs = fresh_nhs_number();
    let url = format!("/Patient?identifier={NHS}|{nhs}");
    let created = s.send_json("PUT", &url, &patient_with_nhs("Cond", &nhs), &[]);
    assert_eq!(created.status, 201, "no match: created");
    let id = created.json()["id"].as_str().unwrap().to_string();
    let mut changed = patient_with_nhs("Cond", &nhs);
    changed["gender"] = json!("male");
    let updated = s.send_json("PUT", &url, &changed, &[]);
    assert_eq!(updated.status, 200);
    assert_eq!(updated.json()["id"], id.as_str());
    assert_eq!(updated.header("etag"), Some("W/\"2\""));
    // Several matches: 412, nothing written.
    for _ in 0..2 {
        s.send_json(
            "POST",
            "/Flag",
            &json!({"resourceType": "Flag", "status": "active",
            "code": {"text": "x"}, "subject": {"reference": format!("Patient/{id}")}}),
            &[],
        );
    }
    let flags = format!("/Flag?subject=Patient/{id}");
    s.send_json(
        "PUT",
        &flags,
        &json!({"resourceType": "Flag", "status": "inactive", "code": {"text": "x"},
                "subject": {"reference": format!("Patient/{id}")}}),
        &[],
    )
    .outcome(412);
    s.send("DELETE", &flags, &[], b"").outcome(412);
    let one = s.send("DELETE", &url, &[], b"");
    assert_eq!(one.status, 204);
    assert_eq!(s.get(&format!("/Patient/{id}"), &[]).status, 410);
    assert_eq!(s.send("DELETE", &url, &[], b"").status, 204, "no match");
    let multi = Server::start_with(&[("INVICTA_CONDITIONAL_DELETE", "multiple")]);
    for _ in 0..3 {
        multi.send_json(
            "POST",
            "/Flag",
            &json!({"resourceType": "Flag", "status": "active",
            "code": {"text": "many"}, "subject": {"reference": "Patient/p"}}),
            &[],
        );
    }
    assert_eq!(
        multi
            .send("DELETE", "/Flag?subject=Patient/p", &[], b"")
            .status,
        204
    );
    assert_eq!(multi.get("/Flag?_total=accurate", &[]).json()["total"], 0);
}

#[test]
fn json_patch_and_fhirpath_patch() {
    let s = Server::start();
    let p = s.send_json("POST", "/Patient", &patient("Patch"), &[]);
    let id = p.json()["id"].as_str().unwrap().to_string();
    let path = format!("/Patient/{id}");
    let json_patch = br#"[{"op": "test", "path": "/gender", "value": "female"},
                          {"op": "replace", "path": "/gender", "value": "other"},
                          {"op": "add", "path": "/name/0/given/-", "value": "Beth"}]"#;
    let ct = ("Content-Type", "application/json-patch+json");
    let r = s.send("PATCH", &path, &[ct, ("If-Match", "W/\"1\"")], json_patch);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert_eq!(v["gender"], "other");
    assert_eq!(v["name"][0]["given"], json!(["Ann", "Beth"]));
    assert_eq!(v["meta"]["versionId"], "2");
    // A stale If-Match, a failed test and an invalid result change nothing.
    s.send("PATCH", &path, &[ct, ("If-Match", "W/\"1\"")], json_patch)
        .outcome(412);
    s.send("PATCH", &path, &[ct], json_patch).outcome(422);
    s.send(
        "PATCH",
        &path,
        &[ct],
        br#"[{"op": "replace", "path": "/gender", "value": "sometimes"}]"#,
    )
    .outcome(422);
    s.send("PATCH", &path, &[ct], b"[{\"op\": \"jump\"}]")
        .outcome(400);
    let fhirpath = json!({"resourceType": "Parameters", "parameter": [
        {"name": "operation", "part": [
            {"name": "type", "valueCode": "add"},
            {"name": "path", "valueString": "Patient"},
            {"name": "name", "valueString": "telecom"},
            {"name": "value", "valueContactPoint": {"system": "phone", "value": "01632 960000"}}]},
        {"name": "operation", "part": [
            {"name": "type", "valueCode": "replace"},
            {"name": "path", "valueString": "Patient.name.where(family = 'Patch').family"},
            {"name": "value", "valueString": "Patched"}]}
    ]});
    let r = s.send_json(
        "PATCH",
        &path,
        &fhirpath,
        &[("Content-Type", "application/fhir+json")],
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert_eq!(v["telecom"][0]["value"], "01632 960000");
    assert_eq!(v["name"][0]["family"], "Patched");
    assert_eq!(v["meta"]["versionId"], "3");
    assert_eq!(
        count(
            &s,
            &format!("SELECT count(*) FROM resource_history WHERE id = '{id}'")
        ),
        3
    );
    // Conditional patch, and a PATCH entry of a transaction (JSON Patch in a Binary).
    let nhs = v["identifier"][0]["value"].as_str().unwrap().to_string();
    let cond = format!("/Patient?identifier={NHS}|{nhs}");
    let r = s.send(
        "PATCH",
        &cond,
        &[ct],
        br#"[{"op": "replace", "path": "/birthDate", "value": "1960-01-01"}]"#,
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    use base64::Engine;
    let data = base64::engine::general_purpose::STANDARD
        .encode(br#"[{"op": "add", "path": "/active", "value": true}]"#);
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Binary", "contentType": "application/json-patch+json", "data": data},
         "request": {"method": "PATCH", "url": format!("Patient/{id}")}}
    ]});
    let r = post_bundle(&s, &bundle, &[]);
    assert_eq!(statuses(&r), ["200 OK"]);
    assert_eq!(s.get(&path, &[]).json()["active"], true);
}

#[test]
fn feeds_stamp_provenance_and_change_only_their_own_data() {
    let s = Server::secure();
    let feed_a = format!(
        "Bearer {}",
        s.sign(
            json!({"role": "feed", "scope": "system/*.cruds", "org": "RAA", "client_id": "pas-a"})
        )
    );
    let feed_b = format!(
        "Bearer {}",
        s.sign(
            json!({"role": "feed", "scope": "system/*.cruds", "org": "RBB", "client_id": "lab-b"})
        )
    );
    let nhs = fresh_nhs_number();
    let mut message = person_bundle(&nhs, "Stamp");
    // A body that claims another organisation is restamped from the token.
    message["entry"][1]["resource"]["meta"] = json!({"source": "forged",
        "tag": [{"system": "https://fhir.nhs.uk/Id/ods-organization-code", "code": "RBB"}]});
    let r = post_bundle(&s, &message, &[("Authorization", &feed_a)]);
    assert_eq!(
        statuses(&r)[..4],
        ["201 Created", "201 Created", "201 Created", "201 Created"]
    );
    let b = r.json();
    let obs = &b["entry"][1]["resource"];
    assert_eq!(
        obs["meta"]["source"],
        "https://invicta.example.org/fhir/source/client/pas-a"
    );
    assert_eq!(
        obs["meta"]["tag"],
        json!([{"system": "https://fhir.nhs.uk/Id/ods-organization-code", "code": "RAA"}])
    );
    let obs_id = obs["id"].as_str().unwrap().to_string();
    let patient_id = b["entry"][0]["resource"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let by_tag = s.get(
        "/Observation?_tag=https://fhir.nhs.uk/Id/ods-organization-code|RAA&_total=accurate",
        &[("Authorization", &feed_a)],
    );
    assert_eq!(by_tag.json()["total"], 1);
    let by_source = s.get(
        "/Observation?_source=https://invicta.example.org/fhir/source/client/pas-a&_total=accurate",
        &[("Authorization", &feed_a)],
    );
    assert_eq!(by_source.json()["total"], 1);

    // Feed B attaches its own result to the same person by NHS number...
    let lab = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": observation(&format!("Patient?identifier={NHS}|{nhs}"), "2951-2"),
         "request": {"method": "POST", "url": "Observation"}}
    ]});
    let r = post_bundle(&s, &lab, &[("Authorization", &feed_b)]);
    assert_eq!(statuses(&r), ["201 Created"]);
    assert_eq!(
        r.json()["entry"][0]["resource"]["subject"]["reference"],
        format!("Patient/{patient_id}")
    );
    // Feed B's own registration of the person finds the same Patient and links its hospital
    // number to it; the Patient stays feed A's.
    let mut b_patient = patient_with_nhs("Stamp", &nhs);
    b_patient["identifier"].as_array_mut().unwrap().push(
        json!({"system": "urn:oid:2.16.840.1.113883.2.1.3.2.4.18.99|RBB", "value": "B-7731"}),
    );
    let linked = s.send_json(
        "POST",
        "/Patient",
        &b_patient,
        &[
            ("Authorization", &feed_b),
            ("If-None-Exist", &format!("identifier={NHS}|{nhs}")),
        ],
    );
    assert_eq!(
        linked.status,
        200,
        "{}",
        String::from_utf8_lossy(&linked.body)
    );
    let linked = linked.json();
    assert_eq!(linked["id"], patient_id.as_str());
    assert!(linked.to_string().contains("B-7731"), "{linked}");
    assert_eq!(linked["meta"]["tag"][0]["code"], "RAA");
    let by_hospital_number = s.get(
        "/Patient?identifier=B-7731&_total=accurate",
        &[("Authorization", &feed_a)],
    );
    assert_eq!(by_hospital_number.json()["total"], 1);
    let mut own = linked.clone();
    own["gender"] = json!("unknown");
    let kept = s.send_json(
        "PUT",
        &format!("/Patient/{patient_id}"),
        &own,
        &[("Authorization", &feed_a)],
    );
    assert_eq!(kept.status, 200, "feed A still owns its Patient");
    // A source whose demographics differ keeps its own view, linked to the person's Patient.
    let mut b_view = b_patient.clone();
    b_view["name"][0]["family"] = json!("Stamp-Jones");
    let cond = format!("identifier={NHS}|{nhs}");
    let b_headers = [
        ("Authorization", feed_b.as_str()),
        ("If-None-Exist", cond.as_str()),
    ];
    let r = s.send_json("POST", "/Patient", &b_view, &b_headers);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["id"], patient_id.as_str());
    let view = s.get(
        &format!("/Patient/{patient_id}-RBB"),
        &[("Authorization", &feed_b)],
    );
    assert_eq!(view.status, 200, "{}", String::from_utf8_lossy(&view.body));
    let view = view.json();
    assert_eq!(view["name"][0]["family"], "Stamp-Jones");
    assert_eq!(view["link"][0]["type"], "refer");
    assert_eq!(
        view["link"][0]["other"]["reference"],
        format!("Patient/{patient_id}")
    );
    assert_eq!(view["meta"]["tag"][0]["code"], "RBB");
    assert!(view.get("identifier").is_none(), "{view}");
    let person = s.get(
        &format!("/Patient/{patient_id}"),
        &[("Authorization", &feed_a)],
    );
    assert_eq!(person.json()["name"][0]["family"], "Stamp");
    let before = versions(&s);
    let again = s.send_json("POST", "/Patient", &b_view, &b_headers);
    assert_eq!(again.status, 200);
    assert_eq!(versions(&s), before, "a repeated message changes nothing");

    // ...but cannot overwrite feed A's data in a transaction: 403, nothing written, audited.
    let mut overwrite = obs.clone();
    overwrite["status"] = json!("cancelled");
    let attempt = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": observation(&format!("Patient/{patient_id}"), "1234-5"),
         "request": {"method": "POST", "url": "Observation"}},
        {"resource": overwrite, "request": {"method": "PUT", "url": format!("Observation/{obs_id}")}}
    ]});
    let before = versions(&s);
    post_bundle(
        &s,
        &attempt,
        &[
            ("Authorization", &feed_b),
            ("X-Request-Id", "bundle-overwrite"),
        ],
    )
    .outcome(403);
    assert_eq!(versions(&s), before);
    s.settle_audit();
    let audited = count(
        &s,
        "SELECT count(*) FROM audit_resource \
         WHERE convert_from(body, 'UTF8') LIKE '%bundle-overwrite%' \
         AND convert_from(body, 'UTF8')::jsonb->>'outcome' = '4'",
    );
    assert_eq!(audited, 1);
    // The successful transactions were audited with every resource they wrote.
    let written = count(
        &s,
        &format!(
            "SELECT count(*) FROM audit_resource \
             WHERE convert_from(body, 'UTF8') LIKE '%Observation/{obs_id}/_history/1%'"
        ),
    );
    assert!(written >= 1);
}

/// Runs `invicta load` against the server's database; returns (success, stdout, stderr).
fn load(s: &Server, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_invicta"))
        .arg("load")
        .args(args)
        .env("DATABASE_URL", &s.db_url)
        .env("INVICTA_LOG", "error")
        .env("INVICTA_SIGNING_KEY", &s.key_path)
        .output()
        .expect("run invicta load");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn invicta_load_reads_ndjson_and_bundles_through_the_rest_path() {
    let s = Server::start();
    let dir = tempfile_dir("load");
    let nhs = fresh_nhs_number();
    let mut lines = vec![
        serde_json::to_string(&{
            let mut p = patient_with_nhs("Loaded", &nhs);
            p["id"] = json!("loaded-1");
            p
        })
        .unwrap(),
        serde_json::to_string(&observation("Patient/loaded-1", "718-7")).unwrap(),
        serde_json::to_string(&{
            let mut o = observation("Patient/loaded-1", "2823-3");
            o["id"] = json!("loaded-obs");
            o
        })
        .unwrap(),
    ];
    std::fs::write(dir.join("good.ndjson"), lines.join("\n") + "\n").unwrap();
    let (ok, stdout, stderr) = load(
        &s,
        &["--org", "RLD", "--client", "loader", dir.to_str().unwrap()],
    );
    assert!(ok, "{stdout}\n{stderr}");
    assert!(stdout.contains("loaded 3 resources"), "{stdout}");
    // Provenance and indexing as over REST.
    let obs = s.get("/Observation/loaded-obs", &[]).json();
    assert_eq!(
        obs["meta"]["source"],
        "https://invicta.example.org/fhir/source/client/loader"
    );
    assert_eq!(obs["meta"]["tag"][0]["code"], "RLD");
    let found = s.get("/Observation?subject=Patient/loaded-1&_total=accurate", &[]);
    assert_eq!(found.json()["total"], 2);

    // Loading the lines with ids again changes nothing; a bad line fails alone and is reported.
    let before = versions(&s);
    lines.remove(1);
    lines.push("{\"resourceType\": \"Observation\", \"status\": \"nonsense\"}".into());
    lines.push("not json".into());
    std::fs::write(dir.join("good.ndjson"), lines.join("\n") + "\n").unwrap();
    let file = dir.join("good.ndjson");
    let (ok, stdout, stderr) = load(
        &s,
        &["--org", "RLD", "--client", "loader", file.to_str().unwrap()],
    );
    assert!(!ok, "a failed line makes a non-zero exit");
    assert!(stdout.contains("2 unchanged"), "{stdout}");
    assert!(stderr.contains("good.ndjson:3"), "{stderr}");
    assert!(stderr.contains("good.ndjson:4"), "{stderr}");
    assert_eq!(versions(&s), before);

    // A transaction Bundle file is all or nothing.
    let mut bad = observation("Patient/loaded-1", "718-7");
    bad["status"] = json!("nope");
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": observation("Patient/loaded-1", "718-7"), "request": {"method": "POST", "url": "Observation"}},
        {"resource": bad, "request": {"method": "POST", "url": "Observation"}}
    ]});
    std::fs::write(dir.join("message.json"), bundle.to_string()).unwrap();
    let (ok, _, stderr) = load(&s, &[dir.join("message.json").to_str().unwrap()]);
    assert!(!ok);
    assert!(stderr.contains("message.json#entry[1]"), "{stderr}");
    assert_eq!(versions(&s), before);
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempfile_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "invicta-{name}-{}-{}",
        std::process::id(),
        fresh_nhs_number()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn replaying_the_sample_feed_leaves_version_counts_unchanged() {
    let s = Server::start();
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples");
    let args = ["--org", "R0X", "--client", "sample-loader", examples];
    let (ok, stdout, stderr) = load(&s, &args);
    assert!(ok, "{stdout}\n{stderr}");
    let loaded = resources(&s);
    assert!(loaded >= 60, "{stdout}");
    let before = versions(&s);
    for _ in 0..2 {
        let (ok, stdout, stderr) = load(&s, &args);
        assert!(ok, "{stdout}\n{stderr}");
        assert!(stdout.contains(&format!("{loaded} unchanged")), "{stdout}");
        assert_eq!(versions(&s), before);
    }
}
