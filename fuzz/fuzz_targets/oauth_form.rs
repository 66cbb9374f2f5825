#![no_main]
//! Fuzz target oauth_form: any bytes as the body of a token, introspection, revocation, launch or
//! consent request, read as the authorization server reads it; a scope it carries is narrowed to
//! a client registration and to every role's ceiling as a grant would be, and whatever is
//! granted must parse again; PKCE and the unverified issuer of an assertion must answer.

use std::sync::OnceLock;

use auth_server::form::Form;
use authz::grant::{narrow, narrow_to_role, Reach};
use authz::{parse_scopes, Policy, Scope};
use libfuzzer_sys::fuzz_target;

fn policy() -> &'static Policy {
    static POLICY: OnceLock<Policy> = OnceLock::new();
    POLICY.get_or_init(Policy::default_policy)
}

fn client() -> &'static [Scope] {
    static CLIENT: OnceLock<Vec<Scope>> = OnceLock::new();
    CLIENT.get_or_init(|| {
        parse_scopes("openid fhirUser launch launch/patient patient/*.rs user/*.cruds system/*.crus user/Observation.rs?category=laboratory")
            .expect("the client registration parses")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(form) = Form::parse(data) else {
        return;
    };
    if let Some(scope) = form.get("scope") {
        if let Ok(granted) = narrow(scope, client(), Reach::Exact) {
            parse_scopes(&granted).expect("a grant parses");
            for role in policy().roles() {
                let narrowed = narrow_to_role(&granted, role, policy()).expect("a grant narrows");
                parse_scopes(&narrowed).expect("a role's grant parses");
            }
        }
    }
    if let (Some(verifier), Some(challenge)) = (form.get("code_verifier"), form.get("code_challenge")) {
        let _ = auth_server::secrets::pkce_matches(verifier, challenge);
    }
    if let Some(assertion) = form.get("client_assertion") {
        let _ = authz::token::unverified_issuer(assertion);
    }
});
