//! Who signed in: the person behind a session, as the identity provider (or the development
//! sign-in page) described them, mapped to a care-record role.

use serde::{Deserialize, Serialize};

/// A signed-in person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    /// Their id at the identity provider (`sub` of the tokens issued for them).
    pub sub: String,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Care-record role.
    pub role: String,
    /// ODS code of the organisation they act for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    /// Their FHIR resource (`Practitioner/…`, `PractitionerRole/…`, `Patient/…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fhir_user: Option<String>,
    /// A citizen's own Patient id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient: Option<String>,
    /// Which identity provider signed them in (`dev` for the development page).
    pub idp: String,
    /// When they signed in (seconds since the epoch).
    pub auth_time: i64,
}
