//! A SMART app built on the SMART JavaScript client library (`fhirclient` from npm, in
//! `tests/node/smart-app.mjs`) completes a standalone and an EHR launch against Invicta: the library
//! discovers the endpoints, sends the authorization request with PKCE, exchanges the code and
//! reads the patient in context; the test only plays the person in the browser.

use serde_json::Value;

use crate::browser::{enc, hidden, location, Browser};
use crate::harness::{free_port, NodeProcess, Server};

struct App {
    _process: NodeProcess,
    origin: String,
}

fn start_app(client_id: &str) -> App {
    let port = free_port();
    let process = NodeProcess::start(
        "smart-app.mjs",
        "fhirclient",
        &[&port.to_string(), client_id],
        &[],
    );
    App {
        _process: process,
        origin: format!("http://127.0.0.1:{port}"),
    }
}

#[test]
fn the_smart_javascript_client_completes_a_standalone_citizen_launch() {
    let s = Server::start_with(&[("INVICTA_AUTH", "on"), ("INVICTA_DEV_SIGNIN", "on")]);
    s.put_patient("leo", "Harris", "9991182047");
    let app = start_app("js-app");
    let (ok, _, err) = s.cli(&[
        "client",
        "add",
        "--id",
        "js-app",
        "--name",
        "A fhirclient app",
        "--kind",
        "public",
        "--redirect-uri",
        &format!("{}/app", app.origin),
        "--scope",
        "openid fhirUser launch/patient patient/*.rs",
    ]);
    assert!(ok, "{err}");

    let got = run_launch(
        &s,
        &app,
        &format!(
            "{}/launch?iss={}&scope={}",
            app.origin,
            enc(&s.base),
            enc("openid fhirUser launch/patient patient/*.rs")
        ),
        &[
            ("sub", "citizen-leo"),
            ("role", "patient"),
            ("nhs_number", "9991182047"),
            ("proofing", "P9"),
        ],
    );
    assert_eq!(got["patient"], "leo");
    assert_eq!(got["family"], "Harris");
    assert_eq!(got["fhirUser"], "Patient/leo");
    assert!(
        got["scope"].as_str().unwrap().contains("patient/*.rs"),
        "{got}"
    );
}

#[test]
fn the_smart_javascript_client_completes_an_ehr_launch() {
    let s = Server::start_with(&[("INVICTA_AUTH", "on"), ("INVICTA_DEV_SIGNIN", "on")]);
    s.put_patient("leo", "Harris", "9991182047");
    let app = start_app("js-app");
    let (ok, _, err) = s.cli(&[
        "client",
        "add",
        "--id",
        "js-app",
        "--name",
        "A fhirclient app",
        "--kind",
        "public",
        "--redirect-uri",
        &format!("{}/app", app.origin),
        "--launch-url",
        &format!("{}/launch", app.origin),
        "--scope",
        "launch openid fhirUser patient/*.rs",
    ]);
    assert!(ok, "{err}");
    // The GP system authenticates with its secret (client_secret_basic) to create the launch.
    let (ok, out, err) = s.cli(&[
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
    let made = s.send(
        "POST",
        &format!("{}/auth/launch", s.root),
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Authorization", &basic),
        ],
        b"patient=leo&user=dr-marsh&role=gp&org=G82977&app=js-app",
    );
    assert_eq!(made.status, 200, "{}", String::from_utf8_lossy(&made.body));
    // The point-of-care system opens the app at its launch URL with iss and launch.
    let launch_url = made.json()["launch_url"].as_str().unwrap().to_string();
    let got = run_launch(
        &s,
        &app,
        &launch_url,
        &[
            ("sub", "dr-marsh"),
            ("role", "gp"),
            ("org", "G82977"),
            ("fhir_user", "Practitioner/dr-marsh"),
        ],
    );
    assert_eq!(got["patient"], "leo", "{got}");
    assert_eq!(got["family"], "Harris");
    assert_eq!(got["fhirUser"], "Practitioner/dr-marsh");
}

/// Plays the person: opens `launch_url` of the app, signs in on the development page with
/// `signin`, allows; returns what the app reports after the library finished the launch.
fn run_launch(s: &Server, app: &App, launch_url: &str, signin: &[(&str, &str)]) -> Value {
    let mut b = Browser::new();
    // The library sends the browser to Invicta's authorization endpoint, found by discovery.
    let to_authorize = location(&b.get(launch_url));
    assert!(
        to_authorize.starts_with(&format!("{}/auth/authorize?", s.root)),
        "{to_authorize}"
    );
    assert!(
        to_authorize.contains("code_challenge_method=S256"),
        "{to_authorize}"
    );
    let to_signin = location(&b.get(&to_authorize));
    let html = String::from_utf8(b.get(&to_signin).body).unwrap();
    let request = hidden(&html, "request");
    let mut form = vec![("request", request.as_str())];
    form.extend_from_slice(signin);
    let to_consent = location(&b.post(&format!("{}/auth/signin/dev", s.root), &form));
    let html = String::from_utf8(b.get(&to_consent).body).unwrap();
    let csrf = hidden(&html, "csrf");
    let to_app = location(&b.post(
        &format!("{}/auth/consent", s.root),
        &[
            ("request", request.as_str()),
            ("csrf", &csrf),
            ("decision", "allow"),
        ],
    ));
    assert!(
        to_app.starts_with(&format!("{}/app?", app.origin)),
        "{to_app}"
    );
    // The library exchanges the code (with its PKCE verifier) and reads the patient.
    let done = b.get(&to_app);
    assert_eq!(done.status, 200, "{}", String::from_utf8_lossy(&done.body));
    done.json()
}
