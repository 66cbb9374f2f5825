//! PostgreSQL storage for Invicta: the schema and its embedded migrations, versioned resources
//! (current rows plus every historical version), the search-index rows written in the same
//! transaction as each version, and history queries.
//!
//! **Invariant:** this crate knows no HTTP. Every write is one database transaction: the resource
//! row, its history row and its index rows commit together or not at all.

mod access;
mod audit_facts;
pub mod audit_keys;
mod audit_rows;
mod auth_flow;
mod auth_state;
mod cancel;
mod context;
mod error;
mod history;
mod identity;
mod include;
mod index_key;
mod index_rows;
mod meta;
mod plan_mode;
mod pool;
mod query;
mod read;
mod reindex;
mod relationship;
mod replication;
mod schema;
mod shapes;
mod shared_secret;
mod sql;
mod tx;
mod version_check;
mod write;

/// A database of its own for each in-crate test that needs PostgreSQL.
#[cfg(test)]
#[path = "../tests/common/mod.rs"]
mod test_db;

pub use access::{Access, RelationshipRule, TypeRule, ACCESS_ROUTE_SYSTEM};
pub use audit_facts::{AuditCaller, AuditFacts};
pub use audit_rows::{AuditRow, AuditWriter};
pub use auth_flow::{Refresh, Spent, StoredRequest};
pub use auth_state::{ClientRecord, Listener, StoredKey, AUTH_CHANNEL};
pub use cancel::{CancelGuard, CancelToken, Session};
pub use context::{AuditHook, Change, WriteContext};
pub use error::StoreError;
pub use history::{HistoryEntry, HistoryPage, HistoryQuery, HistoryScope};
pub use include::IncludeSpec;
pub use index_key::{equality_key, MAX_INDEXED_BYTES};
pub use meta::ODS_TAG_SYSTEM;
pub use pool::{Store, StoreConfig};
pub use query::{
    Cursor, FoundResource, ResourcePage, ResourceQuery, SortColumn, SortKey, MAX_SORT_KEYS,
};
pub use read::{Stored, Visibility};
pub use shapes::{set_prepared_searches, PreparedSearches};
pub use sql::{Bind, Filter};
pub use tx::Tx;
pub use write::{condition_key, Condition, InsertMethod, Match, Written};
