//! Bounds on the work one search may ask of the database, checked on the decoded query before
//! any SQL is built. Each condition, value and chain level adds a subquery PostgreSQL must plan
//! and run; without bounds a few kilobytes of query string kept a core busy for minutes
//! (issue #13). The statement timeout is the backstop for what these shapes still allow.

use crate::text::split_unescaped;
use crate::SearchError;

/// Longest query (names and values, decoded, form body included), in bytes.
pub const MAX_QUERY_BYTES: usize = 16 * 1024;
/// Most `name=value` pairs, of any kind, in one search.
pub const MAX_PAIRS: usize = 64;
/// Most parameters that become conditions (everything but paging, sorting, includes and output).
pub const MAX_PARAMETERS: usize = 20;
/// Most comma-separated values one parameter may list.
pub const MAX_VALUES_PER_PARAMETER: usize = 100;
/// Most values over all parameters of a search.
pub const MAX_VALUES: usize = 100;
/// Most parameters that chain (`subject.name`) or reverse-chain (`_has:`).
pub const MAX_CHAINED: usize = 4;
/// How deep chains and `_has` may nest in one parameter.
pub const MAX_DEPTH: usize = 3;
/// Most `_include` and `_revinclude` values together.
pub const MAX_INCLUDES: usize = 10;
/// Longest number (after its prefix) a number or quantity value may be.
pub const MAX_NUMBER_CHARS: usize = 64;
/// Largest exponent magnitude of a number in a search value (`1e100`). Decimals are compared
/// exactly, and an exponent is expanded into digits: `1e2147483647` once took gigabytes.
pub const MAX_EXPONENT: u32 = 100;
/// Longest date, dateTime or instant value (after its prefix).
pub const MAX_DATE_CHARS: usize = 64;

/// Parameters that shape the answer rather than select matches.
const CONTROL: &[&str] = &[
    "_count",
    "_total",
    "_sort",
    "_include",
    "_revinclude",
    "_cursor",
    "_type",
    "_format",
    "_pretty",
    "_summary",
    "_elements",
];

fn too_costly(what: String) -> SearchError {
    SearchError::TooCostly(what)
}

/// Checks the shape of a whole query against the limits above.
pub fn check_query(params: &[(String, String)]) -> Result<(), SearchError> {
    if params.len() > MAX_PAIRS {
        return Err(too_costly(format!(
            "the search has {} parameters in all; at most {MAX_PAIRS} are allowed",
            params.len()
        )));
    }
    let bytes: usize = params.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
    if bytes > MAX_QUERY_BYTES {
        return Err(too_costly(format!(
            "the search is {bytes} bytes long; at most {MAX_QUERY_BYTES} are allowed"
        )));
    }
    let (mut conditions, mut chained, mut includes, mut values) = (0, 0, 0, 0);
    for (name, value) in params {
        let base = name.split([':', '.']).next().unwrap_or(name);
        if base == "_include" || base == "_revinclude" {
            includes += 1;
            if includes > MAX_INCLUDES {
                return Err(too_costly(format!(
                    "the search has more than {MAX_INCLUDES} _include and _revinclude values"
                )));
            }
        }
        if CONTROL.contains(&base) || base == "_explain" {
            continue;
        }
        conditions += 1;
        if conditions > MAX_PARAMETERS {
            return Err(too_costly(format!(
                "the search has more than {MAX_PARAMETERS} search parameters"
            )));
        }
        let depth = chain_depth(name);
        if depth > MAX_DEPTH {
            return Err(too_costly(format!(
                "'{name}' nests chains and _has {depth} deep; at most {MAX_DEPTH} levels are allowed"
            )));
        }
        if depth > 0 {
            chained += 1;
            if chained > MAX_CHAINED {
                return Err(too_costly(format!(
                    "the search has more than {MAX_CHAINED} chained or _has parameters"
                )));
            }
        }
        let n = split_unescaped(value, ',').len();
        if n > MAX_VALUES_PER_PARAMETER {
            return Err(too_costly(format!(
                "'{name}' lists {n} values; at most {MAX_VALUES_PER_PARAMETER} are allowed"
            )));
        }
        values += n;
        if values > MAX_VALUES {
            return Err(too_costly(format!(
                "the search lists more than {MAX_VALUES} values in all"
            )));
        }
    }
    Ok(())
}

/// How many chain (`.`) and reverse-chain (`_has:`) levels a parameter name has.
pub fn chain_depth(name: &str) -> usize {
    name.matches("_has:").count() + name.matches('.').count()
}

/// Checks a number's text (without prefix) for size before it is parsed or bound.
pub fn check_number(code: &str, raw: &str, text: &str) -> Result<(), SearchError> {
    let bad = |reason: String| SearchError::BadValue {
        param: code.to_string(),
        value: raw.chars().take(80).collect(),
        reason,
    };
    if text.len() > MAX_NUMBER_CHARS {
        return Err(bad(format!(
            "a number of at most {MAX_NUMBER_CHARS} characters"
        )));
    }
    if let Some(i) = text.find(['e', 'E']) {
        let exp = text[i + 1..].trim_start_matches(['+', '-']);
        let ok = !exp.is_empty()
            && exp.len() <= 4
            && exp.bytes().all(|b| b.is_ascii_digit())
            && exp.parse::<u32>().is_ok_and(|e| e <= MAX_EXPONENT);
        if !ok {
            return Err(bad(format!(
                "a number whose exponent is between -{MAX_EXPONENT} and {MAX_EXPONENT}"
            )));
        }
    }
    Ok(())
}

/// Checks a date's text (without prefix) for size before it is parsed.
pub fn check_date(code: &str, raw: &str, text: &str) -> Result<(), SearchError> {
    if text.len() > MAX_DATE_CHARS {
        return Err(SearchError::BadValue {
            param: code.to_string(),
            value: raw.chars().take(80).collect(),
            reason: format!("a date of at most {MAX_DATE_CHARS} characters"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, String)]) -> Result<(), SearchError> {
        let owned: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        check_query(&owned)
    }

    #[test]
    fn repeated_parameters_are_bounded() {
        let many: Vec<(&str, String)> = (0..=MAX_PARAMETERS)
            .map(|_| ("family", "t".into()))
            .collect();
        assert!(matches!(q(&many), Err(SearchError::TooCostly(_))));
        let some: Vec<(&str, String)> = (0..MAX_PARAMETERS)
            .map(|_| ("family", "t".into()))
            .collect();
        assert!(q(&some).is_ok());
    }

    #[test]
    fn values_are_bounded_per_parameter_and_in_all() {
        let list = |n: usize| vec!["a"; n].join(",");
        assert!(q(&[("family", list(MAX_VALUES_PER_PARAMETER))]).is_ok());
        assert!(q(&[("family", list(MAX_VALUES_PER_PARAMETER + 1))]).is_err());
        assert!(q(&[("family", list(8000))]).is_err());
        let three = vec![("family", list(MAX_VALUES_PER_PARAMETER)); 3];
        assert!(q(&three).is_err());
        // Escaped commas do not separate values.
        assert!(q(&[("family", vec![r"a\,"; 150].join(""))]).is_ok());
    }

    #[test]
    fn length_includes_depth_and_chains_are_bounded() {
        assert!(q(&[("family", "x".repeat(MAX_QUERY_BYTES))]).is_err());
        let inc: Vec<(&str, String)> = (0..=MAX_INCLUDES)
            .map(|_| ("_include", "Observation:subject".into()))
            .collect();
        assert!(q(&inc).is_err());
        assert!(q(&[("subject.organization.partof.partof.name", "x".into())]).is_err());
        assert!(q(&[(
            "_has:Observation:subject:_has:A:b:_has:C:d:_has:E:f:code",
            "x".into()
        )])
        .is_err());
        assert!(q(&[("subject.name", "x".into())]).is_ok());
        let chains: Vec<(&str, String)> = (0..=MAX_CHAINED)
            .map(|_| ("subject.name", "x".into()))
            .collect();
        assert!(q(&chains).is_err());
        let pairs: Vec<(&str, String)> = (0..=MAX_PAIRS)
            .map(|_| ("_format", "json".into()))
            .collect();
        assert!(q(&pairs).is_err());
    }

    #[test]
    fn numbers_and_dates_are_checked_for_size() {
        for ok in ["1", "1e2", "1.5E-100", "-3.25", "1e+100"] {
            assert!(check_number("n", ok, ok).is_ok(), "{ok}");
        }
        for bad in [
            "1e2147483647",
            "1e101",
            "1e",
            "1e-99999",
            "1ex",
            &"9".repeat(65),
        ] {
            assert!(check_number("n", bad, bad).is_err(), "{bad}");
        }
        assert!(check_date("d", "x", &"2".repeat(65)).is_err());
        assert!(check_date("d", "x", "2024-01-01T00:00:00.123456789+01:00").is_ok());
    }
}
