//! Values handed to browsers and clients (session ids, codes, launch values, refresh tokens):
//! 256 random bits each, stored only as their SHA-256, and the consent form's anti-forgery token,
//! derived from the session it was shown in.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand_core::{OsRng, RngCore as _};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

/// A fresh random value, base64url (43 characters).
pub fn random() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The SHA-256 of a value, base64url: what the database keeps.
pub fn digest(value: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(value.as_bytes()))
}

/// The consent form's token for `request` shown in `session`: only a page rendered for that
/// session can hold it, so another site (or another user) cannot post the form for it.
pub fn consent_token(session: &str, request: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"invicta consent\0");
    h.update(session.as_bytes());
    h.update(b"\0");
    h.update(request.as_bytes());
    URL_SAFE_NO_PAD.encode(h.finalize())
}

/// Compares two tokens in constant time.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// True when `verifier` is a PKCE code verifier (RFC 7636 §4.1) whose S256 challenge is
/// `challenge`.
pub fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    well_formed && same(&digest(verifier), challenge)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_as_rfc_7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(pkce_matches(verifier, challenge));
        assert!(!pkce_matches("short", challenge));
        assert!(!pkce_matches(&verifier.replace('d', "e"), challenge));
        assert!(!pkce_matches(challenge, challenge), "plain is not S256");
        assert_ne!(consent_token("s1", "r"), consent_token("s2", "r"));
        assert_eq!(random().len(), 43);
    }
}
