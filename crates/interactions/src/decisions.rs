//! Authorization decisions already made, by token and question: the same token asks the same
//! questions on every request, and a decision walks every resource type.

use std::sync::Arc;

use authz::cache::{BoundedCache, DecisionKey};
use store::Access;

/// Decisions by token and question, none kept past the token's `exp`.
pub(crate) struct DecisionCache {
    pub(crate) decisions: BoundedCache<DecisionKey, Arc<Allowed>>,
}

impl Default for DecisionCache {
    fn default() -> Self {
        DecisionCache {
            decisions: BoundedCache::new(CACHE_LIMIT),
        }
    }
}

/// What an allowed decision hands the interaction.
pub(crate) struct Allowed {
    pub(crate) access: Arc<Access>,
    pub(crate) break_glass: Option<authz::BreakGlass>,
    pub(crate) claim: Option<String>,
}

/// Decisions kept.
const CACHE_LIMIT: usize = 20_000;
