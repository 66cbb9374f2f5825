//! `application/x-www-form-urlencoded` request bodies, read with their limits checked first: at
//! most [`MAX_FORM_BYTES`] bytes and [`MAX_FIELDS`] fields, each field at most once (RFC 6749
//! §3.1: "Request and response parameters MUST NOT be included more than once").

use std::collections::BTreeMap;

use crate::error::OAuthError;

/// The largest form body read (a client assertion is at most 16 KiB).
pub const MAX_FORM_BYTES: usize = 64 * 1024;

/// The most fields a form may have.
pub const MAX_FIELDS: usize = 32;

/// A parsed form.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Form {
    fields: BTreeMap<String, String>,
}

impl Form {
    /// Parses a body; empty values count as absent (RFC 6749 §3.1).
    pub fn parse(body: &[u8]) -> Result<Form, OAuthError> {
        if body.len() > MAX_FORM_BYTES {
            return Err(OAuthError::invalid_request(format!(
                "the request body is larger than {MAX_FORM_BYTES} bytes"
            )));
        }
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).map_err(|_| {
            OAuthError::invalid_request("the body is not application/x-www-form-urlencoded")
        })?;
        if pairs.len() > MAX_FIELDS {
            return Err(OAuthError::invalid_request(format!(
                "the request has more than {MAX_FIELDS} parameters"
            )));
        }
        let mut fields = BTreeMap::new();
        for (name, value) in pairs {
            // No OAuth parameter holds control characters, and the database refuses NUL in text.
            if name.chars().chain(value.chars()).any(char::is_control) {
                return Err(OAuthError::invalid_request(format!(
                    "the parameter '{}' holds a control character",
                    printable(&name)
                )));
            }
            if value.is_empty() {
                continue;
            }
            if fields.insert(name.clone(), value).is_some() {
                return Err(OAuthError::invalid_request(format!(
                    "the parameter '{}' is repeated",
                    printable(&name)
                )));
            }
        }
        Ok(Form { fields })
    }

    /// A form of the given pairs (tests and query strings already split).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Form {
        Form {
            fields: pairs
                .into_iter()
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// A field's value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }

    /// A field that must be present.
    pub fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name).ok_or_else(|| {
            OAuthError::invalid_request(format!("the parameter '{name}' is missing"))
        })
    }
}

/// A client-supplied string made safe for an error message: printable ASCII, short.
pub fn printable(s: &str) -> String {
    s.chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_limits_and_repeats() {
        let f = Form::parse(b"grant_type=client_credentials&scope=system%2F*.rs&empty=").unwrap();
        assert_eq!(f.get("grant_type"), Some("client_credentials"));
        assert_eq!(f.get("scope"), Some("system/*.rs"));
        assert_eq!(f.get("empty"), None);
        assert!(f.require("client_assertion").is_err());
        assert!(Form::parse(b"a=1&a=2").is_err());
        assert!(Form::parse(&vec![b'a'; MAX_FORM_BYTES + 1]).is_err());
        let many: Vec<String> = (0..=MAX_FIELDS).map(|i| format!("f{i}=x")).collect();
        assert!(Form::parse(many.join("&").as_bytes()).is_err());
        // Bytes that are not UTF-8 decode lossily, as any other unknown field would be ignored.
        assert!(Form::parse(b"%FF=%FE").is_ok());
        assert!(Form::parse(b"client_id=app%00evil").is_err());
        assert!(Form::parse(b"state=a%0Ab").is_err());
    }
}
