//! What a client is granted: the scopes it asked for, each narrowed to what a limit allows (the
//! client's registered scopes, then the user's role ceiling). A wildcard asked for under a
//! limit naming types becomes those types; permission letters are intersected; a limit's
//! search restriction is added to the grant. v1 scopes are answered in v1 form when the narrowed
//! permissions still have one (`.read`, `.write`, `.*`).

use crate::policy::{Policy, RolePolicy};
use crate::scope::{parse_scope, Context, Permissions, ResourceScope, Scope, ScopeError};

/// How far a limit reaches beyond its own context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// A `user/` limit also covers `patient/` scopes: patient access is user access confined to
    /// one compartment (role ceilings and client registrations both work this way).
    UserCoversPatient,
    /// Contexts must match exactly.
    Exact,
}

/// A requested scope together with the form it was asked in.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Asked {
    scope: Scope,
    v1: bool,
}

/// Narrows `requested` (a space-separated scope string) to `limit`; non-resource scopes
/// (`openid`, `launch/patient`, `offline_access`, …) pass only when `limit` names them too.
/// The answer is a space-separated scope string, each scope once.
pub fn narrow(requested: &str, limit: &[Scope], reach: Reach) -> Result<String, ScopeError> {
    let asked: Vec<Asked> = requested
        .split_whitespace()
        .map(|s| {
            Ok(Asked {
                v1: is_v1(s),
                scope: parse_scope(s)?,
            })
        })
        .collect::<Result<_, ScopeError>>()?;
    let mut out: Vec<String> = Vec::new();
    let mut granted: Vec<ResourceScope> = Vec::new();
    let mut push = |s: String| {
        if !out.contains(&s) {
            out.push(s);
        }
    };
    for a in &asked {
        match &a.scope {
            Scope::Other(name) => {
                if limit
                    .iter()
                    .any(|l| matches!(l, Scope::Other(n) if n == name))
                {
                    push(name.clone());
                }
            }
            Scope::Resource(r) => {
                let mut mine: Vec<ResourceScope> = limit
                    .iter()
                    .filter_map(|l| match l {
                        // A wildcard asked for never reaches the types kept from wildcards.
                        Scope::Resource(l)
                            if r.resource_type.is_none()
                                && l.resource_type
                                    .as_deref()
                                    .is_some_and(|t| NOT_UNDER_WILDCARD.contains(&t)) =>
                        {
                            None
                        }
                        Scope::Resource(l) => intersect(r, l, reach),
                        Scope::Other(_) => None,
                    })
                    .collect();
                // A wildcard asked for under a limit with both a wildcard and a named type
                // yields both; the named one adds nothing the wildcard does not already give.
                let all = mine.clone();
                mine.retain(|g| !all.iter().any(|o| o != g && implies(o, g)));
                for g in mine {
                    if !granted.iter().any(|o| o == &g || implies(o, &g)) {
                        push(format_scope(&g, a.v1));
                        granted.push(g);
                    }
                }
            }
        }
    }
    Ok(out.join(" "))
}

/// Narrows `requested` to a role's ceiling (resource scopes only: non-resource scopes are not
/// the role's business and pass unchanged). A `*` in the ceiling does not reach the types the
/// policy keeps out of wildcards (AuditEvent), so asking for one of those by name gets nothing.
pub fn narrow_to_role(
    requested: &str,
    role: &RolePolicy,
    policy: &Policy,
) -> Result<String, ScopeError> {
    let mut limit: Vec<Scope> = role.ceiling.iter().cloned().map(Scope::Resource).collect();
    let mut kept = Vec::new();
    for s in requested.split_whitespace() {
        match parse_scope(s)? {
            Scope::Other(o) => limit.push(Scope::Other(o)),
            Scope::Resource(r) => {
                let named = r.resource_type.as_deref();
                let excluded =
                    named.is_some_and(|t| policy.wildcard_excludes.iter().any(|x| x == t));
                let by_name = role
                    .ceiling
                    .iter()
                    .any(|c| c.resource_type.as_deref() == named);
                if excluded && !by_name {
                    continue;
                }
            }
        }
        kept.push(s);
    }
    narrow(&kept.join(" "), &limit, Reach::UserCoversPatient)
}

fn is_v1(scope: &str) -> bool {
    let body = scope.split('?').next().unwrap_or(scope);
    body.ends_with(".read") || body.ends_with(".write") || body.ends_with(".*")
}

/// True when `a` grants everything `b` does.
/// Types a wildcard scope never covers (the role policy's `wildcard_excludes`): a scope naming
/// one is kept beside a wildcard, not folded into it, or the grant would lose it.
const NOT_UNDER_WILDCARD: &[&str] = &["AuditEvent"];

fn implies(a: &ResourceScope, b: &ResourceScope) -> bool {
    let (p, q) = (a.permissions, b.permissions);
    let wildcard_covers = a.resource_type.is_none()
        && !b
            .resource_type
            .as_deref()
            .is_some_and(|t| NOT_UNDER_WILDCARD.contains(&t));
    a.context == b.context
        && (wildcard_covers || a.resource_type == b.resource_type)
        && (!q.create || p.create)
        && (!q.read || p.read)
        && (!q.update || p.update)
        && (!q.delete || p.delete)
        && (!q.search || p.search)
        && a.restrictions.iter().all(|x| b.restrictions.contains(x))
}

/// The part of `r` that `limit` allows, if any.
fn intersect(r: &ResourceScope, limit: &ResourceScope, reach: Reach) -> Option<ResourceScope> {
    let context_ok = r.context == limit.context
        || (reach == Reach::UserCoversPatient
            && r.context == Context::Patient
            && limit.context == Context::User);
    if !context_ok {
        return None;
    }
    let resource_type = match (&r.resource_type, &limit.resource_type) {
        (t, None) => t.clone(),
        (None, Some(t)) => Some(t.clone()),
        (Some(a), Some(b)) if a == b => Some(a.clone()),
        _ => return None,
    };
    let (p, q) = (r.permissions, limit.permissions);
    let permissions = Permissions {
        create: p.create && q.create,
        read: p.read && q.read,
        update: p.update && q.update,
        delete: p.delete && q.delete,
        search: p.search && q.search,
    };
    if permissions == Permissions::default() {
        return None;
    }
    let mut restrictions = r.restrictions.clone();
    for x in &limit.restrictions {
        if !restrictions.contains(x) {
            restrictions.push(x.clone());
        }
    }
    Some(ResourceScope {
        context: r.context,
        resource_type,
        permissions,
        restrictions,
    })
}

/// A resource scope as text, in v1 form when asked so and the permissions have one.
pub fn format_scope(s: &ResourceScope, v1: bool) -> String {
    let context = match s.context {
        Context::Patient => "patient",
        Context::User => "user",
        Context::System => "system",
    };
    let resource = s.resource_type.as_deref().unwrap_or("*");
    let p = s.permissions;
    let v1_form = match (p.create, p.read, p.update, p.delete, p.search) {
        (false, true, false, false, true) => Some("read"),
        (true, false, true, true, false) => Some("write"),
        (true, true, true, true, true) => Some("*"),
        _ => None,
    };
    let letters = match v1_form {
        Some(v) if v1 && s.restrictions.is_empty() => v.to_string(),
        _ => [
            (p.create, 'c'),
            (p.read, 'r'),
            (p.update, 'u'),
            (p.delete, 'd'),
            (p.search, 's'),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, c)| *c)
        .collect(),
    };
    let mut text = format!("{context}/{resource}.{letters}");
    for (i, (name, value)) in s.restrictions.iter().enumerate() {
        text.push(if i == 0 { '?' } else { '&' });
        text.push_str(&encode(name));
        text.push('=');
        text.push_str(&encode(value));
    }
    text
}

/// Percent-encodes what would break a scope apart or be read as an escape.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'|' | b':' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scope::parse_scopes;

    fn limit(s: &str) -> Vec<Scope> {
        parse_scopes(s).unwrap()
    }

    #[test]
    fn requested_scopes_are_narrowed_to_the_limit() {
        let client = limit("openid fhirUser launch/patient patient/*.rs user/Observation.cruds");
        let cases = [
            ("patient/*.rs", "patient/*.rs"),
            ("patient/*.cruds", "patient/*.rs"),
            ("patient/*.read", "patient/*.read"),
            ("patient/Observation.read", "patient/Observation.read"),
            ("patient/*.write", ""),
            ("user/*.rs", "user/Observation.rs"),
            ("user/*.*", "user/Observation.*"),
            ("user/Patient.rs", ""),
            ("system/*.rs", ""),
            ("openid fhirUser offline_access", "openid fhirUser"),
            (
                "launch/patient patient/Observation.rs?category=laboratory",
                "launch/patient patient/Observation.rs?category=laboratory",
            ),
            ("patient/Patient.r patient/Patient.r", "patient/Patient.r"),
        ];
        for (asked, granted) in cases {
            assert_eq!(
                narrow(asked, &client, Reach::Exact).unwrap(),
                granted,
                "{asked}"
            );
        }
        // A user/ limit covers patient/ when the reach says so.
        let role = limit("user/*.rs");
        assert_eq!(
            narrow("patient/Condition.rs", &role, Reach::UserCoversPatient).unwrap(),
            "patient/Condition.rs"
        );
        assert_eq!(
            narrow("patient/Condition.rs", &role, Reach::Exact).unwrap(),
            ""
        );
        assert!(narrow("user/Nonsense.rs", &role, Reach::Exact).is_err());
        // The audit trail is never under a wildcard, so asking for both keeps both.
        let citizen = parse_scopes("patient/*.rs patient/AuditEvent.rs").unwrap();
        assert_eq!(
            narrow("patient/*.rs patient/AuditEvent.rs", &citizen, Reach::Exact).unwrap(),
            "patient/*.rs patient/AuditEvent.rs"
        );
    }

    #[test]
    fn role_ceilings_add_restrictions_and_keep_other_scopes() {
        let policy = crate::Policy::default_policy();
        let pharmacist = policy.role("pharmacist").unwrap();
        let granted = narrow_to_role("openid user/*.rs user/Flag.rs", pharmacist, &policy).unwrap();
        assert!(granted.starts_with("openid "), "{granted}");
        assert!(!granted.contains("Flag"), "{granted}");
        assert!(
            granted.contains("user/Observation.rs?category="),
            "{granted}"
        );
        // Whatever is granted parses again.
        parse_scopes(&granted).unwrap();
        let receptionist = policy.role("receptionist").unwrap();
        assert_eq!(
            narrow_to_role("user/*.cruds", receptionist, &policy).unwrap(),
            "user/Patient.crus user/RelatedPerson.rs user/Appointment.crus user/Practitioner.rs \
             user/PractitionerRole.rs user/Organization.rs user/Location.rs"
        );
        // A wildcard and a named type in the ceiling give the wildcard once.
        let patient = policy.role("patient").unwrap();
        assert_eq!(
            narrow_to_role("patient/*.rs", patient, &policy).unwrap(),
            "patient/*.rs"
        );
        // A wildcard ceiling does not reach AuditEvent; a ceiling naming it does.
        let gp = policy.role("gp").unwrap();
        assert_eq!(
            narrow_to_role("user/AuditEvent.rs", gp, &policy).unwrap(),
            ""
        );
        let po = policy.role("privacy-officer").unwrap();
        assert_eq!(
            narrow_to_role("user/AuditEvent.rs", po, &policy).unwrap(),
            "user/AuditEvent.rs"
        );
    }
}
