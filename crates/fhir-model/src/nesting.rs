//! The one limit on how deeply content may nest, and the ways of measuring it without recursion.
//!
//! Every later path must be able to serve what a write accepted: serde_json refuses to read
//! stored JSON deeper than 128 levels, and fhirbolt's readers and writers, the validator and
//! serialisation all recurse once per level on threads with small stacks. The limit is counted
//! in JSON levels (each object and each array is one), and it leaves room under serde_json's 128
//! for the Bundle levels around a resource in a search, history or `$everything` answer.

use serde_json::Value;

use crate::issue::{Issue, IssueCode, ModelError};

/// Deepest nesting a resource may have, in JSON levels (objects and arrays; `{}` is 1).
pub const MAX_NESTING: usize = 100;

/// Levels between a Bundle and the resource of one of its entries (`entry`, the entry object,
/// `resource`): a Bundle may be this much deeper so that its entries get the full limit.
pub const BUNDLE_ENTRY_LEVELS: usize = 3;

/// Deepest XML element nesting read before the XML is converted to JSON: a resource within
/// [`MAX_NESTING`] JSON levels never needs more (an element per object, plus one for a
/// primitive's own element), so the exact check happens on the JSON that results.
pub const MAX_XML_DEPTH: usize = MAX_NESTING + BUNDLE_ENTRY_LEVELS + 1;

/// The nesting allowed for a resource of this type.
pub fn limit_for(resource_type: &str) -> usize {
    if resource_type == "Bundle" {
        MAX_NESTING + BUNDLE_ENTRY_LEVELS
    } else {
        MAX_NESTING
    }
}

/// Deepest content processed on the caller's thread. fhirbolt's generic readers and writers take
/// up to ~17 KiB of stack per level in a debug build (measured: a Bundle around a resource at
/// [`MAX_NESTING`] needs about 1.7 MiB), and actix workers and blocking threads have 2 MiB.
const INLINE_DEPTH: usize = 24;

/// Stack of the thread that processes deeper content: ten times what the deepest accepted
/// content needs in a debug build. Only touched pages are committed.
const DEEP_STACK_BYTES: usize = 16 * 1024 * 1024;

/// Runs `f`, which recurses over content `levels` deep, where the stack is sure to hold it: on
/// the calling thread for ordinary content, on a thread with a large stack for deep content. A
/// panic in `f` is returned as `None`.
pub fn with_stack_for<T: Send>(levels: usize, f: impl FnOnce() -> T + Send) -> Option<T> {
    let caught = |f: Box<dyn FnOnce() -> T + Send + '_>| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).ok()
    };
    if levels <= INLINE_DEPTH {
        return caught(Box::new(f));
    }
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("deep-content".into())
            .stack_size(DEEP_STACK_BYTES)
            .spawn_scoped(scope, move || caught(Box::new(f)))
            .ok()?
            .join()
            .ok()
            .flatten()
    })
}

/// Nesting depth of a value (a scalar is 0, `{}` and `[]` are 1), without recursion.
pub fn depth(value: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 0usize)];
    while let Some((v, d)) = stack.pop() {
        match v {
            Value::Array(items) => {
                deepest = deepest.max(d + 1);
                stack.extend(items.iter().map(|i| (i, d + 1)));
            }
            Value::Object(map) => {
                deepest = deepest.max(d + 1);
                stack.extend(map.values().map(|i| (i, d + 1)));
            }
            _ => {}
        }
    }
    deepest
}

/// Nesting depth of JSON text, read byte by byte before any parser recurses over it; stops
/// counting once `limit` is passed (the result is then `limit + 1`). Malformed text is measured
/// as far as it goes: the parser reports what is wrong with it.
pub fn text_depth(bytes: &[u8], limit: usize) -> usize {
    let (mut level, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for &b in bytes {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                level += 1;
                deepest = deepest.max(level);
                if deepest > limit {
                    return deepest;
                }
            }
            b'}' | b']' => level = level.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// The issue reported for content nested deeper than `limit`.
pub fn too_deep(limit: usize) -> ModelError {
    ModelError::single(Issue::general(
        IssueCode::TooCostly,
        format!(
            "The content nests deeper than the limit of {limit} levels (each JSON object or array, \
             or XML element, is a level)"
        ),
    ))
}

/// Refuses a resource nested deeper than its type allows; returns its depth otherwise.
pub fn check(resource: &Value) -> Result<usize, ModelError> {
    let rt = resource
        .get("resourceType")
        .and_then(Value::as_str)
        .unwrap_or("");
    let limit = limit_for(rt);
    let levels = depth(resource);
    if levels > limit {
        return Err(too_deep(limit));
    }
    Ok(levels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn depth_counts_objects_and_arrays() {
        assert_eq!(depth(&json!(1)), 0);
        assert_eq!(depth(&json!({})), 1);
        assert_eq!(depth(&json!({"a": [1]})), 2);
        assert_eq!(depth(&json!({"a": [{"b": {}}], "c": 1})), 4);
    }

    #[test]
    fn text_depth_matches_value_depth_and_ignores_strings() {
        for text in [
            r#"{"a":[{"b":{}}],"c":"[[[{{{"}"#,
            r#"[1,[2,[3]],"\"]"]"#,
            r#"{"x":"\\","y":[[]]}"#,
        ] {
            let v: Value = serde_json::from_str(text).unwrap();
            assert_eq!(text_depth(text.as_bytes(), 1000), depth(&v), "{text}");
        }
        let deep = "[".repeat(10_000);
        assert_eq!(text_depth(deep.as_bytes(), 100), 101);
    }

    #[test]
    fn bundles_get_room_for_their_entries() {
        let mut v = json!({"resourceType": "Bundle"});
        let mut o = json!({"resourceType": "Observation"});
        for _ in 0..MAX_NESTING - 1 {
            o = json!({"resourceType": "Observation", "x": o});
        }
        assert_eq!(depth(&o), MAX_NESTING);
        assert!(check(&o).is_ok());
        v["entry"] = json!([{"resource": o}]);
        assert_eq!(depth(&v), MAX_NESTING + BUNDLE_ENTRY_LEVELS);
        assert!(check(&v).is_ok());
        let deeper = json!({"resourceType": "Observation", "x": v["entry"][0]["resource"]});
        assert!(check(&deeper).is_err());
    }
}
