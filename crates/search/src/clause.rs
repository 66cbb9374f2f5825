//! One search parameter (name, modifier, comma-separated values) compiled to a SQL condition over
//! `resource r` and the index tables. Every value is a bind parameter.

use chrono::{DateTime, Duration, Utc};
use fhir_model::index::{date_range, decimal_bounds, normalize_string, parse_reference};
use fhir_model::search_params::{ParamType, SearchParamDef};
use store::Bind;

use crate::limits::{check_date, check_number, MAX_DEPTH};
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
    /// Alias of the resource row conditions are about (`r`, or `c1`, `c2`… inside chains).
    pub alias: String,
    /// Placeholder of the bound array of resource types searched at this level.
    pub types: String,
    /// Chain depth, bounded so a hostile query cannot build an enormous statement.
    pub depth: usize,
    /// The request's access rules, applied to every resource a chain or `_has` looks at, so a
    /// hidden resource cannot be probed through a search that points at it.
    pub access: Option<&'a store::Access>,
    /// Compile an indexed parameter as a check of each row the plan reached by other means,
    /// never as a set of rows it could start from (see `stable`).
    pub fence: bool,
}

impl Compiler<'_> {
    /// Compiles any search parameter (with modifier, chain or `_has`) for resources of `types`.
    pub fn parameter(
        &mut self,
        types: &[String],
        name: &str,
        value: &str,
    ) -> Result<String, SearchError> {
        if let Some(rest) = name.strip_prefix("_has:") {
            return self.has(rest, value);
        }
        if let Some((head, tail)) = name.split_once('.') {
            return self.chain(types, head, tail, value);
        }
        let (base, modifier) = match name.split_once(':') {
            Some((b, m)) => (b, Some(m)),
            None => (name, None),
        };
        match (base, modifier) {
            ("_id", None) => {
                let ids: Vec<String> = split_unescaped(value, ',')
                    .iter()
                    .map(|v| unescape(v))
                    .collect::<Result<_, _>>()?;
                let b = self.bind(Bind::TextArray(ids));
                Ok(format!("{}.id = ANY({b})", self.alias))
            }
            ("_lastUpdated", None) => {
                let alternatives = split_unescaped(value, ',')
                    .iter()
                    .map(|v| self.last_updated(v))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(format!("({})", alternatives.join(" OR ")))
            }
            ("_id" | "_lastUpdated", Some(m)) => self.row_column_modifier(base, m, value),
            _ => match common_def(types, base) {
                Some(def) => self.clause(def, modifier, value),
                None => Err(SearchError::UnknownParameter {
                    resource_type: types.join(","),
                    param: name.to_string(),
                }),
            },
        }
    }

    /// `_id` and `_lastUpdated` with a modifier. Both are columns of the resource row, never
    /// index rows: every resource has them, so `:missing=true` matches nothing, and `_id:not`
    /// excludes ids; R4 gives these types no other modifier that means anything here.
    fn row_column_modifier(
        &mut self,
        base: &str,
        modifier: &str,
        value: &str,
    ) -> Result<String, SearchError> {
        let name = format!("{base}:{modifier}");
        match (base, modifier) {
            (_, "missing") => match value {
                "true" => Ok("FALSE".into()),
                "false" => Ok("TRUE".into()),
                v => Err(bad(&name, v, "':missing' takes true or false")),
            },
            ("_id", "not") => {
                let ids: Vec<String> = split_unescaped(value, ',')
                    .iter()
                    .filter(|v| !v.is_empty())
                    .map(|v| unescape(v))
                    .collect::<Result<_, _>>()?;
                if ids.is_empty() {
                    return Err(bad(&name, value, "a value is required"));
                }
                let b = self.bind(Bind::TextArray(ids));
                Ok(format!("NOT ({}.id = ANY({b}))", self.alias))
            }
            _ => Err(SearchError::Unsupported(name)),
        }
    }

    /// A nested compiler for resources of `types` under a fresh alias.
    fn nested(&mut self, types: Vec<String>) -> Result<Compiler<'_>, SearchError> {
        if self.depth >= MAX_DEPTH {
            return Err(SearchError::TooCostly(format!(
                "chains and _has nest deeper than {MAX_DEPTH} levels"
            )));
        }
        let types_ph = self.bind(Bind::TextArray(types));
        let depth = self.depth + 1;
        Ok(Compiler {
            binds: self.binds,
            base_url: self.base_url,
            alias: format!("c{depth}"),
            types: types_ph,
            depth,
            access: self.access,
            fence: false,
        })
    }

    /// `subject:Patient.name=x`: resources whose reference points at a resource matching the tail.
    fn chain(
        &mut self,
        types: &[String],
        head: &str,
        tail: &str,
        value: &str,
    ) -> Result<String, SearchError> {
        let (code, type_modifier) = match head.split_once(':') {
            Some((c, t)) => (c, Some(t)),
            None => (head, None),
        };
        let def = common_def(types, code).ok_or_else(|| SearchError::UnknownParameter {
            resource_type: types.join(","),
            param: head.to_string(),
        })?;
        if def.kind != ParamType::Reference {
            return Err(bad(code, head, "only reference parameters can be chained"));
        }
        let tail_code = tail.split(['.', ':']).next().unwrap_or(tail);
        let targets: Vec<String> = match type_modifier {
            Some(t) if def.targets.iter().any(|d| d == t) => vec![t.to_string()],
            Some(t) => return Err(bad(code, head, &format!("{t} is not a target of '{code}'"))),
            None => def
                .targets
                .iter()
                .filter(|t| {
                    tail_code.starts_with('_')
                        || fhir_model::search_params::lookup(t, tail_code).is_some()
                })
                .cloned()
                .collect(),
        };
        if targets.is_empty() {
            return Err(SearchError::Unsupported(format!("{head}.{tail}")));
        }
        let p = self.text(code);
        let outer_types = self.types.clone();
        let outer_alias = self.alias.clone();
        let mut inner = self.nested(targets.clone())?;
        let alias = inner.alias.clone();
        let inner_types = inner.types.clone();
        let cond = inner.parameter(&targets, tail, value)?;
        let visible = inner.visible();
        Ok(format!(
            "{outer_alias}.rid IN (SELECT x.rid FROM idx_reference x JOIN resource {alias} \
             ON {alias}.res_type = x.target_type AND {alias}.id = x.target_id \
             WHERE x.res_type = ANY({outer_types}) AND x.param = {p} AND NOT {alias}.deleted \
             AND {alias}.res_type = ANY({inner_types}) AND {cond} AND {visible})"
        ))
    }

    /// `_has:Observation:patient:code=x`: resources that some matching Observation points at
    /// through its `patient` parameter.
    fn has(&mut self, rest: &str, value: &str) -> Result<String, SearchError> {
        let mut parts = rest.splitn(3, ':');
        let (Some(t), Some(code), Some(tail)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad(
                "_has",
                rest,
                "the form is _has:Type:reference:parameter",
            ));
        };
        if !fhir_model::search_params::is_searchable(t) || t == crate::audit::AUDIT_TYPE {
            return Err(SearchError::Unsupported(format!("_has:{t}")));
        }
        let def = fhir_model::search_params::lookup(t, code)
            .filter(|d| d.kind == ParamType::Reference)
            .ok_or_else(|| {
                bad(
                    "_has",
                    rest,
                    &format!("'{code}' is not a reference parameter of {t}"),
                )
            })?;
        let p = self.text(&def.code);
        let outer_alias = self.alias.clone();
        let types = vec![t.to_string()];
        let mut inner = self.nested(types.clone())?;
        let alias = inner.alias.clone();
        let inner_types = inner.types.clone();
        let cond = inner.parameter(&types, tail, value)?;
        let visible = inner.visible();
        Ok(format!(
            "({outer_alias}.res_type, {outer_alias}.id) IN (SELECT x.target_type, x.target_id \
             FROM idx_reference x JOIN resource {alias} ON {alias}.rid = x.rid \
             WHERE x.res_type = ANY({inner_types}) AND x.param = {p} AND NOT {alias}.deleted \
             AND {cond} AND {visible})"
        ))
    }

    /// The access condition over this compiler's alias (`TRUE` without rules).
    fn visible(&mut self) -> String {
        match self.access {
            Some(a) => a.predicate(&self.alias.clone(), self.binds),
            None => "TRUE".into(),
        }
    }

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
        format!(
            "SELECT x.rid FROM {table} x WHERE x.res_type = ANY({}) AND x.param = {p}{cond}",
            self.types
        )
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
            ParamType::Composite => "idx_composite",
            _ => return Err(SearchError::Unsupported(def.code.clone())),
        };
        if modifier == Some("missing") {
            let sub = self.rids(table, &def.code, "");
            let a = &self.alias;
            return match raw_value {
                "true" => Ok(format!("{a}.rid NOT IN ({sub})")),
                "false" => Ok(format!("{a}.rid IN ({sub})")),
                v => Err(bad(&def.code, v, "':missing' takes true or false")),
            };
        }
        let values = split_unescaped(raw_value, ',');
        if values.iter().all(|v| v.is_empty()) {
            return Err(bad(&def.code, raw_value, "a value is required"));
        }
        let mut alternatives = Vec::new();
        for v in values.iter().filter(|v| !v.is_empty()) {
            // Index keys hold this much of a value, or of each part of a coded one
            // (store::index_key); a longer one could not be answered exactly.
            let too_long = match def.kind {
                ParamType::String | ParamType::Uri | ParamType::Reference => {
                    v.len() > store::MAX_INDEXED_BYTES
                }
                _ => v
                    .split(['|', '$'])
                    .any(|part| part.len() > store::MAX_INDEXED_BYTES),
            };
            if too_long {
                return Err(bad(
                    &def.code,
                    &format!("{}…", &v[..v.floor_char_boundary(40)]),
                    &format!(
                        "a search value (or each part of a coded one) may be at most {} bytes long",
                        store::MAX_INDEXED_BYTES
                    ),
                ));
            }
            let cond = match def.kind {
                ParamType::String => self.string(&def.code, modifier, v)?,
                ParamType::Token => self.token(&def.code, modifier, v)?,
                ParamType::Date => self.date(&def.code, modifier, v)?,
                ParamType::Reference => self.reference(def, modifier, v)?,
                ParamType::Quantity => self.quantity(&def.code, modifier, v)?,
                ParamType::Number => self.number(&def.code, modifier, v)?,
                ParamType::Composite => self.composite(def, modifier, v)?,
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
        // One scan of the index table with the values OR'd, not a subquery per value joined by
        // UNION: a hundred values of one parameter cost one pass instead of a hundred.
        let any = match alternatives.as_slice() {
            [one] => one.clone(),
            many => format!("(({}))", many.join(") OR (")),
        };
        if self.fence && op == "IN" {
            // A correlated scalar subquery stays a per-row check: PostgreSQL does not turn it
            // into a join it could start from.
            let p = self.text(&def.code);
            return Ok(format!(
                "(SELECT EXISTS (SELECT 1 FROM {table} x WHERE x.rid = {a}.rid \
                 AND x.res_type = ANY({t}) AND x.param = {p} AND {any}))",
                a = self.alias,
                t = self.types
            ));
        }
        let sub = self.rids(table, &def.code, &any);
        Ok(format!("{}.rid {op} ({sub})", self.alias))
    }

    fn string(
        &mut self,
        code: &str,
        modifier: Option<&str>,
        v: &str,
    ) -> Result<String, SearchError> {
        let v = unescape(v)?;
        if modifier != Some("exact") && normalize_string(&v).is_empty() {
            // An empty pattern would match every resource with the parameter.
            return Err(bad(code, &v, "a value with letters or digits"));
        }
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
        Ok(cond)
    }

    /// `code`, `system|code`, `|code` (no system) or `system|` (any code) as a condition on the
    /// given columns; `None` when the value has another shape.
    fn coded(
        &mut self,
        v: &str,
        system_col: &str,
        code_col: &str,
    ) -> Result<Option<String>, SearchError> {
        Ok(Some(match split_unescaped(v, '|').as_slice() {
            [c] => format!("{code_col} = {}", self.text(&unescape(c)?)),
            // `|` alone names neither a system nor a code.
            [s, c] if s.is_empty() && c.is_empty() => return Ok(None),
            [s, c] if s.is_empty() => {
                format!(
                    "{code_col} = {} AND {system_col} IS NULL",
                    self.text(&unescape(c)?)
                )
            }
            [s, c] if c.is_empty() => format!("{system_col} = {}", self.text(&unescape(s)?)),
            [s, c] => {
                let c = self.text(&unescape(c)?);
                let s = self.text(&unescape(s)?);
                format!("{code_col} = {c} AND {system_col} = {s}")
            }
            _ => return Ok(None),
        }))
    }

    fn token(
        &mut self,
        code: &str,
        modifier: Option<&str>,
        v: &str,
    ) -> Result<String, SearchError> {
        let cond = match modifier {
            None | Some("not") => self
                .coded(v, "x.system", "x.code")?
                .ok_or_else(|| bad(code, v, "a token is [system|]code"))?,
            Some("of-type") => match split_unescaped(v, '|').as_slice() {
                [type_system, type_code, value]
                    if !type_system.is_empty() && !type_code.is_empty() && !value.is_empty() =>
                {
                    let value = self.text(&unescape(value)?);
                    let type_code = self.text(&unescape(type_code)?);
                    let type_system = self.text(&unescape(type_system)?);
                    format!(
                        "x.code = {value} AND x.type_code = {type_code} AND x.type_system = {type_system}"
                    )
                }
                _ => return Err(bad(code, v, "':of-type' takes system|code|value")),
            },
            Some("text") => format!(
                "lower(x.text) LIKE {} || '%'",
                self.text(&like_escape(&unescape(v)?.to_lowercase()))
            ),
            Some(m) => return Err(SearchError::Unsupported(format!("{code}:{m}"))),
        };
        Ok(cond)
    }

    fn date(&mut self, code: &str, modifier: Option<&str>, v: &str) -> Result<String, SearchError> {
        if let Some(m) = modifier {
            return Err(SearchError::Unsupported(format!("{code}:{m}")));
        }
        let (prefix, text) = split_prefix(v);
        check_date(code, v, text)?;
        let (lo, hi) =
            date_range(text).ok_or_else(|| bad(code, v, "not a FHIR date, dateTime or instant"))?;
        let cond = self.range_condition(prefix, lo, hi, "x.lo", "x.hi");
        Ok(cond)
    }

    /// `_lastUpdated`, held on the resource row: the point `t` is the range `[t, t + 1 ms)`.
    pub fn last_updated(&mut self, v: &str) -> Result<String, SearchError> {
        let column = format!("{}.last_updated", self.alias);
        self.instant_condition("_lastUpdated", v, &column)
    }

    /// A date parameter `code` held as an instant in `column` (the point `t` is the range
    /// `[t, t + 1 ms)`).
    pub fn instant_condition(
        &mut self,
        code: &str,
        v: &str,
        column: &str,
    ) -> Result<String, SearchError> {
        let (prefix, text) = split_prefix(v);
        check_date(code, v, text)?;
        let (lo, hi) =
            date_range(text).ok_or_else(|| bad(code, v, "not a FHIR date, dateTime or instant"))?;
        let cond = self.range_condition(
            prefix,
            lo,
            hi,
            column,
            &format!("({column} + interval '1 millisecond')"),
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
            // `{rlo} <= hi` follows from the others (a stored range has lo <= hi), but it
            // bounds the index scan on lo from both sides and lets the planner estimate the
            // range as one: without it a birth date looked less selective than a family-name
            // prefix, and `family=…&birthdate=…` grew with every family sharing the prefix.
            Prefix::Eq => {
                let (a, b) = (t(lo), t(hi));
                format!("{rlo} >= {a} AND {rlo} <= {b} AND {rhi} <= {b}")
            }
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
        Ok(cond)
    }

    fn numeric_condition_on(
        &mut self,
        col: &str,
        code: &str,
        prefix: Prefix,
        text: &str,
        raw: &str,
    ) -> Result<String, SearchError> {
        Ok(self
            .numeric_condition(code, prefix, text, raw)?
            .replace("x.value", col))
    }

    fn numeric_condition(
        &mut self,
        code: &str,
        prefix: Prefix,
        text: &str,
        raw: &str,
    ) -> Result<String, SearchError> {
        check_number(code, raw, text)?;
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
            [_, _, unit] if unit.is_empty() => {
                return Err(bad(
                    code,
                    v,
                    "a quantity's unit after the second | is empty",
                ))
            }
            [_, system, unit] => {
                let unit = unescape(unit)?;
                if system.is_empty() {
                    let u = self.text(&unit);
                    cond.push_str(&format!(" AND (x.code = {u} OR x.unit = {u})"));
                } else {
                    let s = self.text(&unescape(system)?);
                    let u = self.text(&unit);
                    cond.push_str(&format!(" AND x.system = {s} AND x.code = {u}"));
                }
            }
            _ => return Err(bad(code, v, "a quantity is [prefix]number[|system|code]")),
        }
        Ok(cond)
    }

    /// `code-value-quantity=http://loinc.org|8480-6$gt100|http://unitsofmeasure.org|mm[Hg]`:
    /// the coded first part and the second part, matched on the same element.
    fn composite(
        &mut self,
        def: &SearchParamDef,
        modifier: Option<&str>,
        v: &str,
    ) -> Result<String, SearchError> {
        let code = &def.code;
        if let Some(m) = modifier {
            return Err(SearchError::Unsupported(format!("{code}:{m}")));
        }
        let parts = split_unescaped(v, '$');
        let [first, second] = parts.as_slice() else {
            return Err(bad(code, v, "a composite value is code$value"));
        };
        let mut cond = self
            .coded(first, "x.system", "x.code")?
            .filter(|_| !first.ends_with('|'))
            .ok_or_else(|| bad(code, v, "the first part is [system|]code"))?;
        let kind = fhir_model::index::composite_value_kind(def)
            .ok_or_else(|| SearchError::Unsupported(code.clone()))?;
        let second_cond = match kind {
            ParamType::Token => self
                .coded(second, "x.v_system", "x.v_code")?
                .ok_or_else(|| bad(code, v, "the second part is [system|]code"))?,
            ParamType::Quantity => {
                let q = split_unescaped(second, '|');
                let (prefix, number) = split_prefix(&q[0]);
                let mut c = self.numeric_condition_on("x.v_value", code, prefix, number, v)?;
                match q.as_slice() {
                    [_] => {}
                    [_, _, unit] if unit.is_empty() => {
                        return Err(bad(code, v, "the unit after the second | is empty"))
                    }
                    [_, system, unit] if system.is_empty() => {
                        c.push_str(&format!(" AND x.v_code = {}", self.text(&unescape(unit)?)));
                    }
                    [_, system, unit] => {
                        let s = self.text(&unescape(system)?);
                        let u = self.text(&unescape(unit)?);
                        c.push_str(&format!(" AND x.v_system = {s} AND x.v_code = {u}"));
                    }
                    _ => {
                        return Err(bad(
                            code,
                            v,
                            "the second part is [prefix]number[|system|code]",
                        ))
                    }
                }
                c
            }
            ParamType::Date => {
                let (prefix, text) = split_prefix(second);
                check_date(code, v, text)?;
                let (lo, hi) = date_range(text)
                    .ok_or_else(|| bad(code, v, "the second part is a FHIR date"))?;
                self.range_condition(prefix, lo, hi, "x.d_lo", "x.d_hi")
            }
            ParamType::String => {
                let text = normalize_string(&unescape(second)?);
                if text.is_empty() {
                    return Err(bad(code, v, "a second part with letters or digits"));
                }
                format!("x.v_text LIKE {} || '%'", self.text(&like_escape(&text)))
            }
            _ => return Err(SearchError::Unsupported(code.clone())),
        };
        cond.push_str(" AND ");
        cond.push_str(&second_cond);
        Ok(cond)
    }

    fn reference(
        &mut self,
        def: &SearchParamDef,
        modifier: Option<&str>,
        v: &str,
    ) -> Result<String, SearchError> {
        let code = &def.code;
        if modifier == Some("identifier") {
            // Split before unescaping, so an escaped `\|` stays inside its part.
            let parts = split_unescaped(v, '|')
                .iter()
                .map(|p| unescape(p))
                .collect::<Result<Vec<_>, _>>()?;
            let cond = match parts.as_slice() {
                [value] => format!("x.ident_value = {}", self.text(value)),
                [s, value] if s.is_empty() && value.is_empty() => {
                    return Err(bad(code, v, "an identifier is [system|]value"))
                }
                [s, value] if value.is_empty() => format!("x.ident_system = {}", self.text(s)),
                [s, value] => {
                    let val = self.text(value);
                    let sys = self.text(s);
                    format!("x.ident_value = {val} AND x.ident_system = {sys}")
                }
                _ => return Err(bad(code, v, "an identifier is [system|]value")),
            };
            return Ok(cond);
        }
        let v = unescape(v)?;
        let cond = match modifier {
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
        Ok(cond)
    }

    fn uri(&mut self, code: &str, modifier: Option<&str>, v: &str) -> Result<String, SearchError> {
        let v = unescape(v)?;
        let cond = match modifier {
            None => format!("x.uri = {}", self.text(&v)),
            Some("below") => format!("x.uri LIKE {} || '%'", self.text(&like_escape(&v))),
            Some("above") => format!("{} LIKE x.uri || '%'", self.text(&v)),
            Some(m) => return Err(SearchError::Unsupported(format!("{code}:{m}"))),
        };
        Ok(cond)
    }
}

/// The definition of a parameter valid for every searched type (the same code and kind).
fn common_def(types: &[String], code: &str) -> Option<&'static SearchParamDef> {
    let first = fhir_model::search_params::lookup(types.first()?, code)?;
    types[1..]
        .iter()
        .all(|t| fhir_model::search_params::lookup(t, code).is_some_and(|d| d.kind == first.kind))
        .then_some(first)
}

pub(crate) fn bad(code: &str, value: &str, why: &str) -> SearchError {
    SearchError::BadValue {
        param: code.to_string(),
        value: value.to_string(),
        reason: why.to_string(),
    }
}

pub(crate) fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}
