//! Content negotiation and rendering: `Accept`/`_format`, `_pretty`, `_summary`, `_elements`, and
//! reading request bodies by `Content-Type` within the size limit.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest};
use fhir_model::summary::{apply_elements, apply_summary, SummaryMode};
use futures_util::StreamExt;
use serde_json::Value;

use crate::error::ApiError;
use crate::query::Params;

/// The FHIR JSON media type with charset, as sent.
pub const FHIR_JSON: &str = "application/fhir+json; charset=utf-8";
/// The FHIR XML media type with charset, as sent.
pub const FHIR_XML: &str = "application/fhir+xml; charset=utf-8";

/// A wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// FHIR JSON.
    Json,
    /// FHIR XML.
    Xml,
}

/// How a response should be written.
#[derive(Debug, Clone)]
pub struct Output {
    /// JSON or XML.
    pub format: Format,
    /// `_pretty=true`.
    pub pretty: bool,
    /// `_summary`, when other than `false`.
    pub summary: Option<SummaryMode>,
    /// `_elements`, when given.
    pub elements: Option<Vec<String>>,
}

impl Output {
    /// Reads `_format`, `_pretty`, `_summary`, `_elements` and `Accept`.
    pub fn from_request(req: &HttpRequest, params: &Params) -> Result<Output, ApiError> {
        let format = match params.get("_format") {
            Some(f) => format_from_mime(f).ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_ACCEPTABLE,
                    "not-supported",
                    format!("_format '{f}' is not supported; use json or xml"),
                )
            })?,
            None => accept_format(req)?,
        };
        let pretty = match params.get("_pretty") {
            None | Some("false") => false,
            Some("true") => true,
            Some(v) => {
                return Err(ApiError::bad_request(format!(
                    "_pretty must be true or false, not '{v}'"
                )))
            }
        };
        let summary = match params.get("_summary") {
            None => None,
            Some(v) => match SummaryMode::parse(v) {
                Some(SummaryMode::False) => None,
                Some(m) => Some(m),
                None => {
                    return Err(ApiError::bad_request(format!(
                        "_summary must be one of true, text, data, count, false; not '{v}'"
                    )))
                }
            },
        };
        let elements = params.get("_elements").map(|e| {
            e.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        });
        Ok(Output {
            format,
            pretty,
            summary,
            elements,
        })
    }

    /// True when stored bytes can be sent as they are.
    pub fn is_verbatim(&self) -> bool {
        self.format == Format::Json
            && !self.pretty
            && self.summary.is_none()
            && self.elements.is_none()
    }

    /// The `Content-Type` to send.
    pub fn content_type(&self) -> &'static str {
        match self.format {
            Format::Json => FHIR_JSON,
            Format::Xml => FHIR_XML,
        }
    }

    /// Renders a stored resource body, applying subsetting; stored JSON passes through untouched.
    pub fn render_stored(&self, body: &[u8]) -> Result<Vec<u8>, ApiError> {
        if self.is_verbatim() {
            return Ok(body.to_vec());
        }
        let value: Value = serde_json::from_slice(body).map_err(crate::error::internal)?;
        self.render(&self.subset(&value))
    }

    /// Applies `_summary`/`_elements` to one resource.
    pub fn subset(&self, value: &Value) -> Value {
        let mut v = match self.summary {
            Some(mode) => apply_summary(value, mode),
            None => value.clone(),
        };
        if let Some(elements) = &self.elements {
            v = apply_elements(&v, elements);
        }
        v
    }

    /// Renders a resource value in the chosen format.
    pub fn render(&self, value: &Value) -> Result<Vec<u8>, ApiError> {
        match (self.format, self.pretty) {
            (Format::Json, false) => serde_json::to_vec(value).map_err(crate::error::internal),
            (Format::Json, true) => {
                serde_json::to_vec_pretty(value).map_err(crate::error::internal)
            }
            (Format::Xml, _) => fhir_model::format::to_xml(value).map_err(crate::error::internal),
        }
    }
}

/// True when the request asked for XML by `_format` or `Accept` (lenient: for error bodies).
pub fn prefers_xml(req: &HttpRequest) -> bool {
    let format = req.query_string().split('&').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k == "_format").then(|| {
            v.replace("%2B", "+")
                .replace("%2b", "+")
                .replace("%2F", "/")
                .replace("%2f", "/")
        })
    });
    match format {
        Some(f) => format_from_mime(&f) == Some(Format::Xml),
        None => matches!(accept_format(req), Ok(Format::Xml)),
    }
}

fn format_from_mime(f: &str) -> Option<Format> {
    // An unencoded `+` in `_format=application/fhir+xml` arrives as a space.
    let base = f
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .replace(' ', "+")
        .to_ascii_lowercase();
    match base.as_str() {
        "json" | "application/json" | "application/fhir+json" | "application/json+fhir" => {
            Some(Format::Json)
        }
        "xml"
        | "text/xml"
        | "application/xml"
        | "application/fhir+xml"
        | "application/xml+fhir" => Some(Format::Xml),
        _ => None,
    }
}

fn accept_format(req: &HttpRequest) -> Result<Format, ApiError> {
    let Some(accept) = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|h| h.to_str().ok())
    else {
        return Ok(Format::Json);
    };
    let mut any = false;
    for part in accept.split(',') {
        let mime = part.split(';').next().unwrap_or("").trim();
        if let Some(f) = format_from_mime(mime) {
            return Ok(f);
        }
        if mime == "*/*" || mime == "application/*" || mime == "text/*" || mime.is_empty() {
            any = true;
        }
    }
    if any {
        Ok(Format::Json)
    } else {
        Err(ApiError::new(
            StatusCode::NOT_ACCEPTABLE,
            "not-supported",
            format!("None of the accepted media types '{accept}' is supported; use application/fhir+json or application/fhir+xml"),
        ))
    }
}

/// Reads a request body up to `limit` bytes and parses it as a FHIR resource by `Content-Type`.
pub async fn read_resource(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<Value, ApiError> {
    let (format, body) = read_body(req, payload, limit).await?;
    let parsed = match format {
        Format::Json => fhir_model::format::parse_json(&body),
        Format::Xml => fhir_model::format::parse_xml(&body),
    };
    Ok(parsed?)
}

/// Reads a Bundle body: JSON is only parsed, within the nesting limit of a Bundle (its entries
/// are validated one by one, so one bad entry of a batch fails alone); XML is read and validated
/// whole.
pub async fn read_bundle(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<Value, ApiError> {
    let (format, body) = read_body(req, payload, limit).await?;
    match format {
        Format::Json => Ok(fhir_model::format::parse_json_value(&body)?),
        Format::Xml => Ok(fhir_model::format::parse_xml(&body)?),
    }
}

/// Bodies are read as UTF-8 (FHIR's only encoding for JSON, and the only one the XML reader
/// takes): a `charset` parameter naming anything else is refused rather than misread.
pub(crate) fn check_charset(content_type: &str) -> Result<(), ApiError> {
    for param in content_type.split(';').skip(1) {
        let Some((name, value)) = param.split_once('=') else {
            continue;
        };
        let value = value.trim().trim_matches('"');
        if name.trim().eq_ignore_ascii_case("charset") && !value.eq_ignore_ascii_case("utf-8") {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "not-supported",
                format!("charset '{value}' is not supported; send UTF-8"),
            ));
        }
    }
    Ok(())
}

/// Reads a request body of a FHIR format up to `limit` bytes.
async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<(Format, web::BytesMut), ApiError> {
    let format = match req.headers().get(header::CONTENT_TYPE) {
        None => Format::Json,
        Some(ct) => {
            let ct = ct.to_str().unwrap_or("");
            check_charset(ct)?;
            format_from_mime(ct).ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "not-supported",
                    format!("Content-Type '{ct}' is not supported; send application/fhir+json or application/fhir+xml"),
                )
            })?
        }
    };
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-costly",
            format!("The body is larger than the limit of {limit} bytes"),
        )
    };
    if let Some(len) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|h| h.to_str().ok())
        .and_then(|s| s.parse::<usize>().ok())
    {
        if len > limit {
            return Err(too_large());
        }
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::bad_request(format!("Could not read the body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "The request has no body; a resource is required",
        ));
    }
    Ok((format, body))
}
