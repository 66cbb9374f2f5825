//! Page cursors (`_cursor`): where the next page starts (direction, snapshot, row id and the
//! sort-key values of the row before it), sealed with an HMAC over the cursor and the search it
//! belongs to. A cursor the server did not issue for this very search (forged, truncated,
//! edited, or taken from another search) is refused before anything in it reaches SQL; the
//! values are checked for their sort key's type too, in case a key ever leaks.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use store::{Cursor, SortColumn, SortKey};

use crate::SearchError;

/// Longest `_cursor` accepted, in hex characters (three long string sort keys fit).
pub const MAX_CURSOR_CHARS: usize = 8192;
/// Bytes of the HMAC-SHA256 tag kept in a cursor.
const TAG_BYTES: usize = 16;
/// Longest date or number sort value in a cursor (what PostgreSQL prints is far shorter).
const MAX_TYPED_VALUE: usize = 64;

/// The secret that seals cursors. Random per process unless configured, so that servers behind
/// one load balancer can share it.
#[derive(Clone)]
pub struct CursorKey([u8; 32]);

impl std::fmt::Debug for CursorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorKey(..)")
    }
}

impl CursorKey {
    /// A fresh random key.
    pub fn random() -> Result<CursorKey, String> {
        let mut key = [0u8; 32];
        getrandom::getrandom(&mut key)
            .map_err(|e| format!("no randomness for the cursor key: {e}"))?;
        Ok(CursorKey(key))
    }

    /// A key derived from a configured secret.
    pub fn from_secret(secret: &[u8]) -> CursorKey {
        let mut h = Sha256::new();
        h.update(b"invicta page cursor key v1\0");
        h.update(secret);
        CursorKey(h.finalize().into())
    }

    fn mac(&self, context: &[u8], payload: &[u8]) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes any key");
        mac.update(&(context.len() as u64).to_be_bytes());
        mac.update(context);
        mac.update(payload);
        mac
    }
}

/// What a cursor is bound to: the searched types, the applied parameters and the caller's scope
/// (the compartment of a compartment search).
pub(crate) fn context(types: &[String], applied: &[(String, String)], scope: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut field = |s: &str| {
        out.extend_from_slice(&(s.len() as u64).to_be_bytes());
        out.extend_from_slice(s.as_bytes());
    };
    field(scope);
    for t in types {
        field(t);
    }
    field("\0");
    for (k, v) in applied {
        field(k);
        field(v);
    }
    out
}

/// Encodes and seals a cursor for the search `context`.
pub(crate) fn seal(
    key: &CursorKey,
    context: &[u8],
    snapshot: i64,
    cursor: &Cursor,
    backward: bool,
) -> String {
    let dir = if backward { 'b' } else { 'f' };
    let mut raw = format!("{dir}{snapshot}\u{1f}{}", cursor.rid);
    for v in &cursor.values {
        raw.push('\u{1f}');
        match v {
            Some(v) => {
                raw.push('v');
                raw.push_str(v);
            }
            None => raw.push('n'),
        }
    }
    let tag = key.mac(context, raw.as_bytes()).finalize().into_bytes();
    raw.bytes()
        .chain(tag[..TAG_BYTES].iter().copied())
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A checked cursor: `(snapshot, cursor, backward)`.
pub(crate) type Opened = (i64, Cursor, bool);

/// Verifies a cursor issued for the search `context` and decodes it.
pub(crate) fn open(key: &CursorKey, context: &[u8], token: &str) -> Result<Opened, SearchError> {
    let broken = || {
        SearchError::Malformed(
            "the paging link is damaged or from another search; start the search again".into(),
        )
    };
    if token.len() > MAX_CURSOR_CHARS
        || !token.len().is_multiple_of(2)
        || token.len() < 2 * (TAG_BYTES + 1)
    {
        return Err(broken());
    }
    // Byte pairs, not string slices: a token with multi-byte characters must not split one.
    let bytes: Vec<u8> = token
        .as_bytes()
        .chunks(2)
        .map(|pair| {
            std::str::from_utf8(pair)
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect::<Option<_>>()
        .ok_or_else(broken)?;
    let (payload, tag) = bytes.split_at(bytes.len() - TAG_BYTES);
    key.mac(context, payload)
        .verify_truncated_left(tag)
        .map_err(|_| broken())?;
    let raw = std::str::from_utf8(payload).map_err(|_| broken())?;
    let backward = match raw.get(..1) {
        Some("f") => false,
        Some("b") => true,
        _ => return Err(broken()),
    };
    let mut parts = raw[1..].split('\u{1f}');
    let snapshot = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(broken)?;
    let rid = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(broken)?;
    let values = parts
        .map(|p| match p.split_at_checked(1) {
            Some(("v", v)) => Ok(Some(v.to_string())),
            Some(("n", "")) => Ok(None),
            _ => Err(broken()),
        })
        .collect::<Result<_, _>>()?;
    Ok((snapshot, Cursor { values, rid }, backward))
}

/// Checks that a cursor's values fit the search's sort keys, one of the right type each.
pub(crate) fn fits(cursor: &Cursor, sort: &[SortKey]) -> Result<(), SearchError> {
    let broken = |why: &str| {
        SearchError::Malformed(format!(
            "the paging link does not fit this search ({why}); start the search again"
        ))
    };
    if cursor.values.len() != sort.len() {
        return Err(broken("its sort keys differ"));
    }
    for (key, value) in sort.iter().zip(&cursor.values) {
        let Some(v) = value else { continue };
        let ok = match key.column {
            SortColumn::LastUpdated | SortColumn::Date(_) | SortColumn::EventDate => {
                is_timestamp(v)
            }
            SortColumn::Number(_) | SortColumn::Quantity(_) => is_numeric(v),
            SortColumn::Id | SortColumn::String(_) | SortColumn::Token(_) => !v.contains('\0'),
        };
        if !ok {
            return Err(broken("a sort value has the wrong type"));
        }
    }
    Ok(())
}

/// PostgreSQL's text of a `timestamptz` (`2024-01-31 12:00:00.123+00`), loosely.
fn is_timestamp(v: &str) -> bool {
    let b = v.as_bytes();
    v.len() <= MAX_TYPED_VALUE
        && b.len() >= 19
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b.iter()
            .all(|c| c.is_ascii_digit() || b"-: .+T".contains(c))
}

/// PostgreSQL's text of a `numeric` (`-12.50`): no exponent, no NaN, no infinity.
fn is_numeric(v: &str) -> bool {
    let digits = v.strip_prefix('-').unwrap_or(v);
    v.len() <= MAX_TYPED_VALUE
        && !digits.is_empty()
        && digits.bytes().all(|c| c.is_ascii_digit() || c == b'.')
        && digits.bytes().filter(|c| *c == b'.').count() <= 1
        && digits.bytes().any(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> CursorKey {
        CursorKey::from_secret(b"test")
    }

    #[test]
    fn sealed_cursors_round_trip() {
        let ctx = context(&["Patient".into()], &[("family".into(), "x".into())], "");
        let c = Cursor {
            values: vec![Some("2026-01-01 00:00:00+00".into()), None],
            rid: 42,
        };
        let token = seal(&key(), &ctx, 7, &c, true);
        assert_eq!(open(&key(), &ctx, &token).unwrap(), (7, c, true));
    }

    #[test]
    fn forged_edited_or_foreign_cursors_are_refused() {
        let ctx = context(&["Patient".into()], &[], "");
        let c = Cursor {
            values: vec![Some("2026-01-01 00:00:00+00".into())],
            rid: 42,
        };
        let token = seal(&key(), &ctx, 7, &c, false);
        // Another search, another compartment, another key.
        let other = context(&["Patient".into()], &[("family".into(), "x".into())], "");
        assert!(open(&key(), &other, &token).is_err());
        assert!(open(&key(), &context(&["Patient".into()], &[], "p1"), &token).is_err());
        assert!(open(&CursorKey::from_secret(b"other"), &ctx, &token).is_err());
        // Truncated, edited, not hex, empty, NUL.
        assert!(open(&key(), &ctx, &token[..token.len() - 2]).is_err());
        let mut edited = token.clone().into_bytes();
        edited[3] = if edited[3] == b'0' { b'1' } else { b'0' };
        assert!(open(&key(), &ctx, std::str::from_utf8(&edited).unwrap()).is_err());
        for bad in ["", "zz", "aé", "éé", "\0\0", &"00".repeat(40)] {
            assert!(open(&key(), &ctx, bad).is_err(), "{bad:?}");
        }
        // The unsealed form of the old cursors, with a non-date where a date belongs.
        let forged: String = "f7\u{1f}42\u{1f}vnot-a-date"
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(open(&key(), &ctx, &forged).is_err());
    }

    #[test]
    fn values_must_fit_their_sort_keys() {
        let key = |column| SortKey {
            column,
            descending: false,
        };
        let cur = |v: &str| Cursor {
            values: vec![Some(v.to_string())],
            rid: 1,
        };
        let date = [key(SortColumn::Date("birthdate".into()))];
        let num = [key(SortColumn::Quantity("value-quantity".into()))];
        assert!(fits(&cur("2024-01-31 12:00:00.123+00"), &date).is_ok());
        assert!(fits(&cur("not-a-date"), &date).is_err());
        assert!(fits(&cur("-12.50"), &num).is_ok());
        for bad in ["1e999999", "NaN", "", "1.2.3", "-", "Infinity"] {
            assert!(fits(&cur(bad), &num).is_err(), "{bad}");
        }
        assert!(fits(&cur("x"), &[]).is_err());
    }
}
