//! Client assertions (RFC 7523 §2.2 and 3, as SMART Backend Services profiles them): a JWT a
//! confidential-asymmetric client signs with its own private key to authenticate at the token
//! endpoint. It passes when its `alg` is RS384 or ES384, its `iss` and `sub` are the client's
//! id, its `aud` names the token endpoint, it expires at most five minutes ahead (and has not
//! expired), it carries a `jti`, and it verifies with a key of the client's registered JWKS
//! (held inline or fetched from the client's JWKS URL). Whether the `jti` was seen before is the
//! caller's question: only the database can answer it for every server process.

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::Algorithm;
use serde_json::Value;

use super::{check_claims, external, select_key, Jws, TokenError, VerifyKey};
use super::{Verifier, MAX_TOKEN_LEN};
use crate::cache::{unix_now, BoundedCache};

/// The algorithms a client may sign assertions with (SMART Backend Services).
pub const ASSERTION_ALGORITHMS: [&str; 2] = ["RS384", "ES384"];

/// An assertion may expire at most this far ahead.
const MAX_LIFETIME: i64 = 300;

/// The longest `jti` accepted.
const MAX_JTI_LEN: usize = 255;

/// A fetched client JWKS is used for this long before it is fetched again.
const JWKS_TTL: i64 = 300;

/// The largest JWKS document fetched from a client.
const MAX_JWKS_BYTES: usize = 256 * 1024;

/// Where a client's public keys are.
#[derive(Debug, Clone, Copy)]
pub enum ClientKeys<'a> {
    /// A JWKS document registered with the client.
    Jwks(&'a str),
    /// The URL the client publishes its JWKS at.
    Url(&'a str),
}

/// A verified assertion's replay-relevant claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assertion {
    /// `jti`.
    pub jti: String,
    /// `exp`.
    pub exp: i64,
}

/// Client key sets fetched from their URLs.
pub(super) type JwksCache = BoundedCache<String, Arc<Vec<Arc<VerifyKey>>>>;

/// The usable signature keys of a JWKS document; keys this server will not use are skipped.
fn parse_jwks(text: &str) -> Result<Vec<Arc<VerifyKey>>, TokenError> {
    let set: JwkSet = serde_json::from_str(text)
        .map_err(|e| TokenError::Discovery(format!("the client's JWKS is not a JWK set: {e}")))?;
    Ok(set
        .keys
        .iter()
        .filter_map(external::verify_key_from_jwk)
        .map(Arc::new)
        .collect())
}

/// True when `text` is a JWK set with at least one key this server can verify RS384 or ES384
/// signatures with (client registration checks it).
pub fn usable_client_jwks(text: &str) -> bool {
    parse_jwks(text).is_ok_and(|keys| {
        keys.iter()
            .any(|k| k.algs.contains(&Algorithm::RS384) || k.algs.contains(&Algorithm::ES384))
    })
}

impl Verifier {
    /// Verifies `assertion` as `client_id`'s, for the token endpoint `audience`.
    pub async fn verify_assertion(
        &self,
        assertion: &str,
        client_id: &str,
        keys: ClientKeys<'_>,
        audience: &str,
    ) -> Result<Assertion, TokenError> {
        if assertion.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        let jws = Jws::parse(assertion)?;
        if !matches!(jws.alg, Algorithm::RS384 | Algorithm::ES384) {
            return Err(TokenError::UnsupportedAlgorithm(format!("{:?}", jws.alg)));
        }
        for claim in ["iss", "sub"] {
            match jws.claims.get(claim) {
                Some(Value::String(v)) if v == client_id => {}
                Some(_) => return Err(TokenError::InvalidClaim(claim)),
                None => return Err(TokenError::MissingClaim(claim)),
            }
        }
        let now = unix_now();
        let exp = check_claims(&jws.claims, audience, now, self.inner.leeway)?;
        if exp > now + MAX_LIFETIME + self.inner.leeway {
            return Err(TokenError::InvalidClaim("exp"));
        }
        let jti = match jws.claims.get("jti") {
            Some(Value::String(j)) if !j.is_empty() && j.len() <= MAX_JTI_LEN => j.clone(),
            Some(_) => return Err(TokenError::InvalidClaim("jti")),
            None => return Err(TokenError::MissingClaim("jti")),
        };
        let key = self.client_key(keys, jws.kid.as_deref(), now).await?;
        if !key.algs.contains(&jws.alg) {
            return Err(TokenError::AlgorithmMismatch);
        }
        match jsonwebtoken::crypto::verify(jws.signature, jws.signing_input, &key.key, jws.alg) {
            Ok(true) => {}
            _ => return Err(TokenError::BadSignature),
        }
        Ok(Assertion { jti, exp })
    }

    /// The client key `kid` names.
    async fn client_key(
        &self,
        keys: ClientKeys<'_>,
        kid: Option<&str>,
        now: i64,
    ) -> Result<Arc<VerifyKey>, TokenError> {
        match keys {
            ClientKeys::Jwks(text) => {
                let keys = parse_jwks(text)?;
                select_key(&keys, kid)
                    .cloned()
                    .ok_or(TokenError::UnknownKey)
            }
            ClientKeys::Url(url) => {
                let cache = &self.inner.client_jwks;
                if let Some(keys) = cache.get(url, now) {
                    if let Some(k) = select_key(&keys, kid) {
                        return Ok(k.clone());
                    }
                }
                // A kid the cached set lacks: the client may have rotated its keys.
                let keys = Arc::new(self.fetch_client_jwks(url).await?);
                cache.insert(url.to_string(), keys.clone(), Some(now + JWKS_TTL), now);
                select_key(&keys, kid)
                    .cloned()
                    .ok_or(TokenError::UnknownKey)
            }
        }
    }

    async fn fetch_client_jwks(&self, url: &str) -> Result<Vec<Arc<VerifyKey>>, TokenError> {
        let client = self.inner.http.client()?;
        let failed = |e: &dyn std::fmt::Display| {
            TokenError::Discovery(format!("fetching the client's JWKS: {e}"))
        };
        let response = client
            .get(url)
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .map_err(|e| failed(&e))?;
        if !response.status().is_success() {
            return Err(failed(&format!("HTTP {}", response.status())));
        }
        if response
            .content_length()
            .is_some_and(|n| n > MAX_JWKS_BYTES as u64)
        {
            return Err(failed(&"the document is too large"));
        }
        let body = response.bytes().await.map_err(|e| failed(&e))?;
        if body.len() > MAX_JWKS_BYTES {
            return Err(failed(&"the document is too large"));
        }
        parse_jwks(std::str::from_utf8(&body).map_err(|e| failed(&e))?)
    }
}
