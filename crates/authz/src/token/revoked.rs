//! Revoked tokens, by `jti`, until they would have expired anyway. Checked on every request,
//! cached token or not, so a revocation takes effect at once; while nothing is revoked the
//! check is one atomic load.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{PoisonError, RwLock};

use serde_json::{Map, Value};

use super::TokenError;

/// The revocation list of one process (kept in step with the database by the server).
#[derive(Default)]
pub(super) struct Revoked {
    any: AtomicBool,
    /// `jti` → `exp`.
    tokens: RwLock<HashMap<String, i64>>,
}

impl Revoked {
    /// Refuses claims whose `jti` is revoked.
    pub(super) fn check(&self, claims: &Map<String, Value>) -> Result<(), TokenError> {
        if !self.any.load(Ordering::Acquire) {
            return Ok(());
        }
        let Some(jti) = claims.get("jti").and_then(Value::as_str) else {
            return Ok(());
        };
        let tokens = self.tokens.read().unwrap_or_else(PoisonError::into_inner);
        if tokens.contains_key(jti) {
            return Err(TokenError::Revoked);
        }
        Ok(())
    }

    /// Adds one revocation, dropping those whose tokens have expired.
    pub(super) fn add(&self, jti: &str, exp: i64, now: i64) {
        let mut tokens = self.tokens.write().unwrap_or_else(PoisonError::into_inner);
        tokens.retain(|_, e| *e >= now - super::MAX_LEEWAY.as_secs() as i64);
        tokens.insert(jti.to_string(), exp);
        self.any.store(true, Ordering::Release);
    }

    /// Replaces the list.
    pub(super) fn replace(&self, revoked: impl IntoIterator<Item = (String, i64)>, now: i64) {
        let fresh: HashMap<String, i64> = revoked
            .into_iter()
            .filter(|(_, e)| *e >= now - super::MAX_LEEWAY.as_secs() as i64)
            .collect();
        let mut tokens = self.tokens.write().unwrap_or_else(PoisonError::into_inner);
        self.any.store(!fresh.is_empty(), Ordering::Release);
        *tokens = fresh;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(jti: &str) -> Map<String, Value> {
        json!({"jti": jti}).as_object().unwrap().clone()
    }

    #[test]
    fn revoked_until_replaced_and_expired_ones_pruned() {
        let r = Revoked::default();
        assert!(r.check(&claims("a")).is_ok());
        r.add("a", 2_000, 1_000);
        assert!(matches!(r.check(&claims("a")), Err(TokenError::Revoked)));
        assert!(r.check(&claims("b")).is_ok());
        assert!(r.check(&Map::new()).is_ok());
        r.add("b", 5_000, 3_000);
        assert!(
            r.check(&claims("a")).is_ok(),
            "a expired long ago and was pruned"
        );
        r.replace(vec![("c".to_string(), 9_000)], 4_000);
        assert!(r.check(&claims("b")).is_ok());
        assert!(r.check(&claims("c")).is_err());
        r.replace(Vec::new(), 4_000);
        assert!(r.check(&claims("c")).is_ok());
    }
}
