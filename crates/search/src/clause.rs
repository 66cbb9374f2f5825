//! One search parameter (name, modifier, comma-separated values) compiled to a SQL condition over
//! `resource r` and the index tables. Every value is a bind parameter.

use chrono::{DateTime, Duration, Utc};
use fhir_model::index::{date_range, decimal_bounds, normalize_string, parse_reference};
use fhir_model::search_params::{ParamType, SearchParamDef};
use store::Bind;

use crate::text::{split_unescaped, unescape};
use crate::SearchError;

/// Comparison prefixes for ordered types (http://hl7.org/fhir/R4/search.html#prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefix {
    /// Equal (within the value's precision).
    Eq,
    /// Not equal.
    Ne,
    /// Greater than.
    Gt,
    /// Less than.
    Lt,
    /// Greater or equal.
    Ge,
    /// Less or equal.
    Le,
    /// Starts after.
    Sa,
    /// Ends before.
    Eb,
    /// Approximately.
    Ap,
}

fn split_prefix(value: &str) -> (Prefix, &str) {
    let p = match value.get(..2) {
        Some("eq") => Prefix::Eq,
        Some("ne") => Prefix::Ne,
        Some("gt") => Prefix::Gt,
        Some("lt") => Prefix::Lt,
        Some("ge") => Prefix::Ge,
        Some("le") => Prefix::Le,
        Some("sa") => Prefix::Sa,
        Some("eb") => Prefix::Eb,
        Some("ap") => Prefix::Ap,
        _ => return (Prefix::Eq, value),
    };
    (p, &value[2..])
}

/// Builds conditions, collecting binds; `$1` is always the resource-type array of the search.
pub struct Compiler<'a> {
    /// Binds so far (shared by all clauses of a search).
    pub binds: &'a mut Vec<Bind>,
    /// The FHIR base URL, so absolute references to this server match relative ones.
    pub base_url: &'a str,
}

impl Compiler<'_> {
    /// Adds a bind value and returns its placeholder.
    pub fn bind(&mut self, b: Bind) -> String {
        self.binds.push(b);
        format!("${}", self.binds.len())
    }

    fn text(&mut self, s: &str) -> String {
        self.bind(Bind::Text(s.to_string()))
    }

    /// The rows of `table` (aliased `x`) for this parameter, as a subquery of rids.
    fn rids(&mut self, table: &str, param: &str, cond: &str) -> String {
        let p = self.text(param);
        let cond = if cond.is_empty() {
            String::new()
        } else {
            format!(" AND {cond}")
        };
        format!("SELECT x.rid FROM {table} x WHERE x.res_type = ANY($1) AND x.param = {p}{cond}")
    }

    /// Compiles `name[:modifier]=v1,v2` (OR over the values) for an indexed parameter.
    pub fn clause(
        &mut self,
        def: &SearchParamDef,
        modifier: Option<&str>,
        raw_value: &str,
    ) -> Result<String, SearchError> {
        let table = match def.kind {
            ParamType::String => "idx_string",
            ParamType::Token => "idx_token",
            ParamType::Date => "idx_date",
            ParamType::Reference => "idx_reference",
            ParamType::Quantity => "idx_quantity",
            ParamType::Number => "idx_number",
            ParamType::Uri => "idx_uri",
            _ => return Err(SearchError::Unsupported(def.code.clone())),
        };
        if modifier == Some("missing") {
            let sub = self.rids(table, &def.code, "");
            return match raw_value {
                "true" => Ok(format!("r.rid NOT IN ({sub})")),
                "false" => Ok(format!("r.rid IN ({sub})")),
                v => Err(bad(&def.code, v, "':missing' takes true or false")),
            };
        }
        let values = split_unescaped(raw_value, ',');
        if values.iter().all(|v| v.is_empty()) {
            return Err(bad(&def.code, raw_value, "a value is required"));
        }
        let mut alternatives = Vec::new();
        for v in values.iter().filter(|v| !v.is_empty()) {
            let cond = match def.kind {
                ParamType::String => self.string(&def.code, modifier, v)?,
                ParamType::Token => self.token(&def.code, modifier, v)?,
                ParamType::Date => self.date(&def.code, modifier, v)?,
                ParamType::Reference => self.reference(def, modifier, v)?,
                ParamType::Quantity => self.quantity(&def.code, modifier, v)?,
                ParamType::Number => self.number(&def.code, modifier, v)?,
                _ => self.uri(&def.code, modifier, v)?,
            };
            alternatives.push(cond);
        }
        // :not matches resources with no value equal to any of the given ones.
        let op = if modifier == Some("not") {
            "NOT IN"
        } else {
            "IN"
        };
        Ok(format!("r.rid {op} ({})", alternatives.join(" UNION ")))
    }

    fn string(
        &mut self,
        code: &str,
        modifier: Option<&str>,
        v: &str,
    ) -> Result<String, SearchError> {
        let v = unescape(v);
        let cond = match modifier {
            None => format!(
                "x.norm LIKE {} || '%'",
                self.text(&like_escape(&normalize_string(&v)))
            ),
            Some("contains") => format!(
                "x.norm LIKE '%' || {} || '%'",
                self.text(&like_escape(&normalize_string(&v)))
            ),
            Some("exact") => format!("x.value = {}", self.text(&v)),
            Some(m) => return Err(SearchError::Unsupported(format!("{code}:{m}"))),
        };
        Ok(self.rids("idx_string", code, &cond))
    }

    fn token(
        &mut self,
        code: &str,
        modifier: Option<&str>,
        v: &str,
    ) -> Result<String, SearchError> {
        let cond = match modifier {
            None | Some("not") => {
                let parts = split_unescaped(v, '|');
                match parts.as_slice() {
                    [c] => format!("x.code = {}", self.text(&unescape(c))),
                    [s, c] if s.is_empty() => {
                        format!("x.code = {} AND x.system IS NULL", self.text(&unescape(c)))
                    }
                    [s, c] if c.is_empty() => format!("x.system = {}", self.text(&unescape(s))),
                    [s, c] => {
                        let c = self.text(&unescape(c));
                        let s = self.text(&unescape(s));
                        format!("x.code = {c} AND x.system = {s}")
                    }
                    _ => return Err(bad(code, v, "a token is [system|]code")),
                }
            }
            Some("text") => format!(
                "lower(x.text) LIKE {} || '%'",
                self.text(&like_escape(&unescape(v).to_lowercase()))
            ),
            Some(m) => return Err(SearchError::Unsupported(format!("{code}:{m}"))),
        };
        Ok(self.rids("idx_token", code, &cond))
    }

    fn date(&mut self, code: &str, modifier: Option<&str>, v: &str) -> Result<String, SearchError> {
        if let Some(m) = modifier {
            return Err(SearchError::Unsupported(format!("{code}:{m}")));
        }
        let (prefix, text) = split_prefix(v);
        let (lo, hi) =
            date_range(text).ok_or_else(|| bad(code, v, "not a FHIR date, dateTime or instant"))?;
        let cond = self.range_condition(prefix, lo, hi, "x.lo", "x.hi");
        Ok(self.rids("idx_date", code, &cond))
    }

    /// `_lastUpdated`, held on the resource row: the point `t` is the range `[t, t + 1 ms)`.
    pub fn last_updated(&mut self, v: &str) -> Result<String, SearchError> {
        let (prefix, text) = split_prefix(v);
        let (lo, hi) = date_range(text)
            .ok_or_else(|| bad("_lastUpdated", v, "not a FHIR date, dateTime or instant"))?;
        let cond = self.range_condition(
            prefix,
            lo,
            hi,
            "r.last_updated",
            "(r.last_updated + interval '1 millisecond')",
        );
        Ok(format!("({cond})"))
    }

    /// Compares a stored range `[rlo, rhi)` with the searched range `[lo, hi)` per the prefix.
    fn range_condition(
        &mut self,
        prefix: Prefix,
        lo: DateTime<Utc>,
        hi: DateTime<Utc>,
        rlo: &str,
        rhi: &str,
    ) -> String {
        let mut t = |d: DateTime<Utc>| self.bind(Bind::OptTime(Some(d)));
        match prefix {
            Prefix::Eq => format!("{rlo} >= {} AND {rhi} <= {}", t(lo), t(hi)),
            Prefix::Ne => format!("NOT ({rlo} >= {} AND {rhi} <= {})", t(lo), t(hi)),
            Prefix::Gt => format!("{rhi} > {}", t(hi)),
            Prefix::Lt => format!("{rlo} < {}", t(lo)),
            Prefix::Ge => format!("{rhi} > {}", t(lo)),
            Prefix::Le => format!("{rlo} < {}", t(hi)),
            Prefix::Sa => format!("{rlo} >= {}", t(hi)),
            Prefix::Eb => format!("{rhi} <= {}", t(lo)),
            Prefix::Ap => {
                // Within 10% of the distance from now, and at least a day, either side.
                let gap = (Utc::now() - lo).abs() / 10;
                let gap = gap.max(Duration::days(1));
                format!("{rlo} < {} AND {rhi} > {}", t(hi + gap), t(lo - gap))
            }
        }
    }

    fn number(
        &mut self,
        code: &str,
        modifier: Option<&str>,
        v: &str,
    ) -> Result<String, SearchError> {
        if let Some(m) = modifier {
            return Err(SearchError::Unsupported(format!("{code}:{m}")));
        }
        let (prefix, text) = split_prefix(v);
        let cond = self.numeric_condition(code, prefix, text, v)?;
        Ok(self.rids("idx_number", code, &cond))
    }

    fn numeric_condition(
        &mut self,
        code: &str,
        prefix: Prefix,
        text: &str,
        raw: &str,
    ) -> Result<String, SearchError> {
        let (value, lo, hi) = decimal_bounds(text).ok_or_else(|| bad(code, raw, "not a number"))?;
        let mut n = |s: &str| format!("{}::numeric", self.text(s));
        Ok(match prefix {
            Prefix::Eq => format!("x.value >= {} AND x.value < {}", n(&lo), n(&hi)),
            Prefix::Ne => format!("NOT (x.value >= {} AND x.value < {})", n(&lo), n(&hi)),
            Prefix::Gt | Prefix::Sa => format!("x.value > {}", n(&value)),
            Prefix::Lt | Prefix::Eb => format!("x.value < {}", n(&value)),
            Prefix::Ge => format!("x.value >= {}", n(&value)),
            Prefix::Le => format!("x.value <= {}", n(&value)),
            Prefix::Ap => {
                let v = n(&value);
                format!("x.value BETWEEN LEAST({v} * 0.9, {v} * 1.1) AND GREATEST({v} * 0.9, {v} * 1.1)")
            }
        })
    }

    fn quantity(
        &mut self,
        code: &str,
        modifier: Option<&str>,
        v: &str,
    ) -> Result<String, SearchError> {
        if let Some(m) = modifier {
            return Err(SearchError::Unsupported(format!("{code}:{m}")));
        }
        let parts = split_unescaped(v, '|');
        let (prefix, number) = split_prefix(&parts[0]);
        let mut cond = self.numeric_condition(code, prefix, number, v)?;
        match parts.as_slice() {
            [_] => {}
            [_, system, unit] => {
                let unit = unescape(unit);
                if system.is_empty() {
                    let u = self.text(&unit);
                    cond.push_str(&format!(" AND (x.code = {u} OR x.unit = {u})"));
                } else {
                    let s = self.text(&unescape(system));
                    let u = self.text(&unit);
                    cond.push_str(&format!(" AND x.system = {s} AND x.code = {u}"));
                }
            }
            _ => return Err(bad(code, v, "a quantity is [prefix]number[|system|code]")),
        }
        Ok(self.rids("idx_quantity", code, &cond))
    }

    fn reference(
        &mut self,
        def: &SearchParamDef,
        modifier: Option<&str>,
        v: &str,
    ) -> Result<String, SearchError> {
        let code = &def.code;
        let v = unescape(v);
        let cond = match modifier {
            Some("identifier") => {
                let parts = split_unescaped(&v, '|');
                match parts.as_slice() {
                    [value] => format!("x.ident_value = {}", self.text(value)),
                    [s, value] if value.is_empty() => format!("x.ident_system = {}", self.text(s)),
                    [s, value] => {
                        let val = self.text(value);
                        let sys = self.text(s);
                        format!("x.ident_value = {val} AND x.ident_system = {sys}")
                    }
                    _ => return Err(bad(code, &v, "an identifier is [system|]value")),
                }
            }
            Some(t) if fhir_model::elements::is_resource_type(t) => {
                if v.contains('/') {
                    return Err(bad(code, &v, "with a :Type modifier the value is an id"));
                }
                let id = self.text(&v);
                let ty = self.text(t);
                format!("x.target_id = {id} AND x.target_type = {ty}")
            }
            Some(m) => return Err(SearchError::Unsupported(format!("{code}:{m}"))),
            None => {
                let local = v
                    .strip_prefix(self.base_url)
                    .and_then(|rest| rest.strip_prefix('/'))
                    .map(str::to_string);
                let text = local.as_deref().unwrap_or(&v);
                if text.starts_with("http://")
                    || text.starts_with("https://")
                    || text.starts_with("urn:")
                {
                    let url = text.split('|').next().unwrap_or(text);
                    format!("x.url = {}", self.text(url))
                } else if text.contains('/') {
                    let parsed = parse_reference(text);
                    match (parsed.target_type, parsed.target_id) {
                        (Some(t), Some(id)) => {
                            let id = self.text(&id);
                            let ty = self.text(&t);
                            format!("x.target_id = {id} AND x.target_type = {ty}")
                        }
                        _ => return Err(bad(code, &v, "a reference is [Type/]id or a URL")),
                    }
                } else {
                    format!("x.target_id = {}", self.text(text))
                }
            }
        };
        Ok(self.rids("idx_reference", code, &cond))
    }

    fn uri(&mut self, code: &str, modifier: Option<&str>, v: &str) -> Result<String, SearchError> {
        let v = unescape(v);
        let cond = match modifier {
            None => format!("x.uri = {}", self.text(&v)),
            Some("below") => format!("x.uri LIKE {} || '%'", self.text(&like_escape(&v))),
            Some("above") => format!("{} LIKE x.uri || '%'", self.text(&v)),
            Some(m) => return Err(SearchError::Unsupported(format!("{code}:{m}"))),
        };
        Ok(self.rids("idx_uri", code, &cond))
    }
}

fn bad(code: &str, value: &str, why: &str) -> SearchError {
    SearchError::BadValue {
        param: code.to_string(),
        value: value.to_string(),
        reason: why.to_string(),
    }
}

fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}
