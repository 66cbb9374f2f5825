//! The verified-token cache: claims of tokens that passed full verification, keyed by the
//! SHA-256 of the token text, kept until the token expires (plus the leeway). A
//! [`BoundedCache`]: when full, expired entries go first, then the oldest. A cached token stays
//! accepted until it expires even if its issuer withdraws the key meanwhile, as with any cache
//! of verification results.

use std::sync::Arc;

use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

use crate::cache::BoundedCache;

/// The cache key: SHA-256 of the token, so the cache holds no usable token.
pub(super) type Digest = [u8; 32];

/// The cache key of `token`.
pub(super) fn digest(token: &str) -> Digest {
    Sha256::digest(token.as_bytes()).into()
}

/// Claims of verified tokens.
pub(super) type TokenCache = BoundedCache<Digest, Arc<Map<String, Value>>>;

/// The last second a token expiring at `exp` is accepted, with `leeway` seconds of clock skew.
pub(super) fn accepted_until(exp: i64, leeway: i64) -> i64 {
    exp.saturating_add(leeway)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(n: usize) -> Arc<Map<String, Value>> {
        let mut m = Map::new();
        m.insert("n".into(), Value::from(n));
        Arc::new(m)
    }

    /// What the verifier does with a token that passed.
    fn remember(cache: &TokenCache, token: &str, n: usize, exp: i64, now: i64, leeway: i64) {
        cache.insert(
            digest(token),
            claims(n),
            Some(accepted_until(exp, leeway)),
            now,
        );
    }

    #[test]
    fn hit_until_exp_plus_leeway() {
        let cache = TokenCache::new(10);
        let key = digest("a.b.c");
        remember(&cache, "a.b.c", 1, 1_000, 900, 60);
        assert!(cache.get(&key, 1_000).is_some());
        assert!(cache.get(&key, 1_060).is_some());
        assert!(cache.get(&key, 1_061).is_none());
        assert_eq!(cache.len(), 0, "an expired entry is dropped when seen");
        assert!(cache.get(&digest("a.b.d"), 900).is_none());
        assert_eq!(accepted_until(i64::MAX, 60), i64::MAX);
    }

    #[test]
    fn bounded_expired_first_then_oldest() {
        let cache = TokenCache::new(10);
        // Five tokens that expire at 100, then live ones.
        for i in 0..5 {
            remember(&cache, &format!("old{i}"), i, 100, 50, 0);
        }
        for i in 0..5 {
            remember(&cache, &format!("live{i}"), i, 10_000, 50, 0);
        }
        // Full; at 200 the expired five go and nothing live is lost.
        remember(&cache, "new", 99, 10_000, 200, 0);
        assert_eq!(cache.len(), 6);
        for i in 0..5 {
            assert!(cache.get(&digest(&format!("live{i}")), 200).is_some());
        }
        // Flood with live tokens: never more than the capacity, the newest kept.
        for i in 0..1_000 {
            remember(&cache, &format!("flood{i}"), i, 10_000, 200, 0);
            assert!(cache.len() <= 10);
        }
        assert!(cache.get(&digest("flood999"), 200).is_some());
        assert!(cache.get(&digest("live0"), 200).is_none());
    }
}
