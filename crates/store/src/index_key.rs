//! Bounding the text an index key holds. PostgreSQL refuses a btree entry over 2,704 bytes,
//! and a valid resource may hold a string of any length, so every text column that is part of
//! a btree key is bounded here before it is written. Searched values longer than the bound are
//! refused by the search compiler, which keeps every answer exact: a value longer than the bound
//! can never equal, or start with, a searched value.

use std::borrow::Cow;

use sha2::{Digest, Sha256};

/// The most bytes of one text value an index key holds whole; longer ones are folded. Index
/// keys hold up to two such columns (a token's code and system), which stays within
/// PostgreSQL's btree limit of 2,704 bytes per entry. Search values longer than this are
/// refused.
pub const MAX_INDEXED_BYTES: usize = 1000;

/// The largest char boundary of `s` at or below `max` bytes.
fn floor_boundary(s: &str, max: usize) -> usize {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    end
}

/// `s` as an equality key: unchanged up to [`MAX_INDEXED_BYTES`]; a longer value becomes its
/// first bytes, `#` and the SHA-256 of the whole in hex. The fold is longer than the bound, so
/// no searched value (at most the bound) equals it, and it is the same for equal values, so an
/// internal lookup that folds its key (conditional identifiers) still finds them.
pub fn equality_key(s: &str) -> Cow<'_, str> {
    if s.len() <= MAX_INDEXED_BYTES {
        return Cow::Borrowed(s);
    }
    let head = &s[..floor_boundary(s, MAX_INDEXED_BYTES)];
    let digest = Sha256::digest(s.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    Cow::Owned(format!("{head}#{hex}"))
}

/// `s` as a prefix key (a normalised string for `LIKE 'value%'`): its shortest prefix of at
/// least [`MAX_INDEXED_BYTES`] bytes, so that a prefix search for any value up to the bound
/// answers exactly as it would on the whole text. (`:contains` looks at this prefix only.)
pub fn prefix_key(s: &str) -> &str {
    if s.len() <= MAX_INDEXED_BYTES {
        return s;
    }
    let mut end = MAX_INDEXED_BYTES;
    while !s.is_char_boundary(end) {
        end += 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_values_are_kept_whole() {
        assert_eq!(equality_key("abc"), "abc");
        let edge = "x".repeat(MAX_INDEXED_BYTES);
        assert_eq!(equality_key(&edge), edge.as_str());
        assert_eq!(prefix_key(&edge), edge.as_str());
    }

    #[test]
    fn long_values_fold_beyond_any_searchable_value() {
        let long = "é".repeat(5_000_000);
        let k = equality_key(&long);
        assert!(k.len() > MAX_INDEXED_BYTES && k.len() <= MAX_INDEXED_BYTES + 65);
        assert_eq!(k, equality_key(&long), "the fold is stable");
        let other = format!("{}x", "é".repeat(5_000_000));
        assert_ne!(
            k,
            equality_key(&other),
            "values differing past the bound stay apart"
        );
        assert!(k.starts_with("éé"));
    }

    #[test]
    fn prefix_keys_cover_every_searchable_prefix() {
        // Multi-byte characters straddle the bound: the key still holds at least the bound.
        let long = format!("a{}", "€".repeat(2000));
        let p = prefix_key(&long);
        assert!(p.len() >= MAX_INDEXED_BYTES && p.len() <= MAX_INDEXED_BYTES + 3);
        assert!(long.starts_with(p));
    }
}
