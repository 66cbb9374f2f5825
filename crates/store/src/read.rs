//! Reading the current version or a given version of a resource.

use chrono::{DateTime, Utc};
use diesel::sql_types::{Bool, Bytea, Integer, Nullable, Text, Timestamptz};
use diesel::{
    ExpressionMethods, OptionalExtension, QueryDsl, Queryable, QueryableByName, RunQueryDsl,
};

use crate::error::StoreError;
use crate::pool::Store;

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
}

impl Store {
    /// The current version of a resource, deleted or not; `None` when it never existed.
    pub fn read(&self, res_type: &str, id: &str) -> Result<Option<Stored>, StoreError> {
        use crate::schema::resource::dsl as r;
        let mut conn = self.conn()?;
        let row = r::resource
            .filter(r::res_type.eq(res_type))
            .filter(r::id.eq(id))
            .select((r::id, r::version, r::last_updated, r::deleted, r::body))
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
            .select((h::id, h::version, h::last_updated, h::deleted, h::body))
            .first::<Stored>(&mut conn)
            .optional()?;
        Ok(row)
    }
}
