//! Access decisions for Invicta: the one place where a request's permissions are decided.
//! Today it holds the SMART App Launch scope grammar; tokens, care-record roles, security labels
//! and audit build on it (see the access-control issue).
//!
//! **Invariant:** authz decides but runs no SQL; `search` and `store` apply its decisions as
//! filters inside their SQL.

pub mod scope;

pub use scope::{
    parse_scope, parse_scopes, Context, Interaction, Permissions, ResourceScope, Scope, ScopeError,
};
