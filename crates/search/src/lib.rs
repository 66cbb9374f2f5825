//! FHIR search for Invicta (http://hl7.org/fhir/R4/search.html): a query string is parsed and
//! checked against the search-parameter definitions into a [`SearchPlan`], whose conditions are
//! compiled to SQL over the index tables as a [`store::Filter`]. The store runs it and pages it.
//!
//! **Invariant:** every value from a query is a bind parameter; no client text reaches SQL.

mod audit;
mod clause;
mod cursor;
pub mod limits;
mod plan;
mod stable;
pub mod text;

pub use cursor::{CursorKey, MAX_CURSOR_CHARS};
pub use plan::{compile_condition, plan, Care, PlanOptions, SearchPlan, TotalMode};

/// Why a search could not be planned.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SearchError {
    /// The parameter is not defined for the resource type.
    #[error("unknown search parameter '{param}' for {resource_type}")]
    UnknownParameter {
        /// The resource type searched.
        resource_type: String,
        /// The parameter as written.
        param: String,
    },
    /// The parameter exists but this form of it (modifier, chain) is not supported yet.
    #[error("search parameter '{0}' is not supported in this form")]
    Unsupported(String),
    /// A value does not parse for its parameter's type.
    #[error("invalid value '{value}' for search parameter '{param}': {reason}")]
    BadValue {
        /// The parameter.
        param: String,
        /// The value as written.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The query is malformed as a whole.
    #[error("{0}")]
    Malformed(String),
    /// The query asks for more work than one search may (a limit of [`limits`] names it).
    #[error("{0}")]
    TooCostly(String),
}
