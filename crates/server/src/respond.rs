//! Building resource responses: headers common to every interaction and `Prefer: return=`.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde_json::json;

use crate::error::ApiError;
use crate::format::{Output, FHIR_JSON};

/// The `ETag` of a version.
pub fn etag(version: i32) -> String {
    format!("W/\"{version}\"")
}

/// An HTTP date for `Last-Modified`.
pub fn http_date(at: DateTime<Utc>) -> String {
    at.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
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

/// What `Prefer: return=` asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReturnPref {
    /// The resource (default).
    Representation,
    /// No body.
    Minimal,
    /// An OperationOutcome.
    OperationOutcome,
}

/// Reads `Prefer: return=…`.
pub fn return_pref(req: &HttpRequest) -> ReturnPref {
    let prefer = req
        .headers()
        .get_all("prefer")
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split([',', ';']))
        .map(str::trim)
        .find_map(|p| p.strip_prefix("return="));
    match prefer {
        Some("minimal") => ReturnPref::Minimal,
        Some("OperationOutcome") => ReturnPref::OperationOutcome,
        _ => ReturnPref::Representation,
    }
}

/// Version metadata of a written or read resource.
pub struct VersionInfo<'a> {
    /// Resource type.
    pub res_type: &'a str,
    /// Logical id.
    pub id: &'a str,
    /// Version.
    pub version: i32,
    /// When it was written.
    pub last_updated: DateTime<Utc>,
}

/// A response carrying a resource version, honouring `Prefer` for writes.
pub fn resource_response(
    req: &HttpRequest,
    status: StatusCode,
    info: &VersionInfo<'_>,
    body: &[u8],
    output: &Output,
    location: Option<&str>,
    is_write: bool,
) -> Result<HttpResponse, ApiError> {
    let mut res = HttpResponse::build(status);
    res.insert_header((header::ETAG, etag(info.version)));
    res.insert_header((header::LAST_MODIFIED, http_date(info.last_updated)));
    if let Some(base) = location {
        res.insert_header((
            header::LOCATION,
            format!(
                "{base}/{}/{}/_history/{}",
                info.res_type, info.id, info.version
            ),
        ));
    }
    let pref = if is_write {
        return_pref(req)
    } else {
        ReturnPref::Representation
    };
    match pref {
        ReturnPref::Minimal => Ok(res.finish()),
        ReturnPref::OperationOutcome => {
            let oo = json!({"resourceType": "OperationOutcome", "issue": [{
                "severity": "information", "code": "informational",
                "diagnostics": format!("{}/{} is at version {}", info.res_type, info.id, info.version)}]});
            res.insert_header((header::CONTENT_TYPE, FHIR_JSON));
            Ok(res.body(serde_json::to_vec(&oo).map_err(crate::error::internal)?))
        }
        ReturnPref::Representation => {
            res.insert_header((header::CONTENT_TYPE, output.content_type()));
            Ok(res.body(output.render_stored(body)?))
        }
    }
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
}
