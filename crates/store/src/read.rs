//! Reading the current version or a given version of a resource.

use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, Bool, Bytea, Integer, Nullable, Text, Timestamptz};
use diesel::{
    ExpressionMethods, OptionalExtension, QueryDsl, Queryable, QueryableByName, RunQueryDsl,
};

use crate::access::Access;
use crate::error::StoreError;
use crate::pool::Store;
use crate::sql::{query, Bind};

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

#[derive(QueryableByName)]
struct CheckedRow {
    #[diesel(embed)]
    stored: Stored,
    #[diesel(sql_type = Bool)]
    visible: bool,
    #[diesel(sql_type = Bool)]
    liftable: bool,
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
            ))
            .first::<Stored>(&mut conn)
            .optional()?;
        Ok(row)
    }

    /// Like [`Store::read`] (or [`Store::vread`] with `version`), with the request's access rules
    /// applied in the same statement.
    pub fn read_checked(
        &self,
        res_type: &str,
        id: &str,
        version: Option<i32>,
        access: &Access,
    ) -> Result<Option<(Stored, Visibility)>, StoreError> {
        let mut conn = self.conn()?;
        let (table, alias, version_cond) = match version {
            None => ("resource", "r", String::new()),
            Some(_) => ("resource_history", "h", " AND h.version = $3".to_string()),
        };
        let mut binds = vec![Bind::Text(res_type.into()), Bind::Text(id.into())];
        if let Some(v) = version {
            binds.push(Bind::Int(v));
        }
        let visible = access.predicate(alias, &mut binds);
        let liftable = if access.liftable() {
            access.lifted().predicate(alias, &mut binds)
        } else {
            "FALSE".into()
        };
        let sql = format!(
            "SELECT {alias}.id, {alias}.version, {alias}.last_updated, {alias}.deleted, \
             {alias}.body, {alias}.compartments, ({visible}) AS visible, ({liftable}) AS liftable \
             FROM {table} {alias} WHERE {alias}.res_type = $1 AND {alias}.id = $2{version_cond}"
        );
        let rows: Vec<CheckedRow> = query(&sql, &binds).load(&mut conn)?;
        Ok(rows.into_iter().next().map(|r| {
            let v = if r.visible {
                Visibility::Visible
            } else if r.liftable {
                Visibility::Withheld
            } else {
                Visibility::Hidden
            };
            (r.stored, v)
        }))
    }
}
