//! Every type of the record is searchable: each sample resource is found by every value of
//! every search parameter it has, and conditional creates, chains, `_has`, `_include` and
//! `_revinclude` work on the types beyond the first six.

use std::path::Path;

use fhir_model::index::{IndexEntry, IndexValue};
use serde_json::{json, Value};

use crate::harness::{Resp, Server};

/// A search value that must match `v` (None when the kind has no simple exact form).
fn query_value(v: &IndexValue) -> Option<String> {
    let esc = |s: &str| {
        s.replace('\\', "\\\\")
            .replace(',', "\\,")
            .replace('|', "\\|")
            .replace('$', "\\$")
    };
    let instant =
        |t: &chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    Some(match v {
        IndexValue::String { value, .. } if value.chars().any(char::is_alphanumeric) => esc(value),
        IndexValue::Token {
            system,
            code: Some(code),
            ..
        } => match system {
            Some(s) => format!("{}|{}", esc(s), esc(code)),
            None => esc(code),
        },
        IndexValue::Date { start: Some(s), .. } => format!("ge{}", instant(s)),
        IndexValue::Date { end: Some(e), .. } => format!("le{}", instant(e)),
        IndexValue::Reference {
            target_type: Some(t),
            target_id: Some(id),
            ..
        } => format!("{t}/{}", esc(id)),
        IndexValue::Reference { url: Some(u), .. } => esc(u),
        IndexValue::Quantity {
            value,
            system,
            code,
            ..
        } => format!(
            "{value}|{}|{}",
            system.as_deref().map(esc).unwrap_or_default(),
            code.as_deref().map(esc).unwrap_or_default()
        ),
        IndexValue::Number { value, .. } => value.clone(),
        IndexValue::Uri { value } => esc(value),
        _ => return None,
    })
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn ids(r: &Resp) -> Vec<String> {
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()["entry"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|e| {
            format!(
                "{}/{}",
                e["resource"]["resourceType"].as_str().unwrap(),
                e["resource"]["id"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn every_sample_resource_is_found_by_each_of_its_search_values() {
    let s = Server::start();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let order = std::fs::read_to_string(dir.join("load-order.txt")).unwrap();
    let mut types = std::collections::BTreeSet::new();
    let mut checked = 0;
    let files: Vec<&str> = order
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('['))
        .collect();
    for file in &files {
        let v: Value = serde_json::from_slice(&std::fs::read(dir.join(file)).unwrap()).unwrap();
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
    }
    for file in &files {
        let v: Value = serde_json::from_slice(&std::fs::read(dir.join(file)).unwrap()).unwrap();
        let (rt, id) = (
            v["resourceType"].as_str().unwrap(),
            v["id"].as_str().unwrap(),
        );
        types.insert(rt.to_string());
        for IndexEntry { param, value } in fhir_model::index::extract(&v) {
            let Some(q) = query_value(&value) else {
                continue;
            };
            let modifier = if matches!(value, IndexValue::String { .. }) {
                ":exact"
            } else {
                ""
            };
            let url = format!(
                "/{rt}?_id={}&{param}{modifier}={}&_total=accurate",
                encode(id),
                encode(&q)
            );
            let r = s.get(&url, &[]);
            assert_eq!(ids(&r), [format!("{rt}/{id}")], "{file}: {url}");
            checked += 1;
        }
    }
    assert!(types.len() >= 20, "{types:?}");
    assert!(checked > 1000, "{checked}");
}

#[test]
fn conditional_creates_chains_has_and_includes_work_on_every_type() {
    let s = Server::start();
    let put = |v: Value| {
        let path = format!(
            "/{}/{}",
            v["resourceType"].as_str().unwrap(),
            v["id"].as_str().unwrap()
        );
        assert_eq!(s.send_json("PUT", &path, &v, &[]).status, 201, "{path}");
    };
    put(json!({"resourceType": "Patient", "id": "wr-p", "name": [{"family": "Whole"}]}));
    put(
        json!({"resourceType": "Location", "id": "wr-ward", "name": "Kestrel Ward",
        "physicalType": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/location-physical-type", "code": "wa"}]}}),
    );
    let admission = json!({"resourceType": "Encounter", "status": "in-progress",
        "identifier": [{"system": "https://trust.example/encounter", "value": "ADM-1"}],
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
        "subject": {"reference": "Patient/wr-p"},
        "location": [{"location": {"reference": "Location/wr-ward"}, "status": "active"}]});
    // A feed's conditional create: once, then the same Encounter again.
    let cond = [(
        "If-None-Exist",
        "identifier=https://trust.example/encounter|ADM-1",
    )];
    let first = s.send_json("POST", "/Encounter", &admission, &cond);
    assert_eq!(first.status, 201);
    let again = s.send_json("POST", "/Encounter", &admission, &cond);
    assert_eq!(again.status, 200);
    assert_eq!(
        s.get("/Encounter?identifier=ADM-1&_total=accurate", &[])
            .json()["total"],
        1
    );
    let enc = first.json()["id"].as_str().unwrap().to_string();
    put(
        json!({"resourceType": "Condition", "id": "wr-dx", "subject": {"reference": "Patient/wr-p"},
        "encounter": {"reference": format!("Encounter/{enc}")},
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "840539006"}]}}),
    );
    // A chain through an Encounter, a reverse chain from a Condition.
    assert_eq!(
        ids(&s.get("/Condition?encounter.class=IMP", &[])),
        ["Condition/wr-dx"]
    );
    assert_eq!(
        ids(&s.get("/Condition?encounter:Encounter.location.name=kestrel", &[])),
        ["Condition/wr-dx"]
    );
    assert_eq!(
        ids(&s.get(
            "/Encounter?_has:Condition:encounter:code=http://snomed.info/sct|840539006",
            &[]
        )),
        [format!("Encounter/{enc}")]
    );
    // Where is the person now: the in-progress admission with its ward.
    let now = s.get(
        "/Encounter?patient=wr-p&status=in-progress&_include=Encounter:location",
        &[],
    );
    assert_eq!(
        ids(&now),
        [format!("Encounter/{enc}"), "Location/wr-ward".into()]
    );
    let rev = s.get(
        &format!("/Encounter?_id={enc}&_revinclude=Condition:encounter"),
        &[],
    );
    assert_eq!(
        ids(&rev),
        [format!("Encounter/{enc}"), "Condition/wr-dx".into()]
    );
    // Every type is in the CapabilityStatement with its parameters.
    let cs = s.get("/metadata", &[]).json();
    let resources = cs["rest"][0]["resource"].as_array().unwrap();
    let encounter = resources.iter().find(|r| r["type"] == "Encounter").unwrap();
    assert!(encounter["searchParam"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == "service-type"));
    assert!(resources
        .iter()
        .filter(|r| r["type"] != "Parameters" && r["type"] != "Binary")
        .all(|r| r["searchParam"].as_array().is_some_and(|p| !p.is_empty())));
}
