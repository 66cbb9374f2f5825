//! The client registry: what a registered client is, how a registration is checked, and client
//! secrets (generated here, shown once, stored as a salted SHA-256).
//!
//! Secrets are 256 random bits made by the server, never chosen by people, so a salted SHA-256
//! is as strong as a slow password hash would be: there is no dictionary to search.

use authz::{Policy, Scope};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand_core::{OsRng, RngCore as _};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use store::ClientRecord;
use subtle::ConstantTimeEq as _;

/// How a client authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientKind {
    /// A browser or native app that keeps no secret (`token_endpoint_auth_method: none`).
    Public,
    /// A client with a shared secret (`client_secret_basic`).
    ConfidentialSymmetric,
    /// A client with its own key pair (`private_key_jwt`).
    ConfidentialAsymmetric,
}

impl ClientKind {
    /// The kind as stored and written in client files.
    pub fn as_str(self) -> &'static str {
        match self {
            ClientKind::Public => "public",
            ClientKind::ConfidentialSymmetric => "confidential-symmetric",
            ClientKind::ConfidentialAsymmetric => "confidential-asymmetric",
        }
    }

    /// The kind named `s`.
    pub fn parse(s: &str) -> Option<ClientKind> {
        [
            ClientKind::Public,
            ClientKind::ConfidentialSymmetric,
            ClientKind::ConfidentialAsymmetric,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// A registration as an operator writes it (the clients file, `invicta client add`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSpec {
    /// `client_id`: 1 to 128 letters, digits, `.`, `_`, `-`.
    pub id: String,
    /// Name shown to users on the consent screen.
    pub name: String,
    /// `public`, `confidential-symmetric` or `confidential-asymmetric`.
    pub kind: String,
    /// Redirect URIs (exact match): https, or http on a loopback host.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// The most the client may be granted, space-separated.
    pub scope: String,
    /// The app's launch URL (for EHR launch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_url: Option<String>,
    /// The client's public keys (asymmetric clients), a JWK set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<serde_json::Value>,
    /// Where the client publishes its JWK set (asymmetric clients).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_url: Option<String>,
    /// A secret hash made by `invicta client add` (symmetric clients in a clients file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_hash: Option<String>,
    /// Care-record role of the client's `client_credentials` tokens (e.g. `feed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// ODS code of the organisation running the client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
}

/// A registered client, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Client {
    /// `client_id`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// How it authenticates.
    pub kind: ClientKind,
    /// Salted hash of its secret (symmetric clients).
    pub secret_hash: Option<String>,
    /// Its JWK set as JSON text (asymmetric clients).
    pub jwks: Option<String>,
    /// Its JWK set URL (asymmetric clients).
    pub jwks_url: Option<String>,
    /// Redirect URIs.
    pub redirect_uris: Vec<String>,
    /// The most it may be granted, as written.
    pub scope: String,
    /// The same, parsed.
    pub scopes: Vec<Scope>,
    /// Launch URL.
    pub launch_url: Option<String>,
    /// Role of its backend tokens.
    pub role: Option<String>,
    /// Its organisation.
    pub org: Option<String>,
}

impl Client {
    /// Checks a registration against the rules and the role policy. A symmetric client with no
    /// `secret_hash` gets a new secret, returned beside it (shown once, never stored).
    pub fn register(spec: ClientSpec, policy: &Policy) -> Result<(Client, Option<String>), String> {
        let id = spec.id.trim().to_string();
        if id.is_empty()
            || id.len() > 128
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            return Err(format!(
                "client id '{}' must be 1 to 128 letters, digits, '.', '_' or '-'",
                spec.id
            ));
        }
        let name = spec.name.trim().to_string();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(format!("client {id}: name must be 1 to 200 characters"));
        }
        let kind = ClientKind::parse(&spec.kind).ok_or_else(|| {
            format!(
                "client {id}: kind '{}' is not public, confidential-symmetric or confidential-asymmetric",
                spec.kind
            )
        })?;
        for uri in &spec.redirect_uris {
            check_url(uri, "redirect URI").map_err(|e| format!("client {id}: {e}"))?;
        }
        if let Some(uri) = &spec.launch_url {
            check_url(uri, "launch URL").map_err(|e| format!("client {id}: {e}"))?;
        }
        let scopes = authz::parse_scopes(&spec.scope).map_err(|e| format!("client {id}: {e}"))?;
        if scopes.is_empty() {
            return Err(format!("client {id}: no scopes"));
        }
        let system = scopes
            .iter()
            .any(|s| matches!(s, Scope::Resource(r) if r.context == authz::Context::System));
        if let Some(role) = &spec.role {
            if policy.role(role).is_none() {
                return Err(format!("client {id}: '{role}' is not a care-record role"));
            }
        }
        if system {
            if kind != ClientKind::ConfidentialAsymmetric {
                return Err(format!(
                    "client {id}: system/ scopes are for backend services, which authenticate with a key pair (confidential-asymmetric)"
                ));
            }
            if spec.role.is_none() {
                return Err(format!(
                    "client {id}: a backend service needs a role for its tokens (e.g. feed)"
                ));
            }
        }
        if let Some(org) = &spec.org {
            if org.is_empty() || org.len() > 16 || !org.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(format!("client {id}: '{org}' is not an ODS code"));
            }
        }
        let jwks = spec.jwks.as_ref().map(|j| j.to_string());
        let mut secret = None;
        let mut secret_hash = None;
        match kind {
            ClientKind::Public => {
                if jwks.is_some() || spec.jwks_url.is_some() || spec.secret_hash.is_some() {
                    return Err(format!(
                        "client {id}: a public client has no secret or keys"
                    ));
                }
            }
            ClientKind::ConfidentialSymmetric => {
                if jwks.is_some() || spec.jwks_url.is_some() {
                    return Err(format!(
                        "client {id}: a symmetric client has a secret, not keys"
                    ));
                }
                match spec.secret_hash {
                    Some(h) if parse_hash(&h).is_some() => secret_hash = Some(h),
                    Some(_) => {
                        return Err(format!(
                            "client {id}: secret_hash is not one `invicta client add` made"
                        ))
                    }
                    None => {
                        let s = new_secret();
                        secret_hash = Some(hash_secret(&s));
                        secret = Some(s);
                    }
                }
            }
            ClientKind::ConfidentialAsymmetric => {
                if spec.secret_hash.is_some() {
                    return Err(format!(
                        "client {id}: an asymmetric client has keys, not a secret"
                    ));
                }
                match (&jwks, &spec.jwks_url) {
                    (Some(j), None) => {
                        if !authz::token::usable_client_jwks(j) {
                            return Err(format!(
                                "client {id}: jwks has no RSA (2048 bits or more) or P-384 signature key"
                            ));
                        }
                    }
                    (None, Some(u)) => {
                        check_url(u, "JWKS URL").map_err(|e| format!("client {id}: {e}"))?
                    }
                    _ => {
                        return Err(format!(
                            "client {id}: an asymmetric client needs jwks or jwks_url (one of them)"
                        ))
                    }
                }
            }
        }
        Ok((
            Client {
                id,
                name,
                kind,
                secret_hash,
                jwks,
                jwks_url: spec.jwks_url,
                redirect_uris: spec.redirect_uris,
                scope: spec.scope,
                scopes,
                launch_url: spec.launch_url,
                role: spec.role,
                org: spec.org,
            },
            secret,
        ))
    }

    /// The client a stored row describes. A row that no longer passes (the policy changed)
    /// is reported rather than used.
    pub fn from_record(r: ClientRecord) -> Result<Client, String> {
        let kind = ClientKind::parse(&r.kind)
            .ok_or_else(|| format!("client {}: stored kind '{}' is unknown", r.id, r.kind))?;
        let scopes = authz::parse_scopes(&r.scopes).map_err(|e| format!("client {}: {e}", r.id))?;
        Ok(Client {
            id: r.id,
            name: r.name,
            kind,
            secret_hash: r.secret_hash,
            jwks: r.jwks,
            jwks_url: r.jwks_url,
            redirect_uris: r.redirect_uris,
            scope: r.scopes,
            scopes,
            launch_url: r.launch_url,
            role: r.backend_role,
            org: r.org,
        })
    }

    /// The row to store.
    pub fn to_record(&self) -> ClientRecord {
        ClientRecord {
            id: self.id.clone(),
            name: self.name.clone(),
            kind: self.kind.as_str().into(),
            secret_hash: self.secret_hash.clone(),
            jwks: self.jwks.clone(),
            jwks_url: self.jwks_url.clone(),
            redirect_uris: self.redirect_uris.clone(),
            scopes: self.scope.clone(),
            launch_url: self.launch_url.clone(),
            backend_role: self.role.clone(),
            org: self.org.clone(),
        }
    }

    /// The registration as an operator would write it (no secret: only its hash).
    pub fn to_spec(&self) -> ClientSpec {
        ClientSpec {
            id: self.id.clone(),
            name: self.name.clone(),
            kind: self.kind.as_str().into(),
            redirect_uris: self.redirect_uris.clone(),
            scope: self.scope.clone(),
            launch_url: self.launch_url.clone(),
            jwks: self
                .jwks
                .as_deref()
                .and_then(|j| serde_json::from_str(j).ok()),
            jwks_url: self.jwks_url.clone(),
            secret_hash: self.secret_hash.clone(),
            role: self.role.clone(),
            org: self.org.clone(),
        }
    }

    /// True when `secret` is this client's.
    pub fn secret_matches(&self, secret: &str) -> bool {
        self.secret_hash
            .as_deref()
            .and_then(parse_hash)
            .is_some_and(|(salt, hash)| {
                let mut h = Sha256::new();
                h.update(&salt);
                h.update(secret.as_bytes());
                bool::from(h.finalize()[..].ct_eq(&hash[..]))
            })
    }
}

/// Reads a clients file: a JSON array of registrations.
pub fn read_clients_file(text: &str, policy: &Policy) -> Result<Vec<Client>, String> {
    let specs: Vec<ClientSpec> =
        serde_json::from_str(text).map_err(|e| format!("not a JSON array of clients: {e}"))?;
    let mut out: Vec<Client> = Vec::new();
    for spec in specs {
        let (client, secret) = Client::register(spec, policy)?;
        if secret.is_some() {
            return Err(format!(
                "client {}: a symmetric client in a clients file needs a secret_hash (made by `invicta client add`)",
                client.id
            ));
        }
        if out.iter().any(|c| c.id == client.id) {
            return Err(format!("client {} is listed twice", client.id));
        }
        out.push(client);
    }
    Ok(out)
}

/// A URL a client registers: absolute, https (or http on a loopback host, for development),
/// without a fragment (RFC 6749 §3.1.2) or user information.
fn check_url(text: &str, what: &str) -> Result<(), String> {
    let url = url::Url::parse(text).map_err(|e| format!("{what} '{text}' is not a URL: {e}"))?;
    if url.fragment().is_some() {
        return Err(format!("{what} '{text}' has a fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("{what} '{text}' carries user information"));
    }
    let loopback = matches!(
        url.host(),
        Some(url::Host::Ipv4(ip)) if ip.is_loopback()
    ) || matches!(url.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback())
        || url.host_str() == Some("localhost");
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(format!(
            "{what} '{text}' must be https (http only on a loopback host)"
        )),
    }
}

/// A new client secret: 256 random bits, base64url.
fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `sha256$<salt>$<hash>`, both base64url.
fn hash_secret(secret: &str) -> String {
    let mut salt = [0u8; 16];
    OsRng.fill_bytes(&mut salt);
    let mut h = Sha256::new();
    h.update(salt);
    h.update(secret.as_bytes());
    format!(
        "sha256${}${}",
        URL_SAFE_NO_PAD.encode(salt),
        URL_SAFE_NO_PAD.encode(h.finalize())
    )
}

fn parse_hash(stored: &str) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut parts = stored.split('$');
    let (Some("sha256"), Some(salt), Some(hash), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let salt = URL_SAFE_NO_PAD.decode(salt).ok()?;
    let hash = URL_SAFE_NO_PAD.decode(hash).ok()?;
    (salt.len() >= 16 && hash.len() == 32).then_some((salt, hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kind: &str, scope: &str) -> ClientSpec {
        ClientSpec {
            id: "app-1".into(),
            name: "An app".into(),
            kind: kind.into(),
            redirect_uris: vec!["http://127.0.0.1:9000/cb".into()],
            scope: scope.into(),
            ..ClientSpec::default()
        }
    }

    #[test]
    fn symmetric_clients_get_a_secret_that_only_matches_itself() {
        let policy = Policy::default_policy();
        let (client, secret) =
            Client::register(spec("confidential-symmetric", "user/*.rs"), &policy).unwrap();
        let secret = secret.unwrap();
        assert!(client.secret_matches(&secret));
        assert!(!client.secret_matches("guess"));
        assert!(!client.secret_matches(&secret[1..]));
        assert!(!client.secret_hash.as_ref().unwrap().contains(&secret));
        let again = Client::from_record(client.to_record()).unwrap();
        assert_eq!(again, client);
    }

    #[test]
    fn registrations_that_break_a_rule_are_refused() {
        let policy = Policy::default_policy();
        let bad = [
            ClientSpec {
                id: "bad id".into(),
                ..spec("public", "patient/*.rs")
            },
            ClientSpec {
                kind: "trusted".into(),
                ..spec("public", "patient/*.rs")
            },
            ClientSpec {
                redirect_uris: vec!["http://app.example/cb".into()],
                ..spec("public", "patient/*.rs")
            },
            ClientSpec {
                redirect_uris: vec!["https://app.example/cb#x".into()],
                ..spec("public", "patient/*.rs")
            },
            ClientSpec {
                redirect_uris: vec!["javascript:alert(1)".into()],
                ..spec("public", "patient/*.rs")
            },
            spec("public", "patient/Nonsense.rs"),
            spec("public", "system/*.rs"),
            spec("confidential-asymmetric", "system/*.rs"),
            ClientSpec {
                role: Some("wizard".into()),
                ..spec("public", "user/*.rs")
            },
            ClientSpec {
                jwks: Some(serde_json::json!({"keys": []})),
                ..spec("confidential-asymmetric", "user/*.rs")
            },
            ClientSpec {
                secret_hash: Some("plain".into()),
                ..spec("confidential-symmetric", "user/*.rs")
            },
        ];
        for s in bad {
            assert!(Client::register(s.clone(), &policy).is_err(), "{s:?}");
        }
        let ok = ClientSpec {
            redirect_uris: vec![
                "https://app.example/cb".into(),
                "http://localhost:3000/cb".into(),
            ],
            ..spec("public", "openid fhirUser launch patient/*.rs")
        };
        assert!(Client::register(ok, &policy).is_ok());
    }
}
