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
    /// The statement ran past the statement timeout, or was cancelled because the client went
    /// away (SQLSTATE 57014 `query_canceled`).
    #[error("statement cancelled: {0}")]
    Timeout(String),
    /// The statement's shape exceeded a database limit (bind parameters, stack depth,
    /// expression complexity): the request asked for too much, the database is fine.
    #[error("statement too complex: {0}")]
    TooComplex(String),
    /// Any other database failure.
    #[error("database error: {0}")]
    Database(diesel::result::Error),
    /// Migrations could not be applied.
    #[error("migration failed: {0}")]
    Migration(String),
}

impl StoreError {
    /// The refusal of a write whose version would be outside the client's rules; the same words
    /// for a new version and for an id held by a resource the client may not see.
    pub(crate) fn outside_rules(reference: &str) -> StoreError {
        StoreError::Forbidden(format!(
            "{reference} would be outside what this client may change"
        ))
    }
}

impl From<diesel::result::Error> for StoreError {
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        // diesel keeps a PostgreSQL error's SQLSTATE to itself (it maps a few to kinds), so the
        // classes that matter here are told by their messages (lc_messages is English unless an
        // operator changed it; then they fall back to `Database`, a 500, never a 503).
        match e {
            Error::DatabaseError(kind, info) => {
                let message = info.message().to_string();
                match classify(&message) {
                    Some(Class::Cancelled) => StoreError::Timeout(message),
                    Some(Class::TooComplex) => StoreError::TooComplex(message),
                    // The server went away (restart, failover): retryable, not a bug.
                    None if matches!(
                        kind,
                        DatabaseErrorKind::ClosedConnection
                            | DatabaseErrorKind::UnableToSendCommand
                    ) =>
                    {
                        crate::pool::note_lost_connection();
                        StoreError::Unavailable(message)
                    }
                    None => StoreError::Database(Error::DatabaseError(kind, info)),
                }
            }
            other => StoreError::Database(other),
        }
    }
}

impl From<diesel::r2d2::PoolError> for StoreError {
    fn from(e: diesel::r2d2::PoolError) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}

/// Failures caused by what a statement asked, not by the database's health.
#[derive(Debug, PartialEq, Eq)]
enum Class {
    /// 57014 `query_canceled`: statement timeout or `pg_cancel_backend`.
    Cancelled,
    /// Too many bind parameters (libpq refuses before sending), 54001 stack depth, 54000
    /// program limits, 54023 too many arguments.
    TooComplex,
}

fn classify(message: &str) -> Option<Class> {
    const CANCELLED: &[&str] = &["canceling statement due to"];
    const TOO_COMPLEX: &[&str] = &[
        "number of parameters must be between",
        "stack depth limit exceeded",
        "statement is too complex",
        "too many arguments",
        "too many range table entries",
        "target lists can have at most",
        "cannot pass more than",
        "array size exceeds the maximum",
    ];
    if CANCELLED.iter().any(|m| message.contains(m)) {
        Some(Class::Cancelled)
    } else if TOO_COMPLEX.iter().any(|m| message.contains(m)) {
        Some(Class::TooComplex)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::result::{DatabaseErrorKind, Error};

    fn db(kind: DatabaseErrorKind, message: &str) -> StoreError {
        Error::DatabaseError(kind, Box::new(message.to_string())).into()
    }

    #[test]
    fn the_shape_of_a_query_is_never_an_outage() {
        // libpq refuses over 65,535 binds before sending; diesel calls that UnableToSendCommand.
        let e = db(
            DatabaseErrorKind::UnableToSendCommand,
            "number of parameters must be between 0 and 65535\n",
        );
        assert!(matches!(e, StoreError::TooComplex(_)), "{e:?}");
        let e = db(DatabaseErrorKind::Unknown, "stack depth limit exceeded");
        assert!(matches!(e, StoreError::TooComplex(_)), "{e:?}");
        let e = db(
            DatabaseErrorKind::Unknown,
            "canceling statement due to statement timeout",
        );
        assert!(matches!(e, StoreError::Timeout(_)), "{e:?}");
        let e = db(
            DatabaseErrorKind::Unknown,
            "canceling statement due to user request",
        );
        assert!(matches!(e, StoreError::Timeout(_)), "{e:?}");
        let e = db(
            DatabaseErrorKind::UnableToSendCommand,
            "server closed the connection unexpectedly",
        );
        assert!(matches!(e, StoreError::Unavailable(_)), "{e:?}");
        let e = db(DatabaseErrorKind::Unknown, "relation \"x\" does not exist");
        assert!(matches!(e, StoreError::Database(_)), "{e:?}");
    }
}
