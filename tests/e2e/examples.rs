//! Every sample file in examples/ loads by PUT and reads back unchanged apart from `meta`.

use std::path::Path;

use serde_json::Value;

use crate::harness::Server;

/// The resource without what the server sets: version, time, and the labels its content calls
/// for (checked on their own in `content_labels_are_added`).
fn without_meta(mut v: Value) -> Value {
    if let Some(meta) = v.get_mut("meta").and_then(Value::as_object_mut) {
        meta.remove("versionId");
        meta.remove("lastUpdated");
        meta.remove("security");
        if meta.is_empty() {
            v.as_object_mut().unwrap().remove("meta");
        }
    }
    v
}

#[test]
fn sample_files_round_trip() {
    let s = Server::start();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let order = std::fs::read_to_string(dir.join("load-order.txt")).unwrap();
    let files: Vec<&str> = order
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('['))
        .collect();
    assert!(
        files.len() >= 30,
        "examples/load-order.txt lists {} files",
        files.len()
    );
    let mut patients = 0;
    for file in &files {
        let original: Value =
            serde_json::from_slice(&std::fs::read(dir.join(file)).unwrap()).unwrap();
        let rt = original["resourceType"].as_str().unwrap();
        let id = original["id"].as_str().unwrap();
        assert_eq!(file.to_string(), format!("{rt}-{id}.json"));
        patients += usize::from(rt == "Patient");
        let r = s.send_json("PUT", &format!("/{rt}/{id}"), &original, &[]);
        assert_eq!(
            r.status,
            201,
            "{file}: {}",
            String::from_utf8_lossy(&r.body)
        );
        let back = s.get(&format!("/{rt}/{id}"), &[]).json();
        assert_eq!(without_meta(back), without_meta(original.clone()), "{file}");
        // XML both ways preserves the content too.
        let xml = s.get(
            &format!("/{rt}/{id}"),
            &[("Accept", "application/fhir+xml")],
        );
        assert_eq!(xml.status, 200, "{file}");
        let mut again = s.send(
            "PUT",
            &format!("/{rt}/{id}"),
            &[("Content-Type", "application/fhir+xml")],
            &xml.body,
        );
        assert_eq!(
            again.status,
            200,
            "{file}: {}",
            String::from_utf8_lossy(&again.body)
        );
        again.body = s.get(&format!("/{rt}/{id}"), &[]).body;
        assert_eq!(
            without_meta(again.json()),
            without_meta(original),
            "{file} via XML"
        );
    }
    assert!(patients >= 5);
    // Loading twice is idempotent: no new versions.
    let before = s.get("/_history?_count=0", &[]).json()["total"].clone();
    for file in &files {
        let original: Value =
            serde_json::from_slice(&std::fs::read(dir.join(file)).unwrap()).unwrap();
        let path = format!(
            "/{}/{}",
            original["resourceType"].as_str().unwrap(),
            original["id"].as_str().unwrap()
        );
        assert_eq!(s.send_json("PUT", &path, &original, &[]).status, 200);
    }
    assert_eq!(s.get("/_history?_count=0", &[]).json()["total"], before);
}
