//! Hostile input: nesting. Deep XML once overflowed the stack and aborted the server, and depth
//! accepted on write could not be served on read; one limit (`fhir_model::nesting::MAX_NESTING`
//! JSON levels) now holds for every body, and every read path serves a resource at exactly it.

use fhir_model::nesting::MAX_NESTING;
use serde_json::{json, Value};

use super::{refused, still_healthy, versions};
use crate::harness::{patient, Server};

const XML: (&str, &str) = ("Content-Type", "application/fhir+xml");
const JSON: (&str, &str) = ("Content-Type", "application/fhir+json");

/// An Observation of Patient/p1 whose extensions nest until the whole is exactly `levels` deep.
fn deep_observation(levels: usize) -> Value {
    let (mut ext, mut at) = if levels % 2 == 1 {
        (json!({"url": "http://e/x", "valueString": "leaf"}), levels)
    } else {
        (
            json!({"url": "http://e/x", "valueCoding": {"code": "leaf"}}),
            levels - 1,
        )
    };
    while at > 3 {
        ext = json!({"url": "http://e/x", "extension": [ext]});
        at -= 2;
    }
    let o = json!({"resourceType": "Observation", "status": "final", "code": {"text": "deep"},
        "subject": {"reference": "Patient/p1"}, "extension": [ext]});
    assert_eq!(fhir_model::nesting::depth(&o), levels);
    o
}

/// The XML of a resource, written as a client would (fhirbolt writes any depth).
fn xml_of(v: &Value) -> Vec<u8> {
    fhir_model::format::to_xml(v).expect("XML")
}

/// `<extension>` nested `n` deep around a string value, as raw XML.
fn nested_extensions(n: usize) -> String {
    format!(
        "{}<valueString value=\"x\"/>{}",
        "<extension url=\"http://e/x\">".repeat(n),
        "</extension>".repeat(n)
    )
}

fn names_the_limit(what: &str, oo: &Value) {
    let text = oo["issue"][0]["diagnostics"].as_str().unwrap_or_default();
    assert!(text.contains("nests deeper than the limit"), "{what}: {oo}");
}

#[test]
fn deep_xml_bundle_from_a_patient_token_is_refused_and_the_server_lives() {
    let s = Server::secure();
    let bearer = format!(
        "Bearer {}",
        s.token("patient", "patient/*.rs", None, Some("p1"))
    );
    let before = versions(&s);
    let bundle = format!(
        "<Bundle xmlns=\"http://hl7.org/fhir\"><type value=\"batch\"/>{}{}</Bundle>",
        "<a>".repeat(1500),
        "</a>".repeat(1500)
    );
    let headers = [XML, ("Authorization", bearer.as_str())];
    let r = s.send("POST", "", &headers, bundle.as_bytes());
    names_the_limit("1500-deep XML Bundle", &refused("1500-deep XML Bundle", &r));
    let obs = format!(
        "<Observation xmlns=\"http://hl7.org/fhir\"><status value=\"final\"/><code><text value=\"t\"/></code>{}</Observation>",
        nested_extensions(700)
    );
    let r = s.send("POST", "/Observation", &headers, obs.as_bytes());
    refused("Observation with extensions 700 deep", &r);
    assert_eq!(versions(&s), before, "refused writes wrote nothing");
    still_healthy(&s);
}

/// What is sent, the method, the path, the `Content-Type` header and the body.
type Case = (
    &'static str,
    &'static str,
    &'static str,
    (&'static str, &'static str),
    Vec<u8>,
);

#[test]
fn deep_bodies_are_refused_wherever_they_arrive() {
    let s = Server::start();
    let mut p1 = patient("Deep");
    p1["id"] = "p1".into();
    let r = s.send_json("PUT", "/Patient/p1", &p1, &[]);
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let mut shallow = deep_observation(5);
    shallow["id"] = "o1".into();
    let r = s.send_json("PUT", "/Observation/o1", &shallow, &[]);
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let before = versions(&s);

    let too_deep = deep_observation(MAX_NESTING + 1);
    let cases: Vec<Case> = vec![
        ("JSON one level too deep", "POST", "/Observation", JSON, serde_json::to_vec(&too_deep).unwrap()),
        ("XML one level too deep", "POST", "/Observation", XML, xml_of(&too_deep)),
        ("JSON update too deep", "PUT", "/Observation/o1", JSON, {
            let mut o = too_deep.clone();
            o["id"] = "o1".into();
            serde_json::to_vec(&o).unwrap()
        }),
        ("JSON arrays 100,000 deep", "POST", "/Observation", JSON,
            format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes()),
        ("XML elements 100,000 deep", "POST", "/Observation", XML,
            format!("<Observation xmlns=\"http://hl7.org/fhir\">{}</Observation>", nested_extensions(100_000)).into_bytes()),
        ("transaction entry too deep", "POST", "", JSON, serde_json::to_vec(&json!({
            "resourceType": "Bundle", "type": "transaction",
            "entry": [{"resource": too_deep, "request": {"method": "POST", "url": "Observation"}}]
        })).unwrap()),
        ("XML transaction entry too deep", "POST", "", XML, xml_of(&json!({
            "resourceType": "Bundle", "type": "transaction",
            "entry": [{"resource": too_deep, "request": {"method": "POST", "url": "Observation"}}]
        }))),
        ("JSON Patch document too deep", "PATCH", "/Observation/o1", ("Content-Type", "application/json-patch+json"),
            format!("[{{\"op\":\"add\",\"path\":\"/extension/0/extension\",\"value\":{}1{}}}]",
                "[".repeat(200), "]".repeat(200)).into_bytes()),
        ("JSON Patch result too deep", "PATCH", "/Observation/o1", ("Content-Type", "application/json-patch+json"),
            serde_json::to_vec(&json!([{"op": "add", "path": "/extension/-",
                "value": too_deep["extension"][0]}])).unwrap()),
        ("batch whose entry is too deep", "POST", "", JSON, serde_json::to_vec(&json!({
            "resourceType": "Bundle", "type": "batch",
            "entry": [{"resource": too_deep, "request": {"method": "POST", "url": "Observation"}}]
        })).unwrap()),
    ];
    for (what, method, path, ct, body) in &cases {
        let r = s.send(method, path, &[*ct], body);
        let oo = refused(what, &r);
        if !what.contains("100,000") {
            names_the_limit(what, &oo);
        }
    }
    assert_eq!(versions(&s), before, "refused writes wrote nothing");
    still_healthy(&s);
}

#[test]
fn the_deepest_accepted_resource_is_served_on_every_read_path() {
    let s = Server::start();
    let mut p1 = patient("Deep");
    p1["id"] = "p1".into();
    let r = s.send_json("PUT", "/Patient/p1", &p1, &[]);
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let deepest = deep_observation(MAX_NESTING);
    let mut ids = Vec::new();
    for (ct, body) in [
        (JSON, serde_json::to_vec(&deepest).unwrap()),
        (XML, xml_of(&deepest)),
    ] {
        let r = s.send("POST", "/Observation", &[ct], &body);
        assert_eq!(
            r.status,
            201,
            "{}: {}",
            ct.1,
            String::from_utf8_lossy(&r.body)
        );
        ids.push(r.json()["id"].as_str().unwrap().to_string());
    }
    for id in &ids {
        for path in [
            format!("/Observation/{id}"),
            format!("/Observation/{id}?_format=xml"),
            format!("/Observation/{id}?_summary=true"),
            format!("/Observation/{id}?_summary=true&_format=xml"),
            format!("/Observation/{id}?_elements=status,extension"),
            format!("/Observation/{id}?_elements=extension&_format=xml"),
            format!("/Observation/{id}?_pretty=true"),
            format!("/Observation/{id}/_history"),
            format!("/Observation/{id}/_history?_format=xml"),
            format!("/Observation/{id}/_history/1?_format=xml"),
            format!("/Observation?_id={id}&_format=xml"),
            format!("/Observation?_id={id}&_summary=data"),
        ] {
            let r = s.get(&path, &[]);
            assert_eq!(
                r.status,
                200,
                "{path}: {}",
                String::from_utf8_lossy(&r.body)
            );
        }
    }
    for path in [
        "/Observation/_history",
        "/Observation/_history?_format=xml",
        "/_history",
        "/_history?_format=xml",
        "/Patient/p1/$everything",
        "/Patient/p1/$everything?_format=xml",
    ] {
        let r = s.get(path, &[]);
        assert_eq!(
            r.status,
            200,
            "{path}: {}",
            String::from_utf8_lossy(&r.body)
        );
    }
    let batch = json!({"resourceType": "Bundle", "type": "batch", "entry": ids.iter().map(|id|
        json!({"request": {"method": "GET", "url": format!("Observation/{id}")}})).collect::<Vec<_>>()});
    for query in ["", "?_format=xml"] {
        let r = s.send_json("POST", query, &batch, &[]);
        assert_eq!(
            r.status,
            200,
            "batch{query}: {}",
            String::from_utf8_lossy(&r.body)
        );
    }
    let r = s.send_json("POST", "", &batch, &[]).json();
    for entry in r["entry"].as_array().unwrap() {
        assert_eq!(
            entry["response"]["status"].as_str().unwrap_or("")[..3],
            *"200",
            "{entry}"
        );
    }
    // And the stored resource reads back whole, as JSON and through XML.
    let back = s.get(&format!("/Observation/{}", ids[1]), &[]).json();
    assert_eq!(back["extension"], deepest["extension"]);
    still_healthy(&s);
}
