//! Validation against profiles: the Invicta StructureDefinitions shipped in `profiles/` (or any
//! given as JSON), compiled once, and the value sets their required bindings name. Each finding
//! carries the FHIRPath of the element it concerns and a severity.
//!
//! A profile may use only what [`load`] understands; anything else is refused when the profile
//! is loaded, so that no rule a profile states goes unchecked. Structure (unknown elements, JSON
//! types, primitive formats, the base R4 cardinalities) is [`crate::validate`]'s job: run it
//! first. The checks here skip content of the wrong shape rather than report it twice.

mod check;
mod invariants;
mod load;
mod shipped;
mod terminology;

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::Value;

use crate::issue::{shorten, Finding, Issue, IssueCode, ModelError, Severity};
use load::{Context, Element};
use terminology::{unversioned, ValueSet};

/// A compiled profile of one resource type.
#[derive(Debug)]
pub struct Profile {
    url: String,
    name: String,
    resource_type: &'static str,
    root: Element,
}

impl Profile {
    /// Its canonical URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Its computer-friendly name (`InvictaPatient`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The resource type it constrains.
    pub fn resource_type(&self) -> &str {
        self.resource_type
    }
}

/// Profiles and the value sets they bind, ready to validate resources.
#[derive(Debug)]
pub struct ProfileSet {
    profiles: Vec<Profile>,
    by_url: HashMap<String, usize>,
    /// The profile each resource type is validated against when none is named.
    defaults: HashMap<&'static str, usize>,
    value_sets: HashMap<String, ValueSet>,
}

static SHIPPED: OnceLock<ProfileSet> = OnceLock::new();

impl ProfileSet {
    /// The profiles, value sets and code systems in the repository's `profiles/` folder.
    pub fn shipped() -> &'static ProfileSet {
        SHIPPED.get_or_init(|| {
            let docs = shipped::documents().expect("the shipped profiles are valid JSON");
            ProfileSet::from_documents(&docs).expect("the shipped profiles load")
        })
    }

    /// The shipped documents and `extra` ones together; the shipped profiles stay the defaults.
    pub fn with_shipped(extra: &[Value]) -> Result<ProfileSet, ModelError> {
        let mut docs = shipped::documents()?;
        docs.extend_from_slice(extra);
        ProfileSet::from_documents(&docs)
    }

    /// Compiles StructureDefinition, ValueSet and CodeSystem documents. The first profile of each
    /// resource type becomes that type's default. Every problem found is reported.
    pub fn from_documents(documents: &[Value]) -> Result<ProfileSet, ModelError> {
        let mut issues = Vec::new();
        for (i, doc) in documents.iter().enumerate() {
            let rt = doc["resourceType"].as_str().unwrap_or_default();
            if !matches!(rt, "StructureDefinition" | "ValueSet" | "CodeSystem") {
                issues.push(Issue::general(
                    IssueCode::NotSupported,
                    format!(
                        "Document {i}: only StructureDefinition, ValueSet and CodeSystem \
                         documents define profiles, not '{rt}'"
                    ),
                ));
            }
        }
        let value_sets = terminology::load(documents).unwrap_or_else(|problems| {
            issues.extend(problems);
            HashMap::new()
        });
        let definitions: Vec<&Value> = documents
            .iter()
            .filter(|d| d["resourceType"] == "StructureDefinition")
            .collect();
        let mut profile_types = HashMap::new();
        for doc in &definitions {
            match load::header(doc) {
                Ok(h) => {
                    if profile_types
                        .insert(h.url.clone(), h.resource_type)
                        .is_some()
                    {
                        issues.push(Issue::general(
                            IssueCode::Invalid,
                            format!("StructureDefinition {} is given twice", h.url),
                        ));
                    }
                }
                Err(issue) => issues.push(issue),
            }
        }
        let ctx = Context {
            value_sets: &value_sets,
            profile_types: &profile_types,
        };
        let mut set = ProfileSet {
            profiles: Vec::new(),
            by_url: HashMap::new(),
            defaults: HashMap::new(),
            value_sets: HashMap::new(),
        };
        for doc in definitions {
            match load::compile(doc, &ctx) {
                Ok(compiled) => {
                    let index = set.profiles.len();
                    let rt = compiled.header.resource_type;
                    set.by_url.insert(compiled.header.url.clone(), index);
                    set.defaults.entry(rt).or_insert(index);
                    set.profiles.push(Profile {
                        url: compiled.header.url,
                        name: compiled.header.name,
                        resource_type: rt,
                        root: compiled.root,
                    });
                }
                // The header's problem was reported above.
                Err(issue) if load::header(doc).is_ok() => issues.push(issue),
                Err(_) => {}
            }
        }
        if !issues.is_empty() {
            return Err(ModelError { issues });
        }
        set.value_sets = value_sets;
        Ok(set)
    }

    /// The profile with this canonical URL (a `|version` suffix is ignored).
    pub fn get(&self, url: &str) -> Option<&Profile> {
        self.by_url
            .get(unversioned(url))
            .map(|&index| &self.profiles[index])
    }

    /// The profile a resource of this type is validated against when none is named.
    pub fn profile_for_type(&self, resource_type: &str) -> Option<&Profile> {
        self.defaults
            .get(resource_type)
            .map(|&index| &self.profiles[index])
    }

    /// Every profile, in the order loaded.
    pub fn profiles(&self) -> impl Iterator<Item = &Profile> {
        self.profiles.iter()
    }

    /// Validates `resource` against the profile with URL `profile`, or the default profile of
    /// its type when `None` (no findings when its type has none; `meta.profile` is not
    /// followed). An unknown profile, or one of another type, is itself a finding. Contained
    /// resources are not checked against profiles.
    pub fn validate(&self, resource: &Value, profile: Option<&str>) -> Vec<Finding> {
        let error = |issue: Issue| {
            vec![Finding {
                severity: Severity::Error,
                issue,
            }]
        };
        let Some(rt) = resource.get("resourceType").and_then(Value::as_str) else {
            return error(Issue::general(
                IssueCode::Structure,
                "A resource must be a JSON object with a resourceType",
            ));
        };
        let chosen = match profile {
            Some(url) => match self.get(url) {
                Some(p) => p,
                None => {
                    return error(Issue::general(
                        IssueCode::NotSupported,
                        format!(
                            "Profile '{}' is not known to this server",
                            shorten(url, 200)
                        ),
                    ))
                }
            },
            None => match self.profile_for_type(rt) {
                Some(p) => p,
                None => return Vec::new(),
            },
        };
        if chosen.resource_type != rt {
            return error(Issue::at(
                IssueCode::Structure,
                "resourceType",
                format!(
                    "Profile '{}' constrains {}, not {}",
                    chosen.url,
                    chosen.resource_type,
                    shorten(rt, 200)
                ),
            ));
        }
        check::check(&chosen.root, &self.value_sets, resource)
    }
}
