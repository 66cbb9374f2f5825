//! Running a compiled search: current, non-deleted resources matching a filter, in a stable order,
//! one page at a time with a keyset cursor (never OFFSET over a changing set).

use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Bytea, Integer, Text, Timestamptz};
use diesel::{QueryableByName, RunQueryDsl};

use crate::error::StoreError;
use crate::pool::Store;
use crate::sql::{query, Bind, Filter};

/// A column a search can be ordered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortColumn {
    /// `_lastUpdated`.
    LastUpdated,
    /// `_id`.
    Id,
}

/// One ordering key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortKey {
    /// What to order by.
    pub column: SortColumn,
    /// Newest/largest first.
    pub descending: bool,
}

/// Where the previous page ended: the sort-key values of its last row and that row's `rid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// One value per sort key, as text (`last_updated` as RFC 3339 with microseconds).
    pub values: Vec<String>,
    /// The row id, the final tie-breaker.
    pub rid: i64,
}

/// A search to run.
#[derive(Debug, Clone)]
pub struct ResourceQuery {
    /// Resource types searched (one for a type search, several for `_type`).
    pub types: Vec<String>,
    /// Only resources in this patient's compartment.
    pub compartment: Option<String>,
    /// Conditions over `resource r`.
    pub filter: Option<Filter>,
    /// Ordering; `rid` is always the last tie-breaker.
    pub sort: Vec<SortKey>,
    /// Continue after this row.
    pub after: Option<Cursor>,
    /// Rows created after the first page was served are left out (largest `rid` then).
    pub snapshot: Option<i64>,
    /// Page size.
    pub limit: i64,
    /// Count all matches too.
    pub count_total: bool,
}

/// A matching resource.
#[derive(Debug, Clone, QueryableByName)]
pub struct FoundResource {
    /// Row id (cursor tie-breaker).
    #[diesel(sql_type = BigInt)]
    pub rid: i64,
    /// Resource type.
    #[diesel(sql_type = Text)]
    pub res_type: String,
    /// Logical id.
    #[diesel(sql_type = Text)]
    pub id: String,
    /// Current version.
    #[diesel(sql_type = Integer)]
    pub version: i32,
    /// When it was written.
    #[diesel(sql_type = Timestamptz)]
    pub last_updated: DateTime<Utc>,
    /// The stored body.
    #[diesel(sql_type = Bytea)]
    pub body: Vec<u8>,
}

/// A page of results.
#[derive(Debug, Clone)]
pub struct ResourcePage {
    /// The matches on this page.
    pub rows: Vec<FoundResource>,
    /// All matches, when asked for.
    pub total: Option<i64>,
    /// True when another page follows.
    pub more: bool,
    /// The snapshot to carry to the following pages.
    pub snapshot: i64,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

impl Store {
    /// Runs a search page.
    pub fn query_resources(&self, q: &ResourceQuery) -> Result<ResourcePage, StoreError> {
        let mut conn = self.conn()?;
        let snapshot = match q.snapshot {
            Some(s) => s,
            None => {
                let rows: Vec<Count> =
                    query("SELECT COALESCE(MAX(rid), 0) AS n FROM resource", &[])
                        .load(&mut conn)?;
                rows.first().map_or(0, |c| c.n)
            }
        };
        let mut binds = vec![Bind::TextArray(q.types.clone()), Bind::BigInt(snapshot)];
        let mut conds = vec![
            "r.res_type = ANY($1)".to_string(),
            "NOT r.deleted".to_string(),
            "r.rid <= $2".to_string(),
        ];
        if let Some(patient) = &q.compartment {
            binds.push(Bind::TextArray(vec![patient.clone()]));
            conds.push(format!("r.compartments @> ${}", binds.len()));
        }
        if let Some(filter) = &q.filter {
            conds.push(format!("({})", filter.renumbered(binds.len())));
            binds.extend(filter.binds.iter().cloned());
        }
        let total = if q.count_total {
            let sql = format!(
                "SELECT COUNT(*) AS n FROM resource r WHERE {}",
                conds.join(" AND ")
            );
            let rows: Vec<Count> = query(&sql, &binds).load(&mut conn)?;
            Some(rows.first().map_or(0, |c| c.n))
        } else {
            None
        };
        let mut page_conds = conds.clone();
        let mut page_binds = binds.clone();
        if let Some(after) = &q.after {
            page_conds.push(keyset_condition(&q.sort, after, &mut page_binds)?);
        }
        let mut order: Vec<String> = q
            .sort
            .iter()
            .map(|k| {
                format!(
                    "{} {}",
                    column(k.column),
                    if k.descending { "DESC" } else { "ASC" }
                )
            })
            .collect();
        order.push("r.rid ASC".into());
        page_binds.push(Bind::BigInt(q.limit + 1));
        let sql = format!(
            "SELECT r.rid, r.res_type, r.id, r.version, r.last_updated, r.body FROM resource r \
             WHERE {} ORDER BY {} LIMIT ${}",
            page_conds.join(" AND "),
            order.join(", "),
            page_binds.len()
        );
        let mut rows: Vec<FoundResource> = query(&sql, &page_binds).load(&mut conn)?;
        let more = rows.len() as i64 > q.limit;
        rows.truncate(q.limit.max(0) as usize);
        Ok(ResourcePage {
            rows,
            total,
            more,
            snapshot,
        })
    }
}

fn column(c: SortColumn) -> &'static str {
    match c {
        SortColumn::LastUpdated => "r.last_updated",
        SortColumn::Id => "r.id",
    }
}

/// Rows strictly after the cursor in the (mixed-direction) sort order, `rid` last:
/// `(k1 > v1) OR (k1 = v1 AND k2 > v2) OR … OR (all equal AND rid > r)`.
fn keyset_condition(
    sort: &[SortKey],
    after: &Cursor,
    binds: &mut Vec<Bind>,
) -> Result<String, StoreError> {
    if after.values.len() != sort.len() {
        return Err(StoreError::Invalid(
            "the paging cursor does not fit this search".into(),
        ));
    }
    let mut placeholders = Vec::new();
    for (key, value) in sort.iter().zip(&after.values) {
        match key.column {
            SortColumn::LastUpdated => {
                let at = DateTime::parse_from_rfc3339(value)
                    .map_err(|_| StoreError::Invalid("the paging cursor is damaged".into()))?
                    .with_timezone(&Utc);
                binds.push(Bind::OptTime(Some(at)));
            }
            SortColumn::Id => binds.push(Bind::Text(value.clone())),
        }
        placeholders.push(format!("${}", binds.len()));
    }
    binds.push(Bind::BigInt(after.rid));
    let rid = format!("${}", binds.len());
    let mut alternatives = Vec::new();
    for i in 0..=sort.len() {
        let mut parts: Vec<String> = (0..i)
            .map(|j| format!("{} = {}", column(sort[j].column), placeholders[j]))
            .collect();
        if i < sort.len() {
            let op = if sort[i].descending { "<" } else { ">" };
            parts.push(format!(
                "{} {op} {}",
                column(sort[i].column),
                placeholders[i]
            ));
        } else {
            parts.push(format!("r.rid > {rid}"));
        }
        alternatives.push(format!("({})", parts.join(" AND ")));
    }
    Ok(format!("({})", alternatives.join(" OR ")))
}
