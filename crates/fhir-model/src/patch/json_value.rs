//! Measures of JSON values that both patch formats need.

use serde_json::Value;

/// A value rendered for an error message, cut short so a large value cannot swamp it.
pub(crate) fn abbreviate(value: &Value) -> String {
    const MAX_CHARS: usize = 120;
    let text = value.to_string();
    match text.char_indices().nth(MAX_CHARS) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    }
}

/// Nesting depth of a value (a scalar is 0), computed without recursion so hostile input cannot
/// overflow the stack.
pub(crate) fn depth(value: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 0usize)];
    while let Some((v, d)) = stack.pop() {
        deepest = deepest.max(d);
        match v {
            Value::Array(items) => stack.extend(items.iter().map(|i| (i, d + 1))),
            Value::Object(map) => stack.extend(map.values().map(|i| (i, d + 1))),
            _ => {}
        }
    }
    deepest
}

/// Number of values in a tree, counted without recursion.
pub(crate) fn node_count(value: &Value) -> usize {
    let mut count = 0;
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        count += 1;
        match v {
            Value::Array(items) => stack.extend(items.iter()),
            Value::Object(map) => stack.extend(map.values()),
            _ => {}
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn abbreviation() {
        assert_eq!(abbreviate(&json!("é")), "\"é\"");
        let long = abbreviate(&json!("x".repeat(500)));
        assert!(long.ends_with("...") && long.len() < 130);
    }

    #[test]
    fn measures() {
        let v = json!({"a": [1, {"b": 2}], "c": 3});
        assert_eq!(depth(&v), 3);
        assert_eq!(node_count(&v), 6);
        assert_eq!(depth(&json!(1)), 0);
    }
}
