//! What an interaction answers, before any transport writes it, and the `Prefer` header that
//! shapes write answers.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::searchset::SearchSet;

/// Identity and time of one resource version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionMeta {
    /// Resource type.
    pub res_type: String,
    /// Logical id.
    pub id: String,
    /// Version.
    pub version: i32,
    /// When it was written.
    pub last_updated: DateTime<Utc>,
}

impl VersionMeta {
    /// `Type/id/_history/v`.
    pub fn versioned_reference(&self) -> String {
        format!("{}/{}/_history/{}", self.res_type, self.id, self.version)
    }
}

/// An interaction's answer.
pub enum Outcome {
    /// A resource version: read, vread, or the result of a write.
    Resource {
        /// 200 or 201.
        status: u16,
        /// Which version.
        meta: VersionMeta,
        /// The stored JSON, as stored.
        body: Vec<u8>,
        /// The result of a write: `Location` is sent and `Prefer: return` applies.
        written: bool,
        /// Profile findings of a write under `warn` enforcement (OperationOutcome issues),
        /// returned with `Prefer: return=OperationOutcome`.
        issues: Vec<serde_json::Value>,
    },
    /// The client's copy is current (`If-None-Match`, `If-Modified-Since`).
    NotModified(VersionMeta),
    /// Done, nothing to return (a delete): the version's ETag when there is one.
    NoContent(Option<i32>),
    /// A searchset Bundle, rendered by the transport (stored bodies can be spliced in unparsed).
    SearchSet(SearchSet),
    /// A batch or transaction response, rendered by the transport (the stored resources it
    /// returns can be spliced in unparsed).
    Bundle(crate::stored_bundle::StoredBundle),
    /// A resource built by the interaction (history, CapabilityStatement), already subset as
    /// asked.
    Json(Value),
}

/// What `Prefer: return=` asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReturnPref {
    /// The resource (default).
    #[default]
    Representation,
    /// No body.
    Minimal,
    /// An OperationOutcome.
    OperationOutcome,
}

/// The `Prefer` header, as far as FHIR gives it meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Prefer {
    /// `return=`.
    pub return_pref: ReturnPref,
    /// `handling=strict`: unknown or unsupported search parameters are errors.
    pub strict: bool,
}

impl Prefer {
    /// Reads the values of every `Prefer` header.
    pub fn parse<'a>(values: impl IntoIterator<Item = &'a str>) -> Prefer {
        let mut prefer = Prefer::default();
        let mut returned = None;
        for token in values.into_iter().flat_map(|h| h.split([',', ';'])) {
            let token = token.trim();
            if token == "handling=strict" {
                prefer.strict = true;
            }
            // The first `return=` counts, as a client listing several means the first.
            if let (None, Some(r)) = (returned, token.strip_prefix("return=")) {
                returned = Some(match r {
                    "minimal" => ReturnPref::Minimal,
                    "OperationOutcome" => ReturnPref::OperationOutcome,
                    _ => ReturnPref::Representation,
                });
            }
        }
        prefer.return_pref = returned.unwrap_or_default();
        prefer
    }
}

/// The `ETag` of a version.
pub fn etag(version: i32) -> String {
    format!("W/\"{version}\"")
}

/// Parses `W/"3"`, `"3"` or `3` from `If-Match`/`If-None-Match`.
pub fn parse_etag(value: &str) -> Option<i32> {
    value
        .trim()
        .trim_start_matches("W/")
        .trim_matches('"')
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags() {
        assert_eq!(parse_etag("W/\"3\""), Some(3));
        assert_eq!(parse_etag("\"12\""), Some(12));
        assert_eq!(parse_etag("x"), None);
        assert_eq!(etag(4), "W/\"4\"");
    }

    #[test]
    fn prefer_reads_return_and_handling() {
        let p = Prefer::parse(["return=minimal, handling=strict"]);
        assert_eq!(p.return_pref, ReturnPref::Minimal);
        assert!(p.strict);
        assert_eq!(Prefer::parse([]).return_pref, ReturnPref::Representation);
    }
}
