//! The FHIR RESTful interactions (http://hl7.org/fhir/R4/http.html), written once and free of
//! any web framework. Each takes typed inputs (the caller's [`Authorized`] decision, the resource
//! type and id, decoded parameters, the headers that matter, a parsed body) and returns an
//! [`Outcome`] or an [`Error`]. The actix handlers in `server`, the entries of a batch or
//! transaction Bundle and `invicta load` all call these functions; none of them knows HTTP.
//!
//! Data is reached only through an [`Authorized`], which only [`authorize`] makes, so code that
//! skipped the authorization decision does not compile:
//!
//! ```compile_fail
//! // An Authorized cannot be made by hand: its fields are private.
//! let auth = interactions::Authorized { access: None };
//! ```
//!
//! ```compile_fail
//! // A read without the caller's decision is not a call that type-checks.
//! async fn handler(s: &interactions::Services, r: &interactions::read::ReadRequest) {
//!     let _ = interactions::read::read(s, r).await;
//! }
//! ```
//!
//! ```no_run
//! // The same read with the decision compiles.
//! async fn handler(
//!     s: &interactions::Services,
//!     auth: &interactions::Authorized,
//!     r: &interactions::read::ReadRequest,
//! ) {
//!     let _ = interactions::read::read(s, auth, r).await;
//! }
//! ```

pub mod audit_rows;
pub mod authorize;
pub mod caller;
pub mod capabilities;
mod checks;
pub mod conformance;
mod decisions;
pub mod error;
pub mod everything;
pub mod history;
mod operation_params;
pub mod outcome;
pub mod params;
pub mod patch;
mod pool;
pub mod read;
pub mod render;
pub mod replicas;
pub mod search;
pub mod searchset;
pub mod services;
pub mod stored_bundle;
pub mod timeline;
pub mod transaction;
pub mod write;

pub use authorize::{authorize, Authorized};
pub use caller::{AuditState, Caller};
pub use checks::{logical_id, resource_type};
pub use error::{internal, Error, ErrorKind, Result};
pub use outcome::{Outcome, Prefer, ReturnPref, VersionMeta};
pub use params::Params;
pub use render::{Format, Output};
pub use services::{Services, Settings};
