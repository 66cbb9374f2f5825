//! `invicta token`: prints an access token signed with the server's own key, so curl users,
//! tests and benchmarks get one without a login flow. Run it with the server's environment.

use authz::token::SigningKey;
use authz::Policy;
use serde_json::json;

use crate::config::Config;

/// Builds and signs the token the arguments ask for.
pub fn issue(config: &Config, policy: &Policy, key: &SigningKey) -> Result<String, String> {
    let mut role = None;
    let mut patient = None;
    let mut scope = None;
    let mut ttl: i64 = 3600;
    let mut client = None;
    let mut org = None;
    let mut sub = None;
    let mut purpose = None;
    let mut reason = None;
    let mut it = config.command_args.iter();
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--role" => role = Some(value()?),
            "--patient" => patient = Some(value()?),
            "--scope" => scope = Some(value()?),
            "--ttl" => {
                ttl = value()?
                    .parse()
                    .ok()
                    .filter(|t| *t > 0 && *t <= 86_400)
                    .ok_or("--ttl must be 1..86400 seconds")?
            }
            "--client" => client = Some(value()?),
            "--org" => org = Some(value()?),
            "--sub" => sub = Some(value()?),
            "--purpose" => purpose = Some(value()?),
            "--reason" => reason = Some(value()?),
            other => return Err(format!("unknown token option '{other}'")),
        }
    }
    let role = role.ok_or("invicta token needs --role ROLE")?;
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
