//! The scripts of `examples/flows/` work against a running server as their comments say.

use std::process::Command;

use serde_json::{json, Value};

use crate::browser::{hidden, location, param, Browser};
use crate::harness::Server;

fn flows() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/flows")
}

#[test]
fn the_backend_service_example_gets_a_token_and_reads() {
    let s = Server::secure();
    let dir = std::env::temp_dir().join(format!(
        "invicta-e2e-backend-example-{}",
        std::process::id()
    ));
    let script = flows().join("backend-service.mjs");
    let setup = Command::new("node")
        .arg(&script)
        .args(["setup", "example-feed", dir.to_str().unwrap()])
        .output()
        .expect("node must be installed for the end-to-end tests (make test installs it)");
    assert!(
        setup.status.success(),
        "{}",
        String::from_utf8_lossy(&setup.stderr)
    );
    // The printed registration command, run with the server's settings.
    let printed = String::from_utf8(setup.stdout).unwrap();
    let jwks = dir.join("jwks.json");
    assert!(printed.contains(jwks.to_str().unwrap()), "{printed}");
    let (ok, _, err) = s.cli(&[
        "client",
        "add",
        "--id",
        "example-feed",
        "--name",
        "Backend service example-feed",
        "--kind",
        "confidential-asymmetric",
        "--jwks",
        jwks.to_str().unwrap(),
        "--scope",
        "system/*.rs",
        "--role",
        "feed",
        "--org",
        "RWF",
    ]);
    assert!(ok, "{err}");
    let run = Command::new("node")
        .arg(&script)
        .args(["run", "example-feed", dir.to_str().unwrap(), &s.base])
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let out: Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(out["token"]["scope"], "system/Patient.rs");
    assert_eq!(out["status"], 200, "{out}");
    assert_eq!(out["bundle"]["resourceType"], "Bundle");
}

#[test]
fn the_ehr_launch_example_creates_a_launch_for_the_app() {
    let s = Server::secure();
    let (ok, _, err) = s.cli(&[
        "client",
        "add",
        "--id",
        "myapp",
        "--name",
        "My app",
        "--kind",
        "public",
        "--redirect-uri",
        "https://myapp.example/callback",
        "--launch-url",
        "https://myapp.example/launch",
        "--scope",
        "launch openid fhirUser patient/*.rs",
    ]);
    assert!(ok, "{err}");
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
    let run = Command::new("bash")
        .arg(flows().join("ehr-launch.sh"))
        .args([
            &s.root,
            "gp-system",
            secret,
            "margaret-thornton",
            "dr-marsh",
            "gp",
            "G82977",
            "myapp",
        ])
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    let out: Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(out["expires_in"], json!(300));
    let url = out["launch_url"].as_str().unwrap();
    assert!(
        url.starts_with("https://myapp.example/launch?iss="),
        "{url}"
    );
    assert!(url.contains(&format!("launch={}", out["launch"].as_str().unwrap())));
}

#[test]
fn the_standalone_launch_example_starts_and_finishes_a_citizen_launch() {
    let s = Server::start_with(&[("INVICTA_AUTH", "on"), ("INVICTA_DEV_SIGNIN", "on")]);
    let redirect = "https://myapp.example/callback";
    let (ok, _, err) = s.cli(&[
        "client",
        "add",
        "--id",
        "myapp",
        "--name",
        "My app",
        "--kind",
        "public",
        "--redirect-uri",
        redirect,
        "--scope",
        "launch/patient patient/*.rs",
    ]);
    assert!(ok, "{err}");
    s.put_patient("leo", "Harris", "9991182047");
    let script = flows().join("standalone-launch.sh");
    let start = Command::new("bash")
        .arg(&script)
        .args([
            "start",
            &s.base,
            "myapp",
            redirect,
            "launch/patient patient/*.rs",
        ])
        .output()
        .unwrap();
    assert!(
        start.status.success(),
        "{}",
        String::from_utf8_lossy(&start.stderr)
    );
    let out = String::from_utf8(start.stdout).unwrap();
    let verifier = out
        .lines()
        .find_map(|l| l.strip_prefix("verifier: "))
        .unwrap()
        .to_string();
    let url = out
        .lines()
        .find_map(|l| l.strip_prefix("open: "))
        .unwrap()
        .to_string();
    // The person in the browser.
    let mut b = Browser::new();
    let to_signin = location(&b.get(&url));
    let request = hidden(
        &String::from_utf8(b.get(&to_signin).body).unwrap(),
        "request",
    );
    let to_consent = location(&b.post(
        &format!("{}/auth/signin/dev", s.root),
        &[
            ("request", request.as_str()),
            ("sub", "leo"),
            ("role", "patient"),
            ("nhs_number", "9991182047"),
            ("proofing", "P9"),
        ],
    ));
    let csrf = hidden(&String::from_utf8(b.get(&to_consent).body).unwrap(), "csrf");
    let back = location(&b.post(
        &format!("{}/auth/consent", s.root),
        &[
            ("request", request.as_str()),
            ("csrf", &csrf),
            ("decision", "allow"),
        ],
    ));
    let code = param(&back, "code").unwrap();
    let token = Command::new("bash")
        .arg(&script)
        .args(["token", &s.base, "myapp", redirect, &code, &verifier])
        .output()
        .unwrap();
    assert!(
        token.status.success(),
        "{}{}",
        String::from_utf8_lossy(&token.stdout),
        String::from_utf8_lossy(&token.stderr)
    );
    let t: Value = serde_json::from_slice(&token.stdout).unwrap();
    assert_eq!(t["patient"], "leo");
    assert_eq!(t["scope"], "launch/patient patient/*.rs");
}
