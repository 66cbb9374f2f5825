//! JSON equality by value, as FHIRPath `=` and JSON Patch `test` both need it, and containment,
//! as a profile's `pattern[x]` needs it.

use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::{Number, Value};

/// Deepest nesting compared by [`json_equal`]; deeper values compare unequal rather than risk
/// exhausting the stack.
const MAX_COMPARE_DEPTH: usize = 512;

/// Equality in the RFC 6902 `test` sense: numbers compare by value (`1` equals `1.0`, which the
/// workspace's `arbitrary_precision` serde_json would otherwise treat as different), object member
/// order is irrelevant, and nothing else is coerced.
pub(crate) fn json_equal(a: &Value, b: &Value) -> bool {
    equal_at(a, b, 0)
}

fn equal_at(a: &Value, b: &Value, depth: usize) -> bool {
    if depth > MAX_COMPARE_DEPTH {
        return false;
    }
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => numbers_equal(x, y),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| equal_at(p, q, depth + 1))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| equal_at(v, w, depth + 1)))
        }
        _ => a == b,
    }
}

/// True when `value` has everything `pattern` has: primitives equal as [`json_equal`] has them,
/// every member of a pattern object is in the value object and contains the pattern's, and
/// every item of a pattern array is contained by some item of the value array (FHIR
/// `pattern[x]`: extra content in the instance is allowed).
pub(crate) fn json_contains(value: &Value, pattern: &Value) -> bool {
    contains_at(value, pattern, 0)
}

fn contains_at(value: &Value, pattern: &Value, depth: usize) -> bool {
    if depth > MAX_COMPARE_DEPTH {
        return false;
    }
    match (value, pattern) {
        (Value::Object(v), Value::Object(p)) => p
            .iter()
            .all(|(k, pv)| v.get(k).is_some_and(|vv| contains_at(vv, pv, depth + 1))),
        (Value::Array(v), Value::Array(p)) => p
            .iter()
            .all(|pv| v.iter().any(|vv| contains_at(vv, pv, depth + 1))),
        _ => equal_at(value, pattern, depth),
    }
}

fn numbers_equal(x: &Number, y: &Number) -> bool {
    let (xs, ys) = (x.to_string(), y.to_string());
    if xs == ys {
        return true;
    }
    match (parse_decimal(&xs), parse_decimal(&ys)) {
        (Some(p), Some(q)) => p == q,
        // Beyond Decimal's range: fall back to binary floating point, which is at least
        // order-of-magnitude correct for such numbers.
        _ => match (x.as_f64(), y.as_f64()) {
            (Some(p), Some(q)) => p == q,
            _ => false,
        },
    }
}

fn parse_decimal(text: &str) -> Option<Decimal> {
    if text.contains(['e', 'E']) {
        Decimal::from_scientific(text).ok()
    } else {
        Decimal::from_str(text).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_compare_by_value() {
        let one: Value = serde_json::from_str("1").unwrap();
        let one_point_zero: Value = serde_json::from_str("1.0").unwrap();
        let sci: Value = serde_json::from_str("1e0").unwrap();
        assert!(json_equal(&one, &one_point_zero));
        assert!(json_equal(&one, &sci));
        assert!(!json_equal(&one, &json!(2)));
        assert!(!json_equal(&json!(10), &json!("10")));
    }

    #[test]
    fn objects_ignore_member_order_but_arrays_do_not() {
        assert!(json_equal(
            &json!({"a": 1, "b": [1, 2]}),
            &json!({"b": [1, 2], "a": 1})
        ));
        assert!(!json_equal(&json!([1, 2]), &json!([2, 1])));
        assert!(!json_equal(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
    }

    #[test]
    fn containment_allows_extra_content() {
        let coding = json!({"coding": [{"system": "s", "code": "a", "display": "A"}, {"code": "b"}], "text": "t"});
        assert!(json_contains(
            &coding,
            &json!({"coding": [{"system": "s", "code": "a"}]})
        ));
        assert!(json_contains(
            &coding,
            &json!({"coding": [{"code": "b"}, {"code": "a"}]})
        ));
        assert!(!json_contains(
            &coding,
            &json!({"coding": [{"system": "s", "code": "b"}]})
        ));
        assert!(!json_contains(&coding, &json!({"id": "x"})));
        assert!(!json_contains(&json!("a"), &json!({"code": "a"})));
        let ten: Value = serde_json::from_str("10.0").unwrap();
        assert!(json_contains(&json!({"value": ten}), &json!({"value": 10})));
    }
}
