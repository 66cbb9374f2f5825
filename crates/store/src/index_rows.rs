//! Writing a resource's search-index rows: one multi-row INSERT per index table.

use diesel::pg::PgConnection;
use diesel::RunQueryDsl;
use fhir_model::index::{IndexEntry, IndexValue};

use crate::error::StoreError;
use crate::sql::{query, Bind};

/// Rows per INSERT statement: keeps bind counts far below PostgreSQL's 65,535 limit.
const ROWS_PER_STATEMENT: usize = 500;

const TABLES: [&str; 7] = [
    "idx_string",
    "idx_token",
    "idx_date",
    "idx_reference",
    "idx_quantity",
    "idx_number",
    "idx_uri",
];

/// Removes every index row of a resource (before re-indexing, or on delete).
pub(crate) fn clear(conn: &mut PgConnection, rid: i64) -> Result<(), StoreError> {
    for table in TABLES {
        query(
            &format!("DELETE FROM {table} WHERE rid = $1"),
            &[Bind::BigInt(rid)],
        )
        .execute(conn)?;
    }
    Ok(())
}

/// Inserts the index rows of a resource.
pub(crate) fn insert(
    conn: &mut PgConnection,
    rid: i64,
    res_type: &str,
    entries: &[IndexEntry],
) -> Result<(), StoreError> {
    let mut by_table: [Vec<(&str, Vec<Bind>)>; 7] = Default::default();
    for e in entries {
        let (slot, values) = row_values(&e.value);
        by_table[slot].push((e.param.as_str(), values));
    }
    for (slot, rows) in by_table.iter().enumerate() {
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            insert_chunk(conn, slot, rid, res_type, chunk)?;
        }
    }
    Ok(())
}

fn insert_chunk(
    conn: &mut PgConnection,
    slot: usize,
    rid: i64,
    res_type: &str,
    rows: &[(&str, Vec<Bind>)],
) -> Result<(), StoreError> {
    let (columns, casts): (&str, &[&str]) = match slot {
        0 => ("value, norm", &["", ""]),
        1 => ("system, code, text", &["", "", ""]),
        2 => ("lo, hi", &["lo", "hi"]),
        3 => (
            "target_type, target_id, url, ident_system, ident_value",
            &["", "", "", "", ""],
        ),
        4 => (
            "value, lo, hi, system, code, unit",
            &["::numeric", "::numeric", "::numeric", "", "", ""],
        ),
        5 => ("value, lo, hi", &["::numeric", "::numeric", "::numeric"]),
        _ => ("uri", &[""]),
    };
    let mut sql = format!(
        "INSERT INTO {} (rid, res_type, param, {columns}) VALUES ",
        TABLES[slot]
    );
    let mut binds = vec![Bind::BigInt(rid), Bind::Text(res_type.to_string())];
    for (i, (param, row)) in rows.iter().enumerate() {
        if i > 0 {
            sql.push(',');
        }
        binds.push(Bind::Text(param.to_string()));
        sql.push_str(&format!("($1, $2, ${}", binds.len()));
        for (value, cast) in row.iter().zip(casts.iter()) {
            binds.push(value.clone());
            let n = binds.len();
            match *cast {
                "lo" => sql.push_str(&format!(", COALESCE(${n}, '-infinity'::timestamptz)")),
                "hi" => sql.push_str(&format!(", COALESCE(${n}, 'infinity'::timestamptz)")),
                c => sql.push_str(&format!(", ${n}{c}")),
            }
        }
        sql.push(')');
    }
    query(&sql, &binds).execute(conn)?;
    Ok(())
}

/// The table slot and column values of one index value.
fn row_values(value: &IndexValue) -> (usize, Vec<Bind>) {
    let t = |s: &Option<String>| Bind::OptText(s.clone());
    match value {
        IndexValue::String { value, normalized } => (
            0,
            vec![Bind::Text(value.clone()), Bind::Text(normalized.clone())],
        ),
        IndexValue::Token { system, code, text } => (1, vec![t(system), t(code), t(text)]),
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
                t(target_type),
                t(target_id),
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
                t(code),
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
        IndexValue::Uri { value } => (6, vec![Bind::Text(value.clone())]),
    }
}
