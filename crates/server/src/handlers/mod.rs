//! The actix handlers: each reads what its interaction needs from the HTTP request (path,
//! query, the headers that matter, the body), calls the interaction, and writes its outcome.
//! Each one that reaches data takes a [`crate::guard::Guarded`] permission.

pub mod apps;
pub mod bundle;
pub mod discovery;
pub mod history;
pub mod oauth;
pub mod picker;
pub mod resources;
pub mod searches;

use actix_web::HttpRequest;

use crate::error::ApiError;

/// The `{id}` path segment, which must be a valid logical id.
fn logical_id(req: &HttpRequest) -> Result<String, ApiError> {
    Ok(interactions::logical_id(
        req.match_info().get("id").unwrap_or_default(),
    )?)
}

/// A header's text, when present and readable.
fn header<'r>(req: &'r HttpRequest, name: &str) -> Option<&'r str> {
    req.headers().get(name).and_then(|h| h.to_str().ok())
}

/// The `If-Match` version of a request.
fn if_match(req: &HttpRequest) -> Result<Option<i32>, ApiError> {
    match req.headers().get("if-match") {
        None => Ok(None),
        Some(h) => Ok(Some(
            h.to_str()
                .ok()
                .and_then(interactions::outcome::parse_etag)
                .ok_or_else(|| {
                    ApiError::bad_request("If-Match must be a version ETag such as W/\"3\"")
                })?,
        )),
    }
}
