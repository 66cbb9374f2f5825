#![no_main]
//! Fuzz target bundle: any bytes as a batch or transaction body, read as the server reads it
//! (JSON parsed within the Bundle's nesting limit, XML read and validated whole), then each
//! entry's resource checked as the server checks it. Every step must answer; an entry that
//! passes must be writable as XML.

use fhir_model::format::{
    check_business_rules, check_resource, parse_json_value, parse_xml, to_xml,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let xml = data.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'<');
    let parsed = if xml {
        parse_xml(data)
    } else {
        parse_json_value(data)
    };
    let Ok(bundle) = parsed else {
        return;
    };
    let Some(entries) = bundle.get("entry").and_then(|e| e.as_array()) else {
        return;
    };
    for entry in entries {
        let Some(resource) = entry.get("resource") else {
            continue;
        };
        if let Ok(checked) = check_resource(resource.clone()) {
            let _ = check_business_rules(&checked);
            to_xml(&checked).expect("an accepted entry must be writable as XML");
        }
    }
});
