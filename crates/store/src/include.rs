//! `_include` and `_revinclude`: the resources a page of matches refers to, or that refer to it,
//! found through the reference index, optionally iterated.

use std::collections::HashSet;

use diesel::RunQueryDsl;

use crate::access::Access;
use crate::error::StoreError;
use crate::pool::Store;
use crate::query::{FoundResource, FoundRow};
use crate::sql::Bind;

/// Rounds of `:iterate` followed at most.
const MAX_ROUNDS: usize = 4;

/// One `_include` or `_revinclude` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncludeSpec {
    /// `_revinclude` (resources of `source_type` pointing at the results) rather than
    /// `_include` (resources the results of `source_type` point at).
    pub reverse: bool,
    /// The type holding the reference.
    pub source_type: String,
    /// The reference parameter; `None` for `*` (every reference parameter).
    pub param: Option<String>,
    /// Only targets of this type.
    pub target_type: Option<String>,
    /// `:iterate`: apply to included resources too.
    pub iterate: bool,
}

impl Store {
    /// The resources to include alongside `matches`, without duplicates or the matches
    /// themselves, at most `limit`. Returns them and whether the limit cut the set short.
    pub fn include(
        &self,
        specs: &[IncludeSpec],
        matches: &[FoundResource],
        limit: usize,
        access: Option<&Access>,
    ) -> Result<(Vec<FoundResource>, bool), StoreError> {
        include_on(&mut *self.conn()?, specs, matches, limit, access)
    }
}

/// The resources `spec` adds to `frontier`, leaving out those already `seen`, at most `limit`.
fn run_spec(
    conn: &mut diesel::pg::PgConnection,
    spec: &IncludeSpec,
    frontier: &[FoundResource],
    seen: &HashSet<i64>,
    limit: usize,
    access: Option<&Access>,
) -> Result<Vec<FoundResource>, StoreError> {
    let sources: Vec<&FoundResource> = frontier.iter().collect();
    if sources.is_empty()
        || (!spec.reverse && !sources.iter().any(|s| s.res_type == spec.source_type))
    {
        return Ok(Vec::new());
    }
    let mut binds = vec![
        Bind::Text(spec.source_type.clone()),
        Bind::OptText(spec.param.clone()),
        Bind::OptText(spec.target_type.clone()),
        Bind::BigInt(limit as i64),
        Bind::BigIntArray(seen.iter().copied().collect()),
    ];
    // A condition that may be off is left out of the text, never switched off by a bind: the
    // statement is prepared and runs on a generic plan (`Session::include`), which cannot fold
    // `$2 IS NULL OR …` away and would not use the index on the parameter. The binds stay, typed
    // and unused.
    let param = if spec.param.is_some() {
        " AND x.param = $2"
    } else {
        ""
    };
    let sql: String = if spec.reverse {
        binds.push(Bind::TextArray(
            sources.iter().map(|s| s.res_type.clone()).collect(),
        ));
        binds.push(Bind::TextArray(
            sources.iter().map(|s| s.id.clone()).collect(),
        ));
        // $5 is the seen set; the sources are $6 and $7.
        let visible = visible(access, "s", &mut binds);
        format!(
            "SELECT DISTINCT s.rid, s.res_type, s.id, s.version, s.last_updated, s.body, s.compartments, s.org \
             FROM idx_reference x JOIN resource s ON s.rid = x.rid AND NOT s.deleted \
             WHERE x.res_type = $1{param}{target} \
             AND (x.target_type, x.target_id) IN (SELECT * FROM unnest($6::text[], $7::text[])) \
             AND s.rid <> ALL($5) AND {visible} ORDER BY s.rid LIMIT $4",
            target = if spec.target_type.is_some() {
                " AND x.target_type = $3"
            } else {
                ""
            },
        )
    } else {
        binds.push(Bind::BigIntArray(
            sources
                .iter()
                .filter(|s| s.res_type == spec.source_type)
                .map(|s| s.rid)
                .collect(),
        ));
        let visible = visible(access, "t", &mut binds);
        format!(
            "SELECT DISTINCT t.rid, t.res_type, t.id, t.version, t.last_updated, t.body, t.compartments, t.org \
             FROM idx_reference x JOIN resource t ON t.res_type = x.target_type \
             AND t.id = x.target_id AND NOT t.deleted \
             WHERE x.rid = ANY($6) AND x.res_type = $1{param}{target} \
             AND t.rid <> ALL($5) AND {visible} ORDER BY t.rid LIMIT $4",
            target = if spec.target_type.is_some() {
                " AND t.res_type = $3"
            } else {
                ""
            },
        )
    };
    // Every variant starts from its bounded sources (the page's rows), so one plan suits any
    // values: a stable statement.
    let rows: Vec<FoundRow> = crate::shapes::shaped_hinted(&sql, &binds, true).load(conn)?;
    Ok(rows.into_iter().map(FoundResource::from).collect())
}

/// The access condition over `alias`, or `TRUE` without rules.
fn visible(access: Option<&Access>, alias: &str, binds: &mut Vec<Bind>) -> String {
    access.map_or_else(|| "TRUE".into(), |a| a.predicate(alias, binds))
}

pub(crate) fn include_on(
    conn: &mut diesel::pg::PgConnection,
    specs: &[IncludeSpec],
    matches: &[FoundResource],
    limit: usize,
    access: Option<&Access>,
) -> Result<(Vec<FoundResource>, bool), StoreError> {
    let mut seen: HashSet<i64> = matches.iter().map(|m| m.rid).collect();
    let mut found: Vec<FoundResource> = Vec::new();
    let mut frontier: Vec<FoundResource> = matches.to_vec();
    for round in 0..MAX_ROUNDS {
        let mut fresh = Vec::new();
        for spec in specs.iter().filter(|s| round == 0 || s.iterate) {
            // One row beyond the limit says the set was cut; no spec or round loads more than
            // that in all, however many includes a search names.
            let budget = (limit + 1).saturating_sub(found.len() + fresh.len());
            if budget == 0 {
                break;
            }
            let rows = run_spec(conn, spec, &frontier, &seen, budget, access)?;
            for row in rows {
                if seen.insert(row.rid) {
                    fresh.push(row);
                }
            }
        }
        if fresh.is_empty() {
            break;
        }
        found.extend(fresh.iter().cloned());
        if found.len() > limit {
            found.truncate(limit);
            return Ok((found, true));
        }
        frontier = fresh;
    }
    Ok((found, false))
}
