//! What every handler shares.

use store::Store;

use crate::auth::Security;
use crate::config::Config;

/// Shared application state, built once in `main` (and once per test server).
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// Validated configuration.
    pub config: Config,
    /// Tokens, policy and audit.
    pub security: Security,
}
