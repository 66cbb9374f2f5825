//! Value sets as sets of (system, code) pairs, built from ValueSet and CodeSystem documents whose
//! concepts are listed. There is no terminology server: a value set is what it enumerates, an
//! include of a whole code system needs that CodeSystem among the documents, and filters are
//! refused because nothing here could evaluate them.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use crate::issue::{Issue, IssueCode};

/// Deepest `concept.concept` hierarchy read from a CodeSystem.
const MAX_CONCEPT_DEPTH: usize = 16;

/// Longest chain of value sets including value sets.
const MAX_INCLUDE_DEPTH: usize = 8;

/// A value set, expanded.
#[derive(Debug)]
pub(crate) struct ValueSet {
    /// Its canonical URL, without version.
    pub url: String,
    /// Its title or name, for messages.
    pub label: String,
    codes: HashSet<(String, String)>,
}

impl ValueSet {
    /// True when the coding `system|code` is in the set.
    pub fn contains(&self, system: &str, code: &str) -> bool {
        self.codes.contains(&(system.to_string(), code.to_string()))
    }

    /// True when `code` is in the set from any system (a `code` element names no system).
    pub fn contains_code(&self, code: &str) -> bool {
        self.codes.iter().any(|(_, c)| c == code)
    }

    /// How findings name the set.
    pub fn describe(&self) -> String {
        format!("'{}' ({})", self.label, self.url)
    }
}

/// A canonical reference without its `|version`.
pub(crate) fn unversioned(canonical: &str) -> &str {
    canonical.split('|').next().unwrap_or(canonical)
}

/// Expands every ValueSet among `docs`, using the CodeSystems among them for whole-system
/// includes. Documents of other types are ignored.
pub(crate) fn load(docs: &[Value]) -> Result<HashMap<String, ValueSet>, Vec<Issue>> {
    let mut problems = Vec::new();
    let mut systems: HashMap<String, Option<Vec<String>>> = HashMap::new();
    for doc in docs.iter().filter(|d| d["resourceType"] == "CodeSystem") {
        let Some(url) = doc["url"].as_str().filter(|u| !u.is_empty()) else {
            problems.push(invalid("CodeSystem.url", "A CodeSystem needs a url"));
            continue;
        };
        // Only a complete code system can stand for "every code of this system".
        let codes = (doc["content"] == "complete").then(|| {
            let mut codes = Vec::new();
            collect_concepts(&doc["concept"], 0, &mut codes);
            codes
        });
        if systems.insert(url.to_string(), codes).is_some() {
            problems.push(invalid(
                "CodeSystem.url",
                format!("CodeSystem {url} is given twice"),
            ));
        }
    }
    let mut raw: HashMap<String, &Value> = HashMap::new();
    for doc in docs.iter().filter(|d| d["resourceType"] == "ValueSet") {
        let Some(url) = doc["url"].as_str().filter(|u| !u.is_empty()) else {
            problems.push(invalid("ValueSet.url", "A ValueSet needs a url"));
            continue;
        };
        if raw.insert(url.to_string(), doc).is_some() {
            problems.push(invalid(
                "ValueSet.url",
                format!("ValueSet {url} is given twice"),
            ));
        }
    }
    let mut sets = HashMap::new();
    let mut expanded = Expansions {
        raw: &raw,
        systems: &systems,
        done: HashMap::new(),
        open: Vec::new(),
    };
    for (url, doc) in &raw {
        match expanded.expand(url) {
            Ok(codes) => {
                let label = doc["title"]
                    .as_str()
                    .or(doc["name"].as_str())
                    .unwrap_or(url)
                    .to_string();
                sets.insert(
                    url.clone(),
                    ValueSet {
                        url: url.clone(),
                        label,
                        codes: codes.clone(),
                    },
                );
            }
            Err(issue) => problems.push(issue),
        }
    }
    if problems.is_empty() {
        Ok(sets)
    } else {
        Err(problems)
    }
}

fn collect_concepts(concepts: &Value, depth: usize, out: &mut Vec<String>) {
    if depth > MAX_CONCEPT_DEPTH {
        return;
    }
    for concept in concepts.as_array().into_iter().flatten() {
        if let Some(code) = concept["code"].as_str() {
            out.push(code.to_string());
        }
        collect_concepts(&concept["concept"], depth + 1, out);
    }
}

type Codes = HashSet<(String, String)>;

/// Expansions made so far, so that each value set is expanded once however often it is included.
struct Expansions<'a> {
    raw: &'a HashMap<String, &'a Value>,
    systems: &'a HashMap<String, Option<Vec<String>>>,
    done: HashMap<String, Codes>,
    /// The value sets being expanded, outermost first: a cycle or a deep chain is refused.
    open: Vec<String>,
}

impl Expansions<'_> {
    fn expand(&mut self, url: &str) -> Result<&Codes, Issue> {
        if !self.done.contains_key(url) {
            if self.open.len() > MAX_INCLUDE_DEPTH || self.open.iter().any(|u| u == url) {
                return Err(unsupported(
                    "ValueSet.compose.include.valueSet",
                    format!(
                        "ValueSet {url}: value sets include each other in a cycle or too deeply"
                    ),
                ));
            }
            let Some(doc) = self.raw.get(url).copied() else {
                return Err(invalid(
                    "ValueSet.compose.include.valueSet",
                    format!("Unknown value set '{url}'"),
                ));
            };
            self.open.push(url.to_string());
            let codes = self.compose(url, doc);
            self.open.pop();
            self.done.insert(url.to_string(), codes?);
        }
        Ok(&self.done[url])
    }

    fn compose(&mut self, url: &str, doc: &Value) -> Result<Codes, Issue> {
        let compose = &doc["compose"];
        if compose.get("exclude").is_some() {
            return Err(unsupported(
                "ValueSet.compose.exclude",
                format!(
                    "ValueSet {url}: compose.exclude is not supported; list the included codes"
                ),
            ));
        }
        let Some(includes) = compose["include"].as_array() else {
            return Err(invalid(
                "ValueSet.compose.include",
                format!("ValueSet {url}: compose.include must list what the value set holds"),
            ));
        };
        let mut codes = Codes::new();
        for (i, include) in includes.iter().enumerate() {
            let at = format!("ValueSet.compose.include[{i}]");
            if include.get("filter").is_some() {
                return Err(unsupported(
                    &format!("{at}.filter"),
                    format!("ValueSet {url}: filters need a terminology server; list the concepts"),
                ));
            }
            let mut part: Option<Codes> = None;
            if let Some(system) = include["system"].as_str() {
                let mut from_system = Codes::new();
                match include["concept"].as_array() {
                    Some(concepts) => {
                        for concept in concepts {
                            let Some(code) = concept["code"].as_str() else {
                                return Err(invalid(
                                    &format!("{at}.concept"),
                                    format!("ValueSet {url}: a concept needs a code"),
                                ));
                            };
                            // A code the system's own definition lacks is a typo.
                            if let Some(Some(known)) = self.systems.get(system) {
                                if !known.iter().any(|k| k == code) {
                                    return Err(invalid(
                                        &format!("{at}.concept"),
                                        format!(
                                            "ValueSet {url}: '{code}' is not a code of {system}"
                                        ),
                                    ));
                                }
                            }
                            from_system.insert((system.to_string(), code.to_string()));
                        }
                    }
                    None => match self.systems.get(system) {
                        Some(Some(all)) => {
                            from_system.extend(all.iter().map(|c| (system.to_string(), c.clone())));
                        }
                        _ => {
                            return Err(unsupported(
                                &format!("{at}.system"),
                                format!(
                                    "ValueSet {url}: includes all of {system}, which is not a \
                                     complete CodeSystem given here; list the concepts"
                                ),
                            ))
                        }
                    },
                }
                part = Some(from_system);
            }
            for reference in include["valueSet"].as_array().into_iter().flatten() {
                let target = reference.as_str().map(unversioned).unwrap_or_default();
                let inner = self.expand(target)?;
                // Several value sets in one include intersect, as does a system beside them.
                part = Some(match part {
                    None => inner.clone(),
                    Some(p) => p.intersection(inner).cloned().collect(),
                });
            }
            match part {
                Some(p) => codes.extend(p),
                None => {
                    return Err(invalid(
                        &at,
                        format!("ValueSet {url}: an include needs a system or a valueSet"),
                    ))
                }
            }
        }
        Ok(codes)
    }
}

fn invalid(path: &str, message: impl Into<String>) -> Issue {
    Issue::at(IssueCode::Invalid, path, message)
}

fn unsupported(path: &str, message: impl Into<String>) -> Issue {
    Issue::at(IssueCode::NotSupported, path, message)
}
