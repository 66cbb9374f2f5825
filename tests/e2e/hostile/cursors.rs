//! Hostile input: page cursors. A `_cursor` the server did not issue for this very search
//! (forged by hand with any value for any sort-key type, truncated, edited, not hex, empty,
//! NUL, or another search's) is a 400 OperationOutcome; it never reaches SQL.

use serde_json::{json, Value};

use super::{refused, still_healthy};
use crate::harness::{patient, Server};

/// The hex form the server's cursors once had, unsigned: `f<snapshot>␟<rid>␟v<value>…`.
fn forged(values: &[&str]) -> String {
    let mut raw = String::from("f999999\u{1f}1");
    for v in values {
        raw.push('\u{1f}');
        raw.push('v');
        raw.push_str(v);
    }
    hex(raw.as_bytes())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn next_url(page: &Value) -> String {
    page["link"]
        .as_array()
        .and_then(|l| l.iter().find(|l| l["relation"] == "next"))
        .and_then(|l| l["url"].as_str())
        .expect("a next link")
        .to_string()
}

fn cursor_of(url: &str) -> String {
    url.split("_cursor=")
        .nth(1)
        .expect("_cursor")
        .split('&')
        .next()
        .unwrap()
        .to_string()
}

fn seed(s: &Server) {
    for (i, family) in ["Ames", "Bell", "Cole", "Dunn"].iter().enumerate() {
        let r = s.send_json("POST", "/Patient", &patient(family), &[]);
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
        let obs = json!({"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "effectiveDateTime": format!("2024-01-0{}T10:00:00Z", i + 1),
            "valueQuantity": {"value": 60 + i, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}});
        let r = s.send_json("POST", "/Observation", &obs, &[]);
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    }
}

/// Every sort-key type: `_lastUpdated`, `_id`, string, token, date and quantity.
const SEARCHES: &[&str] = &[
    "/Patient?_sort=_lastUpdated&_count=1",
    "/Patient?_sort=-_id&_count=1",
    "/Patient?_sort=family&_count=1",
    "/Patient?_sort=gender,family&_count=1",
    "/Observation?_sort=-date&_count=1",
    "/Observation?_sort=value-quantity&_count=1",
    "/Observation?_sort=date,value-quantity,_id&_count=1",
    "/Patient?_count=1",
];

#[test]
fn forged_and_damaged_cursors_are_refused_for_every_sort_key() {
    let s = Server::start();
    seed(&s);
    let junk = [
        "not-a-date",
        "1e999999",
        "",
        "\0",
        "2024-01-01 00:00:00+00",
        "NaN",
        "-Infinity",
        "99999999999999999999999999999999999999999999",
    ];
    for search in SEARCHES {
        let first = s.get(search, &[]);
        assert_eq!(
            first.status,
            200,
            "{search}: {}",
            String::from_utf8_lossy(&first.body)
        );
        let genuine = cursor_of(&next_url(&first.json()));
        let keys = search.matches(',').count() + usize::from(search.contains("_sort"));
        let mut cursors: Vec<(String, String)> = Vec::new();
        for v in junk {
            cursors.push((format!("forged {v:?}"), forged(&vec![v; keys])));
        }
        let half = &genuine[..genuine.len() / 2];
        let mut edited = genuine.clone().into_bytes();
        edited[2] = if edited[2] == b'0' { b'1' } else { b'0' };
        cursors.extend([
            ("truncated".into(), half.to_string()),
            ("odd length".into(), genuine[1..].to_string()),
            ("edited".into(), String::from_utf8(edited).unwrap()),
            ("not hex".into(), "zz".repeat(40)),
            ("empty".into(), String::new()),
            ("NUL".into(), "%00".into()),
            ("hex NUL".into(), "00".repeat(40)),
            ("very long".into(), "ab".repeat(5000)),
            ("non-ASCII".into(), "%C3%A9%C3%A9".into()),
        ]);
        let base = search.split("&_count").next().unwrap();
        for (what, c) in &cursors {
            let path = format!("{base}&_count=1&_cursor={c}");
            let r = s.get(&path, &[]);
            let v = refused(&format!("{search}: {what}"), &r);
            assert_eq!(r.status, 400, "{search}: {what}: {v}");
        }
        // The genuine cursor pages on.
        let r = s.get(&next_url(&first.json()), &[]);
        assert_eq!(
            r.status,
            200,
            "{search}: {}",
            String::from_utf8_lossy(&r.body)
        );
    }
    still_healthy(&s);
}

#[test]
fn another_searchs_cursor_is_refused() {
    let s = Server::start();
    seed(&s);
    let by_date = s.get("/Observation?_sort=-date&_count=1", &[]).json();
    let date_cursor = cursor_of(&next_url(&by_date));
    let by_family = s.get("/Patient?_sort=family&_count=1", &[]).json();
    let family_cursor = cursor_of(&next_url(&by_family));
    for path in [
        // Same type, another sort key of another type.
        format!("/Observation?_sort=value-quantity&_count=1&_cursor={date_cursor}"),
        // Same sort, another filter.
        format!("/Observation?_sort=-date&code=8867-4&_count=1&_cursor={date_cursor}"),
        // Another type.
        format!("/Patient?_sort=family&_count=1&_cursor={date_cursor}"),
        format!("/Patient?_sort=birthdate&_count=1&_cursor={family_cursor}"),
        // A patient's compartment.
        format!("/Patient/nobody/Observation?_sort=-date&_count=1&_cursor={date_cursor}"),
    ] {
        let r = s.get(&path, &[]);
        assert!(r.status == 400 || r.status == 404, "{path}: {}", r.status);
        refused(&path, &r);
    }
    // Changing the page size or the output keeps the cursor valid.
    let next = next_url(&by_date).replace("_count=1", "_count=2");
    let r = s.get(&format!("{next}&_summary=true&_format=json"), &[]);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    still_healthy(&s);
}
