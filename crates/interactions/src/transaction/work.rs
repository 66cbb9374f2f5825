//! A transaction's entries as data: each with the caller's write contexts, and what each did.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;
use store::{Access, StoreError, WriteContext, Written};

use super::entry::Entry;
use crate::authorize::Authorized;
use crate::error::Error;
use crate::services::Services;

/// An entry with what its caller may do for it.
#[derive(Clone)]
pub struct Work {
    /// The entry.
    pub entry: Entry,
    /// The write context (organisation, source, access rules, audit).
    pub ctx: WriteContext,
    /// The same, with the own-source limit lifted, for identifying who an entry is about.
    pub match_ctx: WriteContext,
}

impl Work {
    /// An entry under the caller's decision.
    pub fn new(entry: Entry, auth: &Authorized, services: &Services) -> Work {
        let ctx = auth.write_context(services);
        let mut match_ctx = ctx.clone();
        match_ctx.access = identification_access(&ctx.access);
        Work {
            entry,
            ctx,
            match_ctx,
        }
    }

    /// An entry under a fixed context (a bulk load, which has no access rules).
    pub fn with_context(entry: Entry, ctx: WriteContext) -> Work {
        Work {
            entry,
            match_ctx: ctx.clone(),
            ctx,
        }
    }
}

/// The body of an entry's response.
pub enum Body {
    /// A stored resource, as stored.
    Stored(Vec<u8>),
    /// A built resource (a searchset).
    Json(Value),
}

/// What one entry did.
pub struct EntryOutcome {
    /// HTTP status.
    pub status: u16,
    /// `Type/id/_history/v` of a written or read version.
    pub location: Option<String>,
    /// The version.
    pub version: Option<i32>,
    /// When that version was written.
    pub last_modified: Option<DateTime<Utc>>,
    /// The resource, when there is one to return.
    pub body: Option<Body>,
    /// Patients whose data a read returned (for the audit record).
    pub touched: Vec<String>,
    /// The entry was a read or search: its resource is returned whatever `Prefer` says.
    pub read: bool,
    /// A write that changed nothing (a replay, or a conditional create that found its match).
    pub unchanged: bool,
}

impl EntryOutcome {
    pub(super) fn written(w: Written, res_type: &str) -> EntryOutcome {
        EntryOutcome {
            status: if w.created { 201 } else { 200 },
            location: Some(format!("{res_type}/{}/_history/{}", w.id, w.version)),
            version: Some(w.version),
            last_modified: Some(w.last_updated),
            body: Some(Body::Stored(w.body)),
            touched: Vec::new(),
            read: false,
            unchanged: w.unchanged,
        }
    }

    pub(super) fn read(status: u16, body: Body, touched: Vec<String>) -> EntryOutcome {
        EntryOutcome {
            status,
            location: None,
            version: None,
            last_modified: None,
            body: Some(body),
            touched,
            read: true,
            unchanged: false,
        }
    }
}

/// A failed run: the entry to blame, when one is, and why.
pub struct Failure {
    /// Position in the Bundle.
    pub index: Option<usize>,
    /// The error.
    pub error: Error,
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure {
            index: None,
            error: e.into(),
        }
    }
}

/// The access rules for identifying who an entry is about: the own-source limit lifted, since
/// finding who a conditional reference or create means is identification, not a change (a feed
/// may attach its data to a Patient another source registered).
pub(crate) fn identification_access(access: &Option<Arc<Access>>) -> Option<Arc<Access>> {
    access.as_ref().map(|a| {
        Arc::new(Access {
            only_org: None,
            ..(**a).clone()
        })
    })
}
