//! Dynamic SQL with bind parameters: every value a client sent is bound, never spliced.

use diesel::pg::Pg;
use diesel::query_builder::BoxedSqlQuery;
use diesel::query_builder::SqlQuery;
use diesel::sql_types::{Array, BigInt, Bool, Bytea, Integer, Nullable, Text, Timestamptz};

/// A bind value for a [`Filter`] or an internal statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Bind {
    /// `text`.
    Text(String),
    /// Nullable `text`.
    OptText(Option<String>),
    /// `integer`.
    Int(i32),
    /// `bigint`.
    BigInt(i64),
    /// Nullable `timestamptz`.
    OptTime(Option<chrono::DateTime<chrono::Utc>>),
    /// `text[]`.
    TextArray(Vec<String>),
    /// `bigint[]`.
    BigIntArray(Vec<i64>),
    /// `text[]` with NULLs.
    OptTextArray(Vec<Option<String>>),
    /// `timestamptz[]` with NULLs.
    OptTimeArray(Vec<Option<chrono::DateTime<chrono::Utc>>>),
    /// `boolean`.
    Bool(bool),
    /// `bytea`.
    Bytes(Vec<u8>),
    /// Nullable `bytea`.
    OptBytes(Option<Vec<u8>>),
    /// `bytea[]`.
    BytesArray(Vec<Vec<u8>>),
    /// `bytea[]` with NULLs.
    OptBytesArray(Vec<Option<Vec<u8>>>),
}

/// A SQL condition over the `resource` row aliased `r`, with `$n` placeholders numbered from
/// `$1` within the filter; the store renumbers them when it embeds the filter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    /// The condition, e.g. `EXISTS (SELECT 1 FROM idx_token t WHERE t.rid = r.rid AND t.code = $1)`.
    pub sql: String,
    /// Values for the placeholders, in order.
    pub binds: Vec<Bind>,
}

impl Bind {
    /// The value as a SQL literal, for an operator to run a statement by hand (`_explain`,
    /// the benchmarks' `pgbench` ceilings); never used to build a statement the server runs.
    pub fn sql_literal(&self) -> String {
        let text = |s: &str| format!("'{}'", s.replace('\'', "''"));
        let array = |items: Vec<Option<String>>, ty: &str| {
            let parts: Vec<String> = items
                .into_iter()
                .map(|i| match i {
                    Some(v) => format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")),
                    None => "NULL".into(),
                })
                .collect();
            format!("{}::{ty}[]", text(&format!("{{{}}}", parts.join(","))))
        };
        let hex = |b: &[u8]| {
            let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
            format!("'\\x{h}'::bytea")
        };
        match self {
            Bind::Text(v) => format!("{}::text", text(v)),
            Bind::OptText(v) => v
                .as_deref()
                .map_or("NULL::text".into(), |v| format!("{}::text", text(v))),
            Bind::Int(v) => format!("{v}::integer"),
            Bind::BigInt(v) => format!("{v}::bigint"),
            Bind::OptTime(v) => v.map_or("NULL::timestamptz".into(), |t| {
                format!("{}::timestamptz", text(&t.to_rfc3339()))
            }),
            Bind::TextArray(v) => array(v.iter().cloned().map(Some).collect(), "text"),
            Bind::BigIntArray(v) => {
                array(v.iter().map(|x| Some(x.to_string())).collect(), "bigint")
            }
            Bind::OptTextArray(v) => array(v.clone(), "text"),
            Bind::OptTimeArray(v) => array(
                v.iter().map(|t| t.map(|t| t.to_rfc3339())).collect(),
                "timestamptz",
            ),
            Bind::Bool(v) => format!("{v}"),
            Bind::Bytes(v) => hex(v),
            Bind::OptBytes(v) => v.as_deref().map_or("NULL::bytea".into(), hex),
            Bind::BytesArray(v) => format!(
                "ARRAY[{}]::bytea[]",
                v.iter().map(|b| hex(b)).collect::<Vec<_>>().join(", ")
            ),
            Bind::OptBytesArray(v) => format!(
                "ARRAY[{}]::bytea[]",
                v.iter()
                    .map(|b| b.as_deref().map_or("NULL".into(), hex))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// `sql` with each `$n` replaced by the literal of `binds[n - 1]`.
    pub fn inline(sql: &str, binds: &[Bind]) -> String {
        let mut out = String::with_capacity(sql.len());
        let bytes = sql.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'$' {
                let mut end = i + 1;
                while end < bytes.len() && bytes[end].is_ascii_digit() {
                    end += 1;
                }
                if let Some(b) = sql[i + 1..end]
                    .parse::<usize>()
                    .ok()
                    .and_then(|n| n.checked_sub(1))
                    .and_then(|n| binds.get(n))
                {
                    out.push('(');
                    out.push_str(&b.sql_literal());
                    out.push(')');
                    i = end;
                    continue;
                }
            }
            let ch = sql[i..].chars().next().expect("a char at a boundary");
            out.push(ch);
            i += ch.len_utf8();
        }
        out
    }
}

impl Filter {
    /// The filter's SQL with placeholders shifted by `offset` (so `$1` becomes `$offset+1`).
    pub fn renumbered(&self, offset: usize) -> String {
        let mut out = String::with_capacity(self.sql.len());
        let bytes = self.sql.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'$' {
                let start = i + 1;
                let mut end = start;
                while end < bytes.len() && bytes[end].is_ascii_digit() {
                    end += 1;
                }
                if end > start {
                    let n: usize = self.sql[start..end].parse().unwrap_or(0);
                    out.push('$');
                    out.push_str(&(n + offset).to_string());
                    i = end;
                    continue;
                }
            }
            out.push(bytes[i] as char);
            i += 1;
        }
        out
    }
}

impl Filter {
    /// True when any of `filters` holds (each numbered from `$1`); no filter at all is `FALSE`.
    pub fn any(filters: impl IntoIterator<Item = Filter>) -> Filter {
        Filter::join(filters, " OR ", "FALSE")
    }

    /// True when all of `filters` hold (each numbered from `$1`); no filter at all is `TRUE`.
    pub fn all(filters: impl IntoIterator<Item = Filter>) -> Filter {
        Filter::join(filters, " AND ", "TRUE")
    }

    /// Every part is parenthesised and so is the whole, so the result embeds safely next to any
    /// operator; one filter is left as `(sql)`, what embedding it alone would give.
    fn join(filters: impl IntoIterator<Item = Filter>, op: &str, empty: &str) -> Filter {
        let mut binds = Vec::new();
        let mut parts = Vec::new();
        for f in filters {
            parts.push(format!("({})", f.renumbered(binds.len())));
            binds.extend(f.binds);
        }
        let sql = match parts.len() {
            0 => format!("({empty})"),
            1 => parts.pop().expect("one part"),
            _ => format!("({})", parts.join(op)),
        };
        Filter { sql, binds }
    }
}

/// A boxed query that can take a run-time number of binds.
pub(crate) type Query = BoxedSqlQuery<'static, Pg, SqlQuery>;

/// Builds a query from SQL text and its binds.
pub(crate) fn query(sql: &str, binds: &[Bind]) -> Query {
    let mut q = diesel::sql_query(sql.to_string()).into_boxed();
    for b in binds {
        q = match b.clone() {
            Bind::Text(v) => q.bind::<Text, _>(v),
            Bind::OptText(v) => q.bind::<Nullable<Text>, _>(v),
            Bind::Int(v) => q.bind::<Integer, _>(v),
            Bind::BigInt(v) => q.bind::<BigInt, _>(v),
            Bind::OptTime(v) => q.bind::<Nullable<Timestamptz>, _>(v),
            Bind::TextArray(v) => q.bind::<Array<Text>, _>(v),
            Bind::BigIntArray(v) => q.bind::<Array<BigInt>, _>(v),
            Bind::OptTextArray(v) => q.bind::<Array<Nullable<Text>>, _>(v),
            Bind::OptTimeArray(v) => q.bind::<Array<Nullable<Timestamptz>>, _>(v),
            Bind::Bool(v) => q.bind::<Bool, _>(v),
            Bind::Bytes(v) => q.bind::<Bytea, _>(v),
            Bind::OptBytes(v) => q.bind::<Nullable<Bytea>, _>(v),
            Bind::BytesArray(v) => q.bind::<Array<Bytea>, _>(v),
            Bind::OptBytesArray(v) => q.bind::<Array<Nullable<Bytea>>, _>(v),
        };
    }
    q
}

#[cfg(test)]
mod tests {
    use super::{Bind, Filter};

    fn f(sql: &str, binds: &[&str]) -> Filter {
        Filter {
            sql: sql.into(),
            binds: binds.iter().map(|b| Bind::Text(b.to_string())).collect(),
        }
    }

    #[test]
    fn any_and_all_renumber_and_parenthesise() {
        let a = f("x = $1 OR y = $2", &["1", "2"]);
        let b = f("z = $1", &["3"]);
        let any = Filter::any([a.clone(), b.clone()]);
        assert_eq!(any.sql, "((x = $1 OR y = $2) OR (z = $3))");
        assert_eq!(any.binds, f("", &["1", "2", "3"]).binds);
        let all = Filter::all([b.clone(), a.clone()]);
        assert_eq!(all.sql, "((z = $1) AND (x = $2 OR y = $3))");
        assert_eq!(all.binds, f("", &["3", "1", "2"]).binds);
        // Nested, the inner filter's placeholders move with it.
        let nested = Filter::all([b.clone(), Filter::any([b.clone(), a.clone()])]);
        assert_eq!(
            nested.sql,
            "((z = $1) AND (((z = $2) OR (x = $3 OR y = $4))))"
        );
        assert_eq!(nested.binds.len(), 4);
        // One filter is only parenthesised.
        assert_eq!(Filter::any([a.clone()]).sql, "(x = $1 OR y = $2)");
        assert_eq!(Filter::all([a.clone()]), Filter::any([a]));
    }

    #[test]
    fn empty_any_is_false_and_empty_all_is_true() {
        assert_eq!(Filter::any([]), f("(FALSE)", &[]));
        assert_eq!(Filter::all([]), f("(TRUE)", &[]));
        // Embedded next to another condition, the empty forms keep their meaning.
        let any = Filter::all([f("a = $1", &["1"]), Filter::any([])]);
        assert_eq!(any.sql, "((a = $1) AND ((FALSE)))");
    }

    #[test]
    fn literals_quote_what_they_hold() {
        let sql = Bind::inline(
            "a = $1 AND b = ANY($2) AND c = $10",
            &[
                Bind::Text("o'brien".into()),
                Bind::TextArray(vec!["x\"y".into(), "z".into()]),
            ],
        );
        assert_eq!(
            sql,
            r#"a = ('o''brien'::text) AND b = ANY(('{"x\"y","z"}'::text[])) AND c = $10"#
        );
    }

    #[test]
    fn renumbers_placeholders() {
        let f = Filter {
            sql: "a = $1 AND b = $2 AND c = '$x'".into(),
            binds: vec![],
        };
        assert_eq!(f.renumbered(3), "a = $4 AND b = $5 AND c = '$x'");
    }
}
