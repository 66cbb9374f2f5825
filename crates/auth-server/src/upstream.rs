//! Signing people in through the identity providers they already have: NHS CIS2 for staff, NHS
//! login for citizens, or any OpenID Connect provider, as a relying party (the `openidconnect`
//! crate: discovery, authorization code with PKCE and a nonce, ID token verification, userinfo).
//! Invicta keeps no passwords. The provider's claims become a [`Person`]:
//! - `cis2`: `nhsid_nrbac_roles` with `selected_roleid` (the job role's R-code maps to a care-record
//!   role through the role policy, `org_code` is the organisation), as `authz::principal` reads them;
//! - `nhs-login`: a citizen, by `nhs_number`, only at `identity_proofing_level` P9;
//! - `generic`: the configured role and organisation claims.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use authz::auth_events::AuthStep;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreGenderClaim, CoreProviderMetadata,
};
use openidconnect::{
    reqwest, AdditionalClaims, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl,
    Nonce, OAuth2TokenResponse as _, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    TokenResponse as _, UserInfoClaims,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::authorize::BrowserReply;
use crate::form::{printable, Form};
use crate::pages::refusal;
use crate::person::Person;
use crate::{AuthServer, EndpointRequest};

/// How long a provider's discovery document is trusted before it is fetched again.
const METADATA_TTL: Duration = Duration::from_secs(3600);

/// One configured identity provider (an entry of `INVICTA_IDENTITY_PROVIDERS`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSpec {
    /// Short id, used in URLs (`/auth/idp/{id}/callback`).
    pub id: String,
    /// Name on the sign-in page ("NHS Care Identity Service 2", "NHS login").
    pub name: String,
    /// The issuer URL (discovery at `{issuer}/.well-known/openid-configuration`).
    pub issuer: String,
    /// Invicta's client id at the provider.
    pub client_id: String,
    /// Invicta's client secret at the provider (keep the file private).
    pub client_secret: String,
    /// Scopes to ask for, besides `openid`.
    #[serde(default)]
    pub scope: String,
    /// `cis2`, `nhs-login` or `generic`.
    pub kind: String,
    /// `generic`: the claim naming the care-record role.
    #[serde(default)]
    pub role_claim: Option<String>,
    /// `generic`: the claim naming the organisation (ODS code).
    #[serde(default)]
    pub org_claim: Option<String>,
}

/// The configured providers and what is known of them.
#[derive(Default)]
pub struct Providers {
    specs: Vec<ProviderSpec>,
    metadata: tokio::sync::Mutex<HashMap<String, (std::time::Instant, Arc<CoreProviderMetadata>)>>,
    http: std::sync::OnceLock<Result<reqwest::Client, String>>,
}

impl Providers {
    /// Reads and checks the providers file (a JSON array).
    pub fn from_json(text: &str) -> Result<Providers, String> {
        let specs: Vec<ProviderSpec> = serde_json::from_str(text)
            .map_err(|e| format!("not a JSON array of providers: {e}"))?;
        for s in &specs {
            if s.id.is_empty() || !s.id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                return Err(format!(
                    "provider id '{}' must be letters, digits and '-'",
                    s.id
                ));
            }
            if !matches!(s.kind.as_str(), "cis2" | "nhs-login" | "generic") {
                return Err(format!(
                    "provider {}: kind must be cis2, nhs-login or generic",
                    s.id
                ));
            }
            IssuerUrl::new(s.issuer.clone())
                .map_err(|e| format!("provider {}: issuer: {e}", s.id))?;
            if s.kind == "generic" && s.role_claim.is_none() {
                return Err(format!(
                    "provider {}: a generic provider needs role_claim",
                    s.id
                ));
            }
        }
        if specs
            .iter()
            .enumerate()
            .any(|(i, a)| specs[..i].iter().any(|b| b.id == a.id))
        {
            return Err("a provider id is listed twice".into());
        }
        Ok(Providers {
            specs,
            ..Providers::default()
        })
    }

    /// The providers, in the file's order.
    pub fn list(&self) -> &[ProviderSpec] {
        &self.specs
    }

    fn get(&self, id: &str) -> Option<&ProviderSpec> {
        self.specs.iter().find(|s| s.id == id)
    }

    fn http(&self) -> Result<&reqwest::Client, String> {
        self.http
            .get_or_init(|| {
                reqwest::Client::builder()
                    // A provider's answers never need redirects; following them would let one
                    // send us anywhere.
                    .redirect(reqwest::redirect::Policy::none())
                    .connect_timeout(Duration::from_secs(3))
                    .timeout(Duration::from_secs(10))
                    .build()
                    .map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    async fn metadata(&self, spec: &ProviderSpec) -> Result<Arc<CoreProviderMetadata>, String> {
        let mut cache = self.metadata.lock().await;
        if let Some((at, m)) = cache.get(&spec.id) {
            if at.elapsed() < METADATA_TTL {
                return Ok(m.clone());
            }
        }
        let issuer = IssuerUrl::new(spec.issuer.clone()).map_err(|e| e.to_string())?;
        let m = CoreProviderMetadata::discover_async(issuer, self.http()?)
            .await
            .map_err(|e| format!("discovery of {}: {e}", spec.issuer))?;
        let m = Arc::new(m);
        cache.insert(spec.id.clone(), (std::time::Instant::now(), m.clone()));
        Ok(m)
    }
}

/// Claims beyond the standard ones, kept as they came.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Extra {
    #[serde(flatten)]
    claims: Map<String, Value>,
}

impl AdditionalClaims for Extra {}

/// What the callback needs, kept with the authorization request.
#[derive(Debug, Serialize, Deserialize)]
struct Upstream {
    provider: String,
    state: String,
    nonce: String,
    verifier: String,
}

impl AuthServer {
    fn callback_url(&self, provider: &str) -> String {
        format!("{}/idp/{provider}/callback", self.settings().auth_base)
    }

    /// `GET /auth/idp/{provider}/start?request=…`: off to the provider.
    pub async fn upstream_start(&self, provider: &str, request: &str) -> BrowserReply {
        let providers = self.providers();
        let Some(spec) = providers.get(provider) else {
            return BrowserReply::page(
                404,
                refusal(
                    "Unknown sign-in service",
                    "This service does not sign people in through that provider.",
                ),
            );
        };
        if self.pending(request).await.is_none() {
            return BrowserReply::page(400, crate::authorize::expired());
        }
        let metadata = match providers.metadata(spec).await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(provider = %spec.id, error = %e, "identity provider unreachable");
                return BrowserReply::page(
                    503,
                    refusal(
                        "Sign-in is not available",
                        &format!("{} cannot be reached. Try again in a moment.", spec.name),
                    ),
                );
            }
        };
        let Ok(redirect) = RedirectUrl::new(self.callback_url(&spec.id)) else {
            return BrowserReply::page(
                500,
                refusal(
                    "Sign-in is not available",
                    "The callback address is not valid.",
                ),
            );
        };
        let client = CoreClient::from_provider_metadata(
            (*metadata).clone(),
            ClientId::new(spec.client_id.clone()),
            Some(ClientSecret::new(spec.client_secret.clone())),
        )
        .set_redirect_uri(redirect);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let state = format!("{request}.{}", crate::secrets::random());
        let nonce = crate::secrets::random();
        let (s, n) = (state.clone(), nonce.clone());
        let mut auth = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                move || CsrfToken::new(s),
                move || Nonce::new(n),
            )
            .set_pkce_challenge(challenge);
        for scope in spec.scope.split_whitespace().filter(|s| *s != "openid") {
            auth = auth.add_scope(Scope::new(scope.to_string()));
        }
        let (url, _, _) = auth.url();
        let upstream = Upstream {
            provider: spec.id.clone(),
            state,
            nonce,
            verifier: verifier.secret().clone(),
        };
        let store = self.store().clone();
        let (key, text) = (request.to_string(), json!(upstream).to_string());
        match crate::blocking(move || store.set_auth_request_upstream(&key, &text)).await {
            Ok(true) => BrowserReply::redirect(url.to_string()),
            _ => BrowserReply::page(400, crate::authorize::expired()),
        }
    }

    /// `GET /auth/idp/{provider}/callback?code=…&state=…`: back from the provider.
    pub async fn upstream_callback(
        &self,
        req: &EndpointRequest,
        provider: &str,
        query: &Form,
    ) -> BrowserReply {
        let refused = |title: &str, message: &str, why: String| {
            let mut reply = BrowserReply::page(403, refusal(title, message));
            reply
                .events
                .push(self.event(req, AuthStep::Refused, 403, |e| {
                    e.description = Some(format!("sign-in through {}: {why}", printable(provider)));
                }));
            reply
        };
        let state = query.get("state").unwrap_or_default();
        let request = state.split('.').next().unwrap_or_default().to_string();
        let store = self.store().clone();
        let key = request.clone();
        let stored = crate::blocking(move || store.auth_request(&key))
            .await
            .ok()
            .flatten();
        let upstream: Option<Upstream> = stored
            .and_then(|s| s.upstream)
            .and_then(|u| serde_json::from_str(&u).ok());
        let Some(upstream) =
            upstream.filter(|u| u.provider == provider && crate::secrets::same(&u.state, state))
        else {
            return refused(
                "This sign-in has expired",
                "Go back to the app and start again.",
                "state matches no sign-in in progress".into(),
            );
        };
        if let Some(error) = query.get("error") {
            return refused(
                "Sign-in did not complete",
                "The identity provider did not sign you in.",
                format!("the provider answered {}", printable(error)),
            );
        }
        let Some(code) = query.get("code") else {
            return refused(
                "Sign-in did not complete",
                "The identity provider sent no code.",
                "no code".into(),
            );
        };
        let providers = self.providers();
        let Some(spec) = providers.get(provider) else {
            return refused(
                "Unknown sign-in service",
                "This service does not sign people in through that provider.",
                "unknown provider".into(),
            );
        };
        let claims = match self
            .upstream_claims(&providers, spec, code, &upstream)
            .await
        {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(provider = %spec.id, error = %e, "upstream sign-in failed");
                return refused(
                    "Sign-in did not complete",
                    "Your sign-in could not be checked. Try again.",
                    e,
                );
            }
        };
        let mut person = match self.person_from_claims(spec, &claims) {
            Ok(p) => p,
            Err(why) => return refused("You cannot use the care record", &why, why.clone()),
        };
        if spec.kind == "nhs-login" {
            let nhs = claims
                .get("nhs_number")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .replace(' ', "");
            let level = claims
                .get("identity_proofing_level")
                .and_then(Value::as_str)
                .unwrap_or("P0")
                .to_string();
            if let Err(html) = self.citizen(&mut person, &nhs, &level).await {
                let mut reply = BrowserReply::page(403, html);
                reply
                    .events
                    .push(self.event(req, AuthStep::Refused, 403, |e| {
                        e.user = Some(person.sub.clone());
                        e.role = Some(person.role.clone());
                        e.description = Some(format!(
                            "sign-in through {}: citizen refused at proofing level {}",
                            spec.id,
                            printable(&level)
                        ));
                    }));
                return reply;
            }
        }
        self.start_session(
            req,
            person,
            &format!("{}/consent?request={request}", self.settings().auth_base),
        )
        .await
    }

    /// Exchanges the code, verifies the ID token and reads userinfo: the person's claims.
    async fn upstream_claims(
        &self,
        providers: &Providers,
        spec: &ProviderSpec,
        code: &str,
        upstream: &Upstream,
    ) -> Result<Map<String, Value>, String> {
        let metadata = providers.metadata(spec).await?;
        let http = providers.http()?;
        let client = CoreClient::from_provider_metadata(
            (*metadata).clone(),
            ClientId::new(spec.client_id.clone()),
            Some(ClientSecret::new(spec.client_secret.clone())),
        )
        .set_redirect_uri(
            RedirectUrl::new(self.callback_url(&spec.id)).map_err(|e| e.to_string())?,
        );
        let tokens = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|e| e.to_string())?
            .set_pkce_verifier(PkceCodeVerifier::new(upstream.verifier.clone()))
            .request_async(http)
            .await
            .map_err(|e| format!("code exchange: {e}"))?;
        let id_token = tokens.id_token().ok_or("no ID token")?;
        let verified = id_token
            .claims(
                &client.id_token_verifier(),
                &Nonce::new(upstream.nonce.clone()),
            )
            .map_err(|e| format!("ID token: {e}"))?;
        let subject = verified.subject().clone();
        let mut claims = Map::new();
        claims.insert("sub".into(), json!(subject.as_str()));
        if let Some(name) = verified.name().and_then(|n| n.get(None)) {
            claims.insert("name".into(), json!(name.as_str()));
        }
        let info: UserInfoClaims<Extra, CoreGenderClaim> = client
            .user_info(tokens.access_token().clone(), Some(subject))
            .map_err(|e| e.to_string())?
            .request_async(http)
            .await
            .map_err(|e| format!("userinfo: {e}"))?;
        if let Some(name) = info.name().and_then(|n| n.get(None)) {
            claims.insert("name".into(), json!(name.as_str()));
        }
        for (k, v) in &info.additional_claims().claims {
            if k != "sub" {
                claims.insert(k.clone(), v.clone());
            }
        }
        Ok(claims)
    }

    /// The person the claims describe.
    fn person_from_claims(
        &self,
        spec: &ProviderSpec,
        claims: &Map<String, Value>,
    ) -> Result<Person, String> {
        let sub = claims
            .get("sub")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let name = claims
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_string);
        let now = chrono::Utc::now().timestamp();
        match spec.kind.as_str() {
            "nhs-login" => Ok(Person {
                sub,
                name,
                role: "patient".into(),
                org: None,
                fhir_user: None,
                patient: None,
                idp: spec.id.clone(),
                auth_time: now,
            }),
            kind => {
                let mut c = claims.clone();
                let role_claim = spec.role_claim.clone().unwrap_or_else(|| "role".into());
                if kind == "generic" {
                    if let Some(org_claim) = &spec.org_claim {
                        if let Some(org) = claims.get(org_claim) {
                            c.insert("org".into(), org.clone());
                        }
                    }
                }
                c.remove("scope");
                let p = authz::from_claims(&c, self.policy(), &role_claim).map_err(|e| {
                    format!("Your account's role cannot be used with the care record ({e}).")
                })?;
                if p.role == "patient" {
                    return Err("A staff sign-in cannot open a citizen's record.".into());
                }
                Ok(Person {
                    sub: p.subject,
                    name: p.name,
                    role: p.role,
                    org: p.org,
                    fhir_user: p.fhir_user,
                    patient: None,
                    idp: spec.id.clone(),
                    auth_time: now,
                })
            }
        }
    }
}
