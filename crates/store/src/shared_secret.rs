//! Secrets every server process on one database shares, such as the key that seals search page
//! cursors: the first process stores its candidate, every process (itself included) reads the
//! stored one, so a paging link made by one process opens on any other.

use diesel::RunQueryDsl;

use crate::error::StoreError;
use crate::pool::Store;
use crate::sql::{query, Bind};

#[derive(diesel::QueryableByName)]
struct SecretRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    secret: String,
}

impl Store {
    /// The shared secret `name`: the stored one, or `candidate` when none was stored yet.
    pub fn shared_secret(&self, name: &str, candidate: &str) -> Result<String, StoreError> {
        let mut conn = self.conn()?;
        // A process racing this one may store its candidate after this statement's snapshot was
        // taken (then the insert yields and the select cannot see it yet): the second statement,
        // with a new snapshot, does.
        for _ in 0..2 {
            let rows: Vec<SecretRow> = query(
                "WITH put AS (INSERT INTO server_secret (name, secret) VALUES ($1, $2) \
                              ON CONFLICT (name) DO NOTHING RETURNING secret) \
                 SELECT secret FROM put UNION ALL \
                 SELECT secret FROM server_secret WHERE name = $1",
                &[Bind::Text(name.into()), Bind::Text(candidate.into())],
            )
            .load(&mut conn)?;
            if let Some(row) = rows.into_iter().next() {
                return Ok(row.secret);
            }
        }
        Err(StoreError::Unavailable(format!(
            "the shared secret '{name}' could be neither stored nor read"
        )))
    }
}
