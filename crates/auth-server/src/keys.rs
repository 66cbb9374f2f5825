//! The server's signing keys, kept in the database so every process signs and verifies with the
//! same set. The newest key signs; keys retired by a rotation stay published (and trusted) for
//! [`KEY_GRACE_SECS`], so no token they signed is cut short.

use std::path::Path;
use std::sync::{Arc, PoisonError, RwLock};

use authz::token::SigningKey;
use serde_json::{json, Value};
use store::Store;

use crate::settings::KEY_GRACE_SECS;

/// The key set a process holds (newest first).
#[derive(Clone, Default)]
pub struct KeyRing {
    keys: Arc<RwLock<Arc<Vec<SigningKey>>>>,
}

impl KeyRing {
    /// Makes sure the database has a signing key: on the first start the key in `import` (a
    /// PKCS#8 PEM file, created there when missing) becomes it.
    pub fn ensure_first(store: &Store, import: &Path) -> Result<(), String> {
        if !store
            .signing_keys(0)
            .map_err(|e| format!("cannot read the signing keys: {e}"))?
            .is_empty()
        {
            return Ok(());
        }
        let key = SigningKey::load_or_create(import)
            .map_err(|e| format!("signing key {}: {e}", import.display()))?;
        let added = store
            .add_signing_key(key.kid(), key.algorithm(), key.to_pem(), false)
            .map_err(|e| format!("cannot store the signing key: {e}"))?;
        if added {
            tracing::info!(kid = key.kid(), file = %import.display(), "signing key imported into the database");
        }
        Ok(())
    }

    /// Makes a new key the signing key; the others retire (still trusted for the grace period).
    pub fn rotate(store: &Store) -> Result<SigningKey, String> {
        let key = SigningKey::generate();
        store
            .add_signing_key(key.kid(), key.algorithm(), key.to_pem(), true)
            .map_err(|e| format!("cannot store the new signing key: {e}"))?;
        Ok(key)
    }

    /// Reads the key set from the database.
    pub fn load(store: &Store) -> Result<Vec<SigningKey>, String> {
        let stored = store
            .signing_keys(KEY_GRACE_SECS)
            .map_err(|e| format!("cannot read the signing keys: {e}"))?;
        let mut keys = Vec::with_capacity(stored.len());
        for k in stored {
            if k.alg != "ES256" {
                return Err(format!(
                    "signing key {}: algorithm {} is not supported",
                    k.kid, k.alg
                ));
            }
            let key = SigningKey::from_pem(&k.private_pem)
                .map_err(|e| format!("signing key {}: {e}", k.kid))?;
            keys.push(key);
        }
        if keys.is_empty() {
            return Err("the database holds no signing key".into());
        }
        Ok(keys)
    }

    /// Replaces the held set.
    pub fn set(&self, keys: Vec<SigningKey>) {
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(keys);
    }

    /// Every key held, newest first.
    pub fn all(&self) -> Arc<Vec<SigningKey>> {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The key new tokens are signed with.
    pub fn signer(&self) -> Option<SigningKey> {
        self.all().first().cloned()
    }

    /// The JWKS document of every key held.
    pub fn jwks(&self) -> Value {
        json!({"keys": self.all().iter().map(SigningKey::public_jwk).collect::<Vec<_>>()})
    }
}
