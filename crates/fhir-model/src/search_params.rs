//! The R4 search-parameter table for every R4 resource type, held as data.
//!
//! The table is generated from the specification by `gen/gen_search_params.py` and embedded
//! with `include_str!`, so adding a type or parameter is a data change, not a code change.

use serde::Deserialize;
use std::collections::HashMap;
use std::sync::OnceLock;

/// The generated table (see `gen/README.md`); parsed once on first use.
const DATA: &str = include_str!("../data/search-parameters.json");

/// Pseudo resource type under which the parameters common to all resources are stored.
pub const COMMON_RESOURCE: &str = "Resource";

/// The FHIR search parameter type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamType {
    /// Free text matched by normalised prefix.
    String,
    /// A code, identifier or coding: `system|code`.
    Token,
    /// A date or date-time range.
    Date,
    /// A reference to another resource.
    Reference,
    /// A measured amount with units.
    Quantity,
    /// A plain decimal number.
    Number,
    /// A URI, matched exactly or by prefix/suffix.
    Uri,
    /// A tuple of other parameters.
    Composite,
    /// Parameter with bespoke semantics (e.g. near).
    Special,
}

impl ParamType {
    /// The FHIR code of this type (`string`, `token`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ParamType::String => "string",
            ParamType::Token => "token",
            ParamType::Date => "date",
            ParamType::Reference => "reference",
            ParamType::Quantity => "quantity",
            ParamType::Number => "number",
            ParamType::Uri => "uri",
            ParamType::Composite => "composite",
            ParamType::Special => "special",
        }
    }
}

impl std::fmt::Display for ParamType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One search parameter as it applies to one resource type.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SearchParamDef {
    /// Resource type the parameter belongs to (`Resource` for the common ones).
    pub resource: String,
    /// The name used in the query string.
    pub code: String,
    /// The parameter type.
    #[serde(rename = "type")]
    pub kind: ParamType,
    /// FHIRPath expression, reduced to this resource type's alternatives.
    pub expression: String,
    /// Resource types a reference parameter may point at.
    #[serde(default)]
    pub targets: Vec<String>,
    /// The specification's description for this resource type.
    pub description: String,
    /// Canonical URL of the SearchParameter definition.
    pub url: String,
    /// The parts of a composite parameter (empty otherwise).
    #[serde(default)]
    pub components: Vec<CompositeComponent>,
}

/// One part of a composite search parameter.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CompositeComponent {
    /// Canonical URL of the component's SearchParameter.
    pub definition: String,
    /// FHIRPath of the component, relative to the composite's expression.
    pub expression: String,
}

/// A parameter that places a resource in a patient's compartment.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct CompartmentParam {
    /// Search parameter code.
    pub code: String,
    /// Its expression reduced to the member resource type.
    pub expression: String,
}

#[derive(Deserialize)]
struct CompartmentSection {
    resources: HashMap<String, Vec<CompartmentParam>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTable {
    types: Vec<String>,
    params: Vec<SearchParamDef>,
    compartment: CompartmentSection,
}

struct Table {
    types: Vec<&'static str>,
    params: Vec<SearchParamDef>,
    by_type: HashMap<String, Vec<usize>>,
    compartment: HashMap<String, Vec<CompartmentParam>>,
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        // The data is generated and committed with the crate; a parse failure is a build defect
        // that the unit tests catch, never a runtime condition.
        let raw: RawTable =
            serde_json::from_str(DATA).expect("embedded search-parameters.json is valid");
        let mut by_type: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, p) in raw.params.iter().enumerate() {
            by_type.entry(p.resource.clone()).or_default().push(i);
        }
        // Leaked once: the table lives for the process, and borrowed names keep lookups cheap.
        let types = raw
            .types
            .into_iter()
            .map(|t| &*Box::leak(t.into_boxed_str()))
            .collect();
        Table {
            types,
            params: raw.params,
            by_type,
            compartment: raw.compartment.resources,
        }
    })
}

/// Every searchable resource type: all of R4's, sorted by name.
pub fn searchable_types() -> &'static [&'static str] {
    &table().types
}

/// Whether `resource_type` is a searchable (R4 resource) type.
pub fn is_searchable(resource_type: &str) -> bool {
    table().types.binary_search(&resource_type).is_ok()
}

/// All parameters for a type, including the common Resource ones (_id, _lastUpdated, _tag, _profile, _security, _source).
///
/// Types that are not searchable get an empty list; `"Resource"` gives just the common ones.
pub fn params_for(resource_type: &str) -> Vec<&'static SearchParamDef> {
    let t = table();
    let common = t
        .by_type
        .get(COMMON_RESOURCE)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    if resource_type == COMMON_RESOURCE {
        return common.iter().map(|&i| &t.params[i]).collect();
    }
    if !is_searchable(resource_type) {
        return Vec::new();
    }
    let own = t
        .by_type
        .get(resource_type)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    common.iter().chain(own).map(|&i| &t.params[i]).collect()
}

/// The parameter `code` of `resource_type` (common ones included); None if unknown or the type is not searchable.
pub fn lookup(resource_type: &str, code: &str) -> Option<&'static SearchParamDef> {
    params_for(resource_type)
        .into_iter()
        .find(|p| p.code == code)
}

/// Every parameter in the table, common ones first.
pub fn all_params() -> &'static [SearchParamDef] {
    &table().params
}

/// Patient-compartment parameters of `resource_type` (empty when it has none).
#[cfg(test)]
pub(crate) fn compartment_params(resource_type: &str) -> &'static [CompartmentParam] {
    table()
        .compartment
        .get(resource_type)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// Every resource type with Patient-compartment parameters, with them.
pub(crate) fn compartment_table() -> &'static HashMap<String, Vec<CompartmentParam>> {
    &table().compartment
}

/// Bump when index extraction changes in a way that alters stored index rows.
const INDEX_FORMAT_VERSION: u32 = 5;

/// A fingerprint of the parameter definitions and the extraction format: when it changes, the
/// store rebuilds existing index rows so new definitions apply to old resources too.
pub fn definitions_hash() -> String {
    // FNV-1a: stable across builds and platforms, which std's hasher does not promise.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in DATA.bytes().chain(INDEX_FORMAT_VERSION.to_le_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_parses_and_covers_every_type() {
        assert!(searchable_types().len() > 140);
        assert!(searchable_types().windows(2).all(|w| w[0] < w[1]));
        for t in searchable_types() {
            assert!(crate::elements::is_resource_type(t), "{t}");
            let ps = params_for(t);
            assert!(ps.iter().any(|p| p.code == "_id"), "{t} lacks _id");
        }
        assert_eq!(params_for(COMMON_RESOURCE).len(), 6);
    }

    #[test]
    fn codes_are_unique_per_type() {
        for t in searchable_types() {
            let mut codes: Vec<_> = params_for(t).iter().map(|p| p.code.as_str()).collect();
            let n = codes.len();
            codes.sort_unstable();
            codes.dedup();
            assert_eq!(codes.len(), n, "duplicate code in {t}");
        }
    }

    #[test]
    fn lookups() {
        let cases: &[(&str, &str, ParamType, &str)] = &[
            (
                "Patient",
                "family",
                ParamType::String,
                "Patient.name.family",
            ),
            ("Patient", "_id", ParamType::Token, "Resource.id"),
            (
                "Observation",
                "patient",
                ParamType::Reference,
                "Observation.subject.where(resolve() is Patient)",
            ),
            (
                "MedicationStatement",
                "code",
                ParamType::Token,
                "(MedicationStatement.medication as CodeableConcept)",
            ),
            ("Flag", "date", ParamType::Date, "Flag.period"),
            (
                "AllergyIntolerance",
                "code",
                ParamType::Token,
                "AllergyIntolerance.code | AllergyIntolerance.reaction.substance",
            ),
            (
                "Observation",
                "code-value-quantity",
                ParamType::Composite,
                "Observation",
            ),
        ];
        for (rt, code, kind, expr) in cases {
            let p = lookup(rt, code).unwrap_or_else(|| panic!("{rt}.{code} missing"));
            assert_eq!(p.kind, *kind, "{rt}.{code}");
            assert_eq!(p.expression, *expr, "{rt}.{code}");
            assert!(!p.description.contains("Multiple Resources"), "{rt}.{code}");
        }
        assert!(lookup("Encounter", "patient").is_some());
        assert!(lookup("InsurancePlan", "name")
            .is_some_and(|p| p.expression == "InsurancePlan.name | InsurancePlan.alias"));
        assert!(lookup("Patient", "_content").is_none());
        assert!(lookup("NoSuchType", "_id").is_none());
        assert_eq!(params_for("Parameters").len(), 6, "common parameters only");
    }

    #[test]
    fn reference_targets_and_components() {
        let p = lookup("AllergyIntolerance", "recorder").unwrap();
        assert!(p.targets.iter().any(|t| t == "Patient"));
        let c = lookup("Observation", "code-value-quantity").unwrap();
        assert_eq!(c.components.len(), 2);
        assert_eq!(c.components[1].expression, "value.as(Quantity)");
        assert_eq!(ParamType::Quantity.as_str(), "quantity");
    }

    #[test]
    fn compartment_section_lists_other_types() {
        for t in [
            "Encounter",
            "Condition",
            "Procedure",
            "Immunization",
            "RelatedPerson",
        ] {
            assert!(!compartment_params(t).is_empty(), "{t}");
        }
        assert!(compartment_params("Organization").is_empty());
    }
}
