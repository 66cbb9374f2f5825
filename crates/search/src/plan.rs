//! From query parameters to a [`SearchPlan`]: which parameters apply, which were ignored, the
//! SQL filter, ordering, page size, total mode and paging cursor.

use store::{Bind, Cursor, Filter, IncludeSpec, SortColumn, SortKey};

use fhir_model::search_params;

use crate::clause::Compiler;
use crate::cursor::{self, CursorKey};
use crate::limits;
use crate::stable::{self, Role};
use crate::text::pairs;
use crate::SearchError;

/// Whether and how to count all matches (`_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TotalMode {
    /// No total.
    None,
    /// An exact count (also served for `estimate`).
    Accurate,
}

/// Server settings that shape a plan.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    /// `_count` when absent.
    pub default_count: i64,
    /// The largest page served.
    pub max_count: i64,
    /// `Prefer: handling=strict`: unknown or unsupported parameters are errors.
    pub strict: bool,
    /// The FHIR base URL (absolute references to it match relative ones).
    pub base_url: String,
    /// The request's access rules, applied inside chains and `_has` (the store applies them to
    /// the matches themselves).
    pub access: Option<store::Access>,
    /// The secret page cursors are sealed with.
    pub cursor_key: CursorKey,
    /// What else the search is bound to beyond its parameters (a compartment search's
    /// patient), so its cursors serve no other search.
    pub scope: String,
    /// How the search reads clinical dates (`$timeline`, `$everything`'s `start`/`end`).
    pub care: Care,
}

/// Which compartment operation a search serves, for the clinical-date parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Care {
    /// A plain search: `start` and `end` are not parameters.
    #[default]
    Plain,
    /// A patient's timeline (`$timeline`): only events, ordered by clinical date, newest first
    /// unless `_sort=date`, with `start` and `end` bounding that date.
    Timeline,
    /// `$everything`: `start` and `end` keep the events dated in range and every resource
    /// that is not an event (the patient, their carers …).
    Everything,
}

/// A checked, compiled search.
#[derive(Debug, Clone)]
pub struct SearchPlan {
    /// Resource types searched.
    pub types: Vec<String>,
    /// Conditions over `resource r` (`$1` is the type array, bound by the store).
    pub filter: Option<Filter>,
    /// Ordering.
    pub sort: Vec<SortKey>,
    /// Page size (0: total only).
    pub count: i64,
    /// Total mode.
    pub total: TotalMode,
    /// Where this page starts, from `_cursor`.
    pub cursor: Option<Cursor>,
    /// The snapshot from `_cursor`.
    pub snapshot: Option<i64>,
    /// The cursor points backwards (a `previous` link).
    pub backward: bool,
    /// The parameters applied, as `(name, value)`, for the `self` link.
    pub applied: Vec<(String, String)>,
    /// Parameters ignored (unknown or unsupported), for a warning.
    pub ignored: Vec<String>,
    /// `_include` and `_revinclude` values.
    pub includes: Vec<IncludeSpec>,
    /// The shape keeps one good plan whatever its values (`stable`), so the store may run it on
    /// a generic plan.
    pub stable: bool,
    /// The key and search context that seal this search's cursors.
    seal: (CursorKey, Vec<u8>),
}

impl SearchPlan {
    /// The `_cursor` value of a page link of this search: where that page starts, sealed.
    pub fn cursor_token(&self, snapshot: i64, at: &Cursor, backward: bool) -> String {
        cursor::seal(&self.seal.0, &self.seal.1, snapshot, at, backward)
    }
}

/// Parameters the HTTP layer handles; they are neither applied here nor reported as ignored.
const OUTPUT_PARAMS: &[&str] = &["_format", "_pretty", "_summary", "_elements"];

/// Plans a search over `types` from decoded query pairs.
pub fn plan(
    types: &[String],
    params: &[(String, String)],
    options: &PlanOptions,
) -> Result<SearchPlan, SearchError> {
    limits::check_query(params)?;
    let mut binds = vec![Bind::TextArray(types.to_vec())];
    let mut conds = Vec::new();
    let mut plan = SearchPlan {
        types: types.to_vec(),
        filter: None,
        sort: Vec::new(),
        count: options.default_count,
        total: TotalMode::Accurate,
        cursor: None,
        snapshot: None,
        backward: false,
        applied: Vec::new(),
        ignored: Vec::new(),
        includes: Vec::new(),
        stable: false,
        seal: (options.cursor_key.clone(), Vec::new()),
    };
    let mut cursor_token = None;
    let mut bounds = Vec::new();
    // The audit trail is searched on its own, by its own compiler (`audit`).
    let audit = types.iter().any(|t| t == crate::audit::AUDIT_TYPE);
    if audit && types.len() > 1 {
        return Err(SearchError::Unsupported(
            "AuditEvent together with other types (search it on its own)".into(),
        ));
    }
    // Neutral parameters (output, paging, count, includes, the order of the anchored rows)
    // are left out of the shape's roles.
    let roles: Vec<Role> = params
        .iter()
        .filter_map(|(name, _)| {
            let base = name.split([':', '.']).next().unwrap_or(name);
            let neutral = OUTPUT_PARAMS.contains(&base)
                || matches!(
                    base,
                    "_type"
                        | "_count"
                        | "_total"
                        | "_include"
                        | "_revinclude"
                        | "_cursor"
                        | "_sort"
                );
            (!neutral).then(|| stable::role(types, name))
        })
        .collect();
    // A patient's compartment anchors a search as a reference to the patient does (the store
    // starts from the compartment's index), so every parameter that could be fenced is.
    let in_compartment = !options.scope.is_empty() && !roles.contains(&Role::Unstable);
    plan.stable =
        options.care == Care::Plain && !audit && (stable::is_stable(&roles) || in_compartment);
    if options.care == Care::Timeline {
        plan.sort = vec![SortKey {
            column: SortColumn::EventDate,
            descending: true,
        }];
    }
    for (name, value) in params {
        let base = name.split([':', '.']).next().unwrap_or(name);
        if OUTPUT_PARAMS.contains(&base) || base == "_type" {
            continue;
        }
        if options.care != Care::Plain {
            match base {
                "_sort" if options.care == Care::Timeline => {
                    plan.sort = vec![timeline_sort(value)?];
                    plan.applied.push((name.clone(), value.clone()));
                    continue;
                }
                "start" | "end" => {
                    bounds.push(care_bound(name, value)?);
                    plan.applied.push((name.clone(), value.clone()));
                    continue;
                }
                _ => {}
            }
        }
        let mut compiler = Compiler {
            binds: &mut binds,
            base_url: &options.base_url,
            alias: "r".into(),
            types: "$1".into(),
            depth: 0,
            access: options.access.as_ref(),
            fence: plan.stable && stable::role(types, name) == Role::Fenced,
        };
        let outcome: Result<Option<String>, SearchError> = match base {
            "_count" => {
                plan.count = parse_count(value)?.min(options.max_count);
                Ok(None)
            }
            "_total" => {
                plan.total = match value.as_str() {
                    "none" => TotalMode::None,
                    "estimate" | "accurate" => TotalMode::Accurate,
                    _ => return Err(bad("_total", value, "none, estimate or accurate")),
                };
                plan.applied.push((name.clone(), value.clone()));
                continue;
            }
            "_sort" => {
                plan.sort = match parse_sort(types, value) {
                    Ok(sort) => sort,
                    Err(SearchError::Unsupported(_)) if !options.strict => {
                        plan.ignored.push(format!("_sort={value}"));
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                plan.applied.push((name.clone(), value.clone()));
                continue;
            }
            "_include" | "_revinclude" => {
                let iterate = match name.split_once(':').map(|(_, m)| m) {
                    None => false,
                    Some("iterate" | "recurse") => true,
                    Some(m) => {
                        return Err(bad(
                            name,
                            value,
                            &format!("no ':{m}' modifier; use :iterate"),
                        ))
                    }
                };
                parse_include(types, base == "_revinclude", iterate, value).map(|spec| {
                    plan.includes.push(spec);
                    plan.applied.push((name.clone(), value.clone()));
                    None
                })
            }
            "_cursor" => {
                // Opened once the search it must belong to is known.
                cursor_token = Some(value.as_str());
                continue;
            }
            _ if audit => crate::audit::parameter(&mut compiler, name, value).map(Some),
            _ => compiler.parameter(types, name, value).map(Some),
        };
        match outcome {
            Ok(Some(cond)) => {
                conds.push(cond);
                plan.applied.push((name.clone(), value.clone()));
            }
            Ok(None) => {}
            Err(e @ (SearchError::UnknownParameter { .. } | SearchError::Unsupported(_))) => {
                if options.strict {
                    return Err(e);
                }
                plan.ignored.push(name.clone());
            }
            Err(e) => return Err(e),
        }
    }
    if !bounds.is_empty() {
        conds.push(care_condition(options, &bounds, &mut binds));
    }
    if options.care == Care::Everything && options.scope.is_empty() {
        // Type-level `$everything`: every patient's compartment, so nothing outside one.
        conds.push("r.compartments <> '{}'".into());
    }
    plan.seal.1 = cursor::context(&plan.types, &plan.applied, &options.scope);
    if let Some(token) = cursor_token {
        let (snapshot, at, backward) = cursor::open(&plan.seal.0, &plan.seal.1, token)?;
        cursor::fits(&at, &plan.sort)?;
        plan.snapshot = Some(snapshot);
        plan.cursor = Some(at);
        plan.backward = backward;
    }
    if !conds.is_empty() {
        plan.filter = Some(Filter {
            sql: conds.join(" AND "),
            binds,
        });
    } else if binds.len() > 1 {
        plan.filter = Some(Filter {
            sql: "TRUE".into(),
            binds,
        });
    }
    Ok(plan)
}

/// `Source:param[:Target]`, `Source:*` or `*`.
fn parse_include(
    types: &[String],
    reverse: bool,
    iterate: bool,
    value: &str,
) -> Result<IncludeSpec, SearchError> {
    let name = if reverse { "_revinclude" } else { "_include" };
    let parts: Vec<&str> = value.split(':').collect();
    let (source, param, target) = match parts.as_slice() {
        ["*"] if types.len() == 1 && !reverse => (types[0].clone(), None, None),
        [s, "*"] => (s.to_string(), None, None),
        [s, p] => (s.to_string(), Some(p.to_string()), None),
        [s, p, t] => (s.to_string(), Some(p.to_string()), Some(t.to_string())),
        _ => return Err(bad(name, value, "Type:parameter[:targetType]")),
    };
    // An AuditEvent's references are keys on its row, not index rows to follow.
    if !search_params::is_searchable(&source) || source == crate::audit::AUDIT_TYPE {
        return Err(SearchError::Unsupported(format!("{name}={value}")));
    }
    if let Some(p) = &param {
        let def =
            search_params::lookup(&source, p).ok_or_else(|| SearchError::UnknownParameter {
                resource_type: source.clone(),
                param: format!("{name}={value}"),
            })?;
        if def.kind != search_params::ParamType::Reference {
            return Err(bad(name, value, "a reference parameter"));
        }
        if let Some(t) = &target {
            if !def.targets.iter().any(|d| d == t) {
                return Err(bad(name, value, &format!("a target type of {source}:{p}")));
            }
        }
    }
    Ok(IncludeSpec {
        reverse,
        source_type: source,
        param,
        target_type: target,
        iterate,
    })
}

fn parse_sort(types: &[String], value: &str) -> Result<Vec<SortKey>, SearchError> {
    let keys: Vec<&str> = value.split(',').filter(|k| !k.is_empty()).collect();
    if keys.len() > store::MAX_SORT_KEYS {
        return Err(bad(
            "_sort",
            value,
            &format!("at most {} keys", store::MAX_SORT_KEYS),
        ));
    }
    keys.into_iter()
        .map(|k| {
            let (descending, name) = match k.strip_prefix('-') {
                Some(n) => (true, n),
                None => (false, k),
            };
            let column = match name {
                "_lastUpdated" => SortColumn::LastUpdated,
                "_id" => SortColumn::Id,
                "date" if types == [crate::audit::AUDIT_TYPE] => SortColumn::Date("date".into()),
                other if types.iter().any(|t| t == crate::audit::AUDIT_TYPE) => {
                    return Err(SearchError::Unsupported(format!("_sort={other}")))
                }
                other => {
                    let def = types
                        .first()
                        .and_then(|t| search_params::lookup(t, other))
                        .filter(|_| types.len() == 1)
                        .ok_or_else(|| SearchError::Unsupported(format!("_sort={other}")))?;
                    let code = def.code.clone();
                    match def.kind {
                        search_params::ParamType::String => SortColumn::String(code),
                        search_params::ParamType::Token => SortColumn::Token(code),
                        search_params::ParamType::Date => SortColumn::Date(code),
                        search_params::ParamType::Number => SortColumn::Number(code),
                        search_params::ParamType::Quantity => SortColumn::Quantity(code),
                        _ => return Err(SearchError::Unsupported(format!("_sort={other}"))),
                    }
                }
            };
            Ok(SortKey { column, descending })
        })
        .collect()
}

/// A timeline's `_sort`: `date` (oldest first) or `-date` (newest first, the default).
fn timeline_sort(value: &str) -> Result<SortKey, SearchError> {
    let descending = match value {
        "date" => false,
        "-date" => true,
        _ => {
            return Err(bad(
                "_sort",
                value,
                "date (oldest first) or -date (newest first)",
            ))
        }
    };
    Ok(SortKey {
        column: SortColumn::EventDate,
        descending,
    })
}

/// A bound on the clinical date: `start` (on or after the start of that date) or `end`
/// (before the end of that date, so `end=2026-03` includes all of March).
fn care_bound(
    name: &str,
    value: &str,
) -> Result<(&'static str, chrono::DateTime<chrono::Utc>), SearchError> {
    let (lo, hi) = fhir_model::index::date_range(value)
        .ok_or_else(|| bad(name, value, "a date, e.g. 2026-03 or 2026-03-14"))?;
    Ok(if name == "start" {
        (">=", lo)
    } else {
        ("<", hi)
    })
}

/// The condition of the clinical-date bounds: on the timeline row itself for `$timeline`; for
/// `$everything`, events dated in range on the patient's timeline, and everything undated.
fn care_condition(
    options: &PlanOptions,
    bounds: &[(&str, chrono::DateTime<chrono::Utc>)],
    binds: &mut Vec<Bind>,
) -> String {
    let alias = if options.care == Care::Timeline {
        "t"
    } else {
        "e"
    };
    let mut parts = Vec::new();
    for (op, at) in bounds {
        binds.push(Bind::OptTime(Some(*at)));
        parts.push(format!("{alias}.at {op} ${}", binds.len()));
    }
    if options.care == Care::Timeline {
        return parts.join(" AND ");
    }
    binds.push(Bind::TextArray(
        fhir_model::timeline::event_types()
            .into_iter()
            .map(str::to_string)
            .collect(),
    ));
    let events = binds.len();
    if !options.scope.is_empty() {
        binds.push(Bind::Text(options.scope.clone()));
        parts.push(format!("e.patient = ${}", binds.len()));
    }
    format!(
        "(r.res_type <> ALL(${events}) OR EXISTS (SELECT 1 FROM idx_timeline e \
         WHERE e.rid = r.rid AND {}))",
        parts.join(" AND ")
    )
}

/// `_count`: a whole number; one too large for any page is the largest page.
fn parse_count(value: &str) -> Result<i64, SearchError> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("_count", value, "a whole number"));
    }
    Ok(value.parse::<i64>().unwrap_or(i64::MAX))
}

fn bad(param: &str, value: &str, what: &str) -> SearchError {
    SearchError::BadValue {
        param: param.to_string(),
        value: value.to_string(),
        reason: format!("expected {what}"),
    }
}

/// Compiles the condition of a conditional interaction (`If-None-Exist: identifier=…`) into a
/// filter over `resource r` whose `$1` is the type array. Unknown parameters are errors here:
/// ignoring one would widen the match.
pub fn compile_condition(resource_type: &str, query: &str) -> Result<Filter, SearchError> {
    let params = pairs(query)?;
    if params.is_empty() {
        return Err(SearchError::Malformed("the condition is empty".into()));
    }
    let options = PlanOptions {
        default_count: 2,
        max_count: 2,
        strict: true,
        base_url: String::new(),
        access: None,
        // Conditions have no pages: any `_cursor` in one fails to open and is refused.
        cursor_key: CursorKey::from_secret(b"conditions have no cursor"),
        scope: String::new(),
        care: Care::Plain,
    };
    let plan = plan(&[resource_type.to_string()], &params, &options)?;
    plan.filter
        .ok_or_else(|| SearchError::Malformed("the condition selects nothing".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(strict: bool) -> PlanOptions {
        PlanOptions {
            default_count: 20,
            max_count: 100,
            strict,
            base_url: "http://h/fhir".into(),
            access: None,
            cursor_key: CursorKey::from_secret(b"k"),
            scope: String::new(),
            care: Care::Plain,
        }
    }

    fn p(q: &str, strict: bool) -> Result<SearchPlan, SearchError> {
        plan(&["Patient".to_string()], &pairs(q).unwrap(), &opts(strict))
    }

    #[test]
    fn token_with_system_binds_values() {
        let f = compile_condition(
            "Patient",
            "identifier=https%3A%2F%2Ffhir.nhs.uk%2FId%2Fnhs-number|9434765919",
        )
        .unwrap();
        assert!(f.sql.contains("x.code = $2 AND x.system = $3"), "{}", f.sql);
        assert_eq!(f.binds[0], Bind::TextArray(vec!["Patient".into()]));
        assert_eq!(f.binds[1], Bind::Text("9434765919".into()));
        assert_eq!(
            f.binds[2],
            Bind::Text("https://fhir.nhs.uk/Id/nhs-number".into())
        );
    }

    #[test]
    fn id_and_last_updated_with_modifiers_read_the_row_not_index_rows() {
        let not = compile_condition("Patient", "_id:not=a,b").unwrap();
        assert!(not.sql.contains("NOT (r.id = ANY($2))"), "{}", not.sql);
        assert_eq!(not.binds[1], Bind::TextArray(vec!["a".into(), "b".into()]));
        for (q, sql) in [
            ("_id:missing=true", "FALSE"),
            ("_id:missing=false", "TRUE"),
            ("_lastUpdated:missing=true", "FALSE"),
        ] {
            let f = compile_condition("Patient", q).unwrap();
            assert_eq!(f.sql, sql, "{q}");
        }
        for q in ["_id:missing=maybe", "_id:not="] {
            assert!(
                matches!(
                    compile_condition("Patient", q),
                    Err(SearchError::BadValue { .. })
                ),
                "{q}"
            );
        }
        assert!(matches!(
            compile_condition("Patient", "_id:below=a"),
            Err(SearchError::Unsupported(_))
        ));
    }

    #[test]
    fn a_date_bounds_the_range_start_on_both_sides() {
        // The planner estimates `lo` between two bounds as one range, and the lookup index
        // scans only that range (PLANS.md: family prefix + birth date).
        let f = compile_condition("Patient", "birthdate=1967-01-14").unwrap();
        assert!(
            f.sql.contains("x.lo >= $2 AND x.lo <= $3 AND x.hi <= $3"),
            "{}",
            f.sql
        );
        assert_eq!(f.binds.len(), 4, "{:?}", f.binds);
    }

    #[test]
    fn lenient_and_strict() {
        let lenient = p("nope=1&family=smith&_count=500", false).unwrap();
        assert_eq!(lenient.ignored, ["nope"]);
        assert_eq!(
            lenient.applied,
            [("family".to_string(), "smith".to_string())]
        );
        assert_eq!(lenient.count, 100);
        assert!(matches!(
            p("nope=1", true),
            Err(SearchError::UnknownParameter { .. })
        ));
        assert!(matches!(
            p("birthdate=notadate", false),
            Err(SearchError::BadValue { .. })
        ));
        assert!(matches!(
            p("birthdate=xx2020", false),
            Err(SearchError::BadValue { .. })
        ));
        assert!(matches!(
            compile_condition("Patient", "bogus=1"),
            Err(SearchError::UnknownParameter { .. })
        ));
    }

    #[test]
    fn cursors_are_bound_to_their_search_and_sort_keys() {
        let first = p("family=smith&_sort=birthdate", false).unwrap();
        let at = Cursor {
            values: vec![Some("2026-01-01 00:00:00+00".into())],
            rid: 42,
        };
        let token = first.cursor_token(7, &at, false);
        let next = p(
            &format!("family=smith&_sort=birthdate&_cursor={token}"),
            false,
        )
        .unwrap();
        assert_eq!(
            (next.snapshot, next.cursor, next.backward),
            (Some(7), Some(at), false)
        );
        // The cursor may come first in the query.
        assert!(p(
            &format!("_cursor={token}&family=smith&_sort=birthdate"),
            false
        )
        .is_ok());
        for other in [
            "family=jones&_sort=birthdate",
            "family=smith&_sort=family",
            "family=smith",
        ] {
            assert!(
                matches!(
                    p(&format!("{other}&_cursor={token}"), false),
                    Err(SearchError::Malformed(_))
                ),
                "{other}"
            );
        }
        let mut other_scope = opts(false);
        other_scope.scope = "patient-2".into();
        let q = pairs(&format!("family=smith&_sort=birthdate&_cursor={token}")).unwrap();
        assert!(plan(&["Patient".to_string()], &q, &other_scope).is_err());
        assert!(compile_condition("Patient", &format!("family=smith&_cursor={token}")).is_err());
    }

    #[test]
    fn a_compartment_anchors_a_search_whose_other_parameters_can_be_fenced() {
        let obs = ["Observation".to_string()];
        let in_patient = PlanOptions {
            scope: "pat-1".into(),
            ..opts(false)
        };
        let planned = |q: &str, o: &PlanOptions| plan(&obs, &pairs(q).unwrap(), o).unwrap();
        let code = "code=http://loinc.org|718-7&date=ge2024-01-01&_sort=-date";
        assert!(planned(code, &in_patient).stable);
        assert!(
            !planned(code, &opts(false)).stable,
            "no anchor outside a compartment"
        );
        // The compartment's plan starts from the patient; the code is checked per row.
        let fenced = planned("code=http://loinc.org|718-7", &in_patient);
        assert!(fenced.filter.unwrap().sql.starts_with("(SELECT EXISTS"));
        for unstable in ["code:text=haemoglobin", "performer.name=smith"] {
            assert!(!planned(unstable, &in_patient).stable, "{unstable}");
        }
    }

    #[test]
    fn count_extremes() {
        assert_eq!(p("_count=0", false).unwrap().count, 0);
        assert_eq!(
            p("_count=99999999999999999999999", false).unwrap().count,
            100
        );
        for bad in [
            "_count=-1",
            "_count=1e3",
            "_count=",
            "_count=%2B5",
            "_count=5.0",
        ] {
            assert!(p(bad, false).is_err(), "{bad}");
        }
    }

    #[test]
    fn dangling_escapes_and_empty_values_are_refused() {
        for q in [
            "family=%5C",
            "family=smith%5C",
            "family:contains=%5C",
            "family=%20",
            "family=a%5Cb",
            "identifier=%7C",
            "identifier=sys%7Cabc%5C",
            "_id=%5C",
            "general-practitioner:identifier=%7C",
        ] {
            assert!(
                matches!(
                    p(q, false),
                    Err(SearchError::BadValue { .. } | SearchError::Malformed(_))
                ),
                "{q}"
            );
        }
        let obs = |q: &str| {
            plan(
                &["Observation".to_string()],
                &pairs(q).unwrap(),
                &opts(false),
            )
        };
        for q in [
            "code:text=%5C",
            "code=%7C",
            "value-quantity=5%7C%7C",
            "value-quantity=1e2147483647",
            "value-quantity=1e-2147483648",
            "date=2024-01-01T00:00:00.1234567890123456789012345678901234567890123456789012345678901Z",
            "code-value-quantity=http://loinc.org%7C8480-6$1e99999",
        ] {
            assert!(obs(q).is_err(), "{q}");
        }
        // Escapes FHIR defines still work.
        assert!(p(r"family=a%5C,b", false).is_ok());
        assert!(p(r"family=a%5C%5Cb", false).is_ok());
        assert!(obs("code=http://loinc.org%7C8480-6").is_ok());
    }

    #[test]
    fn query_shape_limits_are_checked_first() {
        let q = vec!["family=t"; 1000].join("&");
        assert!(matches!(p(&q, false), Err(SearchError::TooCostly(_))));
        let q = format!("family={}", vec!["a"; 8000].join(","));
        assert!(matches!(p(&q, false), Err(SearchError::TooCostly(_))));
        let q = "_has:Observation:subject:_has:Observation:subject:_has:Observation:subject:_has:Observation:subject:code=x";
        assert!(matches!(p(q, false), Err(SearchError::TooCostly(_))));
        // Too deep is refused even though lenient searches ignore what is merely unsupported.
        let q = "general-practitioner:Practitioner.organization.partof.partof.name=x";
        assert!(matches!(p(q, false), Err(SearchError::TooCostly(_))));
    }

    #[test]
    fn injection_stays_in_binds() {
        let plan = p("family=x')%3B%20DROP%20TABLE%20resource%3B--", false).unwrap();
        let f = plan.filter.unwrap();
        assert!(!f.sql.contains("DROP"));
        assert!(f
            .binds
            .iter()
            .any(|b| matches!(b, Bind::Text(t) if t.contains("drop table"))));
    }
}
