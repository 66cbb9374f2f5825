#![no_main]
//! Fuzz target token_header: an `Authorization` header value through token verification with a
//! fixed signing key and no external issuers (no network). The first byte picks the shape: a raw
//! header, or claims (the rest, as JSON) signed with the server's key, so that the claim checks
//! and the reading of a principal are fuzzed behind a valid signature too.

use std::sync::OnceLock;
use std::time::Duration;

use authz::token::{SigningKey, Verifier, VerifierConfig};
use libfuzzer_sys::fuzz_target;

const AUDIENCE: &str = "http://fuzz.example/fhir";

struct Fixture {
    runtime: tokio::runtime::Runtime,
    verifier: Verifier,
    key: SigningKey,
    policy: authz::Policy,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let key = SigningKey::generate();
        let verifier = Verifier::new(VerifierConfig {
            audience: AUDIENCE.into(),
            own_issuer: AUDIENCE.into(),
            own_key: Some(key.clone()),
            external_issuers: vec![],
            leeway: Duration::from_secs(60),
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let policy =
            authz::Policy::from_json(authz::policy::DEFAULT_POLICY).expect("shipped policy");
        Fixture {
            runtime,
            verifier,
            key,
            policy,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let token = if mode % 2 == 0 {
        // A raw header, as the server's gate reads it.
        let Ok(header) = std::str::from_utf8(rest) else {
            return;
        };
        match header.strip_prefix("Bearer ").or_else(|| header.strip_prefix("bearer ")) {
            Some(t) => t.trim().to_string(),
            None => return,
        }
    } else {
        let Ok(serde_json::Value::Object(mut claims)) = serde_json::from_slice(rest) else {
            return;
        };
        claims
            .entry("iss")
            .or_insert_with(|| AUDIENCE.into());
        claims.entry("aud").or_insert_with(|| AUDIENCE.into());
        claims.entry("exp").or_insert_with(|| (i64::MAX / 2).into());
        match f.key.sign(&serde_json::Value::Object(claims)) {
            Ok(t) => t,
            Err(_) => return,
        }
    };
    if let Ok(claims) = f.runtime.block_on(f.verifier.verify(&token)) {
        let _ = authz::from_claims(&claims, &f.policy, "role");
    }
});
