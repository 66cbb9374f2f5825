//! The `authorization_code` and `refresh_token` grants, and the tokens a person's grant yields:
//! the access token, an ID token when `openid fhirUser` was granted, a rotating refresh token
//! with `offline_access` or `online_access`, and the launch context.

use authz::grant::{narrow, Reach};
use serde_json::{json, Value};

use crate::authorize::Grant;
use crate::client_auth::Authenticated;
use crate::error::OAuthError;
use crate::form::Form;
use crate::secrets;
use crate::signin::SESSION_TTL;
use crate::AuthServer;

/// Lifetime of a person's access token.
pub(crate) const USER_TOKEN_TTL: i64 = 3600;
/// Lifetime of an ID token.
const ID_TOKEN_TTL: i64 = 300;
/// How long an `offline_access` refresh-token family lasts.
const OFFLINE_TTL: i64 = 30 * 24 * 3600;

/// What a grant issued, for the audit trail.
pub(crate) struct IssuedTo {
    pub subject: String,
    pub role: String,
    pub org: Option<String>,
    pub patient: Option<String>,
    pub scope: String,
    pub refreshed: bool,
}

impl AuthServer {
    /// `grant_type=authorization_code`.
    pub(crate) async fn authorization_code(
        &self,
        form: &Form,
        who: &Authenticated,
    ) -> Result<(IssuedTo, Value), OAuthError> {
        let code = form.require("code")?;
        let redirect_uri = form.require("redirect_uri")?;
        let verifier = form.get("code_verifier");
        let hash = secrets::digest(code);
        let store = self.store().clone();
        let h = hash.clone();
        let spent = crate::blocking(move || store.spend_code(&h)).await?;
        let grant: Grant = match spent {
            store::Spent::Fresh(text) => serde_json::from_str(&text)
                .map_err(|_| OAuthError::invalid_grant("the code is not usable"))?,
            store::Spent::Reused { issued, family, .. } => {
                // RFC 6749 §4.1.2: a code used twice revokes what it issued.
                self.revoke_issued(&issued, family.as_deref()).await;
                return Err(OAuthError::invalid_grant(
                    "the code was used before; the tokens issued with it are revoked",
                ));
            }
            store::Spent::Unknown => {
                return Err(OAuthError::invalid_grant("the code is unknown or expired"))
            }
        };
        if grant.client_id != who.client.id {
            return Err(OAuthError::invalid_grant(
                "the code was issued to another client",
            ));
        }
        if grant.redirect_uri != redirect_uri {
            return Err(OAuthError::invalid_grant(
                "redirect_uri differs from the authorization request's",
            ));
        }
        let Some(verifier) = verifier else {
            return Err(OAuthError::invalid_grant(
                "code_verifier is required (PKCE)",
            ));
        };
        if !secrets::pkce_matches(verifier, &grant.code_challenge) {
            return Err(OAuthError::invalid_grant(
                "code_verifier does not match the code_challenge",
            ));
        }
        let (body, jti, family) = self.issue(&grant, None).await?;
        let store = self.store().clone();
        let _ = crate::blocking(move || store.code_issued(&hash, &jti, family.as_deref())).await;
        Ok((issued_to(&grant, false), body))
    }

    /// `grant_type=refresh_token`: rotates the refresh token; a spent one used again revokes
    /// its whole family and the access tokens it issued.
    pub(crate) async fn refresh(
        &self,
        form: &Form,
        who: &Authenticated,
    ) -> Result<(IssuedTo, Value), OAuthError> {
        let token = form.require("refresh_token")?;
        let store = self.store().clone();
        let hash = secrets::digest(token);
        let found = crate::blocking(move || store.spend_refresh(&hash)).await?;
        let (family, mut grant) = match found {
            store::Refresh::Fresh {
                family,
                grant,
                client_id,
            } => {
                if client_id != who.client.id {
                    return Err(OAuthError::invalid_grant(
                        "the refresh token was issued to another client",
                    ));
                }
                let grant: Grant = serde_json::from_str(&grant)
                    .map_err(|_| OAuthError::invalid_grant("the refresh token is not usable"))?;
                (family, grant)
            }
            store::Refresh::Reused { issued, family, .. } => {
                self.revoke_issued(&issued, Some(&family)).await;
                return Err(OAuthError::invalid_grant(
                    "the refresh token was used before; its whole family is revoked",
                ));
            }
            store::Refresh::Unknown => {
                return Err(OAuthError::invalid_grant(
                    "the refresh token is unknown, expired or revoked",
                ))
            }
        };
        if let Some(asked) = form.get("scope") {
            let limit = authz::parse_scopes(&grant.scope)
                .map_err(|_| OAuthError::invalid_grant("the refresh token is not usable"))?;
            let narrowed = narrow(asked, &limit, Reach::Exact)
                .map_err(|e| OAuthError::invalid_scope(crate::form::printable(&e.to_string())))?;
            if narrowed.split_whitespace().count() < asked.split_whitespace().count() {
                return Err(OAuthError::invalid_scope(
                    "a refresh may ask for the granted scopes or fewer, not more",
                ));
            }
            grant.scope = narrowed;
        }
        let (body, _, _) = self.issue(&grant, Some(&family)).await?;
        Ok((issued_to(&grant, true), body))
    }

    /// The token response for `grant`; a refresh continues `family`. Returns the body, the
    /// access token's `jti` and the refresh family, if any.
    async fn issue(
        &self,
        grant: &Grant,
        family: Option<&str>,
    ) -> Result<(Value, String, Option<String>), OAuthError> {
        let settings = self.settings();
        let now = chrono::Utc::now().timestamp();
        let jti = uuid::Uuid::new_v4().to_string();
        let person = &grant.person;
        let mut claims = json!({
            "iss": settings.issuer,
            "aud": settings.fhir_base,
            "sub": person.sub,
            "client_id": grant.client_id,
            "scope": grant.scope,
            "jti": jti,
            "iat": now,
            "nbf": now,
            "exp": now + USER_TOKEN_TTL,
        });
        claims[settings.role_claim.as_str()] = json!(person.role);
        for (name, value) in [
            ("org", &person.org),
            ("patient", &grant.patient),
            ("fhirUser", &person.fhir_user),
            ("name", &person.name),
        ] {
            if let Some(v) = value {
                claims[name] = json!(v);
            }
        }
        let access = self.sign(&claims)?;
        let scopes: Vec<&str> = grant.scope.split_whitespace().collect();
        let mut body = json!({
            "access_token": access,
            "token_type": "bearer",
            "expires_in": USER_TOKEN_TTL,
            "scope": grant.scope,
        });
        if let Some(p) = &grant.patient {
            body["patient"] = json!(p);
            body["need_patient_banner"] = json!(grant.need_patient_banner);
        }
        if let Some(e) = &grant.encounter {
            body["encounter"] = json!(e);
            body["fhirContext"] = json!([{"reference": format!("Encounter/{e}")}]);
        }
        if let Some(s) = &grant.smart_style_url {
            body["smart_style_url"] = json!(s);
        }
        // OpenID Connect: `openid` gets an ID token; `fhirUser` adds the claim when the person
        // has a FHIR resource (a citizen's Patient, a clinician's Practitioner when known).
        if scopes.contains(&"openid") {
            let mut id = json!({
                "iss": settings.issuer,
                "sub": person.sub,
                "aud": grant.client_id,
                "iat": now,
                "exp": now + ID_TOKEN_TTL,
                "auth_time": person.auth_time,
            });
            if let (true, Some(fhir_user)) = (scopes.contains(&"fhirUser"), &person.fhir_user) {
                id["fhirUser"] = json!(format!("{}/{}", settings.fhir_base, fhir_user));
            }
            if let Some(n) = &grant.nonce {
                id["nonce"] = json!(n);
            }
            if let Some(n) = &person.name {
                id["name"] = json!(n);
            }
            body["id_token"] = json!(self.sign(&id)?);
        }
        let offline = scopes.contains(&"offline_access");
        let online = scopes.contains(&"online_access");
        let mut started = None;
        if offline || online || family.is_some() {
            let refresh = secrets::random();
            let hash = secrets::digest(&refresh);
            let store = self.store().clone();
            let j = jti.clone();
            match family {
                Some(f) => {
                    let f = f.to_string();
                    crate::blocking(move || store.continue_refresh_family(&f, &hash, &j)).await?;
                }
                None => {
                    let ttl = if offline { OFFLINE_TTL } else { SESSION_TTL };
                    let client = grant.client_id.clone();
                    let text = json!(grant).to_string();
                    let id = crate::blocking(move || {
                        store.start_refresh_family(&client, &text, ttl, &hash, &j)
                    })
                    .await?;
                    started = Some(id);
                }
            }
            body["refresh_token"] = json!(refresh);
        }
        Ok((body, jti, started))
    }

    /// Revokes access tokens (by `jti`) and a refresh-token family issued from a grant that was
    /// replayed.
    pub(crate) async fn revoke_issued(&self, jtis: &[String], family: Option<&str>) {
        let exp = chrono::Utc::now().timestamp() + USER_TOKEN_TTL + 300;
        let mut jtis = jtis.to_vec();
        if let Some(f) = family {
            let store = self.store().clone();
            let f = f.to_string();
            if let Ok(Some((_, issued))) =
                crate::blocking(move || store.revoke_refresh_family(&f, None)).await
            {
                jtis.extend(issued);
            }
        }
        for jti in jtis {
            let store = self.store().clone();
            let j = jti.clone();
            if crate::blocking(move || store.revoke_token(&j, exp))
                .await
                .is_ok()
            {
                self.verifier().revoke(&jti, exp);
            }
        }
    }
}

fn issued_to(grant: &Grant, refreshed: bool) -> IssuedTo {
    IssuedTo {
        subject: grant.person.sub.clone(),
        role: grant.person.role.clone(),
        org: grant.person.org.clone(),
        patient: grant.patient.clone(),
        scope: grant.scope.clone(),
        refreshed,
    }
}
