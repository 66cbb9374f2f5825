//! The verified-token cache: claims of tokens that passed full verification, keyed by the
//! SHA-256 of the token text, kept until the token expires. Bounded: when full, expired entries
//! go first, then the oldest. A cached token stays accepted until it expires even if its issuer
//! withdraws the key meanwhile, as with any cache of verification results.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

/// The cache key: SHA-256 of the token, so the cache holds no usable token.
pub(super) type Digest = [u8; 32];

/// The cache key of `token`.
pub(super) fn digest(token: &str) -> Digest {
    Sha256::digest(token.as_bytes()).into()
}

/// Claims of verified tokens.
pub(super) struct TokenCache {
    capacity: usize,
    leeway: i64,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    entries: HashMap<Digest, Entry>,
    /// Insertion order, oldest first; may hold keys already gone from `entries`.
    order: VecDeque<Digest>,
}

struct Entry {
    claims: Arc<Map<String, Value>>,
    exp: i64,
}

impl TokenCache {
    /// An empty cache of at most `capacity` tokens, which honours `exp` with `leeway` seconds.
    pub(super) fn new(capacity: usize, leeway: i64) -> TokenCache {
        TokenCache {
            capacity: capacity.max(1),
            leeway,
            state: Mutex::default(),
        }
    }

    /// The claims of a verified token, unless it is unknown or has expired since.
    pub(super) fn get(&self, key: &Digest, now: i64) -> Option<Arc<Map<String, Value>>> {
        let mut state = self.lock();
        let entry = state.entries.get(key)?;
        if now <= entry.exp.saturating_add(self.leeway) {
            return Some(Arc::clone(&entry.claims));
        }
        state.entries.remove(key);
        None
    }

    /// Remembers a verified token until `exp`.
    pub(super) fn insert(&self, key: Digest, claims: Arc<Map<String, Value>>, exp: i64, now: i64) {
        let mut state = self.lock();
        if state.entries.len() >= self.capacity && !state.entries.contains_key(&key) {
            let leeway = self.leeway;
            state
                .entries
                .retain(|_, e| now <= e.exp.saturating_add(leeway));
            // Evict a tenth at once when live tokens fill the cache, so that the scan above runs
            // once per many inserts rather than on each.
            let target = self.capacity - self.capacity.div_ceil(10);
            while state.entries.len() > target {
                let Some(oldest) = state.order.pop_front() else {
                    break;
                };
                state.entries.remove(&oldest);
            }
        }
        if state.order.len() > 2 * self.capacity {
            let State { entries, order } = &mut *state;
            order.retain(|k| entries.contains_key(k));
        }
        if state.entries.insert(key, Entry { claims, exp }).is_none() {
            state.order.push_back(key);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state stays consistent even if a holder panicked: every change is one map call.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.lock().entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(n: usize) -> Arc<Map<String, Value>> {
        let mut m = Map::new();
        m.insert("n".into(), Value::from(n));
        Arc::new(m)
    }

    #[test]
    fn hit_until_exp_plus_leeway() {
        let cache = TokenCache::new(10, 60);
        let key = digest("a.b.c");
        cache.insert(key, claims(1), 1_000, 900);
        assert!(cache.get(&key, 1_000).is_some());
        assert!(cache.get(&key, 1_060).is_some());
        assert!(cache.get(&key, 1_061).is_none());
        assert_eq!(cache.len(), 0, "an expired entry is dropped when seen");
        assert!(cache.get(&digest("a.b.d"), 900).is_none());
    }

    #[test]
    fn bounded_expired_first_then_oldest() {
        let cache = TokenCache::new(10, 0);
        // Five tokens that expire at 100, then live ones.
        for i in 0..5 {
            cache.insert(digest(&format!("old{i}")), claims(i), 100, 50);
        }
        for i in 0..5 {
            cache.insert(digest(&format!("live{i}")), claims(i), 10_000, 50);
        }
        // Full; at 200 the expired five go and nothing live is lost.
        cache.insert(digest("new"), claims(99), 10_000, 200);
        assert_eq!(cache.len(), 6);
        for i in 0..5 {
            assert!(cache.get(&digest(&format!("live{i}")), 200).is_some());
        }
        // Flood with live tokens: never more than the capacity, the newest kept.
        for i in 0..1_000 {
            cache.insert(digest(&format!("flood{i}")), claims(i), 10_000, 200);
            assert!(cache.len() <= 10);
        }
        assert!(cache.get(&digest("flood999"), 200).is_some());
        assert!(cache.get(&digest("live0"), 200).is_none());
        assert!(cache.lock().order.len() <= 21);
    }
}
