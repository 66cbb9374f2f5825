//! Access decisions for Invicta: the one place where a request's permissions are decided.
//! Tokens are verified (`token`), read into a [`Principal`] (`principal`), checked against the
//! SMART scopes they carry (`scope`) and the care-record role policy (`policy`), and turned into
//! [`Rules`] for the request (`decide`); every request leaves AuditEvents (`audit`). `cache` is
//! the bounded cache of verified tokens and of the server's principals and decisions.
//!
//! **Invariant:** authz decides but runs no SQL; `search` and `store` apply its decisions as
//! filters inside their SQL.

pub mod audit;
mod audit_index;
pub mod auth_events;
pub mod cache;
pub mod decide;
pub mod grant;
pub mod policy;
pub mod principal;
pub mod scope;
pub mod token;

pub use decide::{decide, BreakGlass, Decision, Denied, Emergency, Rules, TypeSet};
pub use policy::{Policy, RolePolicy};
pub use principal::{from_claims, Principal, PrincipalError};

pub use scope::{
    parse_scope, parse_scopes, Context, Interaction, Permissions, ResourceScope, Scope, ScopeError,
};
