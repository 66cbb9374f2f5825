//! FHIR search syntax to SQL for Invicta. For now: the conditions of conditional interactions
//! (`If-None-Exist`), compiled to a [`store::Filter`] over the index tables. The full R4 search
//! grammar builds on this (see the search issue).
//!
//! **Invariant:** every value from a query is a bind parameter; no client text reaches SQL.

use fhir_model::search_params::{self, ParamType};
use store::{Bind, Filter};

/// Why a query could not be compiled.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SearchError {
    /// The parameter is not defined for the resource type.
    #[error("unknown search parameter '{param}' for {resource_type}")]
    UnknownParameter {
        /// The resource type searched.
        resource_type: String,
        /// The parameter as written.
        param: String,
    },
    /// The parameter exists but this form of it is not supported yet.
    #[error("search parameter '{0}' is not supported in this form")]
    Unsupported(String),
    /// The query is empty or malformed.
    #[error("{0}")]
    Malformed(String),
}

/// Compiles a query string (`identifier=https://fhir.nhs.uk/Id/nhs-number|9434765919&...`) into
/// a filter that is true for the resources matching every parameter.
pub fn compile_condition(resource_type: &str, query: &str) -> Result<Filter, SearchError> {
    let mut filter = Filter::default();
    let mut parts = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair
            .split_once('=')
            .ok_or_else(|| SearchError::Malformed(format!("'{pair}' has no value")))?;
        let name = decode(name)?;
        let value = decode(value)?;
        if name.contains(':') || name.contains('.') {
            return Err(SearchError::Unsupported(name));
        }
        let mut alternatives = Vec::new();
        for v in split_unescaped(&value, ',') {
            alternatives.push(condition_for(resource_type, &name, &v, &mut filter.binds)?);
        }
        parts.push(format!("({})", alternatives.join(" OR ")));
    }
    if parts.is_empty() {
        return Err(SearchError::Malformed("the condition is empty".into()));
    }
    filter.sql = parts.join(" AND ");
    Ok(filter)
}

fn condition_for(
    resource_type: &str,
    name: &str,
    value: &str,
    binds: &mut Vec<Bind>,
) -> Result<String, SearchError> {
    if name == "_id" {
        binds.push(Bind::Text(value.to_string()));
        return Ok(format!("r.id = ${}", binds.len()));
    }
    let def = search_params::lookup(resource_type, name).ok_or_else(|| {
        SearchError::UnknownParameter {
            resource_type: resource_type.to_string(),
            param: name.to_string(),
        }
    })?;
    let mut push = |v: String| {
        binds.push(Bind::Text(v));
        binds.len()
    };
    let p = push(name.to_string());
    match def.kind {
        ParamType::Token => {
            let (system, code) = match split_unescaped(value, '|').as_slice() {
                [code] => (None, Some(code.clone())),
                [system, code] => (Some(system.clone()), Some(code.clone()).filter(|c| !c.is_empty())),
                _ => return Err(SearchError::Malformed(format!("bad token '{value}'"))),
            };
            let mut sql = format!(
                "EXISTS (SELECT 1 FROM idx_token t WHERE t.rid = r.rid AND t.res_type = r.res_type AND t.param = ${p}"
            );
            if let Some(code) = code {
                sql.push_str(&format!(" AND t.code = ${}", push(code)));
            }
            match system.as_deref() {
                Some("") => sql.push_str(" AND t.system IS NULL"),
                Some(s) => sql.push_str(&format!(" AND t.system = ${}", push(s.to_string()))),
                None => {}
            }
            sql.push(')');
            Ok(sql)
        }
        ParamType::String => {
            let norm = fhir_model::index::normalize_string(value);
            Ok(format!(
                "EXISTS (SELECT 1 FROM idx_string s WHERE s.rid = r.rid AND s.res_type = r.res_type AND s.param = ${p} AND s.norm LIKE ${} || '%')",
                push(escape_like(&norm))
            ))
        }
        ParamType::Reference => {
            let (target_type, id) = match value.rsplit_once('/') {
                Some((t, id)) => (Some(t.rsplit('/').next().unwrap_or(t).to_string()), id),
                None => (None, value),
            };
            let mut sql = format!(
                "EXISTS (SELECT 1 FROM idx_reference x WHERE x.rid = r.rid AND x.res_type = r.res_type AND x.param = ${p} AND x.target_id = ${}",
                push(id.to_string())
            );
            if let Some(t) = target_type {
                sql.push_str(&format!(" AND x.target_type = ${}", push(t)));
            }
            sql.push(')');
            Ok(sql)
        }
        ParamType::Uri => Ok(format!(
            "EXISTS (SELECT 1 FROM idx_uri u WHERE u.rid = r.rid AND u.res_type = r.res_type AND u.param = ${p} AND u.uri = ${})",
            push(value.to_string())
        )),
        _ => Err(SearchError::Unsupported(name.to_string())),
    }
}

fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// Splits on `sep` unless escaped with a backslash (FHIR `\,` `\|` `\$`), unescaping the parts.
fn split_unescaped(value: &str, sep: char) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(n) if n == sep => parts.last_mut().expect("part").push(n),
                Some(n) => {
                    let last = parts.last_mut().expect("part");
                    last.push('\\');
                    last.push(n);
                }
                None => parts.last_mut().expect("part").push('\\'),
            }
        } else if c == sep {
            parts.push(String::new());
        } else {
            parts.last_mut().expect("part").push(c);
        }
    }
    parts
}

fn decode(s: &str) -> Result<String, SearchError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| {
                        SearchError::Malformed(format!("bad percent-encoding in '{s}'"))
                    })?;
                out.push(hex);
                i += 2;
            }
            b'%' => {
                return Err(SearchError::Malformed(format!(
                    "bad percent-encoding in '{s}'"
                )))
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| SearchError::Malformed(format!("'{s}' is not UTF-8")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_with_system() {
        let f = compile_condition(
            "Patient",
            "identifier=https%3A%2F%2Ffhir.nhs.uk%2FId%2Fnhs-number|9434765919",
        )
        .unwrap();
        assert!(
            f.sql.contains("t.code = $2") && f.sql.contains("t.system = $3"),
            "{}",
            f.sql
        );
        assert_eq!(f.binds[1], Bind::Text("9434765919".into()));
        assert_eq!(
            f.binds[2],
            Bind::Text("https://fhir.nhs.uk/Id/nhs-number".into())
        );
    }

    #[test]
    fn unknown_and_malformed() {
        assert!(matches!(
            compile_condition("Patient", "nope=1"),
            Err(SearchError::UnknownParameter { .. })
        ));
        assert!(compile_condition("Patient", "").is_err());
        assert!(compile_condition("Patient", "name=%zz").is_err());
        assert_eq!(
            split_unescaped(r"a\,b,c", ','),
            vec!["a,b".to_string(), "c".to_string()]
        );
    }
}
