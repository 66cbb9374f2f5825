//! A streaming first pass over an XML body, before fhirbolt (which recurses once per element)
//! sees it: it bounds element nesting, checks the encoding, and re-emits the document in the one
//! shape fhirbolt's reader accepts, so that XML other tools legally write is read too.
//!
//! What is accepted and normalised: an XML declaration with any letter case of `UTF-8` and either
//! `standalone` value (dropped once the bytes are known to be UTF-8), a UTF-8 byte order mark,
//! the FHIR namespace bound to a prefix (elements are written unprefixed under the default
//! namespace), comments and whitespace between elements (dropped), and `xsi:` schema hints
//! (dropped: they carry no data). The XHTML `div` of a narrative is kept aside byte for byte
//! and a placeholder handed to fhirbolt, whose reader trims the text around inline elements
//! (`Ann <b>Brontë</b>` would become `Ann<b>Brontë</b>`); `narrative` puts it back.
//! What is refused, each with its own message: other encodings (UTF-16, ISO-8859-1, ...),
//! characters XML 1.0 forbids (NUL and other control characters), DOCTYPE and processing
//! instructions, elements outside the FHIR namespace, text or CDATA outside a narrative,
//! anything after the root element, and nesting deeper than [`MAX_XML_DEPTH`].

use quick_xml::events::{BytesDecl, BytesStart, Event};
use quick_xml::name::{Namespace, ResolveResult};
use quick_xml::reader::NsReader;

use crate::narrative::placeholder;
use crate::nesting::MAX_XML_DEPTH;

/// The FHIR namespace.
const FHIR_NS: &[u8] = b"http://hl7.org/fhir";
/// The XHTML namespace of a narrative's `div`.
const XHTML_NS: &[u8] = b"http://www.w3.org/1999/xhtml";
/// XML Schema instance attributes (`xsi:schemaLocation`) are hints for validators, not data.
const XSI_NS: &[u8] = b"http://www.w3.org/2001/XMLSchema-instance";

/// Why an XML body was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum XmlRefusal {
    /// Elements nest deeper than [`MAX_XML_DEPTH`].
    TooDeep,
    /// Anything else, with the message to send.
    Invalid(String),
}

fn invalid(message: impl Into<String>) -> XmlRefusal {
    XmlRefusal::Invalid(message.into())
}

/// An XML body in the shape fhirbolt reads, with its deepest element nesting.
#[derive(Debug)]
pub(crate) struct Canonical {
    /// UTF-8 without declaration or BOM, FHIR elements unprefixed under
    /// `xmlns="http://hl7.org/fhir"` on the root, narratives untouched.
    pub xml: Vec<u8>,
    /// Deepest element nesting outside narratives.
    pub depth: usize,
    /// The narratives' `div`s as written, in document order; `xml` holds placeholders.
    pub narratives: Vec<String>,
}

/// True when `<!DOCTYPE` appears anywhere (in any letter case, as XML parsers accept it).
fn has_doctype(text: &str) -> bool {
    text.as_bytes()
        .windows(9)
        .any(|w| w.eq_ignore_ascii_case(b"<!doctype"))
}

/// Checks an XML body and returns it in canonical form (see [`Canonical`]).
pub(crate) fn canonical(bytes: &[u8]) -> Result<Canonical, XmlRefusal> {
    // quick-xml has debug assertions that malformed input can reach (seen: a DOCTYPE without
    // a name); a panic here must be a refusal like any other.
    std::panic::catch_unwind(|| first_pass(bytes))
        .unwrap_or_else(|_| Err(invalid("The body is not well-formed XML")))
}

fn first_pass(bytes: &[u8]) -> Result<Canonical, XmlRefusal> {
    let text = decode(bytes)?;
    // Refused anyway, and refused before quick-xml reads one: its debug assertion on a DOCTYPE
    // without a name aborts a fuzzing run even where the panic would be caught.
    if has_doctype(text) {
        return Err(invalid("A DOCTYPE is not allowed in a FHIR XML body"));
    }
    let mut reader = NsReader::from_str(text);
    reader.check_end_names(true);
    let mut out = Vec::with_capacity(text.len() + 32);
    let mut narratives = Vec::new();
    let (mut depth, mut deepest) = (0usize, 0usize);
    let mut root_done = false;
    loop {
        let before = reader.buffer_position();
        let (ns, event) = reader
            .read_resolved_event()
            .map_err(|e| invalid(format!("The body is not well-formed XML: {e}")))?;
        let ns = NsKind::of(&ns);
        match event {
            Event::Decl(decl) if before == 0 => check_declaration(&decl)?,
            Event::Decl(_) | Event::PI(_) => {
                return Err(invalid(
                    "Processing instructions are not allowed in a FHIR XML body",
                ))
            }
            Event::DocType(_) => {
                return Err(invalid("A DOCTYPE is not allowed in a FHIR XML body"))
            }
            Event::Comment(_) => {}
            Event::Text(t) if t.iter().all(u8::is_ascii_whitespace) => {}
            Event::Text(_) | Event::CData(_) => {
                return Err(invalid(
                    "Text is only allowed in attribute values and in the narrative's XHTML div",
                ))
            }
            Event::Start(start) | Event::Empty(start) if root_done => {
                let name = String::from_utf8_lossy(start.name().as_ref()).into_owned();
                return Err(invalid(format!(
                    "Only one root element is allowed; found <{name}> after it"
                )));
            }
            Event::Start(start) => {
                if is_div(ns, &start) {
                    let end = skip_div(&mut reader)?;
                    keep_div(text, before, end, &start, &mut narratives, &mut out)?;
                    continue;
                }
                depth += 1;
                deepest = deepest.max(depth);
                if depth > MAX_XML_DEPTH {
                    return Err(XmlRefusal::TooDeep);
                }
                write_start(&reader, ns, &start, depth == 1, false, &mut out)?;
            }
            Event::Empty(start) => {
                if is_div(ns, &start) {
                    let end = reader.buffer_position();
                    keep_div(text, before, end, &start, &mut narratives, &mut out)?;
                    continue;
                }
                deepest = deepest.max(depth + 1);
                if depth + 1 > MAX_XML_DEPTH {
                    return Err(XmlRefusal::TooDeep);
                }
                write_start(&reader, ns, &start, depth == 0, true, &mut out)?;
                root_done = depth == 0;
            }
            Event::End(end) => {
                let (_, local) = reader.resolve_element(end.name());
                out.extend_from_slice(b"</");
                out.extend_from_slice(local.as_ref());
                out.push(b'>');
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| invalid("An end tag closes no element"))?;
                root_done = depth == 0;
            }
            Event::Eof => break,
        }
    }
    if !root_done {
        return Err(invalid("The body holds no complete XML element"));
    }
    Ok(Canonical {
        xml: out,
        depth: deepest,
        narratives,
    })
}

/// The body as UTF-8 text without a byte order mark; other encodings are refused by name.
fn decode(bytes: &[u8]) -> Result<&str, XmlRefusal> {
    if bytes.starts_with(&[0xFE, 0xFF])
        || bytes.starts_with(&[0xFF, 0xFE])
        || bytes.starts_with(&[0, b'<'])
        || bytes.starts_with(&[b'<', 0])
    {
        return Err(invalid(
            "The body is UTF-16; FHIR XML is accepted in UTF-8 only",
        ));
    }
    let bytes = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| {
        invalid(format!(
            "The body is not valid UTF-8 (at byte {}); FHIR XML is accepted in UTF-8 only",
            e.valid_up_to()
        ))
    })?;
    if let Some(c) = text
        .chars()
        .find(|&c| c < ' ' && !matches!(c, '\t' | '\r' | '\n'))
    {
        return Err(invalid(format!(
            "The body holds the character U+{:04X}, which XML 1.0 does not allow",
            c as u32
        )));
    }
    Ok(text)
}

/// XML 1.0 with UTF-8 (names of encodings match without regard to case); either standalone.
fn check_declaration(decl: &BytesDecl<'_>) -> Result<(), XmlRefusal> {
    let bad = |e: quick_xml::Error| invalid(format!("The XML declaration is malformed: {e}"));
    let version = decl.version().map_err(bad)?;
    if version.as_ref() != b"1.0" {
        return Err(invalid(format!(
            "XML version '{}' is not supported; use 1.0",
            String::from_utf8_lossy(&version)
        )));
    }
    if let Some(encoding) = decl.encoding() {
        let encoding = encoding.map_err(bad)?;
        if !encoding.eq_ignore_ascii_case(b"UTF-8") {
            return Err(invalid(format!(
                "The XML declares the encoding '{}'; FHIR XML is accepted in UTF-8 only",
                String::from_utf8_lossy(&encoding)
            )));
        }
    }
    if let Some(standalone) = decl.standalone() {
        let standalone = standalone.map_err(bad)?;
        if !matches!(standalone.as_ref(), b"yes" | b"no") {
            return Err(invalid(format!(
                "standalone='{}' is not valid XML; use yes or no",
                String::from_utf8_lossy(&standalone)
            )));
        }
    }
    Ok(())
}

/// The namespace an element resolved to, as far as this pass cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NsKind {
    Fhir,
    Xhtml,
    Other,
}

impl NsKind {
    fn of(ns: &ResolveResult<'_>) -> NsKind {
        match ns {
            ResolveResult::Bound(Namespace(n)) if *n == FHIR_NS => NsKind::Fhir,
            ResolveResult::Bound(Namespace(n)) if *n == XHTML_NS => NsKind::Xhtml,
            _ => NsKind::Other,
        }
    }
}

fn is_div(ns: NsKind, start: &BytesStart<'_>) -> bool {
    start.local_name().as_ref() == b"div" && ns == NsKind::Xhtml
}

/// Reads past the end of the `div` just started, checking that everything in it is XHTML;
/// returns the position after its end tag.
fn skip_div(reader: &mut NsReader<&[u8]>) -> Result<usize, XmlRefusal> {
    let mut open = 1usize;
    loop {
        let (ns, event) = reader
            .read_resolved_event()
            .map_err(|e| invalid(format!("The narrative is not well-formed XHTML: {e}")))?;
        let xhtml = NsKind::of(&ns) == NsKind::Xhtml;
        match event {
            Event::Start(_) | Event::Empty(_) if !xhtml => {
                return Err(invalid(
                    "Every element of the narrative's div must be in the XHTML namespace",
                ))
            }
            Event::Start(_) => open += 1,
            Event::End(_) => {
                open -= 1;
                if open == 0 {
                    return Ok(reader.buffer_position());
                }
            }
            Event::DocType(_) | Event::PI(_) | Event::Decl(_) => {
                return Err(invalid(
                    "The narrative may hold only XHTML elements, text and comments",
                ))
            }
            Event::Eof => return Err(invalid("The narrative's div is not closed")),
            _ => {}
        }
    }
}

/// Keeps a narrative `div` as it was written and writes a placeholder in its place. fhirbolt
/// reads it in a flat loop (no recursion), so its own nesting needs no bound. The div must
/// carry its namespace itself: the declarations around it are not kept.
fn keep_div(
    text: &str,
    from: usize,
    to: usize,
    start: &BytesStart<'_>,
    narratives: &mut Vec<String>,
    out: &mut Vec<u8>,
) -> Result<(), XmlRefusal> {
    let declares_xhtml = start
        .attributes()
        .flatten()
        .any(|a| a.key.as_ref() == b"xmlns" && a.value.as_ref() == XHTML_NS);
    if start.name().as_ref() != b"div" || !declares_xhtml {
        return Err(invalid(
            "The narrative must be written <div xmlns=\"http://www.w3.org/1999/xhtml\">, \
             with the XHTML namespace declared on the div itself and no prefix",
        ));
    }
    let raw = text
        .get(from..to)
        .ok_or_else(|| invalid("The narrative could not be read"))?;
    out.extend_from_slice(placeholder(narratives.len()).as_bytes());
    narratives.push(raw.trim_start().to_string());
    Ok(())
}

/// Writes a FHIR element's start tag unprefixed with its data attributes, refusing elements
/// outside the FHIR namespace.
fn write_start(
    reader: &NsReader<&[u8]>,
    ns: NsKind,
    start: &BytesStart<'_>,
    root: bool,
    empty: bool,
    out: &mut Vec<u8>,
) -> Result<(), XmlRefusal> {
    let local = start.local_name();
    if ns != NsKind::Fhir {
        return Err(invalid(format!(
            "The element <{}> is not in the FHIR namespace (http://hl7.org/fhir)",
            String::from_utf8_lossy(start.name().as_ref())
        )));
    }
    out.push(b'<');
    out.extend_from_slice(local.as_ref());
    if root {
        out.extend_from_slice(b" xmlns=\"http://hl7.org/fhir\"");
    }
    for attr in start.attributes() {
        let attr = attr.map_err(|e| invalid(format!("The body is not well-formed XML: {e}")))?;
        if attr.key.as_namespace_binding().is_some() {
            continue;
        }
        let (attr_ns, attr_local) = reader.resolve_attribute(attr.key);
        match attr_ns {
            ResolveResult::Unbound => {}
            ResolveResult::Bound(Namespace(n)) if n == FHIR_NS => {}
            ResolveResult::Bound(Namespace(n)) if n == XSI_NS => continue,
            _ => {
                return Err(invalid(format!(
                    "The attribute '{}' of <{}> is not in the FHIR namespace",
                    String::from_utf8_lossy(attr.key.as_ref()),
                    String::from_utf8_lossy(local.as_ref())
                )))
            }
        }
        let value = attr
            .unescape_value()
            .map_err(|e| invalid(format!("The body is not well-formed XML: {e}")))?;
        out.push(b' ');
        out.extend_from_slice(attr_local.as_ref());
        out.extend_from_slice(b"=\"");
        escape_attribute(&value, out);
        out.push(b'"');
    }
    out.extend_from_slice(if empty { b"/>" } else { b">" });
    Ok(())
}

fn escape_attribute(value: &str, out: &mut Vec<u8>) {
    for c in value.chars() {
        match c {
            '&' => out.extend_from_slice(b"&amp;"),
            '<' => out.extend_from_slice(b"&lt;"),
            '>' => out.extend_from_slice(b"&gt;"),
            '"' => out.extend_from_slice(b"&quot;"),
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(xml: &str) -> Result<String, XmlRefusal> {
        canonical(xml.as_bytes()).map(|c| String::from_utf8(c.xml).unwrap())
    }

    const PLAIN: &str =
        r#"<Patient xmlns="http://hl7.org/fhir"><id value="a"/><active value="true"/></Patient>"#;

    #[test]
    fn declarations_other_tools_write_are_accepted() {
        for decl in [
            "<?xml version='1.0' encoding='utf-8'?>",
            "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>",
            "<?xml version=\"1.0\" standalone='no'?>",
            "<?xml version=\"1.0\"?>\n",
            "\u{feff}<?xml version=\"1.0\" encoding=\"Utf-8\"?>",
        ] {
            assert_eq!(
                canon(&format!("{decl}{PLAIN}")).as_deref(),
                Ok(PLAIN),
                "{decl}"
            );
        }
    }

    #[test]
    fn prefixed_fhir_namespace_becomes_the_default() {
        let xml = r#"<f:Patient xmlns:f="http://hl7.org/fhir" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="x"><f:id value="a"/><!-- c -->
            <f:active f:value="true"/></f:Patient>"#;
        assert_eq!(canon(xml).as_deref(), Ok(PLAIN));
    }

    #[test]
    fn narrative_is_kept_aside_as_written() {
        let div = r#"<div xmlns="http://www.w3.org/1999/xhtml" class="c"><p>a &amp; <b>b</b></p><div>x</div></div>"#;
        let xml = format!(
            r#"<p:Patient xmlns:p="http://hl7.org/fhir"><p:text><p:status value="generated"/>{div}</p:text></p:Patient>"#
        );
        let c = canonical(xml.as_bytes()).unwrap();
        assert_eq!(c.narratives, vec![div.to_string()]);
        let out = String::from_utf8(c.xml).unwrap();
        assert_eq!(
            out,
            format!(
                r#"<Patient xmlns="http://hl7.org/fhir"><text><status value="generated"/>{}</text></Patient>"#,
                placeholder(0)
            )
        );
        let foreign = r#"<Patient xmlns="http://hl7.org/fhir"><text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml"><x:p xmlns:x="urn:x"/></div></text></Patient>"#;
        assert!(matches!(canon(foreign), Err(XmlRefusal::Invalid(_))));
    }

    #[test]
    fn attribute_values_survive_re_escaping() {
        let xml =
            r#"<Patient xmlns="http://hl7.org/fhir"><id value='a"&lt;&amp;&#x41;'/></Patient>"#;
        assert_eq!(
            canon(xml).unwrap(),
            r#"<Patient xmlns="http://hl7.org/fhir"><id value="a&quot;&lt;&amp;A"/></Patient>"#
        );
    }

    #[test]
    fn refusals() {
        let cases = [
            r#"<?xml version="1.0" encoding="ISO-8859-1"?><Patient xmlns="http://hl7.org/fhir"/>"#,
            r#"<Patient xmlns="http://example.org"/>"#,
            r#"<Patient/>"#,
            r#"<!DOCTYPE x [<!ENTITY e "x">]><Patient xmlns="http://hl7.org/fhir"/>"#,
            r#"<Patient xmlns="http://hl7.org/fhir">text</Patient>"#,
            r#"<Patient xmlns="http://hl7.org/fhir"/><Patient xmlns="http://hl7.org/fhir"/>"#,
            r#"<Patient xmlns="http://hl7.org/fhir"><id value="a"/>"#,
            "<Patient xmlns=\"http://hl7.org/fhir\"><id value=\"a\u{0}\"/></Patient>",
            r#"<Patient xmlns="http://hl7.org/fhir"><?pi x?></Patient>"#,
            r#"<Patient xmlns="http://hl7.org/fhir"><id value="a"/></Bundle>"#,
            // Once a panic in quick-xml (a debug assertion on a DOCTYPE without a name).
            "<!DOCTYPE >[<!ENhttp://hl7.org/fhir\"><nahir\"><name><faa&quot;/>",
            "",
        ];
        for xml in cases {
            assert!(
                matches!(canon(xml), Err(XmlRefusal::Invalid(_))),
                "{xml}: {:?}",
                canon(xml)
            );
        }
        let utf16: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain(PLAIN.encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        assert!(matches!(canonical(&utf16), Err(XmlRefusal::Invalid(m)) if m.contains("UTF-16")));
    }

    #[test]
    fn a_doctype_is_refused_before_quick_xml_reads_it() {
        // Without the catch of `canonical`: a fuzzing run aborts on any panic, caught or not.
        for xml in [
            "<!DOCTYPE >[<!ENhttp://hl7.org/fhir\"><nahir\"><name><faa&quot;/>",
            "<!doctype>",
            "<Patient xmlns=\"http://hl7.org/fhir\"><!-- <!DocType --></Patient>",
        ] {
            assert!(
                matches!(first_pass(xml.as_bytes()), Err(XmlRefusal::Invalid(m)) if m.contains("DOCTYPE")),
                "{xml}"
            );
        }
    }

    #[test]
    fn nesting_is_bounded_before_any_recursion() {
        let deep = format!(
            "<Bundle xmlns=\"http://hl7.org/fhir\"><type value=\"batch\"/>{}{}</Bundle>",
            "<a>".repeat(1500),
            "</a>".repeat(1500)
        );
        assert_eq!(canon(&deep), Err(XmlRefusal::TooDeep));
        let at_limit = format!(
            "{}{}",
            "<a xmlns=\"http://hl7.org/fhir\">".repeat(MAX_XML_DEPTH),
            "</a>".repeat(MAX_XML_DEPTH)
        );
        assert!(canon(&at_limit).is_ok());
        let empty_below = format!(
            "{}<b/>{}",
            "<a xmlns=\"http://hl7.org/fhir\">".repeat(MAX_XML_DEPTH),
            "</a>".repeat(MAX_XML_DEPTH)
        );
        assert_eq!(canon(&empty_below), Err(XmlRefusal::TooDeep));
    }
}
