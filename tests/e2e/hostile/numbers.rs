//! Hostile input: numbers. A huge exponent once cost seconds and gigabytes (the decimal's digits
//! were written out); decimals, integers and dates outside what the server holds are refused at
//! parse time, in bodies (naming the element) and in search values.

use serde_json::Value;

use super::{answered, refused, still_healthy, versions};
use crate::harness::Server;

const JSON: (&str, &str) = ("Content-Type", "application/fhir+json");

/// An Observation body with `value` spliced in as written (serde_json would not keep the text).
fn observation_with(element: &str) -> Vec<u8> {
    format!(r#"{{"resourceType":"Observation","status":"final","code":{{"text":"n"}},{element}}}"#)
        .into_bytes()
}

fn names(what: &str, oo: &Value, path: &str) {
    assert_eq!(oo["issue"][0]["expression"][0], path, "{what}: {oo}");
}

#[test]
fn out_of_range_numbers_in_bodies_are_refused_naming_the_element() {
    let s = Server::start();
    let before = versions(&s);
    let quantity = "Observation.valueQuantity.value";
    let cases: Vec<(&str, &str, Vec<u8>, &str)> = vec![
        (
            "huge exponent",
            "/Observation",
            observation_with(r#""valueQuantity":{"value":1e2147483647}"#),
            quantity,
        ),
        (
            "huge negative value",
            "/Observation",
            observation_with(r#""valueQuantity":{"value":-1E2147483647}"#),
            quantity,
        ),
        (
            "tiny exponent",
            "/Observation",
            observation_with(r#""valueQuantity":{"value":1e-2147483648}"#),
            quantity,
        ),
        (
            "exponent beyond i32",
            "/Observation",
            observation_with(r#""valueQuantity":{"value":1e99999999999999}"#),
            quantity,
        ),
        (
            "zero with a huge exponent",
            "/Observation",
            observation_with(r#""valueQuantity":{"value":0e2147483647}"#),
            quantity,
        ),
        (
            "forty digits",
            "/Observation",
            observation_with(&format!(
                r#""valueQuantity":{{"value":{}}}"#,
                "9".repeat(40)
            )),
            quantity,
        ),
        (
            "a hundred thousand digits",
            "/Observation",
            observation_with(&format!(
                r#""valueQuantity":{{"value":1.{}}}"#,
                "1".repeat(100_000)
            )),
            quantity,
        ),
        (
            "integer above 32 bits",
            "/Observation",
            observation_with(r#""valueInteger":2147483648"#),
            "Observation.valueInteger",
        ),
        (
            "integer below 32 bits",
            "/Observation",
            observation_with(r#""valueInteger":-2147483649"#),
            "Observation.valueInteger",
        ),
        (
            "integer with an exponent",
            "/Observation",
            observation_with(r#""valueInteger":1e3"#),
            "Observation.valueInteger",
        ),
        (
            "positiveInt zero",
            "/Observation",
            observation_with(
                r#""valueSampledData":{"origin":{"value":1},"period":1,"dimensions":0}"#,
            ),
            "Observation.valueSampledData.dimensions",
        ),
        (
            "unsignedInt negative",
            "/Patient",
            br#"{"resourceType":"Patient","multipleBirthInteger":1,"photo":[{"size":-1}]}"#
                .to_vec(),
            "Patient.photo[0].size",
        ),
        (
            "five-digit year",
            "/Patient",
            br#"{"resourceType":"Patient","birthDate":"99999-01-01"}"#.to_vec(),
            "Patient.birthDate",
        ),
        (
            "year zero",
            "/Patient",
            br#"{"resourceType":"Patient","birthDate":"0000-01-01"}"#.to_vec(),
            "Patient.birthDate",
        ),
        (
            "offset beyond 14 hours",
            "/Observation",
            observation_with(r#""effectiveDateTime":"2024-01-01T00:00:00+15:00""#),
            "Observation.effectiveDateTime",
        ),
    ];
    for (what, path, body, element) in &cases {
        let r = s.send("POST", path, &[JSON], body);
        names(what, &refused(what, &r), element);
    }
    assert_eq!(versions(&s), before, "refused writes wrote nothing");
    still_healthy(&s);
}

#[test]
fn out_of_range_numbers_in_search_values_are_refused() {
    let s = Server::start();
    for query in [
        "/Observation?value-quantity=1e2147483647",
        "/Observation?value-quantity=lt1e2147483647",
        "/Observation?value-quantity=1e-2147483648",
        "/Observation?value-quantity=-1e2147483647|http://unitsofmeasure.org|mg",
        "/Observation?value-quantity=1e99999999999999",
        "/Observation?value-quantity=99999999999999999999999999999999999",
        "/Observation?component-value-quantity=ge1e2147483647",
    ] {
        let r = s.get(query, &[]);
        refused(query, &r);
    }
    for query in [
        "/Patient?birthdate=ge99999-01-01",
        "/Patient?birthdate=0000",
        "/Patient?birthdate=9999-12-31T23:59:59-14:00",
        "/Observation?value-quantity=1e28",
    ] {
        answered(query, &s.get(query, &[]));
    }
    still_healthy(&s);
}
