//! Who is calling the token, introspection and revocation endpoints: a client authenticated by a
//! signed assertion (`private_key_jwt`), by HTTP Basic with its secret (`client_secret_basic`),
//! or, for a public client, only named by `client_id` (`none`). Exactly one way per request.

use authz::token::ClientKeys;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::clients::{Client, ClientKind};
use crate::error::OAuthError;
use crate::form::{printable, Form};
use crate::AuthServer;

/// The only client assertion type (RFC 7523 §2.2).
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How the client authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// A public client, named only.
    None,
    /// HTTP Basic with the client secret.
    SecretBasic,
    /// A signed client assertion.
    PrivateKeyJwt,
}

/// A client that proved who it is (or, for [`Method::None`], said who it is).
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The client.
    pub client: Client,
    /// How.
    pub method: Method,
}

impl AuthServer {
    /// Authenticates the client of a request. `claimed` is set to the client id the request
    /// names, once known, so that a refusal can still be audited against it.
    pub(crate) async fn authenticate_client(
        &self,
        form: &Form,
        authorization: Option<&str>,
        claimed: &mut Option<String>,
    ) -> Result<Authenticated, OAuthError> {
        let basic = authorization.map(str::trim).and_then(|h| {
            h.get(..6)
                .filter(|p| p.eq_ignore_ascii_case("basic "))
                .map(|_| &h[6..])
        });
        let assertion_type = form.get("client_assertion_type");
        let assertion = form.get("client_assertion");
        if basic.is_some() && (assertion_type.is_some() || assertion.is_some()) {
            return Err(OAuthError::invalid_request(
                "use one client authentication method, not several",
            ));
        }
        if assertion_type.is_some() || assertion.is_some() {
            if assertion_type != Some(JWT_BEARER) {
                return Err(OAuthError::invalid_request(format!(
                    "client_assertion_type must be {JWT_BEARER}"
                )));
            }
            let assertion = form.require("client_assertion")?;
            let id = authz::token::unverified_issuer(assertion).ok_or_else(|| {
                OAuthError::invalid_client("the client assertion is not a signed JWT with an 'iss'")
            })?;
            if form.get("client_id").is_some_and(|c| c != id) {
                return Err(OAuthError::invalid_client(
                    "client_id and the client assertion's issuer differ",
                ));
            }
            *claimed = Some(printable(&id));
            let client = self.known_client(&id).await?;
            if client.kind != ClientKind::ConfidentialAsymmetric {
                return Err(OAuthError::invalid_client(
                    "this client is not registered to authenticate with a key pair",
                ));
            }
            let keys = match (&client.jwks, &client.jwks_url) {
                (Some(j), _) => ClientKeys::Jwks(j),
                (None, Some(u)) => ClientKeys::Url(u),
                (None, None) => {
                    return Err(OAuthError::invalid_client(
                        "the client has no registered keys",
                    ))
                }
            };
            let token_url = self.settings().token_url();
            let verified = self
                .verifier()
                .verify_assertion(assertion, &client.id, keys, &token_url)
                .await
                .map_err(|e| {
                    OAuthError::invalid_client(format!(
                        "the client assertion was refused: {}",
                        e.to_string().replace("access token", "assertion")
                    ))
                })?;
            let store = self.store().clone();
            let (cid, jti, exp) = (client.id.clone(), verified.jti.clone(), verified.exp);
            let fresh = crate::blocking(move || store.use_assertion_id(&cid, &jti, exp)).await?;
            if !fresh {
                return Err(OAuthError::invalid_client(
                    "the client assertion's jti was used before (a replay)",
                ));
            }
            return Ok(Authenticated {
                client,
                method: Method::PrivateKeyJwt,
            });
        }
        if let Some(credentials) = basic {
            let refused = |d: &str| OAuthError {
                basic_challenge: true,
                ..OAuthError::invalid_client(d)
            };
            let decoded = STANDARD
                .decode(credentials.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| refused("the Basic credentials are not base64 of id:secret"))?;
            let (id, secret) = decoded
                .split_once(':')
                .ok_or_else(|| refused("the Basic credentials are not id:secret"))?;
            // RFC 6749 §2.3.1: both parts are form-urlencoded before being joined.
            let (id, secret) = (form_decode(id), form_decode(secret));
            *claimed = Some(printable(&id));
            if form.get("client_id").is_some_and(|c| c != id) {
                return Err(refused("client_id and the Basic credentials differ"));
            }
            let client = self.known_client(&id).await.map_err(|mut e| {
                e.basic_challenge = true;
                e
            })?;
            if client.kind != ClientKind::ConfidentialSymmetric || !client.secret_matches(&secret) {
                return Err(refused("the client id or secret is wrong"));
            }
            return Ok(Authenticated {
                client,
                method: Method::SecretBasic,
            });
        }
        let id = form.get("client_id").ok_or_else(|| {
            OAuthError::invalid_client(
                "the client did not identify itself (client_id, Basic or a client assertion)",
            )
        })?;
        *claimed = Some(printable(id));
        let client = self.known_client(id).await?;
        if client.kind != ClientKind::Public {
            return Err(OAuthError::invalid_client(
                "this client is confidential and must authenticate",
            ));
        }
        Ok(Authenticated {
            client,
            method: Method::None,
        })
    }

    /// A registered client, or `invalid_client`.
    pub(crate) async fn known_client(&self, id: &str) -> Result<Client, OAuthError> {
        let store = self.store().clone();
        let key = id.to_string();
        let record = crate::blocking(move || store.client(&key)).await?;
        let record =
            record.ok_or_else(|| OAuthError::invalid_client("the client is not registered"))?;
        Client::from_record(record).map_err(|e| {
            tracing::error!(error = %e, "a stored client registration is no longer valid");
            OAuthError::invalid_client("the client's registration is not usable")
        })
    }
}

fn form_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("v={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}
