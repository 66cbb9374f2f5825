//! `POST /auth/token`: the grants (`client_credentials` for SMART Backend Services here;
//! `authorization_code` and `refresh_token` in `code_grant`); every answer, issued or refused,
//! leaves an AuditEvent.

use authz::auth_events::AuthStep;
use authz::grant::{narrow, narrow_to_role, Reach};
use authz::{Context, Scope};
use serde_json::{json, Value};

use crate::client_auth::{Authenticated, Method};
use crate::error::{ErrorCode, OAuthError};
use crate::form::{printable, Form};
use crate::settings::BACKEND_TOKEN_TTL;
use crate::{AuthServer, EndpointRequest, Reply};

impl AuthServer {
    /// The token endpoint.
    pub async fn token(&self, req: &EndpointRequest) -> Reply {
        let mut claimed = None;
        let result = self.token_inner(req, &mut claimed).await;
        let event = match &result {
            Ok((issued, _)) => self.event(
                req,
                if issued.grant == "refresh_token" {
                    AuthStep::TokenRefreshed
                } else {
                    AuthStep::TokenIssued
                },
                200,
                |e| {
                    e.client_id = Some(issued.client_id.clone());
                    e.user = Some(issued.subject.clone());
                    e.role = issued.role.clone();
                    e.org = issued.org.clone();
                    e.patient = issued.patient.clone();
                    e.description = Some(format!("grant {}; scope {}", issued.grant, issued.scope));
                },
            ),
            Err(err) => self.event(req, AuthStep::Refused, err.code.status(), |e| {
                e.client_id = claimed.clone();
                e.description = Some(err.to_string());
            }),
        };
        Reply {
            result: result.map(|(_, body)| body),
            events: vec![event],
        }
    }

    async fn token_inner(
        &self,
        req: &EndpointRequest,
        claimed: &mut Option<String>,
    ) -> Result<(Issued, Value), OAuthError> {
        let form = Form::parse(&req.body)?;
        let grant = form.require("grant_type")?;
        match grant {
            "client_credentials" => {
                let who = self
                    .authenticate_client(&form, req.authorization.as_deref(), claimed)
                    .await?;
                self.client_credentials(&form, who).await
            }
            "authorization_code" | "refresh_token" => {
                let who = self
                    .authenticate_client(&form, req.authorization.as_deref(), claimed)
                    .await?;
                let (to, body) = if grant == "authorization_code" {
                    self.authorization_code(&form, &who).await?
                } else {
                    self.refresh(&form, &who).await?
                };
                Ok((
                    Issued {
                        grant: if to.refreshed {
                            "refresh_token"
                        } else {
                            "authorization_code"
                        },
                        client_id: who.client.id.clone(),
                        subject: to.subject,
                        role: Some(to.role),
                        org: to.org,
                        patient: to.patient,
                        scope: to.scope,
                    },
                    body,
                ))
            }
            other => Err(OAuthError::new(
                ErrorCode::UnsupportedGrantType,
                format!("grant_type '{}' is not supported", printable(other)),
            )),
        }
    }

    /// SMART Backend Services: a `private_key_jwt` client gets a short-lived token with
    /// `system/` scopes, narrowed to its registration and its role's ceiling.
    async fn client_credentials(
        &self,
        form: &Form,
        who: Authenticated,
    ) -> Result<(Issued, Value), OAuthError> {
        let client = who.client;
        if who.method != Method::PrivateKeyJwt {
            return Err(OAuthError::unauthorized_client(
                "client_credentials is for backend services authenticating with a client assertion (private_key_jwt)",
            ));
        }
        let role_id = client.role.clone().ok_or_else(|| {
            OAuthError::unauthorized_client("the client has no role for backend tokens")
        })?;
        let requested = form.require("scope")?;
        let parsed = authz::parse_scopes(requested)
            .map_err(|e| OAuthError::invalid_scope(printable(&e.to_string())))?;
        if let Some(bad) = parsed
            .iter()
            .find(|s| !matches!(s, Scope::Resource(r) if r.context == Context::System))
        {
            return Err(OAuthError::invalid_scope(format!(
                "a backend service asks for system/ scopes only, not '{}'",
                printable(&scope_text(bad))
            )));
        }
        let role = self.policy().role(&role_id).ok_or_else(|| {
            OAuthError::unauthorized_client("the client's role is not in the role policy")
        })?;
        let granted = narrow(requested, &client.scopes, Reach::Exact)
            .and_then(|s| narrow_to_role(&s, role, self.policy()))
            .map_err(|e| OAuthError::invalid_scope(printable(&e.to_string())))?;
        if granted.is_empty() {
            return Err(OAuthError::invalid_scope(
                "none of the requested scopes may be granted to this client",
            ));
        }
        let now = chrono::Utc::now().timestamp();
        let jti = uuid::Uuid::new_v4().to_string();
        let mut claims = json!({
            "iss": self.settings().issuer,
            "aud": self.settings().fhir_base,
            "sub": client.id,
            "client_id": client.id,
            "scope": granted,
            "jti": jti,
            "iat": now,
            "nbf": now,
            "exp": now + BACKEND_TOKEN_TTL,
        });
        claims[self.settings().role_claim.as_str()] = json!(role_id);
        if let Some(org) = &client.org {
            claims["org"] = json!(org);
        }
        let token = self.sign(&claims)?;
        Ok((
            Issued {
                grant: "client_credentials",
                client_id: client.id.clone(),
                subject: client.id.clone(),
                role: Some(role_id),
                org: client.org.clone(),
                patient: None,
                scope: granted.clone(),
            },
            json!({
                "access_token": token,
                "token_type": "bearer",
                "expires_in": BACKEND_TOKEN_TTL,
                "scope": granted,
            }),
        ))
    }
}

/// What was issued, for the audit trail.
struct Issued {
    grant: &'static str,
    client_id: String,
    subject: String,
    role: Option<String>,
    org: Option<String>,
    patient: Option<String>,
    scope: String,
}

fn scope_text(s: &Scope) -> String {
    match s {
        Scope::Other(o) => o.clone(),
        Scope::Resource(r) => authz::grant::format_scope(r, false),
    }
}
