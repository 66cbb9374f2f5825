//! Constraints a profile may name by key whose rule is written here in Rust rather than
//! evaluated from its FHIRPath: the FHIRPath engine has no `matches()` or arithmetic, and the
//! Modulus 11 check is not expressible in FHIRPath at all. A profile naming a key that is not
//! here is refused when it is loaded.

use serde_json::Value;

use crate::issue::shorten;
use crate::nhs_number;

/// A rule broken by one element: where under the element, and what was found.
pub(crate) struct Breach {
    /// Path below the element (`.value`), empty for the element itself.
    pub below: &'static str,
    /// What the element holds that breaks the rule.
    pub detail: String,
}

/// A constraint implemented here.
pub(crate) struct Invariant {
    /// The type of element it applies to.
    pub applies_to: &'static str,
    /// The check: every way the element breaks the rule.
    pub check: fn(&Value) -> Vec<Breach>,
}

/// The implementation of the constraint with this key, if there is one.
pub(crate) fn invariant(key: &str) -> Option<Invariant> {
    match key {
        "inv-nhs-1" => Some(Invariant {
            applies_to: "Identifier",
            check: nhs_number_check_digit,
        }),
        "inv-nhs-2" => Some(Invariant {
            applies_to: "Identifier",
            check: nhs_number_verification_status,
        }),
        _ => None,
    }
}

/// An NHS number identifier's value is ten digits whose last is the Modulus 11 check digit. A
/// missing value is the cardinality rule's to report.
fn nhs_number_check_digit(identifier: &Value) -> Vec<Breach> {
    match identifier["value"].as_str() {
        Some(value) if !nhs_number::is_valid(value) => vec![Breach {
            below: ".value",
            detail: format!("'{}' is not a valid NHS number", shorten(value, 20)),
        }],
        _ => Vec::new(),
    }
}

/// An NHS number identifier carries the extension saying whether the number was verified.
fn nhs_number_verification_status(identifier: &Value) -> Vec<Breach> {
    let present = identifier["extension"].as_array().is_some_and(|exts| {
        exts.iter()
            .any(|e| e["url"] == nhs_number::VERIFICATION_STATUS_EXTENSION)
    });
    if present {
        Vec::new()
    } else {
        vec![Breach {
            below: "",
            detail: "the NHS number has no verification status".to_string(),
        }]
    }
}
