//! The authorization endpoint and what follows it in the browser: checking the request, keeping
//! it while the person signs in, the consent screen, and the code.
//!
//! Errors that would send the browser to an unverified place (an unknown client, a
//! `redirect_uri` not registered for it exactly) are shown as a page and never redirected, so the
//! endpoint cannot be used as an open redirector (RFC 6749 §4.1.2.1). Every other error goes back
//! to the client's registered `redirect_uri` with `error` and the client's `state`.

use authz::auth_events::AuthStep;
use authz::grant::{narrow, narrow_to_role, Reach};
use authz::{Context, Scope};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::clients::Client;
use crate::form::{printable, Form};
use crate::pages::{escape, page, refusal};
use crate::person::Person;
use crate::secrets;
use crate::{AuthServer, EndpointRequest};

/// How long a person has to sign in and consent.
const REQUEST_TTL: i64 = 600;
/// How long a code lives (RFC 6749 §4.1.2 recommends at most 10 minutes; one is plenty).
pub(crate) const CODE_TTL: i64 = 60;

/// What the browser is told to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Browser {
    /// Go there (303 See Other).
    Redirect(String),
    /// Show this page with this status.
    Page(u16, String),
}

/// An answer to a browser request.
#[derive(Debug)]
pub struct BrowserReply {
    /// What the browser does.
    pub answer: Browser,
    /// A new session id to set as the session cookie.
    pub set_session: Option<String>,
    /// AuditEvents to record before answering.
    pub events: Vec<Value>,
}

impl BrowserReply {
    pub(crate) fn page(status: u16, html: String) -> BrowserReply {
        BrowserReply {
            answer: Browser::Page(status, html),
            set_session: None,
            events: Vec::new(),
        }
    }

    /// A page.
    pub fn page_of(status: u16, html: String) -> BrowserReply {
        Self::page(status, html)
    }

    /// A redirect.
    pub fn redirect_to(to: String) -> BrowserReply {
        Self::redirect(to)
    }

    pub(crate) fn redirect(to: String) -> BrowserReply {
        BrowserReply {
            answer: Browser::Redirect(to),
            set_session: None,
            events: Vec::new(),
        }
    }
}

/// An authorization request in progress, as kept in the database.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Pending {
    pub client_id: String,
    pub redirect_uri: String,
    pub scope: String,
    pub state: String,
    pub code_challenge: String,
    /// SHA-256 of the EHR launch value, when there is one.
    pub launch: Option<String>,
    pub nonce: Option<String>,
    /// The patient a clinician picked for a standalone launch (checked visible to them).
    #[serde(default)]
    pub picked: Option<String>,
}

impl Pending {
    /// A clinician's standalone launch asking for a patient context, with none picked yet.
    pub(crate) fn needs_picker(&self, person: &Person) -> bool {
        person.role != "patient"
            && self.launch.is_none()
            && self.picked.is_none()
            && self.scope.split_whitespace().any(|s| s == "launch/patient")
    }
}

/// What a code (and a refresh-token family) grants, as kept in the database.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Grant {
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub scope: String,
    pub person: Person,
    pub patient: Option<String>,
    pub encounter: Option<String>,
    pub need_patient_banner: bool,
    pub smart_style_url: Option<String>,
    pub nonce: Option<String>,
}

/// An EHR launch context, as kept in the database.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct LaunchContext {
    pub patient: String,
    pub encounter: Option<String>,
    pub user: Option<String>,
    pub role: Option<String>,
    pub org: Option<String>,
    pub need_patient_banner: bool,
    pub smart_style_url: Option<String>,
}

/// Appends query parameters to a URL.
pub fn with_query(url: &str, params: &[(&str, &str)]) -> String {
    let mut u = match url::Url::parse(url) {
        Ok(u) => u,
        Err(_) => return url.to_string(),
    };
    {
        let mut q = u.query_pairs_mut();
        for (k, v) in params {
            q.append_pair(k, v);
        }
    }
    u.to_string()
}

impl AuthServer {
    /// `GET|POST /auth/authorize`: checks the request and keeps it; the browser goes on to sign
    /// in (or, with a session, straight to consent).
    pub async fn authorize(
        &self,
        req: &EndpointRequest,
        query: &Form,
        signed_in: bool,
    ) -> BrowserReply {
        let client_id = match query.get("client_id") {
            Some(c) => c.to_string(),
            None => {
                return BrowserReply::page(
                    400,
                    refusal(
                        "This link is not valid",
                        "The app did not say who it is (client_id is missing).",
                    ),
                )
            }
        };
        let client = match self.known_client(&client_id).await {
            Ok(c) => c,
            Err(_) => {
                let mut reply = BrowserReply::page(400, refusal("This app is not registered", "The app that sent you here is not registered with this service, so you cannot sign in to it."));
                reply
                    .events
                    .push(self.event(req, AuthStep::Refused, 400, |e| {
                        e.client_id = Some(printable(&client_id));
                        e.description = Some("authorize: unknown client".into());
                    }));
                return reply;
            }
        };
        let redirect_uri = match query.get("redirect_uri") {
            Some(r) if client.redirect_uris.iter().any(|u| u == r) => r.to_string(),
            _ => {
                let mut reply = BrowserReply::page(400, refusal("This link is not valid", "The app asked to send you to an address it has not registered, so you are not sent anywhere."));
                reply
                    .events
                    .push(self.event(req, AuthStep::Refused, 400, |e| {
                        e.client_id = Some(client.id.clone());
                        e.description =
                            Some("authorize: redirect_uri is not registered for the client".into());
                    }));
                return reply;
            }
        };
        let state = query.get("state").map(str::to_string);
        let back = |error: &str, description: &str| {
            let mut params = vec![("error", error), ("error_description", description)];
            if let Some(s) = &state {
                params.push(("state", s));
            }
            with_query(&redirect_uri, &params)
        };
        let refuse = |error: &str, description: &str| {
            let mut reply = BrowserReply::redirect(back(error, description));
            reply
                .events
                .push(self.event(req, AuthStep::Refused, 400, |e| {
                    e.client_id = Some(client.id.clone());
                    e.description = Some(format!("authorize: {error}: {description}"));
                }));
            reply
        };
        if query.get("response_type") != Some("code") {
            return refuse("unsupported_response_type", "response_type must be code");
        }
        let Some(state) = state.clone() else {
            return refuse("invalid_request", "state is required");
        };
        if query.get("aud").map(|a| a.trim_end_matches('/'))
            != Some(self.settings().fhir_base.as_str())
        {
            return refuse("invalid_request", "aud must be this server's FHIR base URL");
        }
        match query.get("code_challenge_method") {
            Some("S256") => {}
            Some("plain") => {
                return refuse(
                    "invalid_request",
                    "PKCE method plain is not accepted; use S256",
                )
            }
            Some(_) => return refuse("invalid_request", "code_challenge_method must be S256"),
            None => {
                return refuse(
                    "invalid_request",
                    "PKCE is required: code_challenge with code_challenge_method S256",
                )
            }
        }
        let challenge = match query.get("code_challenge") {
            Some(c)
                if c.len() == 43
                    && c.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
            {
                c.to_string()
            }
            _ => {
                return refuse(
                    "invalid_request",
                    "code_challenge must be the base64url SHA-256 of the verifier",
                )
            }
        };
        let Some(scope) = query.get("scope").map(str::to_string) else {
            return refuse("invalid_scope", "scope is required");
        };
        if authz::parse_scopes(&scope).is_err() {
            return refuse("invalid_scope", "scope has a malformed entry");
        }
        let launch = match query.get("launch") {
            Some(value) => {
                let hash = secrets::digest(value);
                let store = self.store().clone();
                let h = hash.clone();
                match crate::blocking(move || store.launch(&h)).await {
                    Ok(Some(_)) => Some(hash),
                    Ok(None) => {
                        return refuse("invalid_request", "launch is unknown, used or expired")
                    }
                    Err(_) => return refuse("temporarily_unavailable", "try again later"),
                }
            }
            None => None,
        };
        let pending = Pending {
            client_id: client.id.clone(),
            redirect_uri: redirect_uri.clone(),
            scope,
            state,
            code_challenge: challenge,
            launch,
            nonce: query.get("nonce").map(|n| n.chars().take(256).collect()),
            picked: None,
        };
        let id = secrets::random();
        let store = self.store().clone();
        let (key, text) = (id.clone(), json!(pending).to_string());
        if crate::blocking(move || store.put_auth_request(&key, &text, REQUEST_TTL))
            .await
            .is_err()
        {
            return refuse("temporarily_unavailable", "try again later");
        }
        let next = if signed_in { "consent" } else { "signin" };
        BrowserReply::redirect(format!("{}/{next}?request={id}", self.settings().auth_base))
    }

    /// The request `id` in progress.
    pub(crate) async fn pending(&self, id: &str) -> Option<Pending> {
        let store = self.store().clone();
        let key = id.to_string();
        let stored = crate::blocking(move || store.auth_request(&key))
            .await
            .ok()??;
        serde_json::from_str(&stored.params).ok()
    }

    /// `GET /auth/consent`: what the app asks for, for the person to allow or deny.
    pub async fn consent_page(
        &self,
        request: &str,
        session: &str,
        person: &Person,
    ) -> BrowserReply {
        let Some(pending) = self.pending(request).await else {
            return BrowserReply::page(400, expired());
        };
        if pending.needs_picker(person) {
            return BrowserReply::redirect(with_query(
                &format!("{}/pick", self.settings().auth_base),
                &[("request", request)],
            ));
        }
        let Ok(client) = self.known_client(&pending.client_id).await else {
            return BrowserReply::page(400, expired());
        };
        let launch = match self.launch_of(&pending).await {
            Ok(l) => l,
            Err(html) => return BrowserReply::page(400, html),
        };
        let grant = match self.grant_for(&pending, &client, person, launch.as_ref()) {
            Ok(g) => g,
            Err(html) => return BrowserReply::page(403, html),
        };
        let scopes: String = grant
            .scope
            .split_whitespace()
            .map(|s| {
                format!(
                    "<li><code>{}</code> – {}</li>",
                    escape(s),
                    escape(&describe(s))
                )
            })
            .collect();
        let context = match &grant.patient {
            Some(p) => format!(
                "<p>For the patient record <strong>{}</strong>.</p>",
                escape(p)
            ),
            None => String::new(),
        };
        let who = format!(
            "{} ({}{})",
            person.name.as_deref().unwrap_or(&person.sub),
            person.role,
            person
                .org
                .as_deref()
                .map(|o| format!(", {o}"))
                .unwrap_or_default()
        );
        let token = secrets::consent_token(session, request);
        let body = format!(
            "<p><strong>{app}</strong> asks to use the care record as <strong>{who}</strong>.</p>\
             {context}<p>It will be able to:</p><ul>{scopes}</ul>\
             <form method=\"post\" action=\"{base}/consent\">\
             <input type=\"hidden\" name=\"request\" value=\"{request}\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{token}\">\
             <button class=\"go\" name=\"decision\" value=\"allow\">Allow</button>\
             <button class=\"stop\" name=\"decision\" value=\"deny\">Deny</button></form>\
             <p>Everything it reads or changes is recorded in your name.</p>",
            app = escape(&client.name),
            who = escape(&who),
            base = escape(&self.settings().auth_base),
            request = escape(request),
        );
        BrowserReply::page(200, page("Allow this app?", &body))
    }

    /// `POST /auth/consent`: the person's decision. Allowed: a code for the client; denied: the
    /// client is told `access_denied`. Either way the request is finished.
    pub async fn consent(
        &self,
        req: &EndpointRequest,
        form: &Form,
        session: &str,
        person: &Person,
    ) -> BrowserReply {
        let (Some(request), Some(csrf)) = (form.get("request"), form.get("csrf")) else {
            return BrowserReply::page(
                400,
                refusal("This form is not valid", "The consent form was incomplete."),
            );
        };
        if !secrets::same(csrf, &secrets::consent_token(session, request)) {
            let mut reply = BrowserReply::page(
                403,
                refusal(
                    "This form is not valid",
                    "The consent form was not the one shown to you, so nothing was allowed.",
                ),
            );
            reply
                .events
                .push(self.event(req, AuthStep::Refused, 403, |e| {
                    e.user = Some(person.sub.clone());
                    e.role = Some(person.role.clone());
                    e.org = person.org.clone();
                    e.description =
                        Some("consent: the anti-forgery token does not match the session".into());
                }));
            return reply;
        }
        let Some(pending) = self.pending(request).await else {
            return BrowserReply::page(400, expired());
        };
        if pending.needs_picker(person) {
            return BrowserReply::redirect(with_query(
                &format!("{}/pick", self.settings().auth_base),
                &[("request", request)],
            ));
        }
        let store = self.store().clone();
        let key = request.to_string();
        let _ = crate::blocking(move || store.delete_auth_request(&key)).await;
        let back = |params: &[(&str, &str)]| {
            let mut p = params.to_vec();
            p.push(("state", pending.state.as_str()));
            with_query(&pending.redirect_uri, &p)
        };
        let audit_refusal = |description: String| {
            self.event(req, AuthStep::Refused, 403, |e| {
                e.client_id = Some(pending.client_id.clone());
                e.user = Some(person.sub.clone());
                e.role = Some(person.role.clone());
                e.org = person.org.clone();
                e.description = Some(description);
            })
        };
        if form.get("decision") != Some("allow") {
            let mut reply = BrowserReply::redirect(back(&[
                ("error", "access_denied"),
                ("error_description", "the user denied the request"),
            ]));
            reply
                .events
                .push(audit_refusal("consent: denied by the user".into()));
            return reply;
        }
        let Ok(client) = self.known_client(&pending.client_id).await else {
            return BrowserReply::page(400, expired());
        };
        let launch = match self.launch_of(&pending).await {
            Ok(l) => l,
            Err(html) => return BrowserReply::page(400, html),
        };
        let grant = match self.grant_for(&pending, &client, person, launch.as_ref()) {
            Ok(g) => g,
            Err(html) => return BrowserReply::page(403, html),
        };
        if let Some(hash) = &pending.launch {
            let store = self.store().clone();
            let h = hash.clone();
            match crate::blocking(move || store.spend_launch(&h)).await {
                Ok(store::Spent::Fresh(_)) => {}
                _ => {
                    let mut reply = BrowserReply::redirect(back(&[
                        ("error", "invalid_request"),
                        ("error_description", "launch is unknown, used or expired"),
                    ]));
                    reply.events.push(audit_refusal(
                        "consent: the launch was used or expired meanwhile".into(),
                    ));
                    return reply;
                }
            }
        }
        let code = secrets::random();
        let store = self.store().clone();
        let (hash, text) = (secrets::digest(&code), json!(grant).to_string());
        if crate::blocking(move || store.put_code(&hash, &text, CODE_TTL))
            .await
            .is_err()
        {
            return BrowserReply::redirect(back(&[("error", "temporarily_unavailable")]));
        }
        BrowserReply::redirect(back(&[("code", code.as_str())]))
    }

    /// The launch context of a pending request, if it was an EHR launch that is still usable.
    async fn launch_of(&self, pending: &Pending) -> Result<Option<LaunchContext>, String> {
        let Some(hash) = &pending.launch else {
            return Ok(None);
        };
        let store = self.store().clone();
        let h = hash.clone();
        let text = crate::blocking(move || store.launch(&h))
            .await
            .ok()
            .flatten()
            .ok_or_else(|| refusal("This launch has expired", "The launch from your clinical system was used or has expired. Open the app from the patient's record again."))?;
        serde_json::from_str(&text).map(Some).map_err(|_| expired())
    }

    /// What `person` may grant `client` for `pending`: the scopes asked for, narrowed to the
    /// client's registration and the person's role, with the patient context.
    fn grant_for(
        &self,
        pending: &Pending,
        client: &Client,
        person: &Person,
        launch: Option<&LaunchContext>,
    ) -> Result<Grant, String> {
        let policy = self.policy();
        let role = policy.role(&person.role).ok_or_else(|| {
            refusal(
                "You cannot use the care record",
                "Your role has no access to the care record.",
            )
        })?;
        if let Some(l) = launch {
            let mismatch = l.user.as_deref().is_some_and(|u| u != person.sub)
                || l.role.as_deref().is_some_and(|r| r != person.role)
                || l.org
                    .as_deref()
                    .is_some_and(|o| Some(o) != person.org.as_deref());
            if mismatch {
                return Err(refusal("This launch was made for someone else", "The clinical system opened this app for another user, role or organisation than the one you signed in as."));
            }
        }
        let granted = narrow(&pending.scope, &client.scopes, Reach::Exact)
            .and_then(|s| narrow_to_role(&s, role, policy))
            .map_err(|_| expired())?;
        let patient = match (launch, &person.patient) {
            (Some(l), _) => Some(l.patient.clone()),
            (None, Some(own)) => Some(own.clone()),
            (None, None) => pending.picked.clone(),
        };
        if person.role == "patient" && patient != person.patient {
            return Err(refusal(
                "This record is not yours",
                "A citizen can open only their own record.",
            ));
        }
        // patient/ scopes need a patient; fhirUser needs a FHIR resource for the person;
        // launch/patient without a patient (none picked) is left out rather than granted empty.
        let kept: Vec<&str> = granted
            .split_whitespace()
            .filter(|s| match authz::parse_scope(s) {
                Ok(Scope::Resource(r)) if r.context == Context::Patient => patient.is_some(),
                Ok(Scope::Other(o)) => match o.as_str() {
                    "fhirUser" => person.fhir_user.is_some(),
                    "launch/patient" => patient.is_some(),
                    "launch" => launch.is_some(),
                    _ => true,
                },
                _ => true,
            })
            .collect();
        Ok(Grant {
            client_id: client.id.clone(),
            redirect_uri: pending.redirect_uri.clone(),
            code_challenge: pending.code_challenge.clone(),
            scope: kept.join(" "),
            person: person.clone(),
            patient,
            encounter: launch.and_then(|l| l.encounter.clone()),
            need_patient_banner: launch.is_none_or(|l| l.need_patient_banner),
            smart_style_url: launch.and_then(|l| l.smart_style_url.clone()),
            nonce: pending.nonce.clone(),
        })
    }
}

pub(crate) fn expired() -> String {
    refusal(
        "This sign-in has expired",
        "The request from the app is no longer open. Go back to the app and start again.",
    )
}

/// A scope in words, for the consent screen.
fn describe(scope: &str) -> String {
    match authz::parse_scope(scope) {
        Ok(Scope::Resource(r)) => {
            let what = r.resource_type.as_deref().unwrap_or("all record entries");
            let whose = match r.context {
                Context::Patient => "of this patient",
                Context::User => "you may see",
                Context::System => "(as a system)",
            };
            let p = r.permissions;
            let mut verbs = Vec::new();
            if p.read || p.search {
                verbs.push("read");
            }
            if p.create {
                verbs.push("add");
            }
            if p.update {
                verbs.push("change");
            }
            if p.delete {
                verbs.push("delete");
            }
            format!("{} {what} {whose}", verbs.join(", "))
        }
        _ => match scope {
            "openid" | "fhirUser" | "profile" => "know who you are".into(),
            "launch" | "launch/patient" => "open in the patient's context".into(),
            "offline_access" => "keep access after you sign out, until you revoke it".into(),
            "online_access" => "keep access while you are signed in".into(),
            other => other.into(),
        },
    }
}
