//! Several `invicta` processes on one database act as one server: what one writes another
//! reads, a paging link one made another follows, with no setting kept equal by hand (the
//! cursor key is the database's), and a token one issued another accepts.

use serde_json::json;

use crate::harness::Server;

#[test]
fn a_second_process_reads_the_first_ones_writes_and_follows_its_paging_links() {
    let s = Server::secure();
    let peer = s.peer();
    let feed = format!(
        "Bearer {}",
        s.token("feed", "system/*.crus", Some("RWF"), None)
    );
    s.put_patient("ada", "Lovelace", "9000000009");
    for i in 0..25 {
        let obs = json!({"resourceType": "Observation", "id": format!("ada-{i}"), "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": {"reference": "Patient/ada"},
            "effectiveDateTime": format!("2026-11-{:02}T09:00:00Z", i + 1),
            "valueQuantity": {"value": 60 + i, "unit": "/min"}});
        let r = s.send_json(
            "PUT",
            &format!("/Observation/ada-{i}"),
            &obs,
            &[("Authorization", &feed)],
        );
        assert_eq!(r.status, 201);
    }
    // A token signed through the first process's key ring, used at the second.
    let gp = format!("Bearer {}", s.token("gp", "user/*.rs", Some("RWF"), None));
    let read = peer.get("/Observation/ada-7", &[("Authorization", &gp)]);
    assert_eq!(read.status, 200, "{}", String::from_utf8_lossy(&read.body));
    assert_eq!(read.json()["valueQuantity"]["value"], 67);

    // Page one from the first process; its next link followed at the second.
    let first = s.get(
        "/Observation?patient=ada&_sort=date&_count=10",
        &[("Authorization", &gp)],
    );
    assert_eq!(first.status, 200);
    let next = first.json()["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["relation"] == "next")
        .map(|l| l["url"].as_str().unwrap().to_string())
        .expect("a next link");
    let path = next
        .strip_prefix(&s.base)
        .expect("links are on the base URL");
    let second = peer.get(path, &[("Authorization", &gp)]);
    assert_eq!(
        second.status,
        200,
        "{}",
        String::from_utf8_lossy(&second.body)
    );
    let ids = |b: &serde_json::Value| -> Vec<String> {
        b["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["resource"]["id"].as_str().unwrap().to_string())
            .collect()
    };
    let (one, two) = (ids(&first.json()), ids(&second.json()));
    assert_eq!(one.len(), 10);
    assert_eq!(two.len(), 10);
    assert_eq!(one[0], "ada-0");
    assert_eq!(two[0], "ada-10", "page two follows page one");
}
