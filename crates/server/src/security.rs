//! The security services of the HTTP edge: token verification, the role policy, the audit
//! sink, and the bearer-token reading that turns an `Authorization` header into a
//! [`Principal`] (or a 401 with its challenge).

use std::sync::Arc;

use actix_web::dev::ServiceRequest;
use actix_web::http::header;
use authz::cache::{unix_now, BoundedCache};
use authz::{Policy, Principal};
use interactions::{Error, ErrorKind};

use crate::audit_sink::AuditSink;
use crate::error::ApiError;

/// The security services shared by every request.
#[derive(Clone)]
pub struct Security {
    /// Token verifier (own key and external issuers).
    pub verifier: authz::token::Verifier,
    /// The role policy.
    pub policy: Arc<Policy>,
    /// Tokens required.
    pub enabled: bool,
    /// Where audit records go.
    pub audit: AuditSink,
    /// Claim naming the role.
    pub role_claim: String,
    /// Principals already read from a token: the same token comes with every request.
    pub cache: Arc<PrincipalCache>,
}

/// Principals by token fingerprint, none kept past the token's `exp`.
pub struct PrincipalCache {
    /// Keys of the token fingerprints, random per process so no one can craft a collision.
    keys: std::collections::hash_map::RandomState,
    principals: BoundedCache<u64, Arc<Principal>>,
}

impl Default for PrincipalCache {
    fn default() -> Self {
        PrincipalCache {
            keys: Default::default(),
            principals: BoundedCache::new(20_000),
        }
    }
}

impl PrincipalCache {
    fn fingerprint(&self, token: &str) -> u64 {
        use std::hash::BuildHasher;
        self.keys.hash_one(token)
    }
}

/// Verifies the request's bearer token: its principal and a fingerprint of the token.
pub async fn authenticate(
    req: &ServiceRequest,
    sec: &Security,
) -> Result<(Arc<Principal>, u64, Option<i64>), ApiError> {
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .ok_or_else(|| unauthorized(None, "An Authorization: Bearer token is required"))?;
    let token = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            unauthorized(Some("invalid_request"), "Use Authorization: Bearer <token>")
        })?;
    let refused = |e: &dyn std::fmt::Display| {
        unauthorized(
            Some("invalid_token"),
            &format!("The token was refused: {e}"),
        )
    };
    let claims = sec.verifier.verify(token).await.map_err(|e| refused(&e))?;
    let print = sec.cache.fingerprint(token);
    let exp = authz::token::expiry(&claims);
    let principal = sec
        .cache
        .principals
        .get_or_try_insert(&print, unix_now(), || {
            authz::from_claims(&claims, &sec.policy, &sec.role_claim)
                .map(|p| (print, Arc::new(p), exp))
                .map_err(|e| refused(&e))
        })?;
    Ok((principal, print, exp))
}

/// A 401 with its `WWW-Authenticate` challenge (RFC 6750).
fn unauthorized(error: Option<&str>, msg: &str) -> ApiError {
    let mut e = Error::new(ErrorKind::Unauthenticated, msg);
    let mut challenge = "Bearer realm=\"invicta\"".to_string();
    if let Some(code) = error {
        let desc = msg.replace(['"', '\\'], "'");
        challenge.push_str(&format!(", error=\"{code}\", error_description=\"{desc}\""));
    }
    e.challenge = Some(challenge);
    ApiError(e)
}
