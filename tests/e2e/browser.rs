//! A browser for the sign-in tests: a cookie jar (by name; cookies ignore ports, as a browser's
//! do on one host), no automatic redirects, and the small HTML and URL reading the tests need.

use std::collections::BTreeMap;

use crate::harness::Resp;

/// A person's browser.
pub struct Browser {
    agent: ureq::Agent,
    /// Cookies held, by name.
    pub jar: BTreeMap<String, String>,
}

impl Browser {
    /// A browser with no cookies.
    pub fn new() -> Browser {
        Browser {
            agent: ureq::AgentBuilder::new().redirects(0).build(),
            jar: BTreeMap::new(),
        }
    }

    fn call(&mut self, req: ureq::Request, body: Option<String>) -> Resp {
        let cookie: Vec<String> = self.jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let req = if cookie.is_empty() {
            req
        } else {
            req.set("Cookie", &cookie.join("; "))
        };
        let r = match body {
            Some(b) => req
                .set("Content-Type", "application/x-www-form-urlencoded")
                .send_string(&b),
            None => req.call(),
        };
        let resp = match r {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("transport error: {e}"),
        };
        for set in resp.all("set-cookie") {
            let pair = set.split(';').next().unwrap();
            if let Some((k, v)) = pair.split_once('=') {
                if v.is_empty()
                    || set
                        .to_ascii_lowercase()
                        .contains("expires=thu, 01 jan 1970")
                {
                    self.jar.remove(k);
                } else {
                    self.jar.insert(k.to_string(), v.to_string());
                }
            }
        }
        Resp::read(resp)
    }

    /// GET.
    pub fn get(&mut self, url: &str) -> Resp {
        let req = self.agent.get(url);
        self.call(req, None)
    }

    /// POST a form.
    pub fn post(&mut self, url: &str, form: &[(&str, &str)]) -> Resp {
        let req = self.agent.post(url);
        self.call(req, Some(encode_form(form)))
    }

    /// POST a form read from a page.
    pub fn post_fields(&mut self, url: &str, form: &[(String, String)]) -> Resp {
        let req = self.agent.post(url);
        self.call(req, Some(encode_form(form)))
    }
}

/// `application/x-www-form-urlencoded` (also a query string).
pub fn encode_form<K: AsRef<str>, V: AsRef<str>>(form: &[(K, V)]) -> String {
    form.iter()
        .map(|(k, v)| format!("{}={}", enc(k.as_ref()), enc(v.as_ref())))
        .collect::<Vec<_>>()
        .join("&")
}

/// Percent-encodes everything but unreserved characters.
pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A query parameter of a URL, decoded.
pub fn param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| {
            let mut out = Vec::new();
            let b = v.as_bytes();
            let mut i = 0;
            while i < b.len() {
                if b[i] == b'%' && i + 2 < b.len() {
                    out.push(u8::from_str_radix(&v[i + 1..i + 3], 16).unwrap());
                    i += 3;
                } else {
                    out.push(if b[i] == b'+' { b' ' } else { b[i] });
                    i += 1;
                }
            }
            String::from_utf8(out).unwrap()
        })
    })
}

/// The value of a page's input named `name`.
pub fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + marker.len();
    html[start..].split('"').next().unwrap().to_string()
}

/// The first form of a page: its action and its inputs' names and values.
pub fn form_of(html: &str) -> (String, Vec<(String, String)>) {
    let attr = |tag: &str, name: &str| -> Option<String> {
        let key = format!("{name}=\"");
        let start = tag.find(&key)? + key.len();
        Some(tag[start..].split('"').next()?.replace("&amp;", "&"))
    };
    let form_start = html.find("<form").expect("a form");
    let form_tag = &html[form_start..form_start + html[form_start..].find('>').unwrap()];
    let action = attr(form_tag, "action").unwrap_or_default();
    let mut fields = Vec::new();
    let mut rest = &html[form_start..];
    while let Some(i) = rest.find("<input") {
        let tag = &rest[i..i + rest[i..].find('>').unwrap()];
        if let Some(name) = attr(tag, "name") {
            fields.push((name, attr(tag, "value").unwrap_or_default()));
        }
        rest = &rest[i + 6..];
    }
    (action, fields)
}

/// The `Location` of a redirect (302 or 303).
pub fn location(r: &Resp) -> String {
    assert!(
        matches!(r.status, 302 | 303),
        "{}: {}",
        r.status,
        String::from_utf8_lossy(&r.body)
    );
    r.header("location").expect("a Location").to_string()
}
