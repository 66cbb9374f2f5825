//! Keeping every process in step: a thread listens on the database's `invicta_auth` channel and
//! applies what other processes did (a rotated key, a revoked token) within a poll interval;
//! when the channel is lost it reconnects and reloads everything, since notifications sent
//! meanwhile are gone. The same thread sweeps expired authorization state now and then.

use std::time::{Duration, Instant};

use crate::settings::KEY_GRACE_SECS;
use crate::AuthServer;

/// How often notifications are collected.
const POLL: Duration = Duration::from_millis(50);
/// How long to wait before reconnecting a lost channel.
const RECONNECT: Duration = Duration::from_secs(1);
/// How often expired state is deleted.
const SWEEP: Duration = Duration::from_secs(60);

impl AuthServer {
    /// Starts the listener thread.
    pub fn start_sync(&self) {
        let server = self.clone();
        std::thread::Builder::new()
            .name("auth-sync".into())
            .spawn(move || server.sync_forever())
            .expect("the auth-sync thread starts");
    }

    fn sync_forever(&self) {
        let mut last_sweep = Instant::now();
        loop {
            let mut listener = match self.store().auth_listener() {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for key and revocation changes; retrying");
                    std::thread::sleep(RECONNECT);
                    continue;
                }
            };
            // Whatever happened while no one listened.
            if let Err(e) = self.reload() {
                tracing::error!(error = %e, "cannot reload keys and revocations");
            }
            loop {
                std::thread::sleep(POLL);
                match listener.poll() {
                    Ok(messages) => {
                        for m in messages {
                            self.apply(&m);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "lost the key and revocation channel; reconnecting");
                        break;
                    }
                }
                if last_sweep.elapsed() >= SWEEP {
                    last_sweep = Instant::now();
                    match self.store().sweep_auth_state(KEY_GRACE_SECS) {
                        Ok(n) if n > 0 => {
                            tracing::debug!(deleted = n, "expired authorization state swept")
                        }
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot sweep expired authorization state")
                        }
                    }
                }
            }
        }
    }

    fn apply(&self, message: &str) {
        if message == "keys" {
            if let Err(e) = self.reload_keys() {
                tracing::error!(error = %e, "cannot reload the signing keys");
            }
        } else if let Some(rest) = message.strip_prefix("revoked:") {
            if let Some((exp, jti)) = rest.split_once(':') {
                if let Ok(exp) = exp.parse() {
                    self.verifier().revoke(jti, exp);
                }
            }
        }
    }
}
