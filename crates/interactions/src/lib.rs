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

pub mod authorize;
pub mod caller;
pub mod capabilities;
pub mod error;
pub mod everything;
pub mod history;
pub mod outcome;
pub mod params;
pub mod patch;
pub mod read;
pub mod render;
pub mod search;
pub mod services;
pub mod transaction;
pub mod write;

pub use authorize::{authorize, Authorized};
pub use caller::{AuditState, Caller};
pub use error::{internal, Error, ErrorKind, Result};
pub use outcome::{Outcome, Prefer, ReturnPref, VersionMeta};
pub use params::Params;
pub use render::{Format, Output};
pub use services::{Services, Settings};

/// Checks that `t` names an R4 resource type (404 when not: it is a path segment).
pub fn resource_type(t: &str) -> Result<String> {
    if fhir_model::elements::is_resource_type(t) {
        Ok(t.to_string())
    } else {
        Err(Error::not_found(format!(
            "'{t}' is not a supported resource type"
        )))
    }
}

/// Checks that `id` is a valid logical id.
pub fn logical_id(id: &str) -> Result<String> {
    if fhir_model::is_valid_id(id) {
        Ok(id.to_string())
    } else {
        Err(Error::invalid(format!(
            "'{id}' is not a valid id ([A-Za-z0-9-.]{{1,64}})"
        )))
    }
}

/// Runs blocking store work on the blocking pool, never on an executor thread.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T>
where
    F: FnOnce() -> std::result::Result<T, store::StoreError> + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => Ok(r?),
        Err(e) => Err(internal(e)),
    }
}

/// Checks a parsed body against the URL's type.
pub(crate) fn check_type(body: &serde_json::Value, res_type: &str) -> Result<()> {
    let found = body["resourceType"].as_str().unwrap_or("");
    if found == res_type {
        Ok(())
    } else {
        Err(Error::at(
            ErrorKind::Invalid,
            fhir_model::IssueCode::Invalid,
            "resourceType",
            format!("The body is a {found} but the URL is for {res_type}"),
        ))
    }
}
