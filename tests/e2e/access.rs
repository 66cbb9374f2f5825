//! Access control end to end: tokens, the role × type × interaction permission matrix over a
//! record with two patients, labelled resources and a safeguarding alert, break-glass,
//! relationship claims, and the audit trail every request leaves.

use std::collections::HashMap;

use serde_json::{json, Value};

use crate::harness::{sql_value, Resp, Server};

const ODS: &str = "https://fhir.nhs.uk/Id/ods-organization-code";
const CONF: &str = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";
const ACT: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
const SG: &str = "https://invicta.example.org/fhir/CodeSystem/flag-category";
/// The users' practice: p1's registered GP; p2 is registered elsewhere.
const PRACTICE: &str = "G82984";
/// The feed that sent everything.
const FEED_ORG: &str = "RWF";
const TYPES: [&str; 14] = [
    "Patient",
    "Observation",
    "MedicationStatement",
    "AllergyIntolerance",
    "Flag",
    "CarePlan",
    "Encounter",
    "Condition",
    "EpisodeOfCare",
    "MedicationRequest",
    "MedicationDispense",
    "ServiceRequest",
    "DiagnosticReport",
    "Immunization",
];
/// The kind of social care episode the record's EpisodeOfCare is (adults' social workers see it).
const EPISODE_TYPES: &str = "https://invicta.example.org/fhir/CodeSystem/episode-type";

/// A test resource and what the rules read from it.
#[derive(Clone)]
struct Item {
    res_type: &'static str,
    id: String,
    patient: &'static str,
    label: Option<&'static str>,
    safeguarding: bool,
    vital_signs: bool,
}

fn subject_field(t: &str) -> &'static str {
    match t {
        "AllergyIntolerance" | "EpisodeOfCare" | "Immunization" => "patient",
        _ => "subject",
    }
}

/// A minimal valid resource of `t` about `patient`.
fn body(t: &str, id: &str, patient: &str) -> Value {
    let code =
        json!({"coding": [{"system": "http://snomed.info/sct", "code": "1234567"}], "text": "x"});
    let mut v = match t {
        "Patient" => {
            json!({"resourceType": "Patient", "name": [{"family": format!("Fam-{patient}")}]})
        }
        "Observation" => json!({"resourceType": "Observation", "status": "final", "code": code,
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}]}),
        "MedicationStatement" => {
            json!({"resourceType": "MedicationStatement", "status": "active", "medicationCodeableConcept": code})
        }
        "AllergyIntolerance" => json!({"resourceType": "AllergyIntolerance", "code": code}),
        "Flag" => json!({"resourceType": "Flag", "status": "active", "code": code}),
        "CarePlan" => json!({"resourceType": "CarePlan", "status": "active", "intent": "plan"}),
        "Encounter" => json!({"resourceType": "Encounter", "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"}}),
        "Condition" => json!({"resourceType": "Condition", "code": code}),
        "EpisodeOfCare" => json!({"resourceType": "EpisodeOfCare", "status": "active",
            "type": [{"coding": [{"system": EPISODE_TYPES, "code": "social-care-adults"}]}]}),
        "MedicationRequest" => json!({"resourceType": "MedicationRequest", "status": "active",
            "intent": "order", "medicationCodeableConcept": code}),
        "MedicationDispense" => json!({"resourceType": "MedicationDispense",
            "status": "completed", "medicationCodeableConcept": code}),
        "ServiceRequest" => json!({"resourceType": "ServiceRequest", "status": "active",
            "intent": "order", "code": code}),
        "DiagnosticReport" => {
            json!({"resourceType": "DiagnosticReport", "status": "final", "code": code})
        }
        "Immunization" => json!({"resourceType": "Immunization", "status": "completed",
            "vaccineCode": code, "occurrenceDateTime": "2026-01-05"}),
        _ => unreachable!(),
    };
    v["id"] = json!(id);
    if t != "Patient" {
        v[subject_field(t)] = json!({"reference": format!("Patient/{patient}")});
    }
    v
}

fn auth(token: &str) -> String {
    format!("Bearer {token}")
}

/// The record: Organizations, two patients, one of each type each, and p1's labelled extras.
fn load(s: &Server) -> Vec<Item> {
    let feed = s.token("feed", "system/*.crus", Some(FEED_ORG), None);
    let h = auth(&feed);
    let put = |v: &Value| {
        let path = format!(
            "/{}/{}",
            v["resourceType"].as_str().unwrap(),
            v["id"].as_str().unwrap()
        );
        let r = s.send_json("PUT", &path, v, &[("Authorization", &h)]);
        assert_eq!(
            r.status,
            201,
            "{path}: {}",
            String::from_utf8_lossy(&r.body)
        );
    };
    for (id, ods) in [("practice-1", PRACTICE), ("practice-2", "G82977")] {
        put(
            &json!({"resourceType": "Organization", "id": id, "name": id,
            "identifier": [{"system": ODS, "value": ods}]}),
        );
    }
    let mut items = Vec::new();
    for (p, practice) in [("p1", "practice-1"), ("p2", "practice-2")] {
        for t in TYPES {
            let id = if t == "Patient" {
                p.to_string()
            } else {
                format!("{p}-{}", t.to_lowercase())
            };
            let mut v = body(t, &id, p);
            if t == "Patient" {
                v["generalPractitioner"] =
                    json!([{"reference": format!("Organization/{practice}")}]);
            }
            put(&v);
            items.push(Item {
                res_type: t,
                id,
                patient: p,
                label: None,
                safeguarding: false,
                vital_signs: false,
            });
        }
    }
    let mut extra =
        |id: &str, t: &'static str, f: &dyn Fn(&mut Value), label, safeguarding, vital_signs| {
            let mut v = body(t, id, "p1");
            f(&mut v);
            put(&v);
            items.push(Item {
                res_type: t,
                id: id.into(),
                patient: "p1",
                label,
                safeguarding,
                vital_signs,
            });
        };
    extra(
        "p1-obs-r",
        "Observation",
        &|v| v["meta"] = json!({"security": [{"system": CONF, "code": "R"}]}),
        Some("R"),
        false,
        false,
    );
    extra(
        "p1-obs-v",
        "Observation",
        &|v| v["meta"] = json!({"security": [{"system": CONF, "code": "V"}]}),
        Some("V"),
        false,
        false,
    );
    extra(
        "p1-obs-psy",
        "Observation",
        &|v| v["meta"] = json!({"security": [{"system": ACT, "code": "PSY"}]}),
        Some("PSY"),
        false,
        false,
    );
    extra(
        "p1-obs-vitals",
        "Observation",
        &|v| v["category"][0]["coding"][0]["code"] = json!("vital-signs"),
        None,
        false,
        true,
    );
    extra(
        "p1-flag-sg",
        "Flag",
        &|v| v["category"] = json!([{"coding": [{"system": SG, "code": "safeguarding"}]}]),
        None,
        true,
        false,
    );
    items
}

/// What a role may do, written out by hand from the policy table in the README.
struct Role {
    id: &'static str,
    read: &'static [&'static str],
    create: &'static [&'static str],
    update: &'static [&'static str],
    delete: &'static [&'static str],
    labels: &'static [&'static str],
    safeguarding: bool,
    lab_only: bool,
    /// Reads the Organizations a record refers to (every role but the privacy officer's and
    /// the patient's, whose scope is their own compartment).
    reads_organizations: bool,
    /// The only kind of EpisodeOfCare the role sees, when its ceiling restricts the type.
    episode: Option<&'static str>,
}

const ALL: &[&str] = &TYPES;
/// What social workers read (the social care record, without clinical detail).
const SOCIAL: &[&str] = &[
    "Patient",
    "Flag",
    "CarePlan",
    "Encounter",
    "EpisodeOfCare",
    "ServiceRequest",
];
const PHARMACY: &[&str] = &[
    "Patient",
    "MedicationStatement",
    "MedicationRequest",
    "MedicationDispense",
    "AllergyIntolerance",
    "Observation",
    "Immunization",
];

fn roles() -> Vec<Role> {
    let r = |id, read, create, update, delete, labels, safeguarding| Role {
        id,
        read,
        create,
        update,
        delete,
        labels,
        safeguarding,
        lab_only: false,
        reads_organizations: !matches!(id, "patient" | "privacy-officer"),
        episode: None,
    };
    let mut out = vec![
        r("gp", ALL, ALL, ALL, ALL, &["R", "PSY"], true),
        r("hospital-clinician", ALL, ALL, ALL, ALL, &["PSY"], true),
        r("paramedic", ALL, &["Observation"], &[], &[], &[], true),
        r(
            "community-nurse",
            ALL,
            &["Observation", "CarePlan", "Flag"],
            &["Observation", "CarePlan", "Flag"],
            &[],
            &[],
            true,
        ),
        r(
            "mental-health-clinician",
            ALL,
            ALL,
            ALL,
            ALL,
            &["R", "PSY"],
            true,
        ),
        Role {
            episode: Some("social-care-adults"),
            ..r(
                "social-worker-adults",
                SOCIAL,
                &["Flag", "CarePlan", "EpisodeOfCare", "ServiceRequest"],
                &["Flag", "CarePlan", "EpisodeOfCare"],
                &[],
                &[],
                true,
            )
        },
        // The record's episode is adults' social care: the children's team neither sees nor
        // writes it (its ceiling names only children's and child protection episodes).
        Role {
            episode: Some("social-care-children"),
            ..r(
                "social-worker-children",
                SOCIAL,
                &["Flag", "CarePlan", "ServiceRequest"],
                &["Flag", "CarePlan"],
                &[],
                &[],
                true,
            )
        },
        r(
            "safeguarding-lead",
            ALL,
            &["Flag", "CarePlan"],
            &["Flag", "CarePlan"],
            &[],
            &["R"],
            true,
        ),
        r(
            "receptionist",
            &["Patient"],
            &["Patient"],
            &["Patient"],
            &[],
            &[],
            false,
        ),
        r("patient", ALL, &[], &[], &[], &["PSY"], false),
        r("privacy-officer", &[], &[], &[], &[], &[], false),
    ];
    out.push(Role {
        lab_only: true,
        ..r("pharmacist", PHARMACY, &[], &[], &[], &[], false)
    });
    out
}

fn can_break_glass(role: &str) -> bool {
    ![
        "pharmacist",
        "social-worker-adults",
        "receptionist",
        "patient",
        "privacy-officer",
    ]
    .contains(&role)
}

fn token_for(s: &Server, role: &str) -> String {
    match role {
        "patient" => s.token(
            "patient",
            "patient/*.rs patient/AuditEvent.rs",
            None,
            Some("p1"),
        ),
        "privacy-officer" => s.token(role, "user/AuditEvent.rs", Some(PRACTICE), None),
        _ => s.token(role, "user/*.cruds", Some(PRACTICE), None),
    }
}

/// Whether `role` sees `item`: type readable, label visible, alert visible, and p1 only (the
/// practice is related to p1; a patient token is confined to p1).
fn sees(role: &Role, item: &Item) -> bool {
    item.patient == "p1" && sees_if_related(role, item)
}

/// Whether `role` would see `item` with a relationship to its patient (what a claim or
/// break-glass can lift is only the relationship rule here: the p2 items carry no label).
fn sees_if_related(role: &Role, item: &Item) -> bool {
    role.read.contains(&item.res_type)
        && item.label.is_none_or(|l| role.labels.contains(&l))
        && (!item.safeguarding || role.safeguarding)
        && !(role.lab_only && item.vital_signs)
        && (item.res_type != "EpisodeOfCare"
            || role.episode.is_none_or(|e| e == "social-care-adults"))
}

struct Client<'a> {
    s: &'a Server,
    bearer: String,
    role: &'static str,
    n: usize,
    /// request id -> patients the response may touch (for the audit check)
    expected: HashMap<String, (usize, String)>,
}

impl Client<'_> {
    fn call(&mut self, method: &str, path: &str, body: Option<&Value>, patients: usize) -> Resp {
        self.n += 1;
        // The role keeps ids apart: two roles' tokens may be as long as each other.
        let rid = format!("acc-{}-{}", self.role, self.n);
        let rid = format!("{rid}-{}", uuid_like(self.n, path));
        let h = [
            ("Authorization", self.bearer.as_str()),
            ("X-Request-Id", rid.as_str()),
        ];
        let r = match body {
            Some(b) => self.s.send_json(method, path, b, &h),
            None if method == "DELETE" => self.s.send("DELETE", path, &h, b""),
            None => self.s.get(path, &h),
        };
        let touched = if (200..300).contains(&r.status) {
            patients.max(1)
        } else {
            1
        };
        self.expected
            .insert(rid, (touched, format!("{method} {path}")));
        r
    }
}

fn uuid_like(n: usize, path: &str) -> String {
    let mut h: u64 = 1469598103934665603;
    for b in path.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(1099511628211);
    }
    format!("{n:05}{:08x}", h as u32)
}

fn total(r: &Resp) -> i64 {
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()["total"].as_i64().expect("total")
}

fn entries(r: &Resp, mode: &str) -> Vec<String> {
    r.json()["entry"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|e| e["search"]["mode"] == mode)
        .map(|e| {
            format!(
                "{}/{}",
                e["resource"]["resourceType"].as_str().unwrap(),
                e["resource"]["id"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn permission_matrix_over_roles_types_and_interactions() {
    let s = Server::secure();
    let items = load(&s);
    let feed_bearer = auth(&s.token("feed", "system/*.crus", Some(FEED_ORG), None));
    let mut audit_expected: HashMap<String, (usize, String)> = HashMap::new();
    for role in roles() {
        let mut c = Client {
            s: &s,
            bearer: auth(&token_for(&s, role.id)),
            role: role.id,
            n: 0,
            expected: HashMap::new(),
        };
        for t in TYPES {
            let readable = role.read.contains(&t);
            let visible: Vec<&Item> = items
                .iter()
                .filter(|i| i.res_type == t && sees(&role, i))
                .collect();
            // read and vread of every item of the type
            for item in items.iter().filter(|i| i.res_type == t) {
                let path = format!("/{t}/{}", item.id);
                let r = c.call("GET", &path, None, 1);
                let v = c.call("GET", &format!("{path}/_history/1"), None, 1);
                let h = c.call("GET", &format!("{path}/_history"), None, 1);
                let ctx = format!("{} {path}", role.id);
                if !readable {
                    assert_eq!((r.status, v.status, h.status), (403, 403, 403), "{ctx}");
                } else if sees(&role, item) {
                    assert_eq!((r.status, v.status), (200, 200), "{ctx}");
                    assert_eq!(total(&h), 1, "{ctx}");
                } else if item.patient == "p2"
                    && role.id != "patient"
                    && sees_if_related(&role, item)
                {
                    // No relationship with p2: withheld, with the way to claim one.
                    let o = r.outcome(403);
                    assert!(o.to_string().contains("X-Relationship-Claim"), "{ctx}: {o}");
                    assert_eq!(v.status, 403, "{ctx}");
                    assert_eq!(h.status, 404, "{ctx}");
                } else if item.label == Some("R") && can_break_glass(role.id) {
                    assert_eq!(
                        (r.status, v.status),
                        (403, 403),
                        "{ctx}: R is liftable by break-glass"
                    );
                    assert_eq!(h.status, 404, "{ctx}");
                } else {
                    assert_eq!((r.status, v.status, h.status), (404, 404, 404), "{ctx}");
                }
            }
            // searches: by patient, counts, system-wide type search
            let field = if t == "Patient" {
                "_id"
            } else {
                subject_field(t)
            };
            let by_patient = if t == "Patient" {
                "p1".to_string()
            } else {
                "Patient/p1".to_string()
            };
            let q = format!("/{t}?{field}={by_patient}&_total=accurate");
            let r = c.call("GET", &q, None, 1);
            let n = c.call("GET", &format!("/{t}?_summary=count"), None, 1);
            let all = c.call("GET", &format!("/{t}?_total=accurate&_count=100"), None, 1);
            if !readable {
                assert_eq!(
                    (r.status, n.status, all.status),
                    (403, 403, 403),
                    "{} search {t}",
                    role.id
                );
                continue;
            }
            let ctx = format!("{} search {t}", role.id);
            assert_eq!(total(&r) as usize, visible.len(), "{ctx}");
            assert_eq!(
                total(&n) as usize,
                visible.len(),
                "{ctx} _summary=count over all patients"
            );
            assert_eq!(total(&all) as usize, visible.len(), "{ctx} all");
            assert_eq!(entries(&all, "match").len(), visible.len(), "{ctx} entries");
            let suppressed = all.json()["entry"].as_array().is_some_and(|e| {
                e.iter()
                    .any(|x| x["resource"]["issue"].to_string().contains("suppressed"))
            });
            let withheld = items
                .iter()
                .any(|i| i.res_type == t && i.patient == "p2" && sees_if_related(&role, i));
            assert_eq!(
                suppressed,
                role.id != "patient" && withheld,
                "{ctx}: p2's resources are withheld for a reason break-glass lifts"
            );
            // chain and _has: a hidden resource cannot be found by pointing at it
            if t != "Patient" {
                let chain = c.call(
                    "GET",
                    &format!("/{t}?{}.family=Fam-p2&_total=accurate", subject_field(t)),
                    None,
                    0,
                );
                assert_eq!(total(&chain), 0, "{ctx} chain to p2");
                let chain1 = c.call(
                    "GET",
                    &format!("/{t}?{}.family=Fam-p1&_total=accurate", subject_field(t)),
                    None,
                    1,
                );
                let via_patient = if role.read.contains(&"Patient") {
                    visible.len()
                } else {
                    0
                };
                assert_eq!(total(&chain1) as usize, via_patient, "{ctx} chain to p1");
                // _include of the patient, _revinclude from the patient
                let inc = c.call(
                    "GET",
                    &format!(
                        "/{t}?{field}={by_patient}&_include={t}:{}",
                        subject_field(t)
                    ),
                    None,
                    1,
                );
                let want: Vec<String> = if role.read.contains(&"Patient") && !visible.is_empty() {
                    vec!["Patient/p1".into()]
                } else {
                    vec![]
                };
                assert_eq!(entries(&inc, "include"), want, "{ctx} _include");
                if role.read.contains(&"Patient") {
                    let rev = c.call(
                        "GET",
                        &format!("/Patient?_id=p1&_revinclude={t}:{}", subject_field(t)),
                        None,
                        1,
                    );
                    let mut got = entries(&rev, "include");
                    got.sort();
                    let mut want: Vec<String> =
                        visible.iter().map(|i| format!("{t}/{}", i.id)).collect();
                    want.sort();
                    assert_eq!(got, want, "{ctx} _revinclude");
                    let has = c.call(
                        "GET",
                        &format!(
                            "/Patient?_has:{t}:{}:_id={}&_total=accurate",
                            subject_field(t),
                            items
                                .iter()
                                .filter(|i| i.res_type == t)
                                .map(|i| i.id.clone())
                                .collect::<Vec<_>>()
                                .join(",")
                        ),
                        None,
                        1,
                    );
                    assert_eq!(
                        total(&has) as usize,
                        usize::from(!visible.is_empty()),
                        "{ctx} _has"
                    );
                }
            }
        }
        // $everything: p1's record as far as the role sees it, and nothing of p2.
        let ctx = format!("{} $everything", role.id);
        let mut record: Vec<String> = items
            .iter()
            .filter(|i| sees(&role, i))
            .map(|i| format!("{}/{}", i.res_type, i.id))
            .collect();
        record.sort();
        // One patient's record brings the resources it refers to: p1's practice.
        let mut want = record.clone();
        if role.reads_organizations {
            want.push("Organization/practice-1".into());
            want.sort();
        }
        let own = c.call(
            "GET",
            "/Patient/p1/$everything?_count=100&_total=accurate",
            None,
            1,
        );
        let other = c.call("GET", "/Patient/p2/$everything", None, 1);
        let untargeted = c.call("GET", "/Patient/$everything?_count=100", None, 1);
        if !role.read.contains(&"Patient") {
            assert_eq!((own.status, other.status), (403, 403), "{ctx}");
        } else {
            let mut got = entries(&own, "match");
            got.sort();
            assert_eq!(got, want, "{ctx}");
            assert_eq!(total(&own) as usize, want.len(), "{ctx} total");
            if role.id == "patient" {
                // Confined to p1: p2 does not exist for this token; no id means p1.
                assert_eq!(other.status, 404, "{ctx} p2");
                let mut got = entries(&untargeted, "match");
                got.sort();
                assert_eq!(got, want, "{ctx} without an id");
            } else {
                // No relationship with p2: withheld, with the way to claim one.
                let o = other.outcome(403);
                assert!(o.to_string().contains("X-Relationship-Claim"), "{ctx}: {o}");
                // Without an id: every compartment the role may see, which is p1's.
                let mut got = entries(&untargeted, "match");
                got.sort();
                assert_eq!(got, record, "{ctx} without an id");
            }
            // $timeline: the same events as the record, newest first, none of p2's.
            let ctx = format!("{} $timeline", role.id);
            let line = c.call("GET", "/Patient/p1/$timeline?_count=100", None, 1);
            let mut got = entries(&line, "match");
            got.sort();
            let events: Vec<String> = record
                .iter()
                .filter(|r| !r.starts_with("Patient/"))
                .cloned()
                .collect();
            assert_eq!(got, events, "{ctx}");
            let dates: Vec<String> = line.json()["entry"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .filter(|e| e["search"]["mode"] == "match")
                .map(|e| {
                    e["extension"][0]["extension"][0]["valueDateTime"]
                        .as_str()
                        .unwrap()
                        .to_string()
                })
                .collect();
            assert!(dates.windows(2).all(|w| w[0] >= w[1]), "{ctx}: {dates:?}");
            let other = c.call("GET", "/Patient/p2/$timeline", None, 1);
            assert_eq!(
                other.status,
                if role.id == "patient" { 404 } else { 403 },
                "{ctx} p2"
            );
        }
        audit_expected.extend(c.expected);
    }
    // Writes after every read check, so the counts above see only the loaded record.
    for role in roles() {
        let mut c = Client {
            s: &s,
            bearer: auth(&token_for(&s, role.id)),
            role: role.id,
            n: 1000,
            expected: HashMap::new(),
        };
        // create, update, delete of a fresh resource of each type for p1
        for t in TYPES {
            let ctx = format!("{} write {t}", role.id);
            let id = format!("w-{}-{}", role.id, t.to_lowercase());
            let mut fresh = body(t, &format!("f-{id}"), "p1");
            if t == "Patient" {
                fresh["generalPractitioner"] =
                    json!([{"identifier": {"system": ODS, "value": PRACTICE}}]);
            }
            let r = s.send_json(
                "PUT",
                &format!("/{t}/f-{id}"),
                &fresh,
                &[("Authorization", &feed_bearer)],
            );
            assert_eq!(r.status, 201, "{ctx} setup");
            let mut created = body(t, "x", "p1");
            created.as_object_mut().unwrap().remove("id");
            if t == "Patient" {
                created["generalPractitioner"] =
                    json!([{"identifier": {"system": ODS, "value": PRACTICE}}]);
            }
            let r = c.call("POST", &format!("/{t}"), Some(&created), 1);
            assert_eq!(
                r.status,
                if role.create.contains(&t) { 201 } else { 403 },
                "{ctx} create: {}",
                String::from_utf8_lossy(&r.body)
            );
            let mut changed = fresh.clone();
            changed["meta"] = json!({"tag": [{"system": "urn:test", "code": "changed"}]});
            let r = c.call("PUT", &format!("/{t}/f-{id}"), Some(&changed), 1);
            assert_eq!(
                r.status,
                if role.update.contains(&t) { 200 } else { 403 },
                "{ctx} update: {}",
                String::from_utf8_lossy(&r.body)
            );
            let r = c.call("DELETE", &format!("/{t}/f-{id}"), None, 1);
            assert_eq!(
                r.status,
                if role.delete.contains(&t) { 204 } else { 403 },
                "{ctx} delete"
            );
        }
        audit_expected.extend(c.expected);
    }
    // Every request above left its AuditEvents: one per patient touched, one when none or refused.
    s.settle_audit();
    let rows = sql_value(
        &s.db_url,
        "SELECT e->'what'->'identifier'->>'value', count(*) FROM audit_resource r, \
         jsonb_array_elements(convert_from(r.body, 'UTF8')::jsonb->'entity') e \
         WHERE e->'what'->'identifier'->>'system' LIKE '%request-id' \
         GROUP BY 1",
    );
    let counts: HashMap<String, usize> = rows
        .lines()
        .filter_map(|l| l.split_once('|'))
        .map(|(k, v)| (k.to_string(), v.parse().unwrap()))
        .collect();
    for (rid, (want, what)) in &audit_expected {
        let got = counts.get(rid).copied().unwrap_or(0);
        assert!(got >= 1, "request {rid} ({what}) left no AuditEvent");
        assert!(
            got <= (*want).max(1),
            "request {rid} ({what}): {got} AuditEvents, expected at most {want}"
        );
    }
}

#[test]
fn token_attacks_are_refused() {
    let s = Server::secure();
    let good = s.token("gp", "user/*.rs", Some(PRACTICE), None);
    assert_eq!(
        s.get("/Patient", &[("Authorization", &auth(&good))]).status,
        200
    );
    let b64 = |v: &Value| {
        use std::fmt::Write;
        let bytes = serde_json::to_vec(v).unwrap();
        let table = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n =
                chunk.iter().fold(0u32, |a, b| (a << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
            for i in 0..=chunk.len() {
                let _ = out.write_char(table[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    };
    let parts: Vec<&str> = good.split('.').collect();
    let now = 1_900_000_000i64;
    let claims = json!({"iss": s.base, "aud": s.base, "sub": "x", "role": "gp", "scope": "user/*.rs", "exp": now, "org": PRACTICE});
    let mut tampered_claims = claims.clone();
    tampered_claims["role"] = json!("safeguarding-lead");
    let attacks: Vec<(&str, String)> = vec![
        (
            "alg none",
            format!(
                "{}.{}.",
                b64(&json!({"alg": "none", "typ": "JWT"})),
                b64(&claims)
            ),
        ),
        (
            "HS256 with a guessable secret",
            format!(
                "{}.{}.{}",
                b64(&json!({"alg": "HS256", "typ": "JWT"})),
                b64(&claims),
                parts[2]
            ),
        ),
        (
            "tampered payload",
            format!("{}.{}.{}", parts[0], b64(&tampered_claims), parts[2]),
        ),
        (
            "expired",
            s.sign(json!({"role": "gp", "scope": "user/*.rs", "exp": 1_000_000_000})),
        ),
        (
            "not yet valid",
            s.sign(json!({"role": "gp", "scope": "user/*.rs", "nbf": now})),
        ),
        (
            "wrong issuer",
            s.sign(json!({"role": "gp", "scope": "user/*.rs", "iss": "https://evil.example"})),
        ),
        (
            "wrong audience",
            s.sign(
                json!({"role": "gp", "scope": "user/*.rs", "aud": "https://other.example/fhir"}),
            ),
        ),
        ("unknown kid", {
            let t = s.sign(json!({"role": "gp", "scope": "user/*.rs"}));
            let p: Vec<&str> = t.split('.').collect();
            format!(
                "{}.{}.{}",
                b64(&json!({"alg": "ES256", "typ": "JWT", "kid": "nope"})),
                p[1],
                p[2]
            )
        }),
        (
            "injected restriction",
            s.sign(json!({"role": "gp", "scope": "user/Observation.rs?subject.name=x"})),
        ),
        (
            "unknown role",
            s.sign(json!({"role": "superuser", "scope": "user/*.cruds"})),
        ),
        ("garbage", "not.a.token".into()),
    ];
    for (name, token) in attacks {
        let r = s.get("/Patient", &[("Authorization", &auth(&token))]);
        assert_eq!(
            r.status,
            401,
            "{name}: {}",
            String::from_utf8_lossy(&r.body)
        );
        let challenge = r.header("www-authenticate").unwrap_or_default();
        assert!(
            challenge.contains("error=\"invalid_token\""),
            "{name}: {challenge}"
        );
        r.outcome(401);
    }
    let r = s.get("/Patient", &[]);
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").unwrap().starts_with("Bearer"));
    // metadata and the SMART configuration are open; the statement declares SMART.
    let m = s.get("/metadata", &[]).json();
    assert_eq!(
        m["rest"][0]["security"]["service"][0]["coding"][0]["code"],
        "SMART-on-FHIR"
    );
    let sc = s.get("/.well-known/smart-configuration", &[]);
    assert_eq!(sc.status, 200);
    assert!(sc.json()["capabilities"]
        .as_array()
        .unwrap()
        .contains(&json!("permission-v2")));
    // Refused requests are audited too (outcome 4, no agent).
    s.settle_audit();
    let refused = sql_value(
        &s.db_url,
        "SELECT count(*) FROM audit_resource \
         WHERE convert_from(body, 'UTF8')::jsonb->>'outcome' = '4'",
    );
    assert!(refused.parse::<i32>().unwrap() >= 12, "{refused}");
}

#[test]
fn break_glass_claims_and_the_audit_trail() {
    let s = Server::secure();
    load(&s);
    let gp = auth(&s.token("gp", "user/*.rs", Some(PRACTICE), None));
    // No relationship with p2: withheld with a way forward, naming the routes open to the role.
    s.get("/Patient/p2", &[("Authorization", &gp)]).outcome(403);
    assert_eq!(
        routes(&s.get("/Patient/p2", &[("Authorization", &gp)])),
        ["relationship-claim", "break-glass"]
    );
    let pharmacist = auth(&s.token("pharmacist", "user/*.rs", Some(PRACTICE), None));
    assert_eq!(
        routes(&s.get("/Patient/p2", &[("Authorization", &pharmacist)])),
        ["relationship-claim"],
        "a pharmacist may not break glass"
    );
    let searched = s.get("/Patient?_id=p2", &[("Authorization", &gp)]);
    let notice = searched.json()["entry"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["search"]["mode"] == "outcome")
        .map(|e| e["resource"].to_string())
        .unwrap_or_default();
    assert!(
        notice.contains("suppressed") && notice.contains("\"code\":\"break-glass\""),
        "{notice}"
    );
    // Break-glass needs a reason, then lifts relationship and R for this request only.
    s.get(
        "/Patient/p2",
        &[("Authorization", &gp), ("X-Purpose-Of-Use", "BTG")],
    )
    .outcome(403);
    let bg = [
        ("Authorization", gp.as_str()),
        ("X-Purpose-Of-Use", "BTG"),
        ("X-Break-Glass-Reason", "unconscious in ED"),
    ];
    assert_eq!(s.get("/Patient/p2", &bg).status, 200);
    assert_eq!(s.get("/Observation/p1-obs-r", &bg).status, 200);
    assert_eq!(
        s.get("/Observation/p1-obs-v", &bg).status,
        404,
        "V is never lifted"
    );
    assert_eq!(
        s.get("/Patient/p2", &[("Authorization", &gp)]).status,
        403,
        "one request only"
    );
    // A role that may not break glass is refused.
    let ph = auth(&s.token("pharmacist", "user/*.rs", Some(PRACTICE), None));
    s.get(
        "/Patient/p2",
        &[
            ("Authorization", &ph),
            ("X-Purpose-Of-Use", "BTG"),
            ("X-Break-Glass-Reason", "x"),
        ],
    )
    .outcome(403);
    // A relationship claim is recorded and lasts.
    let claim = [
        ("Authorization", gp.as_str()),
        ("X-Relationship-Claim", "new patient at the surgery today"),
    ];
    assert_eq!(s.get("/Patient/p2", &claim).status, 200);
    assert_eq!(s.get("/Patient/p2", &[("Authorization", &gp)]).status, 200);
    // Privacy officer: review break-glass and claims; AuditEvents are read-only for everyone.
    let po = auth(&s.token(
        "privacy-officer",
        "user/AuditEvent.rs",
        Some(PRACTICE),
        None,
    ));
    let review = s.get("/AuditEvent?_tag=https://invicta.example.org/fhir/CodeSystem/audit-flag|review&_total=accurate", &[("Authorization", &po)]);
    assert!(
        total(&review) >= 3,
        "{}",
        String::from_utf8_lossy(&review.body)
    );
    let btg = s.get(
        "/AuditEvent?purpose=BTG&_total=accurate",
        &[("Authorization", &po)],
    );
    assert!(total(&btg) >= 2);
    let by_patient = s.get(
        "/AuditEvent?patient=p2&_total=accurate",
        &[("Authorization", &po)],
    );
    assert!(total(&by_patient) >= 3);
    let one = entries(&by_patient, "match")[0].clone();
    let ev = s.get(&format!("/{one}"), &[("Authorization", &po)]).json();
    assert_eq!(
        s.send_json("PUT", &format!("/{one}"), &ev, &[("Authorization", &po)])
            .status,
        403
    );
    assert_eq!(
        s.send("DELETE", &format!("/{one}"), &[("Authorization", &po)], b"")
            .status,
        403
    );
    let gp_all = auth(&s.token("gp", "user/*.cruds", Some(PRACTICE), None));
    assert_eq!(
        s.send(
            "DELETE",
            &format!("/{one}"),
            &[("Authorization", &gp_all)],
            b""
        )
        .status,
        403
    );
    assert_eq!(
        s.get(&format!("/{one}"), &[("Authorization", &gp)]).status,
        403
    );
    // A patient lists who viewed their own record, and nobody else's.
    let me = auth(&s.token(
        "patient",
        "patient/*.rs patient/AuditEvent.rs",
        None,
        Some("p1"),
    ));
    let mine = s.get(
        "/AuditEvent?patient=p1&_total=accurate",
        &[("Authorization", &me)],
    );
    assert!(total(&mine) >= 1);
    let theirs = s.get(
        "/AuditEvent?patient=p2&_total=accurate",
        &[("Authorization", &me)],
    );
    assert_eq!(total(&theirs), 0);
    // A safeguarding alert cannot be probed through _has or a chain by a patient.
    let probe = s.get(
        "/Patient?_has:Flag:subject:category=safeguarding&_total=accurate",
        &[("Authorization", &me)],
    );
    assert_eq!(total(&probe), 0);
    let probe = s.get(
        "/Flag?category=safeguarding&_total=accurate",
        &[("Authorization", &me)],
    );
    assert_eq!(total(&probe), 0);
    // The record of the GP's break-glass read of p1's restricted Observation is kept from p1.
    let seen: Vec<String> = mine.json()["entry"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| {
            e["resource"]["entity"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|x| x["what"]["reference"].as_str().map(str::to_string))
        .collect();
    assert!(
        !seen
            .iter()
            .any(|r| r.contains("p1-obs-r") || r.contains("p1-flag-sg")),
        "{seen:?}"
    );
}

#[test]
fn feeds_see_and_change_only_their_own_source() {
    let s = Server::secure();
    load(&s);
    let rwf = auth(&s.token("feed", "system/*.crus", Some(FEED_ORG), None));
    let other = auth(&s.token("feed", "system/*.crus", Some("RXX"), None));
    // The sending feed sees all it sent, every patient and label, V included (its own).
    let mine = s.get("/Observation?_total=accurate", &[("Authorization", &rwf)]);
    assert_eq!(total(&mine), 6);
    assert_eq!(
        s.get("/Observation/p1-obs-v", &[("Authorization", &rwf)])
            .status,
        200
    );
    // Another source sees none of it and cannot overwrite it.
    assert_eq!(
        total(&s.get("/Observation?_total=accurate", &[("Authorization", &other)])),
        0
    );
    let mut v = s
        .get("/Observation/p1-observation", &[("Authorization", &rwf)])
        .json();
    v["status"] = json!("amended");
    let r = s.send_json(
        "PUT",
        "/Observation/p1-observation",
        &v,
        &[
            ("Authorization", &other),
            ("X-Request-Id", "overwrite-attempt"),
        ],
    );
    r.outcome(403);
    assert_eq!(
        s.send(
            "DELETE",
            "/Observation/p1-observation",
            &[("Authorization", &other)],
            b""
        )
        .status,
        403
    );
    s.settle_audit();
    let audited = sql_value(
        &s.db_url,
        "SELECT count(*) FROM audit_resource \
         WHERE convert_from(body, 'UTF8') LIKE '%overwrite-attempt%' \
         AND convert_from(body, 'UTF8')::jsonb->>'outcome' = '4'",
    );
    assert_eq!(audited, "1");
    // A feed without an organisation cannot act at all.
    let anonymous = auth(&s.token("feed", "system/*.crus", None, None));
    s.get("/Observation", &[("Authorization", &anonymous)])
        .outcome(403);
    // The source relationship it left lets the hospital's users see the patients it sent.
    let clinician = auth(&s.token("hospital-clinician", "user/*.rs", Some(FEED_ORG), None));
    assert_eq!(
        s.get("/Patient/p2", &[("Authorization", &clinician)])
            .status,
        200
    );
}

#[test]
fn audit_records_are_durable_before_the_response_and_searchable_at_once() {
    let s = Server::secure();
    load(&s);
    let gp = auth(&s.token("gp", "user/*.rs", Some(PRACTICE), None));
    let po = auth(&s.token(
        "privacy-officer",
        "user/AuditEvent.rs",
        Some(PRACTICE),
        None,
    ));
    let stored = |rid: &str| -> i64 {
        sql_value(
            &s.db_url,
            &format!(
                "SELECT count(*) FROM audit_resource WHERE convert_from(body, 'UTF8') LIKE '%\"{rid}\"%'"
            ),
        )
        .parse::<i64>()
        .unwrap()
    };
    let by_request = |rid: &str| {
        format!(
            "/AuditEvent?entity:identifier=https://invicta.example.org/fhir/Id/request-id|{rid}&_total=accurate"
        )
    };
    // Stored by the time the response arrives, and found by the very next search.
    let r = s.get(
        "/Patient/p1",
        &[("Authorization", &gp), ("X-Request-Id", "audit-read-1")],
    );
    assert_eq!(r.status, 200);
    assert_eq!(stored("audit-read-1"), 1);
    let found = s.get(&by_request("audit-read-1"), &[("Authorization", &po)]);
    assert_eq!(total(&found), 1);
    // The same through a GET entry of a batch Bundle.
    let r = s.get(
        "/Observation?subject=Patient/p1",
        &[("Authorization", &gp), ("X-Request-Id", "audit-read-2")],
    );
    assert_eq!(r.status, 200);
    let batch = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": by_request("audit-read-2").trim_start_matches('/')}}
    ]});
    let r = s.send_json("POST", "", &batch, &[("Authorization", &po)]);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["entry"][0]["resource"]["total"], 1, "{}", r.json());
    // Nobody, not even the privacy officer, can change or remove an AuditEvent.
    let any = s
        .get("/AuditEvent?_count=1", &[("Authorization", &po)])
        .json();
    let id = any["entry"][0]["resource"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        s.send(
            "DELETE",
            &format!("/AuditEvent/{id}"),
            &[("Authorization", &po)],
            b""
        )
        .status,
        403
    );
}

/// The audit trail is a table of its own; through the API it is still AuditEvent: read, vread,
/// history, search with tokens, references, identifiers, dates, `:not`, several values, sorting
/// and paging, and the forms it does not offer are named, never silently widened.
#[test]
fn the_audit_trail_answers_as_a_resource_type() {
    let s = Server::secure();
    load(&s);
    let gp = auth(&s.token("gp", "user/*.rs", Some(PRACTICE), None));
    let po = auth(&s.token(
        "privacy-officer",
        "user/AuditEvent.rs",
        Some(PRACTICE),
        None,
    ));
    let h = [("Authorization", po.as_str())];
    for (i, path) in [
        "/Patient/p1",
        "/Patient/p1",
        "/Observation?subject=Patient/p1",
    ]
    .iter()
    .enumerate()
    {
        let rid = format!("trail-{i}");
        let r = s.get(path, &[("Authorization", &gp), ("X-Request-Id", &rid)]);
        assert_eq!(r.status, 200, "{path}");
    }
    let ids = "https://invicta.example.org/fhir/Id/request-id";
    let found = s.get(
        &format!("/AuditEvent?entity:identifier={ids}|trail-0,{ids}|trail-1,{ids}|trail-2&patient=p1&_sort=-date&_count=2"),
        &h,
    );
    assert_eq!(
        found.status,
        200,
        "{}",
        String::from_utf8_lossy(&found.body)
    );
    let page = found.json();
    let entries = page["entry"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{page}");
    let next = page["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["relation"] == "next")
        .and_then(|l| l["url"].as_str())
        .expect("a next link")
        .to_string();
    let rest = s.get(&next, &h).json();
    assert_eq!(rest["entry"].as_array().unwrap().len(), 1, "{rest}");
    // Newest first across both pages: the search, then the two reads.
    let request_of = |e: &Value| -> String {
        e["resource"]["entity"]
            .as_array()
            .unwrap()
            .iter()
            .find_map(|x| x["what"]["identifier"]["value"].as_str())
            .unwrap()
            .to_string()
    };
    let order: Vec<String> = entries
        .iter()
        .chain(rest["entry"].as_array().unwrap())
        .map(request_of)
        .collect();
    assert_eq!(order[0], "trail-2", "{order:?}");
    // Tokens with and without a system, :not, and a date bound.
    let count = |q: &str| total(&s.get(&format!("/AuditEvent?{q}&_total=accurate"), &h));
    let reads = count(&format!("entity:identifier={ids}|trail-0&subtype=read"));
    assert_eq!(reads, 1);
    assert_eq!(
        count(&format!(
            "entity:identifier={ids}|trail-0&subtype=http://hl7.org/fhir/restful-interaction|read"
        )),
        1
    );
    assert_eq!(
        count(&format!("entity:identifier={ids}|trail-0&subtype:not=read")),
        0
    );
    assert_eq!(
        count(&format!("entity:identifier={ids}|trail-0&action=E")),
        0
    );
    assert_eq!(
        count(&format!(
            "entity:identifier={ids}|trail-0&date=ge2000-01-01"
        )),
        1
    );
    assert_eq!(
        count(&format!(
            "entity:identifier={ids}|trail-0&date=lt2000-01-01"
        )),
        0
    );
    // A system alone: every event names its request (the searches here add their own).
    let with_request = count(&format!("entity:identifier={ids}|"));
    let all = count("_count=0");
    assert!(
        with_request >= 3 && with_request <= all,
        "{with_request} of {all}"
    );
    // Read, vread and history of one event: its only version.
    let event = &entries[1]["resource"];
    let id = event["id"].as_str().unwrap();
    let read = s.get(&format!("/AuditEvent/{id}"), &h);
    assert_eq!(read.status, 200);
    assert_eq!(read.json(), *event);
    assert_eq!(
        s.get(&format!("/AuditEvent/{id}/_history/1"), &h).status,
        200
    );
    assert_eq!(
        s.get(&format!("/AuditEvent/{id}/_history/2"), &h).status,
        404
    );
    let history = s.get(&format!("/AuditEvent/{id}/_history"), &h).json();
    assert_eq!(history["total"], 1, "{history}");
    assert_eq!(s.get("/AuditEvent/no-such-event", &h).status, 404);
    // A GP may not read the trail at all.
    assert_eq!(
        s.get(&format!("/AuditEvent/{id}"), &[("Authorization", &gp)])
            .status,
        403
    );
    // What the trail does not offer is said: refused under handling=strict, reported otherwise.
    for q in [
        "_include=AuditEvent:patient",
        "patient.name=smith",
        "patient:missing=true",
        "_sort=action",
    ] {
        let strict = s.get(
            &format!("/AuditEvent?{q}"),
            &[
                ("Authorization", po.as_str()),
                ("Prefer", "handling=strict"),
            ],
        );
        assert_eq!(
            strict.status,
            400,
            "{q}: {}",
            String::from_utf8_lossy(&strict.body)
        );
        let lenient = s.get(&format!("/AuditEvent?{q}&_count=1"), &h);
        assert_eq!(lenient.status, 200, "{q}");
        assert!(
            lenient.json()["entry"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["search"]["mode"] == "outcome"),
            "{q}: {}",
            lenient.json()
        );
    }
    let has = s.get(
        "/Patient?_has:AuditEvent:patient:action=R",
        &[
            ("Authorization", gp.as_str()),
            ("Prefer", "handling=strict"),
        ],
    );
    assert_eq!(has.status, 400);
}

/// A minimal OpenID Connect provider on a thread: the discovery document and a JWKS.
fn identity_provider(jwks: Value) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let iss = issuer.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let n = stream.read(&mut buf).unwrap_or(0);
            let request = String::from_utf8_lossy(&buf[..n]).to_string();
            let path = request.split(' ').nth(1).unwrap_or("");
            let body = match path {
                "/.well-known/openid-configuration" => json!({
                    "issuer": iss,
                    "authorization_endpoint": format!("{iss}/authorize"),
                    "token_endpoint": format!("{iss}/token"),
                    "jwks_uri": format!("{iss}/jwks"),
                    "response_types_supported": ["code"],
                    "subject_types_supported": ["public"],
                    "id_token_signing_alg_values_supported": ["ES256"]
                }),
                "/jwks" => jwks.clone(),
                _ => json!({}),
            }
            .to_string();
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    issuer
}

#[test]
fn tokens_of_a_trusted_openid_connect_issuer_are_accepted() {
    let key = authz::token::SigningKey::generate();
    let issuer = identity_provider(json!({"keys": [key.public_jwk()]}));
    let s = Server::start_with(&[("INVICTA_AUTH", "on"), ("INVICTA_OIDC_ISSUERS", &issuer)]);
    load(&s);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // An NHS CIS2-shaped token: the GP role comes from the selected RBAC entry.
    let claims = json!({
        "iss": issuer, "aud": s.base, "sub": "555021935107", "exp": now + 300, "jti": "cis2-1",
        "scope": "openid nationalrbacaccess user/*.rs",
        "nhsid_nrbac_roles": [
            {"person_roleid": "r1", "org_code": "RX1", "role_code": "S8000:G8000:R8000"},
            {"person_roleid": "r2", "org_code": PRACTICE, "role_code": "S8000:G8000:R0260"}
        ],
        "selected_roleid": "r2"
    });
    let token = key.sign(&claims).unwrap();
    let r = s.get("/Observation/p1-obs-r", &[("Authorization", &auth(&token))]);
    assert_eq!(
        r.status,
        200,
        "a GP sees R: {}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(
        s.get("/Patient/p2", &[("Authorization", &auth(&token))])
            .status,
        403
    );
    // A key the issuer does not publish, or an issuer not configured, is refused.
    let stranger = authz::token::SigningKey::generate().sign(&claims).unwrap();
    assert_eq!(
        s.get("/Patient/p1", &[("Authorization", &auth(&stranger))])
            .status,
        401
    );
    let mut other = claims.clone();
    other["iss"] = json!("http://127.0.0.1:1");
    assert_eq!(
        s.get(
            "/Patient/p1",
            &[("Authorization", &auth(&key.sign(&other).unwrap()))]
        )
        .status,
        401
    );
}

/// The `next` link of a searchset as a path under the base, if any.
fn next_path(r: &Resp) -> Option<String> {
    r.json()["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["relation"] == "next")
        .map(|l| {
            let url = l["url"].as_str().unwrap();
            url[url.find("/fhir/").unwrap() + 5..].to_string()
        })
}

/// The access routes a withheld answer names (`issue.details`).
fn routes(r: &Resp) -> Vec<String> {
    r.json()["issue"][0]["details"]["coding"]
        .as_array()
        .map(|c| {
            c.iter()
                .filter(|c| {
                    c["system"] == "https://invicta.example.org/fhir/CodeSystem/access-route"
                })
                .map(|c| c["code"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn suppressed(r: &Resp) -> bool {
    r.json()["entry"].as_array().is_some_and(|e| {
        e.iter()
            .any(|x| x["resource"]["issue"].to_string().contains("suppressed"))
    })
}

/// A first page that is not full answers page, total and "withheld" in one statement; a full
/// one counts apart. Both must agree, whichever rows (visible or withheld) come first.
#[test]
fn withheld_rows_change_neither_paging_nor_totals() {
    let s = Server::secure();
    let items = load(&s);
    let gp = auth(&s.token("gp", "user/*.rs", Some(PRACTICE), None));
    let role = roles().into_iter().find(|r| r.id == "gp").unwrap();
    for t in ["Observation", "Flag", "Patient"] {
        let mut want: Vec<String> = items
            .iter()
            .filter(|i| i.res_type == t && sees(&role, i))
            .map(|i| format!("{t}/{}", i.id))
            .collect();
        want.sort();
        let hidden = items.iter().any(|i| i.res_type == t && !sees(&role, i));
        assert!(hidden && !want.is_empty(), "{t}: the data set mixes both");
        // One page holding everything.
        let all = s.get(
            &format!("/{t}?_count=100&_total=accurate"),
            &[("Authorization", &gp)],
        );
        let mut got = entries(&all, "match");
        got.sort();
        assert_eq!(got, want, "{t} in one page");
        assert_eq!(total(&all) as usize, want.len(), "{t} in one page");
        assert!(suppressed(&all), "{t}: one page says what was withheld");
        // Pages of one, in both orders (so withheld rows come first in one of them).
        for sort in ["_id", "-_id"] {
            for total_mode in ["accurate", "none"] {
                let ctx = format!("{t} _sort={sort} _total={total_mode}");
                let mut seen = Vec::new();
                let mut next = Some(format!("/{t}?_count=1&_sort={sort}&_total={total_mode}"));
                let mut first = true;
                while let Some(path) = next.take() {
                    let page = s.get(&path, &[("Authorization", &gp)]);
                    assert_eq!(page.status, 200, "{ctx}: {path}");
                    if total_mode == "accurate" {
                        assert_eq!(total(&page) as usize, want.len(), "{ctx}: {path}");
                    }
                    if first {
                        assert!(suppressed(&page), "{ctx}: the first page says so");
                        first = false;
                    }
                    let ids = entries(&page, "match");
                    assert!(ids.len() <= 1, "{ctx}");
                    seen.extend(ids);
                    next = next_path(&page);
                }
                seen.sort();
                assert_eq!(seen, want, "{ctx}: pages walk exactly the visible rows");
            }
        }
        // _summary=count reads the count, never the rows.
        let n = s.get(&format!("/{t}?_summary=count"), &[("Authorization", &gp)]);
        assert_eq!(total(&n) as usize, want.len(), "{t} _summary=count");
    }
    // A compartment's full first page counts in its own statement: the same total and
    // "withheld" as the page that holds everything, and as the rows the pages walk. A hospital
    // clinician of the practice is related to p1 but may not see its `R` result without
    // breaking glass, so that compartment mixes visible and withheld rows.
    let gp = auth(&s.token("hospital-clinician", "user/*.rs", Some(PRACTICE), None));
    let role = roles()
        .into_iter()
        .find(|r| r.id == "hospital-clinician")
        .unwrap();
    for path in [
        "/Patient/p1/Observation?_total=accurate",
        "/Patient/p1/Flag?_total=accurate",
        "/Patient/p1/$everything?_total=accurate",
    ] {
        let all = s.get(&format!("{path}&_count=100"), &[("Authorization", &gp)]);
        let mut want = entries(&all, "match");
        want.sort();
        assert!(want.len() > 1, "{path}: more than one page of one");
        if !path.contains("$everything") {
            let t = path.split('/').nth(3).unwrap().split('?').next().unwrap();
            let mut expected: Vec<String> = items
                .iter()
                .filter(|i| i.res_type == t && i.patient == "p1" && sees(&role, i))
                .map(|i| format!("{t}/{}", i.id))
                .collect();
            expected.sort();
            assert_eq!(want, expected, "{path}: the visible rows");
        }
        if path.contains("Observation") {
            assert!(suppressed(&all), "{path}: the R result is withheld");
        }
        let mut seen = Vec::new();
        let mut next = Some(format!("{path}&_count=1"));
        let mut first = true;
        while let Some(p) = next.take() {
            let page = s.get(&p, &[("Authorization", &gp)]);
            assert_eq!(total(&page) as usize, want.len(), "{p}");
            if first {
                assert_eq!(
                    suppressed(&page),
                    suppressed(&all),
                    "{p}: withheld as in one page"
                );
                first = false;
            }
            seen.extend(entries(&page, "match"));
            next = next_path(&page);
        }
        seen.sort();
        assert_eq!(seen, want, "{path}: pages of one walk the visible rows");
    }
}

/// `(id, version)` of every entry of a history Bundle that carries a resource.
fn versions_in(r: &Resp) -> Vec<(String, String)> {
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()["entry"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|e| {
            let res = &e["resource"];
            Some((
                res["id"].as_str()?.to_string(),
                res["meta"]["versionId"].as_str()?.to_string(),
            ))
        })
        .collect()
}

/// The version dimension of the permission matrix: every version is judged by its own content
/// (scope restriction, labels, compartment) and the resource as it is now must be visible too,
/// in vread, instance, type and system history and a Bundle's GET of `_history/N`. Each pair
/// below has a hidden past with a visible present, and the reverse.
#[test]
fn permission_matrix_over_versions() {
    let s = Server::secure();
    load(&s);
    let feed = auth(&s.token("feed", "system/*.crus", Some(FEED_ORG), None));
    let item = |id: &str, patient: &'static str, label: Option<&'static str>, vitals: bool| {
        let mut v = body("Observation", id, patient);
        if vitals {
            v["category"][0]["coding"][0]["code"] = json!("vital-signs");
        }
        if let Some(l) = label {
            v["meta"] = json!({"security": [{"system": CONF, "code": l}]});
        }
        let item = Item {
            res_type: "Observation",
            id: id.to_string(),
            patient,
            label,
            safeguarding: false,
            vital_signs: vitals,
        };
        (v, item)
    };
    // id -> its versions, oldest first
    let histories: Vec<(&str, Vec<(Value, Item)>)> = vec![
        (
            "ver-lab-now",
            vec![
                item("ver-lab-now", "p1", None, true),
                item("ver-lab-now", "p1", None, false),
            ],
        ),
        (
            "ver-lab-before",
            vec![
                item("ver-lab-before", "p1", None, false),
                item("ver-lab-before", "p1", None, true),
            ],
        ),
        (
            "ver-v-before",
            vec![
                item("ver-v-before", "p1", Some("V"), false),
                item("ver-v-before", "p1", None, false),
            ],
        ),
        (
            "ver-v-now",
            vec![
                item("ver-v-now", "p1", None, false),
                item("ver-v-now", "p1", Some("V"), false),
            ],
        ),
        (
            "ver-r-before",
            vec![
                item("ver-r-before", "p1", Some("R"), false),
                item("ver-r-before", "p1", None, false),
            ],
        ),
        (
            "ver-moved-in",
            vec![
                item("ver-moved-in", "p2", None, false),
                item("ver-moved-in", "p1", None, false),
            ],
        ),
        (
            "ver-moved-out",
            vec![
                item("ver-moved-out", "p1", None, false),
                item("ver-moved-out", "p2", None, false),
            ],
        ),
    ];
    for (id, versions) in &histories {
        for (v, _) in versions {
            let r = s.send_json(
                "PUT",
                &format!("/Observation/{id}"),
                v,
                &[("Authorization", &feed)],
            );
            assert!(
                matches!(r.status, 200 | 201),
                "{id}: {}",
                String::from_utf8_lossy(&r.body)
            );
        }
    }
    for role in roles()
        .into_iter()
        .filter(|r| r.read.contains(&"Observation"))
    {
        let bearer = auth(&token_for(&s, role.id));
        let h = [("Authorization", bearer.as_str())];
        let mut want_all: Vec<(String, String)> = Vec::new();
        for (id, versions) in &histories {
            let now = &versions.last().unwrap().1;
            let want: Vec<String> = versions
                .iter()
                .enumerate()
                .filter(|(_, (_, it))| sees(&role, it) && sees(&role, now))
                .map(|(n, _)| (n + 1).to_string())
                .collect();
            let ctx = format!("{} {id}", role.id);
            for n in 1..=versions.len() {
                let path = format!("/Observation/{id}/_history/{n}");
                let r = s.get(&path, &h);
                if want.contains(&n.to_string()) {
                    assert_eq!(r.status, 200, "{ctx} vread {n}");
                } else {
                    assert!(
                        matches!(r.status, 403 | 404),
                        "{ctx} vread {n}: {}",
                        r.status
                    );
                    let o = r.json();
                    if r.status == 403 {
                        assert!(o.to_string().contains("withheld"), "{ctx} vread {n}: {o}");
                    }
                }
                // The same read as a Bundle entry.
                let batch = json!({"resourceType": "Bundle", "type": "batch", "entry": [
                    {"request": {"method": "GET", "url": format!("Observation/{id}/_history/{n}")}}]});
                let b = s.send_json("POST", "", &batch, &h);
                assert_eq!(b.status, 200, "{ctx} batch");
                let status = b.json()["entry"][0]["response"]["status"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                assert_eq!(
                    status.starts_with("200"),
                    want.contains(&n.to_string()),
                    "{ctx} Bundle GET _history/{n}: {status}"
                );
            }
            let inst = s.get(&format!("/Observation/{id}/_history"), &h);
            if want.is_empty() {
                assert_eq!(inst.status, 404, "{ctx} instance history");
            } else {
                let mut got: Vec<String> = versions_in(&inst).into_iter().map(|(_, v)| v).collect();
                got.sort();
                assert_eq!(got, want, "{ctx} instance history");
                assert_eq!(total(&inst) as usize, want.len(), "{ctx} instance total");
            }
            want_all.extend(want.into_iter().map(|v| (id.to_string(), v)));
        }
        want_all.sort();
        let ours = |r: &Resp| {
            let mut v: Vec<(String, String)> = versions_in(r)
                .into_iter()
                .filter(|(id, _)| id.starts_with("ver-"))
                .collect();
            v.sort();
            v
        };
        let ty = s.get("/Observation/_history?_count=100", &h);
        assert_eq!(ours(&ty), want_all, "{} type history", role.id);
        let sys = s.get("/_history?_count=100", &h);
        assert_eq!(ours(&sys), want_all, "{} system history", role.id);
        // Pages of two walk the same versions, and the total counts only them.
        let mut seen = Vec::new();
        let mut next = Some("/Observation/_history?_count=2".to_string());
        let mut totals = Vec::new();
        while let Some(path) = next.take() {
            let page = s.get(&path, &h);
            totals.push(total(&page));
            seen.extend(
                versions_in(&page)
                    .into_iter()
                    .filter(|(id, _)| id.starts_with("ver-")),
            );
            next = next_path(&page);
        }
        seen.sort();
        assert_eq!(seen, want_all, "{} paged type history", role.id);
        assert!(
            totals.windows(2).all(|w| w[0] == w[1]),
            "{} totals {totals:?}",
            role.id
        );
    }
}

/// The answer to a write, with the resource's reference written as `X` (so that answers about
/// two different ids compare).
fn answer(r: &Resp, reference: &str) -> (u16, String) {
    let text = String::from_utf8_lossy(&r.body).replace(reference, "X");
    let issue = if r.body.is_empty() {
        String::new()
    } else {
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        v["issue"].to_string()
    };
    (r.status, issue)
}

/// Writes cannot tell a resource the client may not see from one that does not exist: every
/// write aimed at a hidden resource answers as the same write aimed at an absent one, and the
/// hidden resource is left as it was.
#[test]
fn writes_cannot_tell_hidden_from_absent() {
    let s = Server::secure();
    load(&s);
    let feed = auth(&s.token("feed", "system/*.crus", Some(FEED_ORG), None));
    let gp = auth(&s.token("gp", "user/*.cruds", Some(PRACTICE), None));
    let h = [("Authorization", gp.as_str())];
    // p1-obs-v: very restricted, written by another organisation: the GP reads it as absent.
    assert_eq!(s.get("/Observation/p1-obs-v", &h).status, 404);
    let before = s.get("/Observation/p1-obs-v", &[("Authorization", &feed)]);
    assert_eq!(before.status, 200);
    let hidden = "Observation/p1-obs-v";
    let absent = "Observation/p1-obs-absent";
    let same = |what: &str, a: &Resp, b: &Resp, ra: &str, rb: &str| {
        let (x, y) = (answer(a, ra), answer(b, rb));
        assert_eq!(x, y, "{what}: hidden and absent answer alike");
        x.0
    };
    let patch_ct = ("Content-Type", "application/json-patch+json");
    let patch = br#"[{"op": "replace", "path": "/status", "value": "amended"}]"#;

    let d = |id: &str| s.send("DELETE", &format!("/{id}"), &h, b"");
    assert_eq!(same("DELETE", &d(hidden), &d(absent), hidden, absent), 404);

    let cd = |id: &str| s.send("DELETE", &format!("/Observation?_id={id}"), &h, b"");
    let code = same(
        "conditional DELETE",
        &cd("p1-obs-v"),
        &cd("p1-obs-absent"),
        "p1-obs-v",
        "p1-obs-absent",
    );
    assert!(matches!(code, 200 | 204 | 404), "{code}");

    let p = |id: &str| s.send("PATCH", &format!("/{id}"), &[h[0], patch_ct], patch);
    assert_eq!(same("PATCH", &p(hidden), &p(absent), hidden, absent), 404);
    let cp = |id: &str| {
        s.send(
            "PATCH",
            &format!("/Observation?_id={id}"),
            &[h[0], patch_ct],
            patch,
        )
    };
    assert_eq!(
        same(
            "conditional PATCH",
            &cp("p1-obs-v"),
            &cp("p1-obs-absent"),
            "p1-obs-v",
            "p1-obs-absent"
        ),
        404
    );

    // If-None-Exist: a hidden match is no match; the new resource is the GP's own, a new id.
    let mut fresh = body("Observation", "x", "p1");
    fresh.as_object_mut().unwrap().remove("id");
    let c = |id: &str| {
        s.send_json(
            "POST",
            "/Observation",
            &fresh,
            &[h[0], ("If-None-Exist", &format!("_id={id}"))],
        )
    };
    let (a, b) = (c("p1-obs-v"), c("p1-obs-absent"));
    assert_eq!((a.status, b.status), (201, 201), "If-None-Exist");
    assert_ne!(a.json()["id"], json!("p1-obs-v"));

    // Conditional update matching only the hidden resource creates, as with no match.
    let cu = |id: &str| s.send_json("PUT", &format!("/Observation?_id={id}"), &fresh, &h);
    let (a, b) = (cu("p1-obs-v"), cu("p1-obs-absent"));
    assert_eq!((a.status, b.status), (201, 201), "conditional update");
    assert_ne!(a.json()["id"], json!("p1-obs-v"));

    // PUT to the hidden id cannot overwrite it: it answers as a PUT that would create a
    // resource outside the client's rules does (here, one about p2, whom the GP is not related
    // to), and with If-Match as for an id that does not exist.
    let mut mine = body("Observation", "p1-obs-v", "p1");
    let put_hidden = s.send_json("PUT", "/Observation/p1-obs-v", &mine, &h);
    let mut outside = body("Observation", "p2-obs-new", "p2");
    let put_outside = s.send_json("PUT", "/Observation/p2-obs-new", &outside, &h);
    assert_eq!(
        same(
            "PUT",
            &put_hidden,
            &put_outside,
            hidden,
            "Observation/p2-obs-new"
        ),
        403
    );
    mine["status"] = json!("amended");
    outside["id"] = json!("p1-obs-absent");
    let im = |id: &str, v: &Value| {
        s.send_json(
            "PUT",
            &format!("/{id}"),
            v,
            &[h[0], ("If-Match", "W/\"1\"")],
        )
    };
    let code = same(
        "PUT If-Match",
        &im(hidden, &mine),
        &im(absent, &body("Observation", "p1-obs-absent", "p1")),
        hidden,
        absent,
    );
    assert_eq!(code, 412);

    // The same in a transaction Bundle.
    let tx = |id: &str| {
        json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"request": {"method": "DELETE", "url": format!("Observation/{id}")}}]})
    };
    let (a, b) = (
        s.send_json("POST", "", &tx("p1-obs-v"), &h),
        s.send_json("POST", "", &tx("p1-obs-absent"), &h),
    );
    assert_eq!(a.status, b.status, "transaction DELETE");

    // A Patient with the NHS number of a Patient the GP may not see is refused (one person,
    // one record) without naming the one that exists.
    let nhs = crate::harness::fresh_nhs_number();
    let mut hidden_patient = crate::harness::patient_with_nhs("Hidden", &nhs);
    hidden_patient["id"] = json!("p-hidden-nhs");
    hidden_patient["meta"] = json!({"security": [{"system": CONF, "code": "V"}]});
    let r = s.send_json(
        "PUT",
        "/Patient/p-hidden-nhs",
        &hidden_patient,
        &[("Authorization", &feed)],
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(s.get("/Patient/p-hidden-nhs", &h).status, 404);
    let mut twin = crate::harness::patient_with_nhs("Twin", &nhs);
    twin["generalPractitioner"] = json!([{"identifier": {"system": ODS, "value": PRACTICE}}]);
    let o = s.send_json("POST", "/Patient", &twin, &h).outcome(409);
    assert!(!o.to_string().contains("p-hidden-nhs"), "{o}");
    let o = s
        .send_json("POST", "/Patient", &twin, &[("Authorization", &feed)])
        .outcome(409);
    assert!(
        o.to_string().contains("Patient/p-hidden-nhs"),
        "its writer is told which: {o}"
    );

    // Nothing happened to the hidden resource.
    let after = s.get("/Observation/p1-obs-v", &[("Authorization", &feed)]);
    assert_eq!(after.status, 200);
    assert_eq!(
        after.json(),
        before.json(),
        "the hidden resource is untouched"
    );
}

/// The links of a searchset as `(relation, url without its cursor)`.
fn links_without_cursor(bundle: &Value) -> Vec<(String, String)> {
    bundle["link"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let url = l["url"].as_str().unwrap();
            let url = url.split("&_cursor=").next().unwrap().to_string();
            (l["relation"].as_str().unwrap().to_string(), url)
        })
        .collect()
}

/// A search as a GET entry of a batch or transaction is the same interaction as over REST: the
/// same matches, total, paging links (whose cursors work over REST) and withheld notice.
#[test]
fn bundle_search_entries_answer_as_rest_searches() {
    let s = Server::secure();
    load(&s);
    let gp = auth(&s.token("gp", "user/*.rs", Some(PRACTICE), None));
    for kind in ["batch", "transaction"] {
        for t in ["Observation", "Flag"] {
            let query = format!("{t}?_count=1&_sort=_id&_total=accurate");
            let rest = s.get(&format!("/{query}"), &[("Authorization", &gp)]);
            assert_eq!(rest.status, 200);
            let bundle = json!({"resourceType": "Bundle", "type": kind, "entry": [
                {"request": {"method": "GET", "url": query}}
            ]});
            let r = s.send_json("POST", "", &bundle, &[("Authorization", &gp)]);
            assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
            let entry = &r.json()["entry"][0];
            assert_eq!(entry["response"]["status"], "200 OK", "{kind} {t}");
            let set = &entry["resource"];
            let ctx = format!("{kind} {t}");
            assert_eq!(set["type"], "searchset", "{ctx}");
            assert_eq!(set["total"], rest.json()["total"], "{ctx}: total");
            assert_eq!(
                links_without_cursor(set),
                links_without_cursor(&rest.json()),
                "{ctx}: the same paging links"
            );
            let as_resp = Resp {
                status: 200,
                headers: Vec::new(),
                body: serde_json::to_vec(set).unwrap(),
            };
            assert!(suppressed(&as_resp), "{ctx}: the withheld notice");
            assert!(suppressed(&rest), "{ctx}: REST says so too");
            assert_eq!(entries(&as_resp, "match"), entries(&rest, "match"), "{ctx}");
            // The entry's next page is a page of the same search over REST.
            let next = next_path(&as_resp).expect("a next link");
            let page2 = s.get(&next, &[("Authorization", &gp)]);
            assert_eq!(page2.status, 200, "{ctx}: {next}");
            let rest2 = s.get(&next_path(&rest).unwrap(), &[("Authorization", &gp)]);
            assert_eq!(entries(&page2, "match"), entries(&rest2, "match"), "{ctx}");
        }
    }
}

/// A system search naming one type is decided about that type, as a type search is: a role
/// that may not search it is refused rather than shown an empty page.
#[test]
fn system_search_of_one_type_is_decided_about_that_type() {
    let s = Server::secure();
    let receptionist = auth(&token_for(&s, "receptionist"));
    let h = [("Authorization", receptionist.as_str())];
    assert_eq!(s.get("/Condition", &h).status, 403);
    assert_eq!(s.get("?_type=Condition", &h).status, 403);
    assert_eq!(s.get("?_type=Patient", &h).status, 200);
}
