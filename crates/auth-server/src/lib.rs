//! Invicta's SMART App Launch authorization server, without HTTP: the server crate maps its
//! endpoints onto these functions. It owns the signing keys (`keys`), the client registry
//! (`clients`), client authentication (`client_auth`), the authorization endpoint, sign-in and
//! consent (`authorize`, `signin`, `pages`), EHR launch contexts (`launch`), the grants
//! (`token_endpoint`, `code_grant`), introspection and revocation (`introspection`), and keeping
//! every process in step (`sync`). Browser-facing functions return a [`BrowserReply`] (a redirect
//! or a page, maybe a new session); client-facing ones a [`Reply`].
//! Its state lives in PostgreSQL through `store`, so processes sharing a database behave as one;
//! token maths stays in `authz::token`.
//!
//! Every endpoint function takes an [`EndpointRequest`] and returns a [`Reply`]: the JSON body
//! or an [`OAuthError`], and the AuditEvents to record before answering.

mod authorize;
pub mod client_auth;
pub mod clients;
mod code_grant;
pub mod error;
pub mod form;
mod introspection;
pub mod keys;
mod launch;
pub mod pages;
pub mod person;
pub mod picker;
pub mod secrets;
pub mod settings;
mod signin;
mod sync;
mod token_endpoint;
pub mod upstream;

use std::sync::Arc;

use authz::auth_events::{AuthEvent, AuthStep};
use authz::token::Verifier;
use authz::Policy;
use serde_json::Value;
use store::{Store, StoreError};

pub use authorize::{with_query, Browser, BrowserReply};
pub use clients::{Client, ClientKind, ClientSpec};
pub use error::{ErrorCode, OAuthError};
pub use keys::KeyRing;
pub use person::Person;
pub use settings::AuthSettings;

/// A request to one of the endpoints, as the HTTP layer read it.
#[derive(Debug, Clone, Default)]
pub struct EndpointRequest {
    /// The form body (its size already limited by the HTTP layer).
    pub body: Vec<u8>,
    /// The `Authorization` header.
    pub authorization: Option<String>,
    /// The client's network address.
    pub address: Option<String>,
    /// The request id.
    pub request_id: String,
}

/// An endpoint's answer.
#[derive(Debug)]
pub struct Reply {
    /// The JSON body, or the OAuth error.
    pub result: Result<Value, OAuthError>,
    /// AuditEvents to record (durably) before the answer leaves.
    pub events: Vec<Value>,
}

/// The authorization server (cheap to clone).
#[derive(Clone)]
pub struct AuthServer {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    settings: AuthSettings,
    keys: KeyRing,
    verifier: Verifier,
    policy: Arc<Policy>,
    providers: Arc<upstream::Providers>,
}

impl AuthServer {
    /// The authorization server over `store`, with the key set and revocation list loaded and
    /// handed to `verifier` (which the FHIR endpoints use too).
    pub fn new(
        store: Store,
        settings: AuthSettings,
        verifier: Verifier,
        policy: Arc<Policy>,
        providers: upstream::Providers,
    ) -> Result<AuthServer, String> {
        let server = AuthServer {
            inner: Arc::new(Inner {
                store,
                settings,
                keys: KeyRing::default(),
                verifier,
                policy,
                providers: Arc::new(providers),
            }),
        };
        server.reload()?;
        Ok(server)
    }

    /// Reads the key set and the revocation list again.
    pub fn reload(&self) -> Result<(), String> {
        self.reload_keys()?;
        let revoked = self
            .inner
            .store
            .revoked_tokens()
            .map_err(|e| format!("cannot read revoked tokens: {e}"))?;
        self.inner.verifier.set_revoked(revoked);
        Ok(())
    }

    /// Reads the key set again (after a rotation).
    pub fn reload_keys(&self) -> Result<(), String> {
        let keys = KeyRing::load(&self.inner.store)?;
        self.inner.verifier.set_own_keys(&keys);
        self.inner.keys.set(keys);
        Ok(())
    }

    /// The JWKS document of the server's keys.
    pub fn jwks(&self) -> Value {
        self.inner.keys.jwks()
    }

    /// Signs claims with the newest key.
    pub fn sign(&self, claims: &Value) -> Result<String, OAuthError> {
        let key = self
            .inner
            .keys
            .signer()
            .ok_or_else(|| OAuthError::new(ErrorCode::ServerError, "no signing key"))?;
        key.sign(claims).map_err(|e| {
            tracing::error!(error = %e, "a token could not be signed");
            OAuthError::new(ErrorCode::ServerError, "the token could not be signed")
        })
    }

    /// The settings.
    pub fn settings(&self) -> &AuthSettings {
        &self.inner.settings
    }

    pub(crate) fn store(&self) -> &Store {
        &self.inner.store
    }

    pub(crate) fn verifier(&self) -> &Verifier {
        &self.inner.verifier
    }

    pub(crate) fn policy(&self) -> &Policy {
        &self.inner.policy
    }

    pub(crate) fn providers(&self) -> Arc<upstream::Providers> {
        self.inner.providers.clone()
    }

    /// The answer to a request refused before its endpoint could read it (a body that is not a
    /// form, or too large), with its AuditEvent.
    pub fn refuse(&self, req: &EndpointRequest, err: OAuthError) -> Reply {
        let event = self.event(req, AuthStep::Refused, err.code.status(), |e| {
            e.description = Some(err.to_string());
        });
        Reply {
            result: Err(err),
            events: vec![event],
        }
    }

    /// An AuditEvent of `step` for `req`, filled in by `fill`.
    pub(crate) fn event(
        &self,
        req: &EndpointRequest,
        step: AuthStep,
        status: u16,
        fill: impl FnOnce(&mut AuthEvent),
    ) -> Value {
        let mut e = AuthEvent {
            step,
            status,
            client_id: None,
            user: None,
            role: None,
            org: None,
            patient: None,
            description: None,
            address: req.address.clone(),
            request_id: req.request_id.clone(),
            recorded: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        };
        fill(&mut e);
        e.to_audit_event()
    }
}

/// Runs a blocking store call off the async executor.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, OAuthError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(OAuthError::store),
        Err(_) => Err(OAuthError::new(
            ErrorCode::ServerError,
            "the request could not be completed",
        )),
    }
}
