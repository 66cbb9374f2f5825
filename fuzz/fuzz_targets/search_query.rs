#![no_main]
//! Fuzz target search_query: a raw query string is decoded into pairs and planned for a few
//! resource types (single, several, a compartment scope), lenient and strict, and as the
//! condition of a conditional interaction. Errors are fine; a panic, a runaway allocation or a
//! plan whose SQL holds client text is not.

use libfuzzer_sys::fuzz_target;
use search::{compile_condition, plan, CursorKey, PlanOptions};

const TYPES: &[&[&str]] = &[
    &["Patient"],
    &["Observation"],
    &["MedicationStatement"],
    &["Flag", "CarePlan"],
];

fuzz_target!(|data: &[u8]| {
    let Ok(query) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(pairs) = search::text::pairs(query) else {
        return;
    };
    for (i, types) in TYPES.iter().enumerate() {
        let types: Vec<String> = types.iter().map(|t| t.to_string()).collect();
        for strict in [false, true] {
            let options = PlanOptions {
                default_count: 20,
                max_count: 1000,
                strict,
                base_url: "http://fuzz.example/fhir".into(),
                access: None,
                cursor_key: CursorKey::from_secret(b"fuzzing search queries"),
                scope: if i == 0 { String::new() } else { "p1".into() },
            };
            if let Ok(p) = plan(&types, &pairs, &options) {
                if let Some(f) = &p.filter {
                    assert!(f.sql.len() < 1 << 20, "SQL of {} bytes", f.sql.len());
                    assert!(f.binds.len() < 65_535, "{} binds", f.binds.len());
                }
                assert!(p.count <= 1000);
            }
        }
    }
    let _ = compile_condition("Patient", query);
});
