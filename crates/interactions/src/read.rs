//! `read` and `vread` (http://hl7.org/fhir/R4/http.html#read), with `If-None-Match` and
//! `If-Modified-Since` answered as not modified. [`judge`] is the one place that turns a row and
//! its visibility into the answer a caller gets, for REST reads, Bundle GET entries and the
//! current version a patch applies to.

use chrono::{DateTime, Utc};
use store::{Stored, Visibility};

use crate::authorize::Authorized;
use crate::error::{Error, ErrorKind, Result};
use crate::outcome::{parse_etag, Outcome, VersionMeta};
use crate::pool::blocking;
use crate::services::Services;

/// A read of the current version, or of one version.
#[derive(Debug, Clone, Default)]
pub struct ReadRequest {
    /// Resource type.
    pub res_type: String,
    /// Logical id.
    pub id: String,
    /// The version of a vread.
    pub version: Option<i32>,
    /// `If-None-Match`: ETags the client holds.
    pub if_none_match: Option<String>,
    /// `If-Modified-Since`.
    pub if_modified_since: Option<DateTime<Utc>>,
}

/// Reads a version with the request's access rules.
pub async fn read(services: &Services, auth: &Authorized, req: &ReadRequest) -> Result<Outcome> {
    let stored = load(services, auth, &req.res_type, &req.id, req.version).await?;
    answer(services, auth, &req.res_type, stored, |v, at| {
        not_modified(req, v, at)
    })
}

/// Loads a version with the request's access rules (deleted versions included).
pub(crate) async fn load(
    services: &Services,
    auth: &Authorized,
    res_type: &str,
    id: &str,
    version: Option<i32>,
) -> Result<Stored> {
    let store = services.reader(&auth.routing_key());
    let (t, i) = (res_type.to_string(), id.to_string());
    let found = match auth.access().cloned() {
        None => blocking(move || match version {
            None => store.read(&t, &i),
            Some(v) => store.vread(&t, &i, v),
        })
        .await?
        .map(|s| (s, Visibility::Visible)),
        Some(access) => blocking(move || store.read_checked(&t, &i, version, &access)).await?,
    };
    let routes = auth.access().map(|a| a.routes()).unwrap_or_default();
    judge(found, res_type, id, version, routes, |patients| {
        auth.touched(patients)
    })
}

/// The answer to a looked-up row: hidden is absent (404), withheld by limits a claim or
/// break-glass lifts is a 403 saying how (and the patients it is about are audited).
pub(crate) fn judge(
    found: Option<(Stored, Visibility)>,
    res_type: &str,
    id: &str,
    version: Option<i32>,
    routes: Vec<&'static str>,
    withheld_from: impl FnOnce(&[String]),
) -> Result<Stored> {
    let missing = || match version {
        None => Error::not_found(format!("{res_type}/{id} is not known")),
        Some(v) => Error::not_found(format!("{res_type}/{id} has no version {v}")),
    };
    match found {
        Some((stored, Visibility::Visible)) => Ok(stored),
        Some((stored, Visibility::Withheld)) => {
            withheld_from(&stored.compartments);
            Err(Error::withheld(&format!("{res_type}/{id}"), routes))
        }
        Some((_, Visibility::Hidden)) | None => Err(missing()),
    }
}

/// 410 for a deleted version.
pub(crate) fn gone(res_type: &str, stored: &Stored) -> Error {
    Error::new(
        ErrorKind::Gone,
        format!(
            "{res_type}/{} was deleted (version {})",
            stored.id, stored.version
        ),
    )
}

/// The outcome of a version read: audited, 410 when a deletion, not modified when the client's
/// copy is current.
pub(crate) fn answer(
    services: &Services,
    auth: &Authorized,
    res_type: &str,
    stored: Stored,
    is_current: impl FnOnce(i32, DateTime<Utc>) -> bool,
) -> Result<Outcome> {
    auth.touched(&stored.compartments);
    auth.resource(
        format!("{res_type}/{}/_history/{}", stored.id, stored.version),
        services
            .policy
            .hidden_from_patients(&stored.sec_labels, &stored.alert_codes),
    );
    if stored.deleted || stored.body.is_none() {
        return Err(gone(res_type, &stored));
    }
    let meta = VersionMeta {
        res_type: res_type.to_string(),
        id: stored.id.clone(),
        version: stored.version,
        last_updated: stored.last_updated,
    };
    if is_current(stored.version, stored.last_updated) {
        return Ok(Outcome::NotModified(meta));
    }
    Ok(Outcome::Resource {
        status: 200,
        meta,
        body: stored.body.unwrap_or_default(),
        written: false,
        issues: Vec::new(),
    })
}

fn not_modified(req: &ReadRequest, version: i32, last_updated: DateTime<Utc>) -> bool {
    if let Some(inm) = &req.if_none_match {
        return inm
            .split(',')
            .any(|t| t.trim() == "*" || parse_etag(t) == Some(version));
    }
    if let Some(ims) = req.if_modified_since {
        // HTTP dates have whole seconds; the stored instant has milliseconds.
        return last_updated.timestamp() <= ims.timestamp();
    }
    false
}
