//! Reading and writing resources as FHIR JSON and XML. fhirbolt is used here and nowhere else:
//! its serde code is generic and would be compiled again in every crate that called it, so it
//! sits behind these non-generic functions over bytes and `serde_json::Value`.

use fhirbolt::model::r4::Resource as R4Resource;
use fhirbolt::serde::{DeserializationConfig, DeserializationMode};
use serde_json::Value;

use crate::issue::{Issue, IssueCode, ModelError};
use crate::narrative;
use crate::nesting;
use crate::nhs_number;
use crate::validate::validate_resource;
use crate::xml_input::{self, XmlRefusal};

/// Parses and validates a JSON resource body: UTF-8, nesting, JSON syntax, R4 structure and
/// primitive formats, then fhirbolt's strict reading as a second opinion (cardinality of
/// mandatory elements).
pub fn parse_json(bytes: &[u8]) -> Result<Value, ModelError> {
    check_resource(parse_json_value(bytes)?)
}

/// Parses a JSON document that is not itself checked as a resource (a batch or transaction
/// Bundle whose entries are checked one by one, a JSON Patch): UTF-8, nesting within the limit
/// of a Bundle ([`nesting::MAX_NESTING`] plus the entry levels), JSON syntax.
pub fn parse_json_value(bytes: &[u8]) -> Result<Value, ModelError> {
    // RFC 8259 lets a parser ignore a UTF-8 byte order mark, which some tools write.
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| {
        ModelError::single(Issue::general(
            IssueCode::Invalid,
            format!("The body is not valid UTF-8 (at byte {})", e.valid_up_to()),
        ))
    })?;
    let limit = nesting::limit_for("Bundle");
    if nesting::text_depth(bytes, limit) > limit {
        return Err(nesting::too_deep(limit));
    }
    serde_json::from_str(text).map_err(|e| {
        ModelError::single(Issue::general(
            IssueCode::Invalid,
            format!("The body is not valid JSON: {e}"),
        ))
    })
}

/// Checks an already-parsed JSON value as a resource, exactly as [`parse_json`] does.
pub fn check_resource(value: Value) -> Result<Value, ModelError> {
    // First, before anything recurses over the value.
    let levels = nesting::check(&value)?;
    let checked = nesting::with_stack_for(levels, || {
        let issues = validate_resource(&value);
        if !issues.is_empty() {
            return Err(ModelError { issues });
        }
        let strict = DeserializationConfig {
            mode: DeserializationMode::Strict,
        };
        fhirbolt::json::from_json_value::<R4Resource>(value.clone(), Some(strict))
            .map(|_| ())
            .map_err(|e| {
                let rt = value["resourceType"].as_str().unwrap_or("Resource");
                ModelError::single(fhirbolt_issue(rt, &e.to_string()))
            })
    });
    checked.unwrap_or_else(|| Err(parser_failed()))?;
    Ok(value)
}

/// Parses an XML resource body into its JSON form and validates it like JSON. A first pass
/// bounds nesting and normalises what fhirbolt's reader would wrongly refuse (see `xml_input`).
pub fn parse_xml(bytes: &[u8]) -> Result<Value, ModelError> {
    let canonical = xml_input::canonical(bytes).map_err(|refusal| match refusal {
        XmlRefusal::TooDeep => nesting::too_deep(nesting::MAX_XML_DEPTH),
        XmlRefusal::Invalid(message) => {
            ModelError::single(Issue::general(IssueCode::Invalid, message))
        }
    })?;
    let strict = DeserializationConfig {
        mode: DeserializationMode::Strict,
    };
    let value = // An XML element may become two JSON levels (an array and its object).
    nesting::with_stack_for(2 * canonical.depth, || {
        let resource: R4Resource = fhirbolt::xml::from_slice(&canonical.xml, Some(strict))
            .map_err(|e| format!("The body is not a valid FHIR XML resource: {e}"))?;
        let mut value = fhirbolt::json::to_json_value(resource, None)
            .map_err(|e| format!("The XML resource cannot be represented as JSON: {e}"))?;
        narrative::restore_in_json(&mut value, &canonical.narratives);
        Ok(value)
    })
    .unwrap_or_else(|| Err(PARSER_FAILED.to_string()))
    .map_err(|e| ModelError::single(Issue::general(IssueCode::Invalid, e)))?;
    check_resource(value)
}

/// Writes a (valid) JSON resource as FHIR XML.
pub fn to_xml(value: &Value) -> Result<Vec<u8>, ModelError> {
    let strict = DeserializationConfig {
        mode: DeserializationMode::Strict,
    };
    nesting::with_stack_for(nesting::depth(value), || {
        let mut value = value.clone();
        let narratives = narrative::set_aside_for_writing(&mut value);
        let resource: R4Resource =
            fhirbolt::json::from_json_value(value, Some(strict)).map_err(|e| e.to_string())?;
        let xml = fhirbolt::xml::to_vec(&resource, None).map_err(|e| e.to_string())?;
        Ok(narrative::restore_in_xml(xml, &narratives))
    })
    .unwrap_or_else(|| Err(PARSER_FAILED.to_string()))
    .map_err(|e| ModelError::single(Issue::general(IssueCode::Invalid, e)))
}

/// fhirbolt panics on some inputs (seen: lax JSON reading of unknown elements); a panic in a
/// parser must become an error answer, never a dropped connection.
const PARSER_FAILED: &str = "The content could not be processed by the FHIR parser";

fn parser_failed() -> ModelError {
    ModelError::single(Issue::general(IssueCode::Invalid, PARSER_FAILED))
}

/// Rules beyond structure (HTTP 422 when broken): every NHS number must pass its check digit.
pub fn check_business_rules(resource: &Value) -> Result<(), ModelError> {
    let mut issues = Vec::new();
    let rt = resource["resourceType"].as_str().unwrap_or("Resource");
    if let Some(ids) = resource.get("identifier").and_then(Value::as_array) {
        for (i, ident) in ids.iter().enumerate() {
            if ident.get("system").and_then(Value::as_str) != Some(nhs_number::NHS_NUMBER_SYSTEM) {
                continue;
            }
            let value = ident.get("value").and_then(Value::as_str).unwrap_or("");
            if !nhs_number::is_valid(value) {
                issues.push(Issue::at(
                    IssueCode::BusinessRule,
                    &format!("{rt}.identifier[{i}].value"),
                    format!("'{value}' is not a valid NHS number (10 digits with a Modulus 11 check digit)"),
                ));
            }
        }
    }
    if issues.is_empty() {
        Ok(())
    } else {
        Err(ModelError { issues })
    }
}

/// fhirbolt's messages name the field but not its path: keep what can be recovered.
fn fhirbolt_issue(resource_type: &str, message: &str) -> Issue {
    let field = message
        .split('`')
        .nth(1)
        .filter(|f| f.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
    let code = if message.starts_with("missing field") {
        IssueCode::Required
    } else {
        IssueCode::Structure
    };
    let diagnostics = format!("Invalid {resource_type}: {message}");
    match field {
        Some(f) if message.starts_with("missing field") => {
            Issue::at(code, &format!("{resource_type}.{f}"), diagnostics)
        }
        _ => Issue::general(code, diagnostics),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nesting::{depth, MAX_NESTING};
    use serde_json::json;

    /// An Observation whose extensions nest until the whole is exactly `levels` deep.
    pub(crate) fn deep_observation(levels: usize) -> Value {
        let (mut ext, mut at) = if levels % 2 == 1 {
            (json!({"url": "http://e/x", "valueString": "leaf"}), levels)
        } else {
            (
                json!({"url": "http://e/x", "valueCoding": {"code": "leaf"}}),
                levels - 1,
            )
        };
        while at > 3 {
            ext = json!({"url": "http://e/x", "extension": [ext]});
            at -= 2;
        }
        let o = json!({"resourceType": "Observation", "status": "final", "code": {"text": "t"},
            "extension": [ext]});
        assert_eq!(depth(&o), levels);
        o
    }

    /// Runs `f` on a thread with the stack of an actix worker or blocking thread (2 MiB).
    fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(f)
            .unwrap()
            .join()
            .expect("no stack overflow or panic")
    }

    #[test]
    fn the_deepest_resource_accepted_is_served_in_both_formats() {
        on_small_stack(|| {
            let o = deep_observation(MAX_NESTING);
            let body = serde_json::to_vec(&o).unwrap();
            assert_eq!(parse_json(&body).unwrap(), o);
            let xml = to_xml(&o).unwrap();
            assert_eq!(parse_xml(&xml).unwrap(), o);
            // The same resource as the entry of a Bundle, in both formats.
            let bundle = json!({"resourceType": "Bundle", "type": "collection",
                "entry": [{"fullUrl": "urn:uuid:1", "resource": o}]});
            let xml = to_xml(&bundle).unwrap();
            assert_eq!(parse_xml(&xml).unwrap(), bundle);
            assert_eq!(
                parse_json(&serde_json::to_vec(&bundle).unwrap()).unwrap(),
                bundle
            );
        });
    }

    #[test]
    fn one_level_deeper_is_refused_naming_the_limit() {
        on_small_stack(|| {
            let o = deep_observation(MAX_NESTING + 1);
            let limit = format!("limit of {MAX_NESTING} levels");
            let err = parse_json(&serde_json::to_vec(&o).unwrap()).unwrap_err();
            assert!(err.to_string().contains(&limit), "{err}");
            let err = check_resource(o.clone()).unwrap_err();
            assert!(err.to_string().contains(&limit), "{err}");
            // Written as XML by hand (to_xml would serve it, but nothing may store it).
            let mut xml = String::from(
                r#"<Observation xmlns="http://hl7.org/fhir"><status value="final"/><code><text value="t"/></code>"#,
            );
            let mut n = 0;
            let mut ext = &o["extension"][0];
            while ext.get("extension").is_some() {
                xml.push_str(r#"<extension url="http://e/x">"#);
                ext = &ext["extension"][0];
                n += 1;
            }
            xml.push_str(r#"<extension url="http://e/x"><valueString value="leaf"/></extension>"#);
            xml.push_str(&"</extension>".repeat(n));
            xml.push_str("</Observation>");
            let err = parse_xml(xml.as_bytes()).unwrap_err();
            assert!(err.to_string().contains(&limit), "{err}");
        });
    }

    #[test]
    fn hostile_xml_nesting_is_refused_without_recursion() {
        on_small_stack(|| {
            let bundle = format!(
                "<Bundle xmlns=\"http://hl7.org/fhir\"><type value=\"batch\"/>{}{}</Bundle>",
                "<a>".repeat(1500),
                "</a>".repeat(1500)
            );
            assert!(parse_xml(bundle.as_bytes()).is_err());
            let mut ext = String::new();
            for _ in 0..700 {
                ext.push_str(r#"<extension url="http://e/x">"#);
            }
            let xml = format!(
                r#"<Observation xmlns="http://hl7.org/fhir"><status value="final"/><code><text value="t"/></code>{ext}<valueString value="x"/>{}</Observation>"#,
                "</extension>".repeat(700)
            );
            let err = parse_xml(xml.as_bytes()).unwrap_err();
            assert!(err.to_string().contains("nests deeper"), "{err}");
            let json = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
            assert!(parse_json(json.as_bytes()).is_err());
            assert!(parse_json_value(json.as_bytes()).is_err());
        });
    }

    #[test]
    fn narrative_whitespace_survives_reading_xml() {
        // Found by fuzzing: fhirbolt's reader trims text around inline elements.
        let div =
            r#"<div xmlns="http://www.w3.org/1999/xhtml"><p>Ann <b>Brontë</b> &amp; co</p></div>"#;
        let xml = format!(
            r#"<Patient xmlns="http://hl7.org/fhir"><text><status value="generated"/>{div}</text><contained><Organization><id value="o"/><text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml">x <i>y</i></div></text></Organization></contained></Patient>"#
        );
        let v = parse_xml(xml.as_bytes()).unwrap();
        assert_eq!(v["text"]["div"], div);
        assert_eq!(
            v["contained"][0]["text"]["div"],
            r#"<div xmlns="http://www.w3.org/1999/xhtml">x <i>y</i></div>"#
        );
        // And written as XML (fhirbolt's writer trimmed and indented it) and read again.
        let xml = to_xml(&v).unwrap();
        assert!(String::from_utf8_lossy(&xml).contains(div));
        assert_eq!(parse_xml(&xml).unwrap(), v);
    }

    #[test]
    fn xml_as_other_tools_write_it_is_read() {
        let expected = json!({"resourceType": "Patient", "id": "p1", "active": true});
        for xml in [
            r#"<?xml version='1.0' encoding='utf-8'?><Patient xmlns="http://hl7.org/fhir"><id value="p1"/><active value="true"/></Patient>"#,
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Patient xmlns="http://hl7.org/fhir"><id value="p1"/><active value="true"/></Patient>"#,
            r#"<f:Patient xmlns:f="http://hl7.org/fhir"><f:id value="p1"/><f:active value="true"/></f:Patient>"#,
            "\u{feff}<Patient xmlns=\"http://hl7.org/fhir\">\n  <id value=\"p1\"/>\n  <active value=\"true\"/>\n</Patient>\n",
        ] {
            assert_eq!(parse_xml(xml.as_bytes()).unwrap(), expected, "{xml}");
        }
        let latin1 =
            br#"<?xml version="1.0" encoding="ISO-8859-1"?><Patient xmlns="http://hl7.org/fhir"/>"#;
        let err = parse_xml(latin1).unwrap_err();
        assert!(err.to_string().contains("UTF-8 only"), "{err}");
    }

    #[test]
    fn json_round_trip_through_xml() {
        let body = br#"{"resourceType":"Patient","id":"p1","active":true,"name":[{"family":"Jones","given":["Ann"]}],"birthDate":"1980-05-01"}"#;
        let v = parse_json(body).unwrap();
        let xml = to_xml(&v).unwrap();
        let text = String::from_utf8(xml.clone()).unwrap();
        assert!(text.contains("<family value=\"Jones\"/>"), "{text}");
        assert_eq!(parse_xml(&xml).unwrap(), v);
    }

    #[test]
    fn missing_mandatory_element_is_named() {
        let err = parse_json(br#"{"resourceType":"Observation","code":{"text":"x"}}"#).unwrap_err();
        assert_eq!(
            err.issues[0].expression.as_deref(),
            Some("Observation.status")
        );
    }

    #[test]
    fn syntax_and_encoding_errors() {
        assert!(parse_json(b"{\"resourceType\":").is_err());
        assert!(parse_json(b"\xff\xfe").is_err());
        assert!(parse_xml(b"<Patient xmlns=\"http://hl7.org/fhir\"><bogus/></Patient>").is_err());
    }

    #[test]
    fn nhs_number_rule() {
        let bad = serde_json::json!({"resourceType": "Patient", "identifier": [
            {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9434765918"}]});
        let err = check_business_rules(&bad).unwrap_err();
        assert!(err.is_business_rule());
        assert_eq!(
            err.issues[0].expression.as_deref(),
            Some("Patient.identifier[0].value")
        );
        let good = serde_json::json!({"resourceType": "Patient", "identifier": [
            {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9434765919"}]});
        assert!(check_business_rules(&good).is_ok());
    }
}
