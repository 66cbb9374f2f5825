//! Reading the current version or a given version of a resource.

use chrono::{DateTime, Utc};
use diesel::pg::{Pg, PgConnection};
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Array, BigInt, Bool, Bytea, Integer, Nullable, Text, Timestamptz};
use diesel::QueryResult;
use diesel::{
    ExpressionMethods, OptionalExtension, QueryDsl, Queryable, QueryableByName, RunQueryDsl,
};

use crate::access::Access;
use crate::error::StoreError;
use crate::pool::Store;
use crate::sql::{query, Bind};
use crate::version_check::{self, Candidate};

/// A stored version: its metadata and the exact bytes to send.
#[derive(Debug, Clone, Queryable, QueryableByName)]
pub struct Stored {
    /// Logical id.
    #[diesel(sql_type = Text)]
    pub id: String,
    /// Version number.
    #[diesel(sql_type = Integer)]
    pub version: i32,
    /// When the version was written.
    #[diesel(sql_type = Timestamptz)]
    pub last_updated: DateTime<Utc>,
    /// True when this version is a deletion.
    #[diesel(sql_type = Bool)]
    pub deleted: bool,
    /// The FHIR JSON body; `None` for a deletion.
    #[diesel(sql_type = Nullable<Bytea>)]
    pub body: Option<Vec<u8>>,
    /// The patients whose compartment holds this version.
    #[diesel(sql_type = Array<Text>)]
    pub compartments: Vec<String>,
    /// Its restricting security labels.
    #[diesel(sql_type = Array<Text>)]
    pub sec_labels: Vec<String>,
    /// Its alert codings (Flags).
    #[diesel(sql_type = Array<Text>)]
    pub alert_codes: Vec<String>,
}

/// Whether the client may see a stored version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    /// Visible.
    Visible,
    /// Hidden only by limits break-glass or a relationship claim would lift.
    Withheld,
    /// Hidden (treated as absent).
    Hidden,
}

/// A version with what the access rules read from it.
#[derive(Queryable)]
struct RuledRow {
    /// The row id: of the resource for a current row, of the history row for a version.
    key: i64,
    stored: Stored,
    org: Option<String>,
    related: bool,
}

/// The read with access rules as one statement of fixed text (one per table, with or without
/// a relationship rule), so diesel prepares it once per connection and PostgreSQL reuses its
/// plan: the row, what the rules read from it, and whether the
/// organisation has a current relationship with every patient whose compartment holds it.
struct CheckedRead {
    version: Option<i32>,
    res_type: String,
    id: String,
    org: Option<String>,
    launch: Option<String>,
}

impl QueryId for CheckedRead {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for CheckedRead {
    type SqlType = (
        BigInt,
        (
            Text,
            Integer,
            Timestamptz,
            Bool,
            Nullable<Bytea>,
            Array<Text>,
            Array<Text>,
            Array<Text>,
        ),
        Nullable<Text>,
        Bool,
    );
}

impl RunQueryDsl<PgConnection> for CheckedRead {}

impl QueryFragment<Pg> for CheckedRead {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let table = if self.version.is_some() {
            crate::audit_rows::history_table(&self.res_type)
        } else {
            crate::audit_rows::current_table(&self.res_type)
        };
        out.push_sql(if self.version.is_some() {
            "SELECT t.hid, "
        } else {
            "SELECT t.rid, "
        });
        out.push_sql(
            "t.id, t.version, t.last_updated, t.deleted, t.body, t.compartments, \
             t.sec_labels, t.alert_codes, t.org, ",
        );
        // Without a relationship rule the statement has no lookup at all. (A lookup skipped by
        // `CASE WHEN $org IS NULL` made PostgreSQL plan every execution afresh: the custom
        // plan, which folds it away, always looked cheaper than the generic one.)
        if self.org.is_some() {
            // The rule's values join as a one-row relation, so each is bound once however
            // often the condition names it.
            out.push_sql(&crate::access::related_sql("t", "p.launch", "p.org", None));
            out.push_sql(" AS related FROM (SELECT ");
            out.push_bind_param::<Nullable<Text>, _>(&self.org)?;
            out.push_sql("::text AS org, ");
            out.push_bind_param::<Nullable<Text>, _>(&self.launch)?;
            out.push_sql("::text AS launch) p, ");
        } else {
            out.push_sql("TRUE AS related FROM ");
        }
        out.push_sql(table);
        out.push_sql(" t WHERE t.res_type = ");
        out.push_bind_param::<Text, _>(&self.res_type)?;
        out.push_sql(" AND t.id = ");
        out.push_bind_param::<Text, _>(&self.id)?;
        if let Some(v) = &self.version {
            out.push_sql(" AND t.version = ");
            out.push_bind_param::<Integer, _>(v)?;
        }
        Ok(())
    }
}

impl Store {
    /// The current version of a resource, deleted or not; `None` when it never existed.
    pub fn read(&self, res_type: &str, id: &str) -> Result<Option<Stored>, StoreError> {
        use crate::schema::resource::dsl as r;
        let mut conn = self.conn()?;
        let row = r::resource
            .filter(r::res_type.eq(res_type))
            .filter(r::id.eq(id))
            .select((
                r::id,
                r::version,
                r::last_updated,
                r::deleted,
                r::body,
                r::compartments,
                r::sec_labels,
                r::alert_codes,
            ))
            .first::<Stored>(&mut conn)
            .optional()?;
        Ok(row)
    }

    /// One version of a resource; `None` when that version does not exist.
    pub fn vread(
        &self,
        res_type: &str,
        id: &str,
        version: i32,
    ) -> Result<Option<Stored>, StoreError> {
        use crate::schema::resource_history::dsl as h;
        let mut conn = self.conn()?;
        let row = h::resource_history
            .filter(h::res_type.eq(res_type))
            .filter(h::id.eq(id))
            .filter(h::version.eq(version))
            .select((
                h::id,
                h::version,
                h::last_updated,
                h::deleted,
                h::body,
                h::compartments,
                h::sec_labels,
                h::alert_codes,
            ))
            .first::<Stored>(&mut conn)
            .optional()?;
        Ok(row)
    }

    /// Like [`Store::read`] (or [`Store::vread`] with `version`), with the request's access
    /// rules. One prepared statement loads the row and its relationship status; the row-level
    /// rules are checked on it ([`Access::admits_row`]); only a scope restriction on the type
    /// costs a second, dynamic statement. A past version is loaded after the current row, and
    /// is visible only when both are.
    pub fn read_checked(
        &self,
        res_type: &str,
        id: &str,
        version: Option<i32>,
        access: &Access,
    ) -> Result<Option<(Stored, Visibility)>, StoreError> {
        // A current version without a scope restriction is one lookup by type and id, whose
        // plan is the same for every value: any plan mode will do, which spares a connection
        // that last ran a stable search the statement that resets it.
        let mut conn = if version.is_none() && access.restriction(res_type).is_none() {
            self.conn_any_plan_mode()?
        } else {
            self.conn()?
        };
        read_checked_on(&mut conn, res_type, id, version, access)
    }
}

#[derive(QueryableByName)]
struct RidRow {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    #[allow(dead_code)]
    rid: i64,
}

impl Visibility {
    /// The stricter of two.
    fn and(self, other: Visibility) -> Visibility {
        let rank = |v: Visibility| match v {
            Visibility::Hidden => 0,
            Visibility::Withheld => 1,
            Visibility::Visible => 2,
        };
        if rank(other) < rank(self) {
            other
        } else {
            self
        }
    }
}

/// A read with access rules. A past version is visible when it is by its own row and content
/// and the resource is as it is now (the rule history follows, `history::version_visibility`).
pub(crate) fn read_checked_on(
    conn: &mut diesel::pg::PgConnection,
    res_type: &str,
    id: &str,
    version: Option<i32>,
    access: &Access,
) -> Result<Option<(Stored, Visibility)>, StoreError> {
    let Some(current) = checked_row(conn, res_type, id, None, access)? else {
        return Ok(None);
    };
    let (row, current_visibility) = current;
    let Some(v) = version.filter(|v| *v != row.stored.version) else {
        // The current version itself (or no version asked).
        return Ok(Some((row.stored, current_visibility)));
    };
    let Some((past, own)) = checked_row(conn, res_type, id, Some(v), access)? else {
        return Ok(None);
    };
    Ok(Some((past.stored, own.and(current_visibility))))
}

/// One row (current, or version `version`) with the visibility its own row and content give it.
fn checked_row(
    conn: &mut diesel::pg::PgConnection,
    res_type: &str,
    id: &str,
    version: Option<i32>,
    access: &Access,
) -> Result<Option<(RuledRow, Visibility)>, StoreError> {
    let rel = access.relationship.as_ref();
    let row: Option<RuledRow> = CheckedRead {
        version,
        res_type: res_type.to_string(),
        id: id.to_string(),
        org: rel.map(|r| r.org.clone()),
        launch: rel.and_then(|r| r.launch_patient.clone()),
    }
    .get_result(conn)
    .optional()?;
    let Some(row) = row else {
        return Ok(None);
    };
    let c = &row.stored.compartments;
    let admits = |a: &Access| {
        a.admits_row(
            res_type,
            c,
            &row.stored.sec_labels,
            &row.stored.alert_codes,
            row.org.as_deref(),
        )
    };
    let restricted_ok = match access.restriction(res_type) {
        None => true,
        // A past version has no index rows: its content is judged.
        Some(_) if version.is_some() => {
            let candidate = Candidate {
                hid: row.key,
                res_type: res_type.to_string(),
                body: row.stored.body.clone(),
            };
            !version_check::admitted(conn, access, &[candidate])?.is_empty()
        }
        Some(filter) => {
            let mut binds = vec![Bind::BigInt(row.key)];
            let sql = format!(
                "SELECT r.rid FROM {} r WHERE r.rid = $1 AND ({})",
                crate::audit_rows::current_table(res_type),
                filter.renumbered(1)
            );
            binds.extend(filter.binds.iter().cloned());
            !query(&sql, &binds).load::<RidRow>(conn)?.is_empty()
        }
    };
    let related = access.relationship.is_none() || row.related;
    let visibility = if restricted_ok && related && admits(access) {
        Visibility::Visible
    } else if restricted_ok && access.liftable() && admits(&access.lifted()) {
        Visibility::Withheld
    } else {
        Visibility::Hidden
    };
    Ok(Some((row, visibility)))
}

#[cfg(test)]
mod tests {
    use super::CheckedRead;
    use diesel::pg::Pg;

    fn sql(org: Option<&str>, launch: Option<&str>) -> String {
        let read = CheckedRead {
            version: None,
            res_type: "Observation".into(),
            id: "o1".into(),
            org: org.map(Into::into),
            launch: launch.map(Into::into),
        };
        diesel::debug_query::<Pg, _>(&read).to_string()
    }

    #[test]
    fn a_version_is_as_visible_as_the_stricter_of_itself_and_the_resource_now() {
        use super::Visibility::{Hidden, Visible, Withheld};
        assert_eq!(Visible.and(Visible), Visible);
        assert_eq!(Visible.and(Withheld), Withheld);
        assert_eq!(Withheld.and(Visible), Withheld);
        assert_eq!(Withheld.and(Hidden), Hidden);
        assert_eq!(Hidden.and(Visible), Hidden);
    }

    #[test]
    fn a_read_without_relationship_rule_has_no_lookup_to_fold_away() {
        // Bound to NULL, a lookup would still be in the text, and PostgreSQL would plan each
        // execution afresh rather than reuse the statement's plan.
        let s = sql(None, None);
        assert!(!s.contains("care_relationship"), "{s}");
        assert!(s.contains("TRUE AS related"), "{s}");
    }

    #[test]
    fn a_read_with_relationship_rule_binds_organisation_and_launch_once() {
        let s = sql(Some("ORG1"), Some("p1"));
        assert!(
            s.contains("care_relationship cr WHERE cr.org_code = p.org"),
            "{s}"
        );
        assert!(s.contains("IS DISTINCT FROM p.launch::text"), "{s}");
        // Binds: org, launch, type, id.
        assert!(s.contains("$4") && !s.contains("$5"), "{s}");
        assert!(
            s.contains("[Some(\"ORG1\"), Some(\"p1\"), \"Observation\", \"o1\"]"),
            "{s}"
        );
    }
}
