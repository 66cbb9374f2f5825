//! Access tokens: bearer JWTs signed by this server with its own ES256 key, or by trusted OpenID
//! Connect providers whose keys are found by discovery. Every cryptographic and JOSE detail stays
//! in this module; the rest of the server sees [`Verifier::verify`], which returns the claims of
//! a token that passed, and [`SigningKey`], which issues tokens and publishes its JWK.
//!
//! A token passes when, in this order:
//! 1. it is at most 16 KiB and three base64url parts whose header and payload are JSON objects;
//! 2. its header `alg` is RS256, RS384, ES256 or ES384 (`none`, HS*, PS*, EdDSA are refused
//!    before any key is looked at) and it names no `crit` extension;
//! 3. its (still unverified) `iss` is the server's own issuer or a configured external issuer,
//!    exactly; this only chooses the key set;
//! 4. its header `kid` names a key of that issuer (no `kid`: the issuer must have exactly one
//!    key) whose algorithm is the header's `alg`, which defeats algorithm confusion such as an
//!    HS256 token "signed" with an RSA public key as the secret. Keys carried in the token
//!    (`jwk`, `jku`, `x5u`, `x5c`) are never used;
//! 5. the signature verifies;
//! 6. `aud` (a string or an array) contains the server's audience, `exp` is present and not past,
//!    `nbf` if present is not in the future, both with the configured leeway (at most 300 s).

mod assertion;
mod cache;
mod external;
mod revoked;
mod signing;
#[cfg(test)]
mod tests;

pub use assertion::{usable_client_jwks, Assertion, ClientKeys, ASSERTION_ALGORITHMS};
pub use signing::SigningKey;

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Map, Value};

use crate::cache::unix_now;

/// Tokens longer than this are refused unread (HTTP servers cap header sizes near 8–16 KiB).
const MAX_TOKEN_LEN: usize = 16 * 1024;

/// The largest clock skew accepted on `exp` and `nbf`, whatever the configuration says.
const MAX_LEEWAY: Duration = Duration::from_secs(300);

/// How many verified tokens the cache holds.
const CACHE_CAPACITY: usize = 10_000;

/// An external issuer's key set is fetched again at most this often on an unknown `kid`, so a
/// flood of tokens with random `kid`s cannot hammer the identity provider.
const JWKS_REFRESH_INTERVAL: Duration = Duration::from_secs(30);

/// A failed discovery is retried at most this often.
const DISCOVERY_RETRY_INTERVAL: Duration = Duration::from_secs(10);

/// Who is trusted and what tokens must say.
#[derive(Debug, Clone)]
pub struct VerifierConfig {
    /// The FHIR base URL; a token's `aud` (a string or an array) must contain it exactly.
    pub audience: String,
    /// The `iss` of tokens signed with `own_key`.
    pub own_issuer: String,
    /// The server's own signing keys (newest first); more can be set later with
    /// [`Verifier::set_own_keys`] when keys rotate.
    pub own_keys: Vec<SigningKey>,
    /// OpenID Connect issuer URLs (http or https) whose keys are discovered on first use.
    pub external_issuers: Vec<String>,
    /// Clock skew allowed on `exp` and `nbf` (the server uses 60 s); clamped to 300 s.
    pub leeway: Duration,
}

/// Why a token was refused. The Display text is safe to show a client in `error_description`:
/// it carries no secret and never echoes the token.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Not a compact JWS of JSON objects, too large, or with a header this server cannot honour.
    #[error("the access token is not a well-formed JWT")]
    Malformed,
    /// The header `alg` is not one of RS256, RS384, ES256, ES384.
    #[error("the access token's signing algorithm '{0}' is not accepted")]
    UnsupportedAlgorithm(String),
    /// The header `alg` is not the algorithm of the key the token names.
    #[error("the access token's algorithm does not match its signing key")]
    AlgorithmMismatch,
    /// The `iss` claim is not a trusted issuer.
    #[error("the access token's issuer is not trusted")]
    UnknownIssuer,
    /// The issuer has no key with the token's `kid` (or the token has no `kid` and the issuer
    /// more than one key).
    #[error("the access token's signing key is not known")]
    UnknownKey,
    /// The signature does not verify.
    #[error("the access token's signature is invalid")]
    BadSignature,
    /// `exp` is past, beyond the leeway.
    #[error("the access token has expired")]
    Expired,
    /// `nbf` is in the future, beyond the leeway.
    #[error("the access token is not valid yet")]
    NotYetValid,
    /// `aud` does not contain this server.
    #[error("the access token is not meant for this server")]
    WrongAudience,
    /// A required claim is absent.
    #[error("the access token has no '{0}' claim")]
    MissingClaim(&'static str),
    /// A claim has the wrong type (a non-numeric `exp`, a non-string `iss`, …).
    #[error("the access token's '{0}' claim is invalid")]
    InvalidClaim(&'static str),
    /// The signing key file could not be read, parsed or created (a startup error).
    #[error("signing key file: {0}")]
    KeyFile(String),
    /// A token could not be signed.
    #[error("could not sign the token: {0}")]
    Signing(String),
    /// The token's issuer could not be discovered or its keys fetched; retried on a later request.
    #[error("the access token's issuer could not be reached: {0}")]
    Discovery(String),
    /// The token was revoked.
    #[error("the access token has been revoked")]
    Revoked,
}

/// A public key a token may be verified with, and the algorithms it may be used with.
struct VerifyKey {
    /// The JWK `kid`.
    kid: Option<String>,
    /// The JWK `alg` when it has one, else every accepted algorithm its type and curve imply.
    algs: Vec<Algorithm>,
    /// The key itself.
    key: DecodingKey,
}

/// Picks the key a token names from an issuer's keys: by `kid`, or the only key when the token
/// has none.
fn select_key<'a>(keys: &'a [Arc<VerifyKey>], kid: Option<&str>) -> Option<&'a Arc<VerifyKey>> {
    match kid {
        Some(kid) => keys.iter().find(|k| k.kid.as_deref() == Some(kid)),
        None if keys.len() == 1 => keys.first(),
        None => None,
    }
}

/// Verifies bearer tokens. Cloning is cheap (an `Arc`); it is `Send + Sync`.
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

struct Inner {
    audience: String,
    own_issuer: String,
    /// The public halves of the server's own keys; replaced whole when keys rotate.
    own_keys: RwLock<Arc<Vec<Arc<VerifyKey>>>>,
    external: HashMap<String, external::Issuer>,
    leeway: i64,
    cache: cache::TokenCache,
    revoked: revoked::Revoked,
    http: external::Http,
    /// Client JWKS documents fetched from a client's `jwks_uri`.
    client_jwks: assertion::JwksCache,
}

impl Verifier {
    /// A verifier for `config`. Nothing is fetched yet: external issuers are discovered on first
    /// use, so the server starts even when an identity provider is down.
    pub fn new(config: VerifierConfig) -> Verifier {
        Self::with_intervals(config, JWKS_REFRESH_INTERVAL, DISCOVERY_RETRY_INTERVAL)
    }

    /// [`Verifier::new`] with other rate limits on key refreshes and discovery retries (tests).
    fn with_intervals(config: VerifierConfig, refresh: Duration, retry: Duration) -> Verifier {
        let leeway = config.leeway.min(MAX_LEEWAY).as_secs() as i64;
        let external = config
            .external_issuers
            .into_iter()
            .map(|url| {
                let issuer = external::Issuer::new(url.clone(), refresh, retry);
                (url, issuer)
            })
            .collect();
        Verifier {
            inner: Arc::new(Inner {
                audience: config.audience,
                own_issuer: config.own_issuer,
                own_keys: RwLock::new(Arc::new(
                    config.own_keys.iter().map(SigningKey::verify_key).collect(),
                )),
                external,
                leeway,
                cache: cache::TokenCache::new(CACHE_CAPACITY),
                revoked: revoked::Revoked::default(),
                http: external::Http::default(),
                client_jwks: assertion::JwksCache::new(256),
            }),
        }
    }

    /// Verifies a compact JWT and returns its claims.
    ///
    /// A token that passed is remembered (keyed by its SHA-256) until it expires, so a client's
    /// next requests cost a hash and a map lookup (about a microsecond) instead of a signature
    /// check (tens to hundreds of microseconds): this is what keeps authentication under 10% of
    /// a 0.2 ms read. A remembered token's `exp` is still checked on every use.
    pub async fn verify(&self, token: &str) -> Result<Arc<Map<String, Value>>, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        let inner = &*self.inner;
        let now = unix_now();
        let digest = cache::digest(token);
        if let Some(claims) = inner.cache.get(&digest, now) {
            inner.revoked.check(&claims)?;
            return Ok(claims);
        }

        let jws = Jws::parse(token)?;
        let iss = match jws.claims.get("iss") {
            Some(Value::String(iss)) => iss.as_str(),
            Some(_) => return Err(TokenError::InvalidClaim("iss")),
            None => return Err(TokenError::MissingClaim("iss")),
        };
        let own = self.own_keys();
        let key = if iss == inner.own_issuer && !own.is_empty() {
            select_key(&own, jws.kid.as_deref())
                .cloned()
                .ok_or(TokenError::UnknownKey)?
        } else {
            match inner.external.get(iss) {
                Some(issuer) => issuer.key(jws.kid.as_deref(), &inner.http).await?,
                None => return Err(TokenError::UnknownIssuer),
            }
        };
        if !key.algs.contains(&jws.alg) {
            return Err(TokenError::AlgorithmMismatch);
        }
        match jsonwebtoken::crypto::verify(jws.signature, jws.signing_input, &key.key, jws.alg) {
            Ok(true) => {}
            _ => return Err(TokenError::BadSignature),
        }

        let exp = check_claims(&jws.claims, &inner.audience, now, inner.leeway)?;
        inner.revoked.check(&jws.claims)?;
        let claims = Arc::new(jws.claims);
        let until = cache::accepted_until(exp, inner.leeway);
        inner
            .cache
            .insert(digest, Arc::clone(&claims), Some(until), now);
        Ok(claims)
    }
}

impl Verifier {
    /// Replaces the server's own keys (after a rotation): tokens signed by a key no longer in
    /// `keys` are refused from now on unless already verified.
    pub fn set_own_keys(&self, keys: &[SigningKey]) {
        let keys = Arc::new(keys.iter().map(SigningKey::verify_key).collect());
        *self
            .inner
            .own_keys
            .write()
            .unwrap_or_else(PoisonError::into_inner) = keys;
    }

    fn own_keys(&self) -> Arc<Vec<Arc<VerifyKey>>> {
        self.inner
            .own_keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Refuses the token `jti` from now on, until its `exp`.
    pub fn revoke(&self, jti: &str, exp: i64) {
        self.inner.revoked.add(jti, exp, unix_now());
    }

    /// Replaces the whole revocation list (at start, and after the notification channel was
    /// lost, when revocations may have been missed).
    pub fn set_revoked(&self, revoked: impl IntoIterator<Item = (String, i64)>) {
        self.inner.revoked.replace(revoked, unix_now());
    }

    /// Verifies a token the way [`Verifier::verify`] does, but only if this server issued it
    /// (its `iss` is the server's own): for introspection and revocation, which answer about
    /// the server's own tokens only.
    pub async fn verify_own(&self, token: &str) -> Result<Arc<Map<String, Value>>, TokenError> {
        let claims = self.verify(token).await?;
        if claims.get("iss").and_then(Value::as_str) != Some(self.inner.own_issuer.as_str()) {
            return Err(TokenError::UnknownIssuer);
        }
        Ok(claims)
    }

    /// The claims of a token signed by one of the server's own keys, checked for signature
    /// only: expired, not-yet-valid and revoked tokens pass. Revocation uses it, since
    /// revoking an expired token must succeed silently.
    pub fn own_signed_claims(&self, token: &str) -> Option<Map<String, Value>> {
        if token.len() > MAX_TOKEN_LEN {
            return None;
        }
        let jws = Jws::parse(token).ok()?;
        if jws.claims.get("iss").and_then(Value::as_str) != Some(self.inner.own_issuer.as_str()) {
            return None;
        }
        let own = self.own_keys();
        let key = select_key(&own, jws.kid.as_deref())?;
        if !key.algs.contains(&jws.alg) {
            return None;
        }
        match jsonwebtoken::crypto::verify(jws.signature, jws.signing_input, &key.key, jws.alg) {
            Ok(true) => Some(jws.claims),
            _ => None,
        }
    }
}

/// The `iss` a token claims, read without verifying anything: only to choose whose keys to
/// verify it with (a client assertion names its client this way).
pub fn unverified_issuer(token: &str) -> Option<String> {
    if token.len() > MAX_TOKEN_LEN {
        return None;
    }
    let jws = Jws::parse(token).ok()?;
    jws.claims.get("iss")?.as_str().map(str::to_string)
}

/// A compact JWS taken apart; nothing in it is trusted yet.
struct Jws<'a> {
    alg: Algorithm,
    kid: Option<String>,
    claims: Map<String, Value>,
    /// `header.payload`, the bytes the signature covers.
    signing_input: &'a [u8],
    /// The base64url signature.
    signature: &'a str,
}

impl<'a> Jws<'a> {
    fn parse(token: &'a str) -> Result<Jws<'a>, TokenError> {
        let mut parts = token.splitn(4, '.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let signing_input = &token.as_bytes()[..header.len() + 1 + payload.len()];
        let header = decode_object(header)?;
        let alg = match header.get("alg") {
            Some(Value::String(alg)) => accepted_algorithm(alg)
                .ok_or_else(|| TokenError::UnsupportedAlgorithm(printable(alg)))?,
            _ => return Err(TokenError::Malformed),
        };
        // RFC 7515 §4.1.11: a `crit` extension this server does not understand must be refused,
        // and it understands none.
        if header.contains_key("crit") {
            return Err(TokenError::Malformed);
        }
        let kid = match header.get("kid") {
            Some(Value::String(kid)) => Some(kid.clone()),
            None => None,
            Some(_) => return Err(TokenError::Malformed),
        };
        let claims = decode_object(payload)?;
        Ok(Jws {
            alg,
            kid,
            claims,
            signing_input,
            signature,
        })
    }
}

/// Decodes a base64url part (no padding) holding a JSON object.
fn decode_object(part: &str) -> Result<Map<String, Value>, TokenError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| TokenError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)
}

/// The algorithms this server accepts. Anything else (`none`, HMAC, RSA-PSS, EdDSA, typos) is
/// refused before a key is looked at.
fn accepted_algorithm(alg: &str) -> Option<Algorithm> {
    match alg {
        "RS256" => Some(Algorithm::RS256),
        "RS384" => Some(Algorithm::RS384),
        "ES256" => Some(Algorithm::ES256),
        "ES384" => Some(Algorithm::ES384),
        _ => None,
    }
}

/// A client-supplied string made safe to put in an error message: printable ASCII, short.
fn printable(s: &str) -> String {
    s.chars()
        .take(32)
        .map(|c| if c.is_ascii_graphic() { c } else { '?' })
        .collect()
}

/// Checks `aud`, `exp` and `nbf` of signature-verified claims; returns `exp`.
fn check_claims(
    claims: &Map<String, Value>,
    audience: &str,
    now: i64,
    leeway: i64,
) -> Result<i64, TokenError> {
    let aud_ok = match claims.get("aud") {
        Some(Value::String(aud)) => aud == audience,
        Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(audience)),
        Some(_) => return Err(TokenError::InvalidClaim("aud")),
        None => return Err(TokenError::MissingClaim("aud")),
    };
    if !aud_ok {
        return Err(TokenError::WrongAudience);
    }
    let exp = match claims.get("exp") {
        Some(exp) => numeric_date(exp).ok_or(TokenError::InvalidClaim("exp"))?,
        None => return Err(TokenError::MissingClaim("exp")),
    };
    if now > exp.saturating_add(leeway) {
        return Err(TokenError::Expired);
    }
    if let Some(nbf) = claims.get("nbf") {
        let nbf = numeric_date(nbf).ok_or(TokenError::InvalidClaim("nbf"))?;
        if nbf > now.saturating_add(leeway) {
            return Err(TokenError::NotYetValid);
        }
    }
    Ok(exp)
}

/// The `exp` of claims [`Verifier::verify`] returned, as whole seconds (always there: a token
/// without one is refused); what caches of anything derived from the token expire with.
pub fn expiry(claims: &Map<String, Value>) -> Option<i64> {
    claims.get("exp").and_then(numeric_date)
}

/// A JWT NumericDate (seconds since the epoch, possibly fractional) as whole seconds.
fn numeric_date(value: &Value) -> Option<i64> {
    let Value::Number(n) = value else {
        return None;
    };
    if let Some(i) = n.as_i64() {
        return Some(i);
    }
    if n.as_u64().is_some() {
        return Some(i64::MAX);
    }
    // `as` saturates; NaN cannot come out of JSON.
    n.as_f64()
        .filter(|f| f.is_finite())
        .map(|f| f.floor() as i64)
}
