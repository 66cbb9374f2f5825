//! Every search parameter's FHIRPath expressions, parsed once for the whole table and found by
//! the parameter's place in it: extraction runs them for every parameter of every resource
//! written, so finding them must cost no hashing of names and no scan of the table.

use std::sync::OnceLock;

use crate::fhirpath::{self, Dialect, Expression};
use crate::search_params::{self, ParamType, SearchParamDef};

/// One parameter's parsed expressions.
pub(super) struct Compiled {
    /// The parameter's expression.
    pub expr: Expression,
    /// For a composite: its two components' expressions and the second one's parameter type.
    pub parts: Option<(Expression, Expression, ParamType)>,
}

/// The parsed expressions of `p`, a parameter of the table; None for a special parameter, one
/// whose expression does not parse, or a definition from outside the table.
pub(super) fn compiled(p: &SearchParamDef) -> Option<&'static Compiled> {
    static TABLE: OnceLock<Vec<Option<Compiled>>> = OnceLock::new();
    let all = search_params::all_params();
    let table = TABLE.get_or_init(|| all.iter().map(compile).collect());
    table.get(position(all, p)?)?.as_ref()
}

/// The kind of a composite's second component, from the parameter its definition names.
pub(super) fn second_kind(p: &SearchParamDef) -> Option<ParamType> {
    if let Some(c) = compiled(p) {
        return c.parts.as_ref().map(|(_, _, kind)| *kind);
    }
    lookup_second_kind(p)
}

fn lookup_second_kind(p: &SearchParamDef) -> Option<ParamType> {
    let url = &p.components.get(1)?.definition;
    search_params::all_params()
        .iter()
        .find(|d| &d.url == url)
        .map(|d| d.kind)
}

fn compile(p: &SearchParamDef) -> Option<Compiled> {
    if p.kind == ParamType::Special {
        return None;
    }
    let expr = fhirpath::parse(&p.expression, Dialect::Search).ok()?;
    let parts = if p.kind == ParamType::Composite {
        let part =
            |i: usize| fhirpath::parse(&p.components.get(i)?.expression, Dialect::Search).ok();
        match (part(0), part(1), lookup_second_kind(p)) {
            (Some(first), Some(second), Some(kind)) => Some((first, second, kind)),
            _ => None,
        }
    } else {
        None
    };
    Some(Compiled { expr, parts })
}

/// Where `p` sits in `all`, when it is one of its elements (compared by address, not by value).
fn position(all: &[SearchParamDef], p: &SearchParamDef) -> Option<usize> {
    let size = std::mem::size_of::<SearchParamDef>();
    let offset = (p as *const SearchParamDef as usize).checked_sub(all.as_ptr() as usize)?;
    let i = offset / size;
    (offset % size == 0 && i < all.len()).then_some(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_parameter_of_the_table_is_found_by_its_place_and_others_are_not() {
        let all = search_params::all_params();
        for (i, p) in all.iter().enumerate() {
            assert_eq!(position(all, p), Some(i), "{} {}", p.resource, p.code);
        }
        let copy = all[0].clone();
        assert_eq!(position(all, &copy), None, "a copy is not the table's");
    }

    #[test]
    fn a_composite_keeps_its_parts_and_the_kind_of_its_value() {
        let p = search_params::lookup("Observation", "code-value-quantity").expect("defined");
        let c = compiled(p).expect("compiled");
        assert!(c.parts.is_some());
        assert_eq!(second_kind(p), Some(ParamType::Quantity));
        assert_eq!(
            second_kind(&p.clone()),
            Some(ParamType::Quantity),
            "outside the table"
        );
        let plain = search_params::lookup("Observation", "code").expect("defined");
        assert!(compiled(plain).expect("compiled").parts.is_none());
    }
}
