//! Which search shapes keep one good plan whatever their values, so the store may run them as
//! prepared statements on a generic plan and PostgreSQL plans them once per connection instead
//! of on every request (planning was most of a common search's time, `make bench-auth`).
//!
//! A generic plan estimates `code = $n` by the column's number of distinct values, so a common
//! value (`status=active`: a third of all MedicationStatements) looks as rare as any code and a
//! generic plan may start from it. A stable shape therefore has an *anchor*, a parameter that
//! can only match a few rows (`_id`, an `identifier`, or a reference to the patient through
//! `patient` or `subject`; a search in a patient's compartment has one already, see `plan`),
//! and every other parameter is *fenced*: compiled as a check of each
//! anchored row (`clause::Compiler::fence`), never as a set a plan could start from; a date
//! range is fenced too, and a `_sort` orders the anchored rows (no index gives a search's sort
//! keys in order, so every plan sorts what the anchor found). Without an anchor, or with a text
//! match, a chain, `_has` or a modifier, the best plan depends on the values, so such searches
//! are planned every time, as before.

use fhir_model::search_params::{self, ParamType};

/// How one query parameter takes part in a stable shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// Selects a few rows whatever its value: the plan starts from it.
    Anchor,
    /// An equality test of each anchored row.
    Fenced,
    /// Its best plan depends on its value.
    Unstable,
}

/// Reference parameters that point at the person whose record a resource is part of: one
/// person's rows are a bounded set, unlike an organisation's or a practitioner's.
const PATIENT_REFERENCES: &[&str] = &["patient", "subject"];

/// The role of `name` (with any modifier) in a search of `types`.
pub(crate) fn role(types: &[String], name: &str) -> Role {
    if name.contains('.') || name.starts_with("_has:") {
        return Role::Unstable;
    }
    let (base, modifier) = match name.split_once(':') {
        Some((b, m)) => (b, Some(m)),
        None => (name, None),
    };
    if base == "_id" {
        return if modifier.is_none() {
            Role::Anchor
        } else {
            Role::Unstable
        };
    }
    let Some(kind) = common_kind(types, base) else {
        return Role::Unstable;
    };
    match (kind, modifier) {
        (ParamType::Token, None) if base == "identifier" => Role::Anchor,
        (ParamType::Token, None) => Role::Fenced,
        // A range over the anchored rows: checked on each of them like an equality.
        (ParamType::Date, None) => Role::Fenced,
        (ParamType::Reference, m) => {
            // `patient:Patient=x` names the type; `:identifier`, `:missing` and the like do not.
            let typed = m.is_none_or(|m| m.starts_with(|c: char| c.is_ascii_uppercase()));
            match (typed, PATIENT_REFERENCES.contains(&base)) {
                (true, true) => Role::Anchor,
                (true, false) if m.is_none() => Role::Fenced,
                _ => Role::Unstable,
            }
        }
        _ => Role::Unstable,
    }
}

/// True when a search with these filter parameters (output, paging and count parameters left
/// out by the caller) has a stable shape: at least one anchor and nothing unstable.
pub(crate) fn is_stable(roles: &[Role]) -> bool {
    roles.contains(&Role::Anchor) && !roles.contains(&Role::Unstable)
}

/// The kind of `code` when every searched type defines it with the same kind.
fn common_kind(types: &[String], code: &str) -> Option<ParamType> {
    let first = search_params::lookup(types.first()?, code)?.kind;
    types[1..]
        .iter()
        .all(|t| search_params::lookup(t, code).is_some_and(|d| d.kind == first))
        .then_some(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roles(ty: &str, names: &[&str]) -> Vec<Role> {
        let types = vec![ty.to_string()];
        names.iter().map(|n| role(&types, n)).collect()
    }

    #[test]
    fn anchored_equality_searches_are_stable_and_the_rest_are_not() {
        for (ty, names) in [
            ("MedicationStatement", &["patient", "status"][..]),
            ("Observation", &["subject", "code"]),
            ("Observation", &["subject:Patient", "category", "status"]),
            ("Patient", &["identifier"]),
            ("Flag", &["patient", "status"]),
            ("Observation", &["_id"]),
            ("Observation", &["subject", "date"]),
            ("Observation", &["patient", "category", "date", "date"]),
        ] {
            assert!(is_stable(&roles(ty, names)), "{ty}?{names:?}");
        }
        for (ty, names) in [
            // No anchor: a common code alone has no one good plan.
            ("Observation", &["code"][..]),
            ("Observation", &["performer", "status"]),
            // A range without an anchor, a prefix match, a chain, _has and modifiers depend
            // on their values.
            ("Observation", &["date"]),
            ("Observation", &["subject", "date:missing"]),
            ("Patient", &["identifier", "family"]),
            ("Observation", &["subject.name"]),
            ("Patient", &["_has:Flag:patient:status"]),
            ("Observation", &["subject", "status:not"]),
            ("Observation", &["subject:identifier"]),
            ("Observation", &["subject", "code:text"]),
            ("Observation", &["subject", "nonsense"]),
        ] {
            assert!(!is_stable(&roles(ty, names)), "{ty}?{names:?}");
        }
    }
}
