//! Signing in: the page that offers the ways to sign in, sessions, and the development sign-in
//! (pick a user, role, organisation or NHS number), which exists for `make run` and tests and is
//! refused unless the configuration enables it.

use authz::auth_events::AuthStep;
use serde_json::json;

use crate::authorize::BrowserReply;
use crate::form::Form;
use crate::pages::{escape, page, refusal};
use crate::person::Person;
use crate::secrets;
use crate::{AuthServer, EndpointRequest};

/// How long a sign-in lasts.
pub(crate) const SESSION_TTL: i64 = 8 * 3600;

/// The identity proofing level a citizen needs to see their own record (NHS login P9).
const CITIZEN_PROOFING: &str = "P9";

impl AuthServer {
    /// The person signed in under `session` (the cookie's value), if any.
    pub async fn signed_in(&self, session: &str) -> Option<Person> {
        if session.len() > 64 {
            return None;
        }
        let store = self.store().clone();
        let hash = secrets::digest(session);
        let text = crate::blocking(move || store.signed_in(&hash))
            .await
            .ok()??;
        serde_json::from_str(&text).ok()
    }

    /// `GET /auth/signin`: the ways to sign in for the request in progress.
    pub async fn signin_page(&self, request: &str) -> BrowserReply {
        if self.pending(request).await.is_none() {
            return BrowserReply::page(400, crate::authorize::expired());
        }
        let providers = self.providers();
        let links: String = providers
            .list()
            .iter()
            .map(|p| {
                format!(
                    "<p><a class=\"go\" href=\"{base}/idp/{id}/start?request={request}\">Sign in with {name}</a></p>",
                    base = escape(&self.settings().auth_base),
                    id = escape(&p.id),
                    request = escape(request),
                    name = escape(&p.name)
                )
            })
            .collect();
        if !self.settings().dev_signin {
            if links.is_empty() {
                return BrowserReply::page(
                    503,
                    refusal(
                        "Sign-in is not available",
                        "No identity provider is configured for this service.",
                    ),
                );
            }
            return BrowserReply::page(200, page("Sign in", &links));
        }
        let roles: String = self
            .policy()
            .roles()
            .map(|r| {
                format!(
                    "<option value=\"{id}\">{name} ({id})</option>",
                    id = escape(&r.id),
                    name = escape(&r.name)
                )
            })
            .collect();
        let body = format!(
            "{links}<p class=\"warn\">Development sign-in: anyone can be anyone here. It is switched on by \
             INVICTA_DEV_SIGNIN and must never be on for real records.</p>\
             <form method=\"post\" action=\"{base}/signin/dev\">\
             <input type=\"hidden\" name=\"request\" value=\"{request}\">\
             <label for=\"sub\">User id</label><input id=\"sub\" name=\"sub\" value=\"dev-user\" required>\
             <label for=\"name\">Name</label><input id=\"name\" name=\"name\">\
             <label for=\"role\">Role</label><select id=\"role\" name=\"role\">{roles}</select>\
             <label for=\"org\">Organisation (ODS code)</label><input id=\"org\" name=\"org\">\
             <label for=\"fhir_user\">FHIR user (Practitioner/…)</label><input id=\"fhir_user\" name=\"fhir_user\">\
             <label for=\"nhs_number\">NHS number (citizens)</label><input id=\"nhs_number\" name=\"nhs_number\" inputmode=\"numeric\">\
             <label for=\"proofing\">Identity proofing level (citizens)</label>\
             <select id=\"proofing\" name=\"proofing\"><option>P9</option><option>P5</option><option>P0</option></select>\
             <button class=\"go\">Sign in</button></form>",
            base = escape(&self.settings().auth_base),
            request = escape(request),
        );
        BrowserReply::page(200, page("Sign in", &body))
    }

    /// `POST /auth/signin/dev`: the development sign-in.
    pub async fn dev_signin(&self, req: &EndpointRequest, form: &Form) -> BrowserReply {
        if !self.settings().dev_signin {
            return BrowserReply::page(
                403,
                refusal(
                    "Development sign-in is off",
                    "This service signs people in through its identity providers only.",
                ),
            );
        }
        let Some(request) = form.get("request") else {
            return BrowserReply::page(
                400,
                refusal("This form is not valid", "The sign-in form was incomplete."),
            );
        };
        if self.pending(request).await.is_none() {
            return BrowserReply::page(400, crate::authorize::expired());
        }
        let role = form.get("role").unwrap_or_default().to_string();
        if self.policy().role(&role).is_none() {
            return BrowserReply::page(
                400,
                refusal("Unknown role", "Pick one of the care-record roles."),
            );
        }
        let sub: String = form
            .get("sub")
            .unwrap_or("dev-user")
            .chars()
            .take(128)
            .collect();
        let mut person = Person {
            sub,
            name: form.get("name").map(|n| n.chars().take(200).collect()),
            role: role.clone(),
            org: form.get("org").map(|o| o.chars().take(16).collect()),
            fhir_user: form.get("fhir_user").map(|f| f.chars().take(200).collect()),
            patient: None,
            idp: "dev".into(),
            auth_time: chrono::Utc::now().timestamp(),
        };
        if role == "patient" {
            let proofing = form.get("proofing").unwrap_or("P0");
            let nhs = form.get("nhs_number").unwrap_or_default().replace(' ', "");
            if let Err(html) = self.citizen(&mut person, &nhs, proofing).await {
                let mut reply = BrowserReply::page(403, html);
                reply
                    .events
                    .push(self.event(req, AuthStep::Refused, 403, |e| {
                        e.user = Some(person.sub.clone());
                        e.role = Some(role.clone());
                        e.description = Some(format!(
                            "sign-in: citizen refused at proofing level {}",
                            crate::form::printable(proofing)
                        ));
                    }));
                return reply;
            }
        }
        self.start_session(
            req,
            person,
            &format!("{}/consent?request={}", self.settings().auth_base, request),
        )
        .await
    }

    /// Resolves a citizen's own record from their NHS number; only at proofing level P9.
    pub(crate) async fn citizen(
        &self,
        person: &mut Person,
        nhs_number: &str,
        proofing: &str,
    ) -> Result<(), String> {
        if proofing != CITIZEN_PROOFING {
            return Err(refusal(
                "We need to be sure it is you",
                "To see your health and care record you need to prove who you are to the highest level (P9) with NHS login. Your NHS login has not been verified to that level yet.",
            ));
        }
        if !fhir_model::nhs_number::is_valid(nhs_number) {
            return Err(refusal(
                "We could not find your record",
                "Your NHS login did not give a valid NHS number.",
            ));
        }
        let store = self.store().clone();
        let nhs = nhs_number.to_string();
        let patient = crate::blocking(move || store.patient_for_nhs_number(&nhs))
            .await
            .ok()
            .flatten()
            .ok_or_else(|| {
                refusal(
                    "We could not find your record",
                    "There is no care record for your NHS number in this region.",
                )
            })?;
        person.fhir_user = Some(format!("Patient/{patient}"));
        person.patient = Some(patient);
        Ok(())
    }

    /// Stores a session for `person`, audits the sign-in and sends the browser on.
    pub(crate) async fn start_session(
        &self,
        req: &EndpointRequest,
        person: Person,
        next: &str,
    ) -> BrowserReply {
        let session = secrets::random();
        let store = self.store().clone();
        let (hash, text) = (secrets::digest(&session), json!(person).to_string());
        if crate::blocking(move || store.put_session(&hash, &text, SESSION_TTL))
            .await
            .is_err()
        {
            return BrowserReply::page(
                503,
                refusal("Sign-in is not available", "Try again in a moment."),
            );
        }
        let mut reply = BrowserReply::redirect(next.to_string());
        reply.set_session = Some(session);
        reply
            .events
            .push(self.event(req, AuthStep::SignIn, 200, |e| {
                e.user = Some(person.sub.clone());
                e.role = Some(person.role.clone());
                e.org = person.org.clone();
                e.patient = person.patient.clone();
                e.description = Some(format!("signed in through {}", person.idp));
            }));
        reply
    }
}
