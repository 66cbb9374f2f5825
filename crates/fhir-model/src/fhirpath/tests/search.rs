//! The search dialect: what index extraction and compartments evaluate.

use super::super::{evaluate, Dialect, Expression, Node};
use serde_json::{json, Value};

fn parse(src: &str) -> Result<Expression, String> {
    super::super::parse(src, Dialect::Search)
}

fn vals(src: &str, r: &Value) -> Vec<Value> {
    let e = parse(src).unwrap_or_else(|e| panic!("{src}: {e}"));
    evaluate(&e, &[Node::root(r)])
        .into_iter()
        .map(|n| n.value.into_owned())
        .collect()
}

#[test]
fn every_table_expression_parses() {
    let mut failures = Vec::new();
    for p in crate::search_params::all_params() {
        if matches!(
            p.kind,
            crate::search_params::ParamType::Composite | crate::search_params::ParamType::Special
        ) {
            continue;
        }
        if let Err(e) = parse(&p.expression) {
            failures.push(format!("{}.{} `{}`: {e}", p.resource, p.code, p.expression));
        }
    }
    for p in crate::search_params::all_params() {
        for c in &p.components {
            if let Err(e) = parse(&c.expression) {
                failures.push(format!(
                    "{}.{} component `{}`: {e}",
                    p.resource, p.code, c.expression
                ));
            }
        }
    }
    for (t, ps) in crate::search_params::compartment_table() {
        for p in ps {
            if let Err(e) = parse(&p.expression) {
                failures.push(format!(
                    "compartment {t}.{} `{}`: {e}",
                    p.code, p.expression
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "unsupported expressions:\n{}",
        failures.join("\n")
    );
}

#[test]
fn rejects_unsupported() {
    for src in [
        "Patient.name.select(given)",
        "Patient.x > 3",
        "$index",
        "Patient.(",
    ] {
        assert!(parse(src).is_err(), "{src}");
    }
}

#[test]
fn paths_choices_and_filters() {
    let p = json!({
        "resourceType": "Patient",
        "id": "p1",
        "name": [{"family": "Doe", "given": ["Jane", "Q"]}, {"given": ["J"]}],
        "telecom": [{"system": "phone", "value": "555"}, {"system": "email", "value": "a@b.c"}],
        "deceasedDateTime": "2020-01-01",
        "_birthDate": {"extension": []}
    });
    let cases: &[(&str, Vec<Value>)] = &[
        (
            "Patient.name.given",
            vec![json!("Jane"), json!("Q"), json!("J")],
        ),
        ("Resource.id", vec![json!("p1")]),
        ("Observation.id", vec![]),
        (
            "Patient.telecom.where(system='email').value",
            vec![json!("a@b.c")],
        ),
        ("(Patient.deceased as dateTime)", vec![json!("2020-01-01")]),
        ("Patient.deceased.as(DateTime)", vec![json!("2020-01-01")]),
        ("Patient.deceased.ofType(boolean)", vec![]),
        (
            "Patient.deceased.exists() and Patient.deceased != false",
            vec![json!(true)],
        ),
        ("Patient.birthDate", vec![]),
        (
            "Patient.name.family | Patient.name.family",
            vec![json!("Doe")],
        ),
    ];
    for (src, want) in cases {
        assert_eq!(&vals(src, &p), want, "{src}");
    }
    let alive = json!({"resourceType": "Patient", "deceasedBoolean": false});
    let unknown = json!({"resourceType": "Patient"});
    let expr = "Patient.deceased.exists() and Patient.deceased != false";
    assert_eq!(vals(expr, &alive), vec![json!(false)]);
    assert_eq!(vals(expr, &unknown), vec![json!(false)]);
}

#[test]
fn resolve_is_filters_by_reference_type() {
    let o = json!({
        "resourceType": "Observation",
        "subject": {"reference": "Group/g1"},
        "performer": [
            {"reference": "Practitioner/d1"},
            {"reference": "http://x.org/fhir/Patient/p2"},
            {"type": "Patient", "identifier": {"value": "123"}}
        ],
        "valueCodeableConcept": {"text": "pos"}
    });
    assert!(vals("Observation.subject.where(resolve() is Patient)", &o).is_empty());
    assert_eq!(
        vals("Observation.performer.where(resolve() is Patient)", &o).len(),
        2
    );
    assert_eq!(
        vals("(Observation.value as CodeableConcept).text", &o),
        vec![json!("pos")]
    );
    assert!(vals("(Observation.value as Quantity)", &o).is_empty());
}

#[test]
fn indexers_last_and_three_valued_logic() {
    let p = json!({
        "resourceType": "Patient",
        "active": true,
        "name": [{"given": ["Jane", "Q"]}, {"given": ["J"]}]
    });
    let cases: &[(&str, Vec<Value>)] = &[
        ("Patient.name.given[1]", vec![json!("Q")]),
        ("Patient.name[1].given", vec![json!("J")]),
        ("Patient.name[2]", vec![]),
        ("Patient.name.given.last()", vec![json!("J")]),
        (
            "Patient.name.where(given = 'J').exists()",
            vec![json!(true)],
        ),
        // An empty operand is unknown: it decides nothing alone.
        ("Patient.gender = 'x' and true", vec![]),
        ("Patient.gender = 'x' and false", vec![json!(false)]),
        ("Patient.gender = 'x' or true", vec![json!(true)]),
        ("Patient.gender = 'x' xor true", vec![]),
        ("Patient.active xor false xor true", vec![json!(false)]),
        ("Patient.active or false xor true", vec![json!(false)]),
        // Several items read as true.
        ("Patient.name.given and true", vec![json!(true)]),
    ];
    for (src, want) in cases {
        assert_eq!(&vals(src, &p), want, "{src}");
    }
}

#[test]
fn nesting_and_length_are_capped() {
    let deep = format!("{}Patient.id{}", "(".repeat(100), ")".repeat(100));
    assert!(parse(&deep).unwrap_err().contains("nests more than"));
    let deep_args = format!("{}true{}", "a.where(".repeat(40), ")".repeat(40));
    assert!(parse(&deep_args).unwrap_err().contains("nests more than"));
    // Alternating `or` and `xor` nests the chain at each change.
    let mixed = vec!["a or b"; 40].join(" xor ");
    assert!(parse(&mixed).unwrap_err().contains("nests more than"));
    let long = format!("Patient.{}", "a".repeat(5000));
    assert!(parse(&long).unwrap_err().contains("longer than"));
    // A long chain of one operator stays flat.
    let flat = vec!["a = 1"; 300].join(" and ");
    assert!(parse(&flat).is_ok());
    let union = vec!["a"; 500].join(" | ");
    assert!(parse(&union).is_ok());
    // Comparisons do not chain, so they cannot nest without parentheses.
    assert!(parse("a = b = c").is_err());
}
