//! What every interaction runs against: the store, the settings that change answers, and the
//! role policy with its decision cache.

use std::sync::Arc;

use authz::Policy;
use store::Store;

use crate::decisions::DecisionCache;

/// The settings interactions read (a subset of the server's configuration).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Absolute base URL of the FHIR endpoint, without a trailing slash.
    pub base_url: String,
    /// `iss` of the server's own tokens.
    pub issuer: String,
    /// Where the authorization server's endpoints are (`{auth_base}/authorize`, `/token`, …).
    pub auth_base: String,
    /// Most entries a batch or transaction Bundle may have.
    pub bundle_max_entries: usize,
    /// A conditional delete may delete every match (else more than one match is a 412).
    pub delete_multiple: bool,
    /// Search page size when `_count` is absent.
    pub search_default_count: i64,
    /// Largest search page, whatever `_count` asks.
    pub search_max_count: i64,
    /// `_explain=true` on a search returns its SQL and plan.
    pub search_explain: bool,
    /// The key that seals search page cursors.
    pub cursor_key: search::CursorKey,
    /// Every access is audited.
    pub audit: bool,
    /// What a write does with a resource that breaks its type's profile.
    pub profiles: crate::conformance::Enforcement,
}

/// The services shared by every interaction; cheap to clone.
#[derive(Clone)]
pub struct Services {
    /// The database.
    pub store: Store,
    /// Settings.
    pub settings: Arc<Settings>,
    /// The role policy.
    pub policy: Arc<Policy>,
    /// Decisions already made, by token and question.
    pub(crate) decisions: Arc<DecisionCache>,
}

impl Services {
    /// Services over a store, with these settings and this policy.
    pub fn new(store: Store, settings: Settings, policy: Arc<Policy>) -> Services {
        Services {
            store,
            settings: Arc::new(settings),
            policy,
            decisions: Arc::new(DecisionCache::default()),
        }
    }
}
