//! Content negotiation and request bodies: the `Accept` header (with `_format`, `_pretty`,
//! `_summary` and `_elements` from the query) becomes an [`Output`], and bodies are read by
//! `Content-Type` within the size limit and parsed as FHIR.

use actix_web::http::header;
use actix_web::{web, HttpRequest};
use futures_util::StreamExt;
use interactions::{ErrorKind, Format, Output, Params};
use serde_json::Value;

use crate::error::ApiError;

/// The output a request asks for, from its query and `Accept` header.
pub fn output(req: &HttpRequest, params: &Params) -> Result<Output, ApiError> {
    Ok(Output::from_params(params, || {
        accept_format(req).map_err(|e| e.0)
    })?)
}

/// The output of a request whose query holds only output parameters.
pub fn output_of(req: &HttpRequest) -> Result<Output, ApiError> {
    output(req, &Params::parse(req.query_string())?)
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
        Some(f) => Format::from_mime(&f) == Some(Format::Xml),
        None => matches!(accept_format(req), Ok(Format::Xml)),
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
        if let Some(f) = Format::from_mime(mime) {
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
            ErrorKind::NotAcceptable,
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

/// Reads the body of `$validate`: JSON is only parsed (judging it is the operation's work); XML,
/// whose reader validates as it reads, gives its findings as the error value.
pub async fn read_for_validation(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<Result<Value, fhir_model::ModelError>, ApiError> {
    let (format, body) = read_body(req, payload, limit).await?;
    Ok(match format {
        Format::Json => Ok(fhir_model::format::parse_json_value(&body)?),
        Format::Xml => fhir_model::format::parse_xml(&body),
    })
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
pub fn check_charset(content_type: &str) -> Result<(), ApiError> {
    for param in content_type.split(';').skip(1) {
        let Some((name, value)) = param.split_once('=') else {
            continue;
        };
        let value = value.trim().trim_matches('"');
        if name.trim().eq_ignore_ascii_case("charset") && !value.eq_ignore_ascii_case("utf-8") {
            return Err(ApiError::new(
                ErrorKind::UnsupportedMediaType,
                format!("charset '{value}' is not supported; send UTF-8"),
            ));
        }
    }
    Ok(())
}

/// Reads a request body of a FHIR format up to `limit` bytes.
async fn read_body(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<(Format, web::BytesMut), ApiError> {
    let format = match req.headers().get(header::CONTENT_TYPE) {
        None => Format::Json,
        Some(ct) => {
            let ct = ct.to_str().unwrap_or("");
            check_charset(ct)?;
            Format::from_mime(ct).ok_or_else(|| {
                ApiError::new(
                    ErrorKind::UnsupportedMediaType,
                    format!("Content-Type '{ct}' is not supported; send application/fhir+json or application/fhir+xml"),
                )
            })?
        }
    };
    let too_large = || {
        ApiError::new(
            ErrorKind::PayloadTooLarge,
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
    let body = read_limited(payload, limit, too_large).await?;
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "The request has no body; a resource is required",
        ));
    }
    Ok((format, body))
}

/// Reads a body of at most `limit` bytes; `too_large` is the error past it.
pub async fn read_limited(
    mut payload: web::Payload,
    limit: usize,
    too_large: impl Fn() -> ApiError,
) -> Result<web::BytesMut, ApiError> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::bad_request(format!("Could not read the body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
