//! How a resource is written out: JSON or XML, `_pretty`, `_summary` and `_elements`. Stored
//! JSON passes through untouched when nothing asks to change it.

use fhir_model::summary::{apply_elements, apply_summary, SummaryMode};
use serde_json::Value;

use crate::error::{internal, Error, ErrorKind, Result};
use crate::params::Params;

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

impl Format {
    /// The format a media type (or `_format` value: `json`, `xml`) names.
    pub fn from_mime(f: &str) -> Option<Format> {
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

    /// The `Content-Type` to send.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => FHIR_JSON,
            Format::Xml => FHIR_XML,
        }
    }
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

impl Default for Output {
    fn default() -> Self {
        Output {
            format: Format::Json,
            pretty: false,
            summary: None,
            elements: None,
        }
    }
}

impl Output {
    /// Reads `_format`, `_pretty`, `_summary` and `_elements`; `negotiated` is the format the
    /// transport's content negotiation chose, used when `_format` is absent.
    pub fn from_params(
        params: &Params,
        negotiated: impl FnOnce() -> Result<Format>,
    ) -> Result<Output> {
        let format = match params.get("_format") {
            Some(f) => Format::from_mime(f).ok_or_else(|| {
                Error::new(
                    ErrorKind::NotAcceptable,
                    format!("_format '{f}' is not supported; use json or xml"),
                )
            })?,
            None => negotiated()?,
        };
        let pretty = match params.get("_pretty") {
            None | Some("false") => false,
            Some("true") => true,
            Some(v) => {
                return Err(Error::invalid(format!(
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
                    return Err(Error::invalid(format!(
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
        self.format.content_type()
    }

    /// Renders a stored resource body, applying subsetting; stored JSON passes through untouched.
    pub fn render_stored(&self, body: &[u8]) -> Result<Vec<u8>> {
        if self.is_verbatim() {
            return Ok(body.to_vec());
        }
        let value: Value = serde_json::from_slice(body).map_err(internal)?;
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
    pub fn render(&self, value: &Value) -> Result<Vec<u8>> {
        match (self.format, self.pretty) {
            (Format::Json, false) => serde_json::to_vec(value).map_err(internal),
            (Format::Json, true) => serde_json::to_vec_pretty(value).map_err(internal),
            (Format::Xml, _) => fhir_model::format::to_xml(value).map_err(internal),
        }
    }
}
