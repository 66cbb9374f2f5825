//! Running a compiled search: current, non-deleted resources matching a filter, in a stable order,
//! one page at a time with a keyset cursor (never OFFSET over a changing set).

use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Bytea, Integer, Text, Timestamptz};
use diesel::{QueryableByName, RunQueryDsl};

use crate::access::Access;
use crate::error::StoreError;
use crate::pool::Store;
use crate::sql::{query, Bind, Filter};

/// What a search can be ordered by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortColumn {
    /// `_lastUpdated`.
    LastUpdated,
    /// `_id`.
    Id,
    /// A string parameter (its normalised value).
    String(String),
    /// A token parameter (its code).
    Token(String),
    /// A date parameter (range start ascending, range end descending).
    Date(String),
    /// A number parameter.
    Number(String),
    /// A quantity parameter.
    Quantity(String),
    /// The clinical date on the compartment's patient's timeline (`fhir_model::timeline`);
    /// only for a compartment search, and only resources that are events match it.
    EventDate,
}

/// One ordering key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortKey {
    /// What to order by.
    pub column: SortColumn,
    /// Newest/largest first.
    pub descending: bool,
}

/// Where the previous page ended: the sort-key values of its last row and that row's `rid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// One value per sort key, as text (instants as RFC 3339 with microseconds); `None` when
    /// the row has no value for that key (such rows sort last).
    pub values: Vec<Option<String>>,
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
    /// With `compartment`: also the resources that these compartment types' members the
    /// request may see refer to (`$everything`'s Practitioners, Organizations, Locations …).
    pub referenced_from: Option<Vec<String>>,
    /// Conditions over `resource r`.
    pub filter: Option<Filter>,
    /// Ordering; `rid` is always the last tie-breaker.
    pub sort: Vec<SortKey>,
    /// Continue after this row.
    pub after: Option<Cursor>,
    /// With `after`: the page that ends just before that row instead (a `previous` link).
    pub backward: bool,
    /// Rows created after the first page was served are left out (largest `rid` then).
    pub snapshot: Option<i64>,
    /// Page size.
    pub limit: i64,
    /// Count all matches too.
    pub count_total: bool,
    /// The request's access rules; `None` admits everything.
    pub access: Option<Access>,
    /// The search's shape keeps one good plan whatever its values (crate `search`: an anchor
    /// such as the patient or an identifier, every other condition fenced), so its statements
    /// may run as prepared statements on PostgreSQL's generic plan.
    pub stable_plan: bool,
}

impl ResourceQuery {
    /// True when the statements of this search are marked stable: a stable shape outside a
    /// compartment and the audit trail, whose statements have shapes of their own; or the
    /// first page of a search in a patient's compartment (`$everything`, `$timeline`, a
    /// compartment search without parameters or of a stable shape, the compartment being its
    /// anchor), whose statement this crate writes: anchored on the patient (the compartment's
    /// GIN index or the timeline's), every other condition fenced (see [`Base::of`]). Planning
    /// was more than half of PostgreSQL's time for such a page.
    fn stable_statements(&self) -> bool {
        if self.types.iter().any(|t| t == "AuditEvent") {
            return false;
        }
        match &self.compartment {
            None => self.stable_plan && self.referenced_from.is_none(),
            Some(_) => (self.filter.is_none() || self.stable_plan) && self.after.is_none(),
        }
    }

    /// True when this search's statements run on PostgreSQL's generic plan
    /// ([`crate::plan_mode`]): stable statements, unless prepared searches are off.
    pub(crate) fn generic_plan(&self) -> bool {
        self.stable_statements() && crate::shapes::generic_plans_allowed()
    }
}

/// A matching resource.
#[derive(Debug, Clone)]
pub struct FoundResource {
    /// Row id (cursor tie-breaker).
    pub rid: i64,
    /// Resource type.
    pub res_type: String,
    /// Logical id.
    pub id: String,
    /// Current version.
    pub version: i32,
    /// When it was written.
    pub last_updated: DateTime<Utc>,
    /// The stored body.
    pub body: Vec<u8>,
    /// The values of the search's sort keys for this row (for the next page's cursor).
    pub sort_values: Vec<Option<String>>,
    /// The patients whose compartment holds the resource.
    pub compartments: Vec<String>,
    /// ODS code of the organisation whose client wrote this version, when known.
    pub org: Option<String>,
    /// On a timeline: the event's clinical date and the element that gave it.
    pub event: Option<(DateTime<Utc>, String)>,
}

/// A resource row as loaded.
#[derive(QueryableByName)]
pub(crate) struct FoundRow {
    #[diesel(sql_type = BigInt)]
    rid: i64,
    #[diesel(sql_type = Text)]
    res_type: String,
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Integer)]
    version: i32,
    #[diesel(sql_type = Timestamptz)]
    last_updated: DateTime<Utc>,
    #[diesel(sql_type = Bytea)]
    body: Vec<u8>,
    #[diesel(sql_type = diesel::sql_types::Array<Text>)]
    compartments: Vec<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    org: Option<String>,
}

impl From<FoundRow> for FoundResource {
    fn from(r: FoundRow) -> Self {
        FoundResource {
            rid: r.rid,
            res_type: r.res_type,
            id: r.id,
            version: r.version,
            last_updated: r.last_updated,
            body: r.body,
            sort_values: Vec::new(),
            compartments: r.compartments,
            org: r.org,
            event: None,
        }
    }
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
    /// True when matches were left out only by limits break-glass would lift (relationship,
    /// `R` labels), so the client can be told that something was withheld.
    pub withheld: bool,
}

#[derive(QueryableByName)]
struct PlanLine {
    #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
    line: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Sort keys a search may have.
pub const MAX_SORT_KEYS: usize = 3;

impl Store {
    /// The SQL a search page runs (values stay placeholders) and PostgreSQL's plan for it,
    /// for operators diagnosing a slow search.
    /// The third string is the statement with its values inlined as literals, for running it
    /// by hand (`psql`, `pgbench`).
    pub fn explain_query(&self, q: &ResourceQuery) -> Result<(String, String, String), StoreError> {
        let mut conn = self.conn()?;
        let base = Base::of(q, q.snapshot)?;
        // A first page under liftable rules reads the lifted set (see `query_resources_on`).
        let page = match base.liftable() {
            Some(access) if q.after.is_none() => base.lifted_page(q, q.snapshot, access),
            _ if q.after.is_none() => base.first_visible_page(q),
            _ => base.visible_page(q, q.snapshot),
        };
        let rows: Vec<PlanLine> = query(
            &format!("EXPLAIN (ANALYZE, BUFFERS) {}", page.sql),
            &page.binds,
        )
        .load(&mut conn)?;
        let plan: Vec<String> = rows.into_iter().map(|r| r.line).collect();
        let literal = Bind::inline(&page.sql, &page.binds);
        Ok((page.sql, plan.join("\n"), literal))
    }

    /// Runs a search page.
    pub fn query_resources(&self, q: &ResourceQuery) -> Result<ResourcePage, StoreError> {
        query_resources_on(&mut *self.conn()?, q)
    }
}

#[derive(QueryableByName)]
struct CountWithheld {
    #[diesel(sql_type = BigInt)]
    n: i64,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    withheld: bool,
}

/// One statement with its binds.
struct PageStatement {
    sql: String,
    binds: Vec<Bind>,
    /// The search's shape keeps one good plan whatever its values (`ResourceQuery::stable_plan`).
    stable: bool,
}

/// The conditions every statement of a search shares (types, snapshot, compartment, filter),
/// before the access rules. Statements are built from it only when they run: building SQL
/// text shows in a search's profile.
struct Base {
    /// The relations the statements read: the resource table, or the patient's timeline
    /// joined to it, or the audit trail.
    from: &'static str,
    /// The table whose largest row id is a snapshot of what the search reads.
    table: &'static str,
    /// True when the search reads the audit trail (AuditEvent).
    audit: bool,
    /// The row id column the order and cursors end on.
    rid: &'static str,
    conds: Vec<String>,
    binds: Vec<Bind>,
    /// The request's rules narrowed to the searched types.
    access: Option<Access>,
    /// True when the first page's statement also counts every match (a compartment's record).
    counted: bool,
    /// Statements may run on a generic plan (`ResourceQuery::stable_statements`).
    stable: bool,
}

impl Base {
    /// The shared conditions of `q` at `snapshot` (`None`: the first page, whose statement
    /// reads the snapshot itself).
    fn of(q: &ResourceQuery, snapshot: Option<i64>) -> Result<Base, StoreError> {
        if q.sort.len() > MAX_SORT_KEYS {
            return Err(StoreError::Invalid(format!(
                "at most {MAX_SORT_KEYS} _sort keys are supported"
            )));
        }
        if q.after
            .as_ref()
            .is_some_and(|a| a.values.len() != q.sort.len())
        {
            return Err(StoreError::Invalid(
                "the paging cursor does not fit this search".into(),
            ));
        }
        let mut binds = vec![
            Bind::TextArray(q.types.clone()),
            Bind::BigInt(snapshot.unwrap_or(i64::MAX)),
        ];
        let timeline = q.sort.iter().any(|k| k.column == SortColumn::EventDate);
        let audit = q.types.iter().any(|t| t == "AuditEvent");
        // In a compartment the patient's index is where every plan must start. On a generic
        // plan (`stable_statements`) PostgreSQL cannot see that the type list is nearly every
        // type and that the snapshot bounds nothing, and ANDed bitmaps of the type and row-id
        // indexes (every row of the table) with the compartment's: 8–10 ms instead of 0.6.
        // `|| ''` and `+ 0` keep the two conditions checks of the rows found.
        let fenced = q.compartment.is_some() && !audit;
        let (of_type, in_snapshot) = if fenced {
            ("r.res_type || '' = ANY($1)", "r.rid + 0 <= $2")
        } else {
            ("r.res_type = ANY($1)", "r.rid <= $2")
        };
        let mut conds = vec![
            of_type.to_string(),
            "NOT r.deleted".to_string(),
            in_snapshot.to_string(),
        ];
        if audit {
            if q.types.len() != 1 || timeline || q.referenced_from.is_some() {
                return Err(StoreError::Invalid(
                    "AuditEvents are searched on their own".into(),
                ));
            }
            // The audit trail's rows carry their patients as keys under its GIN index; the
            // compartment condition itself is checked on the row.
            let patients = q
                .compartment
                .iter()
                .chain(q.access.as_ref().and_then(|a| a.compartment.as_ref()));
            for p in patients {
                binds.push(Bind::TextArray(vec![crate::audit_keys::reference_key(
                    "patient",
                    &format!("Patient/{p}"),
                )]));
                conds.push(format!("r.keys @> ${}", binds.len()));
            }
        }
        let (from, rid) = match (&q.compartment, timeline) {
            (Some(patient), true) => {
                if q.sort.len() != 1 {
                    return Err(StoreError::Invalid(
                        "a timeline is ordered by its date alone".into(),
                    ));
                }
                // Walks the (patient, at, rid) index in order: a page reads about its own
                // length of rows however long the record is.
                binds.push(Bind::Text(patient.clone()));
                conds.push(format!("t.patient = ${}", binds.len()));
                conds.push("t.res_type = ANY($1)".into());
                ("idx_timeline t JOIN resource r ON r.rid = t.rid", "t.rid")
            }
            (None, true) => {
                return Err(StoreError::Invalid(
                    "only a patient's compartment has a timeline".into(),
                ))
            }
            (Some(patient), false) => {
                binds.push(Bind::TextArray(vec![patient.clone()]));
                let member = binds.len();
                match &q.referenced_from {
                    None => conds.push(format!("r.compartments @> ${member}")),
                    Some(sources) => {
                        // A union of row ids, so each set is read by its own index: the
                        // compartment's by GIN, the referenced ones by (type, id).
                        binds.push(Bind::TextArray(sources.clone()));
                        let source_types = binds.len();
                        let visible = match &q.access {
                            Some(a) => a
                                .narrowed_to(sources)
                                .anchored_on(patient)
                                .predicate("s", &mut binds),
                            None => "TRUE".into(),
                        };
                        // The visible members are read once, by the GIN index, then their
                        // references by row id: never from the referenced side, where one
                        // practice is referred to by every patient it has.
                        conds.push(format!(
                            "r.rid IN (WITH m AS MATERIALIZED (SELECT s.rid, s.res_type \
                             FROM resource s WHERE s.compartments @> ${member} AND NOT s.deleted \
                             AND s.rid + 0 <= $2 AND s.res_type || '' = ANY(${source_types}) \
                             AND {visible}), \
                             refs AS MATERIALIZED (SELECT DISTINCT x.target_type, x.target_id \
                             FROM m JOIN idx_reference x ON x.rid = m.rid AND x.res_type = m.res_type \
                             WHERE x.target_id IS NOT NULL) \
                             SELECT m.rid FROM m UNION SELECT t.rid FROM refs \
                             JOIN resource t ON t.res_type = refs.target_type AND t.id = refs.target_id \
                             WHERE cardinality(t.compartments) = 0)"
                        ));
                    }
                }
                ("resource r", "r.rid")
            }
            (None, false) => ("resource r", "r.rid"),
        };
        let (from, table) = if audit {
            ("audit_resource r", "audit_event")
        } else {
            (from, "resource")
        };
        if let Some(filter) = &q.filter {
            conds.push(format!("({})", filter.renumbered(binds.len())));
            binds.extend(filter.binds.iter().cloned());
        }
        // A compartment's rows all name its patient, whose relationship is then looked up once.
        let access = q.access.as_ref().map(|a| match &q.compartment {
            Some(patient) if !audit => a.narrowed_to(&q.types).anchored_on(patient),
            _ => a.narrowed_to(&q.types),
        });
        // One patient's record is a few hundred rows, which the first page's statement reads
        // in full anyway (the union of members and what they refer to, or the timeline); it
        // counts them on the way instead of a second statement planning and reading them again.
        let counted = q.compartment.is_some() && !audit;
        Ok(Base {
            from,
            table,
            audit,
            rid,
            conds,
            binds,
            access,
            counted,
            stable: q.stable_statements(),
        })
    }

    /// The conditions with the request's access rules added, and their binds.
    fn visible(&self) -> (Vec<String>, Vec<Bind>) {
        let (mut conds, mut binds) = (self.conds.clone(), self.binds.clone());
        if let Some(access) = &self.access {
            let cond = access.predicate("r", &mut binds);
            conds.push(cond);
        }
        (conds, binds)
    }

    /// The rules when break-glass or a relationship claim could show more than they do.
    fn liftable(&self) -> Option<&Access> {
        self.access.as_ref().filter(|a| a.liftable())
    }

    /// The page of the rows the request may see.
    fn visible_page(&self, q: &ResourceQuery, snapshot: Option<i64>) -> PageStatement {
        let (conds, binds) = self.visible();
        page_statement(self, q, snapshot, conds, binds, "TRUE", false)
    }

    /// The first page of the rows the request may see, counted when the search is `counted`.
    fn first_visible_page(&self, q: &ResourceQuery) -> PageStatement {
        let (conds, binds) = self.visible();
        page_statement(self, q, q.snapshot, conds, binds, "TRUE", self.counted)
    }

    /// The page of the rows break-glass would show (`access` lifted), each flagged visible
    /// under `access` or not.
    fn lifted_page(
        &self,
        q: &ResourceQuery,
        snapshot: Option<i64>,
        access: &Access,
    ) -> PageStatement {
        let (mut conds, mut binds) = (self.conds.clone(), self.binds.clone());
        conds.push(access.lifted().predicate("r", &mut binds));
        let flag = access.predicate("r", &mut binds);
        let counted = self.counted && q.after.is_none();
        page_statement(self, q, snapshot, conds, binds, &flag, counted)
    }

    /// All visible matches counted.
    fn count(&self) -> PageStatement {
        let (conds, binds) = self.visible();
        PageStatement {
            sql: format!(
                "SELECT COUNT(*) AS n FROM {} WHERE {}",
                self.from,
                conds.join(" AND ")
            ),
            binds,
            stable: self.stable,
        }
    }

    /// Whether matches were withheld by liftable limits, with the total of the visible ones
    /// (`total`) or alone.
    fn withheld(&self, access: &Access, total: bool) -> PageStatement {
        let mut binds = self.binds.clone();
        let lifted = access.lifted().predicate("r", &mut binds);
        let visible = access.predicate("r", &mut binds);
        let base = self.conds.join(" AND ");
        let from = self.from;
        let sql = if total {
            // The visible condition appears once, so PostgreSQL plans its relationship
            // lookup once (planning, not execution, dominates these searches).
            format!(
                "SELECT COUNT(*) FILTER (WHERE s.v) AS n, \
                 COALESCE(bool_or(NOT s.v), FALSE) AS withheld \
                 FROM (SELECT ({visible}) AS v FROM {from} WHERE {base} AND {lifted}) s"
            )
        } else {
            format!(
                "SELECT COUNT(*) AS n FROM (SELECT 1 FROM {from} WHERE {base} AND {lifted} \
                 AND NOT ({visible}) LIMIT 1) w"
            )
        };
        PageStatement {
            sql,
            binds,
            stable: self.stable,
        }
    }
}

/// The page statement over `conds`: each row with its sort values (`s0`..`s2`), `flag` as `v`
/// and the snapshot as `snap` (read in the same statement when not known yet). When `counted`,
/// every row also carries the number of matches `flag` admits (`n_all`) and whether it left any
/// out (`w_all`), over the whole set rather than the page.
fn page_statement(
    base: &Base,
    q: &ResourceQuery,
    snapshot: Option<i64>,
    mut conds: Vec<String>,
    mut binds: Vec<Bind>,
    flag: &str,
    counted: bool,
) -> PageStatement {
    let exprs: Vec<String> = q
        .sort
        .iter()
        .map(|k| sort_expr(k, base.audit, &mut binds))
        .collect();
    if let Some(after) = &q.after {
        conds.push(keyset_condition(
            &q.sort, &exprs, after, q.backward, base.rid, &mut binds,
        ));
    }
    // Counted, the rows are read in a subquery that PostgreSQL may not flatten, so that each
    // row's `flag` (with its relationship lookup) and sort values are computed once, and the
    // order and counts refer to them by name. The counts hold every row until the last is
    // read, so those rows are narrow; the page's bodies are joined after the limit.
    let (keys, rid): (Vec<String>, String) = if counted {
        (
            (0..exprs.len()).map(|i| format!("p.o{i}")).collect(),
            "p.k".into(),
        )
    } else {
        (exprs.clone(), base.rid.into())
    };
    let order_by = |keys: &[String], rid: &str| -> String {
        let mut order: Vec<String> = q
            .sort
            .iter()
            .zip(keys)
            .map(|(k, e)| {
                let dir = if k.descending { "DESC" } else { "ASC" };
                // Walking backwards reads the same order reversed, then flips the page.
                match (dir, q.backward) {
                    ("ASC", false) => format!("{e} ASC NULLS LAST"),
                    ("DESC", false) => format!("{e} DESC NULLS LAST"),
                    ("ASC", true) => format!("{e} DESC NULLS FIRST"),
                    _ => format!("{e} ASC NULLS FIRST"),
                }
            })
            .collect();
        order.push(format!("{rid} {}", if q.backward { "DESC" } else { "ASC" }));
        order.join(", ")
    };
    let order = order_by(&keys, &rid);
    // Each row's sort values (s0..s2) for the next cursor.
    let values: String = (0..MAX_SORT_KEYS)
        .map(|i| match keys.get(i) {
            Some(e) => format!(", ({e})::text AS s{i}"),
            None => format!(", NULL::text AS s{i}"),
        })
        .collect();
    // The largest row id the statement sees: every row it returns is at or below it.
    let snap = match snapshot {
        Some(_) => "$2",
        None => &format!("(SELECT COALESCE(MAX(x.rid), 0) FROM {} x)", base.table),
    };
    binds.push(Bind::BigInt(q.limit.max(0) + 1));
    let event = if base.rid == "t.rid" {
        "t.at AS ev_at, t.param AS ev"
    } else {
        "NULL::timestamptz AS ev_at, NULL::text AS ev"
    };
    let sql = if counted {
        let sorted: String = exprs
            .iter()
            .enumerate()
            .map(|(i, e)| format!(", {e} AS o{i}"))
            .collect();
        let kept: String = (0..exprs.len()).map(|i| format!(", p.o{i}")).collect();
        let outer_keys: Vec<String> = (0..exprs.len()).map(|i| format!("w.o{i}")).collect();
        format!(
            "SELECT b.rid, b.res_type, b.id, b.version, b.last_updated, b.body, b.compartments, \
             b.org, w.s0, w.s1, w.s2, w.ev_at, w.ev, w.v, w.n_all, w.w_all, w.snap \
             FROM (SELECT p.rid{values}, p.ev_at, p.ev, p.v, \
             COUNT(*) FILTER (WHERE p.v) OVER () AS n_all, \
             COALESCE(bool_or(NOT p.v) OVER (), FALSE) AS w_all, {snap} AS snap{kept}, p.k \
             FROM (SELECT r.rid, {event}, ({flag}) AS v{sorted}, {} AS k FROM {} WHERE {} \
             OFFSET 0) p ORDER BY {order} LIMIT ${}) w JOIN resource b ON b.rid = w.rid \
             ORDER BY {}",
            base.rid,
            base.from,
            conds.join(" AND "),
            binds.len(),
            order_by(&outer_keys, "w.k"),
        )
    } else {
        format!(
            "SELECT r.rid, r.res_type, r.id, r.version, r.last_updated, r.body, r.compartments, \
             r.org{values}, {event}, ({flag}) AS v, NULL::bigint AS n_all, \
             FALSE AS w_all, {snap} AS snap FROM {} WHERE {} ORDER BY {order} LIMIT ${}",
            base.from,
            conds.join(" AND "),
            binds.len()
        )
    };
    PageStatement {
        sql,
        binds,
        stable: base.stable,
    }
}

/// The SQL value a sort key orders by, per resource row `r`.
fn sort_expr(key: &SortKey, audit: bool, binds: &mut Vec<Bind>) -> String {
    if audit {
        // The audit trail's one date is a column of its own (its `date`, AuditEvent.recorded);
        // the search compiler offers no other sort for it.
        return match &key.column {
            SortColumn::LastUpdated => "r.last_updated".into(),
            SortColumn::Id => "r.id".into(),
            _ => "r.recorded".into(),
        };
    }
    let mut sub = |table: &str, column: &str| {
        binds.push(match &key.column {
            SortColumn::String(p)
            | SortColumn::Token(p)
            | SortColumn::Date(p)
            | SortColumn::Number(p)
            | SortColumn::Quantity(p) => Bind::Text(p.clone()),
            _ => Bind::Text(String::new()),
        });
        // Ascending sorts use a resource's lowest value, descending its highest (R4 search).
        let agg = if key.descending { "MAX" } else { "MIN" };
        // `res_type` lets each row's lookup skip the other partition of the index table (the
        // audit trail's, or the record's) instead of probing both.
        format!(
            "(SELECT {agg}(x.{column}) FROM {table} x \
             WHERE x.rid = r.rid AND x.res_type = r.res_type AND x.param = ${})",
            binds.len()
        )
    };
    match &key.column {
        SortColumn::LastUpdated => "r.last_updated".into(),
        SortColumn::EventDate => "t.at".into(),
        SortColumn::Id => "r.id".into(),
        SortColumn::String(_) => sub("idx_string", "norm"),
        SortColumn::Token(_) => sub("idx_token", "code"),
        SortColumn::Date(_) if key.descending => sub("idx_date", "hi"),
        SortColumn::Date(_) => sub("idx_date", "lo"),
        SortColumn::Number(_) => sub("idx_number", "value"),
        SortColumn::Quantity(_) => sub("idx_quantity", "value"),
    }
}

/// The SQL type a cursor value is cast to for comparison with the key's expression.
fn cast(column: &SortColumn) -> &'static str {
    match column {
        SortColumn::LastUpdated | SortColumn::Date(_) | SortColumn::EventDate => "::timestamptz",
        SortColumn::Number(_) | SortColumn::Quantity(_) => "::numeric",
        _ => "",
    }
}

/// Rows strictly after (or, `backward`, strictly before) the cursor in the sort order (NULLS
/// LAST, `rid` the final tie-breaker):
/// for each key i, all earlier keys equal and key i after; or all equal and `rid` greater.
fn keyset_condition(
    sort: &[SortKey],
    exprs: &[String],
    after: &Cursor,
    backward: bool,
    rid_column: &str,
    binds: &mut Vec<Bind>,
) -> String {
    if let ([key], [Some(v)]) = (sort, after.values.as_slice()) {
        if key.column == SortColumn::EventDate {
            // Never null, so one row comparison, which the timeline index can start from.
            binds.push(Bind::Text(v.clone()));
            binds.push(Bind::BigInt(after.rid));
            let op = if key.descending != backward { "<" } else { ">" };
            return format!(
                "(t.at, t.rid) {op} (${}::timestamptz, ${})",
                binds.len() - 1,
                binds.len()
            );
        }
    }
    let mut equal = Vec::new();
    let mut beyond = Vec::new();
    for ((key, expr), value) in sort.iter().zip(exprs).zip(&after.values) {
        match value {
            Some(v) => {
                binds.push(Bind::Text(v.clone()));
                let ph = format!("${}{}", binds.len(), cast(&key.column));
                equal.push(format!("{expr} = {ph}"));
                // Missing values sort after every present one.
                beyond.push(match (key.descending != backward, backward) {
                    (false, false) => format!("({expr} > {ph} OR {expr} IS NULL)"),
                    (true, false) => format!("({expr} < {ph} OR {expr} IS NULL)"),
                    (false, true) => format!("{expr} > {ph}"),
                    (true, true) => format!("{expr} < {ph}"),
                });
            }
            None => {
                equal.push(format!("{expr} IS NULL"));
                beyond.push(if backward {
                    format!("{expr} IS NOT NULL")
                } else {
                    "FALSE".into()
                });
            }
        }
    }
    binds.push(Bind::BigInt(after.rid));
    let rid = format!("${}", binds.len());
    let mut alternatives = Vec::new();
    for i in 0..=sort.len() {
        let mut parts: Vec<String> = equal[..i].to_vec();
        parts.push(if i < sort.len() {
            beyond[i].clone()
        } else {
            format!("{rid_column} {} {rid}", if backward { "<" } else { ">" })
        });
        alternatives.push(format!("({})", parts.join(" AND ")));
    }
    format!("({})", alternatives.join(" OR "))
}

/// A page row: the resource, its sort values, whether the request may see it and the snapshot.
#[derive(QueryableByName)]
struct PageRow {
    #[diesel(embed)]
    found: FoundRow,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    s0: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    s1: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    s2: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<Timestamptz>)]
    ev_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    ev: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    v: bool,
    #[diesel(sql_type = diesel::sql_types::Nullable<BigInt>)]
    n_all: Option<i64>,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    w_all: bool,
    #[diesel(sql_type = BigInt)]
    snap: i64,
}

/// A loaded page row.
struct Loaded {
    found: FoundResource,
    visible: bool,
    snapshot: i64,
    /// From a counted statement: every match the request may see, and whether any was withheld.
    counts: Option<(i64, bool)>,
}

/// Runs a page statement.
fn load_page(
    conn: &mut diesel::pg::PgConnection,
    st: &PageStatement,
    keys: usize,
) -> Result<Vec<Loaded>, StoreError> {
    let rows: Vec<PageRow> =
        crate::shapes::shaped_hinted(&st.sql, &st.binds, st.stable).load(conn)?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let mut found = FoundResource::from(r.found);
            found.sort_values = [r.s0, r.s1, r.s2].into_iter().take(keys).collect();
            found.event = r.ev_at.zip(r.ev);
            Loaded {
                found,
                visible: r.v,
                snapshot: r.snap,
                counts: r.n_all.map(|n| (n, r.w_all)),
            }
        })
        .collect())
}

pub(crate) fn query_resources_on(
    conn: &mut diesel::pg::PgConnection,
    q: &ResourceQuery,
) -> Result<ResourcePage, StoreError> {
    let keys = q.sort.len();
    if q.after.is_some() {
        let snapshot = match q.snapshot {
            Some(s) => s,
            None => {
                let table = if q.types.iter().any(|t| t == "AuditEvent") {
                    "audit_event"
                } else {
                    "resource"
                };
                let rows: Vec<Count> = query(
                    &format!("SELECT COALESCE(MAX(rid), 0) AS n FROM {table}"),
                    &[],
                )
                .load(conn)?;
                rows.first().map_or(0, |c| c.n)
            }
        };
        return counted_page(conn, q, snapshot, None, None);
    }
    // A first page that is not full holds every match: its length is the total and no count
    // runs, so the common patient-centred search is one statement (planning dominates).
    let base = Base::of(q, q.snapshot)?;
    let limit = q.limit.max(0) as usize;
    let lifted = base.liftable();
    let page = match lifted {
        Some(access) => load_page(conn, &base.lifted_page(q, q.snapshot, access), keys)?,
        None => load_page(conn, &base.first_visible_page(q), keys)?,
    };
    let Some(snapshot) = page.first().map(|r| r.snapshot) else {
        return Ok(ResourcePage {
            rows: Vec::new(),
            total: q.count_total.then_some(0),
            more: false,
            snapshot: q.snapshot.unwrap_or(0),
            withheld: false,
        });
    };
    if page.len() <= limit {
        let withheld = page.iter().any(|r| !r.visible);
        let rows: Vec<FoundResource> = page
            .into_iter()
            .filter(|r| r.visible)
            .map(|r| r.found)
            .collect();
        return Ok(ResourcePage {
            total: q.count_total.then_some(rows.len() as i64),
            rows,
            more: false,
            snapshot,
            withheld,
        });
    }
    let counts = page.first().and_then(|r| r.counts);
    // The first rows of the lifted set, all visible, are also the first visible rows.
    let known = (lifted.is_none() || page.iter().all(|r| r.visible))
        .then(|| page.into_iter().map(|r| r.found).collect());
    counted_page(conn, q, snapshot, known, counts)
}

/// A page at a known snapshot with its total and withheld flag; `known` holds the page's rows
/// (up to one more than the limit) when they are already loaded, `counts` the total and
/// withheld flag when the page's statement counted them.
fn counted_page(
    conn: &mut diesel::pg::PgConnection,
    q: &ResourceQuery,
    snapshot: i64,
    known: Option<Vec<FoundResource>>,
    counts: Option<(i64, bool)>,
) -> Result<ResourcePage, StoreError> {
    let base = Base::of(q, Some(snapshot))?;
    // With a total to count and liftable rules, one pass over the lifted set gives both the
    // total and whether anything was withheld.
    let (total, withheld) = match (q.count_total, base.liftable(), counts) {
        (_, _, Some((n, withheld))) => (q.count_total.then_some(n), withheld),
        (true, Some(access), None) => {
            let st = base.withheld(access, true);
            let rows: Vec<CountWithheld> =
                crate::shapes::shaped_hinted(&st.sql, &st.binds, st.stable).load(conn)?;
            let r = rows.first();
            (Some(r.map_or(0, |c| c.n)), r.is_some_and(|c| c.withheld))
        }
        (true, None, None) => {
            let st = base.count();
            let rows: Vec<Count> =
                crate::shapes::shaped_hinted(&st.sql, &st.binds, st.stable).load(conn)?;
            (Some(rows.first().map_or(0, |c| c.n)), false)
        }
        (false, Some(access), None) => {
            let st = base.withheld(access, false);
            let rows: Vec<Count> =
                crate::shapes::shaped_hinted(&st.sql, &st.binds, st.stable).load(conn)?;
            (None, rows.first().is_some_and(|c| c.n > 0))
        }
        (false, None, None) => (None, false),
    };
    let mut rows = match known {
        Some(rows) => rows,
        None => load_page(conn, &base.visible_page(q, Some(snapshot)), q.sort.len())?
            .into_iter()
            .map(|r| r.found)
            .collect(),
    };
    let more = rows.len() as i64 > q.limit;
    rows.truncate(q.limit.max(0) as usize);
    if q.backward {
        rows.reverse();
    }
    Ok(ResourcePage {
        rows,
        total,
        more,
        snapshot,
        withheld,
    })
}
