//! Compiling a StructureDefinition's differential into a tree of element rules, checked against
//! the R4 element table as it is built.
//!
//! A profile here constrains an R4 resource type directly (`baseDefinition` is the core type), so
//! its differential is everything it adds. Understood: `min`, `max`, `type` (choices narrowed,
//! `targetProfile` on references, `profile` on extensions), `fixed[x]`, `pattern[x]`, required
//! bindings, `maxLength`, constraints whose key has a Rust implementation, and slicing by `value`
//! or `pattern` discriminators on a child path or `$this` (open or closed, unordered, no
//! reslicing). Documentation elements are ignored. Anything else is refused with an issue, so
//! that no rule a profile states is silently left unchecked.

use std::collections::HashMap;

use serde_json::Value;

use super::invariants::{self, Breach};
use super::terminology::{unversioned, ValueSet};
use crate::elements::{is_choice_form, table};
use crate::issue::{Issue, IssueCode, Severity};

/// Canonical URLs of the R4 core resource definitions start with this.
pub(crate) const CORE_PREFIX: &str = "http://hl7.org/fhir/StructureDefinition/";

/// Most elements read from one differential.
const MAX_ELEMENTS: usize = 1000;

/// Deepest element id (`Patient.identifier:nhsNumber.extension:status.value[x]` is 4 below the
/// root); bounds the recursion of loading and of checking.
const MAX_ID_DEPTH: usize = 16;

/// Longest discriminator path.
const MAX_DISCRIMINATOR_STEPS: usize = 8;

/// Deepest `fixed[x]` or `pattern[x]` value, in JSON levels.
const MAX_VALUE_DEPTH: usize = 32;

/// Element properties that document or describe but constrain nothing checked here.
const DESCRIPTIVE: &[&str] = &[
    "id",
    "path",
    "short",
    "definition",
    "comment",
    "requirements",
    "alias",
    "label",
    "code",
    "mustSupport",
    "isModifier",
    "isModifierReason",
    "isSummary",
    "mapping",
    "meaningWhenMissing",
    "orderMeaning",
    "example",
    "extension",
    "modifierExtension",
    "base",
    "condition",
    "representation",
];

/// Types a required binding can be checked on.
const BINDABLE: &[&str] = &["code", "Coding", "CodeableConcept"];

/// The rules for one element of a profile, with those of its children and slices.
#[derive(Debug)]
pub(crate) struct Element {
    /// The JSON name (`identifier`), or `value[x]` for a choice.
    pub name: String,
    /// R4 type, `None` for a choice not narrowed to one type.
    pub type_name: Option<&'static str>,
    /// True when the element repeats in R4.
    pub repeats: bool,
    /// For a choice: each JSON name it may take and the type that name carries.
    pub choices: Vec<(String, &'static str)>,
    /// Minimum occurrences (0 when the profile says nothing).
    pub min: usize,
    /// Maximum occurrences, `None` when unbounded or unstated.
    pub max: Option<usize>,
    /// The allowed types, when the profile narrows them; empty when it does not.
    pub types: Vec<TypeRule>,
    /// Exact value required.
    pub fixed: Option<Value>,
    /// Value the element must contain.
    pub pattern: Option<Value>,
    /// URL (without version) of the value set a required binding names.
    pub binding: Option<String>,
    /// Longest string allowed, in characters.
    pub max_length: Option<usize>,
    /// Constraints checked in Rust.
    pub constraints: Vec<Constraint>,
    /// Rules for child elements.
    pub children: Vec<Element>,
    /// How repetitions divide into slices, when they do.
    pub slicing: Option<Slicing>,
    /// The slices, in the order declared.
    pub slices: Vec<Slice>,
    /// True for the element of a slice (which may not be sliced again).
    is_slice: bool,
}

/// One allowed type.
#[derive(Debug)]
pub(crate) struct TypeRule {
    /// The type's name (`Reference`, `Quantity`).
    pub code: String,
    /// For an extension: the canonical URL of its definition.
    pub profiles: Vec<String>,
    /// For a reference: the resource types it may point at (`None`: any).
    pub targets: Option<Vec<&'static str>>,
}

/// The slicing of a repeating element.
#[derive(Debug)]
pub(crate) struct Slicing {
    /// Paths (steps of JSON names; empty for `$this`) whose values tell the slices apart.
    pub discriminators: Vec<Vec<String>>,
    /// True when every repetition must belong to a slice.
    pub closed: bool,
}

/// A named slice: the rules for the repetitions it matches.
#[derive(Debug)]
pub(crate) struct Slice {
    /// The slice name.
    pub name: String,
    /// Its rules; `min` and `max` count its members.
    pub element: Element,
    /// For each discriminator, what a repetition must hold there to belong to the slice.
    pub criteria: Vec<(Vec<String>, Criterion)>,
}

/// What a discriminator requires of a slice member.
#[derive(Debug)]
pub(crate) enum Criterion {
    /// Exactly this value.
    Fixed(Value),
    /// At least this content.
    Pattern(Value),
    /// A code in this value set.
    InValueSet {
        /// URL of the value set.
        url: String,
        /// The coded type, when known.
        type_name: Option<&'static str>,
    },
}

/// A constraint checked by Rust code.
#[derive(Debug)]
pub(crate) struct Constraint {
    /// Its key (`inv-nhs-1`).
    pub key: String,
    /// Error or warning.
    pub severity: Severity,
    /// The profile's description of the rule.
    pub human: String,
    /// The check.
    pub check: fn(&Value) -> Vec<Breach>,
}

impl Element {
    fn new(
        name: &str,
        type_name: Option<&'static str>,
        repeats: bool,
        choices: Vec<(String, &'static str)>,
    ) -> Self {
        Element {
            name: name.to_string(),
            type_name,
            repeats,
            choices,
            min: 0,
            max: None,
            types: Vec::new(),
            fixed: None,
            pattern: None,
            binding: None,
            max_length: None,
            constraints: Vec::new(),
            children: Vec::new(),
            slicing: None,
            slices: Vec::new(),
            is_slice: false,
        }
    }

    /// The element a new slice of this one starts from: same type, no rules.
    fn blank_slice(&self) -> Self {
        let mut slice = Element::new(
            &self.name,
            self.type_name,
            self.repeats,
            self.choices.clone(),
        );
        slice.is_slice = true;
        slice
    }

    /// True for a choice element (`value[x]`).
    pub fn is_choice(&self) -> bool {
        self.name.ends_with("[x]")
    }

    /// The name FHIRPath gives the element: a choice without its `[x]`.
    pub fn fhirpath_name(&self) -> &str {
        self.name.strip_suffix("[x]").unwrap_or(&self.name)
    }

    /// True when an instance may use `type_name` here.
    pub fn allows_type(&self, type_name: &str) -> bool {
        self.types.is_empty() || self.types.iter().any(|t| t.code == type_name)
    }

    /// The types an instance may use here, for messages.
    pub fn allowed_types(&self) -> String {
        let names: Vec<&str> = self.types.iter().map(|t| t.code.as_str()).collect();
        names.join(" or ")
    }

    /// Every type the element may hold.
    fn possible_types(&self) -> Vec<&str> {
        if !self.types.is_empty() {
            self.types.iter().map(|t| t.code.as_str()).collect()
        } else if let Some(t) = self.type_name {
            vec![t]
        } else {
            self.choices.iter().map(|(_, t)| *t).collect()
        }
    }
}

/// What every StructureDefinition states before its elements.
pub(crate) struct Header {
    /// Canonical URL.
    pub url: String,
    /// Computer-friendly name.
    pub name: String,
    /// The resource type constrained.
    pub resource_type: &'static str,
}

/// A compiled profile's parts.
pub(crate) struct Compiled {
    /// From the document's header.
    pub header: Header,
    /// Rules for the resource, rooted at its type.
    pub root: Element,
}

/// What compiling a profile needs from the other documents.
pub(crate) struct Context<'a> {
    /// The value sets available to bindings.
    pub value_sets: &'a HashMap<String, ValueSet>,
    /// The resource type of every profile being loaded, by URL, so references may target them.
    pub profile_types: &'a HashMap<String, &'static str>,
}

/// Reads and checks a StructureDefinition's header.
pub(crate) fn header(doc: &Value) -> Result<Header, Issue> {
    let Some(url) = doc["url"].as_str().filter(|u| !u.is_empty()) else {
        return Err(invalid(
            "StructureDefinition.url",
            "A StructureDefinition needs a url",
        ));
    };
    let fail = |path: &str, code: IssueCode, message: String| {
        Err(Issue::at(
            code,
            &format!("StructureDefinition.{path}"),
            format!("{url}: {message}"),
        ))
    };
    let name = doc["name"].as_str().unwrap_or(url).to_string();
    let declared = doc["type"].as_str().unwrap_or_default();
    let Some(resource_type) = table()
        .types
        .get_key_value(declared)
        .filter(|(_, t)| t.resource)
        .map(|(k, _)| k.as_str())
    else {
        return fail(
            "type",
            IssueCode::NotSupported,
            format!("'{declared}' is not an R4 resource type"),
        );
    };
    if doc["derivation"] != "constraint" {
        return fail(
            "derivation",
            IssueCode::NotSupported,
            "only constraint profiles (derivation 'constraint') are supported".to_string(),
        );
    }
    let base = doc["baseDefinition"].as_str().unwrap_or_default();
    if base != format!("{CORE_PREFIX}{resource_type}") {
        return fail(
            "baseDefinition",
            IssueCode::NotSupported,
            format!(
                "the base must be the R4 definition {CORE_PREFIX}{resource_type}: profiles on \
                 profiles are not supported"
            ),
        );
    }
    if doc["differential"]["element"].as_array().is_none() {
        return fail(
            "differential",
            IssueCode::Invalid,
            "a differential with elements is required".to_string(),
        );
    }
    Ok(Header {
        url: url.to_string(),
        name,
        resource_type,
    })
}

/// Compiles a StructureDefinition whose header has been checked.
pub(crate) fn compile(doc: &Value, ctx: &Context) -> Result<Compiled, Issue> {
    let header = header(doc)?;
    let rt = header.resource_type;
    let elements = doc["differential"]["element"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if elements.len() > MAX_ELEMENTS {
        return Err(Issue::at(
            IssueCode::TooCostly,
            "StructureDefinition.differential.element",
            format!("{}: more than {MAX_ELEMENTS} elements", header.url),
        ));
    }
    let mut root = Element::new(rt, Some(rt), false, Vec::new());
    for (i, ed) in elements.iter().enumerate() {
        let at = format!("StructureDefinition.differential.element[{i}]");
        let id = ed["id"]
            .as_str()
            .or(ed["path"].as_str())
            .unwrap_or_default();
        let located = parse_id(id, ed, rt).and_then(|segments| {
            let node = locate(&mut root, &segments)?;
            let slice_name = segments.last().and_then(|(_, s)| s.as_deref());
            apply(node, ed, slice_name, ctx)
        });
        if let Err((key, message)) = located {
            let path = if key.is_empty() {
                at
            } else {
                format!("{at}.{key}")
            };
            return Err(Issue::at(
                IssueCode::NotSupported,
                &path,
                format!("{}: element '{id}': {message}", header.url),
            ));
        }
    }
    resolve_slices(&mut root, 0).map_err(|message| {
        Issue::at(
            IssueCode::NotSupported,
            "StructureDefinition.differential",
            format!("{}: {message}", header.url),
        )
    })?;
    Ok(Compiled { header, root })
}

/// A problem with an element: the property concerned (empty for the element) and what is wrong.
type Problem = (&'static str, String);

/// `Patient.identifier:nhsNumber.value` → `[("identifier", Some("nhsNumber")), ("value", None)]`,
/// after checking the root is the profile's type and the element's `path` agrees.
fn parse_id(id: &str, ed: &Value, rt: &str) -> Result<Vec<(String, Option<String>)>, Problem> {
    let mut segments: Vec<(String, Option<String>)> = Vec::new();
    for part in id.split('.') {
        let (name, slice) = match part.split_once(':') {
            Some((n, s)) => (n, Some(s.to_string())),
            None => (part, None),
        };
        if name.is_empty()
            || slice
                .as_deref()
                .is_some_and(|s| s.is_empty() || s.contains('/'))
        {
            return Err((
                "id",
                "malformed element id (reslicing is not supported)".into(),
            ));
        }
        segments.push((name.to_string(), slice));
    }
    if segments.len() > MAX_ID_DEPTH {
        return Err(("id", format!("deeper than {MAX_ID_DEPTH} levels")));
    }
    if segments[0].0 != rt || segments[0].1.is_some() {
        return Err(("id", format!("elements must start with '{rt}'")));
    }
    let path: Vec<&str> = segments.iter().map(|(n, _)| n.as_str()).collect();
    if ed["path"].as_str() != Some(path.join(".").as_str()) {
        return Err(("path", "the path does not match the id".into()));
    }
    Ok(segments.split_off(1))
}

/// The rules node an element id names, creating the nodes on the way.
fn locate<'e>(
    mut node: &'e mut Element,
    segments: &[(String, Option<String>)],
) -> Result<&'e mut Element, Problem> {
    for (i, (name, slice)) in segments.iter().enumerate() {
        let index = match node.children.iter().position(|c| c.name == *name) {
            Some(index) => index,
            None => {
                let child = child_of(node, name).map_err(|m| ("path", m))?;
                node.children.push(child);
                node.children.len() - 1
            }
        };
        node = &mut node.children[index];
        let Some(slice) = slice else { continue };
        if node.slicing.is_none() {
            return Err((
                "sliceName",
                format!("slice '{slice}' comes before the slicing of '{name}' is declared"),
            ));
        }
        let index = match node.slices.iter().position(|s| s.name == *slice) {
            Some(index) => index,
            None if i + 1 == segments.len() => {
                let element = node.blank_slice();
                node.slices.push(Slice {
                    name: slice.clone(),
                    element,
                    criteria: Vec::new(),
                });
                node.slices.len() - 1
            }
            None => {
                return Err((
                    "id",
                    format!("slice '{slice}' is used before it is declared"),
                ))
            }
        };
        node = &mut node.slices[index].element;
    }
    Ok(node)
}

/// A new node for the child `name` of `parent`, typed from the R4 element table.
fn child_of(parent: &Element, name: &str) -> Result<Element, String> {
    let Some(parent_type) = parent.type_name else {
        return Err(format!(
            "'{}' may be of several types: narrow it to one before constraining its children",
            parent.name
        ));
    };
    let Some(def) = table().types.get(parent_type) else {
        return Err(format!("'{parent_type}' has no child elements"));
    };
    if let Some(base) = name.strip_suffix("[x]") {
        let mut choices: Vec<(String, &'static str)> = def
            .props
            .iter()
            .filter(|(key, _)| is_choice_form(key, base))
            .map(|(key, e)| (key.clone(), table_type(&e.type_name)))
            .collect();
        if choices.is_empty() {
            return Err(format!("{parent_type} has no choice element '{name}'"));
        }
        choices.sort();
        return Ok(Element::new(name, None, false, choices));
    }
    match def.props.get(name) {
        Some(e) => Ok(Element::new(
            name,
            Some(table_type(&e.type_name)),
            e.array,
            Vec::new(),
        )),
        None => Err(format!("{parent_type} has no element '{name}'")),
    }
}

/// The element table's own copy of a type name, which lives as long as the table.
fn table_type(name: &str) -> &'static str {
    let t = table();
    t.types
        .get_key_value(name)
        .map(|(k, _)| k.as_str())
        .or_else(|| t.primitives.get_key_value(name).map(|(k, _)| k.as_str()))
        .unwrap_or("Element")
}

/// Applies one ElementDefinition's rules to its node.
fn apply(
    node: &mut Element,
    ed: &Value,
    slice_name: Option<&str>,
    ctx: &Context,
) -> Result<(), Problem> {
    let Some(props) = ed.as_object() else {
        return Err(("", "an element must be a JSON object".into()));
    };
    if ed["sliceName"].as_str() != slice_name {
        return Err(("sliceName", "the sliceName does not match the id".into()));
    }
    // The types come first: what a binding, fixed value or constraint may apply to depends on
    // them.
    if let Some(types) = props.get("type") {
        node.types = parse_types(types, node, ctx).map_err(|m| ("type", m))?;
        if node.is_choice() && node.types.len() == 1 {
            node.type_name = node
                .choices
                .iter()
                .find(|(_, t)| *t == node.types[0].code)
                .map(|(_, t)| *t);
        }
    }
    for (key, value) in props {
        let key = key.as_str();
        match key {
            "type" | "sliceName" => {}
            "min" => node.min = count(value).ok_or(("min", "not a count".to_string()))?,
            "max" => node.max = parse_max(value, node).map_err(|m| ("max", m))?,
            "binding" => {
                node.binding = parse_binding(value, node, ctx).map_err(|m| ("binding", m))?
            }
            "constraint" => {
                node.constraints = parse_constraints(value, node).map_err(|m| ("constraint", m))?
            }
            "slicing" => {
                node.slicing = Some(parse_slicing(value, node).map_err(|m| ("slicing", m))?)
            }
            "maxLength" => {
                let is_text = node.type_name.is_some_and(|t| {
                    table()
                        .primitives
                        .get(t)
                        .is_some_and(|p| p.json == "string")
                });
                node.max_length = match count(value) {
                    Some(n) if n > 0 && is_text => Some(n),
                    _ => {
                        return Err((
                            "maxLength",
                            "needs a positive count on a text element".into(),
                        ))
                    }
                };
            }
            k if k.starts_with("fixed") || k.starts_with("pattern") => {
                if crate::nesting::depth(value) > MAX_VALUE_DEPTH {
                    return Err((
                        "",
                        format!("{k} nests deeper than {MAX_VALUE_DEPTH} levels"),
                    ));
                }
                if node.fixed.is_some() || node.pattern.is_some() {
                    return Err(("", "only one fixed or pattern value per element".into()));
                }
                if k.starts_with("fixed") {
                    node.fixed = Some(value.clone());
                } else {
                    node.pattern = Some(value.clone());
                }
            }
            k if DESCRIPTIVE.contains(&k) || k.starts_with('_') => {}
            _ => return Err(("", format!("'{key}' is not supported"))),
        }
    }
    if node.max.is_some_and(|max| node.min > max) {
        return Err(("min", "min is greater than max".into()));
    }
    Ok(())
}

fn count(value: &Value) -> Option<usize> {
    value.as_u64().and_then(|n| usize::try_from(n).ok())
}

fn parse_max(value: &Value, node: &Element) -> Result<Option<usize>, String> {
    let text = value.as_str().unwrap_or_default();
    if text == "*" {
        return Ok(None);
    }
    let max: usize = text
        .parse()
        .map_err(|_| format!("'{text}' is neither a count nor '*'"))?;
    if max > 1 && !node.repeats {
        return Err(format!("'{}' does not repeat in R4", node.name));
    }
    Ok(Some(max))
}

fn parse_types(value: &Value, node: &Element, ctx: &Context) -> Result<Vec<TypeRule>, String> {
    let Some(types) = value.as_array().filter(|t| !t.is_empty()) else {
        return Err("type must list at least one type".into());
    };
    let mut rules = Vec::new();
    for t in types {
        let code = t["code"].as_str().unwrap_or_default();
        let allowed = if node.is_choice() {
            node.choices.iter().any(|(_, c)| *c == code)
        } else {
            node.type_name == Some(code)
        };
        if !allowed {
            return Err(format!("'{code}' is not a type '{}' has in R4", node.name));
        }
        for key in t.as_object().into_iter().flat_map(|o| o.keys()) {
            if !matches!(
                key.as_str(),
                "code" | "profile" | "targetProfile" | "extension"
            ) {
                return Err(format!("type.{key} is not supported"));
            }
        }
        let profiles = strings(&t["profile"]);
        if !profiles.is_empty() && code != "Extension" {
            return Err(format!(
                "a profile on a {code} is not supported (only an extension's definition)"
            ));
        }
        let target_profiles = strings(&t["targetProfile"]);
        let targets = if target_profiles.is_empty() {
            None
        } else if code != "Reference" {
            return Err(format!("targetProfile on a {code} is not supported"));
        } else {
            let mut targets = Vec::new();
            for url in &target_profiles {
                let url = unversioned(url);
                if url == format!("{CORE_PREFIX}Resource") {
                    targets.clear();
                    break;
                }
                let target = url
                    .strip_prefix(CORE_PREFIX)
                    .and_then(|t| table().types.get_key_value(t))
                    .filter(|(_, def)| def.resource)
                    .map(|(k, _)| k.as_str())
                    .or_else(|| ctx.profile_types.get(url).copied());
                match target {
                    Some(t) => targets.push(t),
                    None => return Err(format!("unknown target profile '{url}'")),
                }
            }
            (!targets.is_empty()).then_some(targets)
        };
        rules.push(TypeRule {
            code: code.to_string(),
            profiles,
            targets,
        });
    }
    Ok(rules)
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

fn parse_binding(value: &Value, node: &Element, ctx: &Context) -> Result<Option<String>, String> {
    // Weaker bindings leave the choice of code open, so there is nothing to enforce.
    if value["strength"] != "required" {
        return Ok(None);
    }
    let Some(url) = value["valueSet"].as_str().map(unversioned) else {
        return Err("a required binding needs a valueSet".into());
    };
    if !ctx.value_sets.contains_key(url) {
        return Err(format!(
            "value set '{url}' is not among the loaded value sets"
        ));
    }
    if let Some(t) = node.possible_types().iter().find(|t| !BINDABLE.contains(t)) {
        return Err(format!(
            "a required binding on a {t} is not supported (only code, Coding, CodeableConcept)"
        ));
    }
    Ok(Some(url.to_string()))
}

fn parse_constraints(value: &Value, node: &Element) -> Result<Vec<Constraint>, String> {
    let mut constraints = Vec::new();
    for c in value.as_array().into_iter().flatten() {
        let key = c["key"].as_str().unwrap_or_default();
        let Some(invariant) = invariants::invariant(key) else {
            return Err(format!(
                "constraint '{key}' has no implementation here (FHIRPath constraints are not \
                 evaluated)"
            ));
        };
        if node.type_name != Some(invariant.applies_to) {
            return Err(format!(
                "constraint '{key}' applies to a {}",
                invariant.applies_to
            ));
        }
        let severity = match c["severity"].as_str() {
            Some("error") => Severity::Error,
            Some("warning") => Severity::Warning,
            _ => {
                return Err(format!(
                    "constraint '{key}' needs severity error or warning"
                ))
            }
        };
        constraints.push(Constraint {
            key: key.to_string(),
            severity,
            human: c["human"].as_str().unwrap_or(key).to_string(),
            check: invariant.check,
        });
    }
    Ok(constraints)
}

fn parse_slicing(value: &Value, node: &Element) -> Result<Slicing, String> {
    if node.is_slice {
        return Err("reslicing is not supported".into());
    }
    if !node.repeats {
        return Err(format!(
            "'{}' does not repeat: only repeating elements may be sliced",
            node.name
        ));
    }
    if value["ordered"] == true {
        return Err("ordered slicing is not supported".into());
    }
    let closed = match value["rules"].as_str() {
        None | Some("open") => false,
        Some("closed") => true,
        Some(other) => return Err(format!("slicing rules '{other}' are not supported")),
    };
    let Some(list) = value["discriminator"].as_array().filter(|d| !d.is_empty()) else {
        return Err("slicing needs a discriminator".into());
    };
    let mut discriminators = Vec::new();
    for d in list {
        let kind = d["type"].as_str().unwrap_or_default();
        if kind != "value" && kind != "pattern" {
            return Err(format!(
                "discriminator type '{kind}' is not supported (only value and pattern)"
            ));
        }
        let path = d["path"].as_str().unwrap_or_default();
        let steps: Vec<String> = if path == "$this" {
            Vec::new()
        } else {
            path.split('.').map(str::to_string).collect()
        };
        let plain = |s: &String| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric());
        if steps.len() > MAX_DISCRIMINATOR_STEPS || !steps.iter().all(plain) {
            return Err(format!(
                "discriminator path '{path}' is not supported (only $this or element names)"
            ));
        }
        discriminators.push(steps);
    }
    Ok(Slicing {
        discriminators,
        closed,
    })
}

/// Works out, for every slice, what its members hold at each discriminator: the fixed value,
/// pattern or required binding stated there, or for an extension's `url` its definition.
fn resolve_slices(node: &mut Element, depth: usize) -> Result<(), String> {
    if depth > MAX_ID_DEPTH {
        return Ok(());
    }
    if let Some(slicing) = &node.slicing {
        for slice in &mut node.slices {
            slice.criteria.clear();
            for path in &slicing.discriminators {
                let Some(criterion) = criterion(&slice.element, path) else {
                    return Err(format!(
                        "slice '{}' of '{}' states no value at its discriminator '{}'",
                        slice.name,
                        node.name,
                        if path.is_empty() {
                            "$this".to_string()
                        } else {
                            path.join(".")
                        }
                    ));
                };
                slice.criteria.push((path.clone(), criterion));
            }
        }
    }
    for child in &mut node.children {
        resolve_slices(child, depth + 1)?;
    }
    for slice in &mut node.slices {
        resolve_slices(&mut slice.element, depth + 1)?;
    }
    Ok(())
}

fn criterion(slice: &Element, path: &[String]) -> Option<Criterion> {
    let target = path.iter().try_fold(slice, |node, step| {
        node.children.iter().find(|c| c.name == *step)
    });
    if let Some(target) = target {
        if let Some(fixed) = &target.fixed {
            return Some(Criterion::Fixed(fixed.clone()));
        }
        if let Some(pattern) = &target.pattern {
            return Some(Criterion::Pattern(pattern.clone()));
        }
        if let Some(url) = &target.binding {
            return Some(Criterion::InValueSet {
                url: url.clone(),
                type_name: target.type_name,
            });
        }
    }
    if path == ["url"] {
        let definition = slice
            .types
            .iter()
            .find(|t| t.code == "Extension")
            .and_then(|t| t.profiles.first())?;
        return Some(Criterion::Fixed(Value::String(definition.clone())));
    }
    None
}

fn invalid(path: &str, message: &str) -> Issue {
    Issue::at(IssueCode::Invalid, path, message)
}
