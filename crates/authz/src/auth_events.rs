//! AuditEvents of the authorization server, in the manner of IHE BALP's user-authentication
//! pattern: type DICOM 110114 "User Authentication", subtype 110122 "Login" (or 110123
//! "Logout" for a revocation) beside the project's own code saying which step it was, so that a
//! privacy officer finds them with `AuditEvent?type=110114` or `AuditEvent?subtype=token-issued`.
//! Nothing secret goes in: never a token, code, secret or verifier, only their owners and
//! outcomes.

use serde_json::{json, Value};

use crate::audit::{CLIENT_ID_SYSTEM, REQUEST_ID_SYSTEM, ROLE_SYSTEM, USER_ID_SYSTEM};

/// Code system of the authorization server's steps (`AuditEvent.subtype`).
pub const AUTH_EVENT_SYSTEM: &str = "https://invicta.example.org/fhir/CodeSystem/auth-event";

/// Which step of the authorization server an event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthStep {
    /// A user signed in (upstream identity provider or the development page).
    SignIn,
    /// An access token was issued.
    TokenIssued,
    /// A token endpoint request (or an authorization request) was refused.
    Refused,
    /// A refresh token was exchanged.
    TokenRefreshed,
    /// A token was revoked.
    TokenRevoked,
    /// A point-of-care system created an EHR launch context.
    LaunchCreated,
}

impl AuthStep {
    /// The project's code for the step.
    pub fn code(self) -> &'static str {
        match self {
            AuthStep::SignIn => "sign-in",
            AuthStep::TokenIssued => "token-issued",
            AuthStep::Refused => "refused",
            AuthStep::TokenRefreshed => "token-refreshed",
            AuthStep::TokenRevoked => "token-revoked",
            AuthStep::LaunchCreated => "launch-created",
        }
    }
}

/// One authentication event.
#[derive(Debug, Clone)]
pub struct AuthEvent {
    /// The step.
    pub step: AuthStep,
    /// HTTP status of the answer (2xx/3xx success, 4xx refused, 5xx failed).
    pub status: u16,
    /// The OAuth client, when known.
    pub client_id: Option<String>,
    /// The user (`sub`), when known.
    pub user: Option<String>,
    /// The user's care-record role.
    pub role: Option<String>,
    /// The user's organisation (ODS code).
    pub org: Option<String>,
    /// The patient in context.
    pub patient: Option<String>,
    /// Why it was refused (the OAuth error and its description), or what was granted.
    pub description: Option<String>,
    /// The client's network address.
    pub address: Option<String>,
    /// The request id.
    pub request_id: String,
    /// When (RFC 3339).
    pub recorded: String,
}

impl AuthEvent {
    /// The AuditEvent resource.
    pub fn to_audit_event(&self) -> Value {
        let outcome = match self.status {
            0..=399 => "0",
            400..=499 => "4",
            _ => "8",
        };
        let dicom = if self.step == AuthStep::TokenRevoked {
            ("110123", "Logout")
        } else {
            ("110122", "Login")
        };
        let mut agents = Vec::new();
        let mut user = json!({
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP", "display": "information recipient"}]},
            "who": match &self.user {
                Some(sub) => json!({"identifier": {"system": USER_ID_SYSTEM, "value": sub}}),
                None => json!({"display": "unauthenticated user"}),
            },
            "requestor": true
        });
        if let Some(role) = &self.role {
            user["role"] = json!([{"coding": [{"system": ROLE_SYSTEM, "code": role}]}]);
        }
        if let Some(org) = &self.org {
            user["location"] = json!({"display": format!("ODS {org}")});
            user["altId"] = json!(org);
        }
        if let Some(addr) = &self.address {
            user["network"] = json!({"address": addr, "type": "2"});
        }
        agents.push(user);
        if let Some(client) = &self.client_id {
            agents.push(json!({
                "type": {"coding": [{"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110150", "display": "Application"}]},
                "who": {"identifier": {"system": CLIENT_ID_SYSTEM, "value": client}},
                "requestor": false
            }));
        }
        let mut entities = Vec::new();
        if let Some(p) = &self.patient {
            entities.push(json!({
                "what": {"reference": format!("Patient/{p}")},
                "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "1", "display": "Person"},
                "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1", "display": "Patient"}
            }));
        }
        entities.push(json!({
            "what": {"identifier": {"system": REQUEST_ID_SYSTEM, "value": self.request_id}},
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2", "display": "System Object"},
            "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "3", "display": "Report"}
        }));
        let mut event = json!({
            "resourceType": "AuditEvent",
            "type": {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110114", "display": "User Authentication"},
            "subtype": [
                {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": dicom.0, "display": dicom.1},
                {"system": AUTH_EVENT_SYSTEM, "code": self.step.code()}
            ],
            "action": "E",
            "recorded": self.recorded,
            "outcome": outcome,
            "agent": agents,
            "source": {
                "site": "Invicta",
                "observer": {"display": "Invicta authorization server"},
                "type": [{"system": "http://terminology.hl7.org/CodeSystem/security-source-type", "code": "4", "display": "Application Server"}]
            },
            "entity": entities
        });
        if let Some(desc) = &self.description {
            event["outcomeDesc"] = json!(desc);
        }
        event
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_is_a_login_event_with_its_reason() {
        let e = AuthEvent {
            step: AuthStep::Refused,
            status: 400,
            client_id: Some("feed-1".into()),
            user: None,
            role: None,
            org: None,
            patient: None,
            description: Some("invalid_client: assertion replayed".into()),
            address: Some("127.0.0.1".into()),
            request_id: "r1".into(),
            recorded: "2026-12-02T12:00:00Z".into(),
        }
        .to_audit_event();
        assert_eq!(e["type"]["code"], "110114");
        assert_eq!(e["subtype"][0]["code"], "110122");
        assert_eq!(e["subtype"][1]["code"], "refused");
        assert_eq!(e["outcome"], "4");
        assert_eq!(e["agent"][1]["who"]["identifier"]["value"], "feed-1");
        assert_eq!(e["outcomeDesc"], "invalid_client: assertion replayed");
    }
}
