//! Hostile input: strings. Long values in every indexed element type (string, token, uri,
//! reference, quantity code and unit, composite code, tags), in bodies and as search values:
//! each is stored and searchable, or refused with a 4xx naming the element; never a 5xx.
//! Index keys hold at most 1,000 bytes of a value (README, limits): prefix searches up to that
//! length answer exactly, longer search values are refused.

use serde_json::{json, Value};

use super::{answered, refused, still_healthy, versions};
use crate::harness::{sql_value, Resp, Server};

/// The longest search value (and the most of a value an index key holds whole).
const INDEXED: usize = 1000;

/// `n` letters that do not compress (a run of one letter would fit a btree entry compressed).
fn noise(seed: u64, n: usize) -> String {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            char::from(b'a' + ((x >> 33) % 26) as u8)
        })
        .collect()
}

/// `[id]`, as `ids` answers it.
fn one(id: &str) -> Vec<String> {
    vec![id.to_string()]
}

fn form(value: &str) -> String {
    value
        .replace('%', "%25")
        .replace('&', "%26")
        .replace('+', "%2B")
}

/// A search sent as a form (`POST /{type}/_search`), so a long value is not limited by the URL.
fn search(s: &Server, t: &str, query: &str) -> Resp {
    s.send(
        "POST",
        &format!("/{t}/_search"),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        query.as_bytes(),
    )
}

fn ids(r: &Resp) -> Vec<String> {
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()["entry"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|e| e["resource"]["id"].as_str().map(str::to_string))
        .collect()
}

/// Creates `body`; `Some(id)` when stored, `None` when refused with an OperationOutcome that
/// names `element` (nothing written).
fn create(s: &Server, body: &Value, element: &str) -> Option<String> {
    let t = body["resourceType"].as_str().unwrap();
    let before = versions(s);
    let r = s.send_json("POST", &format!("/{t}"), body, &[]);
    if r.status == 201 {
        return Some(r.json()["id"].as_str().unwrap().to_string());
    }
    let o = refused(&format!("{t} with a long {element}"), &r);
    assert!(
        o.to_string().contains(element),
        "the refusal names {element}: {o}"
    );
    assert_eq!(versions(s), before, "a refused write wrote nothing");
    None
}

#[test]
fn long_values_in_every_index_table_are_stored_and_searched_exactly() {
    let s = Server::start();
    for (n, len) in [2_800usize, 100_000].into_iter().enumerate() {
        let seed = n as u64 * 100;
        let family = noise(seed, len);
        let ident = noise(seed + 1, len);
        let system = format!("urn:x:{}", noise(seed + 2, len));
        let profile = format!("http://example.org/{}", noise(seed + 3, len));
        let tag = noise(seed + 4, len);
        let edge = noise(seed + 5, INDEXED);
        let over = noise(seed + 6, INDEXED + 1);
        let patient = json!({
            "resourceType": "Patient",
            "meta": {"profile": [profile], "tag": [{"system": "urn:t", "code": tag}]},
            "name": [{"family": family, "given": ["Long"]}],
            "identifier": [{"system": system, "value": ident},
                           {"system": "urn:edge", "value": edge},
                           {"system": "urn:edge", "value": over}]
        });
        let ctx = format!("{len} characters");
        let Some(pid) = create(&s, &patient, "Patient") else {
            continue;
        };
        // string: prefix up to the bound, :contains within it, :missing
        let found = |t: &str, q: &str| ids(&search(&s, t, q));
        assert_eq!(
            found("Patient", &format!("family={}", &family[..INDEXED])),
            one(&pid),
            "{ctx}"
        );
        assert_eq!(
            found("Patient", &format!("family:contains={}", &family[300..700])),
            one(&pid),
            "{ctx} :contains"
        );
        assert_eq!(
            found("Patient", &format!("family:missing=false&_id={pid}")),
            one(&pid),
            "{ctx}"
        );
        // token: a value of exactly the bound is kept whole and found; a longer one is never
        // matched by its first bytes, and is still there for :missing
        assert_eq!(
            found("Patient", &format!("identifier=urn:edge|{edge}")),
            one(&pid),
            "{ctx}: identifier of {INDEXED} bytes"
        );
        assert!(
            found(
                "Patient",
                &format!("identifier=urn:edge|{}", &over[..INDEXED])
            )
            .is_empty(),
            "{ctx}: the first {INDEXED} bytes of a longer value are not that value"
        );
        for param in ["identifier", "_profile", "_tag"] {
            assert_eq!(
                found("Patient", &format!("{param}:missing=false&_id={pid}")),
                one(&pid),
                "{ctx} {param}:missing"
            );
        }
        // Search values longer than what is indexed are refused clearly, for every type.
        for (param, value) in [
            ("family", family.clone()),
            ("family:exact", family.clone()),
            ("family:contains", family.clone()),
            ("identifier", ident.clone()),
            ("identifier", format!("{system}|x")),
            ("_profile", profile.clone()),
            ("_tag", tag.clone()),
        ] {
            let r = search(&s, "Patient", &format!("{param}={}", form(&value)));
            let o = refused(&format!("{ctx}: {param} with a long value"), &r);
            // (A form over 64 KiB is refused before its values are read.)
            if len < 60_000 {
                assert!(o.to_string().contains("at most"), "{o}");
            }
        }

        // reference, quantity code and unit, composite code on an Observation
        let code = noise(seed + 7, len);
        let value = format!("{n}.4");
        let obs = json!({
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": "urn:c", "code": code}], "text": "long"},
            "subject": {"reference": format!("http://example.org/fhir/{}", noise(seed + 8, len))},
            "performer": [{"identifier": {"system": "urn:p", "value": noise(seed + 9, len)}}],
            "valueQuantity": {"value": value.parse::<f64>().unwrap(),
                              "system": format!("urn:{}", noise(seed + 10, len)),
                              "code": noise(seed + 11, len), "unit": noise(seed + 12, len)}
        });
        let Some(oid) = create(&s, &obs, "Observation") else {
            continue;
        };
        for param in ["code", "subject", "value-quantity", "code-value-quantity"] {
            assert_eq!(
                found("Observation", &format!("{param}:missing=false&_id={oid}")),
                one(&oid),
                "{ctx} {param}:missing"
            );
        }
        assert_eq!(
            found("Observation", &format!("value-quantity={value}")),
            one(&oid),
            "{ctx}: a quantity with a long code is found by its value"
        );
        for (param, v) in [
            ("code", code.clone()),
            ("value-quantity", format!("{value}||{code}")),
            ("code-value-quantity", format!("{code}${value}")),
            (
                "subject",
                obs["subject"]["reference"].as_str().unwrap().to_string(),
            ),
        ] {
            let r = search(&s, "Observation", &format!("{param}={}", form(&v)));
            refused(&format!("{ctx}: {param} with a long value"), &r);
        }
    }

    // 10 MB in one element at a time (the body limit is 16 MiB): stored whole and found by
    // what is indexed of it, or refused naming the element.
    let big = 10 * 1024 * 1024;
    let cases = [
        (
            "family",
            json!({"resourceType": "Patient", "name": [{"family": noise(1, big)}]}),
        ),
        (
            "identifier",
            json!({"resourceType": "Patient", "identifier": [{"system": "urn:big", "value": noise(2, big)}]}),
        ),
        (
            "profile",
            json!({"resourceType": "Patient", "meta": {"profile": [format!("http://x.org/{}", noise(3, big))]}}),
        ),
        (
            "valueString",
            json!({"resourceType": "Observation", "status": "final", "code": {"text": "big"},
                   "valueString": noise(4, big)}),
        ),
    ];
    let mut stored = std::collections::HashMap::new();
    for (element, body) in cases {
        let t = body["resourceType"].as_str().unwrap();
        let Some(id) = create(&s, &body, element) else {
            continue;
        };
        stored.insert(element, id.clone());
        let param = match element {
            "family" => "family",
            "identifier" => "identifier",
            "profile" => "_profile",
            _ => "value-string",
        };
        assert_eq!(
            ids(&search(&s, t, &format!("{param}:missing=false&_id={id}"))),
            one(&id),
            "10 MB {element}"
        );
        let r = s.get(&format!("/{t}/{id}"), &[]);
        assert_eq!(r.status, 200);
        assert!(r.body.len() > big, "10 MB {element} reads back whole");
    }
    if let Some(id) = stored.get("valueString") {
        let head = &noise(4, big)[..INDEXED];
        assert_eq!(
            ids(&search(&s, "Observation", &format!("value-string={head}"))),
            one(id),
            "a 10 MB valueString is found by its first {INDEXED} bytes"
        );
    }

    // A feed's conditional create by a long identifier finds what it created the second time
    // (the folded key matches only the same value), or is refused; never a 5xx.
    let long = noise(99, 5_000);
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [{
        "fullUrl": "urn:uuid:0b8f2c52-8e3b-4ad5-9a43-7a2d4f1e0c11",
        "resource": {"resourceType": "Observation", "status": "final", "code": {"text": "c"},
                     "identifier": [{"system": "urn:h", "value": long}]},
        "request": {"method": "POST", "url": "Observation",
                    "ifNoneExist": format!("identifier=urn:h|{long}")}}]});
    let first = s.send_json("POST", "", &bundle, &[]);
    answered("a conditional create by a long identifier", &first);
    if first.status == 200 {
        let observations = || {
            sql_value(
                &s.db_url,
                "SELECT count(*) FROM resource WHERE res_type = 'Observation'",
            )
        };
        let before = observations();
        let again = s.send_json("POST", "", &bundle, &[]);
        answered("the same conditional create again", &again);
        assert_eq!(observations(), before, "the second finds the first");
    }
    still_healthy(&s);
}
