//! The query string, decoded once (with the search crate's decoder), repeated parameters kept.

use crate::error::Result;

/// Decoded query parameters.
#[derive(Debug, Clone, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Decodes `a=1&b=2` (form encoding: `+` is a space); a malformed escape is a 400.
    pub fn parse(query: &str) -> Result<Params> {
        Ok(Params {
            pairs: search::text::pairs(query)?,
        })
    }

    /// Wraps already-decoded pairs.
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Params {
        Params { pairs }
    }

    /// The first value of a parameter.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every pair, in order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// The pairs, taken.
    pub fn into_pairs(self) -> Vec<(String, String)> {
        self.pairs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_refuses_bad_escapes() {
        let p = Params::parse("a=1&_since=2024-01-01T00%3A00%3A00%2B01%3A00&b=x+y").unwrap();
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("_since"), Some("2024-01-01T00:00:00+01:00"));
        assert_eq!(p.get("b"), Some("x y"));
        assert!(Params::parse("c=%zz").is_err());
    }
}
