//! Narrative `div`s kept exactly as written through fhirbolt, whose XML reader and writer trim
//! the text around inline XHTML elements (`Ann <b>Brontë</b>` became `Ann<b>Brontë</b>`) and
//! whose writer indents inside them. fhirbolt is handed a placeholder `div` instead, and the
//! narrative is put back into its JSON (after reading) or its XML (after writing).

use quick_xml::events::Event;
use quick_xml::name::{Namespace, ResolveResult};
use quick_xml::reader::NsReader;
use serde_json::Value;

const XHTML_NS: &[u8] = b"http://www.w3.org/1999/xhtml";
const PLACEHOLDER_START: &str = "<div xmlns=\"http://www.w3.org/1999/xhtml\">invicta-narrative-";
const PLACEHOLDER_END: &str = "</div>";

/// The placeholder `div` standing for narrative `n`.
pub(crate) fn placeholder(n: usize) -> String {
    format!("{PLACEHOLDER_START}{n}{PLACEHOLDER_END}")
}

fn placeholder_index(text: &str) -> Option<usize> {
    text.strip_prefix(PLACEHOLDER_START)?
        .strip_suffix(PLACEHOLDER_END)?
        .parse()
        .ok()
}

/// Every `div` string of a resource, mutably, without recursion.
fn divs_mut(value: &mut Value) -> Vec<&mut Value> {
    let mut found = Vec::new();
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(map) => {
                for (key, child) in map.iter_mut() {
                    if key == "div" && child.is_string() {
                        found.push(child);
                    } else {
                        stack.push(child);
                    }
                }
            }
            Value::Array(items) => stack.extend(items.iter_mut()),
            _ => {}
        }
    }
    found
}

/// Puts narratives kept aside while reading XML back into the JSON fhirbolt made of it. Every
/// `div` in that JSON is a placeholder: the document's own divs were all replaced.
pub(crate) fn restore_in_json(value: &mut Value, narratives: &[String]) {
    if narratives.is_empty() {
        return;
    }
    for div in divs_mut(value) {
        if let Some(original) = div
            .as_str()
            .and_then(placeholder_index)
            .and_then(|n| narratives.get(n))
        {
            *div = Value::String(original.clone());
        }
    }
}

/// Before writing XML: replaces each narrative that is one well-formed XHTML `div` (so that
/// copying it into the XML cannot change the document around it) with a placeholder, and
/// returns the originals. Anything else is left to fhirbolt.
pub(crate) fn set_aside_for_writing(value: &mut Value) -> Vec<String> {
    let mut narratives = Vec::new();
    for div in divs_mut(value) {
        let Some(text) = div.as_str().filter(|t| is_one_xhtml_div(t)) else {
            continue;
        };
        let original = text.to_string();
        *div = Value::String(placeholder(narratives.len()));
        narratives.push(original);
    }
    narratives
}

/// After writing XML: replaces each placeholder with its narrative. fhirbolt escapes `<` in
/// every other value, so the placeholder's markup can only come from a placeholder div.
pub(crate) fn restore_in_xml(xml: Vec<u8>, narratives: &[String]) -> Vec<u8> {
    if narratives.is_empty() {
        return xml;
    }
    let Ok(text) = String::from_utf8(xml) else {
        unreachable!("fhirbolt writes UTF-8")
    };
    let mut out =
        String::with_capacity(text.len() + narratives.iter().map(String::len).sum::<usize>());
    let mut rest = text.as_str();
    while let Some(at) = rest.find(PLACEHOLDER_START) {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        let end = after
            .find(PLACEHOLDER_END)
            .map_or(after.len(), |e| e + PLACEHOLDER_END.len());
        match placeholder_index(&after[..end]).and_then(|n| narratives.get(n)) {
            Some(original) => out.push_str(original),
            None => out.push_str(&after[..end]),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out.into_bytes()
}

/// True when `text` is exactly one well-formed element `div` in the XHTML namespace (declared
/// on it), holding only XHTML elements, text with known entities, comments and CDATA.
pub(crate) fn is_one_xhtml_div(text: &str) -> bool {
    std::panic::catch_unwind(|| check_one_xhtml_div(text)).unwrap_or(false)
}

fn check_one_xhtml_div(text: &str) -> bool {
    let mut reader = NsReader::from_str(text.trim());
    reader.check_end_names(true);
    let mut depth = 0usize;
    let mut first = true;
    loop {
        let Ok((ns, event)) = reader.read_resolved_event() else {
            return false;
        };
        let xhtml = ns == ResolveResult::Bound(Namespace(XHTML_NS));
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                if !xhtml || (depth == 0 && !first) {
                    return false;
                }
                if first && (e.name().as_ref() != b"div" || !declares_xhtml(e)) {
                    return false;
                }
                if e.attributes()
                    .any(|a| a.map_or(true, |a| a.unescape_value().is_err()))
                {
                    return false;
                }
                first = false;
                if matches!(event, Event::Start(_)) {
                    depth += 1;
                }
            }
            Event::End(_) => depth -= 1,
            Event::Text(t) => {
                if (depth == 0 && !t.iter().all(u8::is_ascii_whitespace)) || t.unescape().is_err() {
                    return false;
                }
            }
            Event::Comment(_) | Event::CData(_) if depth > 0 => {}
            Event::Eof => return !first && depth == 0,
            _ => return false,
        }
    }
}

fn declares_xhtml(e: &quick_xml::events::BytesStart<'_>) -> bool {
    e.attributes()
        .flatten()
        .any(|a| a.key.as_ref() == b"xmlns" && a.value.as_ref() == XHTML_NS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_single_well_formed_xhtml_divs_are_copied_verbatim() {
        for ok in [
            r#"<div xmlns="http://www.w3.org/1999/xhtml">Ann <b>Brontë</b> &amp; co</div>"#,
            r#"<div xmlns="http://www.w3.org/1999/xhtml" class="x"><p>a</p><br/><!-- c --></div>"#,
            r#"<div xmlns="http://www.w3.org/1999/xhtml"/>"#,
        ] {
            assert!(is_one_xhtml_div(ok), "{ok}");
        }
        for bad in [
            r#"<div xmlns="http://www.w3.org/1999/xhtml">x</div><evil/>"#,
            r#"<div xmlns="http://www.w3.org/1999/xhtml">x</div></text><evil>"#,
            r#"<div xmlns="http://www.w3.org/1999/xhtml">&nbsp;</div>"#,
            r#"<div>no namespace</div>"#,
            r#"<p xmlns="http://www.w3.org/1999/xhtml">not a div</p>"#,
            r#"<div xmlns="http://www.w3.org/1999/xhtml"><x:p xmlns:x="urn:x"/></div>"#,
            r#"<div xmlns="http://www.w3.org/1999/xhtml"><p>unclosed</div>"#,
            r#"<!DOCTYPE >[<div xmlns="http://www.w3.org/1999/xhtml"/>"#,
            "text",
            "",
        ] {
            assert!(!is_one_xhtml_div(bad), "{bad}");
        }
    }

    #[test]
    fn narratives_go_aside_and_come_back() {
        let div = r#"<div xmlns="http://www.w3.org/1999/xhtml">Ann <b>B</b></div>"#;
        let mut v =
            json!({"text": {"div": div}, "contained": [{"text": {"div": "<div>bad</div>"}}]});
        let kept = set_aside_for_writing(&mut v);
        assert_eq!(kept, vec![div.to_string()]);
        assert_eq!(v["text"]["div"], placeholder(0));
        assert_eq!(v["contained"][0]["text"]["div"], "<div>bad</div>");
        let xml = format!("<text>{}</text><x>{}</x>", placeholder(0), placeholder(7));
        let back = String::from_utf8(restore_in_xml(xml.into_bytes(), &kept)).unwrap();
        assert_eq!(back, format!("<text>{div}</text><x>{}</x>", placeholder(7)));
        restore_in_json(&mut v, &kept);
        assert_eq!(v["text"]["div"], div);
    }
}
