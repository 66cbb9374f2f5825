//! Writing a resource's search-index rows: multi-row INSERTs for every index table, sent as one
//! statement.

use diesel::pg::PgConnection;
use diesel::RunQueryDsl;
use fhir_model::index::{IndexEntry, IndexValue};

use crate::error::StoreError;
use crate::index_key::{equality_key, prefix_key};
use crate::shapes::shaped_write;
use crate::sql::Bind;

pub(crate) const TABLES: [&str; 9] = [
    "idx_string",
    "idx_token",
    "idx_date",
    "idx_reference",
    "idx_quantity",
    "idx_number",
    "idx_uri",
    "idx_composite",
    "idx_timeline",
];

/// Column lists and per-column SQL wrappers of each table (`{}` is the placeholder).
const COLUMNS: [(&str, &[&str]); 9] = [
    ("value, norm", &["{}", "{}"]),
    (
        "system, code, text, type_system, type_code",
        &["{}", "{}", "{}", "{}", "{}"],
    ),
    (
        "lo, hi",
        &[
            "COALESCE({}, '-infinity'::timestamptz)",
            "COALESCE({}, 'infinity'::timestamptz)",
        ],
    ),
    (
        "target_type, target_id, url, ident_system, ident_value",
        &["{}", "{}", "{}", "{}", "{}"],
    ),
    (
        "value, lo, hi, system, code, unit",
        &[
            "{}::numeric",
            "{}::numeric",
            "{}::numeric",
            "{}",
            "{}",
            "{}",
        ],
    ),
    (
        "value, lo, hi",
        &["{}::numeric", "{}::numeric", "{}::numeric"],
    ),
    ("uri", &["{}"]),
    (
        "system, code, v_system, v_code, v_text, v_value, v_lo, v_hi, d_lo, d_hi",
        &[
            "{}",
            "{}",
            "{}",
            "{}",
            "{}",
            "{}::numeric",
            "{}::numeric",
            "{}::numeric",
            "{}",
            "{}",
        ],
    ),
    ("patient, at", &["{}", "{}"]),
];

/// Removes every index row of these resources (before re-indexing, or on delete), in one round
/// trip.
pub(crate) fn clear_many(conn: &mut PgConnection, rids: &[i64]) -> Result<(), StoreError> {
    let ctes: Vec<String> = TABLES[..TABLES.len() - 1]
        .iter()
        .enumerate()
        .map(|(i, t)| format!("d{i} AS (DELETE FROM {t} WHERE rid = ANY($1))"))
        .collect();
    let sql = format!(
        "WITH {} DELETE FROM {} WHERE rid = ANY($1)",
        ctes.join(", "),
        TABLES[TABLES.len() - 1]
    );
    shaped_write(&sql, &[Bind::BigIntArray(rids.to_vec())]).execute(conn)?;
    Ok(())
}

/// Inserts the index rows of a resource: every table in one statement (data-modifying CTEs),
/// so a write costs one round trip for its index however many parameters it has.
pub(crate) fn insert(
    conn: &mut PgConnection,
    rid: i64,
    res_type: &str,
    entries: &[IndexEntry],
) -> Result<(), StoreError> {
    insert_many(conn, &[(rid, res_type, entries)])
}

/// One index row to write: resource row id, resource type, parameter, column values.
type Row<'a> = (i64, &'a str, &'a str, Vec<Bind>);

/// Inserts the index rows of several resources: one statement for every table, each table's rows
/// sent as one array per column and expanded by `unnest`. The statement's text depends only on
/// which tables have rows, so PostgreSQL parses and plans a few lines however many rows there
/// are (a multi-row VALUES list of thousands of tuples cost more to parse than to insert).
pub(crate) fn insert_many(
    conn: &mut PgConnection,
    resources: &[(i64, &str, &[IndexEntry])],
) -> Result<(), StoreError> {
    let mut binds: Vec<Bind> = Vec::new();
    let inserts: Vec<String> = selects(resources, &mut binds)
        .into_iter()
        .map(|(slot, select)| {
            format!(
                "INSERT INTO {} (rid, res_type, param, {}) {select}",
                TABLES[slot], COLUMNS[slot].0
            )
        })
        .collect();
    run(conn, &inserts, &binds)
}

/// Common table expressions named like the index tables and holding the rows these resources
/// would have, keyed by the given ids: a condition compiled for the real tables, run under
/// them, judges these resources by their own values. Tables without rows here are not shadowed.
pub(crate) fn shadow_tables(
    resources: &[(i64, &str, &[IndexEntry])],
    binds: &mut Vec<Bind>,
) -> Vec<String> {
    selects(resources, binds)
        .into_iter()
        .map(|(slot, select)| {
            format!(
                "{}(rid, res_type, param, {}) AS ({select})",
                TABLES[slot], COLUMNS[slot].0
            )
        })
        .collect()
}

/// Per table with rows, its slot and a `SELECT` of those rows (in table column order) from
/// arrays bound onto `binds`.
fn selects(
    resources: &[(i64, &str, &[IndexEntry])],
    binds: &mut Vec<Bind>,
) -> Vec<(usize, String)> {
    let mut by_table: [Vec<Row>; 9] = Default::default();
    for (rid, res_type, entries) in resources {
        for e in entries.iter() {
            let (slot, values) = row_values(&e.value);
            by_table[slot].push((*rid, res_type, e.param.as_str(), values));
        }
    }
    let mut out = Vec::new();
    for (slot, rows) in by_table.iter().enumerate() {
        let Some(first) = rows.first() else { continue };
        let wrappers = COLUMNS[slot].1;
        binds.push(Bind::BigIntArray(rows.iter().map(|r| r.0).collect()));
        binds.push(Bind::TextArray(
            rows.iter().map(|r| r.1.to_string()).collect(),
        ));
        binds.push(Bind::TextArray(
            rows.iter().map(|r| r.2.to_string()).collect(),
        ));
        let n = binds.len();
        let mut args = vec![
            format!("${}::bigint[]", n - 2),
            format!("${}::text[]", n - 1),
            format!("${n}::text[]"),
        ];
        let mut select = vec!["u.c0".to_string(), "u.c1".into(), "u.c2".into()];
        for (j, wrapper) in wrappers.iter().enumerate() {
            let cast = match first.3[j] {
                Bind::OptTime(_) => {
                    binds.push(Bind::OptTimeArray(
                        rows.iter()
                            .map(|r| match &r.3[j] {
                                Bind::OptTime(t) => *t,
                                _ => None,
                            })
                            .collect(),
                    ));
                    "timestamptz[]"
                }
                _ => {
                    binds.push(Bind::OptTextArray(
                        rows.iter()
                            .map(|r| match &r.3[j] {
                                Bind::Text(t) => Some(t.clone()),
                                Bind::OptText(t) => t.clone(),
                                _ => None,
                            })
                            .collect(),
                    ));
                    "text[]"
                }
            };
            args.push(format!("${}::{cast}", binds.len()));
            select.push(wrapper.replace("{}", &format!("u.c{}", j + 3)));
        }
        let aliases: Vec<String> = (0..wrappers.len() + 3).map(|j| format!("c{j}")).collect();
        out.push((
            slot,
            format!(
                "SELECT {} FROM unnest({}) AS u({})",
                select.join(", "),
                args.join(", "),
                aliases.join(", ")
            ),
        ));
    }
    out
}

fn run(conn: &mut PgConnection, inserts: &[String], binds: &[Bind]) -> Result<(), StoreError> {
    let Some((last, rest)) = inserts.split_last() else {
        return Ok(());
    };
    let sql = if rest.is_empty() {
        last.clone()
    } else {
        let ctes: Vec<String> = rest
            .iter()
            .enumerate()
            .map(|(i, s)| format!("i{i} AS ({s})"))
            .collect();
        format!("WITH {} {last}", ctes.join(", "))
    };
    shaped_write(&sql, binds).execute(conn)?;
    Ok(())
}

/// The table slot and column values of one index value. Columns in a btree key are bounded
/// (`index_key`); the others (`idx_string.value` for `:exact`, a token's `text`) keep the whole
/// text, so matching on them stays exact.
fn row_values(value: &IndexValue) -> (usize, Vec<Bind>) {
    let t = |s: &Option<String>| Bind::OptText(s.clone());
    let k = |s: &Option<String>| Bind::OptText(s.as_deref().map(|v| equality_key(v).into_owned()));
    match value {
        IndexValue::String { value, normalized } => (
            0,
            vec![
                Bind::Text(value.clone()),
                Bind::Text(prefix_key(normalized).to_string()),
            ],
        ),
        IndexValue::Token {
            system,
            code,
            text,
            of_type,
        } => {
            let (type_system, type_code) = match of_type {
                Some((s, c)) => (s.clone(), Some(c.clone())),
                None => (None, None),
            };
            (
                1,
                vec![
                    k(system),
                    k(code),
                    t(text),
                    Bind::OptText(type_system),
                    Bind::OptText(type_code),
                ],
            )
        }
        IndexValue::Date { start, end } => (2, vec![Bind::OptTime(*start), Bind::OptTime(*end)]),
        IndexValue::Reference {
            target_type,
            target_id,
            url,
            identifier_system,
            identifier_value,
        } => (
            3,
            vec![
                k(target_type),
                k(target_id),
                t(url),
                t(identifier_system),
                t(identifier_value),
            ],
        ),
        IndexValue::Quantity {
            value,
            low,
            high,
            system,
            code,
            unit,
        } => (
            4,
            vec![
                Bind::Text(value.clone()),
                Bind::Text(low.clone()),
                Bind::Text(high.clone()),
                t(system),
                k(code),
                t(unit),
            ],
        ),
        IndexValue::Number { value, low, high } => (
            5,
            vec![
                Bind::Text(value.clone()),
                Bind::Text(low.clone()),
                Bind::Text(high.clone()),
            ],
        ),
        IndexValue::Uri { value } => (6, vec![Bind::Text(equality_key(value).into_owned())]),
        IndexValue::Event { patient, at } => (
            8,
            vec![Bind::Text(patient.clone()), Bind::OptTime(Some(*at))],
        ),
        IndexValue::Composite {
            system,
            code,
            value,
        } => {
            let none = || Bind::OptText(None);
            let (v_system, v_code, v_text, num, date) = match value.as_ref() {
                IndexValue::Token { system, code, .. } => (t(system), t(code), none(), None, None),
                IndexValue::Quantity {
                    value,
                    low,
                    high,
                    system,
                    code,
                    ..
                } => (
                    t(system),
                    t(code),
                    none(),
                    Some((value.clone(), low.clone(), high.clone())),
                    None,
                ),
                IndexValue::String { normalized, .. } => (
                    none(),
                    none(),
                    Bind::OptText(Some(normalized.clone())),
                    None,
                    None,
                ),
                IndexValue::Date { start, end } => {
                    (none(), none(), none(), None, Some((*start, *end)))
                }
                _ => (none(), none(), none(), None, None),
            };
            let (value, lo, hi) = match num {
                Some((v, l, h)) => (Some(v), Some(l), Some(h)),
                None => (None, None, None),
            };
            let (d_lo, d_hi) = match date {
                // Open ends become the ends of the calendar PostgreSQL and FHIR share.
                Some((s, e)) => (
                    Some(s.unwrap_or_else(|| calendar_edge(1, 1, 1))),
                    Some(e.unwrap_or_else(|| calendar_edge(9999, 12, 31))),
                ),
                None => (None, None),
            };
            (
                7,
                vec![
                    t(system),
                    k(code),
                    v_system,
                    v_code,
                    v_text,
                    Bind::OptText(value),
                    Bind::OptText(lo),
                    Bind::OptText(hi),
                    Bind::OptTime(d_lo),
                    Bind::OptTime(d_hi),
                ],
            )
        }
    }
}

fn calendar_edge(y: i32, m: u32, d: u32) -> chrono::DateTime<chrono::Utc> {
    chrono::NaiveDate::from_ymd_opt(y, m, d)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .unwrap_or_default()
}
