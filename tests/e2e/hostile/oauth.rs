//! Hostile input at the authorization server: bodies, parameters, headers and values an
//! attacker holding a registered client (or an odd integrator's tool) sends to `/auth/…`. Client
//! endpoints answer a 4xx OAuth error (JSON with `error`), browser endpoints a 4xx page or a
//! redirect to sign in, never a 5xx or a dropped connection; nothing is issued, and the server
//! stays healthy.

use serde_json::Value;

use super::still_healthy;
use crate::browser::Browser;
use crate::harness::{sql_value, Resp, Server};

fn form_pairs(body: &str) -> Vec<(String, String)> {
    body.split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_string(), v.replace("%3A", ":").replace("%2F", "/")))
        .collect()
}

fn oauth_refused(what: &str, r: &Resp) {
    assert!(
        (400..500).contains(&r.status),
        "{what}: expected a 4xx, got {}: {}",
        r.status,
        String::from_utf8_lossy(&r.body)
    );
    let v: Value = serde_json::from_slice(&r.body).unwrap_or_else(|e| {
        panic!(
            "{what}: no JSON error ({e}): {:?}",
            String::from_utf8_lossy(&r.body)
        )
    });
    assert!(v["error"].is_string(), "{what}: {v}");
    assert_eq!(r.header("cache-control"), Some("no-store"), "{what}");
}

fn page_or_redirect(what: &str, r: &Resp) {
    assert!(
        (300..500).contains(&r.status),
        "{what}: got {}: {}",
        r.status,
        String::from_utf8_lossy(&r.body)
    );
}

#[test]
fn abusive_requests_to_the_authorization_server_are_refused_and_issue_nothing() {
    let s = Server::start_with(&[("INVICTA_AUTH", "on"), ("INVICTA_DEV_SIGNIN", "on")]);
    let (ok, _, err) = s.cli(&[
        "client",
        "add",
        "--id",
        "app",
        "--name",
        "App",
        "--kind",
        "public",
        "--redirect-uri",
        "https://app.example/cb",
        "--scope",
        "patient/*.rs launch/patient",
    ]);
    assert!(ok, "{err}");
    let form_ct = ("Content-Type", "application/x-www-form-urlencoded");
    let post = |path: &str, body: &[u8], headers: &[(&str, &str)]| {
        let mut h = vec![form_ct];
        h.extend_from_slice(headers);
        s.send("POST", &format!("{}{path}", s.root), &h, body)
    };
    let many: Vec<String> = (0..40).map(|i| format!("f{i}=x")).collect();
    let big_assertion = format!("grant_type=client_credentials&scope=system%2F*.rs&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion={}", "a.".repeat(9000));
    let none_alg = "eyJhbGciOiJub25lIn0.eyJpc3MiOiJhcHAiLCJzdWIiOiJhcHAifQ.";
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("over 64 KiB", vec![b'a'; 65 * 1024 + 1]),
        ("40 fields", many.join("&").into_bytes()),
        ("a repeated parameter", b"grant_type=authorization_code&grant_type=refresh_token".to_vec()),
        ("empty", Vec::new()),
        ("not UTF-8 and not a form", vec![0xff, 0xfe, 0x00, 0x01, b'=']),
        ("NUL in a value", b"grant_type=client_credentials&client_id=app%00evil".to_vec()),
        ("a huge assertion", big_assertion.into_bytes()),
        ("alg none", format!("grant_type=client_credentials&scope=system%2F*.rs&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion={none_alg}").into_bytes()),
        ("a 10 KB code", format!("grant_type=authorization_code&client_id=app&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&code_verifier={}&code={}", "v".repeat(60), "c".repeat(10_000)).into_bytes()),
        ("a refresh token for nobody", b"grant_type=refresh_token&client_id=app&refresh_token=nope".to_vec()),
    ];
    for path in [
        "/auth/token",
        "/auth/introspect",
        "/auth/revoke",
        "/auth/launch",
    ] {
        for (what, body) in &bodies {
            let r = post(path, body, &[]);
            if r.status == 200 {
                // Revocation answers 200 to whatever it cannot find, by design (RFC 7009).
                assert_eq!(path, "/auth/revoke", "{path} {what}");
                continue;
            }
            oauth_refused(&format!("{path} {what}"), &r);
        }
        for header in [
            "Basic !!!not-base64!!!",
            "Basic Og==",
            &format!("Basic {}", "QUFB".repeat(2000)),
            "Bearer x.y.z",
        ] {
            let r = post(
                path,
                b"grant_type=client_credentials&token=x",
                &[("Authorization", header)],
            );
            oauth_refused(
                &format!("{path} Authorization {}", &header[..header.len().min(20)]),
                &r,
            );
        }
        let r = s.send(
            "POST",
            &format!("{}{path}", s.root),
            &[("Content-Type", "application/json")],
            b"{\"grant_type\":\"client_credentials\"}",
        );
        oauth_refused(&format!("{path} JSON body"), &r);
    }
    // Browser endpoints: pages or redirects (not followed), never a 5xx.
    let mut b = Browser::new();
    let long = "x".repeat(60_000);
    for url in [
        format!("/auth/authorize?client_id={long}"),
        format!("/auth/authorize?client_id=app&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&state={long}"),
        "/auth/authorize?client_id=app&client_id=app".to_string(),
        "/auth/authorize".to_string(),
        "/auth/signin?request=nothing".to_string(),
        format!("/auth/signin?request={long}"),
        "/auth/consent?request=nothing".to_string(),
        "/auth/pick?request=nothing&nhs_number=1".to_string(),
        "/auth/idp/nowhere/start?request=x".to_string(),
        "/auth/idp/nowhere/callback?code=x&state=a.b".to_string(),
        "/auth/nowhere".to_string(),
    ] {
        let r = b.get(&format!("{}{url}", s.root));
        page_or_redirect(&url[..url.len().min(60)], &r);
    }
    for (path, body) in [
        (
            "/auth/signin/dev",
            format!("request=x&role=gp&sub={}", "s".repeat(70_000)),
        ),
        ("/auth/signin/dev", "request=x&role=wizard".to_string()),
        (
            "/auth/consent",
            "request=x&csrf=y&decision=allow".to_string(),
        ),
        (
            "/auth/pick",
            "request=x&csrf=y&patient=../../etc".to_string(),
        ),
        (
            "/auth/authorize",
            "client_id=app&redirect_uri=https%3A%2F%2Fevil.example".to_string(),
        ),
    ] {
        let r = post(
            path,
            body.as_bytes(),
            &[("Cookie", "invicta_session=forged")],
        );
        page_or_redirect(path, &r);
    }
    // Nothing was issued or started.
    for table in [
        "auth_code",
        "auth_session",
        "auth_refresh_family",
        "auth_launch",
    ] {
        assert_eq!(
            sql_value(&s.db_url, &format!("SELECT count(*) FROM {table}")),
            "0",
            "{table}"
        );
    }
    still_healthy(&s);
}
