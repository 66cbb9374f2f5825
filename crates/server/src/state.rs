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
    /// The SMART authorization server.
    pub auth: auth_server::AuthServer,
}

impl AppState {
    /// The state of a server over `store`.
    pub fn new(
        store: Store,
        config: Config,
        security: Security,
        auth: auth_server::AuthServer,
    ) -> AppState {
        let services = Services::new(store, settings(&config), security.policy.clone());
        AppState {
            services,
            config,
            security,
            auth,
        }
    }
}

/// The settings the interactions read, from the configuration.
pub fn settings(config: &Config) -> Settings {
    Settings {
        base_url: config.base_url.clone(),
        issuer: config.issuer.clone(),
        auth_base: auth_server::AuthSettings::new(&config.base_url, &config.issuer).auth_base,
        bundle_max_entries: config.bundle_max_entries,
        delete_multiple: config.delete_multiple,
        search_default_count: config.search_default_count,
        search_max_count: config.search_max_count,
        search_explain: config.search_explain,
        cursor_key: config.cursor_key.clone(),
        audit: config.audit,
        profiles: config.profiles,
    }
}
