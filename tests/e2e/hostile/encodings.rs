//! Hostile input: encodings. XML as other tools legally write it (lower-case `utf-8`,
//! `standalone="yes"`, a prefixed FHIR namespace, a byte order mark) is read; bodies in other
//! encodings, or holding characters XML and FHIR forbid, are refused with a message naming the
//! problem, and write nothing.

use serde_json::json;

use super::{refused, still_healthy, versions};
use crate::harness::Server;

const XML: (&str, &str) = ("Content-Type", "application/fhir+xml");
const JSON: (&str, &str) = ("Content-Type", "application/fhir+json");

const PATIENT_XML: &str = r#"<Patient xmlns="http://hl7.org/fhir"><active value="true"/><name><family value="Żółć &amp; Brontë"/></name><gender value="female"/></Patient>"#;

#[test]
fn xml_as_other_tools_write_it_is_stored_and_reads_back() {
    let s = Server::start();
    let prefixed = r#"<f:Patient xmlns:f="http://hl7.org/fhir" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><f:active value="true"/><f:name><f:family value="Żółć &amp; Brontë"/></f:name><f:gender value="female"/></f:Patient>"#;
    let narrative = r#"<?xml version="1.0" encoding="UTF-8"?>
<fhir:Patient xmlns:fhir="http://hl7.org/fhir">
  <!-- written by a tool that prefixes the FHIR namespace -->
  <fhir:text><fhir:status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml"><p>Ann <b>Brontë</b></p></div></fhir:text>
  <fhir:active value="true"/><fhir:name><fhir:family value="Żółć &amp; Brontë"/></fhir:name><fhir:gender value="female"/>
</fhir:Patient>"#;
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        (
            "lxml's declaration",
            format!("<?xml version='1.0' encoding='utf-8'?>\n{PATIENT_XML}").into_bytes(),
        ),
        (
            "standalone=yes",
            format!("<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>{PATIENT_XML}")
                .into_bytes(),
        ),
        (
            "encoding in mixed case",
            format!("<?xml version=\"1.0\" encoding=\"Utf-8\"?>{PATIENT_XML}").into_bytes(),
        ),
        (
            "byte order mark",
            [b"\xEF\xBB\xBF".as_slice(), PATIENT_XML.as_bytes()].concat(),
        ),
        ("prefixed FHIR namespace", prefixed.as_bytes().to_vec()),
        ("prefixed, with a narrative", narrative.as_bytes().to_vec()),
    ];
    for (what, body) in &bodies {
        let r = s.send("POST", "/Patient", &[XML], body);
        assert_eq!(
            r.status,
            201,
            "{what}: {}",
            String::from_utf8_lossy(&r.body)
        );
        let id = r.json()["id"].as_str().unwrap().to_string();
        let back = s.get(&format!("/Patient/{id}"), &[]).json();
        assert_eq!(back["name"][0]["family"], "Żółć & Brontë", "{what}: {back}");
        assert_eq!(back["active"], true, "{what}");
        let xml = s.get(&format!("/Patient/{id}?_format=xml"), &[]);
        assert_eq!(xml.status, 200, "{what}");
    }
    // The narrative keeps its text as written (fhirbolt's reader trimmed it around inline
    // elements: "Ann<b>Brontë</b>").
    let r = s
        .send("POST", "/Patient", &[XML], narrative.as_bytes())
        .json();
    let div = r["text"]["div"].as_str().unwrap_or_default();
    assert!(div.contains("<p>Ann <b>Brontë</b></p>"), "{div}");
    // A JSON body with a byte order mark, as some Windows tools write it.
    let json_bom = [
        b"\xEF\xBB\xBF".as_slice(),
        br#"{"resourceType":"Patient","active":true}"#,
    ]
    .concat();
    let r = s.send("POST", "/Patient", &[JSON], &json_bom);
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    still_healthy(&s);
}

/// What is sent, its `Content-Type` header, the body, and what the refusal must mention.
type Case = (
    &'static str,
    (&'static str, &'static str),
    Vec<u8>,
    &'static str,
);

#[test]
fn other_encodings_and_forbidden_characters_are_refused() {
    let s = Server::start();
    let before = versions(&s);
    let utf16 =
        |text: &str, le: bool| -> Vec<u8> {
            let bom: [u8; 2] = if le { [0xFF, 0xFE] } else { [0xFE, 0xFF] };
            bom.into_iter()
                .chain(text.encode_utf16().flat_map(move |u| {
                    if le {
                        u.to_le_bytes()
                    } else {
                        u.to_be_bytes()
                    }
                }))
                .collect()
        };
    let latin1: Vec<u8> = [
        b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><Patient xmlns=\"http://hl7.org/fhir\"><name><family value=\"Bront".as_slice(),
        b"\xEB",
        b"\"/></name></Patient>",
    ]
    .concat();
    let json_patient = r#"{"resourceType":"Patient","active":true}"#;
    let cases: Vec<Case> = vec![
        ("ISO-8859-1 declared", XML, latin1.clone(), "UTF-8"),
        (
            "ISO-8859-1 bytes without a declaration",
            XML,
            latin1[latin1.iter().position(|&b| b == b'>').unwrap() + 1..].to_vec(),
            "UTF-8",
        ),
        ("UTF-16LE XML", XML, utf16(PATIENT_XML, true), "UTF-16"),
        ("UTF-16BE XML", XML, utf16(PATIENT_XML, false), "UTF-16"),
        (
            "UTF-16 declared",
            XML,
            utf16(
                &format!("<?xml version=\"1.0\" encoding=\"UTF-16\"?>{PATIENT_XML}"),
                true,
            ),
            "UTF-16",
        ),
        ("UTF-16LE JSON", JSON, utf16(json_patient, true), "UTF-8"),
        (
            "NUL byte in XML",
            XML,
            PATIENT_XML.replace("Brontë", "Bront\0").into_bytes(),
            "U+0000",
        ),
        (
            "control character in XML",
            XML,
            PATIENT_XML.replace("Brontë", "Bront\u{1b}").into_bytes(),
            "U+001B",
        ),
        (
            "character reference to NUL in XML",
            XML,
            PATIENT_XML.replace("Brontë", "Bront&#0;").into_bytes(),
            "",
        ),
        (
            "NUL byte in JSON",
            JSON,
            b"{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"a\0b\"}]}".to_vec(),
            "",
        ),
        (
            "escaped NUL in JSON",
            JSON,
            br#"{"resourceType":"Patient","name":[{"family":"a\u0000b"}]}"#.to_vec(),
            "control characters",
        ),
        (
            "invalid UTF-8 in XML",
            XML,
            PATIENT_XML
                .replace("ë", "\u{fffd}")
                .into_bytes()
                .into_iter()
                .map(|b| if b == 0xBD { 0xFF } else { b })
                .collect(),
            "UTF-8",
        ),
        (
            "lone surrogate escape in JSON",
            JSON,
            br#"{"resourceType":"Patient","name":[{"family":"\ud800"}]}"#.to_vec(),
            "",
        ),
        (
            "DOCTYPE with an entity",
            XML,
            format!("<!DOCTYPE Patient [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>{PATIENT_XML}")
                .into_bytes(),
            "DOCTYPE",
        ),
        (
            "FHIR namespace missing",
            XML,
            PATIENT_XML
                .replace(" xmlns=\"http://hl7.org/fhir\"", "")
                .into_bytes(),
            "FHIR namespace",
        ),
        (
            "a foreign namespace",
            XML,
            PATIENT_XML
                .replace("http://hl7.org/fhir", "http://example.org/fhir")
                .into_bytes(),
            "FHIR namespace",
        ),
    ];
    for (what, ct, body, says) in &cases {
        let r = s.send("POST", "/Patient", &[*ct], body);
        let oo = refused(what, &r);
        let text = oo["issue"][0]["diagnostics"].as_str().unwrap_or_default();
        assert!(text.contains(says), "{what}: {oo}");
    }
    let r = s.send(
        "POST",
        "/Patient",
        &[("Content-Type", "application/fhir+json; charset=iso-8859-1")],
        br#"{"resourceType":"Patient","active":true}"#,
    );
    let oo = r.outcome(415);
    assert!(oo.to_string().contains("iso-8859-1"), "{oo}");
    let patch = json!([{"op": "add", "path": "/active", "value": false}]);
    let r = s.send(
        "PATCH",
        "/Patient/nobody",
        &[(
            "Content-Type",
            "application/json-patch+json; charset=utf-16",
        )],
        &serde_json::to_vec(&patch).unwrap(),
    );
    r.outcome(415);
    assert_eq!(versions(&s), before, "refused writes wrote nothing");
    still_healthy(&s);
}
