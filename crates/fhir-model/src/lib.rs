//! FHIR R4 model for Invicta: parsing and validation (fhirbolt, behind non-generic functions),
//! the R4 element table, search-parameter definitions held as data, index-value extraction, the
//! Patient compartment, `_summary`/`_elements` subsetting, and validation against the profiles in
//! `profiles/`.
//!
//! **Invariant:** this crate knows no HTTP and no SQL, and it is the only crate that names
//! fhirbolt. Everything else works on `serde_json::Value` and bytes.

pub mod access;
pub mod codes;
pub mod compartment;
pub mod elements;
mod fhirpath;
pub mod format;
pub mod index;
pub mod issue;
mod json_equal;
pub mod labelling;
mod narrative;
pub mod nesting;
pub mod nhs_number;
/// FHIR PATCH: RFC 6902 JSON Patch and FHIRPath Patch applied to a resource held as JSON.
pub mod patch;
pub mod profile;
pub mod search_params;
pub mod summary;
pub mod timeline;
pub mod validate;
mod xml_input;

pub use codes::{AuditAction, RestInteraction};
pub use issue::{Finding, Issue, IssueCode, ModelError, Severity};

/// True when `id` is a valid FHIR logical id (`[A-Za-z0-9\-\.]{1,64}`).
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}
