//! AuditEvent search: the audit trail is a table of its own (`store::audit_keys`), one row per
//! event with its searchable values as keys under one GIN index, so a parameter compiles to a
//! condition on that row's keys, not to a subquery over the index tables. Equality (tokens,
//! references, identifiers, uris) reads the index; prefixes (`system|`, strings, `:below`) are
//! checked on the keys of the rows the other conditions leave. Chains, `_has` and `:missing`
//! are not offered on AuditEvent.

use fhir_model::index::{normalize_string, parse_reference};
use fhir_model::search_params::{self, ParamType, SearchParamDef};
use store::audit_keys as keys;
use store::Bind;

use crate::clause::{bad, like_escape, Compiler};
use crate::text::{split_unescaped, unescape};
use crate::SearchError;

/// The resource type kept in the audit trail.
pub const AUDIT_TYPE: &str = "AuditEvent";

/// What one value of a parameter matches: a key exactly, or keys starting with a prefix.
enum Match {
    Key(String),
    Prefix(String),
    /// A `LIKE` pattern over the keys, already escaped.
    Pattern(String),
}

/// Compiles `name=value` over the audit row `r`.
pub(crate) fn parameter(
    compiler: &mut Compiler<'_>,
    name: &str,
    value: &str,
) -> Result<String, SearchError> {
    if name.starts_with("_has:") || name.contains('.') {
        return Err(SearchError::Unsupported(format!(
            "{name} (AuditEvent has no chains or _has)"
        )));
    }
    let (base, modifier) = match name.split_once(':') {
        Some((b, m)) => (b, Some(m)),
        None => (name, None),
    };
    match (base, modifier) {
        ("_id" | "_lastUpdated", None) => {
            return compiler.parameter(&[AUDIT_TYPE.to_string()], name, value)
        }
        ("date", None) => {
            let alternatives = split_unescaped(value, ',')
                .iter()
                .filter(|v| !v.is_empty())
                .map(|v| compiler.instant_condition("date", v, "r.recorded"))
                .collect::<Result<Vec<_>, _>>()?;
            if alternatives.is_empty() {
                return Err(bad("date", value, "a value is required"));
            }
            return Ok(format!("({})", alternatives.join(" OR ")));
        }
        _ => {}
    }
    let def =
        search_params::lookup(AUDIT_TYPE, base).ok_or_else(|| SearchError::UnknownParameter {
            resource_type: AUDIT_TYPE.into(),
            param: name.to_string(),
        })?;
    let values: Vec<String> = split_unescaped(value, ',')
        .into_iter()
        .filter(|v| !v.is_empty())
        .collect();
    if values.is_empty() {
        return Err(bad(base, value, "a value is required"));
    }
    let negate = match (def.kind, modifier) {
        (ParamType::Token, Some("not")) => true,
        (_, Some("missing")) => {
            return Err(SearchError::Unsupported(format!("{name} on AuditEvent")))
        }
        _ => false,
    };
    let mut matches = Vec::new();
    for v in &values {
        if v.len() > store::MAX_INDEXED_BYTES {
            return Err(bad(
                base,
                &format!("{}…", &v[..v.floor_char_boundary(40)]),
                &format!(
                    "a search value may be at most {} bytes long",
                    store::MAX_INDEXED_BYTES
                ),
            ));
        }
        matches.push(match def.kind {
            ParamType::Token => token(base, modifier, v)?,
            ParamType::Reference => reference(def, modifier, v, compiler.base_url)?,
            ParamType::String => string(base, modifier, v)?,
            ParamType::Uri => uri(base, modifier, v)?,
            _ => return Err(SearchError::Unsupported(format!("{name} on AuditEvent"))),
        });
    }
    let cond = any_of(compiler, matches);
    Ok(if negate { format!("NOT {cond}") } else { cond })
}

/// The condition that the row has one of the matches: exact keys in one indexed overlap,
/// routine keys (`store::audit_keys::ROUTINE`) on the row's unindexed `routine` column, or on
/// `keys` for rows written before routine keys had a column of their own, prefixes and
/// patterns on both.
fn any_of(compiler: &mut Compiler<'_>, matches: Vec<Match>) -> String {
    let mut exact = Vec::new();
    let mut routine = Vec::new();
    let mut patterns = Vec::new();
    for m in matches {
        match m {
            Match::Key(k) if keys::is_routine(&k) => routine.push(k),
            Match::Key(k) => exact.push(k),
            Match::Prefix(p) => patterns.push(format!("{}%", like_escape(&p))),
            Match::Pattern(p) => patterns.push(p),
        }
    }
    let mut parts = Vec::new();
    match exact.len() {
        0 => {}
        1 => parts.push(format!(
            "r.keys @> {}",
            compiler.bind(Bind::TextArray(exact))
        )),
        _ => parts.push(format!(
            "r.keys && {}",
            compiler.bind(Bind::TextArray(exact))
        )),
    }
    if !routine.is_empty() {
        let r = compiler.bind(Bind::TextArray(routine));
        parts.push(format!("r.routine && {r} OR r.keys && {r}"));
    }
    if !patterns.is_empty() {
        let p = compiler.bind(Bind::TextArray(patterns));
        parts.push(format!(
            "EXISTS (SELECT 1 FROM unnest(r.keys || r.routine) k WHERE k LIKE ANY({p}))"
        ));
    }
    format!("({})", parts.join(" OR "))
}

fn token(code: &str, modifier: Option<&str>, v: &str) -> Result<Match, SearchError> {
    if let Some(m) = modifier.filter(|m| *m != "not") {
        return Err(SearchError::Unsupported(format!(
            "{code}:{m} on AuditEvent"
        )));
    }
    let parts = split_unescaped(v, '|');
    Ok(match parts.as_slice() {
        [c] => Match::Key(keys::token_code_key(code, &unescape(c)?)),
        [s, c] if s.is_empty() && c.is_empty() => {
            return Err(bad(code, v, "a token is [system|]code"))
        }
        [s, c] if c.is_empty() => Match::Prefix(keys::token_system_prefix(code, &unescape(s)?)),
        [s, c] => Match::Key(keys::token_system_key(code, &unescape(s)?, &unescape(c)?)),
        _ => return Err(bad(code, v, "a token is [system|]code")),
    })
}

fn reference(
    def: &SearchParamDef,
    modifier: Option<&str>,
    v: &str,
    base_url: &str,
) -> Result<Match, SearchError> {
    let code = def.code.as_str();
    if modifier == Some("identifier") {
        let parts = split_unescaped(v, '|')
            .iter()
            .map(|p| unescape(p))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(match parts.as_slice() {
            [value] => Match::Key(keys::identifier_value_key(code, value)),
            [s, value] if s.is_empty() && value.is_empty() => {
                return Err(bad(code, v, "an identifier is [system|]value"))
            }
            [s, value] if value.is_empty() => {
                Match::Prefix(keys::identifier_system_prefix(code, s))
            }
            [s, value] => Match::Key(keys::identifier_key(code, s, value)),
            _ => return Err(bad(code, v, "an identifier is [system|]value")),
        });
    }
    let v = unescape(v)?;
    match modifier {
        Some(t) if fhir_model::elements::is_resource_type(t) => {
            if v.contains('/') {
                return Err(bad(code, &v, "with a :Type modifier the value is an id"));
            }
            Ok(Match::Key(keys::reference_key(code, &format!("{t}/{v}"))))
        }
        Some(m) => Err(SearchError::Unsupported(format!(
            "{code}:{m} on AuditEvent"
        ))),
        None => {
            let local = v
                .strip_prefix(base_url)
                .and_then(|rest| rest.strip_prefix('/'))
                .map(str::to_string);
            let text = local.as_deref().unwrap_or(&v);
            if text.starts_with("http://")
                || text.starts_with("https://")
                || text.starts_with("urn:")
            {
                let url = text.split('|').next().unwrap_or(text);
                return Ok(Match::Key(keys::reference_key(code, url)));
            }
            if text.contains('/') {
                let parsed = parse_reference(text);
                return match (parsed.target_type, parsed.target_id) {
                    (Some(t), Some(id)) => {
                        Ok(Match::Key(keys::reference_key(code, &format!("{t}/{id}"))))
                    }
                    _ => Err(bad(code, &v, "a reference is [Type/]id or a URL")),
                };
            }
            Ok(match def.targets.as_slice() {
                [only] => Match::Key(keys::reference_key(code, &format!("{only}/{text}"))),
                // An id alone, of any of the parameter's target types.
                _ => Match::Pattern(format!(
                    "{}%/{}",
                    like_escape(&keys::param_prefix(code)),
                    like_escape(text)
                )),
            })
        }
    }
}

fn string(code: &str, modifier: Option<&str>, v: &str) -> Result<Match, SearchError> {
    let norm = normalize_string(&unescape(v)?);
    if norm.is_empty() {
        return Err(bad(code, v, "a value with letters or digits"));
    }
    let prefix = like_escape(&keys::param_prefix(code));
    Ok(match modifier {
        None => Match::Prefix(keys::text_key(code, &norm)),
        Some("contains") => Match::Pattern(format!("{prefix}%{}%", like_escape(&norm))),
        Some(m) => {
            return Err(SearchError::Unsupported(format!(
                "{code}:{m} on AuditEvent"
            )))
        }
    })
}

fn uri(code: &str, modifier: Option<&str>, v: &str) -> Result<Match, SearchError> {
    let v = unescape(v)?;
    Ok(match modifier {
        None => Match::Key(keys::text_key(code, &v)),
        Some("below") => Match::Prefix(keys::text_key(code, &v)),
        Some(m) => {
            return Err(SearchError::Unsupported(format!(
                "{code}:{m} on AuditEvent"
            )))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(name: &str, value: &str) -> Result<(String, Vec<Bind>), SearchError> {
        let mut binds = vec![Bind::TextArray(vec![AUDIT_TYPE.into()])];
        let mut c = Compiler {
            binds: &mut binds,
            base_url: "http://h/fhir",
            alias: "r".into(),
            types: "$1".into(),
            depth: 0,
            access: None,
            fence: false,
        };
        let sql = parameter(&mut c, name, value)?;
        Ok((sql, binds))
    }

    #[test]
    fn equality_reads_the_key_index() {
        let (sql, binds) = compile("patient", "p1").unwrap();
        assert_eq!(sql, "(r.keys @> $2)");
        assert_eq!(
            binds[1],
            Bind::TextArray(vec![keys::reference_key("patient", "Patient/p1")])
        );
        let (sql, _) = compile("action", "C,D").unwrap();
        assert_eq!(sql, "(r.keys && $2)");
    }

    #[test]
    fn routine_values_are_checked_on_both_columns_unindexed() {
        let (sql, _) = compile("action", "R,E").unwrap();
        assert_eq!(sql, "(r.routine && $2 OR r.keys && $2)");
        let (sql, binds) = compile("action", "R,D").unwrap();
        assert_eq!(sql, "(r.keys @> $2 OR r.routine && $3 OR r.keys && $3)");
        assert_eq!(
            binds[1],
            Bind::TextArray(vec![keys::token_code_key("action", "D")])
        );
        let (sql, binds) = compile("subtype:not", "http://x|read").unwrap();
        assert_eq!(sql, "NOT (r.routine && $2 OR r.keys && $2)");
        assert_eq!(
            binds[1],
            Bind::TextArray(vec![keys::token_system_key("subtype", "http://x", "read")])
        );
    }

    #[test]
    fn prefixes_and_patterns_check_the_keys() {
        let (sql, binds) = compile("agent-name", "smi").unwrap();
        assert!(sql.contains("LIKE ANY($2)"), "{sql}");
        assert_eq!(
            binds[1],
            Bind::TextArray(vec![format!("agent-name{}smi%", keys::SEP)])
        );
        let (_, binds) = compile("entity", "50%_x").unwrap();
        assert_eq!(
            binds[1],
            Bind::TextArray(vec![format!("entity{}%/50\\%\\_x", keys::SEP)])
        );
    }

    #[test]
    fn unsupported_forms_are_reported() {
        for (n, v) in [
            ("patient.name", "x"),
            ("_has:Patient:link:name", "x"),
            ("patient:missing", "true"),
            ("agent-name:exact", "x"),
        ] {
            assert!(
                matches!(compile(n, v), Err(SearchError::Unsupported(_))),
                "{n}"
            );
        }
        assert!(matches!(
            compile("nope", "x"),
            Err(SearchError::UnknownParameter { .. })
        ));
        assert!(matches!(
            compile("date", "notadate"),
            Err(SearchError::BadValue { .. })
        ));
    }
}
