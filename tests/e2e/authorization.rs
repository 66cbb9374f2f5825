//! The SMART authorization server: discovery, the client registry, backend services
//! (`client_credentials` with `private_key_jwt`), introspection, revocation across processes,
//! key rotation, and the audit trail of it all.

use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p384::pkcs8::EncodePrivateKey as _;
use serde_json::{json, Value};

use crate::browser::enc;
use crate::harness::{sql_value, Resp, Server};

/// A backend service's own P-384 key pair.
struct BackendKey {
    encoding: EncodingKey,
    jwk: Value,
}

impl BackendKey {
    fn new(kid: &str) -> BackendKey {
        let secret = p384::ecdsa::SigningKey::random(&mut p384::elliptic_curve::rand_core::OsRng);
        let der = secret.to_pkcs8_der().unwrap();
        let point = secret.verifying_key().to_encoded_point(false);
        BackendKey {
            encoding: EncodingKey::from_ec_der(der.as_bytes()),
            jwk: json!({
                "kty": "EC", "crv": "P-384", "kid": kid, "use": "sig", "alg": "ES384",
                "x": URL_SAFE_NO_PAD.encode(point.x().unwrap()),
                "y": URL_SAFE_NO_PAD.encode(point.y().unwrap()),
            }),
        }
    }

    fn jwks(&self) -> Value {
        json!({"keys": [self.jwk]})
    }

    /// A client assertion with `claims` over the defaults (iss = sub = client, aud, exp in
    /// 60 s, a fresh jti).
    fn assertion(&self, client: &str, aud: &str, claims: Value) -> String {
        let now = now();
        let mut c = json!({
            "iss": client, "sub": client, "aud": aud, "exp": now + 60, "iat": now,
            "jti": uuid(),
        });
        for (k, v) in claims.as_object().unwrap() {
            c[k] = v.clone();
        }
        let mut header = Header::new(Algorithm::ES384);
        header.kid = self.jwk["kid"].as_str().map(str::to_string);
        jsonwebtoken::encode(&header, &c, &self.encoding).unwrap()
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn uuid() -> String {
    format!("{:032x}", rand_u128())
}

fn rand_u128() -> u128 {
    let mut b = [0u8; 16];
    p384::elliptic_curve::rand_core::RngCore::fill_bytes(
        &mut p384::elliptic_curve::rand_core::OsRng,
        &mut b,
    );
    u128::from_le_bytes(b)
}

fn token_url(s: &Server) -> String {
    format!("{}/auth/token", s.root)
}

/// POSTs a form to an `/auth/…` endpoint.
fn post_form(s: &Server, path: &str, form: &[(&str, &str)], headers: &[(&str, &str)]) -> Resp {
    let body: Vec<String> = form
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect();
    let mut h = vec![("Content-Type", "application/x-www-form-urlencoded")];
    h.extend_from_slice(headers);
    s.send(
        "POST",
        &format!("{}{path}", s.root),
        &h,
        body.join("&").as_bytes(),
    )
}

/// Registers a backend service through `invicta client add`.
fn register_backend(s: &Server, id: &str, key: &BackendKey, scope: &str) {
    let dir = std::env::temp_dir().join("invicta-e2e-jwks");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{id}-{}.json", uuid()));
    std::fs::write(&file, key.jwks().to_string()).unwrap();
    let (ok, out, err) = s.cli(&[
        "client",
        "add",
        "--id",
        id,
        "--name",
        "Patient administration system",
        "--kind",
        "confidential-asymmetric",
        "--jwks",
        file.to_str().unwrap(),
        "--scope",
        scope,
        "--role",
        "feed",
        "--org",
        "RWF",
    ]);
    let _ = std::fs::remove_file(&file);
    assert!(ok, "client add: {out}{err}");
}

fn backend_token_request(s: &Server, assertion: &str, scope: &str) -> Resp {
    post_form(
        s,
        "/auth/token",
        &[
            ("grant_type", "client_credentials"),
            ("scope", scope),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion),
        ],
        &[],
    )
}

fn oauth_error(r: &Resp, status: u16, error: &str) {
    assert_eq!(r.status, status, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        r.json()["error"],
        error,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.header("cache-control"), Some("no-store"));
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// Polls `check` for up to five seconds.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !check() {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within 5 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn discovery_documents_name_the_same_endpoints_and_keys() {
    let s = Server::secure();
    let conf = s.get("/.well-known/smart-configuration", &[]).json();
    assert_eq!(conf["token_endpoint"], token_url(&s));
    assert_eq!(conf["issuer"], s.base);
    for (field, path) in [
        ("authorization_endpoint", "/auth/authorize"),
        ("introspection_endpoint", "/auth/introspect"),
        ("revocation_endpoint", "/auth/revoke"),
        ("jwks_uri", "/.well-known/jwks.json"),
    ] {
        assert_eq!(conf[field], format!("{}{path}", s.root), "{field}");
    }
    assert_eq!(conf["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(
        conf["token_endpoint_auth_signing_alg_values_supported"],
        json!(["RS384", "ES384"])
    );
    assert!(conf["grant_types_supported"]
        .as_array()
        .unwrap()
        .contains(&json!("client_credentials")));
    let caps = conf["capabilities"].as_array().unwrap();
    assert!(caps.contains(&json!("client-confidential-asymmetric")));
    assert!(caps.contains(&json!("permission-v2")));

    let cs = s.get("/metadata", &[]).json();
    let uris = &cs["rest"][0]["security"]["extension"][0]["extension"];
    let uri = |name: &str| {
        uris.as_array()
            .unwrap()
            .iter()
            .find(|e| e["url"] == name)
            .map(|e| e["valueUri"].clone())
            .unwrap_or(Value::Null)
    };
    assert_eq!(uri("token"), conf["token_endpoint"]);
    assert_eq!(uri("authorize"), conf["authorization_endpoint"]);
    assert_eq!(uri("introspect"), conf["introspection_endpoint"]);
    assert_eq!(uri("revoke"), conf["revocation_endpoint"]);

    // The published keys verify the server's tokens: the token's kid is among them, under
    // both the root and the FHIR base.
    let jwks = s.get(conf["jwks_uri"].as_str().unwrap(), &[]).json();
    assert_eq!(jwks, s.get("/.well-known/jwks.json", &[]).json());
    let (ok, token, err) = s.cli(&["token", "--role", "gp", "--org", "G82977"]);
    assert!(ok, "{err}");
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    let kids: Vec<&Value> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| &k["kid"])
        .collect();
    assert!(kids.contains(&&header["kid"]), "{kids:?} {header}");
}

#[test]
fn backend_services_get_short_lived_system_tokens_and_every_misuse_is_refused() {
    let s = Server::secure();
    let key = BackendKey::new("pas-key-1");
    register_backend(&s, "pas", &key, "system/*.crus");
    let aud = token_url(&s);

    let r = backend_token_request(&s, &key.assertion("pas", &aud, json!({})), "system/*.cruds");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let body = r.json();
    assert_eq!(body["token_type"], "bearer");
    assert!(body["expires_in"].as_i64().unwrap() <= 300);
    // The client may not delete, so neither may its token.
    assert_eq!(body["scope"], "system/*.crus");
    let token = body["access_token"].as_str().unwrap().to_string();

    // The token works on the FHIR API as the client's feed, and not beyond its scopes.
    let patient = json!({"resourceType": "Patient", "name": [{"family": "Backend"}]});
    let created = s.send_json(
        "POST",
        "/Patient",
        &patient,
        &[("Authorization", &bearer(&token))],
    );
    assert_eq!(
        created.status,
        201,
        "{}",
        String::from_utf8_lossy(&created.body)
    );
    let id = created.json()["id"].as_str().unwrap().to_string();
    let read = s.get(
        &format!("/Patient/{id}"),
        &[("Authorization", &bearer(&token))],
    );
    assert_eq!(read.status, 200);
    let delete = s.send(
        "DELETE",
        &format!("/Patient/{id}"),
        &[("Authorization", &bearer(&token))],
        b"",
    );
    assert_eq!(delete.status, 403);

    // Misuse, each refused with the error RFC 6749/7523 name.
    let replayed = key.assertion("pas", &aud, json!({"jti": "once-only"}));
    assert_eq!(
        backend_token_request(&s, &replayed, "system/*.rs").status,
        200
    );
    oauth_error(
        &backend_token_request(&s, &replayed, "system/*.rs"),
        401,
        "invalid_client",
    );
    let cases = [
        (
            "aud of another server",
            key.assertion("pas", "https://other.example/auth/token", json!({})),
        ),
        (
            "aud of the FHIR base",
            key.assertion("pas", &s.base, json!({})),
        ),
        (
            "expiring in 10 minutes",
            key.assertion("pas", &aud, json!({"exp": now() + 600})),
        ),
        (
            "expired",
            key.assertion("pas", &aud, json!({"exp": now() - 400})),
        ),
        (
            "iss not sub",
            key.assertion("pas", &aud, json!({"sub": "someone-else"})),
        ),
        ("no jti", {
            let mut header = Header::new(Algorithm::ES384);
            header.kid = Some("pas-key-1".into());
            jsonwebtoken::encode(
                &header,
                &json!({"iss": "pas", "sub": "pas", "aud": aud, "exp": now() + 60}),
                &key.encoding,
            )
            .unwrap()
        }),
        (
            "another key",
            BackendKey::new("pas-key-1").assertion("pas", &aud, json!({})),
        ),
        ("unknown client", key.assertion("stranger", &aud, json!({}))),
        ("not a JWT", "abc.def".to_string()),
    ];
    for (what, assertion) in &cases {
        let r = backend_token_request(&s, assertion, "system/*.rs");
        assert_eq!(
            r.status,
            401,
            "{what}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(r.json()["error"], "invalid_client", "{what}");
    }
    // A backend asks for system/ scopes only, within its registration.
    oauth_error(
        &backend_token_request(&s, &key.assertion("pas", &aud, json!({})), "user/*.rs"),
        400,
        "invalid_scope",
    );
    oauth_error(
        &backend_token_request(
            &s,
            &key.assertion("pas", &aud, json!({})),
            "system/AuditEvent.rs",
        ),
        400,
        "invalid_scope",
    );
    // Protocol errors.
    let assertion = key.assertion("pas", &aud, json!({}));
    oauth_error(
        &post_form(&s, "/auth/token", &[("grant_type", "password")], &[]),
        400,
        "unsupported_grant_type",
    );
    oauth_error(
        &post_form(
            &s,
            "/auth/token",
            &[
                ("grant_type", "client_credentials"),
                ("grant_type", "client_credentials"),
            ],
            &[],
        ),
        400,
        "invalid_request",
    );
    let json_body = s.send(
        "POST",
        &token_url(&s),
        &[("Content-Type", "application/json")],
        json!({"grant_type": "client_credentials", "client_assertion": assertion})
            .to_string()
            .as_bytes(),
    );
    oauth_error(&json_body, 400, "invalid_request");
    let huge = s.send(
        "POST",
        &token_url(&s),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &vec![b'a'; 200 * 1024],
    );
    oauth_error(&huge, 400, "invalid_request");

    // Every issue and refusal is in the audit trail, and no token or assertion is.
    s.settle_audit();
    let po = bearer(&s.token("privacy-officer", "user/AuditEvent.rs", Some("X26"), None));
    let count = |q: &str| {
        let r = s.get(
            &format!("/AuditEvent?{q}&_summary=count"),
            &[("Authorization", &po)],
        );
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        r.json()["total"].as_i64().unwrap()
    };
    assert_eq!(count("subtype=token-issued"), 2);
    assert!(
        count("subtype=refused") >= cases.len() as i64 + 5,
        "{}",
        count("subtype=refused")
    );
    assert_eq!(
        count("type=110114"),
        count("subtype=token-issued") + count("subtype=refused")
    );
    let trail = sql_value(
        &s.db_url,
        "SELECT string_agg(convert_from(body, 'UTF8'), ' ') FROM audit_resource",
    );
    assert!(trail.contains("\"pas\""), "the client is named");
    assert!(
        !trail.contains(&token),
        "no access token in the audit trail"
    );
    for (_, assertion) in &cases {
        assert!(
            !trail.contains(assertion.as_str()),
            "no assertion in the audit trail"
        );
    }
}

#[test]
fn a_revoked_token_is_refused_at_once_by_every_process() {
    let s = Server::secure();
    let peer = s.peer();
    let key = BackendKey::new("k1");
    register_backend(&s, "pas", &key, "system/*.rs");
    let other = BackendKey::new("k2");
    register_backend(&s, "lab", &other, "system/*.rs");
    let aud = token_url(&s);
    let token = backend_token_request(&s, &key.assertion("pas", &aud, json!({})), "system/*.rs")
        .json()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let h = bearer(&token);
    assert_eq!(s.get("/Patient", &[("Authorization", &h)]).status, 200);
    assert_eq!(peer.get("/Patient", &[("Authorization", &h)]).status, 200);

    let client_auth = |k: &BackendKey, id: &str| {
        vec![
            (
                "client_assertion_type".to_string(),
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_string(),
            ),
            (
                "client_assertion".to_string(),
                k.assertion(id, &aud, json!({})),
            ),
        ]
    };
    let call = |path: &str, k: &BackendKey, id: &str, extra: &[(&str, &str)]| {
        let a = client_auth(k, id);
        let mut form: Vec<(&str, &str)> = a.iter().map(|(x, y)| (x.as_str(), y.as_str())).collect();
        form.extend_from_slice(extra);
        post_form(&s, path, &form, &[])
    };
    let active = call("/auth/introspect", &other, "lab", &[("token", &token)]).json();
    assert_eq!(active["active"], true, "{active}");
    assert_eq!(active["client_id"], "pas");
    assert_eq!(active["scope"], "system/*.rs");
    assert_eq!(active["iss"], s.base);
    assert!(active["exp"].as_i64().unwrap() > now());

    // Another client may not revoke pas's token.
    oauth_error(
        &call("/auth/revoke", &other, "lab", &[("token", &token)]),
        400,
        "unauthorized_client",
    );
    assert_eq!(s.get("/Patient", &[("Authorization", &h)]).status, 200);

    let r = call("/auth/revoke", &key, "pas", &[("token", &token)]);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let refused = s.get("/Patient", &[("Authorization", &h)]);
    assert_eq!(
        refused.status, 401,
        "the revoking process refuses it at once"
    );
    assert!(refused
        .header("www-authenticate")
        .unwrap()
        .contains("revoked"));
    eventually("the other process refusing the revoked token", || {
        peer.get("/Patient", &[("Authorization", &h)]).status == 401
    });
    let inactive = call("/auth/introspect", &other, "lab", &[("token", &token)]).json();
    assert_eq!(inactive, json!({"active": false}));
    // Revoking again, or revoking nonsense, is not an error (RFC 7009 §2.2).
    assert_eq!(
        call("/auth/revoke", &key, "pas", &[("token", &token)]).status,
        200
    );
    assert_eq!(
        call("/auth/revoke", &key, "pas", &[("token", "nonsense")]).status,
        200
    );

    // A restarted process still refuses it: the revocation is in the database.
    drop(peer);
    let peer = s.peer();
    assert_eq!(peer.get("/Patient", &[("Authorization", &h)]).status, 401);
    // Introspection is for confidential clients that authenticate.
    oauth_error(
        &post_form(&s, "/auth/introspect", &[("token", &token)], &[]),
        401,
        "invalid_client",
    );
}

#[test]
fn rotated_keys_sign_new_tokens_while_old_tokens_stay_valid() {
    let s = Server::secure();
    let peer = s.peer();
    let old = s.token("gp", "user/*.rs", Some("G82977"), None);
    let kid = |t: &str| -> Value {
        let h: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(t.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap();
        h["kid"].clone()
    };
    let (ok, out, err) = s.cli(&["keys", "rotate"]);
    assert!(ok, "{out}{err}");
    let (ok, listed, _) = s.cli(&["keys", "list"]);
    assert!(ok);
    assert_eq!(listed.lines().count(), 2, "{listed}");
    assert!(
        listed.lines().next().unwrap().contains("signing"),
        "{listed}"
    );
    let (ok, new, err) = s.cli(&["token", "--role", "gp", "--org", "G82977"]);
    assert!(ok, "{err}");
    let new = new.trim().to_string();
    assert_ne!(kid(&new), kid(&old), "the newest key signs");
    // Both processes learn of the new key without a restart, and keep trusting the old one.
    eventually("both processes publishing both keys", || {
        [s.root.clone(), peer.root.clone()].iter().all(|root| {
            let jwks: Value =
                serde_json::from_slice(&s.get(&format!("{root}/.well-known/jwks.json"), &[]).body)
                    .unwrap();
            jwks["keys"].as_array().unwrap().len() == 2
        })
    });
    for t in [&old, &new] {
        assert_eq!(
            s.get("/Patient", &[("Authorization", &bearer(t))]).status,
            200
        );
        assert_eq!(
            peer.get("/Patient", &[("Authorization", &bearer(t))])
                .status,
            200
        );
    }
}

#[test]
fn the_client_registry_commands_and_the_clients_file() {
    let dir = std::env::temp_dir().join(format!("invicta-e2e-clients-{}", uuid()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("clients.json");
    let key = BackendKey::new("file-key");
    std::fs::write(
        &file,
        json!([
            {"id": "viewer", "name": "Care record viewer", "kind": "public",
             "redirect_uris": ["http://127.0.0.1:9/apps/viewer/"],
             "scope": "openid fhirUser launch launch/patient patient/*.rs user/*.rs offline_access",
             "launch_url": "http://127.0.0.1:9/apps/viewer/launch.html"},
            {"id": "sample-backend", "name": "Sample backend", "kind": "confidential-asymmetric",
             "jwks": key.jwks(), "scope": "system/*.rs", "role": "feed", "org": "RWF"}
        ])
        .to_string(),
    )
    .unwrap();
    let s = Server::start_with(&[
        ("INVICTA_AUTH", "on"),
        ("INVICTA_CLIENTS", file.to_str().unwrap()),
    ]);
    let (ok, list, _) = s.cli(&["client", "list"]);
    assert!(ok);
    assert!(
        list.contains("viewer\tpublic") && list.contains("sample-backend\tconfidential-asymmetric"),
        "{list}"
    );
    // The file's backend client works at once.
    let r = backend_token_request(
        &s,
        &key.assertion("sample-backend", &token_url(&s), json!({})),
        "system/Patient.rs",
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));

    // A symmetric client: its secret is printed once and stored only as a hash.
    let (ok, out, err) = s.cli(&[
        "client",
        "add",
        "--id",
        "portal-api",
        "--name",
        "Portal API",
        "--kind",
        "confidential-symmetric",
        "--scope",
        "user/*.rs",
    ]);
    assert!(ok, "{err}");
    let secret = out
        .lines()
        .find_map(|l| l.strip_prefix("client secret (shown once, store it now): "))
        .expect("the secret is printed")
        .to_string();
    let (ok, shown, _) = s.cli(&["client", "show", "portal-api"]);
    assert!(ok);
    assert!(!shown.contains(&secret), "show never prints the secret");
    assert!(shown.contains("sha256$"), "{shown}");
    let stored = sql_value(
        &s.db_url,
        "SELECT secret_hash FROM auth_client WHERE id = 'portal-api'",
    );
    assert!(!stored.contains(&secret));
    // It authenticates with HTTP Basic; a wrong secret is a 401 with a Basic challenge.
    let basic = |secret: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("portal-api:{secret}"))
        )
    };
    let token = s.token("gp", "user/*.rs", Some("G82977"), None);
    let r = post_form(
        &s,
        "/auth/introspect",
        &[("token", &token)],
        &[("Authorization", &basic(&secret))],
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["active"], true);
    let r = post_form(
        &s,
        "/auth/introspect",
        &[("token", &token)],
        &[("Authorization", &basic("wrong"))],
    );
    oauth_error(&r, 401, "invalid_client");
    assert!(r.header("www-authenticate").unwrap().starts_with("Basic"));
    // A public client cannot introspect.
    oauth_error(
        &post_form(
            &s,
            "/auth/introspect",
            &[("token", &token), ("client_id", "viewer")],
            &[],
        ),
        401,
        "invalid_client",
    );

    // Registrations that break a rule are refused with the reason, and nothing is stored.
    for (args, reason) in [
        (
            vec![
                "--id",
                "portal-api",
                "--kind",
                "public",
                "--scope",
                "patient/*.rs",
            ],
            "already registered",
        ),
        (
            vec![
                "--id",
                "x",
                "--kind",
                "public",
                "--scope",
                "patient/*.rs",
                "--redirect-uri",
                "http://evil.example/cb",
            ],
            "https",
        ),
        (
            vec!["--id", "y", "--kind", "public", "--scope", "system/*.rs"],
            "backend",
        ),
        (
            vec!["--id", "z", "--kind", "wizard", "--scope", "patient/*.rs"],
            "kind",
        ),
    ] {
        let mut all = vec!["client", "add", "--name", "N"];
        all.extend(args);
        let (ok, _, err) = s.cli(&all);
        assert!(!ok, "{all:?}");
        assert!(err.contains(reason), "{all:?}: {err}");
    }
    let (ok, _, _) = s.cli(&["client", "remove", "portal-api"]);
    assert!(ok);
    let (ok, _, err) = s.cli(&["client", "remove", "portal-api"]);
    assert!(!ok && err.contains("no client"), "{err}");
    let r = post_form(
        &s,
        "/auth/introspect",
        &[("token", &token)],
        &[("Authorization", &basic(&secret))],
    );
    oauth_error(&r, 401, "invalid_client");
    let _ = std::fs::remove_dir_all(&dir);
}
