//! The care-record viewer (`apps/viewer`, served by Invicta at `/apps/viewer/`) in a real
//! browser: Debian's Chromium driven by playwright-core (`tests/node/viewer-browser.mjs`), people
//! signing in at a real OpenID Connect provider (oidc-provider shaped as NHS CIS2 and NHS login),
//! over the sample care record of `examples/`. Each observed screen is checked with axe-core at
//! desktop and phone width, and its screenshots are written to `target/viewer-screenshots/`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use crate::harness::{free_port, NodeProcess, Server};

/// Margaret Thornton: registered at Stour Valley Medical Practice (G82977), with a DNACPR.
const MARGARET: &str = "margaret-thornton";
const MARGARET_NHS: &str = "9990417385";
/// Daniel Mensah: registered at Riverside Health Centre (G82984), with a safeguarding alert.
const DANIEL: &str = "daniel-mensah";

struct Viewer {
    s: Server,
    _idp: NodeProcess,
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A server with the sample record and the viewer registered, and the identity provider.
fn setup() -> Viewer {
    let dist = repo().join("apps/viewer/dist");
    assert!(
        dist.join("index.html").exists(),
        "apps/viewer/dist is missing: run the tests through `make test`, which builds the viewer"
    );
    let idp_port = free_port();
    let issuer = format!("http://127.0.0.1:{idp_port}");
    let dir = std::env::temp_dir().join(format!(
        "invicta-e2e-viewer-{}-{idp_port}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let providers = dir.join("providers.json");
    std::fs::write(&providers, json!([
        {"id": "cis2", "name": "NHS Care Identity Service 2", "issuer": issuer, "client_id": "invicta",
         "client_secret": "invicta-secret-for-tests", "scope": "openid profile nationalrbacaccess", "kind": "cis2"},
        {"id": "nhs-login", "name": "NHS login", "issuer": issuer, "client_id": "invicta",
         "client_secret": "invicta-secret-for-tests", "scope": "openid profile nhs", "kind": "nhs-login"}
    ]).to_string()).unwrap();
    let s = Server::start_with(&[
        ("INVICTA_AUTH", "on"),
        ("INVICTA_IDENTITY_PROVIDERS", providers.to_str().unwrap()),
        ("INVICTA_VIEWER_DIR", dist.to_str().unwrap()),
    ]);
    let role = |id: &str, org: &str, code: &str| json!({"person_roleid": id, "org_code": org, "role_code": format!("S0:G0:{code}")});
    let accounts = json!({
        "gp-stour": {"name": "Dr Helen Marsh", "nhsid_nrbac_roles": [role("r1", "G82977", "R0260")], "selected_roleid": "r1"},
        "reception-stour": {"name": "Amy Clarke", "nhsid_nrbac_roles": [role("r1", "G82977", "R8009")], "selected_roleid": "r1"},
        "gp-riverside": {"name": "Dr Oluwaseun Adeyemi", "nhsid_nrbac_roles": [role("r1", "G82984", "R0260")], "selected_roleid": "r1"},
        "clinician-wmh": {"name": "Dr Anjali Rao", "nhsid_nrbac_roles": [role("r1", "R0X", "R8000")], "selected_roleid": "r1"},
        "daniel-p9": {"name": "Daniel Mensah", "nhs_number": "9990726159", "identity_proofing_level": "P9"},
        "daniel-p5": {"name": "Daniel Mensah", "nhs_number": "9990726159", "identity_proofing_level": "P5"}
    });
    let clients = json!([{
        "client_id": "invicta", "client_secret": "invicta-secret-for-tests",
        "redirect_uris": [format!("{}/auth/idp/cis2/callback", s.root), format!("{}/auth/idp/nhs-login/callback", s.root)],
        "grant_types": ["authorization_code"], "response_types": ["code"],
        "token_endpoint_auth_method": "client_secret_basic"
    }]);
    let idp = NodeProcess::start(
        "provider.mjs",
        "oidc-provider",
        &[&idp_port.to_string()],
        &[
            ("IDP_CLIENTS", clients.to_string()),
            ("IDP_ACCOUNTS", accounts.to_string()),
        ],
    );
    let app = format!("{}/apps/viewer/", s.root);
    let (ok, _, err) = s.cli(&[
        "client",
        "add",
        "--id",
        "viewer",
        "--name",
        "Care record viewer",
        "--kind",
        "public",
        "--redirect-uri",
        &app,
        "--launch-url",
        &app,
        "--scope",
        "openid fhirUser launch launch/patient online_access user/*.rs patient/*.rs patient/AuditEvent.rs",
    ]);
    assert!(ok, "{err}");
    let examples = repo().join("examples");
    let (ok, out, err) = s.cli(&[
        "load",
        "--org",
        "R0X",
        "--client",
        "sample-loader",
        examples.to_str().unwrap(),
    ]);
    assert!(ok, "{out}{err}");
    Viewer { s, _idp: idp }
}

impl Viewer {
    /// The URL a GP system opens the viewer with, for `user` in `role` at `org`.
    fn ehr_launch(&self, user: &str, role: &str, org: &str) -> String {
        let (ok, out, err) = self.s.cli(&[
            "client",
            "add",
            "--id",
            "gp-system",
            "--name",
            "GP system",
            "--kind",
            "confidential-symmetric",
            "--scope",
            "launch",
        ]);
        assert!(ok, "{err}");
        let secret = out
            .lines()
            .find_map(|l| l.strip_prefix("client secret (shown once, store it now): "))
            .unwrap();
        let basic = format!(
            "Basic {}",
            base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                format!("gp-system:{secret}")
            )
        );
        let made = self.s.send(
            "POST",
            &format!("{}/auth/launch", self.s.root),
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Authorization", &basic),
            ],
            format!("patient={MARGARET}&user={user}&role={role}&org={org}&app=viewer").as_bytes(),
        );
        assert_eq!(made.status, 200, "{}", String::from_utf8_lossy(&made.body));
        made.json()["launch_url"].as_str().unwrap().to_string()
    }

    /// Runs the browser through `steps`; the report of what it saw.
    fn browse(&self, steps: Value) -> Value {
        let shots = repo().join("target/viewer-screenshots");
        std::fs::create_dir_all(&shots).unwrap();
        let node = repo().join("tests/node");
        assert!(
            node.join("node_modules/playwright-core").exists(),
            "tests/node/node_modules is missing: run the tests through `make test`, which installs it"
        );
        let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        assert!(
            Path::new(&chromium).exists(),
            "Chromium is missing at {chromium}: `make test` installs Debian's chromium package"
        );
        let plan = json!({"steps": steps, "screenshots": shots});
        let out = Command::new("node")
            .arg(node.join("viewer-browser.mjs"))
            .env("VIEWER_PLAN", plan.to_string())
            .env("CHROMIUM", &chromium)
            .output()
            .expect("node runs the browser tests");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let report: Value = stdout
            .lines()
            .last()
            .and_then(|l| serde_json::from_str(l).ok())
            .unwrap_or_else(|| {
                panic!(
                    "no report from the browser: {stdout}{}",
                    String::from_utf8_lossy(&out.stderr)
                )
            });
        assert!(report["error"].is_null(), "the browser failed: {report:#}");
        assert_eq!(report["pageErrors"], json!([]), "{report:#}");
        assert_eq!(report["cspViolations"], json!([]), "{report:#}");
        report
    }
}

/// One screen of a report, checked for accessibility: no serious or critical axe-core finding
/// at desktop or phone width, and nothing wider than a 320 px phone.
fn screen<'a>(report: &'a Value, name: &str) -> &'a Value {
    let seen = &report["observations"][name];
    assert!(seen.is_object(), "no screen '{name}' in {report:#}");
    for width in ["desktop", "phone"] {
        if let Some(found) = seen["axe"][width].as_array() {
            assert!(found.is_empty(), "{name} at {width}: {found:#?}");
        }
    }
    if seen["axe"]["desktop"].is_array() {
        assert!(
            seen["phoneOverflow"].as_i64().unwrap() <= 0,
            "{name} is wider than a phone: {}",
            seen["phoneWide"]
        );
    }
    eprintln!(
        "{name}: {} FHIR requests by the app ({} seen on the network): {}",
        seen["appRequests"],
        seen["networkFhirRequests"].as_array().map_or(0, Vec::len),
        seen["networkFhirRequests"]
    );
    seen
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

fn sections(seen: &Value) -> Vec<&str> {
    seen["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect()
}

#[test]
fn a_gp_of_the_practice_sees_alerts_allergies_medications_and_the_timeline_after_an_ehr_launch() {
    let v = setup();
    let launch = v.ehr_launch("gp-stour", "gp", "G82977");
    let report = v.browse(json!([
        {"goto": launch},
        {"signIn": {"provider": "cis2", "login": "gp-stour"}},
        {"observe": "gp-record"},
        {"timelineOlder": true},
        {"observe": "gp-timeline-older", "axe": false},
        {"timelineKind": "results"},
        {"observe": "gp-timeline-results", "axe": false},
        {"timelineKind": "", "timelineSource": "G82977"},
        {"observe": "gp-timeline-practice", "axe": false}
    ]));
    let seen = screen(&report, "gp-record");
    assert_eq!(
        sections(seen),
        [
            "banner",
            "alerts",
            "allergies",
            "medications",
            "care",
            "results",
            "timeline"
        ],
        "every section, in order"
    );
    assert!(
        text(&seen["body"]).contains("Signed in as Dr Helen Marsh"),
        "the ID token's name"
    );
    let banner = text(&seen["banner"]);
    for expected in [
        "Margaret Ann THORNTON",
        "999 041 7385",
        "11 Feb 1938",
        "Female",
        "Stour Valley Medical Practice",
        "TN24",
    ] {
        assert!(banner.contains(expected), "{expected} in {banner}");
    }
    let alerts = seen["alerts"].as_array().unwrap();
    assert_eq!(alerts[0]["kind"], "directive", "{alerts:#?}");
    assert!(
        alerts.iter().any(|a| text(&a["text"]).contains("DNACPR")
            && text(&a["text"]).contains("Raised by Dr Helen Marsh")),
        "{alerts:#?}"
    );
    assert!(text(&seen["allergies"]).contains("Allergy to penicillin"));
    let meds = text(&seen["medications"]);
    assert!(
        meds.contains("Morphine 10mg modified-release tablets")
            && meds.contains("Dr Helen Marsh, Stour Valley Medical Practice"),
        "{meds}"
    );
    let results = text(&seen["results"]);
    assert!(
        results.contains("eGFR") && results.contains("Low") && results.contains("≥ 90"),
        "{results}"
    );
    // Four eGFR results this year, drawn as one line.
    assert!(
        seen["charts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == "trend-egfr" && c["points"] == 4),
        "{:#}",
        seen["charts"]
    );
    let timeline = seen["timeline"].as_array().unwrap();
    assert_eq!(timeline.len(), 20, "a first page of 20");
    assert!(
        timeline.iter().all(|e| text(&e["text"]).contains("From ")),
        "every entry names its source: {timeline:#?}"
    );
    assert!(
        timeline.iter().any(|e| e["type"] == "Encounter")
            && timeline.iter().any(|e| e["type"] == "Observation"),
        "{timeline:#?}"
    );
    // A handful of requests for the first screen: a batch, the organisations' names, the
    // timeline's first page.
    assert!(seen["appRequests"].as_i64().unwrap() <= 4, "{seen:#}");
    let keys: Vec<&str> = seen["keyboard"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k["id"].as_str())
        .collect();
    for control in [
        "sign-out",
        "timeline-source",
        "timeline-kind",
        "timeline-older",
    ] {
        assert!(
            keys.contains(&control),
            "{control} reached by keyboard: {keys:?}"
        );
    }
    let only_results = screen(&report, "gp-timeline-results")["timeline"]
        .as_array()
        .unwrap();
    assert!(!only_results.is_empty());
    assert!(
        only_results
            .iter()
            .all(|e| e["type"] == "Observation" || e["type"] == "DiagnosticReport"),
        "{only_results:#?}"
    );
    let practice = screen(&report, "gp-timeline-practice")["timeline"]
        .as_array()
        .unwrap();
    assert!(!practice.is_empty());
    assert!(
        practice
            .iter()
            .all(|e| text(&e["text"]).contains("From Stour Valley Medical Practice (G82977)")),
        "{practice:#?}"
    );
    let older = screen(&report, "gp-timeline-older")["timeline"]
        .as_array()
        .unwrap();
    assert!(!older.is_empty(), "a second page");
    assert!(
        older.iter().all(|e| !timeline.contains(e)),
        "the second page follows the first"
    );
}

#[test]
fn a_receptionist_sees_only_the_banner() {
    let v = setup();
    let launch = v.ehr_launch("reception-stour", "receptionist", "G82977");
    let report = v.browse(json!([
        {"goto": launch},
        {"signIn": {"provider": "cis2", "login": "reception-stour"}},
        {"observe": "receptionist"}
    ]));
    let seen = screen(&report, "receptionist");
    assert_eq!(sections(seen), ["banner"]);
    assert!(text(&seen["banner"]).contains("999 041 7385"));
    assert!(seen["withheld"].is_null(), "{seen:#}");
}

#[test]
fn a_gp_of_another_practice_is_told_what_is_withheld_and_breaks_glass() {
    let v = setup();
    let report = v.browse(json!([
        {"goto": format!("{}/apps/viewer/", v.s.root)},
        {"observe": "start", "waitFor": "#sign-in-staff"},
        {"start": "staff"},
        {"signIn": {"provider": "cis2", "login": "gp-riverside"}},
        {"observe": "find-patient", "waitFor": "#find-form"},
        {"find": MARGARET_NHS},
        {"observe": "withheld", "waitFor": "#withheld"},
        {"breakGlass": "Collapsed at Riverside Health Centre; no history available"},
        {"observe": "break-glass"}
    ]));
    screen(&report, "start");
    screen(&report, "find-patient");
    let withheld = screen(&report, "withheld");
    assert!(
        withheld["banner"].is_null(),
        "nothing shown before the choice"
    );
    let notice = text(&withheld["withheld"]);
    assert!(
        notice.contains("You cannot see this record yet")
            && notice.contains("Claim a legitimate relationship")
            && notice.contains("Break glass")
            && notice.contains("audited"),
        "{notice}"
    );
    let after = screen(&report, "break-glass");
    assert_eq!(after["breakGlassInForce"], true);
    assert!(text(&after["banner"]).contains("999 041 7385"));
    assert!(sections(after).contains(&"alerts") && sections(after).contains(&"timeline"));
    assert!(text(&after["medications"]).contains("Morphine"));

    // The privacy officer finds the break-glass access in the audit trail, with its reason.
    let po = format!(
        "Bearer {}",
        v.s.token(
            "privacy-officer",
            "user/AuditEvent.rs",
            Some("G82977"),
            None
        )
    );
    let found = v.s.get(
        &format!("/AuditEvent?purpose=BTG&patient={MARGARET}&_count=100"),
        &[("Authorization", &po)],
    );
    assert_eq!(found.status, 200);
    let events = found.json()["entry"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        events.iter().any(|e| {
            let e = &e["resource"];
            e["agent"][0]["altId"] == "G82984"
                && e.to_string()
                    .contains("Collapsed at Riverside Health Centre")
        }),
        "{events:#?}"
    );
}

#[test]
fn restricted_results_are_withheld_with_a_notice_until_the_clinician_breaks_glass() {
    let v = setup();
    // A result the GP practice marked restricted (R): hospital clinicians see it only by
    // breaking glass.
    let feed = format!(
        "Bearer {}",
        v.s.token("feed", "system/*.crus", Some("G82977"), None)
    );
    let restricted = json!({"resourceType": "Observation", "id": "margaret-thornton-restricted",
        "meta": {"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}]},
        "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "2276-4"}], "text": "Serum ferritin"},
        "subject": {"reference": format!("Patient/{MARGARET}")},
        "effectiveDateTime": "2026-11-20T09:00:00+00:00",
        "valueQuantity": {"value": 12, "unit": "ug/L", "system": "http://unitsofmeasure.org", "code": "ug/L"}});
    let put = v.s.send_json(
        "PUT",
        "/Observation/margaret-thornton-restricted",
        &restricted,
        &[("Authorization", &feed)],
    );
    assert_eq!(put.status, 201, "{}", String::from_utf8_lossy(&put.body));
    let launch = v.ehr_launch("clinician-wmh", "hospital-clinician", "R0X");
    let report = v.browse(json!([
        {"goto": launch},
        {"signIn": {"provider": "cis2", "login": "clinician-wmh"}},
        {"observe": "restricted"},
        {"breakGlass": "Deteriorating on the ward; need the full picture"},
        {"observe": "restricted-lifted"}
    ]));
    let before = screen(&report, "restricted");
    let notice = text(&before["withheld"]);
    assert!(
        notice.contains("Some of this record is hidden") && notice.contains("Break glass"),
        "{notice}"
    );
    assert!(
        !notice.contains("Claim a legitimate relationship"),
        "the relationship stands (the EHR launch); a claim would lift nothing: {notice}"
    );
    assert!(!text(&before["results"]).contains("Serum ferritin"));
    assert!(
        text(&before["results"]).contains("eGFR"),
        "the rest is shown"
    );
    let after = screen(&report, "restricted-lifted");
    assert!(after["withheld"].is_null(), "{:#}", after["withheld"]);
    assert_eq!(after["breakGlassInForce"], true);
    assert!(text(&after["results"]).contains("Serum ferritin"));
}

#[test]
fn a_citizen_sees_their_own_record_and_who_looked_at_it_but_not_the_safeguarding_alert() {
    let v = setup();
    // Their GP looks at the record first.
    let gp = format!(
        "Bearer {}",
        v.s.token("gp", "user/*.rs", Some("G82984"), None)
    );
    assert_eq!(
        v.s.get(&format!("/Patient/{DANIEL}"), &[("Authorization", &gp)])
            .status,
        200
    );
    let report = v.browse(json!([
        {"goto": format!("{}/apps/viewer/", v.s.root)},
        {"start": "citizen"},
        {"signIn": {"provider": "nhs-login", "login": "daniel-p9"}},
        {"observe": "citizen"}
    ]));
    let seen = screen(&report, "citizen");
    assert!(text(&seen["banner"]).contains("Daniel"), "{seen:#}");
    let shown = sections(seen);
    for s in ["banner", "alerts", "medications", "timeline", "access-log"] {
        assert!(shown.contains(&s), "{s} in {shown:?}");
    }
    assert!(
        seen["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["kind"] != "safeguarding"),
        "{:#}",
        seen["alerts"]
    );
    // The alert's own words appear nowhere (Flag/daniel-mensah-safeguarding).
    let body = text(&seen["body"]);
    assert!(
        !body.contains("Adult safeguarding concern") && !body.contains("financial exploitation"),
        "{body}"
    );
    let log = seen["accessLog"].as_array().unwrap();
    assert!(
        log.iter()
            .any(|row| text(row).contains("G82984") && text(row).contains("GP")),
        "{log:#?}"
    );
}

#[test]
fn a_citizen_at_p5_is_refused() {
    let v = setup();
    let report = v.browse(json!([
        {"goto": format!("{}/apps/viewer/", v.s.root)},
        {"start": "citizen"},
        {"signIn": {"provider": "nhs-login", "login": "daniel-p5"}},
        {"observe": "p5", "waitFor": "body", "axe": false}
    ]));
    let seen = &report["observations"]["p5"];
    let body = text(&seen["body"]);
    assert!(body.contains("P9"), "{body}");
    assert!(seen["banner"].is_null(), "{seen:#}");
}

#[test]
fn the_viewer_is_served_with_a_strict_content_security_policy() {
    let s = Server::start_with(&[(
        "INVICTA_VIEWER_DIR",
        repo().join("apps/viewer/dist").to_str().unwrap(),
    )]);
    let page = s.send("GET", &format!("{}/apps/viewer/", s.root), &[], b"");
    assert_eq!(page.status, 200);
    let csp = page.header("content-security-policy").unwrap_or_default();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'self'"),
        "{csp}"
    );
    assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
    let config = s.send(
        "GET",
        &format!("{}/apps/viewer/config.json", s.root),
        &[],
        b"",
    );
    assert_eq!(config.json()["fhirBaseUrl"], s.base.as_str());
    assert_eq!(config.json()["clientId"], "viewer");
    // Only the build's own files: nothing outside it, no source maps, no folders.
    for path in ["..%2FCargo.toml", "%2e%2e", "viewer.js.map", ".gitignore"] {
        let r = s.send("GET", &format!("{}/apps/viewer/{path}", s.root), &[], b"");
        assert_eq!(r.status, 404, "{path}");
    }
    let r = s.send(
        "GET",
        &format!("{}/apps/viewer/../Cargo.toml", s.root),
        &[],
        b"",
    );
    assert_ne!(r.status, 200);
    let r = crate::browser::Browser::new().get(&format!("{}/apps/viewer?iss=x", s.root));
    assert_eq!(r.status, 308);
    assert_eq!(r.header("location"), Some("/apps/viewer/?iss=x"));
}
