//! Where a database stands in PostgreSQL's streaming replication: the primary's write position
//! and whether a standby has replayed up to a position, so reads can go to standbys that are
//! known to be recent enough.

use diesel::sql_types::{Bool, Nullable, Text};
use diesel::{QueryableByName, RunQueryDsl};

use crate::error::StoreError;
use crate::pool::Store;
use crate::sql::{query, Bind};

#[derive(QueryableByName)]
struct Position {
    #[diesel(sql_type = Text)]
    lsn: String,
}

#[derive(QueryableByName)]
struct Replayed {
    #[diesel(sql_type = Nullable<Bool>)]
    done: Option<bool>,
}

impl Store {
    /// The primary's current WAL write position (`pg_current_wal_lsn`), as text.
    pub fn wal_position(&self) -> Result<String, StoreError> {
        let rows: Vec<Position> =
            query("SELECT pg_current_wal_lsn()::text AS lsn", &[]).load(&mut *self.conn()?)?;
        Ok(rows.into_iter().next().map(|p| p.lsn).unwrap_or_default())
    }

    /// True when this database is a standby that has replayed the WAL up to `lsn`; false for
    /// a standby behind it and for a database that is not a standby (promoted, or a primary).
    pub fn replayed(&self, lsn: &str) -> Result<bool, StoreError> {
        let rows: Vec<Replayed> = query(
            "SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS done",
            &[Bind::Text(lsn.to_string())],
        )
        .load(&mut *self.conn()?)?;
        Ok(rows
            .into_iter()
            .next()
            .and_then(|r| r.done)
            .unwrap_or(false))
    }
}
