//! The one cache type of the access path: verified tokens (`token`), and the server's principals
//! and decisions per token. Every request looks something up here before doing real work, so a
//! hit is a hash and one short lock, and allocates nothing. Bounded: when full, expired entries
//! go first, then the oldest, so a flood of new keys cannot grow memory or push out only the
//! entries still in use while expired ones linger.

use std::borrow::Borrow;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::decide::Emergency;
use crate::scope::Interaction;

/// Seconds since the Unix epoch: the clock entry expiries (a token's `exp`) are measured on.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A bounded map whose entries may expire, safe to share between threads.
pub struct BoundedCache<K, V> {
    capacity: usize,
    state: Mutex<State<K, V>>,
}

struct State<K, V> {
    entries: HashMap<K, Entry<V>>,
    /// Insertion order, oldest first; may hold keys already gone from `entries`.
    order: VecDeque<K>,
}

struct Entry<V> {
    value: V,
    /// The last second (inclusive) the entry may be used; `None`: until evicted.
    expires: Option<i64>,
}

impl<V> Entry<V> {
    fn live(&self, now: i64) -> bool {
        match self.expires {
            Some(e) => now <= e,
            None => true,
        }
    }
}

impl<K: Hash + Eq + Clone, V: Clone> BoundedCache<K, V> {
    /// An empty cache of at most `capacity` entries (at least one).
    pub fn new(capacity: usize) -> BoundedCache<K, V> {
        BoundedCache {
            capacity: capacity.max(1),
            state: Mutex::new(State {
                entries: HashMap::new(),
                order: VecDeque::new(),
            }),
        }
    }

    /// The value under `key`, unless there is none or it has expired by `now` (an expired
    /// entry is dropped when seen).
    pub fn get<Q>(&self, key: &Q, now: i64) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut state = self.lock();
        let entry = state.entries.get(key)?;
        if entry.live(now) {
            return Some(entry.value.clone());
        }
        state.entries.remove(key);
        None
    }

    /// Remembers `value` under `key` until `expires` (inclusive; `None`: until evicted),
    /// replacing what the key held. An entry already expired at `now` is not stored.
    pub fn insert(&self, key: K, value: V, expires: Option<i64>, now: i64) {
        let entry = Entry { value, expires };
        if !entry.live(now) {
            return;
        }
        let mut state = self.lock();
        if state.entries.len() >= self.capacity && !state.entries.contains_key(&key) {
            state.entries.retain(|_, e| e.live(now));
            // Evict a tenth at once when live entries fill the cache, so that the scan above
            // runs once per many inserts rather than on each.
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
        if state.entries.insert(key.clone(), entry).is_none() {
            state.order.push_back(key);
        }
    }

    /// The value under `key`, or else the one `make` returns (with its owned key and expiry),
    /// remembered. `make` runs outside the lock, so a slow one holds up no other lookup; two
    /// threads missing together may both run it, and the later insert wins.
    pub fn get_or_try_insert<Q, E>(
        &self,
        key: &Q,
        now: i64,
        make: impl FnOnce() -> Result<(K, V, Option<i64>), E>,
    ) -> Result<V, E>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if let Some(v) = self.get(key, now) {
            return Ok(v);
        }
        let (key, value, expires) = make()?;
        self.insert(key, value.clone(), expires, now);
        Ok(value)
    }

    /// How many entries are held, expired ones not yet dropped included.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, State<K, V>> {
        // The state stays consistent even if a holder panicked: every change is one map call.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    #[cfg(test)]
    fn order_len(&self) -> usize {
        self.lock().order.len()
    }
}

/// A decision's inputs besides the policy, as a cache key: a fingerprint of the token (the
/// principal and its scopes follow from it), the resource type, the interaction and the
/// emergency access asked for.
#[derive(Debug, Clone)]
pub struct DecisionKey {
    /// A fingerprint of the token.
    pub token: u64,
    /// The resource type, if the interaction names one.
    pub res_type: Option<String>,
    /// The interaction.
    pub interaction: Interaction,
    /// Break-glass or relationship claim asked for.
    pub emergency: Emergency,
}

/// A [`DecisionKey`] made of borrowed parts: what a request looks a decision up with, so that a
/// hit copies no string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DecisionQuery<'a> {
    /// A fingerprint of the token.
    pub token: u64,
    /// The resource type, if the interaction names one.
    pub res_type: Option<&'a str>,
    /// The interaction.
    pub interaction: Interaction,
    /// Break-glass or relationship claim asked for.
    pub emergency: &'a Emergency,
}

impl DecisionQuery<'_> {
    /// The owned key, for storing a decision made on a miss.
    pub fn to_key(&self) -> DecisionKey {
        DecisionKey {
            token: self.token,
            res_type: self.res_type.map(str::to_string),
            interaction: self.interaction,
            emergency: self.emergency.clone(),
        }
    }
}

/// Either form of a decision key, seen through its borrowed parts. `HashMap::get` needs the
/// stored key to `Borrow` the looked-up type; a trait object both forms implement is the one
/// such type that a [`DecisionQuery`] (which holds references) can be turned into.
pub trait AsDecisionQuery {
    /// The key's parts, borrowed.
    fn parts(&self) -> DecisionQuery<'_>;
}

impl AsDecisionQuery for DecisionKey {
    fn parts(&self) -> DecisionQuery<'_> {
        DecisionQuery {
            token: self.token,
            res_type: self.res_type.as_deref(),
            interaction: self.interaction,
            emergency: &self.emergency,
        }
    }
}

impl AsDecisionQuery for DecisionQuery<'_> {
    fn parts(&self) -> DecisionQuery<'_> {
        *self
    }
}

impl<'a> Borrow<dyn AsDecisionQuery + 'a> for DecisionKey {
    fn borrow(&self) -> &(dyn AsDecisionQuery + 'a) {
        self
    }
}

// Hash and equality of both forms go through `parts`, so they agree as `Borrow` requires.
impl Hash for dyn AsDecisionQuery + '_ {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.parts().hash(state);
    }
}

impl PartialEq for dyn AsDecisionQuery + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for dyn AsDecisionQuery + '_ {}

impl Hash for DecisionKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.parts().hash(state);
    }
}

impl PartialEq for DecisionKey {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for DecisionKey {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_inclusive_and_optional() {
        let cache: BoundedCache<&str, u32> = BoundedCache::new(4);
        cache.insert("a", 1, Some(100), 50);
        cache.insert("b", 2, None, 50);
        assert_eq!(cache.get("a", 100), Some(1));
        assert_eq!(cache.get("b", i64::MAX), Some(2));
        assert_eq!(cache.get("a", 101), None);
        assert_eq!(cache.len(), 1, "an expired entry is dropped when seen");
        cache.insert("c", 3, Some(10), 50);
        assert_eq!(cache.len(), 1, "an entry expired on arrival is not stored");
        cache.insert("b", 20, Some(60), 50);
        assert_eq!(
            cache.get("b", 60),
            Some(20),
            "an insert replaces value and expiry"
        );
        assert_eq!(cache.get("b", 61), None);
    }

    #[test]
    fn full_evicts_expired_first_then_oldest() {
        let cache: BoundedCache<u32, u32> = BoundedCache::new(10);
        for k in 0..5 {
            cache.insert(k, k, Some(100), 0);
        }
        for k in 5..10 {
            cache.insert(k, k, None, 0);
        }
        cache.insert(10, 10, None, 200);
        assert_eq!(cache.len(), 6, "only the expired went");
        for k in 5..=10 {
            assert_eq!(cache.get(&k, 200), Some(k));
        }
        // Live entries only: the oldest go, a tenth at a time, never past the capacity.
        for k in 11..1_000 {
            cache.insert(k, k, None, 200);
            assert!(cache.len() <= 10);
        }
        assert_eq!(cache.get(&999, 200), Some(999));
        assert_eq!(cache.get(&5, 200), None);
        assert!(cache.order_len() <= 21, "the order queue stays bounded");
        // Replacing a held key when full evicts nothing.
        let before = cache.len();
        cache.insert(999, 0, None, 200);
        assert_eq!(cache.len(), before);
    }

    #[test]
    fn get_or_try_insert_makes_once_and_passes_errors() {
        let cache: BoundedCache<String, u32> = BoundedCache::new(4);
        let mut made = 0;
        let mut make = |v| {
            made += 1;
            Ok::<_, ()>(("k".to_string(), v, Some(100)))
        };
        assert_eq!(cache.get_or_try_insert("k", 0, || make(1)), Ok(1));
        assert_eq!(cache.get_or_try_insert("k", 0, || make(2)), Ok(1));
        assert_eq!(cache.get_or_try_insert("k", 101, || make(3)), Ok(3));
        assert_eq!(made, 2);
        assert_eq!(
            cache.get_or_try_insert("e", 0, || Err::<(String, u32, _), _>("no")),
            Err("no")
        );
        assert_eq!(cache.get("e", 0), None, "a failure is not remembered");
    }

    #[test]
    fn decisions_are_found_by_borrowed_parts() {
        let cache: BoundedCache<DecisionKey, u32> = BoundedCache::new(8);
        let none = Emergency::default();
        let btg = Emergency {
            purpose_of_use: Some("BTG".into()),
            reason: Some("collapsed".into()),
            relationship_claim: None,
        };
        let q = |token, res_type, interaction, emergency| DecisionQuery {
            token,
            res_type,
            interaction,
            emergency,
        };
        let read_obs = q(1, Some("Observation"), Interaction::Read, &none);
        cache.insert(read_obs.to_key(), 1, None, 0);
        cache.insert(q(1, None, Interaction::Search, &none).to_key(), 2, None, 0);
        cache.insert(
            q(1, Some("Observation"), Interaction::Read, &btg).to_key(),
            3,
            None,
            0,
        );
        let get = |query: DecisionQuery<'_>| cache.get(&query as &dyn AsDecisionQuery, 0);
        assert_eq!(get(read_obs), Some(1));
        assert_eq!(get(q(1, None, Interaction::Search, &none)), Some(2));
        assert_eq!(
            get(q(1, Some("Observation"), Interaction::Read, &btg)),
            Some(3)
        );
        assert_eq!(
            get(q(2, Some("Observation"), Interaction::Read, &none)),
            None
        );
        assert_eq!(get(q(1, Some("Condition"), Interaction::Read, &none)), None);
        assert_eq!(
            get(q(1, Some("Observation"), Interaction::Vread, &none)),
            None
        );
        assert_eq!(get(q(1, Some(""), Interaction::Search, &none)), None);
        assert_eq!(read_obs.to_key(), read_obs.to_key());
    }
}
