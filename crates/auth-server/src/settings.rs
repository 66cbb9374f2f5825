//! What the authorization server is told about its place: its issuer, the FHIR base its tokens
//! are for, and where its endpoints are.

/// Lifetime of a backend service's access token (SMART Backend Services: at most five minutes).
pub const BACKEND_TOKEN_TTL: i64 = 300;

/// The longest lifetime of any token the server signs (`invicta token --ttl` included); a
/// retired signing key stays trusted this long, plus the clock leeway.
pub const MAX_TOKEN_TTL: i64 = 86_400;

/// A retired key's grace: the longest token lifetime plus the largest clock leeway.
pub const KEY_GRACE_SECS: i64 = MAX_TOKEN_TTL + 300;

/// The authorization server's settings.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// `iss` of the tokens it signs.
    pub issuer: String,
    /// The FHIR base URL: the `aud` of its tokens, and what `aud` in an authorization request
    /// must name.
    pub fhir_base: String,
    /// Where the endpoints live: `{auth_base}/authorize`, `/token`, `/introspect`, `/revoke`.
    pub auth_base: String,
    /// The claim the FHIR endpoints read the care-record role from.
    pub role_claim: String,
    /// The development sign-in page is on (never for real records).
    pub dev_signin: bool,
}

impl AuthSettings {
    /// Settings for a server whose FHIR base is `fhir_base` and whose tokens say `issuer`. The
    /// endpoints sit beside the FHIR base: `https://host/fhir` has `https://host/auth/…`.
    pub fn new(fhir_base: &str, issuer: &str) -> AuthSettings {
        let fhir_base = fhir_base.trim_end_matches('/').to_string();
        let root = fhir_base
            .strip_suffix("/fhir")
            .unwrap_or(&fhir_base)
            .to_string();
        AuthSettings {
            issuer: issuer.to_string(),
            auth_base: format!("{root}/auth"),
            fhir_base,
            role_claim: "role".into(),
            dev_signin: false,
        }
    }

    /// The token endpoint (also the `aud` a client assertion must name).
    pub fn token_url(&self) -> String {
        format!("{}/token", self.auth_base)
    }

    /// The authorization endpoint.
    pub fn authorize_url(&self) -> String {
        format!("{}/authorize", self.auth_base)
    }

    /// The introspection endpoint.
    pub fn introspection_url(&self) -> String {
        format!("{}/introspect", self.auth_base)
    }

    /// The revocation endpoint.
    pub fn revocation_url(&self) -> String {
        format!("{}/revoke", self.auth_base)
    }

    /// True when the server is reached over https (cookies are then `Secure`).
    pub fn secure(&self) -> bool {
        self.auth_base.starts_with("https://")
    }

    /// The JWKS of the server's own keys.
    pub fn jwks_url(&self) -> String {
        let root = self
            .auth_base
            .strip_suffix("/auth")
            .unwrap_or(&self.auth_base);
        format!("{root}/.well-known/jwks.json")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_sit_beside_the_fhir_base() {
        let s = AuthSettings::new("https://ehr.example/fhir/", "https://ehr.example/fhir");
        assert_eq!(s.fhir_base, "https://ehr.example/fhir");
        assert_eq!(s.token_url(), "https://ehr.example/auth/token");
        assert_eq!(s.jwks_url(), "https://ehr.example/.well-known/jwks.json");
        let odd = AuthSettings::new("https://x.example/api", "i");
        assert_eq!(odd.authorize_url(), "https://x.example/api/auth/authorize");
    }
}
