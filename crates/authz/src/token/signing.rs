//! The server's own ES256 key: made once, kept in a PKCS#8 PEM file, used to sign the tokens the
//! server issues and published as a JWK.

use std::fs;
use std::io::{ErrorKind, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use p256::elliptic_curve::zeroize::Zeroizing;
use p256::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _, LineEnding};
use rand_core::{OsRng, RngCore as _};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use super::{TokenError, VerifyKey};

/// The server's own signing key (ES256, P-256).
#[derive(Clone)]
pub struct SigningKey {
    inner: Arc<Keys>,
}

struct Keys {
    /// PKCS#8 DER of the private key, as jsonwebtoken signs with it (zeroized on drop).
    encoding: EncodingKey,
    /// PKCS#8 PEM of the private key, as the key table stores it (zeroized on drop).
    pem: Zeroizing<String>,
    verify: Arc<VerifyKey>,
    kid: String,
    /// Base64url public point coordinates.
    x: String,
    y: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.inner.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Loads a PKCS#8 PEM private key from `path`, or creates one there (mode 0600, parent dirs
    /// created) when the file does not exist.
    pub fn load_or_create(path: &Path) -> Result<SigningKey, TokenError> {
        match fs::read_to_string(path) {
            Ok(pem) => Self::from_pem_file(&pem, path),
            Err(e) if e.kind() == ErrorKind::NotFound => Self::create(path),
            Err(e) => Err(key_file(path, "cannot be read", e)),
        }
    }

    /// Reads a PKCS#8 PEM P-256 private key.
    pub fn from_pem(pem: &str) -> Result<SigningKey, TokenError> {
        let secret = p256::ecdsa::SigningKey::from_pkcs8_pem(pem)
            .map_err(|_| TokenError::KeyFile("not a PKCS#8 PEM P-256 private key".into()))?;
        Self::from_p256(&secret)
    }

    /// The private key as PKCS#8 PEM, to store it.
    pub fn to_pem(&self) -> &str {
        &self.inner.pem
    }

    /// The JWS algorithm this key signs with.
    pub fn algorithm(&self) -> &'static str {
        "ES256"
    }

    /// A fresh key.
    pub fn generate() -> SigningKey {
        Self::from_p256(&p256::ecdsa::SigningKey::random(&mut OsRng))
            .expect("a freshly generated P-256 key encodes")
    }

    /// The key id: the RFC 7638 JWK thumbprint (base64url SHA-256).
    pub fn kid(&self) -> &str {
        &self.inner.kid
    }

    /// Signs `claims` (a JSON object) as a compact JWS with header {alg: ES256, typ: JWT, kid}.
    pub fn sign(&self, claims: &Value) -> Result<String, TokenError> {
        if !claims.is_object() {
            return Err(TokenError::Signing(
                "the claims are not a JSON object".into(),
            ));
        }
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.inner.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.inner.encoding)
            .map_err(|e| TokenError::Signing(e.to_string()))
    }

    /// The public key as a JWK (kty EC, crv P-256, x, y, kid, use sig, alg ES256), for a JWKS
    /// document.
    pub fn public_jwk(&self) -> Value {
        json!({
            "kty": "EC",
            "crv": "P-256",
            "x": self.inner.x,
            "y": self.inner.y,
            "kid": self.inner.kid,
            "use": "sig",
            "alg": "ES256",
        })
    }

    /// The public half, as the verifier holds it.
    pub(super) fn verify_key(&self) -> Arc<VerifyKey> {
        Arc::clone(&self.inner.verify)
    }

    /// The private key as jsonwebtoken holds it (tests sign hand-made headers with it).
    #[cfg(test)]
    pub(super) fn encoding_key(&self) -> EncodingKey {
        self.inner.encoding.clone()
    }

    fn from_pem_file(pem: &str, path: &Path) -> Result<SigningKey, TokenError> {
        warn_if_readable_by_others(path);
        let secret = p256::ecdsa::SigningKey::from_pkcs8_pem(pem).map_err(|_| {
            TokenError::KeyFile(format!(
                "{} is not a PKCS#8 PEM P-256 private key",
                path.display()
            ))
        })?;
        Self::from_p256(&secret)
    }

    /// Makes a key and writes it to `path` without ever exposing a partly written file there:
    /// the PEM goes to a private temporary file that is then hard-linked into place, which fails
    /// if another process created the key first (its key is then loaded instead).
    fn create(path: &Path) -> Result<SigningKey, TokenError> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                fs::create_dir_all(dir)
                    .map_err(|e| key_file(dir, "directory cannot be created", e))?;
            }
        }
        let secret = p256::ecdsa::SigningKey::random(&mut OsRng);
        let pem = secret
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| TokenError::KeyFile(format!("cannot encode a new key: {e}")))?;
        let tmp = temporary_path(path);
        let written = write_private(&tmp, pem.as_bytes())
            .map_err(|e| key_file(&tmp, "cannot be written", e))
            .and_then(|()| match fs::hard_link(&tmp, path) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(false),
                Err(e) => Err(key_file(path, "cannot be created", e)),
            });
        let _ = fs::remove_file(&tmp);
        if written? {
            Self::from_p256(&secret)
        } else {
            Self::load_or_create(path)
        }
    }

    fn from_p256(secret: &p256::ecdsa::SigningKey) -> Result<SigningKey, TokenError> {
        let der = secret
            .to_pkcs8_der()
            .map_err(|e| TokenError::KeyFile(format!("cannot encode the key: {e}")))?;
        let pem = secret
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| TokenError::KeyFile(format!("cannot encode the key: {e}")))?;
        let point = secret.verifying_key().to_encoded_point(false);
        let (Some(x), Some(y)) = (point.x(), point.y()) else {
            return Err(TokenError::KeyFile("the public key is not a point".into()));
        };
        let x = URL_SAFE_NO_PAD.encode(x);
        let y = URL_SAFE_NO_PAD.encode(y);
        // RFC 7638 §3.2: the required members only, in lexicographic order, no whitespace.
        let thumbprint_input = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(thumbprint_input.as_bytes()));
        let decoding = DecodingKey::from_ec_components(&x, &y)
            .map_err(|e| TokenError::KeyFile(format!("cannot use the public key: {e}")))?;
        Ok(SigningKey {
            inner: Arc::new(Keys {
                encoding: EncodingKey::from_ec_der(der.as_bytes()),
                pem,
                verify: Arc::new(VerifyKey {
                    kid: Some(kid.clone()),
                    algs: vec![Algorithm::ES256],
                    key: decoding,
                }),
                kid,
                x,
                y,
            }),
        })
    }
}

fn key_file(path: &Path, what: &str, e: std::io::Error) -> TokenError {
    TokenError::KeyFile(format!("{} {what}: {e}", path.display()))
}

/// A unique name beside `path`, so the final hard link stays on one file system.
fn temporary_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "key".into(), |n| n.to_string_lossy());
    path.with_file_name(format!(".{name}.{:016x}.tmp", OsRng.next_u64()))
}

/// Writes a new file readable by its owner only, and flushes it to disk.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    if let Ok(meta) = fs::metadata(path) {
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                "the token signing key is readable by other users; it should be mode 0600"
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}
