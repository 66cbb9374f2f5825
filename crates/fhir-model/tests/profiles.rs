//! The shipped profiles against the example care record, and broken resources against the rules
//! each profile states: every example meets its type's profile, and each broken resource gives
//! the finding expected at the path expected.

use std::path::Path;

use fhir_model::profile::ProfileSet;
use fhir_model::{Finding, IssueCode, Severity};
use serde_json::{json, Value};

const BASE: &str = "https://invicta.example.org/fhir/StructureDefinition/";
const NHS: &str = "https://fhir.nhs.uk/Id/nhs-number";
const VERIFICATION: &str =
    "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus";
const VERIFICATION_CODES: &str =
    "https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatusEngland";

fn errors(findings: &[Finding]) -> Vec<&Finding> {
    findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .collect()
}

#[test]
fn every_example_meets_its_default_profile() {
    let set = ProfileSet::shipped();
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut checked = 0;
    for entry in std::fs::read_dir(&folder).expect("examples folder") {
        let path = entry.expect("directory entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("readable example");
        let resource: Value = serde_json::from_str(&text).expect("example is JSON");
        let Some(rt) = resource["resourceType"].as_str() else {
            continue;
        };
        if !fhir_model::elements::is_resource_type(rt) {
            continue;
        }
        if set.profile_for_type(rt).is_some() {
            checked += 1;
        }
        let findings = set.validate(&resource, None);
        assert!(
            errors(&findings).is_empty(),
            "{}: {findings:#?}",
            path.display()
        );
    }
    assert!(checked >= 60, "only {checked} examples had a profile");
}

#[test]
fn each_type_has_its_invicta_profile_as_default() {
    let set = ProfileSet::shipped();
    for rt in [
        "Patient",
        "AllergyIntolerance",
        "Observation",
        "Flag",
        "CarePlan",
        "MedicationStatement",
        "Encounter",
        "Condition",
        "EpisodeOfCare",
        "ServiceRequest",
        "Consent",
        "DiagnosticReport",
        "Immunization",
        "MedicationRequest",
        "CareTeam",
        "RelatedPerson",
        "Practitioner",
        "Organization",
        "Location",
    ] {
        let profile = set.profile_for_type(rt).expect(rt);
        assert_eq!(profile.url(), format!("{BASE}Invicta-{rt}"));
        assert_eq!(profile.resource_type(), rt);
        assert_eq!(profile.name(), format!("Invicta{rt}"));
        let versioned = format!("{}|0.1.0", profile.url());
        assert_eq!(set.get(&versioned).map(|p| p.url()), Some(profile.url()));
    }
    assert_eq!(set.profiles().count(), 19);
    assert!(set.profile_for_type("Bundle").is_none());
}

fn patient(identifiers: Value) -> Value {
    json!({"resourceType": "Patient", "id": "p", "identifier": identifiers})
}

fn nhs_number(value: &str, status: Option<Value>) -> Value {
    let mut identifier = json!({"system": NHS, "value": value});
    if let Some(concept) = status {
        identifier["extension"] = json!([{"url": VERIFICATION, "valueCodeableConcept": concept}]);
    }
    identifier
}

fn verified() -> Option<Value> {
    Some(json!({"coding": [{"system": VERIFICATION_CODES, "code": "01"}]}))
}

fn observation() -> Value {
    json!({
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "laboratory"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "2823-3"}]},
        "subject": {"reference": "Patient/p"},
        "valueQuantity": {"value": 4.1, "unit": "mmol/L"}
    })
}

fn allergy() -> Value {
    json!({
        "resourceType": "AllergyIntolerance",
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
            "code": "active"}]},
        "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
            "code": "confirmed"}]},
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "91936005"}]},
        "patient": {"reference": "Patient/p"}
    })
}

fn flag(category: Value) -> Value {
    json!({
        "resourceType": "Flag", "status": "active", "category": category,
        "code": {"text": "Lives alone"}, "subject": {"reference": "Patient/p"}
    })
}

fn care_plan(category: Option<Value>) -> Value {
    let mut plan = json!({
        "resourceType": "CarePlan", "status": "active", "intent": "plan",
        "subject": {"reference": "Patient/p"}
    });
    if let Some(category) = category {
        plan["category"] = category;
    }
    plan
}

fn snomed(code: &str) -> Value {
    json!({"coding": [{"system": "http://snomed.info/sct", "code": code}]})
}

/// A test-only profile that uses what the shipped ones do not: fixed and pattern values, a
/// narrowed choice with a rule below it, a maximum below R4's, a maximum length, and closed
/// slicing.
fn lab_profile() -> Value {
    json!({
        "resourceType": "StructureDefinition",
        "url": format!("{BASE}test-lab-result"),
        "name": "TestLabResult",
        "type": "Observation",
        "kind": "resource",
        "derivation": "constraint",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Observation",
        "differential": {"element": [
            {"id": "Observation.status", "path": "Observation.status", "fixedCode": "final"},
            {"id": "Observation.category", "path": "Observation.category", "min": 1,
             "patternCodeableConcept": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                "code": "laboratory"}]}},
            {"id": "Observation.subject", "path": "Observation.subject",
             "type": [{"code": "Reference", "targetProfile": [format!("{BASE}Invicta-Patient")]}]},
            {"id": "Observation.value[x]", "path": "Observation.value[x]", "type": [{"code": "Quantity"}]},
            {"id": "Observation.value[x].unit", "path": "Observation.value[x].unit", "min": 1},
            {"id": "Observation.note", "path": "Observation.note", "max": "1"},
            {"id": "Observation.note.text", "path": "Observation.note.text", "maxLength": 20},
            {"id": "Observation.interpretation", "path": "Observation.interpretation",
             "slicing": {"discriminator": [{"type": "value", "path": "coding.code"}], "rules": "closed"}},
            {"id": "Observation.interpretation:low", "path": "Observation.interpretation",
             "sliceName": "low", "max": "1"},
            {"id": "Observation.interpretation:low.coding.code",
             "path": "Observation.interpretation.coding.code", "fixedCode": "L"}
        ]}
    })
}

fn lab_set() -> ProfileSet {
    ProfileSet::with_shipped(&[lab_profile()]).expect("test profile loads")
}

/// What a case expects: where, which code, how severe.
struct Expect {
    path: &'static str,
    code: IssueCode,
    severity: Severity,
}

fn error(path: &'static str, code: IssueCode) -> Expect {
    Expect {
        path,
        code,
        severity: Severity::Error,
    }
}

fn assert_finds(set: &ProfileSet, name: &str, resource: Value, profile: Option<&str>, e: Expect) {
    let findings = set.validate(&resource, profile);
    let hit = findings.iter().any(|f| {
        f.issue.expression.as_deref() == Some(e.path)
            && f.issue.code == e.code
            && f.severity == e.severity
    });
    assert!(
        hit,
        "{name}: expected {:?} {:?} at {}, got {findings:#?}",
        e.severity, e.code, e.path
    );
}

#[test]
fn broken_resources_give_their_findings() {
    let set = ProfileSet::shipped();
    let mut no_category = observation();
    no_category.as_object_mut().unwrap().remove("category");
    let mut no_code = allergy();
    no_code.as_object_mut().unwrap().remove("code");
    let mut bad_clinical = allergy();
    bad_clinical["clinicalStatus"]["coding"][0]["code"] = json!("current");
    let mut wrong_target = observation();
    wrong_target["subject"] = json!({"reference": "Practitioner/dr-x"});
    let mut wrong_contained = observation();
    wrong_contained["contained"] =
        json!([{"resourceType": "Group", "id": "g", "type": "person", "actual": true}]);
    wrong_contained["subject"] = json!({"reference": "#g"});
    let mut coding_status = nhs_number("9434765919", None);
    coding_status["extension"] =
        json!([{"url": VERIFICATION, "valueCoding": {"system": VERIFICATION_CODES, "code": "01"}}]);
    let cases: Vec<(&str, Value, Expect)> = vec![
        (
            "bad NHS number check digit",
            patient(json!([nhs_number("9434765918", verified())])),
            error("Patient.identifier[0].value", IssueCode::BusinessRule),
        ),
        (
            "NHS number of eleven digits",
            patient(json!([{"system": "x"}, nhs_number("94347659190", verified())])),
            error("Patient.identifier[1].value", IssueCode::BusinessRule),
        ),
        (
            "NHS number without its verification status",
            patient(json!([nhs_number("9434765919", None)])),
            Expect {
                path: "Patient.identifier[0]",
                code: IssueCode::BusinessRule,
                severity: Severity::Warning,
            },
        ),
        (
            "verification status not a UK Core code",
            patient(json!([nhs_number(
                "9434765919",
                Some(json!({"coding": [{"system": VERIFICATION_CODES, "code": "99"}]}))
            )])),
            error(
                "Patient.identifier[0].extension[0].valueCodeableConcept",
                IssueCode::CodeInvalid,
            ),
        ),
        (
            "verification status as a Coding",
            patient(json!([coding_status])),
            error(
                "Patient.identifier[0].extension[0].valueCoding",
                IssueCode::Structure,
            ),
        ),
        (
            "NHS number without a value",
            patient(json!([{"system": NHS, "extension": [{"url": VERIFICATION,
                "valueCodeableConcept": verified()}]}])),
            error("Patient.identifier[0].value", IssueCode::Required),
        ),
        (
            "two NHS numbers",
            patient(json!([
                nhs_number("9434765919", verified()),
                nhs_number("9000000009", verified())
            ])),
            error("Patient.identifier", IssueCode::Structure),
        ),
        (
            "Observation without category",
            no_category,
            error("Observation.category", IssueCode::Required),
        ),
        (
            "Observation subject a Practitioner",
            wrong_target,
            error("Observation.subject", IssueCode::Structure),
        ),
        (
            "Observation subject a contained Group",
            wrong_contained,
            error("Observation.subject", IssueCode::Structure),
        ),
        (
            "AllergyIntolerance without code",
            no_code,
            error("AllergyIntolerance.code", IssueCode::Required),
        ),
        (
            "clinicalStatus code not in the value set",
            bad_clinical,
            error("AllergyIntolerance.clinicalStatus", IssueCode::CodeInvalid),
        ),
        (
            "Flag category not in the value set",
            flag(
                json!([{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/flag-category",
                "code": "urgent"}]}]),
            ),
            error("Flag.category[0]", IssueCode::CodeInvalid),
        ),
        (
            "Flag category as text only",
            flag(json!([{"text": "safeguarding"}])),
            error("Flag.category[0]", IssueCode::CodeInvalid),
        ),
        (
            "Flag without category",
            flag(json!(null)),
            error("Flag.category", IssueCode::Required),
        ),
        (
            "CarePlan without an allowed category",
            care_plan(Some(json!([snomed("734163000")]))),
            error("CarePlan.category", IssueCode::Required),
        ),
        (
            "CarePlan without category",
            care_plan(None),
            error("CarePlan.category", IssueCode::Required),
        ),
    ];
    for (name, resource, expect) in cases {
        assert_finds(set, name, resource, None, expect);
    }
}

#[test]
fn valid_variants_give_no_errors() {
    let set = ProfileSet::shipped();
    let cases = [
        patient(json!([nhs_number("9434765919", verified())])),
        patient(json!([{"system": "https://example.org/mrn", "value": "123"}])),
        json!({"resourceType": "Patient"}),
        flag(
            json!([{"coding": [{"system": "https://invicta.example.org/fhir/CodeSystem/flag-category",
            "code": "safeguarding"}]}]),
        ),
        care_plan(Some(json!([snomed("734163000"), snomed("736373009")]))),
        allergy(),
        observation(),
    ];
    for resource in cases {
        let findings = set.validate(&resource, None);
        assert!(findings.is_empty(), "{resource}: {findings:#?}");
    }
}

#[test]
fn test_profile_rules_give_their_findings() {
    let set = lab_set();
    let url = format!("{BASE}test-lab-result");
    assert!(
        set.validate(&observation(), Some(&url)).is_empty(),
        "{:#?}",
        set.validate(&observation(), Some(&url))
    );
    let mut string_value = observation();
    string_value
        .as_object_mut()
        .unwrap()
        .remove("valueQuantity");
    string_value["valueString"] = json!("4.1");
    let mut no_unit = observation();
    no_unit["valueQuantity"] = json!({"value": 4.1});
    let mut two_notes = observation();
    two_notes["note"] = json!([{"text": "a"}, {"text": "b"}]);
    let mut long_note = observation();
    long_note["note"] = json!([{"text": "twenty-one characters"}]);
    let mut not_final = observation();
    not_final["status"] = json!("preliminary");
    let mut vital = observation();
    vital["category"][0]["coding"][0]["code"] = json!("vital-signs");
    let mut high = observation();
    high["interpretation"] = json!([{"coding": [{"system": "x", "code": "H"}]}]);
    let mut two_low = observation();
    two_low["interpretation"] =
        json!([{"coding": [{"code": "L"}]}, {"coding": [{"code": "L"}], "text": "low"}]);
    let mut group = observation();
    group["subject"] = json!({"reference": "https://elsewhere.example/fhir/Group/1"});
    let cases: Vec<(&str, Value, Expect)> = vec![
        (
            "valueString where only Quantity is allowed",
            string_value,
            error("Observation.valueString", IssueCode::Structure),
        ),
        (
            "a rule below a narrowed choice",
            no_unit,
            error("Observation.valueQuantity.unit", IssueCode::Required),
        ),
        (
            "cardinality max exceeded",
            two_notes,
            error("Observation.note", IssueCode::Structure),
        ),
        (
            "text longer than maxLength",
            long_note,
            error("Observation.note[0].text", IssueCode::Value),
        ),
        (
            "fixed value violated",
            not_final,
            error("Observation.status", IssueCode::Value),
        ),
        (
            "pattern not matched",
            vital,
            error("Observation.category[0]", IssueCode::Value),
        ),
        (
            "closed slicing",
            high,
            error("Observation.interpretation[0]", IssueCode::Structure),
        ),
        (
            "slice maximum",
            two_low,
            error("Observation.interpretation", IssueCode::Structure),
        ),
        (
            "absolute reference to another type",
            group,
            error("Observation.subject", IssueCode::Structure),
        ),
    ];
    for (name, resource, expect) in cases {
        assert_finds(&set, name, resource, Some(&url), expect);
    }
    // The shipped profile stays the default for Observation.
    assert_eq!(
        set.profile_for_type("Observation").map(|p| p.url()),
        Some(format!("{BASE}Invicta-Observation").as_str())
    );
}

#[test]
fn unknown_or_mismatched_profiles_are_findings() {
    let set = ProfileSet::shipped();
    let unknown = set.validate(&observation(), Some("https://example.org/nope"));
    assert_eq!(unknown.len(), 1);
    assert_eq!(unknown[0].issue.code, IssueCode::NotSupported);
    assert_eq!(unknown[0].severity, Severity::Error);
    let other_type = set.validate(&observation(), Some(&format!("{BASE}Invicta-Patient")));
    assert_eq!(
        other_type[0].issue.expression.as_deref(),
        Some("resourceType")
    );
    for garbage in [json!(42), json!(null), json!([]), json!({"id": "x"})] {
        assert_eq!(set.validate(&garbage, None).len(), 1, "{garbage}");
    }
    assert!(set
        .validate(&json!({"resourceType": "Bundle", "type": "batch"}), None)
        .is_empty());
}

#[test]
fn content_of_any_shape_is_checked_without_panicking() {
    let set = ProfileSet::shipped();
    let shapes = [
        json!(null),
        json!(0),
        json!(-1.5),
        json!(""),
        json!("#"),
        json!(true),
        json!({}),
        json!([]),
        json!([null]),
        json!([1, "a", {}, []]),
        json!({"coding": 5, "reference": 7, "extension": "x", "system": [], "value": {}}),
        json!([{"coding": [null, 1, {"system": 2}], "reference": "#", "extension": [{"url": 1}]}]),
        json!({"reference": "#missing", "coding": [{"system": "s", "code": []}]}),
    ];
    for profile in set.profiles() {
        let rt = profile.resource_type();
        for key in [
            "identifier",
            "category",
            "code",
            "subject",
            "patient",
            "status",
            "clinicalStatus",
            "verificationStatus",
            "name",
            "relationship",
            "medicationCodeableConcept",
            "managingOrganization",
            "contained",
            "_status",
            "extension",
        ] {
            for shape in &shapes {
                let mut resource = json!({"resourceType": rt});
                resource[key] = shape.clone();
                let findings = set.validate(&resource, None);
                assert!(findings.len() <= 50);
            }
        }
    }
}

#[test]
fn findings_are_bounded() {
    let set = ProfileSet::shipped();
    let many: Vec<Value> = (0..500)
        .map(|_| json!({"coding": [{"system": "x", "code": "y"}]}))
        .collect();
    let findings = set.validate(&flag(Value::Array(many)), None);
    assert_eq!(findings.len(), 50);
}

fn structure_definition(elements: Value) -> Value {
    json!({
        "resourceType": "StructureDefinition",
        "url": format!("{BASE}broken"),
        "name": "Broken",
        "type": "Patient",
        "derivation": "constraint",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Patient",
        "differential": {"element": elements}
    })
}

#[test]
fn profiles_using_what_is_not_supported_are_refused() {
    let cases = [
        (
            json!([{"id": "Patient.identifier", "path": "Patient.identifier",
            "slicing": {"discriminator": [{"type": "type", "path": "$this"}]}}]),
            "discriminator type 'type'",
        ),
        (
            json!([{"id": "Patient.identifier", "path": "Patient.identifier",
            "slicing": {"discriminator": [{"type": "value", "path": "extension('x').value"}]}}]),
            "discriminator path",
        ),
        (
            json!([{"id": "Patient.identifier", "path": "Patient.identifier",
            "constraint": [{"key": "pat-x", "severity": "error", "expression": "true"}]}]),
            "constraint 'pat-x'",
        ),
        (
            json!([{"id": "Patient.gender", "path": "Patient.gender",
            "binding": {"strength": "required", "valueSet": "http://example.org/vs"}}]),
            "not among the loaded value sets",
        ),
        (
            json!([{"id": "Patient.nonsense", "path": "Patient.nonsense", "min": 1}]),
            "no element 'nonsense'",
        ),
        (
            json!([{"id": "Patient.gender", "path": "Patient.gender", "max": "2"}]),
            "does not repeat",
        ),
        (
            json!([{"id": "Patient.birthDate", "path": "Patient.birthDate", "minValueDate": "1900-01-01"}]),
            "'minValueDate' is not supported",
        ),
        (
            json!([{"id": "Patient.identifier:x", "path": "Patient.identifier", "sliceName": "x"}]),
            "comes before the slicing",
        ),
        (
            json!([{"id": "Patient.identifier", "path": "Patient.identifier",
            "slicing": {"discriminator": [{"type": "value", "path": "system"}]}},
            {"id": "Patient.identifier:x", "path": "Patient.identifier", "sliceName": "x"}]),
            "states no value at its discriminator",
        ),
        (
            json!([{"id": "Patient.generalPractitioner", "path": "Patient.generalPractitioner",
            "type": [{"code": "Reference", "targetProfile": ["http://example.org/unknown"]}]}]),
            "unknown target profile",
        ),
        (
            json!([{"id": "Patient.deceased[x].value", "path": "Patient.deceased[x].value", "min": 1}]),
            "narrow it to one",
        ),
        (
            json!([{"id": "Observation.status", "path": "Observation.status"}]),
            "must start with 'Patient'",
        ),
    ];
    for (elements, expected) in cases {
        let refused = ProfileSet::with_shipped(&[structure_definition(elements.clone())])
            .expect_err(&format!("accepted {elements}"));
        assert!(
            refused
                .issues
                .iter()
                .any(|i| i.diagnostics.contains(expected)),
            "{elements}: {refused:?}"
        );
    }
    let mut profile_on_profile = structure_definition(json!([]));
    profile_on_profile["baseDefinition"] = json!(format!("{BASE}Invicta-Patient"));
    assert!(ProfileSet::with_shipped(&[profile_on_profile]).is_err());
    let value_set_with_filter = json!({"resourceType": "ValueSet", "url": "http://example.org/vs",
        "compose": {"include": [{"system": "http://snomed.info/sct",
            "filter": [{"property": "concept", "op": "is-a", "value": "1"}]}]}});
    assert!(ProfileSet::with_shipped(&[value_set_with_filter]).is_err());
    let cycle = |url: &str, other: &str| {
        json!({"resourceType": "ValueSet", "url": url,
        "compose": {"include": [{"valueSet": [other]}]}})
    };
    assert!(ProfileSet::from_documents(&[
        cycle("http://example.org/a", "http://example.org/b"),
        cycle("http://example.org/b", "http://example.org/a"),
    ])
    .is_err());
    assert!(ProfileSet::from_documents(&[json!({"resourceType": "Patient"})]).is_err());
    let typo = json!({"resourceType": "ValueSet", "url": "http://example.org/typo",
        "compose": {"include": [{"system": "https://invicta.example.org/fhir/CodeSystem/flag-category",
            "concept": [{"code": "safegaurding"}]}]}});
    assert!(ProfileSet::with_shipped(&[typo]).is_err());
}
