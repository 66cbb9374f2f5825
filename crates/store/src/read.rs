//! Reading the current version or a given version of a resource.

use chrono::{DateTime, Utc};
use diesel::sql_types::{Bool, Bytea, Integer, Nullable, Text, Timestamptz};
use diesel::{QueryableByName, RunQueryDsl};

use crate::error::StoreError;
use crate::pool::Store;
use crate::sql::{query, Bind};

/// A stored version: its metadata and the exact bytes to send.
#[derive(Debug, Clone, QueryableByName)]
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
        let mut conn = self.conn()?;
        let rows: Vec<Stored> = query(
            "SELECT id, version, last_updated, deleted, body FROM resource WHERE res_type = $1 AND id = $2",
            &[Bind::Text(res_type.into()), Bind::Text(id.into())],
        )
        .load(&mut conn)?;
        Ok(rows.into_iter().next())
    }

    /// One version of a resource; `None` when that version does not exist.
    pub fn vread(
        &self,
        res_type: &str,
        id: &str,
        version: i32,
    ) -> Result<Option<Stored>, StoreError> {
        let mut conn = self.conn()?;
        let rows: Vec<Stored> = query(
            "SELECT id, version, last_updated, deleted, body FROM resource_history \
             WHERE res_type = $1 AND id = $2 AND version = $3",
            &[
                Bind::Text(res_type.into()),
                Bind::Text(id.into()),
                Bind::Int(version),
            ],
        )
        .load(&mut conn)?;
        Ok(rows.into_iter().next())
    }
}
