//! `invicta token`: prints an access token signed with the server's own key, so curl users,
//! tests and benchmarks get one without a login flow. Run it with the server's environment.

use authz::token::SigningKey;
use authz::Policy;
use serde_json::json;

use crate::cli::TokenArgs;
use crate::config::Config;

/// Builds and signs the token `args` ask for.
pub fn issue(
    config: &Config,
    args: &TokenArgs,
    policy: &Policy,
    key: &SigningKey,
) -> Result<String, String> {
    let TokenArgs {
        role,
        patient,
        scope,
        ttl,
        client,
        org,
        sub,
        purpose,
        reason,
    } = args.clone();
    let policy_role = policy.role(&role).ok_or_else(|| {
        let ids: Vec<&str> = policy.roles().map(|r| r.id.as_str()).collect();
        format!("'{role}' is not a role; roles: {}", ids.join(", "))
    })?;
    let scope = scope.unwrap_or_else(|| authz::decide::default_scopes(policy_role));
    authz::parse_scopes(&scope).map_err(|e| e.to_string())?;
    if scope.split_whitespace().any(|s| s.starts_with("patient/"))
        && patient.is_none()
        && role == "patient"
    {
        return Err("a patient token needs --patient ID".into());
    }
    let now = chrono::Utc::now().timestamp();
    let mut claims = json!({
        "iss": config.issuer,
        "aud": config.base_url,
        "sub": sub.unwrap_or_else(|| format!("{role}-user")),
        "role": role,
        "scope": scope,
        "client_id": client.unwrap_or_else(|| "invicta-token-tool".into()),
        "jti": uuid::Uuid::new_v4().to_string(),
        "iat": now,
        "nbf": now,
        "exp": now + ttl,
    });
    if let Some(p) = patient {
        claims["patient"] = json!(p);
        if role == "patient" {
            claims["fhirUser"] = json!(format!("Patient/{p}"));
        }
    }
    if let Some(o) = org {
        claims["org"] = json!(o);
    }
    if let Some(p) = purpose {
        claims["purpose_of_use"] = json!(p);
    }
    if let Some(r) = reason {
        claims["break_glass_reason"] = json!(r);
    }
    key.sign(&claims).map_err(|e| e.to_string())
}
