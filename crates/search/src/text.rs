//! Query-string text: percent-decoding and FHIR's backslash escapes (`\,` `\|` `\$` `\\`).

use crate::SearchError;

/// Decodes form encoding (`+` is a space, `%XX` a byte); malformed escapes are an error.
pub fn decode(s: &str) -> Result<String, SearchError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| {
                        SearchError::Malformed(format!("bad percent-encoding in '{s}'"))
                    })?;
                out.push(hex);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    let text = String::from_utf8(out)
        .map_err(|_| SearchError::Malformed(format!("'{s}' is not UTF-8")))?;
    // No stored value holds a control character (validation refuses them), and PostgreSQL text
    // cannot carry NUL at all.
    if text
        .chars()
        .any(|c| c < ' ' && !matches!(c, '\t' | '\r' | '\n'))
    {
        return Err(SearchError::Malformed(format!(
            "'{s}' contains a control character"
        )));
    }
    Ok(text)
}

/// Splits a query string into decoded `(name, value)` pairs, in order.
pub fn pairs(query: &str) -> Result<Vec<(String, String)>, SearchError> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Ok((decode(k)?, decode(v)?))
        })
        .collect()
}

/// Splits on `sep` where it is not escaped with a backslash, and unescapes `\,` `\|` `\$` `\\`.
pub fn split_unescaped(value: &str, sep: char) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        let last = parts.last_mut().expect("at least one part");
        if c == '\\' {
            match chars.next() {
                Some(n @ (',' | '|' | '$' | '\\')) if n == sep => last.push(n),
                Some(n) if n != sep => {
                    // Escapes of other separators stay for the next split to handle.
                    last.push('\\');
                    last.push(n);
                }
                Some(n) => last.push(n),
                None => last.push('\\'),
            }
        } else if c == sep {
            parts.push(String::new());
        } else {
            last.push(c);
        }
    }
    parts
}

/// Removes the remaining backslash escapes from a value part. FHIR escapes only `\,` `\|` `\$`
/// and `\\`: a backslash before anything else, or one left dangling at the end, is an error
/// rather than dropped, because a value that silently loses its last character can become
/// empty and match everything.
pub fn unescape(value: &str) -> Result<String, SearchError> {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(n @ (',' | '|' | '$' | '\\')) => out.push(n),
                Some(n) => {
                    return Err(SearchError::Malformed(format!(
                        "'{value}' has the escape '\\{n}'; a backslash escapes only , | $ or \\ \
                         (write a literal backslash as \\\\)"
                    )))
                }
                None => {
                    return Err(SearchError::Malformed(format!(
                        "'{value}' ends in a lone backslash; write a literal backslash as \\\\"
                    )))
                }
            }
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// Percent-encodes a value for a link the server builds.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:/|,$*".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_splits() {
        assert_eq!(split_unescaped(r"a\,b,c", ','), ["a,b", "c"]);
        assert_eq!(split_unescaped(r"sys|co\|de", '|'), ["sys", "co|de"]);
        assert_eq!(unescape(r"a\$b").unwrap(), "a$b");
        assert_eq!(unescape(r"a\\b").unwrap(), r"a\b");
        assert!(decode("%zz").is_err());
        assert!(decode("a%00b").is_err());
        assert_eq!(decode("a+b%2Cc").unwrap(), "a b,c");
    }

    #[test]
    fn dangling_and_unknown_escapes_are_errors() {
        for bad in [r"\", r"abc\", r"a\b", r"\n", r"x\\\"] {
            assert!(unescape(bad).is_err(), "{bad}");
        }
        // A trailing backslash survives the split, so the unescape that follows refuses it.
        let parts = split_unescaped(r"a,b\", ',');
        assert_eq!(parts, ["a", r"b\"]);
        assert!(unescape(&parts[1]).is_err());
    }
}
