//! Signing in through an upstream OpenID Connect provider: a real, independent one
//! (`oidc-provider` from npm, in `tests/node`) shaped as NHS CIS2 for staff and NHS login for
//! citizens, driven through its own login and consent pages as a browser would.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use crate::browser::{enc, form_of, param, Browser};
use crate::harness::{free_port, NodeProcess, Resp, Server};

const REDIRECT: &str = "http://127.0.0.1:9/callback";

/// The identity provider.
struct Idp {
    _process: NodeProcess,
    issuer: String,
}

fn start_idp(port: u16, invicta_root: &str) -> Idp {
    let clients = json!([{
        "client_id": "invicta", "client_secret": "invicta-secret-for-tests",
        "redirect_uris": [format!("{invicta_root}/auth/idp/cis2/callback"), format!("{invicta_root}/auth/idp/nhs-login/callback")],
        "grant_types": ["authorization_code"], "response_types": ["code"],
        "token_endpoint_auth_method": "client_secret_basic"
    }]);
    let accounts = json!({
        "cis2-gp": {"name": "Dr Helen Marsh",
            "nhsid_nrbac_roles": [
                {"person_roleid": "r1", "org_code": "RWF", "role_code": "S8000:G8000:R8000"},
                {"person_roleid": "r2", "org_code": "G82977", "role_code": "S8000:G8000:R0260"}],
            "selected_roleid": "r2"},
        "cis2-unknown-role": {"nhsid_nrbac_roles": [{"person_roleid": "x", "org_code": "RWF", "role_code": "S1:G1:R9999"}]},
        "citizen-p9": {"name": "Leo Harris", "nhs_number": "9991182047", "identity_proofing_level": "P9"},
        "citizen-p5": {"nhs_number": "9991182047", "identity_proofing_level": "P5"}
    });
    let process = NodeProcess::start(
        "provider.mjs",
        "oidc-provider",
        &[&port.to_string()],
        &[
            ("IDP_CLIENTS", clients.to_string()),
            ("IDP_ACCOUNTS", accounts.to_string()),
        ],
    );
    Idp {
        _process: process,
        issuer: format!("http://127.0.0.1:{port}"),
    }
}

fn absolute(base: &str, location: &str) -> String {
    if location.starts_with("http") {
        location.to_string()
    } else {
        format!("{base}{location}")
    }
}

/// A server that signs people in through two providers at the test IdP, and the IdP.
fn setup() -> (Server, Idp) {
    let idp_port = free_port();
    let issuer = format!("http://127.0.0.1:{idp_port}");
    let dir =
        std::env::temp_dir().join(format!("invicta-e2e-idp-{}-{idp_port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let providers = dir.join("providers.json");
    std::fs::write(&providers, json!([
        {"id": "cis2", "name": "NHS Care Identity Service 2", "issuer": issuer, "client_id": "invicta",
         "client_secret": "invicta-secret-for-tests", "scope": "openid profile nationalrbacaccess", "kind": "cis2"},
        {"id": "nhs-login", "name": "NHS login", "issuer": issuer, "client_id": "invicta",
         "client_secret": "invicta-secret-for-tests", "scope": "openid profile nhs", "kind": "nhs-login"}
    ]).to_string()).unwrap();
    // Discovery happens on first use, so the server may start before its provider.
    let s = Server::start_with(&[
        ("INVICTA_AUTH", "on"),
        ("INVICTA_IDENTITY_PROVIDERS", providers.to_str().unwrap()),
    ]);
    let idp = start_idp(idp_port, &s.root);
    assert_eq!(idp.issuer, issuer);
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
        REDIRECT,
        "--scope",
        "openid fhirUser launch/patient patient/*.rs user/*.rs",
    ]);
    assert!(ok, "{err}");
    s.put_patient("leo", "Harris", "9991182047");
    (s, idp)
}

/// Authorize, pick `provider` on the sign-in page, log in at the IdP as `account` and consent
/// there; returns the browser's last answer from Invicta's callback.
fn sign_in_upstream(
    s: &Server,
    idp: &Idp,
    b: &mut Browser,
    scope: &str,
    verifier: &str,
    provider: &str,
    account: &str,
) -> Resp {
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let url = format!(
        "{}/auth/authorize?response_type=code&client_id=viewer&redirect_uri={}&scope={}&state=s1&aud={}&code_challenge={challenge}&code_challenge_method=S256",
        s.root, enc(REDIRECT), enc(scope), enc(&s.base)
    );
    let signin = b.get(&url).header("location").unwrap().to_string();
    let page = String::from_utf8(b.get(&signin).body).unwrap();
    assert!(
        page.contains("NHS Care Identity Service 2") && page.contains("NHS login"),
        "{page}"
    );
    let marker = format!("/auth/idp/{provider}/start?request=");
    let start = page.find(&marker).unwrap();
    let href = page[..start].rfind("href=\"").unwrap() + 6;
    let link = page[href..]
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    let mut next = b.get(&link);
    // At the identity provider until it sends the browser back to Invicta.
    for _ in 0..12 {
        if next.status == 303 || next.status == 302 {
            let to = absolute(&idp.issuer, next.header("location").unwrap());
            if to.starts_with(&format!("{}/auth/idp/", s.root)) {
                return b.get(&to);
            }
            next = b.get(&to);
            continue;
        }
        assert_eq!(next.status, 200, "{}", String::from_utf8_lossy(&next.body));
        let html = String::from_utf8(next.body.clone()).unwrap();
        let (action, mut fields) = form_of(&html);
        for (k, v) in fields.iter_mut() {
            match k.as_str() {
                "login" => *v = account.to_string(),
                "password" => *v = "any".to_string(),
                _ => {}
            }
        }
        next = b.post_fields(&absolute(&idp.issuer, &action), &fields);
    }
    panic!("the identity provider never sent the browser back");
}

fn allow(s: &Server, b: &mut Browser, back: &Resp) -> String {
    assert_eq!(back.status, 303, "{}", String::from_utf8_lossy(&back.body));
    let consent_url = back.header("location").unwrap().to_string();
    assert!(
        consent_url.contains("/auth/consent?request="),
        "{consent_url}"
    );
    let html = String::from_utf8(b.get(&consent_url).body).unwrap();
    let (_, fields) = form_of(&html);
    let mut form: Vec<(String, String)> = fields
        .into_iter()
        .filter(|(k, _)| k != "decision")
        .collect();
    form.push(("decision".into(), "allow".into()));
    let r = b.post_fields(&format!("{}/auth/consent", s.root), &form);
    r.header("location").unwrap().to_string()
}

fn exchange(s: &Server, code: &str, verifier: &str) -> Value {
    let body =
        format!(
        "grant_type=authorization_code&code={}&redirect_uri={}&client_id=viewer&code_verifier={}",
        enc(code), enc(REDIRECT), enc(verifier)
    );
    let r = s.send(
        "POST",
        &format!("{}/auth/token", s.root),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        body.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()
}

fn claims(jwt: &str) -> Value {
    serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(jwt.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap()
}

const VERIFIER: &str = "a-verifier-that-is-long-enough-for-pkce-0123456789abcdefghij";

#[test]
fn staff_sign_in_through_a_cis2_shaped_provider() {
    let (s, idp) = setup();
    let mut b = Browser::new();
    let back = sign_in_upstream(
        &s,
        &idp,
        &mut b,
        "openid user/*.rs",
        VERIFIER,
        "cis2",
        "cis2-gp",
    );
    let to_app = allow(&s, &mut b, &back);
    let t = exchange(&s, &param(&to_app, "code").unwrap(), VERIFIER);
    let a = claims(t["access_token"].as_str().unwrap());
    assert_eq!(a["role"], "gp", "the selected RBAC role's R0260 maps to gp");
    assert_eq!(a["org"], "G82977", "the selected role's organisation");
    assert_eq!(a["sub"], "cis2-gp");
    assert_eq!(a["name"], "Dr Helen Marsh");
    assert_eq!(t["scope"], "openid user/*.rs");

    // A CIS2 job role with no care-record role is refused with a page, and no session is made.
    let mut b = Browser::new();
    let back = sign_in_upstream(
        &s,
        &idp,
        &mut b,
        "user/*.rs",
        VERIFIER,
        "cis2",
        "cis2-unknown-role",
    );
    assert_eq!(back.status, 403);
    assert!(String::from_utf8_lossy(&back.body).contains("role"));
    assert!(!b.jar.contains_key("invicta_session"));
}

#[test]
fn citizens_sign_in_through_an_nhs_login_shaped_provider_only_at_p9() {
    let (s, idp) = setup();
    let mut b = Browser::new();
    let back = sign_in_upstream(
        &s,
        &idp,
        &mut b,
        "launch/patient patient/*.rs",
        VERIFIER,
        "nhs-login",
        "citizen-p9",
    );
    let to_app = allow(&s, &mut b, &back);
    let t = exchange(&s, &param(&to_app, "code").unwrap(), VERIFIER);
    assert_eq!(
        t["patient"], "leo",
        "the record found by the NHS number claim"
    );
    let access = t["access_token"].as_str().unwrap();
    assert_eq!(claims(access)["role"], "patient");
    assert_eq!(
        s.get(
            "/Patient/leo",
            &[("Authorization", &format!("Bearer {access}"))]
        )
        .status,
        200
    );

    let mut b = Browser::new();
    let back = sign_in_upstream(
        &s,
        &idp,
        &mut b,
        "launch/patient patient/*.rs",
        VERIFIER,
        "nhs-login",
        "citizen-p5",
    );
    assert_eq!(back.status, 403);
    assert!(String::from_utf8_lossy(&back.body).contains("P9"));
    assert!(!b.jar.contains_key("invicta_session"));
    // A forged callback (a state that was never issued) is refused.
    let r = b.get(&format!(
        "{}/auth/idp/nhs-login/callback?code=x&state=nope.nope",
        s.root
    ));
    assert_eq!(r.status, 403);
}
