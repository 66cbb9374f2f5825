//! SMART App Launch scopes (https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html):
//! v2 `(patient|user|system)/(Type|*).[c][r][u][d][s][?param=value&…]` and v1 `.read/.write/.*`,
//! which map to v2 `.rs`, `.cud` and `.cruds`.

use fhir_model::search_params;

/// Whose data a scope is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    /// `patient/`: only the data of the token's patient (their compartment).
    Patient,
    /// `user/`: what the user may see.
    User,
    /// `system/`: a backend service.
    System,
}

/// The v2 permission letters a scope grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Permissions {
    /// `c`: create.
    pub create: bool,
    /// `r`: read, vread and instance history.
    pub read: bool,
    /// `u`: update and patch.
    pub update: bool,
    /// `d`: delete.
    pub delete: bool,
    /// `s`: search and type/system history.
    pub search: bool,
}

/// An interaction to authorise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Interaction {
    /// read.
    Read,
    /// vread.
    Vread,
    /// instance history.
    HistoryInstance,
    /// search (type, compartment or system).
    Search,
    /// type or system history.
    HistoryType,
    /// create.
    Create,
    /// update or patch.
    Update,
    /// delete.
    Delete,
}

impl Permissions {
    /// True when these permissions cover the interaction.
    pub fn covers(&self, interaction: Interaction) -> bool {
        match interaction {
            Interaction::Read | Interaction::Vread | Interaction::HistoryInstance => self.read,
            Interaction::Search | Interaction::HistoryType => self.search,
            Interaction::Create => self.create,
            Interaction::Update => self.update,
            Interaction::Delete => self.delete,
        }
    }
}

/// A scope on FHIR resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceScope {
    /// `patient/`, `user/` or `system/`.
    pub context: Context,
    /// The resource type, or `None` for `*`.
    pub resource_type: Option<String>,
    /// What may be done.
    pub permissions: Permissions,
    /// Search restrictions (`?category=…|laboratory`), decoded, each checked against the
    /// type's search parameters; they become SQL filters through the search compiler.
    pub restrictions: Vec<(String, String)>,
}

impl ResourceScope {
    /// True when this scope grants `interaction` on resources of `resource_type` (restrictions
    /// aside: they narrow which resources, not which interactions).
    pub fn allows(&self, resource_type: &str, interaction: Interaction) -> bool {
        self.resource_type
            .as_deref()
            .is_none_or(|t| t == resource_type)
            && self.permissions.covers(interaction)
    }
}

/// One scope of a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// A resource scope.
    Resource(ResourceScope),
    /// Anything else (`openid`, `fhirUser`, `launch/patient`, `offline_access`, …).
    Other(String),
}

/// Why a scope string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid scope '{scope}': {reason}")]
pub struct ScopeError {
    /// The scope as written.
    pub scope: String,
    /// What is wrong with it.
    pub reason: String,
}

/// Parses a space-separated scope claim; any malformed resource scope refuses the whole claim,
/// because silently dropping part of what a client was granted hides mistakes.
pub fn parse_scopes(claim: &str) -> Result<Vec<Scope>, ScopeError> {
    claim.split_whitespace().map(parse_scope).collect()
}

/// Parses one scope.
pub fn parse_scope(scope: &str) -> Result<Scope, ScopeError> {
    let err = |reason: &str| ScopeError {
        scope: scope.to_string(),
        reason: reason.to_string(),
    };
    let (context, rest) = match scope.split_once('/') {
        Some(("patient", rest)) => (Context::Patient, rest),
        Some(("user", rest)) => (Context::User, rest),
        Some(("system", rest)) => (Context::System, rest),
        _ => return Ok(Scope::Other(scope.to_string())),
    };
    let (resource_and_perms, query) = match rest.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (rest, None),
    };
    let (resource, perms) = resource_and_perms
        .split_once('.')
        .ok_or_else(|| err("expected Type.permissions"))?;
    let resource_type = match resource {
        "*" => None,
        t if fhir_model::elements::is_resource_type(t) => Some(t.to_string()),
        _ => return Err(err("unknown resource type")),
    };
    let permissions = match perms {
        "read" => Permissions {
            read: true,
            search: true,
            ..Permissions::default()
        },
        "write" => Permissions {
            create: true,
            update: true,
            delete: true,
            ..Permissions::default()
        },
        "*" => Permissions {
            create: true,
            read: true,
            update: true,
            delete: true,
            search: true,
        },
        letters => v2_permissions(letters)
            .ok_or_else(|| err("permissions must be c, r, u, d, s in that order"))?,
    };
    let restrictions = match query {
        None => Vec::new(),
        Some(q) => {
            let t = resource_type
                .as_deref()
                .ok_or_else(|| err("restrictions need a resource type, not *"))?;
            parse_restrictions(t, q).map_err(|reason| err(&reason))?
        }
    };
    Ok(Scope::Resource(ResourceScope {
        context,
        resource_type,
        permissions,
        restrictions,
    }))
}

fn v2_permissions(letters: &str) -> Option<Permissions> {
    if letters.is_empty() {
        return None;
    }
    let mut p = Permissions::default();
    let mut last = 0;
    for c in letters.chars() {
        let pos = "cruds".find(c)? + 1;
        if pos <= last {
            return None;
        }
        last = pos;
        match c {
            'c' => p.create = true,
            'r' => p.read = true,
            'u' => p.update = true,
            'd' => p.delete = true,
            _ => p.search = true,
        }
    }
    Some(p)
}

fn parse_restrictions(resource_type: &str, query: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("restriction '{pair}' has no value"))?;
        let name = decode(name)?;
        let value = decode(value)?;
        let base = name.split(':').next().unwrap_or(&name);
        if search_params::lookup(resource_type, base).is_none() {
            return Err(format!(
                "'{name}' is not a search parameter of {resource_type}"
            ));
        }
        if value.is_empty() {
            return Err(format!("restriction '{name}' has an empty value"));
        }
        out.push((name, value));
    }
    Ok(out)
}

fn decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad percent-encoding in '{s}'"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("'{s}' is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(s: &str) -> ResourceScope {
        match parse_scope(s).unwrap() {
            Scope::Resource(r) => r,
            other => panic!("{s} parsed as {other:?}"),
        }
    }

    #[test]
    fn v2_and_v1_forms() {
        let r = resource("patient/Observation.rs");
        assert_eq!(r.context, Context::Patient);
        assert_eq!(r.resource_type.as_deref(), Some("Observation"));
        assert!(
            r.allows("Observation", Interaction::Read)
                && r.allows("Observation", Interaction::Search)
        );
        assert!(
            !r.allows("Observation", Interaction::Create)
                && !r.allows("Patient", Interaction::Read)
        );
        assert_eq!(
            resource("user/*.read").permissions,
            resource("user/*.rs").permissions
        );
        assert_eq!(
            resource("system/Patient.write").permissions,
            resource("system/Patient.cud").permissions
        );
        assert_eq!(
            resource("user/Flag.*").permissions,
            resource("user/Flag.cruds").permissions
        );
        assert!(resource("user/*.cruds").allows("AuditEvent", Interaction::Delete));
        assert!(resource("user/Patient.r").allows("Patient", Interaction::HistoryInstance));
        assert!(!resource("user/Patient.r").allows("Patient", Interaction::HistoryType));
    }

    #[test]
    fn restrictions_are_checked_and_decoded() {
        let r = resource("patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory");
        assert_eq!(
            r.restrictions,
            vec![(
                "category".to_string(),
                "http://terminology.hl7.org/CodeSystem/observation-category|laboratory".to_string()
            )]
        );
        let r = resource("user/Flag.rs?category=safeguarding&status=active%2Cinactive");
        assert_eq!(
            r.restrictions[1],
            ("status".to_string(), "active,inactive".to_string())
        );
    }

    #[test]
    fn other_scopes_pass_through() {
        for s in [
            "openid",
            "fhirUser",
            "launch",
            "launch/patient",
            "offline_access",
            "online_access",
        ] {
            assert_eq!(parse_scope(s).unwrap(), Scope::Other(s.to_string()));
        }
        assert_eq!(parse_scopes("openid patient/Patient.r").unwrap().len(), 2);
    }

    #[test]
    fn malformed_and_hostile_scopes_are_refused() {
        for s in [
            "patient/Observation.sr",
            "patient/Observation.rr",
            "patient/Observation.",
            "patient/Observation.x",
            "patient/Observation",
            "user/Dragon.rs",
            "user/*.rs?category=x",
            "patient/Observation.rs?bogus=1",
            "patient/Observation.rs?category",
            "patient/Observation.rs?category=",
            "patient/Observation.rs?code='%20OR%201=1--&x",
            "patient/Observation.rs?category=%zz",
        ] {
            assert!(parse_scope(s).is_err(), "{s} should be refused");
        }
        assert!(parse_scopes("openid patient/Observation.xyz").is_err());
    }
}
