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
        };
    }
    q
}

#[cfg(test)]
mod tests {
    use super::Filter;

    #[test]
    fn renumbers_placeholders() {
        let f = Filter {
            sql: "a = $1 AND b = $2 AND c = '$x'".into(),
            binds: vec![],
        };
        assert_eq!(f.renumbered(3), "a = $4 AND b = $5 AND c = '$x'");
    }
}
