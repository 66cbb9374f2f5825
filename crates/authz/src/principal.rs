//! Who is asking: the verified token's claims read into a [`Principal`], with the care-record
//! role worked out from the NHS CIS2 RBAC claims (`nhsid_nrbac_roles` + `selected_roleid`) or
//! from a plain role claim.

use serde_json::{Map, Value};

use crate::policy::Policy;
use crate::scope::{parse_scopes, ResourceScope, Scope};

/// The authenticated caller of one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    /// `sub`.
    pub subject: String,
    /// Role id from the policy.
    pub role: String,
    /// ODS code of the user's (or feed's) organisation.
    pub org: Option<String>,
    /// The OAuth client (`client_id`, else `azp`).
    pub client_id: Option<String>,
    /// Token id (`jti`), recorded in audit as the policy the access ran under.
    pub jti: Option<String>,
    /// Launch context patient (`patient`).
    pub patient: Option<String>,
    /// `fhirUser`, e.g. `Practitioner/123`.
    pub fhir_user: Option<String>,
    /// Display name (`name`).
    pub name: Option<String>,
    /// Resource scopes granted.
    pub scopes: Vec<ResourceScope>,
    /// Purpose of use asked for in the token (`purpose_of_use`, v3-ActReason).
    pub purpose_of_use: Option<String>,
    /// Break-glass reason in the token (`break_glass_reason`).
    pub break_glass_reason: Option<String>,
}

/// Why the claims do not describe a usable principal (a 401 `invalid_token`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PrincipalError(pub String);

fn text(claims: &Map<String, Value>, name: &str) -> Option<String> {
    claims
        .get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Reads a principal from verified claims. `role_claim` names the plain role claim (`role` by
/// default); CIS2 RBAC claims take precedence when present.
pub fn from_claims(
    claims: &Map<String, Value>,
    policy: &Policy,
    role_claim: &str,
) -> Result<Principal, PrincipalError> {
    let err = |m: &str| PrincipalError(m.to_string());
    let subject = text(claims, "sub").ok_or_else(|| err("the token has no 'sub'"))?;
    let mut org = text(claims, "org");
    let role = if let Some(entries) = claims.get("nhsid_nrbac_roles").and_then(Value::as_array) {
        let selected = text(claims, "selected_roleid");
        let entry = match (&selected, entries.len()) {
            (Some(sel), _) => entries
                .iter()
                .find(|e| e["person_roleid"].as_str() == Some(sel.as_str()))
                .ok_or_else(|| err("selected_roleid matches no nhsid_nrbac_roles entry"))?,
            (None, 1) => &entries[0],
            (None, _) => {
                return Err(err(
                    "several nhsid_nrbac_roles entries and no selected_roleid",
                ))
            }
        };
        let code = entry["role_code"]
            .as_str()
            .ok_or_else(|| err("the selected RBAC role has no role_code"))?;
        // `S0010:G0020:R8000`: the job role is the R-code.
        let job = code
            .split(':')
            .find(|p| p.starts_with('R'))
            .ok_or_else(|| err("role_code has no job role (Rnnnn)"))?;
        if let Some(o) = entry["org_code"].as_str() {
            org = Some(o.to_string());
        }
        policy
            .role_for_job_role(job)
            .ok_or_else(|| PrincipalError(format!("job role {job} has no care-record role")))?
            .id
            .clone()
    } else {
        let r = text(claims, role_claim)
            .ok_or_else(|| PrincipalError(format!("the token has no '{role_claim}' claim")))?;
        policy
            .role(&r)
            .ok_or_else(|| PrincipalError(format!("'{r}' is not a care-record role")))?
            .id
            .clone()
    };
    let scope_text = match claims.get("scope").or_else(|| claims.get("scp")) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    };
    let scopes = parse_scopes(&scope_text)
        .map_err(|e| PrincipalError(e.to_string()))?
        .into_iter()
        .filter_map(|s| match s {
            Scope::Resource(r) => Some(r),
            Scope::Other(_) => None,
        })
        .collect();
    Ok(Principal {
        subject,
        role,
        org,
        client_id: text(claims, "client_id").or_else(|| text(claims, "azp")),
        jti: text(claims, "jti"),
        patient: text(claims, "patient"),
        fhir_user: text(claims, "fhirUser"),
        name: text(claims, "name"),
        scopes,
        purpose_of_use: text(claims, "purpose_of_use"),
        break_glass_reason: text(claims, "break_glass_reason"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn cis2_selected_role_and_org() {
        let p = Policy::default_policy();
        let c = claims(json!({
            "sub": "555021935107", "scope": "user/*.rs openid",
            "nhsid_nrbac_roles": [
                {"person_roleid": "1", "org_code": "RWF", "role_code": "S8000:G8000:R8000"},
                {"person_roleid": "2", "org_code": "G82984", "role_code": "S8000:G8000:R0260"}
            ],
            "selected_roleid": "2"
        }));
        let pr = from_claims(&c, &p, "role").unwrap();
        assert_eq!(pr.role, "gp");
        assert_eq!(pr.org.as_deref(), Some("G82984"));
        assert_eq!(pr.scopes.len(), 1);
    }

    #[test]
    fn plain_role_claim_and_refusals() {
        let p = Policy::default_policy();
        let ok = from_claims(
            &claims(
                json!({"sub": "x", "role": "patient", "patient": "p1", "scope": "patient/*.rs"}),
            ),
            &p,
            "role",
        )
        .unwrap();
        assert_eq!(ok.patient.as_deref(), Some("p1"));
        for bad in [
            json!({"role": "gp"}),
            json!({"sub": "x", "role": "wizard"}),
            json!({"sub": "x"}),
            json!({"sub": "x", "role": "gp", "scope": "user/Observation.rs?subject.name=x"}),
            json!({"sub": "x", "role": "gp", "scope": "user/Observation.rs?_has:Flag:patient:status=active"}),
            json!({"sub": "x", "nhsid_nrbac_roles": [{"role_code": "S1:G1:R9999"}]}),
            json!({"sub": "x", "nhsid_nrbac_roles": [{"role_code": "R0260", "person_roleid": "1"}, {"role_code": "R0260", "person_roleid": "2"}]}),
        ] {
            assert!(
                from_claims(&claims(bad.clone()), &p, "role").is_err(),
                "{bad}"
            );
        }
    }
}
