//! AuditEvent search: the audit trail is a table of its own (`store::audit_keys`), one row per
//! event with its searchable values as keys, so a parameter compiles to a condition on that
//! row's keys, not to a subquery over the index tables. Rows stored whole keep their keys
//! under a GIN index; the request path's narrow rows do not (indexing them was most of what
//! writing an event cost): for them an equality key adds the condition it implies on one of a
//! few indexed columns ([`Anchor`], migration `audit_typed_indexes`), which finds the
//! candidates its key is then checked on. Prefixes (`system|`, strings, `:below`) are checked
//! on the keys of the rows the other conditions leave. Chains, `_has` and `:missing` are not
//! offered on AuditEvent.

use fhir_model::access::{AUDIT_FLAG_SYSTEM, REQUEST_ID_SYSTEM, USER_ID_SYSTEM};
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
    /// A key, and what it implies on a narrow row's indexed columns (none: only its keys).
    Key(String, Option<Anchor>),
    Prefix(String),
    /// A `LIKE` pattern over the keys, already escaped.
    Pattern(String),
}

/// What a narrow row whose keys hold a key has in an indexed column: a necessary condition,
/// so adding it finds the same rows, by an index.
#[derive(Debug, Clone, PartialEq)]
enum Anchor {
    /// The patient's id is in `compartments` (the patients its agent and entities name, as
    /// the `patient` parameter's keys and the `entity` keys of Patients are).
    Compartment(String),
    /// As [`Anchor::Compartment`], for a `patient` key: a narrow row's compartments are exactly
    /// the ids of its `patient` keys, so the condition decides alone and the keys are not read.
    Patient(String),
    /// The row's agent reference key (`agent_key`).
    AgentKey(String),
    /// The caller's user id (`user_sub`).
    UserSub(String),
    /// The request id (`request_id`).
    Request(String),
    /// Flagged for review (`review_reason` present).
    Flagged,
}

impl Anchor {
    fn condition(&self, compiler: &mut Compiler<'_>) -> String {
        match self {
            Anchor::Compartment(id) | Anchor::Patient(id) => format!(
                "r.compartments @> {}",
                compiler.bind(Bind::TextArray(vec![id.clone()]))
            ),
            Anchor::AgentKey(k) => {
                format!("r.agent_key = {}", compiler.bind(Bind::Text(k.clone())))
            }
            Anchor::UserSub(v) => format!("r.user_sub = {}", compiler.bind(Bind::Text(v.clone()))),
            Anchor::Request(v) => {
                format!("r.request_id = {}", compiler.bind(Bind::Text(v.clone())))
            }
            Anchor::Flagged => "r.flagged".to_string(),
        }
    }

    /// Whether the condition is the key's own on a narrow row, not only implied by it.
    fn exact(&self) -> bool {
        matches!(self, Anchor::Patient(_))
    }
}

/// The anchor of a reference key `code·Type/id` on a narrow row.
fn reference_anchor(code: &str, key: &str, target_type: &str, id: &str) -> Option<Anchor> {
    match (code, target_type) {
        ("patient", "Patient") => Some(Anchor::Patient(id.to_string())),
        ("entity", "Patient") => Some(Anchor::Compartment(id.to_string())),
        ("agent", _) => Some(Anchor::AgentKey(key.to_string())),
        _ => None,
    }
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

/// The condition that the row has one of the matches: exact keys in one overlap (by the GIN
/// index for whole rows, by their anchors for narrow rows), routine keys (`store::audit_keys::ROUTINE`) on the row's unindexed `routine` column, or on
/// `keys` for rows written before routine keys had a column of their own, prefixes and
/// patterns on both.
fn any_of(compiler: &mut Compiler<'_>, matches: Vec<Match>) -> String {
    let mut exact = Vec::new();
    let mut anchors = Vec::new();
    let mut routine = Vec::new();
    let mut patterns = Vec::new();
    for m in matches {
        match m {
            Match::Key(k, _) if keys::is_routine(&k) => routine.push(k),
            Match::Key(k, anchor) => {
                exact.push(k);
                anchors.push(anchor);
            }
            Match::Prefix(p) => patterns.push(format!("{}%", like_escape(&p))),
            Match::Pattern(p) => patterns.push(p),
        }
    }
    let mut parts = Vec::new();
    if !exact.is_empty() {
        let op = if exact.len() == 1 { "@>" } else { "&&" };
        let k = compiler.bind(Bind::TextArray(exact));
        let anchors: Option<Vec<Anchor>> = anchors.into_iter().collect();
        parts.push(match anchors {
            Some(mut anchors) => {
                anchors.dedup();
                let exact = anchors.iter().all(Anchor::exact);
                let narrow: Vec<String> = anchors.iter().map(|a| a.condition(compiler)).collect();
                if exact {
                    format!(
                        "(r.whole AND r.keys {op} {k}) OR (NOT r.whole AND ({}))",
                        narrow.join(" OR ")
                    )
                } else {
                    format!(
                        "(r.whole AND r.keys {op} {k}) OR (NOT r.whole AND r.keys {op} {k} AND ({}))",
                        narrow.join(" OR ")
                    )
                }
            }
            None => format!("r.keys {op} {k}"),
        });
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
    let flag = |system: Option<&str>, c: &str| {
        (code == "_tag" && c == "review" && system.is_none_or(|s| s == AUDIT_FLAG_SYSTEM))
            .then_some(Anchor::Flagged)
    };
    Ok(match parts.as_slice() {
        [c] => {
            let c = unescape(c)?;
            Match::Key(keys::token_code_key(code, &c), flag(None, &c))
        }
        [s, c] if s.is_empty() && c.is_empty() => {
            return Err(bad(code, v, "a token is [system|]code"))
        }
        [s, c] if c.is_empty() => Match::Prefix(keys::token_system_prefix(code, &unescape(s)?)),
        [s, c] => {
            let (s, c) = (unescape(s)?, unescape(c)?);
            Match::Key(keys::token_system_key(code, &s, &c), flag(Some(&s), &c))
        }
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
        // A narrow row's only entity identifier is its request id; its agent's, the user's
        // id and the client's.
        let anchor = |system: Option<&str>, value: &str| match (code, system) {
            ("entity", None) => Some(Anchor::Request(value.to_string())),
            ("entity", Some(s)) if s == REQUEST_ID_SYSTEM => {
                Some(Anchor::Request(value.to_string()))
            }
            ("agent", Some(s)) if s == USER_ID_SYSTEM => Some(Anchor::UserSub(value.to_string())),
            _ => None,
        };
        return Ok(match parts.as_slice() {
            [value] => Match::Key(keys::identifier_value_key(code, value), anchor(None, value)),
            [s, value] if s.is_empty() && value.is_empty() => {
                return Err(bad(code, v, "an identifier is [system|]value"))
            }
            [s, value] if value.is_empty() => {
                Match::Prefix(keys::identifier_system_prefix(code, s))
            }
            [s, value] => Match::Key(keys::identifier_key(code, s, value), anchor(Some(s), value)),
            _ => return Err(bad(code, v, "an identifier is [system|]value")),
        });
    }
    let v = unescape(v)?;
    match modifier {
        Some(t) if fhir_model::elements::is_resource_type(t) => {
            if v.contains('/') {
                return Err(bad(code, &v, "with a :Type modifier the value is an id"));
            }
            let key = keys::reference_key(code, &format!("{t}/{v}"));
            let anchor = reference_anchor(code, &key, t, &v);
            Ok(Match::Key(key, anchor))
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
                let key = keys::reference_key(code, url);
                let anchor = (code == "agent").then(|| Anchor::AgentKey(key.clone()));
                return Ok(Match::Key(key, anchor));
            }
            if text.contains('/') {
                let parsed = parse_reference(text);
                return match (parsed.target_type, parsed.target_id) {
                    (Some(t), Some(id)) => {
                        let key = keys::reference_key(code, &format!("{t}/{id}"));
                        let anchor = reference_anchor(code, &key, &t, &id);
                        Ok(Match::Key(key, anchor))
                    }
                    _ => Err(bad(code, &v, "a reference is [Type/]id or a URL")),
                };
            }
            Ok(match def.targets.as_slice() {
                [only] => {
                    let key = keys::reference_key(code, &format!("{only}/{text}"));
                    let anchor = reference_anchor(code, &key, only, text);
                    Match::Key(key, anchor)
                }
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
        None => Match::Key(keys::text_key(code, &v), None),
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
    fn equality_reads_the_key_index_or_a_narrow_rows_anchor() {
        let (sql, binds) = compile("patient", "p1").unwrap();
        assert_eq!(
            sql,
            "((r.whole AND r.keys @> $2) OR (NOT r.whole AND (r.compartments @> $3)))"
        );
        assert_eq!(
            binds[1],
            Bind::TextArray(vec![keys::reference_key("patient", "Patient/p1")])
        );
        assert_eq!(binds[2], Bind::TextArray(vec!["p1".into()]));
        let (sql, _) = compile("action", "C,D").unwrap();
        assert_eq!(sql, "(r.keys && $2)");
        // Every value needs an anchor, or the narrow rows are checked by their keys alone.
        let (sql, _) = compile("entity", "Patient/p1,Observation/o1").unwrap();
        assert_eq!(sql, "(r.keys && $2)");
        for (name, value, anchor) in [
            ("entity", "Patient/p1", "r.compartments @> $3"),
            ("agent", "Practitioner/pr1", "r.agent_key = $3"),
            (
                "agent:identifier",
                &format!("{USER_ID_SYSTEM}|u1"),
                "r.user_sub = $3",
            ),
            ("entity:identifier", "req-1", "r.request_id = $3"),
            (
                "entity:identifier",
                &format!("{REQUEST_ID_SYSTEM}|req-1"),
                "r.request_id = $3",
            ),
            ("_tag", "review", "r.flagged"),
            ("_tag", &format!("{AUDIT_FLAG_SYSTEM}|review"), "r.flagged"),
        ] {
            let (sql, _) = compile(name, value).unwrap();
            assert!(
                sql.ends_with(&format!("AND ({anchor})))")),
                "{name}={value}: {sql}"
            );
        }
        for (name, value) in [
            ("agent:identifier", "u1"),
            ("agent:identifier", "https://x|u1"),
            ("entity:identifier", "https://x|req-1"),
            ("_tag", "https://x|review"),
            ("entity", "Observation/o1"),
        ] {
            let (sql, _) = compile(name, value).unwrap();
            assert!(!sql.contains("r.whole"), "{name}={value}: {sql}");
        }
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
