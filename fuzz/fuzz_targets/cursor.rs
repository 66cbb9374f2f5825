#![no_main]
//! Fuzz target cursor: `_cursor` values. Arbitrary text as a cursor must be refused (it is not
//! sealed by the server's key) without a panic; arbitrary sort values sealed by the server
//! must round-trip and be accepted only when they fit their sort key's type.

use libfuzzer_sys::fuzz_target;
use search::{plan, CursorKey, PlanOptions};
use store::Cursor;

const SORTS: &[&str] = &["_lastUpdated", "-_id", "family", "gender,birthdate", "-birthdate"];

fn options() -> PlanOptions {
    PlanOptions {
        default_count: 20,
        max_count: 1000,
        strict: false,
        base_url: "http://fuzz.example/fhir".into(),
        access: None,
        cursor_key: CursorKey::from_secret(b"fuzzing page cursors"),
        scope: String::new(),
    }
}

fuzz_target!(|data: &[u8]| {
    let types = vec!["Patient".to_string()];
    let text = String::from_utf8_lossy(data);
    for sort in SORTS {
        // As a cursor the server never issued.
        let pairs = vec![
            ("_sort".to_string(), sort.to_string()),
            ("_cursor".to_string(), text.to_string()),
        ];
        assert!(plan(&types, &pairs, &options()).is_err(), "an unsealed cursor was accepted");
        // As sort values the server sealed: they come back as they went.
        let first = plan(&types, &[("_sort".to_string(), sort.to_string())], &options())
            .expect("a plain sort plans");
        let keys = sort.split(',').count();
        let values: Vec<Option<String>> = text
            .split('\u{1f}')
            .take(keys)
            .map(|v| (!v.is_empty()).then(|| v.to_string()))
            .chain(std::iter::repeat(None))
            .take(keys)
            .collect();
        let at = Cursor {
            values,
            rid: data.len() as i64,
        };
        let token = first.cursor_token(data.first().copied().unwrap_or(0) as i64, &at, data.len() % 2 == 0);
        let mut pairs = vec![("_sort".to_string(), sort.to_string())];
        pairs.push(("_cursor".to_string(), token));
        if let Ok(next) = plan(&types, &pairs, &options()) {
            assert_eq!(next.cursor.as_ref(), Some(&at));
        }
    }
});
