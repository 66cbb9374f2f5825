//! The query of a Patient operation that runs as a compartment search (`$everything`,
//! `$timeline`): `_type` narrows the types it may return, the parameters it passes on go to
//! the search, and the rest are ignored (or, under `Prefer: handling=strict`, refused).

use search::text::encode;

use crate::error::{Error, Result};

/// An operation's parameters, sorted out.
pub(crate) struct OperationParams {
    /// The types to search: those `_type` named, else all the operation returns.
    pub types: Vec<String>,
    /// What goes to the search as it is.
    pub passed: Vec<(String, String)>,
    /// Parameters the operation does not take (reported with the results).
    pub ignored: Vec<String>,
    /// The link base with `_type` kept.
    pub self_base: String,
}

/// Sorts out `params` for operation `op` returning `types`, passing on `passed_on`.
pub(crate) fn sort_out(
    op: &str,
    params: Vec<(String, String)>,
    types: Vec<String>,
    passed_on: &[&str],
    strict: bool,
    self_base: String,
) -> Result<OperationParams> {
    let mut out = OperationParams {
        types,
        passed: Vec::new(),
        ignored: Vec::new(),
        self_base,
    };
    for (name, value) in params {
        match name.as_str() {
            "_type" => {
                let mut wanted: Vec<String> = Vec::new();
                for t in value.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                    if !out.types.iter().any(|k| k == t) {
                        return Err(Error::invalid(format!(
                            "_type names '{t}', which {op} does not return (see its \
                             OperationDefinition and the CapabilityStatement)"
                        )));
                    }
                    if !wanted.iter().any(|w| w == t) {
                        wanted.push(t.to_string());
                    }
                }
                if !wanted.is_empty() {
                    out.types = wanted;
                }
                let sep = if out.self_base.contains('?') {
                    '&'
                } else {
                    '?'
                };
                out.self_base = format!("{}{sep}_type={}", out.self_base, encode(&value));
            }
            n if passed_on.contains(&n) => out.passed.push((name, value)),
            _ => out.ignored.push(name),
        }
    }
    if !out.ignored.is_empty() && strict {
        return Err(Error::invalid(format!(
            "{op} does not support: {}",
            out.ignored.join(", ")
        )));
    }
    Ok(out)
}
