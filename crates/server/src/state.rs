//! What every handler shares.

use interactions::{Services, Settings};
use store::Store;

use crate::config::Config;
use crate::security::Security;

/// Shared application state, built once in `main` (and once per test server).
#[derive(Clone)]
pub struct AppState {
    /// The interaction layer's services (store, settings, policy).
    pub services: Services,
    /// Validated configuration.
    pub config: Config,
    /// Tokens, policy and audit.
    pub security: Security,
}

impl AppState {
    /// The state of a server over `store`.
    pub fn new(store: Store, config: Config, security: Security) -> AppState {
        let services = Services::new(store, settings(&config), security.policy.clone());
        AppState {
            services,
            config,
            security,
        }
    }
}

/// The settings the interactions read, from the configuration.
pub fn settings(config: &Config) -> Settings {
    Settings {
        base_url: config.base_url.clone(),
        issuer: config.issuer.clone(),
        bundle_max_entries: config.bundle_max_entries,
        delete_multiple: config.delete_multiple,
        search_default_count: config.search_default_count,
        search_max_count: config.search_max_count,
        search_explain: config.search_explain,
        cursor_key: config.cursor_key.clone(),
        audit: config.audit,
    }
}
