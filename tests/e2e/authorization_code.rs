//! The authorization code flow as a browser and an app drive it over HTTP: authorize, sign in
//! (development page), consent, code, token with PKCE; refresh-token rotation; the EHR launch; and
//! the protocol's negatives, each refused the way the RFCs say and leaving nothing usable.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use crate::browser::{enc, encode_form, hidden, location, param, Browser};
use crate::harness::{sql_value, Resp, Server};

const REDIRECT: &str = "http://127.0.0.1:9/callback";
const CITIZEN_NHS: &str = "9991182047";

struct Pkce {
    verifier: String,
    challenge: String,
}

fn pkce() -> Pkce {
    let mut bytes = [0u8; 48];
    p384::elliptic_curve::rand_core::RngCore::fill_bytes(
        &mut p384::elliptic_curve::rand_core::OsRng,
        &mut bytes,
    );
    let verifier = URL_SAFE_NO_PAD.encode(bytes);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    Pkce {
        verifier,
        challenge,
    }
}

/// A server with the development sign-in on, a public app, and two patients written by a feed.
fn setup() -> Server {
    let s = Server::start_with(&[("INVICTA_AUTH", "on"), ("INVICTA_DEV_SIGNIN", "on")]);
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
        "openid fhirUser launch launch/patient patient/*.rs user/*.rs offline_access online_access",
        "--launch-url",
        "http://127.0.0.1:9/launch",
    ]);
    assert!(ok, "{err}");
    for (id, nhs) in [("citizen-1", CITIZEN_NHS), ("other-1", "9992364904")] {
        s.put_patient(id, id, nhs);
    }
    s
}

fn authorize_url(s: &Server, scope: &str, p: &Pkce, extra: &[(&str, &str)]) -> String {
    let mut q = vec![
        ("response_type", "code"),
        ("client_id", "viewer"),
        ("redirect_uri", REDIRECT),
        ("scope", scope),
        ("state", "st-123"),
        ("aud", s.base.as_str()),
        ("code_challenge", p.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    q.extend_from_slice(extra);
    format!("{}/auth/authorize?{}", s.root, encode_form(&q))
}

/// Authorize → sign in with `signin` → consent: the final redirect's URL.
fn sign_in_and_allow(
    s: &Server,
    b: &mut Browser,
    authorize: &str,
    signin: &[(&str, &str)],
) -> String {
    let to_signin = location(&b.get(authorize));
    assert!(to_signin.contains("/auth/signin?request="), "{to_signin}");
    let page = b.get(&to_signin);
    assert_eq!(page.status, 200);
    let html = String::from_utf8(page.body.clone()).unwrap();
    let request = hidden(&html, "request");
    let mut form = vec![("request", request.as_str())];
    form.extend_from_slice(signin);
    let signed = b.post(&format!("{}/auth/signin/dev", s.root), &form);
    let to_consent = location(&signed);
    let consent = b.get(&to_consent);
    assert_eq!(
        consent.status,
        200,
        "{}",
        String::from_utf8_lossy(&consent.body)
    );
    assert_eq!(consent.header("x-frame-options"), Some("DENY"));
    let html = String::from_utf8(consent.body).unwrap();
    assert!(html.contains("Care record viewer"), "{html}");
    let csrf = hidden(&html, "csrf");
    location(&b.post(
        &format!("{}/auth/consent", s.root),
        &[
            ("request", &request),
            ("csrf", &csrf),
            ("decision", "allow"),
        ],
    ))
}

fn token(s: &Server, form: &[(&str, &str)]) -> Resp {
    s.send(
        "POST",
        &format!("{}/auth/token", s.root),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        encode_form(form).as_bytes(),
    )
}

fn exchange(s: &Server, code: &str, p: &Pkce) -> Resp {
    token(
        s,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("client_id", "viewer"),
            ("code_verifier", &p.verifier),
        ],
    )
}

fn claims(jwt: &str) -> Value {
    serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(jwt.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap()
}

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

const CITIZEN: &[(&str, &str)] = &[
    ("sub", "nhs-login-citizen-1"),
    ("name", "Citizen One"),
    ("role", "patient"),
    ("nhs_number", CITIZEN_NHS),
    ("proofing", "P9"),
];

#[test]
fn a_citizen_signs_in_consents_and_gets_their_own_record_with_pkce_and_rotating_refresh() {
    let s = setup();
    let p = pkce();
    let mut b = Browser::new();
    let scope = "openid fhirUser launch/patient patient/*.rs offline_access";
    let back = sign_in_and_allow(
        &s,
        &mut b,
        &authorize_url(&s, scope, &p, &[("nonce", "n-1")]),
        CITIZEN,
    );
    assert!(back.starts_with(REDIRECT), "{back}");
    assert_eq!(param(&back, "state").as_deref(), Some("st-123"));
    let code = param(&back, "code").expect("a code");

    let r = exchange(&s, &code, &p);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let t = r.json();
    assert_eq!(t["token_type"], "bearer");
    assert_eq!(t["patient"], "citizen-1", "resolved from the NHS number");
    assert_eq!(t["need_patient_banner"], true);
    assert_eq!(t["scope"], scope);
    let access = t["access_token"].as_str().unwrap().to_string();
    let a = claims(&access);
    assert_eq!(a["role"], "patient");
    assert_eq!(a["sub"], "nhs-login-citizen-1");
    let id = claims(t["id_token"].as_str().unwrap());
    assert_eq!(id["aud"], "viewer");
    assert_eq!(id["nonce"], "n-1");
    assert_eq!(id["fhirUser"], format!("{}/Patient/citizen-1", s.base));
    // The token reads the citizen's own record and nobody else's.
    assert_eq!(
        s.get("/Patient/citizen-1", &[("Authorization", &bearer(&access))])
            .status,
        200
    );
    assert_ne!(
        s.get("/Patient/other-1", &[("Authorization", &bearer(&access))])
            .status,
        200
    );

    // Refresh tokens rotate; a spent one used again revokes the family and its access tokens.
    let first = t["refresh_token"].as_str().unwrap().to_string();
    let refresh = |rt: &str| {
        token(
            &s,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", rt),
                ("client_id", "viewer"),
            ],
        )
    };
    let r2 = refresh(&first);
    assert_eq!(r2.status, 200, "{}", String::from_utf8_lossy(&r2.body));
    let second = r2.json()["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(second, first);
    let access2 = r2.json()["access_token"].as_str().unwrap().to_string();
    assert_eq!(
        s.get(
            "/Patient/citizen-1",
            &[("Authorization", &bearer(&access2))]
        )
        .status,
        200
    );
    let reuse = refresh(&first);
    assert_eq!(reuse.status, 400);
    assert_eq!(reuse.json()["error"], "invalid_grant");
    assert_eq!(
        refresh(&second).json()["error"],
        "invalid_grant",
        "the family is revoked"
    );
    assert_eq!(
        s.get(
            "/Patient/citizen-1",
            &[("Authorization", &bearer(&access2))]
        )
        .status,
        401
    );

    // The code was single use: a second exchange fails and revokes what the first issued.
    let again = exchange(&s, &code, &p);
    assert_eq!(again.json()["error"], "invalid_grant");
    assert_eq!(
        s.get("/Patient/citizen-1", &[("Authorization", &bearer(&access))])
            .status,
        401
    );

    // All of it is in the audit trail.
    s.settle_audit();
    let po = bearer(&s.token("privacy-officer", "user/AuditEvent.rs", Some("X26"), None));
    let count = |q: &str| {
        s.get(
            &format!("/AuditEvent?{q}&_summary=count"),
            &[("Authorization", &po)],
        )
        .json()["total"]
            .as_i64()
            .unwrap()
    };
    assert_eq!(count("subtype=sign-in"), 1);
    assert_eq!(count("subtype=token-issued"), 1);
    assert_eq!(count("subtype=token-refreshed"), 1);
    assert!(count("subtype=refused") >= 3);
    let trail = sql_value(
        &s.db_url,
        "SELECT string_agg(convert_from(body, 'UTF8'), ' ') FROM audit_resource",
    );
    for secret in [&code, &first, &second, &access, &p.verifier] {
        assert!(
            !trail.contains(secret.as_str()),
            "no code, token or verifier in the audit trail"
        );
    }
}

#[test]
fn protocol_negatives_are_refused_and_leave_nothing_usable() {
    let s = setup();
    let p = pkce();
    let scope = "launch/patient patient/*.rs";
    let mut b = Browser::new();
    // Unknown client and unregistered or altered redirect_uri: a page, never a redirect.
    for url in [
        authorize_url(&s, scope, &p, &[]).replace("client_id=viewer", "client_id=stranger"),
        authorize_url(&s, scope, &p, &[]).replace("callback", "callback%2Fevil"),
        authorize_url(&s, scope, &p, &[]).replace("127.0.0.1%3A9", "evil.example"),
    ] {
        let r = b.get(&url);
        assert_eq!(r.status, 400, "{url}");
        assert!(
            r.header("location").is_none(),
            "no redirect to an unverified place: {url}"
        );
    }
    // PKCE plain or missing, aud of another server, no state: back to the app with the error.
    for (url, error) in [
        (
            authorize_url(&s, scope, &p, &[])
                .replace("code_challenge_method=S256", "code_challenge_method=plain"),
            "invalid_request",
        ),
        (
            authorize_url(&s, scope, &p, &[]).replace("&code_challenge_method=S256", ""),
            "invalid_request",
        ),
        (
            authorize_url(&s, scope, &p, &[])
                .replace(&enc(&s.base), "https%3A%2F%2Fother.example%2Ffhir"),
            "invalid_request",
        ),
        (
            authorize_url(&s, scope, &p, &[]).replace("response_type=code", "response_type=token"),
            "unsupported_response_type",
        ),
        (
            authorize_url(&s, scope, &p, &[("launch", "made-up")]),
            "invalid_request",
        ),
    ] {
        let to = location(&b.get(&url));
        assert!(to.starts_with(REDIRECT), "{to}");
        assert_eq!(param(&to, "error").as_deref(), Some(error), "{url}");
        assert_eq!(param(&to, "state").as_deref(), Some("st-123"));
    }

    // A wrong or missing verifier burns the code.
    for verifier in [Some("x".repeat(50)), None] {
        let back = sign_in_and_allow(
            &s,
            &mut Browser::new(),
            &authorize_url(&s, scope, &p, &[]),
            CITIZEN,
        );
        let code = param(&back, "code").unwrap();
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("client_id", "viewer"),
        ];
        if let Some(v) = &verifier {
            form.push(("code_verifier", v));
        }
        assert_eq!(token(&s, &form).json()["error"], "invalid_grant");
        assert_eq!(
            exchange(&s, &code, &p).json()["error"],
            "invalid_grant",
            "the code is spent"
        );
    }
    // An expired code.
    let back = sign_in_and_allow(
        &s,
        &mut Browser::new(),
        &authorize_url(&s, scope, &p, &[]),
        CITIZEN,
    );
    sql_value(
        &s.db_url,
        "UPDATE auth_code SET expires_at = now() - interval '1 second' WHERE used_at IS NULL",
    );
    assert_eq!(
        exchange(&s, &param(&back, "code").unwrap(), &p).json()["error"],
        "invalid_grant"
    );
    // redirect_uri at the token endpoint must be the authorization request's.
    let back = sign_in_and_allow(
        &s,
        &mut Browser::new(),
        &authorize_url(&s, scope, &p, &[]),
        CITIZEN,
    );
    let r = token(
        &s,
        &[
            ("grant_type", "authorization_code"),
            ("code", &param(&back, "code").unwrap()),
            ("redirect_uri", "http://127.0.0.1:9/other"),
            ("client_id", "viewer"),
            ("code_verifier", &p.verifier),
        ],
    );
    assert_eq!(r.json()["error"], "invalid_grant");

    // CSRF: a consent form posted with another session's token is refused and issues nothing.
    let mut victim = Browser::new();
    let to_signin = location(&victim.get(&authorize_url(&s, scope, &p, &[])));
    let html = String::from_utf8(victim.get(&to_signin).body).unwrap();
    let request = hidden(&html, "request");
    let mut form = vec![("request", request.as_str())];
    form.extend_from_slice(CITIZEN);
    location(&victim.post(&format!("{}/auth/signin/dev", s.root), &form));
    let mut attacker = Browser::new();
    let to_signin = location(&attacker.get(&authorize_url(&s, scope, &p, &[])));
    let html = String::from_utf8(attacker.get(&to_signin).body).unwrap();
    let theirs = hidden(&html, "request");
    let mut form = vec![("request", theirs.as_str())];
    form.extend_from_slice(CITIZEN);
    let consent_url = location(&attacker.post(&format!("{}/auth/signin/dev", s.root), &form));
    let forged = hidden(
        &String::from_utf8(attacker.get(&consent_url).body).unwrap(),
        "csrf",
    );
    let codes_before = sql_value(&s.db_url, "SELECT count(*) FROM auth_code");
    let r = victim.post(
        &format!("{}/auth/consent", s.root),
        &[
            ("request", &request),
            ("csrf", &forged),
            ("decision", "allow"),
        ],
    );
    assert_eq!(r.status, 403);
    assert!(r.header("location").is_none());
    assert_eq!(
        sql_value(&s.db_url, "SELECT count(*) FROM auth_code"),
        codes_before
    );

    // A citizen below P9 is refused with a page saying why.
    let mut low = Browser::new();
    let to_signin = location(&low.get(&authorize_url(&s, scope, &p, &[])));
    let html = String::from_utf8(low.get(&to_signin).body).unwrap();
    let request = hidden(&html, "request");
    let r = low.post(
        &format!("{}/auth/signin/dev", s.root),
        &[
            ("request", &request),
            ("sub", "c5"),
            ("role", "patient"),
            ("nhs_number", CITIZEN_NHS),
            ("proofing", "P5"),
        ],
    );
    assert_eq!(r.status, 403);
    assert!(String::from_utf8_lossy(&r.body).contains("P9"));
    assert!(
        r.header("set-cookie").is_none(),
        "no session for a refused sign-in"
    );

    // Scopes beyond the person's role are not granted: a receptionist asking to read
    // everything gets the demographic types of the role's ceiling, no clinical type.
    let receptionist: &[(&str, &str)] = &[
        ("sub", "front-desk"),
        ("role", "receptionist"),
        ("org", "G82977"),
    ];
    let back = sign_in_and_allow(
        &s,
        &mut Browser::new(),
        &authorize_url(&s, "user/*.rs", &p, &[]),
        receptionist,
    );
    let t = exchange(&s, &param(&back, "code").unwrap(), &p).json();
    assert_eq!(
        t["scope"],
        "user/Patient.rs user/RelatedPerson.rs user/Appointment.rs user/Practitioner.rs \
         user/PractitionerRole.rs user/Organization.rs user/Location.rs",
        "{t}"
    );
    // Scopes beyond the client's registration are not granted.
    let back = sign_in_and_allow(
        &s,
        &mut Browser::new(),
        &authorize_url(&s, "patient/*.cruds system/*.rs launch/patient", &p, &[]),
        CITIZEN,
    );
    let t = exchange(&s, &param(&back, "code").unwrap(), &p).json();
    assert_eq!(t["scope"], "patient/*.rs launch/patient", "{t}");
}

#[test]
fn an_ehr_launch_carries_its_patient_into_the_token_and_is_single_use() {
    let s = setup();
    // The GP system: a confidential client that may create launches.
    let key = p384::ecdsa::SigningKey::random(&mut p384::elliptic_curve::rand_core::OsRng);
    let point = key.verifying_key().to_encoded_point(false);
    let jwks = json!({"keys": [{"kty": "EC", "crv": "P-384", "kid": "gp1", "alg": "ES384",
        "x": URL_SAFE_NO_PAD.encode(point.x().unwrap()), "y": URL_SAFE_NO_PAD.encode(point.y().unwrap())}]});
    let file = std::env::temp_dir().join(format!("invicta-e2e-gpsys-{}.json", std::process::id()));
    std::fs::write(&file, jwks.to_string()).unwrap();
    let (ok, _, err) = s.cli(&[
        "client",
        "add",
        "--id",
        "gp-system",
        "--name",
        "GP system",
        "--kind",
        "confidential-asymmetric",
        "--jwks",
        file.to_str().unwrap(),
        "--scope",
        "launch",
    ]);
    let _ = std::fs::remove_file(&file);
    assert!(ok, "{err}");
    let der = p384::pkcs8::EncodePrivateKey::to_pkcs8_der(&key).unwrap();
    let encoding = jsonwebtoken::EncodingKey::from_ec_der(der.as_bytes());
    let assertion = || {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES384);
        h.kid = Some("gp1".into());
        jsonwebtoken::encode(&h, &json!({"iss": "gp-system", "sub": "gp-system", "aud": format!("{}/auth/token", s.root), "exp": now + 60, "jti": URL_SAFE_NO_PAD.encode(Sha256::digest(format!("{now}{:?}", std::time::Instant::now()).as_bytes()))}), &encoding).unwrap()
    };
    let launch = |patient: &str| {
        s.send(
            "POST",
            &format!("{}/auth/launch", s.root),
            &[("Content-Type", "application/x-www-form-urlencoded")],
            encode_form(&[
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", &assertion()),
                ("patient", patient),
                ("encounter", "enc-1"),
                ("user", "dr-marsh"),
                ("role", "gp"),
                ("org", "G82977"),
                ("app", "viewer"),
            ])
            .as_bytes(),
        )
    };
    let r = launch("other-1");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let made = r.json();
    let value = made["launch"].as_str().unwrap().to_string();
    assert!(made["launch_url"]
        .as_str()
        .unwrap()
        .starts_with("http://127.0.0.1:9/launch?iss="));
    // Only a client registered with the launch scope may create one.
    let public = s.send(
        "POST",
        &format!("{}/auth/launch", s.root),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"client_id=viewer&patient=other-1",
    );
    assert_eq!(public.json()["error"], "unauthorized_client");

    // A GP of a practice with no relationship to other-1 cannot read them without the launch…
    let plain = bearer(&s.token("gp", "user/*.rs", Some("G82977"), None));
    assert_eq!(
        s.get("/Patient/other-1", &[("Authorization", &plain)])
            .status,
        403
    );
    // …and can with it.
    let p = pkce();
    let gp: &[(&str, &str)] = &[
        ("sub", "dr-marsh"),
        ("role", "gp"),
        ("org", "G82977"),
        ("fhir_user", "Practitioner/dr-marsh"),
    ];
    let url = authorize_url(
        &s,
        "launch openid fhirUser patient/*.rs",
        &p,
        &[("launch", &value)],
    );
    let back = sign_in_and_allow(&s, &mut Browser::new(), &url, gp);
    let t = exchange(&s, &param(&back, "code").unwrap(), &p).json();
    assert_eq!(t["patient"], "other-1", "{t}");
    assert_eq!(t["encounter"], "enc-1");
    assert_eq!(t["fhirContext"], json!([{"reference": "Encounter/enc-1"}]));
    let access = t["access_token"].as_str().unwrap();
    assert_eq!(
        s.get("/Patient/other-1", &[("Authorization", &bearer(access))])
            .status,
        200
    );

    // The launch was single use.
    let to = location(&Browser::new().get(&url));
    assert_eq!(
        param(&to, "error").as_deref(),
        Some("invalid_request"),
        "{to}"
    );
    // An expired launch is refused at the authorization endpoint.
    let value = launch("other-1").json()["launch"]
        .as_str()
        .unwrap()
        .to_string();
    sql_value(
        &s.db_url,
        "UPDATE auth_launch SET expires_at = now() - interval '1 second' WHERE used_at IS NULL",
    );
    let url = authorize_url(&s, "launch patient/*.rs", &p, &[("launch", &value)]);
    let to = location(&Browser::new().get(&url));
    assert_eq!(
        param(&to, "error").as_deref(),
        Some("invalid_request"),
        "{to}"
    );
    // A launch made for one user cannot be taken up by another.
    let value = launch("other-1").json()["launch"]
        .as_str()
        .unwrap()
        .to_string();
    let url = authorize_url(&s, "launch patient/*.rs", &p, &[("launch", &value)]);
    let mut b = Browser::new();
    let to_signin = location(&b.get(&url));
    let html = String::from_utf8(b.get(&to_signin).body).unwrap();
    let request = hidden(&html, "request");
    let to_consent = location(&b.post(
        &format!("{}/auth/signin/dev", s.root),
        &[
            ("request", &request),
            ("sub", "dr-other"),
            ("role", "gp"),
            ("org", "G99999"),
        ],
    ));
    assert_eq!(b.get(&to_consent).status, 403);
}

#[test]
fn a_clinician_picks_the_patient_of_a_standalone_launch_among_those_they_may_see() {
    let s = setup();
    let p = pkce();
    let url = authorize_url(&s, "launch/patient patient/*.rs openid", &p, &[]);
    // Signs in on the development page; returns the browser and the picker's URL.
    let start = |signin: &[(&str, &str)]| {
        let mut b = Browser::new();
        let to_signin = location(&b.get(&url));
        let html = String::from_utf8(b.get(&to_signin).body).unwrap();
        let request = hidden(&html, "request");
        let mut form = vec![("request", request.as_str())];
        form.extend_from_slice(signin);
        let to_consent = location(&b.post(&format!("{}/auth/signin/dev", s.root), &form));
        let to_pick = location(&b.get(&to_consent));
        assert!(to_pick.contains("/auth/pick?request="), "{to_pick}");
        (b, to_pick, request)
    };
    // A hospital clinician of the trust that sent the record (a source relationship) finds the
    // patient by NHS number and picks them.
    let (mut b, to_pick, request) = start(&[
        ("sub", "dr-ward"),
        ("role", "hospital-clinician"),
        ("org", "RWF"),
    ]);
    let page =
        String::from_utf8(b.get(&format!("{to_pick}&nhs_number={CITIZEN_NHS}")).body).unwrap();
    assert!(
        page.contains("citizen-1") && page.contains(CITIZEN_NHS),
        "{page}"
    );
    let csrf = hidden(&page, "csrf");
    let to_consent = location(&b.post(
        &format!("{}/auth/pick", s.root),
        &[
            ("request", request.as_str()),
            ("csrf", &csrf),
            ("patient", "citizen-1"),
        ],
    ));
    let consent = String::from_utf8(b.get(&to_consent).body).unwrap();
    assert!(consent.contains("citizen-1"), "{consent}");
    let csrf = hidden(&consent, "csrf");
    let back = location(&b.post(
        &format!("{}/auth/consent", s.root),
        &[
            ("request", request.as_str()),
            ("csrf", &csrf),
            ("decision", "allow"),
        ],
    ));
    let t = exchange(&s, &param(&back, "code").unwrap(), &p).json();
    assert_eq!(t["patient"], "citizen-1", "{t}");
    assert_eq!(t["scope"], "launch/patient patient/*.rs openid");
    let access = t["access_token"].as_str().unwrap();
    assert_eq!(
        s.get("/Patient/citizen-1", &[("Authorization", &bearer(access))])
            .status,
        200
    );

    // A GP with no relationship to these patients is offered none, and cannot pick one by
    // posting its id anyway.
    let (mut b, to_pick, request) = start(&[("sub", "dr-far"), ("role", "gp"), ("org", "G99999")]);
    let page = String::from_utf8(
        b.get(&format!("{to_pick}&family=citizen-1&birthdate=1970-01-01"))
            .body,
    )
    .unwrap();
    assert!(!page.contains("name=\"patient\""), "{page}");
    let page =
        String::from_utf8(b.get(&format!("{to_pick}&nhs_number={CITIZEN_NHS}")).body).unwrap();
    assert!(page.contains("No patient you may see matches"), "{page}");
    let forged = b.post(
        &format!("{}/auth/pick", s.root),
        &[
            ("request", request.as_str()),
            ("csrf", "x"),
            ("patient", "citizen-1"),
        ],
    );
    assert_eq!(forged.status, 403);
    // Nor skip the picker by posting consent straight away.
    let to_consent = format!("{}/auth/consent?request={request}", s.root);
    assert!(location(&b.get(&to_consent)).contains("/auth/pick"));

    // The picker's searches are audited as the clinicians'.
    s.settle_audit();
    let po = bearer(&s.token("privacy-officer", "user/AuditEvent.rs", Some("X26"), None));
    // Two searches and the refused read, each in the name of the GP's organisation.
    let r = s.get(
        "/AuditEvent?altid=G99999&type=rest&_summary=count",
        &[("Authorization", &po)],
    );
    assert_eq!(r.json()["total"], 3, "{}", String::from_utf8_lossy(&r.body));
}

#[test]
fn a_sign_in_at_one_process_is_exchanged_and_refreshed_at_another() {
    // Two processes on one database behind one load balancer: every step of the flow may land
    // on either, since codes, sessions and refresh families live in PostgreSQL.
    let s = setup();
    let peer = s.peer();
    let p = pkce();
    let mut b = Browser::new();
    let scope = "openid fhirUser launch/patient patient/*.rs offline_access";
    let back = sign_in_and_allow(&s, &mut b, &authorize_url(&s, scope, &p, &[]), CITIZEN);
    let code = param(&back, "code").expect("a code");
    let at = |root: &str, form: &[(&str, &str)]| {
        s.send(
            "POST",
            &format!("{root}/auth/token"),
            &[("Content-Type", "application/x-www-form-urlencoded")],
            encode_form(form).as_bytes(),
        )
    };
    let exchanged = at(
        &peer.root,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", "viewer"),
            ("code_verifier", &p.verifier),
        ],
    );
    assert_eq!(
        exchanged.status,
        200,
        "{}",
        String::from_utf8_lossy(&exchanged.body)
    );
    let refresh = exchanged.json()["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    let refreshed = at(
        &s.root,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", "viewer"),
        ],
    );
    assert_eq!(
        refreshed.status,
        200,
        "{}",
        String::from_utf8_lossy(&refreshed.body)
    );
    let access = refreshed.json()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        peer.get("/Patient/citizen-1", &[("Authorization", &bearer(&access))])
            .status,
        200
    );
    // The code, spent at the other process, used again here: refused, and what it yielded is
    // revoked everywhere at once.
    assert_eq!(exchange(&s, &code, &p).status, 400);
    let first = exchanged.json()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    // Each process learns of a revocation by notification, a moment later.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    for t in [&first, &access] {
        while peer
            .get("/Patient/citizen-1", &[("Authorization", &bearer(t))])
            .status
            != 401
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the other process still accepts a revoked token"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}
