//! History at the three levels, with paging, `_since` and `_at`.

use serde_json::json;

use crate::harness::{patient, Server};

#[test]
fn history_pages_and_filters() {
    let s = Server::start();
    let mut ids = Vec::new();
    for i in 0..5 {
        let r = s.send_json("POST", "/Patient", &patient(&format!("Fam{i}")), &[]);
        ids.push(r.json()["id"].as_str().unwrap().to_string());
    }
    let flag = json!({"resourceType": "Flag", "status": "active", "code": {"text": "Lives alone"},
        "subject": {"reference": format!("Patient/{}", ids[0])}});
    assert_eq!(s.send_json("POST", "/Flag", &flag, &[]).status, 201);

    let all = s.get("/_history", &[]).json();
    assert_eq!(all["total"], 6);
    assert_eq!(all["entry"][0]["resource"]["resourceType"], "Flag");
    let typed = s.get("/Patient/_history", &[]).json();
    assert_eq!(typed["total"], 5);

    // Walk the pages two at a time, following next links, and see every version once.
    let mut seen = Vec::new();
    let mut url = format!("{}/Patient/_history?_count=2", s.base);
    let mut pages = 0;
    loop {
        let page = s.get(&url, &[]).json();
        assert_eq!(page["total"], 5);
        for e in page["entry"].as_array().unwrap() {
            seen.push(e["resource"]["id"].as_str().unwrap().to_string());
            assert_eq!(e["request"]["method"], "POST");
        }
        pages += 1;
        let next = page["link"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["relation"] == "next");
        match next {
            Some(l) => url = l["url"].as_str().unwrap().to_string(),
            None => break,
        }
        // A write between pages does not shift the pages already promised.
        if pages == 1 {
            s.send_json("POST", "/Patient", &patient("Late"), &[]);
        }
    }
    assert_eq!(pages, 3);
    let mut expected = ids.clone();
    expected.reverse();
    assert_eq!(seen, expected);

    // _since and _at.
    let v1 = s.get(&format!("/Patient/{}", ids[1]), &[]).json();
    let t1 = v1["meta"]["lastUpdated"].as_str().unwrap().to_string();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let mut changed = v1.clone();
    changed["gender"] = json!("other");
    assert_eq!(
        s.send_json("PUT", &format!("/Patient/{}", ids[1]), &changed, &[])
            .status,
        200
    );
    let since = s
        .get(
            &format!(
                "/Patient/{}/_history?_since={}",
                ids[1],
                t1.replace('+', "%2B")
            ),
            &[],
        )
        .json();
    assert_eq!(since["total"], 2);
    let at = s
        .get(&format!("/Patient/{}/_history?_at={t1}", ids[1]), &[])
        .json();
    assert_eq!(at["total"], 1);
    assert_eq!(at["entry"][0]["resource"]["meta"]["versionId"], "1");
    s.get("/_history?_since=yesterday", &[]).outcome(400);
    s.get("/Patient/unknown/_history", &[]).outcome(404);
}
