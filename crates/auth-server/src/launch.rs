//! `POST /auth/launch`: a point-of-care system, authenticated as a confidential client registered
//! with the `launch` scope, creates an EHR launch context (the patient, optionally the encounter,
//! and the user's id, role and organisation as it knows them) and gets an opaque `launch` value:
//! single use, valid for five minutes. It then opens the app with `iss` and `launch`; the token
//! the app gets carries that patient, which the role policy's EHR-launch rule treats as the
//! user's legitimate relationship with them.

use authz::auth_events::AuthStep;
use authz::Scope;
use serde_json::json;

use crate::authorize::{with_query, LaunchContext};
use crate::client_auth::Method;
use crate::error::OAuthError;
use crate::form::{printable, Form};
use crate::secrets;
use crate::{AuthServer, EndpointRequest, Reply};

/// How long a launch value lives.
const LAUNCH_TTL: i64 = 300;

impl AuthServer {
    /// Creates a launch context.
    pub async fn create_launch(&self, req: &EndpointRequest) -> Reply {
        let mut claimed = None;
        let mut context = None;
        let result = async {
            let form = Form::parse(&req.body)?;
            let who = self
                .authenticate_client(&form, req.authorization.as_deref(), &mut claimed)
                .await?;
            let may_launch = who
                .client
                .scopes
                .iter()
                .any(|s| matches!(s, Scope::Other(o) if o == "launch"));
            if who.method == Method::None || !may_launch {
                return Err(OAuthError::unauthorized_client(
                    "only a confidential client registered with the launch scope creates launches",
                ));
            }
            let patient = form.require("patient")?;
            let id_ok = |v: &str| {
                !v.is_empty()
                    && v.len() <= 64
                    && v.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            };
            if !id_ok(patient) || form.get("encounter").is_some_and(|e| !id_ok(e)) {
                return Err(OAuthError::invalid_request(
                    "patient and encounter are logical ids",
                ));
            }
            if let Some(role) = form.get("role") {
                if self.policy().role(role).is_none() {
                    return Err(OAuthError::invalid_request(format!(
                        "'{}' is not a care-record role",
                        printable(role)
                    )));
                }
            }
            let ctx = LaunchContext {
                patient: patient.to_string(),
                encounter: form.get("encounter").map(str::to_string),
                user: form.get("user").map(|u| u.chars().take(128).collect()),
                role: form.get("role").map(str::to_string),
                org: form.get("org").map(|o| o.chars().take(16).collect()),
                need_patient_banner: form.get("need_patient_banner") != Some("false"),
                smart_style_url: form.get("smart_style_url").map(str::to_string),
            };
            let launch = secrets::random();
            let store = self.store().clone();
            let (hash, by, text) = (
                secrets::digest(&launch),
                who.client.id.clone(),
                json!(ctx).to_string(),
            );
            crate::blocking(move || store.put_launch(&hash, &by, &text, LAUNCH_TTL)).await?;
            let mut body = json!({"launch": launch, "expires_in": LAUNCH_TTL});
            // Naming the app gives the URL to open it with.
            if let Some(app) = form.get("app") {
                let app = self
                    .known_client(app)
                    .await
                    .map_err(|_| OAuthError::invalid_request("app names no registered client"))?;
                if let Some(url) = &app.launch_url {
                    body["launch_url"] = json!(with_query(
                        url,
                        &[("iss", &self.settings().fhir_base), ("launch", &launch)]
                    ));
                }
            }
            context = Some(ctx);
            Ok(body)
        }
        .await;
        let events = match (&result, &context) {
            (Ok(_), Some(ctx)) => vec![self.event(req, AuthStep::LaunchCreated, 200, |e| {
                e.client_id = claimed.clone();
                e.user = ctx.user.clone();
                e.role = ctx.role.clone();
                e.org = ctx.org.clone();
                e.patient = Some(ctx.patient.clone());
            })],
            (Err(err), _) => vec![self.event(req, AuthStep::Refused, err.code.status(), |e| {
                e.client_id = claimed.clone();
                e.description = Some(format!("launch: {err}"));
            })],
            (Ok(_), None) => Vec::new(),
        };
        Reply { result, events }
    }
}
