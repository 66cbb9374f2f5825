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
    /// Streaming standbys that serve reads (`INVICTA_REPLICA_URLS`), if any.
    pub replicas: Option<Arc<crate::replicas::Replicas>>,
}

impl Services {
    /// Services over a store, with these settings and this policy.
    pub fn new(store: Store, settings: Settings, policy: Arc<Policy>) -> Services {
        Services {
            store,
            settings: Arc::new(settings),
            policy,
            decisions: Arc::new(DecisionCache::default()),
            replicas: None,
        }
    }

    /// These services with reads served by `replicas` where they may be.
    pub fn with_replicas(mut self, replicas: Arc<crate::replicas::Replicas>) -> Services {
        self.replicas = Some(replicas);
        self
    }

    /// The database a read or search by the client `key` runs on: a fresh standby, or the
    /// primary (no standby, none fresh, or the client wrote within the window).
    pub fn reader(&self, key: &str) -> Store {
        self.replicas
            .as_ref()
            .and_then(|r| r.pick(key))
            .unwrap_or_else(|| self.store.clone())
    }

    /// Notes that the client `key` changed something its next reads must see.
    pub fn wrote(&self, key: &str) {
        if let Some(r) = &self.replicas {
            r.wrote(key);
        }
    }
}
