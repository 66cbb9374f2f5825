//! External issuers: OpenID Connect discovery (`{issuer}/.well-known/openid-configuration`,
//! whose `issuer` must be the configured one exactly) and the JWKS at its `jwks_uri`, both
//! through openidconnect's reqwest client. Keys are cached per issuer and fetched again, at
//! most once per interval, when a token names a `kid` the cache lacks or the cache is old.

use std::sync::{Arc, OnceLock, PoisonError, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use openidconnect::core::{CoreJsonWebKey, CoreJsonWebKeySet, CoreProviderMetadata};
use openidconnect::{reqwest, IssuerUrl, JsonWebKeySetUrl};

use super::{select_key, TokenError, VerifyKey};

/// Connection and whole-request time limits for the identity providers.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Key sets older than this are fetched again on next use (keys an issuer withdrew stop being
/// trusted); if that fetch fails the old keys stay in use.
const MAX_KEYS_AGE: Duration = Duration::from_secs(3600);

/// RSA moduli shorter than this are not trusted.
const MIN_RSA_BITS: usize = 2048;

/// The HTTP client for discovery, built on first use.
#[derive(Default)]
pub(super) struct Http(OnceLock<Result<reqwest::Client, String>>);

impl Http {
    pub(super) fn client(&self) -> Result<&reqwest::Client, TokenError> {
        self.0
            .get_or_init(|| {
                reqwest::Client::builder()
                    // Following redirects would let a discovery document send us anywhere.
                    .redirect(reqwest::redirect::Policy::none())
                    .connect_timeout(CONNECT_TIMEOUT)
                    .timeout(REQUEST_TIMEOUT)
                    .build()
                    .map_err(|e| error_chain(&e))
            })
            .as_ref()
            .map_err(|e| TokenError::Discovery(format!("no HTTP client: {e}")))
    }
}

/// One trusted external issuer and what is known of it.
pub(super) struct Issuer {
    url: String,
    refresh_interval: Duration,
    retry_interval: Duration,
    /// The keys, once discovered; read without waiting by every verification.
    keys: RwLock<Option<Arc<KeySet>>>,
    /// Held while fetching, so that concurrent requests wait for one fetch instead of each
    /// making their own.
    fetch: tokio::sync::Mutex<FetchState>,
}

struct KeySet {
    keys: Vec<Arc<VerifyKey>>,
    fetched: Instant,
}

#[derive(Default)]
struct FetchState {
    /// Known after a successful discovery.
    jwks_uri: Option<JsonWebKeySetUrl>,
    last_attempt: Option<Instant>,
    last_error: Option<String>,
}

impl Issuer {
    pub(super) fn new(url: String, refresh_interval: Duration, retry_interval: Duration) -> Issuer {
        Issuer {
            url,
            refresh_interval,
            retry_interval,
            keys: RwLock::new(None),
            fetch: tokio::sync::Mutex::new(FetchState::default()),
        }
    }

    /// The key a token of this issuer names (see [`select_key`]), discovering the issuer or
    /// fetching its keys again when needed and allowed.
    pub(super) async fn key(
        &self,
        kid: Option<&str>,
        http: &Http,
    ) -> Result<Arc<VerifyKey>, TokenError> {
        if let Some(key) = self.fresh_key(kid) {
            return Ok(key);
        }
        let mut state = self.fetch.lock().await;
        // Another request may have fetched while this one waited.
        if let Some(key) = self.fresh_key(kid) {
            return Ok(key);
        }
        let interval = if state.jwks_uri.is_some() {
            self.refresh_interval
        } else {
            self.retry_interval
        };
        if state.last_attempt.is_none_or(|t| t.elapsed() >= interval) {
            state.last_attempt = Some(Instant::now());
            match self.fetch_keys(&mut state, http).await {
                Ok(keys) => {
                    tracing::info!(issuer = %self.url, keys = keys.len(), "fetched token signing keys");
                    state.last_error = None;
                    *self.keys.write().unwrap_or_else(PoisonError::into_inner) =
                        Some(Arc::new(KeySet {
                            keys,
                            fetched: Instant::now(),
                        }));
                }
                Err(e) => {
                    tracing::warn!(issuer = %self.url, error = %e, "cannot fetch token signing keys");
                    state.last_error = Some(e);
                }
            }
        }
        match self.snapshot() {
            Some(set) => select_key(&set.keys, kid)
                .cloned()
                .ok_or(TokenError::UnknownKey),
            None => Err(TokenError::Discovery(
                state
                    .last_error
                    .clone()
                    .unwrap_or_else(|| format!("discovery of {} failed", self.url)),
            )),
        }
    }

    fn snapshot(&self) -> Option<Arc<KeySet>> {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The named key from a key set young enough to be trusted without asking again.
    fn fresh_key(&self, kid: Option<&str>) -> Option<Arc<VerifyKey>> {
        let set = self.snapshot()?;
        if set.fetched.elapsed() >= MAX_KEYS_AGE {
            return None;
        }
        select_key(&set.keys, kid).cloned()
    }

    /// Discovers the issuer if that has not succeeded yet (which also fetches the JWKS), else
    /// fetches the JWKS again. The error is a short text fit for a client.
    async fn fetch_keys(
        &self,
        state: &mut FetchState,
        http: &Http,
    ) -> Result<Vec<Arc<VerifyKey>>, String> {
        let client = http.client().map_err(|e| e.to_string())?;
        let jwks = match &state.jwks_uri {
            Some(uri) => CoreJsonWebKeySet::fetch_async(uri, client)
                .await
                .map_err(|e| format!("fetching the keys of {}: {}", self.url, error_chain(&e)))?,
            None => {
                let issuer = IssuerUrl::new(self.url.clone())
                    .map_err(|e| format!("issuer {} is not a URL: {e}", self.url))?;
                let metadata = CoreProviderMetadata::discover_async(issuer, client)
                    .await
                    .map_err(|e| format!("discovery of {}: {}", self.url, error_chain(&e)))?;
                state.jwks_uri = Some(metadata.jwks_uri().clone());
                metadata.jwks().clone()
            }
        };
        let keys: Vec<_> = jwks
            .keys()
            .iter()
            .filter_map(verify_key)
            .map(Arc::new)
            .collect();
        if keys.len() < jwks.keys().len() {
            tracing::warn!(
                issuer = %self.url,
                ignored = jwks.keys().len() - keys.len(),
                "ignoring keys that are not RSA (2048 bits or more), P-256 or P-384 signature keys"
            );
        }
        Ok(keys)
    }
}

/// A discovered key as a verification key, or `None` when this server must not use it.
fn verify_key(key: &CoreJsonWebKey) -> Option<VerifyKey> {
    // openidconnect's JWK keeps the members that matter (kty, use, kid, alg, n, e, crv, x, y);
    // jsonwebtoken, which does the verifying, reads them back.
    let jwk: Jwk = serde_json::from_value(serde_json::to_value(key).ok()?).ok()?;
    verify_key_from_jwk(&jwk)
}

/// A JWK as a verification key: signature keys only, RSA of 2048 bits or more, EC on P-256 or
/// P-384, never symmetric; its `alg` if it has one must agree with its type and curve.
pub(super) fn verify_key_from_jwk(jwk: &Jwk) -> Option<VerifyKey> {
    if jwk
        .common
        .public_key_use
        .as_ref()
        .is_some_and(|u| *u != PublicKeyUse::Signature)
    {
        return None;
    }
    let implied: &[Algorithm] = match &jwk.algorithm {
        AlgorithmParameters::RSA(rsa) if rsa_bits(&rsa.n)? >= MIN_RSA_BITS => {
            &[Algorithm::RS256, Algorithm::RS384]
        }
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => &[Algorithm::ES256],
            EllipticCurve::P384 => &[Algorithm::ES384],
            _ => return None,
        },
        _ => return None,
    };
    let algs = match jwk.common.key_algorithm {
        None => implied.to_vec(),
        Some(declared) => {
            let alg = match declared {
                KeyAlgorithm::RS256 => Algorithm::RS256,
                KeyAlgorithm::RS384 => Algorithm::RS384,
                KeyAlgorithm::ES256 => Algorithm::ES256,
                KeyAlgorithm::ES384 => Algorithm::ES384,
                _ => return None,
            };
            if !implied.contains(&alg) {
                return None;
            }
            vec![alg]
        }
    };
    Some(VerifyKey {
        kid: jwk.common.key_id.clone(),
        algs,
        key: DecodingKey::from_jwk(jwk).ok()?,
    })
}

/// The bit length of a base64url big-endian RSA modulus.
fn rsa_bits(n: &str) -> Option<usize> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(n)
        .ok()?;
    let first = bytes.iter().position(|b| *b != 0)?;
    Some((bytes.len() - first) * 8 - bytes[first].leading_zeros() as usize)
}

/// An error and its sources on one line (reqwest puts the useful part in the sources).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
