//! What can go wrong in the store, in terms the HTTP layer can map to statuses.

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No resource with that type and id (or version) exists.
    #[error("{0} is not known")]
    NotFound(String),
    /// The resource exists but its current version is a deletion.
    #[error("{resource} was deleted (version {version})")]
    Gone {
        /// `Type/id`.
        resource: String,
        /// The version that deleted it.
        version: i32,
    },
    /// `If-Match` named a version that is not the current one.
    #[error("version mismatch: {resource} is at version {current}, not {expected}")]
    VersionConflict {
        /// `Type/id`.
        resource: String,
        /// The current version.
        current: i32,
        /// The version the client expected.
        expected: i32,
    },
    /// A conditional interaction matched more resources than it may act on.
    #[error("{0}")]
    MultipleMatches(String),
    /// The write would break a uniqueness rule of the record (one Patient per NHS number).
    #[error("{0}")]
    Conflict(String),
    /// The request's access rules do not allow this change (the resource, before or after it,
    /// is outside what the client may write).
    #[error("{0}")]
    Forbidden(String),
    /// The resource could not be stored as given.
    #[error("{0}")]
    Invalid(String),
    /// The database could not be reached or a connection could not be had in time.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Any other database failure.
    #[error("database error: {0}")]
    Database(diesel::result::Error),
    /// Migrations could not be applied.
    #[error("migration failed: {0}")]
    Migration(String),
}

impl From<diesel::result::Error> for StoreError {
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match e {
            // The server went away (restart, failover): retryable, not a bug.
            Error::DatabaseError(
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                info,
            ) => StoreError::Unavailable(info.message().to_string()),
            other => StoreError::Database(other),
        }
    }
}

impl From<diesel::r2d2::PoolError> for StoreError {
    fn from(e: diesel::r2d2::PoolError) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}
