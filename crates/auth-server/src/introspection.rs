//! `POST /auth/introspect` (RFC 7662) and `POST /auth/revoke` (RFC 7009).
//!
//! Introspection answers confidential clients (resource servers, point-of-care systems) about
//! this server's own access tokens: `active` and, when active, what the token carries. A token
//! that is expired, revoked, malformed or not this server's is simply `{"active": false}`.
//!
//! Revocation takes a client's own access token out of use on every server process at once: the
//! `jti` goes into the database and a notification tells the other processes. Revoking a token
//! that is unknown, expired or already revoked succeeds (RFC 7009 §2.2); revoking another
//! client's token is refused.

use authz::auth_events::AuthStep;
use serde_json::{json, Map, Value};

use crate::client_auth::Method;
use crate::error::OAuthError;
use crate::form::Form;
use crate::{AuthServer, EndpointRequest, Reply};

/// The claims an introspection answer copies from an active token.
const INTROSPECTED: [&str; 11] = [
    "scope",
    "client_id",
    "sub",
    "exp",
    "iat",
    "nbf",
    "iss",
    "aud",
    "jti",
    "patient",
    "fhirUser",
];

impl AuthServer {
    /// The introspection endpoint.
    pub async fn introspect(&self, req: &EndpointRequest) -> Reply {
        let mut claimed = None;
        let result = async {
            let form = Form::parse(&req.body)?;
            let who = self
                .authenticate_client(&form, req.authorization.as_deref(), &mut claimed)
                .await?;
            if who.method == Method::None {
                return Err(OAuthError::invalid_client(
                    "introspection is for confidential clients",
                ));
            }
            let token = form.require("token")?;
            Ok(match self.verifier().verify_own(token).await {
                Ok(claims) => active(&claims),
                Err(_) => json!({"active": false}),
            })
        }
        .await;
        // Answers are not audited (a resource server asks about every request); refusals are.
        let events = match &result {
            Err(err) => vec![self.event(req, AuthStep::Refused, err.code.status(), |e| {
                e.client_id = claimed.clone();
                e.description = Some(format!("introspection: {err}"));
            })],
            Ok(_) => Vec::new(),
        };
        Reply { result, events }
    }

    /// The revocation endpoint.
    pub async fn revoke(&self, req: &EndpointRequest) -> Reply {
        let mut claimed = None;
        let mut revoked: Option<Map<String, Value>> = None;
        let mut refresh_revoked = false;
        let result = async {
            let form = Form::parse(&req.body)?;
            let who = self
                .authenticate_client(&form, req.authorization.as_deref(), &mut claimed)
                .await?;
            let token = form.require("token")?;
            let Some(claims) = self.verifier().own_signed_claims(token) else {
                // A refresh token: its family goes, with the access tokens it issued.
                let store = self.store().clone();
                let hash = crate::secrets::digest(token);
                if let Some(family) =
                    crate::blocking(move || store.refresh_family_of(&hash)).await?
                {
                    let store = self.store().clone();
                    let client = who.client.id.clone();
                    let f = family.clone();
                    match crate::blocking(move || store.revoke_refresh_family(&f, Some(&client)))
                        .await?
                    {
                        Some((_, issued)) => {
                            self.revoke_issued(&issued, None).await;
                            refresh_revoked = true;
                        }
                        None => {
                            return Err(OAuthError::unauthorized_client(
                                "the token was not issued to this client",
                            ))
                        }
                    }
                }
                return Ok(json!({}));
            };
            if claims.get("client_id").and_then(Value::as_str) != Some(who.client.id.as_str()) {
                return Err(OAuthError::unauthorized_client(
                    "the token was not issued to this client",
                ));
            }
            let (Some(jti), Some(exp)) = (
                claims
                    .get("jti")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                authz::token::expiry(&claims),
            ) else {
                return Ok(json!({}));
            };
            let store = self.store().clone();
            let key = jti.clone();
            crate::blocking(move || store.revoke_token(&key, exp)).await?;
            self.verifier().revoke(&jti, exp);
            revoked = Some(claims);
            Ok(json!({}))
        }
        .await;
        let mut events = Vec::new();
        match (&result, &revoked) {
            (Ok(_), Some(claims)) => {
                events.push(self.event(req, AuthStep::TokenRevoked, 200, |e| {
                    e.client_id = claimed.clone();
                    e.user = text(claims, "sub");
                    e.role = text(claims, "role");
                    e.org = text(claims, "org");
                    e.patient = text(claims, "patient");
                }))
            }
            (Err(err), _) => {
                events.push(self.event(req, AuthStep::Refused, err.code.status(), |e| {
                    e.client_id = claimed.clone();
                    e.description = Some(format!("revocation: {err}"));
                }))
            }
            (Ok(_), None) if refresh_revoked => {
                events.push(self.event(req, AuthStep::TokenRevoked, 200, |e| {
                    e.client_id = claimed.clone();
                    e.description = Some("refresh token family revoked".into());
                }))
            }
            _ => {}
        }
        Reply { result, events }
    }
}

fn text(claims: &Map<String, Value>, name: &str) -> Option<String> {
    claims.get(name).and_then(Value::as_str).map(str::to_string)
}

/// The answer for an active token.
fn active(claims: &Map<String, Value>) -> Value {
    let mut out = Map::new();
    out.insert("active".into(), json!(true));
    out.insert("token_type".into(), json!("Bearer"));
    for name in INTROSPECTED {
        if let Some(v) = claims.get(name) {
            out.insert(name.into(), v.clone());
        }
    }
    Value::Object(out)
}
