//! The care-record viewer (`apps/viewer`, built into `INVICTA_VIEWER_DIR`) served at
//! `/apps/viewer/`, with `config.json` telling it the FHIR base URL and its client id.
//!
//! Hand-written rather than a static-files service: the build is a flat folder of a few files,
//! and each answer needs the same strict headers (a Content-Security-Policy that allows only
//! this origin, no referrer, since the URL carries the authorization code for a moment, and no
//! framing by other sites, so a break-glass button cannot be clickjacked).

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use interactions::ErrorKind;

use crate::error::ApiError;
use crate::state::AppState;

/// Where the viewer is served.
pub const VIEWER_PATH: &str = "/apps/viewer/";

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   font-src 'self'; connect-src 'self'; frame-ancestors 'self'; base-uri 'none'; \
                   form-action 'self'; object-src 'none'";

/// `GET /apps/viewer`: the app's canonical address ends with a slash (its files are relative).
pub async fn root(req: HttpRequest) -> HttpResponse {
    let query = req.query_string();
    let to = if query.is_empty() {
        VIEWER_PATH.to_string()
    } else {
        format!("{VIEWER_PATH}?{query}")
    };
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, to))
        .finish()
}

/// `GET /apps/viewer/config.json`: what the app cannot know from its own address.
pub async fn config(state: web::Data<AppState>) -> HttpResponse {
    let body = serde_json::json!({
        "fhirBaseUrl": state.config.base_url,
        "clientId": state.config.viewer_client,
    });
    with_headers(HttpResponse::Ok(), "application/json").body(body.to_string())
}

/// `GET /apps/viewer/` and `GET /apps/viewer/{file}`.
pub async fn file(
    state: web::Data<AppState>,
    name: Option<web::Path<String>>,
) -> Result<HttpResponse, ApiError> {
    let name = name
        .map(|n| n.into_inner())
        .unwrap_or_else(|| "index.html".into());
    let Some(content_type) = served_type(&name) else {
        return Err(ApiError::not_found(format!(
            "The viewer has no file '{}'",
            name.escape_debug()
        )));
    };
    let path = state.config.viewer_dir.join(&name);
    let read = web::block(move || std::fs::read(path))
        .await
        .map_err(crate::error::blocking_failed)?;
    match read {
        Ok(bytes) => Ok(with_headers(HttpResponse::Ok(), content_type).body(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && name == "index.html" => {
            Err(ApiError::not_found(format!(
                "The viewer is not built in {}: run `make run`, or `npm ci && npm run build` in apps/viewer",
                state.config.viewer_dir.display()
            )))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(ApiError::not_found(format!(
            "The viewer has no file '{name}'"
        ))),
        Err(e) => Err(ApiError::new(
            ErrorKind::Internal,
            format!("The viewer's file '{name}' could not be read: {e}"),
        )),
    }
}

/// The content type of a file the viewer may serve: a flat name (no folders, no dot first)
/// with a known extension; anything else is not a viewer file.
fn served_type(name: &str) -> Option<&'static str> {
    let flat = !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    if !flat {
        return None;
    }
    Some(match name.rsplit_once('.')?.1 {
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        _ => return None,
    })
}

fn with_headers(
    mut builder: actix_web::HttpResponseBuilder,
    content_type: &str,
) -> actix_web::HttpResponseBuilder {
    builder
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        // Rebuilt files keep their names, so a browser must ask again each time.
        .insert_header((header::CACHE_CONTROL, "no-cache"));
    builder
}

#[cfg(test)]
mod tests {
    use super::served_type;

    #[test]
    fn only_flat_names_with_known_extensions_are_served() {
        assert_eq!(
            served_type("viewer.js"),
            Some("text/javascript; charset=utf-8")
        );
        assert_eq!(served_type("index.html"), Some("text/html; charset=utf-8"));
        for bad in [
            "",
            "../Cargo.toml",
            "..",
            ".env",
            "a/b.js",
            "a%2fb.js",
            "viewer.js.map",
            "x.exe",
            "noext",
        ] {
            assert_eq!(served_type(bad), None, "{bad}");
        }
    }
}
