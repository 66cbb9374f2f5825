//! RFC 6902 JSON Patch with RFC 6901 JSON Pointers, hand-written because it is small and a crate
//! would bring its own serde_json expectations into a workspace that uses `arbitrary_precision`.

use serde_json::Value;

use super::json_value::{abbreviate, depth, node_count};
use super::{check_result, PatchError};
use crate::json_equal::json_equal;

/// Longest pointer accepted; FHIR resources are nowhere near this deep.
const MAX_POINTER_TOKENS: usize = 256;
/// Deepest nesting a patch may create, so later recursive handling (serialisation, drop) of the
/// result stays within the stack.
const MAX_RESULT_DEPTH: usize = 256;
/// Largest number of JSON values the result may hold: `copy` can double a document per operation,
/// so without a cap a short patch could exhaust memory.
const MAX_RESULT_NODES: usize = 1_000_000;

/// Applies an RFC 6902 JSON Patch (a JSON array of operations) to `resource`, all or nothing.
pub fn apply_json_patch(resource: &Value, patch: &Value) -> Result<Value, PatchError> {
    let entries = patch.as_array().ok_or_else(|| {
        PatchError::malformed("a JSON Patch document must be a JSON array of operations")
    })?;
    // Decode every operation before applying any, so a malformed document is reported as such
    // (400) even when an earlier operation would also fail against this resource (422).
    let ops = entries
        .iter()
        .enumerate()
        .map(|(i, entry)| decode(entry).map_err(|e| e.in_operation(i + 1, op_name(entry))))
        .collect::<Result<Vec<_>, _>>()?;
    let mut doc = resource.clone();
    let mut nodes = node_count(resource);
    for (i, op) in ops.iter().enumerate() {
        apply(&mut doc, op, &mut nodes)
            .map_err(|m| PatchError::unprocessable(m).in_operation(i + 1, op.name()))?;
    }
    check_result(resource, &doc)?;
    Ok(doc)
}

fn op_name(entry: &Value) -> &str {
    entry.get("op").and_then(Value::as_str).unwrap_or("?")
}

/// A parsed JSON Pointer, keeping the original text for messages.
#[derive(Debug, Clone, PartialEq)]
struct Pointer {
    text: String,
    tokens: Vec<String>,
}

impl Pointer {
    fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Ok(Pointer {
                text: String::new(),
                tokens: Vec::new(),
            });
        }
        let Some(rest) = text.strip_prefix('/') else {
            return Err(format!(
                "'{text}' is not a JSON Pointer: it must be empty or start with '/'"
            ));
        };
        let tokens = rest
            .split('/')
            .map(|raw| {
                unescape(raw).ok_or_else(|| {
                    format!("'{text}' has an invalid '~' escape (only ~0 and ~1 are allowed)")
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if tokens.len() > MAX_POINTER_TOKENS {
            return Err(format!(
                "pointer has {} levels; at most {MAX_POINTER_TOKENS} are supported",
                tokens.len()
            ));
        }
        Ok(Pointer {
            text: text.to_string(),
            tokens,
        })
    }

    fn is_proper_prefix_of(&self, other: &Pointer) -> bool {
        self.tokens.len() < other.tokens.len() && other.tokens.starts_with(&self.tokens)
    }
}

/// Decodes `~1` to `/` and `~0` to `~` in one left-to-right pass, so `~01` becomes `~1` (RFC 6901
/// section 4 ordering); any other use of `~` is invalid.
fn unescape(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '~' {
            match chars.next() {
                Some('0') => out.push('~'),
                Some('1') => out.push('/'),
                _ => return None,
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// Reads an array index token; `-` (one past the end) only where `allow_end` says so.
fn array_index(token: &str, len: usize, allow_end: bool) -> Result<usize, String> {
    if token == "-" {
        return if allow_end {
            Ok(len)
        } else {
            Err("'-' (past the end of the array) cannot be used here".to_string())
        };
    }
    let well_formed = !token.is_empty()
        && token.bytes().all(|b| b.is_ascii_digit())
        && (token == "0" || !token.starts_with('0'));
    if !well_formed {
        return Err(format!("'{token}' is not a valid array index"));
    }
    let limit = if allow_end {
        len
    } else {
        len.saturating_sub(1)
    };
    match token.parse::<usize>() {
        Ok(i) if i <= limit && (allow_end || len > 0) => Ok(i),
        _ => Err(format!(
            "array index {token} is out of range for an array of {len} items"
        )),
    }
}

fn resolve<'v>(doc: &'v Value, tokens: &[String]) -> Result<&'v Value, String> {
    let mut v = doc;
    for token in tokens {
        v = match v {
            Value::Object(map) => map
                .get(token)
                .ok_or_else(|| format!("member '{token}' does not exist"))?,
            Value::Array(items) => &items[array_index(token, items.len(), false)?],
            _ => return Err(format!("cannot look up '{token}' inside a scalar value")),
        };
    }
    Ok(v)
}

fn resolve_mut<'v>(doc: &'v mut Value, tokens: &[String]) -> Result<&'v mut Value, String> {
    let mut v = doc;
    for token in tokens {
        v = match v {
            Value::Object(map) => map
                .get_mut(token)
                .ok_or_else(|| format!("member '{token}' does not exist"))?,
            Value::Array(items) => {
                let i = array_index(token, items.len(), false)?;
                &mut items[i]
            }
            _ => return Err(format!("cannot look up '{token}' inside a scalar value")),
        };
    }
    Ok(v)
}

fn add(doc: &mut Value, path: &Pointer, value: Value) -> Result<(), String> {
    let Some((last, parent_tokens)) = path.tokens.split_last() else {
        *doc = value;
        return Ok(());
    };
    let parent = resolve_mut(doc, parent_tokens).map_err(|e| {
        format!(
            "cannot add at '{}': its parent does not exist ({e})",
            path.text
        )
    })?;
    match parent {
        Value::Object(map) => {
            map.insert(last.clone(), value);
            Ok(())
        }
        Value::Array(items) => {
            let i = array_index(last, items.len(), true)
                .map_err(|e| format!("cannot add at '{}': {e}", path.text))?;
            items.insert(i, value);
            Ok(())
        }
        _ => Err(format!(
            "cannot add at '{}': its parent is neither an object nor an array",
            path.text
        )),
    }
}

fn remove(doc: &mut Value, path: &Pointer) -> Result<Value, String> {
    let Some((last, parent_tokens)) = path.tokens.split_last() else {
        return Err("cannot remove the whole document".to_string());
    };
    let missing = |e: String| format!("cannot remove '{}': {e}", path.text);
    match resolve_mut(doc, parent_tokens).map_err(missing)? {
        Value::Object(map) => map
            .shift_remove(last)
            .ok_or_else(|| missing(format!("member '{last}' does not exist"))),
        Value::Array(items) => {
            let i = array_index(last, items.len(), false).map_err(missing)?;
            Ok(items.remove(i))
        }
        _ => Err(missing("its parent is a scalar value".to_string())),
    }
}

/// One decoded operation, borrowing its value from the patch document.
enum Op<'p> {
    Add { path: Pointer, value: &'p Value },
    Remove { path: Pointer },
    Replace { path: Pointer, value: &'p Value },
    Move { from: Pointer, path: Pointer },
    Copy { from: Pointer, path: Pointer },
    Test { path: Pointer, value: &'p Value },
}

impl Op<'_> {
    fn name(&self) -> &'static str {
        match self {
            Op::Add { .. } => "add",
            Op::Remove { .. } => "remove",
            Op::Replace { .. } => "replace",
            Op::Move { .. } => "move",
            Op::Copy { .. } => "copy",
            Op::Test { .. } => "test",
        }
    }
}

fn decode(entry: &Value) -> Result<Op<'_>, PatchError> {
    let obj = entry
        .as_object()
        .ok_or_else(|| PatchError::malformed("an operation must be a JSON object"))?;
    let pointer = |member: &str| -> Result<Pointer, PatchError> {
        let text = obj.get(member).and_then(Value::as_str).ok_or_else(|| {
            PatchError::malformed(format!("'{member}' is missing or not a string"))
        })?;
        Pointer::parse(text).map_err(PatchError::malformed)
    };
    let value = || {
        obj.get("value")
            .ok_or_else(|| PatchError::malformed("'value' is missing"))
    };
    let op = obj
        .get("op")
        .and_then(Value::as_str)
        .ok_or_else(|| PatchError::malformed("'op' is missing or not a string"))?;
    Ok(match op {
        "add" => Op::Add {
            path: pointer("path")?,
            value: value()?,
        },
        "remove" => Op::Remove {
            path: pointer("path")?,
        },
        "replace" => Op::Replace {
            path: pointer("path")?,
            value: value()?,
        },
        "move" => Op::Move {
            from: pointer("from")?,
            path: pointer("path")?,
        },
        "copy" => Op::Copy {
            from: pointer("from")?,
            path: pointer("path")?,
        },
        "test" => Op::Test {
            path: pointer("path")?,
            value: value()?,
        },
        other => {
            return Err(PatchError::malformed(format!(
                "unknown op '{other}' (expected add, remove, replace, move, copy or test)"
            )))
        }
    })
}

fn check_depth(path: &Pointer, value: &Value) -> Result<(), String> {
    if path.tokens.len() + depth(value) > MAX_RESULT_DEPTH {
        return Err(format!(
            "the result would nest deeper than {MAX_RESULT_DEPTH} levels"
        ));
    }
    Ok(())
}

fn apply(doc: &mut Value, op: &Op<'_>, nodes: &mut usize) -> Result<(), String> {
    match op {
        Op::Add { path, value } => {
            check_depth(path, value)?;
            add(doc, path, (*value).clone())
        }
        Op::Remove { path } => remove(doc, path).map(drop),
        Op::Replace { path, value } => {
            check_depth(path, value)?;
            let target = resolve_mut(doc, &path.tokens)
                .map_err(|e| format!("cannot replace '{}': {e}", path.text))?;
            *target = (*value).clone();
            Ok(())
        }
        Op::Move { from, path } => {
            if from.is_proper_prefix_of(path) {
                return Err(format!(
                    "cannot move '{}' into one of its own children ('{}')",
                    from.text, path.text
                ));
            }
            let moved = resolve(doc, &from.tokens)
                .map_err(|e| format!("cannot move from '{}': {e}", from.text))?;
            check_depth(path, moved)?;
            if from == path {
                return Ok(());
            }
            let value = remove(doc, from)?;
            add(doc, path, value)
        }
        Op::Copy { from, path } => {
            let source = resolve(doc, &from.tokens)
                .map_err(|e| format!("cannot copy from '{}': {e}", from.text))?;
            check_depth(path, source)?;
            *nodes = nodes.saturating_add(node_count(source));
            if *nodes > MAX_RESULT_NODES {
                return Err(format!(
                    "the result would hold more than {MAX_RESULT_NODES} JSON values"
                ));
            }
            let copied = source.clone();
            add(doc, path, copied)
        }
        Op::Test { path, value } => {
            let actual = resolve(doc, &path.tokens)
                .map_err(|e| format!("test of '{}' failed: {e}", path.text))?;
            if json_equal(actual, value) {
                Ok(())
            } else {
                // The actual value is not echoed: the message may reach a client whose access
                // to the resource is narrower than the patch's reach.
                Err(format!(
                    "test of '{}' failed: the value there is not {}",
                    path.text,
                    abbreviate(value)
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok(doc: Value, patch: Value) -> Value {
        apply_json_patch(&doc, &patch).unwrap()
    }

    fn err(doc: Value, patch: Value) -> PatchError {
        apply_json_patch(&doc, &patch).unwrap_err()
    }

    #[test]
    fn add_object_member_and_array_elements() {
        assert_eq!(
            ok(
                json!({"foo": "bar"}),
                json!([{"op": "add", "path": "/baz", "value": "qux"}])
            ),
            json!({"foo": "bar", "baz": "qux"})
        );
        assert_eq!(
            ok(
                json!({"foo": ["bar", "baz"]}),
                json!([{"op": "add", "path": "/foo/1", "value": "qux"}])
            ),
            json!({"foo": ["bar", "qux", "baz"]})
        );
        assert_eq!(
            ok(
                json!({"foo": ["bar"]}),
                json!([{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}])
            ),
            json!({"foo": ["bar", ["abc", "def"]]})
        );
        assert_eq!(
            ok(
                json!({"foo": ["bar"]}),
                json!([{"op": "add", "path": "/foo/1", "value": 1, "xyz": 9}])
            ),
            json!({"foo": ["bar", 1]})
        );
    }

    #[test]
    fn add_replaces_an_existing_member_in_place() {
        let out = ok(
            json!({"a": 1, "b": 2, "c": 3}),
            json!([{"op": "add", "path": "/b", "value": {"x": {}}}]),
        );
        assert_eq!(out, json!({"a": 1, "b": {"x": {}}, "c": 3}));
        let keys: Vec<_> = out.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["a", "b", "c"]);
    }

    #[test]
    fn add_at_root_replaces_document() {
        let out = ok(
            json!({"resourceType": "Patient", "id": "p"}),
            json!([{"op": "add", "path": "", "value": {"resourceType": "Patient", "id": "p", "active": true}}]),
        );
        assert_eq!(out["active"], json!(true));
    }

    #[test]
    fn add_does_not_create_missing_parents_or_go_past_the_end() {
        let e = err(
            json!({"q": {"bar": 2}}),
            json!([{"op": "add", "path": "/a/b", "value": 1}]),
        );
        assert!(!e.is_malformed());
        assert!(e.message().starts_with("operation 1 (add):"), "{e}");
        err(
            json!({"a": [1]}),
            json!([{"op": "add", "path": "/a/2", "value": 1}]),
        );
        err(
            json!({"a": "s"}),
            json!([{"op": "add", "path": "/a/b", "value": 1}]),
        );
    }

    #[test]
    fn remove_members_and_elements() {
        assert_eq!(
            ok(
                json!({"baz": "qux", "foo": "bar"}),
                json!([{"op": "remove", "path": "/baz"}])
            ),
            json!({"foo": "bar"})
        );
        assert_eq!(
            ok(
                json!({"foo": ["bar", "qux", "baz"]}),
                json!([{"op": "remove", "path": "/foo/1"}])
            ),
            json!({"foo": ["bar", "baz"]})
        );
        let e = err(json!({"a": 1}), json!([{"op": "remove", "path": "/b"}]));
        assert!(e.message().contains("does not exist"), "{e}");
        err(json!({"a": [1]}), json!([{"op": "remove", "path": "/a/1"}]));
        err(json!({"a": [1]}), json!([{"op": "remove", "path": "/a/-"}]));
        err(json!({"a": 1}), json!([{"op": "remove", "path": ""}]));
    }

    #[test]
    fn replace_existing_only() {
        assert_eq!(
            ok(
                json!({"baz": "qux", "foo": "bar"}),
                json!([{"op": "replace", "path": "/baz", "value": "boo"}])
            ),
            json!({"baz": "boo", "foo": "bar"})
        );
        assert_eq!(
            ok(
                json!({"a": [1, 2]}),
                json!([{"op": "replace", "path": "/a/0", "value": 9}])
            ),
            json!({"a": [9, 2]})
        );
        let e = err(
            json!({"a": 1}),
            json!([{"op": "replace", "path": "/b", "value": 2}]),
        );
        assert!(!e.is_malformed());
    }

    #[test]
    fn move_values_and_array_elements() {
        assert_eq!(
            ok(
                json!({"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}}),
                json!([{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}])
            ),
            json!({"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}})
        );
        assert_eq!(
            ok(
                json!({"foo": ["all", "grass", "cows", "eat"]}),
                json!([{"op": "move", "from": "/foo/1", "path": "/foo/3"}])
            ),
            json!({"foo": ["all", "cows", "eat", "grass"]})
        );
        assert_eq!(
            ok(
                json!({"a": 1}),
                json!([{"op": "move", "from": "/a", "path": "/a"}])
            ),
            json!({"a": 1})
        );
        let e = err(
            json!({"a": {"b": 1}}),
            json!([{"op": "move", "from": "/a", "path": "/a/b/c"}]),
        );
        assert!(e.message().contains("own children"), "{e}");
        err(
            json!({"a": 1}),
            json!([{"op": "move", "from": "/x", "path": "/y"}]),
        );
    }

    #[test]
    fn copy_values() {
        assert_eq!(
            ok(
                json!({"a": {"b": [1]}}),
                json!([{"op": "copy", "from": "/a/b", "path": "/c"}])
            ),
            json!({"a": {"b": [1]}, "c": [1]})
        );
        err(
            json!({"a": 1}),
            json!([{"op": "copy", "from": "/x", "path": "/y"}]),
        );
    }

    #[test]
    fn copy_cannot_blow_up_the_document() {
        let ops: Vec<Value> = (0..40)
            .map(|i| json!({"op": "copy", "from": "", "path": format!("/k{i}")}))
            .collect();
        let e = err(json!({"a": [1, 2, 3]}), Value::Array(ops));
        assert!(e.message().contains("more than"), "{e}");
    }

    #[test]
    fn results_cannot_nest_without_bound() {
        let mut deep = json!(1);
        for _ in 0..MAX_RESULT_DEPTH {
            deep = Value::Array(vec![deep]);
        }
        let e = err(
            json!({}),
            json!([{"op": "add", "path": "/x", "value": deep}]),
        );
        assert!(e.message().contains("deeper"), "{e}");
        // Copying a document into its own deepest point doubles its depth each time.
        let ops: Vec<Value> = (0..9)
            .map(|k| json!({"op": "copy", "from": "", "path": "/a".repeat(1 << k)}))
            .collect();
        let e = err(json!({"a": 1}), Value::Array(ops));
        assert!(e.message().contains("deeper"), "{e}");
    }

    #[test]
    fn test_op_succeeds_and_fails() {
        let doc = json!({"baz": "qux", "foo": ["a", 2, "c"], "n": 1});
        let patch: Value = serde_json::from_str(
            r#"[{"op": "test", "path": "/baz", "value": "qux"},
                {"op": "test", "path": "/foo/1", "value": 2},
                {"op": "test", "path": "/n", "value": 1.0},
                {"op": "test", "path": "/foo", "value": ["a", 2, "c"]}]"#,
        )
        .unwrap();
        assert_eq!(ok(doc.clone(), patch), doc);
        let e = err(
            json!({"baz": "qux"}),
            json!([{"op": "test", "path": "/baz", "value": "bar"}]),
        );
        assert!(!e.is_malformed());
        assert!(
            e.message()
                .starts_with("operation 1 (test): test of '/baz' failed"),
            "{e}"
        );
        err(
            json!({"/": 9, "~1": 10}),
            json!([{"op": "test", "path": "/~01", "value": "10"}]),
        );
        err(
            json!({"a": 1}),
            json!([{"op": "test", "path": "/b", "value": 1}]),
        );
    }

    #[test]
    fn pointer_escapes() {
        let doc = json!({"/": 9, "~1": 10, "a/b": {"m~n": 1}});
        ok(
            doc.clone(),
            json!([{"op": "test", "path": "/~01", "value": 10}]),
        );
        ok(
            doc.clone(),
            json!([{"op": "test", "path": "/~1", "value": 9}]),
        );
        ok(
            doc.clone(),
            json!([{"op": "test", "path": "/a~1b/m~0n", "value": 1}]),
        );
        let out = ok(
            json!({}),
            json!([{"op": "add", "path": "/x~1y", "value": 1}]),
        );
        assert_eq!(out, json!({"x/y": 1}));
        let e = err(doc, json!([{"op": "test", "path": "/~2", "value": 1}]));
        assert!(e.is_malformed());
        assert_eq!(Pointer::parse("/").unwrap().tokens, [""]);
    }

    #[test]
    fn array_indexes_are_strict() {
        err(
            json!({"a": [1, 2]}),
            json!([{"op": "test", "path": "/a/01", "value": 2}]),
        );
        err(
            json!({"a": [1, 2]}),
            json!([{"op": "test", "path": "/a/+1", "value": 2}]),
        );
        err(
            json!({"a": []}),
            json!([{"op": "test", "path": "/a/0", "value": 2}]),
        );
        err(
            json!({"a": [1]}),
            json!([{"op": "test", "path": "/a/99999999999999999999999", "value": 2}]),
        );
    }

    #[test]
    fn failure_leaves_input_unchanged() {
        let doc = json!({"resourceType": "Patient", "id": "p", "active": true});
        let before = doc.clone();
        let e = apply_json_patch(
            &doc,
            &json!([
                {"op": "replace", "path": "/active", "value": false},
                {"op": "test", "path": "/active", "value": true}
            ]),
        )
        .unwrap_err();
        assert!(e.message().starts_with("operation 2 (test)"), "{e}");
        assert_eq!(doc, before);
    }

    #[test]
    fn malformed_documents() {
        let doc = json!({"a": 1});
        for patch in [
            json!({"op": "add"}),
            json!([1]),
            json!([{"path": "/a"}]),
            json!([{"op": "frobnicate", "path": "/a"}]),
            json!([{"op": "add", "path": "/a"}]),
            json!([{"op": "add", "path": 3, "value": 1}]),
            json!([{"op": "move", "path": "/a"}]),
            json!([{"op": "remove", "path": "a"}]),
        ] {
            let e = apply_json_patch(&doc, &patch).unwrap_err();
            assert!(e.is_malformed(), "{patch}: {e}");
        }
        // A malformed later operation wins over an earlier failing test.
        let e = err(
            doc,
            json!([{"op": "test", "path": "/a", "value": 2}, {"op": "nope", "path": "/a"}]),
        );
        assert!(e.is_malformed());
        assert!(e.message().starts_with("operation 2 (nope)"), "{e}");
    }

    #[test]
    fn add_null_value_is_allowed() {
        assert_eq!(
            ok(
                json!({}),
                json!([{"op": "add", "path": "/a", "value": null}])
            ),
            json!({"a": null})
        );
    }

    #[test]
    fn refuses_identity_changes() {
        let doc = json!({"resourceType": "Patient", "id": "p"});
        let e = err(
            doc.clone(),
            json!([{"op": "replace", "path": "/id", "value": "q"}]),
        );
        assert!(!e.is_malformed());
        assert!(e.message().contains("'id'"), "{e}");
        let e = err(
            doc.clone(),
            json!([{"op": "replace", "path": "/resourceType", "value": "Group"}]),
        );
        assert!(e.message().contains("resourceType"), "{e}");
        err(doc.clone(), json!([{"op": "remove", "path": "/id"}]));
        err(doc, json!([{"op": "replace", "path": "", "value": [1]}]));
    }

    #[test]
    fn deep_pointer_is_refused() {
        let path = "/a".repeat(MAX_POINTER_TOKENS + 1);
        let e = err(json!({}), json!([{"op": "remove", "path": path}]));
        assert!(e.is_malformed());
    }
}
