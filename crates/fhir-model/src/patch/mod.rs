//! FHIR R4 PATCH: applies an RFC 6902 JSON Patch or a FHIRPath Patch (`Parameters`) document to a
//! resource held as JSON.
//!
//! Both entry points take the resource by reference and return a new value, so a patch that fails
//! part-way through never leaves the caller holding a half-patched resource. The result is not
//! validated here: the server validates a patched resource exactly like any other update.

mod fhirpath_patch;
mod json_patch;
mod json_value;
mod operation;

use std::fmt;

use serde_json::Value;

pub use fhirpath_patch::apply_fhirpath_patch;
pub use json_patch::apply_json_patch;

/// Why a patch was refused, which decides the HTTP status the server answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchErrorKind {
    /// The patch document itself is broken (bad shape, unparseable path): HTTP 400.
    Malformed,
    /// The document is well-formed but cannot be applied to this resource: HTTP 422.
    Unprocessable,
}

/// A refused patch, with a message fit for an OperationOutcome `diagnostics`.
///
/// Messages about a single operation start with its 1-based position and type, e.g.
/// `operation 2 (replace): ...`, so a client can find the offending entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchError {
    kind: PatchErrorKind,
    message: String,
}

impl PatchError {
    pub(crate) fn malformed(message: impl Into<String>) -> Self {
        PatchError {
            kind: PatchErrorKind::Malformed,
            message: message.into(),
        }
    }

    pub(crate) fn unprocessable(message: impl Into<String>) -> Self {
        PatchError {
            kind: PatchErrorKind::Unprocessable,
            message: message.into(),
        }
    }

    /// Prefixes the message with the operation it concerns, keeping the kind.
    pub(crate) fn in_operation(self, position: usize, op: &str) -> Self {
        PatchError {
            kind: self.kind,
            message: format!("operation {position} ({op}): {}", self.message),
        }
    }

    /// Whether the document is broken (400) or merely inapplicable to this resource (422).
    pub fn kind(&self) -> PatchErrorKind {
        self.kind
    }

    /// True when the patch document itself is malformed (HTTP 400 rather than 422).
    pub fn is_malformed(&self) -> bool {
        self.kind == PatchErrorKind::Malformed
    }

    /// The human-readable explanation.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for PatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PatchError {}

/// Deepest nesting a patched resource may have; real resources stay far below it, and the
/// server's serialisation and validation recurse over the result.
const MAX_RESOURCE_DEPTH: usize = 256;

/// Refuses a result whose `resourceType` or `id` differs from the original (a PATCH addresses one
/// resource instance, and letting the body retarget it would bypass the server's URL checks), or
/// that nests deeper than [`MAX_RESOURCE_DEPTH`].
fn check_result(before: &Value, after: &Value) -> Result<(), PatchError> {
    if json_value::depth(after) > MAX_RESOURCE_DEPTH {
        return Err(PatchError::unprocessable(format!(
            "the patched resource would nest deeper than {MAX_RESOURCE_DEPTH} levels"
        )));
    }
    if !after.is_object() {
        return Err(PatchError::unprocessable(
            "the patch would replace the resource with something that is not a JSON object",
        ));
    }
    for field in ["resourceType", "id"] {
        let (old, new) = (before.get(field), after.get(field));
        if old != new {
            return Err(PatchError::unprocessable(format!(
                "the patch changes '{field}' from {} to {}; a patch may not change it",
                describe(old),
                describe(new)
            )));
        }
    }
    Ok(())
}

fn describe(v: Option<&Value>) -> String {
    v.map_or_else(|| "(absent)".to_string(), json_value::abbreviate)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn identity_check_accepts_unchanged_and_refuses_changes() {
        let before = json!({"resourceType": "Patient", "id": "a"});
        assert!(check_result(
            &before,
            &json!({"resourceType": "Patient", "id": "a", "x": 1})
        )
        .is_ok());
        let e = check_result(&before, &json!({"resourceType": "Group", "id": "a"})).unwrap_err();
        assert!(!e.is_malformed());
        assert!(e.message().contains("resourceType"));
        let e = check_result(&before, &json!({"resourceType": "Patient"})).unwrap_err();
        assert!(e.message().contains("'id'"));
        assert!(check_result(&before, &json!("text")).is_err());
        let mut deep = json!(1);
        for _ in 0..=MAX_RESOURCE_DEPTH {
            deep = json!({"a": deep});
        }
        let mut after = before.clone();
        after["extension"] = deep;
        assert!(check_result(&before, &after)
            .unwrap_err()
            .message()
            .contains("deeper"));
    }

    #[test]
    fn error_prefix_keeps_kind() {
        let e = PatchError::malformed("bad").in_operation(3, "add");
        assert!(e.is_malformed());
        assert_eq!(e.kind(), PatchErrorKind::Malformed);
        assert_eq!(e.to_string(), "operation 3 (add): bad");
    }
}
