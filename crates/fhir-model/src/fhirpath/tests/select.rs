//! Selecting elements with their locations, as patch operations need them.

use serde_json::{json, Value};

use super::super::{parse, select, Dialect, Expression, Seg};

fn parse_path(text: &str) -> Result<Expression, String> {
    parse(text, Dialect::Patch)
}

fn patient() -> Value {
    json!({
        "resourceType": "Patient",
        "id": "p1",
        "active": true,
        "identifier": [
            {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9000000009"},
            {"system": "http://example.org/mrn", "value": "M1", "type": {"coding": [{"code": "MR"}]}}
        ],
        "name": [
            {"use": "official", "family": "Chalmers", "given": ["Peter", "James"]},
            {"use": "usual", "given": ["Jim"]}
        ],
        "telecom": [
            {"system": "phone", "value": "1", "use": "work", "rank": 2},
            {"system": "phone", "value": "2", "use": "home", "rank": 1},
            {"system": "email", "value": "3", "use": "home"}
        ],
        "deceasedBoolean": false,
        "contained": [{"resourceType": "Observation", "id": "o", "valueQuantity": {"value": 1}}]
    })
}

fn locs(resource: &Value, path: &str) -> Vec<Vec<Seg>> {
    let parsed = parse_path(path).unwrap();
    select(resource, &parsed)
        .unwrap()
        .into_iter()
        .map(|n| n.loc)
        .collect()
}

/// The value at a selected location.
fn value_at<'v>(resource: &'v Value, loc: &[Seg]) -> Option<&'v Value> {
    loc.iter().try_fold(resource, |v, seg| match seg {
        Seg::Key(k) => v.get(k.as_str()),
        Seg::Index(i) => v.get(*i),
    })
}

fn key(k: &str) -> Seg {
    Seg::Key(k.to_string())
}

#[test]
fn navigation_flattens_collections() {
    let p = patient();
    assert_eq!(locs(&p, "Patient.name.given").len(), 3);
    assert_eq!(
        locs(&p, "Patient.name.given[2]"),
        [vec![
            key("name"),
            Seg::Index(1),
            key("given"),
            Seg::Index(0)
        ]]
    );
    assert_eq!(locs(&p, "name.given"), locs(&p, "Patient.name.given"));
    assert_eq!(locs(&p, "Patient"), [Vec::<Seg>::new()]);
    assert_eq!(locs(&p, "Patient.active"), [vec![key("active")]]);
    assert!(locs(&p, "Patient.birthDate").is_empty());
    assert!(locs(&p, "Patient.name[5]").is_empty());
    assert_eq!(
        locs(&p, "Patient.name.first().given.last()"),
        [vec![
            key("name"),
            Seg::Index(0),
            key("given"),
            Seg::Index(1)
        ]]
    );
}

#[test]
fn where_filters_with_and_bool_and_number() {
    let p = patient();
    assert_eq!(
        locs(&p, "Patient.telecom.where(system='phone' and use='home')"),
        [vec![key("telecom"), Seg::Index(1)]]
    );
    assert_eq!(
        locs(
            &p,
            "Patient.identifier.where(system = 'https://fhir.nhs.uk/Id/nhs-number').value"
        ),
        [vec![key("identifier"), Seg::Index(0), key("value")]]
    );
    assert_eq!(locs(&p, "telecom.where(rank = 1.0)").len(), 1);
    assert_eq!(locs(&p, "telecom.where(use != 'home')").len(), 1);
    assert_eq!(
        locs(&p, "telecom.where(use = 'work' or system = 'email')").len(),
        2
    );
    assert_eq!(locs(&p, "Patient.where(active = true)").len(), 1);
    assert_eq!(locs(&p, "Patient.where(active)").len(), 1);
    assert!(locs(&p, "Patient.where(active = false)").is_empty());
    assert_eq!(
        locs(&p, "identifier.where(type.coding.code = 'MR')"),
        [vec![key("identifier"), Seg::Index(1)]]
    );
    assert_eq!(locs(&p, "name.given.where($this = 'Jim')").len(), 1);
    // A missing element compares as empty, which does not match.
    assert!(locs(&p, "telecom.where(period = 'x')").is_empty());
}

#[test]
fn multi_valued_criteria_are_an_error() {
    let p = patient();
    let parsed = parse_path("Patient.name.where(given)").unwrap();
    assert!(select(&p, &parsed).unwrap_err().contains("single boolean"));
}

#[test]
fn choice_elements_and_contained_resources() {
    let p = patient();
    let parsed = parse_path("Patient.deceased").unwrap();
    let nodes = select(&p, &parsed).unwrap();
    assert_eq!(nodes.len(), 1);
    assert_eq!(nodes[0].loc, [key("deceasedBoolean")]);
    assert_eq!(nodes[0].choice_base.as_deref(), Some("deceased"));
    assert_eq!(nodes[0].ty, Some("boolean"));
    let parsed = parse_path("Patient.contained[0].value.value").unwrap();
    let nodes = select(&p, &parsed).unwrap();
    assert_eq!(nodes.len(), 1);
    assert_eq!(value_at(&p, &nodes[0].loc), Some(&json!(1)));
    let parsed = parse_path("Patient.contained.where(id = 'o').value").unwrap();
    assert_eq!(select(&p, &parsed).unwrap()[0].ty, Some("Quantity"));
    // Untyped data still finds choice expansions from its own keys.
    let untyped = json!({"valueString": "x"});
    assert_eq!(locs(&untyped, "value"), [vec![key("valueString")]]);
}

#[test]
fn typed_navigation_does_not_mistake_prefixes_for_choices() {
    let q = json!({"resourceType": "QuestionnaireResponse", "item": [{"linkId": "1"}]});
    assert!(locs(&q, "item.link").is_empty());
}

#[test]
fn leading_type_must_match() {
    let p = patient();
    let parsed = parse_path("Observation.status").unwrap();
    assert!(select(&p, &parsed)
        .unwrap_err()
        .contains("resource is a Patient"));
}
