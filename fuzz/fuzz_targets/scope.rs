#![no_main]
//! Fuzz target scope: SMART v1/v2 scope strings through authz's parser. Errors are fine; a
//! panic is not, and a parsed scope must answer every question asked of it.

use authz::scope::{parse_scope, parse_scopes, Interaction, Scope};
use libfuzzer_sys::fuzz_target;

const INTERACTIONS: &[Interaction] = &[
    Interaction::Read,
    Interaction::Search,
    Interaction::Create,
    Interaction::Update,
    Interaction::Delete,
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_scope(text);
    if let Ok(scopes) = parse_scopes(text) {
        for s in &scopes {
            if let Scope::Resource(r) = s {
                for i in INTERACTIONS {
                    let _ = r.allows("Patient", *i);
                    let _ = r.allows("Observation", *i);
                }
            }
        }
    }
});
