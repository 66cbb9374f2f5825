use super::*;
use serde_json::json;

fn ts(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn of(resource: &Value, param: &str) -> Vec<IndexValue> {
    extract(resource)
        .into_iter()
        .filter(|e| e.param == param)
        .map(|e| e.value)
        .collect()
}

fn s(value: &str, normalized: &str) -> IndexValue {
    IndexValue::String {
        value: value.into(),
        normalized: normalized.into(),
    }
}

fn tok(system: Option<&str>, code: Option<&str>, text: Option<&str>) -> IndexValue {
    IndexValue::Token {
        system: system.map(Into::into),
        code: code.map(Into::into),
        text: text.map(Into::into),
        of_type: None,
    }
}

fn date(start: Option<&str>, end: Option<&str>) -> IndexValue {
    IndexValue::Date {
        start: start.map(ts),
        end: end.map(ts),
    }
}

fn rf(
    t: Option<&str>,
    id: Option<&str>,
    url: Option<&str>,
    isys: Option<&str>,
    ival: Option<&str>,
) -> IndexValue {
    IndexValue::Reference {
        target_type: t.map(Into::into),
        target_id: id.map(Into::into),
        url: url.map(Into::into),
        identifier_system: isys.map(Into::into),
        identifier_value: ival.map(Into::into),
    }
}

fn qty(
    v: &str,
    lo: &str,
    hi: &str,
    system: Option<&str>,
    code: Option<&str>,
    unit: Option<&str>,
) -> IndexValue {
    IndexValue::Quantity {
        value: v.into(),
        low: lo.into(),
        high: hi.into(),
        system: system.map(Into::into),
        code: code.map(Into::into),
        unit: unit.map(Into::into),
    }
}

fn patient() -> Value {
    json!({
        "resourceType": "Patient",
        "id": "p1",
        "meta": {
            "lastUpdated": "2024-05-01T12:00:00.123Z",
            "tag": [{"system": "http://t", "code": "demo", "display": "Demo"}],
            "profile": ["http://example.org/StructureDefinition/p"]
        },
        "active": true,
        "identifier": [
            {"system": "urn:oid:1.2.3", "value": "MRN-1",
             "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}],
                      "text": "Medical record number"}},
            {"value": "no-system"}
        ],
        "name": [
            {"use": "official", "family": "Müller", "given": ["José  María", "Ann"],
             "prefix": ["Dr."], "suffix": ["PhD"], "text": "Dr. José María Müller"},
            {"family": "Müller"}
        ],
        "telecom": [
            {"system": "phone", "value": "+1 555 0100", "use": "home"},
            {"system": "email", "value": "jose@example.org"}
        ],
        "gender": "male",
        "birthDate": "1980-02",
        "_birthDate": {"extension": [{"url": "http://x", "valueString": "ignored"}]},
        "deceasedDateTime": "2024",
        "address": [{
            "use": "home", "line": ["1 Main St", "Apt 2"], "city": "Zürich", "district": "Kreis 1",
            "state": "ZH", "postalCode": "8001", "country": "CH", "text": "1 Main St, Zürich"
        }],
        "communication": [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "de", "display": "German"}]}}],
        "generalPractitioner": [
            {"reference": "Practitioner/d1/_history/2"},
            {"reference": "#contained"},
            {"reference": "https://other.example/fhir/Organization/o9"},
            {"reference": "urn:uuid:9d1a1c3e-1111-2222-3333-444455556666"},
            {"identifier": {"system": "http://npi", "value": "123"}, "type": "Practitioner"},
            {"display": "just a name"}
        ],
        "link": [{"other": {"reference": "Patient/p0"}, "type": "replaces"}]
    })
}

#[test]
fn patient_strings() {
    let p = patient();
    let cases: Vec<(&str, Vec<IndexValue>)> = vec![
        ("family", vec![s("Müller", "muller")]),
        (
            "given",
            vec![s("José  María", "jose maria"), s("Ann", "ann")],
        ),
        (
            "name",
            vec![
                s("Dr. José María Müller", "dr. jose maria muller"),
                s("Müller", "muller"),
                s("José  María", "jose maria"),
                s("Ann", "ann"),
                s("Dr.", "dr."),
                s("PhD", "phd"),
            ],
        ),
        (
            "address",
            vec![
                s("1 Main St, Zürich", "1 main st, zurich"),
                s("1 Main St", "1 main st"),
                s("Apt 2", "apt 2"),
                s("Zürich", "zurich"),
                s("Kreis 1", "kreis 1"),
                s("ZH", "zh"),
                s("8001", "8001"),
                s("CH", "ch"),
            ],
        ),
        ("address-city", vec![s("Zürich", "zurich")]),
        ("address-postalcode", vec![s("8001", "8001")]),
    ];
    for (param, want) in cases {
        assert_eq!(of(&p, param), want, "{param}");
    }
}

#[test]
fn patient_tokens() {
    let p = patient();
    let cases: Vec<(&str, Vec<IndexValue>)> = vec![
        (
            "identifier",
            vec![
                tok(
                    Some("urn:oid:1.2.3"),
                    Some("MRN-1"),
                    Some("Medical record number"),
                ),
                IndexValue::Token {
                    system: Some("urn:oid:1.2.3".into()),
                    code: Some("MRN-1".into()),
                    text: Some("Medical record number".into()),
                    of_type: Some((
                        Some("http://terminology.hl7.org/CodeSystem/v2-0203".into()),
                        "MR".into(),
                    )),
                },
                tok(None, Some("no-system"), None),
            ],
        ),
        ("active", vec![tok(None, Some("true"), None)]),
        ("gender", vec![tok(None, Some("male"), None)]),
        ("address-use", vec![tok(None, Some("home"), None)]),
        ("email", vec![tok(None, Some("jose@example.org"), None)]),
        ("phone", vec![tok(None, Some("+1 555 0100"), None)]),
        (
            "telecom",
            vec![
                tok(None, Some("+1 555 0100"), None),
                tok(None, Some("jose@example.org"), None),
            ],
        ),
        (
            "language",
            vec![tok(Some("urn:ietf:bcp:47"), Some("de"), Some("German"))],
        ),
        ("deceased", vec![tok(None, Some("true"), None)]),
        ("_id", vec![]),
        (
            "_tag",
            vec![tok(Some("http://t"), Some("demo"), Some("Demo"))],
        ),
    ];
    for (param, want) in cases {
        assert_eq!(of(&p, param), want, "{param}");
    }
    let alive = json!({"resourceType": "Patient", "deceasedBoolean": false});
    assert_eq!(of(&alive, "deceased"), vec![tok(None, Some("false"), None)]);
}

#[test]
fn patient_dates_refs_uris() {
    let p = patient();
    let cases: Vec<(&str, Vec<IndexValue>)> = vec![
        (
            "birthdate",
            vec![date(
                Some("1980-02-01T00:00:00Z"),
                Some("1980-03-01T00:00:00Z"),
            )],
        ),
        (
            "death-date",
            vec![date(
                Some("2024-01-01T00:00:00Z"),
                Some("2025-01-01T00:00:00Z"),
            )],
        ),
        // The row's own column, searched there: no index row.
        ("_lastUpdated", vec![]),
        (
            "general-practitioner",
            vec![
                rf(Some("Practitioner"), Some("d1"), None, None, None),
                rf(
                    Some("Organization"),
                    Some("o9"),
                    Some("https://other.example/fhir/Organization/o9"),
                    None,
                    None,
                ),
                rf(
                    None,
                    None,
                    Some("urn:uuid:9d1a1c3e-1111-2222-3333-444455556666"),
                    None,
                    None,
                ),
                rf(
                    Some("Practitioner"),
                    None,
                    None,
                    Some("http://npi"),
                    Some("123"),
                ),
            ],
        ),
        (
            "link",
            vec![rf(Some("Patient"), Some("p0"), None, None, None)],
        ),
        (
            "_profile",
            vec![IndexValue::Uri {
                value: "http://example.org/StructureDefinition/p".into(),
            }],
        ),
    ];
    for (param, want) in cases {
        assert_eq!(of(&p, param), want, "{param}");
    }
}

#[test]
fn codeable_concepts() {
    let cases: Vec<(Value, Vec<IndexValue>)> = vec![
        (
            json!({"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"},
                              {"system": "http://snomed.info/sct", "code": "364075005"}],
                   "text": "HR"}),
            vec![
                tok(Some("http://loinc.org"), Some("8867-4"), Some("HR")),
                tok(
                    Some("http://snomed.info/sct"),
                    Some("364075005"),
                    Some("HR"),
                ),
            ],
        ),
        (
            json!({"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]}),
            vec![tok(
                Some("http://loinc.org"),
                Some("8867-4"),
                Some("Heart rate"),
            )],
        ),
        (
            json!({"text": "free text only"}),
            vec![tok(None, None, Some("free text only"))],
        ),
        (json!({}), vec![]),
    ];
    for (code, want) in cases {
        let obs = json!({"resourceType": "Observation", "status": "final", "code": code});
        assert_eq!(of(&obs, "code"), want, "{code}");
    }
}

#[test]
fn periods_and_timings() {
    let cases: Vec<(Value, Vec<IndexValue>)> = vec![
        (
            json!({"effectivePeriod": {"start": "2024-03-05", "end": "2024-03-07T10:00:00Z"}}),
            vec![date(
                Some("2024-03-05T00:00:00Z"),
                Some("2024-03-07T10:00:01Z"),
            )],
        ),
        (
            json!({"effectivePeriod": {"start": "2024-03-05T08:30:00+01:00"}}),
            vec![date(Some("2024-03-05T07:30:00Z"), None)],
        ),
        (
            json!({"effectivePeriod": {"end": "2024"}}),
            vec![date(None, Some("2025-01-01T00:00:00Z"))],
        ),
        (
            json!({"effectiveDateTime": "2024-03-05T10:20"}),
            vec![date(
                Some("2024-03-05T10:20:00Z"),
                Some("2024-03-05T10:21:00Z"),
            )],
        ),
        (
            json!({"effectiveInstant": "2024-03-05T10:20:30Z"}),
            vec![date(
                Some("2024-03-05T10:20:30Z"),
                Some("2024-03-05T10:20:31Z"),
            )],
        ),
        (
            json!({"effectiveTiming": {"event": ["2024-01-02", "2024-01-03"],
                                       "repeat": {"boundsPeriod": {"start": "2024-01"}}}}),
            vec![
                date(Some("2024-01-02T00:00:00Z"), Some("2024-01-03T00:00:00Z")),
                date(Some("2024-01-03T00:00:00Z"), Some("2024-01-04T00:00:00Z")),
                date(Some("2024-01-01T00:00:00Z"), None),
            ],
        ),
        (json!({"effectiveDateTime": "not a date"}), vec![]),
        (json!({"effectivePeriod": {}}), vec![]),
    ];
    for (fields, want) in cases {
        let mut obs = json!({"resourceType": "Observation", "status": "final"});
        for (k, v) in fields.as_object().unwrap() {
            obs[k] = v.clone();
        }
        assert_eq!(of(&obs, "date"), want, "{fields}");
    }
    let plan = json!({"resourceType": "CarePlan", "activity": [
        {"detail": {"scheduledString": "2024"}},
        {"detail": {"scheduledPeriod": {"start": "2024-02-01", "end": "2024-02-29"}}}
    ]});
    assert_eq!(
        of(&plan, "activity-date"),
        vec![date(
            Some("2024-02-01T00:00:00Z"),
            Some("2024-03-01T00:00:00Z")
        )]
    );
}

#[test]
fn observation_choice_types() {
    let obs = json!({
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "55284-4"}]},
        "subject": {"reference": "Patient/p1"},
        "valueQuantity": {"value": 5.4, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"},
        "component": [
            {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
             "valueQuantity": {"value": 120, "unit": "mmHg"}},
            {"code": {"coding": [{"system": "http://loinc.org", "code": "9279-1"}]},
             "valueCodeableConcept": {"text": "normal"}},
            {"code": {"text": "sampled"},
             "valueSampledData": {"origin": {"value": 0}, "period": 1, "dimensions": 1, "data": "1 2"}}
        ]
    });
    let ucum = Some("http://unitsofmeasure.org");
    let cases: Vec<(&str, Vec<IndexValue>)> = vec![
        (
            "value-quantity",
            vec![qty(
                "5.4",
                "5.35",
                "5.45",
                ucum,
                Some("mmol/L"),
                Some("mmol/L"),
            )],
        ),
        (
            "component-value-quantity",
            vec![qty("120", "119.5", "120.5", None, None, Some("mmHg"))],
        ),
        (
            "combo-value-quantity",
            vec![
                qty("5.4", "5.35", "5.45", ucum, Some("mmol/L"), Some("mmol/L")),
                qty("120", "119.5", "120.5", None, None, Some("mmHg")),
            ],
        ),
        (
            "component-value-concept",
            vec![tok(None, None, Some("normal"))],
        ),
        ("value-concept", vec![]),
        ("value-string", vec![]),
        ("value-date", vec![]),
        (
            "combo-code",
            vec![
                tok(Some("http://loinc.org"), Some("55284-4"), None),
                tok(Some("http://loinc.org"), Some("8480-6"), None),
                tok(Some("http://loinc.org"), Some("9279-1"), None),
                tok(None, None, Some("sampled")),
            ],
        ),
        (
            "patient",
            vec![rf(Some("Patient"), Some("p1"), None, None, None)],
        ),
        (
            "subject",
            vec![rf(Some("Patient"), Some("p1"), None, None, None)],
        ),
        (
            "code-value-quantity",
            vec![IndexValue::Composite {
                system: Some("http://loinc.org".into()),
                code: Some("55284-4".into()),
                value: Box::new(IndexValue::Quantity {
                    value: "5.4".into(),
                    low: "5.35".into(),
                    high: "5.45".into(),
                    system: Some("http://unitsofmeasure.org".into()),
                    code: Some("mmol/L".into()),
                    unit: Some("mmol/L".into()),
                }),
            }],
        ),
    ];
    for (param, want) in cases {
        assert_eq!(of(&obs, param), want, "{param}");
    }

    let other = json!({"resourceType": "Observation", "status": "final",
        "subject": {"reference": "Group/g1"},
        "valueString": "  Positive  Result ",
        "valueDateTime": "2024-03-05"});
    assert_eq!(
        of(&other, "value-string"),
        vec![s("  Positive  Result ", "positive result")]
    );
    assert_eq!(
        of(&other, "value-date"),
        vec![date(
            Some("2024-03-05T00:00:00Z"),
            Some("2024-03-06T00:00:00Z")
        )]
    );
    assert_eq!(of(&other, "patient"), vec![]);
    let concept = json!({"resourceType": "Observation", "valueCodeableConcept": {"text": "Pos"}});
    assert_eq!(of(&concept, "value-string"), vec![s("Pos", "pos")]);
}

#[test]
fn quantity_precision() {
    let cases: &[(&str, &str, &str, &str)] = &[
        ("5.4", "5.4", "5.35", "5.45"),
        ("5.40", "5.40", "5.395", "5.405"),
        ("100", "100", "99.5", "100.5"),
        ("0.1", "0.1", "0.05", "0.15"),
        ("1.5e2", "150", "145", "155"),
    ];
    for (text, v, lo, hi) in cases {
        let r: Value = serde_json::from_str(&format!(
            r#"{{"resourceType":"Observation","valueQuantity":{{"value":{text},"code":"kg"}}}}"#
        ))
        .unwrap();
        assert_eq!(
            of(&r, "value-quantity"),
            vec![qty(v, lo, hi, None, Some("kg"), None)],
            "{text}"
        );
    }
}

#[test]
fn medication_statement_and_allergy() {
    let ms = json!({
        "resourceType": "MedicationStatement", "status": "active",
        "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "1049502"}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2024-03-05"
    });
    assert_eq!(
        of(&ms, "code"),
        vec![tok(
            Some("http://www.nlm.nih.gov/research/umls/rxnorm"),
            Some("1049502"),
            None
        )]
    );
    assert_eq!(of(&ms, "medication"), vec![]);
    assert_eq!(of(&ms, "status"), vec![tok(None, Some("active"), None)]);
    let ms_ref = json!({"resourceType": "MedicationStatement", "medicationReference": {"reference": "Medication/m1"}});
    assert_eq!(
        of(&ms_ref, "medication"),
        vec![rf(Some("Medication"), Some("m1"), None, None, None)]
    );
    assert_eq!(of(&ms_ref, "code"), vec![]);

    let ai = json!({
        "resourceType": "AllergyIntolerance",
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": "active"}]},
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "227493005", "display": "Cashew nuts"}]},
        "category": ["food", "food"],
        "patient": {"reference": "Patient/p1"},
        "reaction": [{"substance": {"coding": [{"system": "http://snomed.info/sct", "code": "227493005"}]},
                      "onset": "2012-06-12"}]
    });
    assert_eq!(
        of(&ai, "code"),
        vec![
            tok(
                Some("http://snomed.info/sct"),
                Some("227493005"),
                Some("Cashew nuts")
            ),
            tok(Some("http://snomed.info/sct"), Some("227493005"), None),
        ]
    );
    assert_eq!(of(&ai, "category"), vec![tok(None, Some("food"), None)]);
    assert_eq!(
        of(&ai, "onset"),
        vec![date(
            Some("2012-06-12T00:00:00Z"),
            Some("2012-06-13T00:00:00Z")
        )]
    );
}

#[test]
fn every_type_gets_its_own_params_and_events_a_timeline_entry_per_patient() {
    let enc = json!({"resourceType": "Encounter", "id": "e1", "status": "finished",
                     "subject": {"reference": "Patient/p1"},
                     "meta": {"source": "http://src#1"}});
    let p1 = IndexValue::Reference {
        target_type: Some("Patient".into()),
        target_id: Some("p1".into()),
        url: None,
        identifier_system: None,
        identifier_value: None,
    };
    let entry = |param: &str, value: IndexValue| IndexEntry {
        param: param.into(),
        value,
    };
    assert_eq!(
        extract(&enc),
        vec![
            entry(
                "_source",
                IndexValue::Uri {
                    value: "http://src#1".into()
                }
            ),
            entry("patient", p1.clone()),
            entry("status", tok(None, Some("finished"), None)),
            entry("subject", p1),
        ]
    );
    // Dated, it is an event on the patient's timeline.
    let mut dated = enc.clone();
    dated["period"] = json!({"start": "2026-02-10T22:15:00Z"});
    let events: Vec<IndexEntry> = extract(&dated)
        .into_iter()
        .filter(|e| matches!(e.value, IndexValue::Event { .. }))
        .collect();
    assert_eq!(
        events,
        vec![entry(
            "Encounter.period",
            IndexValue::Event {
                patient: "p1".into(),
                at: "2026-02-10T22:15:00Z".parse().unwrap()
            }
        )]
    );
    assert!(extract(&json!({"id": "x"})).is_empty());
}

/// Reference text and the expected (type, id, url).
type RefCase<'a> = (&'a str, Option<&'a str>, Option<&'a str>, Option<&'a str>);

#[test]
fn reference_parsing() {
    let cases: &[RefCase] = &[
        ("Patient/123", Some("Patient"), Some("123"), None),
        ("Patient/123/_history/4", Some("Patient"), Some("123"), None),
        (
            "http://a.org/fhir/Patient/123",
            Some("Patient"),
            Some("123"),
            Some("http://a.org/fhir/Patient/123"),
        ),
        (
            "http://a.org/fhir/Patient/123/_history/1",
            Some("Patient"),
            Some("123"),
            Some("http://a.org/fhir/Patient/123/_history/1"),
        ),
        (
            "http://a.org/some/thing",
            None,
            None,
            Some("http://a.org/some/thing"),
        ),
        ("urn:uuid:abc", None, None, Some("urn:uuid:abc")),
        ("#c1", None, None, None),
        ("patient/123", None, None, Some("patient/123")),
    ];
    for (text, t, id, url) in cases {
        let r = parse_reference(text);
        assert_eq!(
            (
                r.target_type.as_deref(),
                r.target_id.as_deref(),
                r.url.as_deref()
            ),
            (*t, *id, *url),
            "{text}"
        );
    }
}

#[test]
fn normalisation() {
    let cases = [
        ("Élodie", "elodie"),
        ("  MÜLLER\t Straße ", "muller straße"),
        ("Ångström", "angstrom"),
        ("", ""),
    ];
    for (input, want) in cases {
        assert_eq!(normalize_string(input), want, "{input}");
    }
}

#[test]
fn duplicates_are_removed_per_param() {
    let p = json!({"resourceType": "Patient", "name": [{"family": "Doe"}, {"family": "Doe"}]});
    assert_eq!(of(&p, "family"), vec![s("Doe", "doe")]);
}

#[test]
fn repeated_values_are_kept_once_in_first_seen_order_few_or_many() {
    for copies in [2, 40] {
        let mut names: Vec<Value> = (0..copies).map(|_| json!({"family": "Smith"})).collect();
        names.insert(1, json!({"family": "Jones"}));
        names.push(json!({"family": "Ames"}));
        let patient = json!({"resourceType": "Patient", "name": names});
        assert_eq!(
            of(&patient, "family"),
            vec![s("Smith", "smith"), s("Jones", "jones"), s("Ames", "ames")],
            "{copies} copies"
        );
    }
}
