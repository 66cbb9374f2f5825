//! One Bundle entry's request, read and checked before anything is written: what it asks for,
//! on which type and resource, with which body.

use serde_json::Value;

use crate::error::ApiError;
use crate::respond::parse_etag;
use authz::Interaction;

/// The resource an entry addresses: by id, or by a search (conditional interactions).
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// `Type/id`.
    Id(String),
    /// `Type?query`.
    Query(String),
}

/// A patch document, by its format.
#[derive(Debug, Clone)]
pub enum PatchDoc {
    /// JSON Patch (an array of operations), from a Binary entry resource.
    Json(Value),
    /// FHIRPath Patch (a Parameters resource).
    FhirPath(Value),
}

/// What one entry asks for.
#[derive(Debug, Clone)]
pub enum Action {
    /// POST: create, conditional with `ifNoneExist`.
    Create {
        /// The resource.
        resource: Value,
        /// The condition of a conditional create.
        if_none_exist: Option<String>,
    },
    /// PUT: update or conditional update.
    Update {
        /// Which resource.
        target: Target,
        /// The new version.
        resource: Value,
        /// Expected current version.
        if_match: Option<i32>,
    },
    /// PATCH, by id or conditional.
    Patch {
        /// Which resource.
        target: Target,
        /// The patch.
        patch: PatchDoc,
        /// Expected current version.
        if_match: Option<i32>,
    },
    /// DELETE, by id or conditional.
    Delete {
        /// Which resource(s).
        target: Target,
    },
    /// GET of one resource or version.
    Read {
        /// Logical id.
        id: String,
        /// A version (vread).
        version: Option<i32>,
    },
    /// GET with a search.
    Search {
        /// The query string.
        query: String,
    },
}

/// One checked entry.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Position in the Bundle.
    pub index: usize,
    /// `fullUrl`, when given.
    pub full_url: Option<String>,
    /// The resource type addressed.
    pub res_type: String,
    /// What it asks for.
    pub action: Action,
}

impl Entry {
    /// The interaction authorised for this entry.
    pub fn interaction(&self) -> Interaction {
        match &self.action {
            Action::Create { .. } => Interaction::Create,
            Action::Update { .. } | Action::Patch { .. } => Interaction::Update,
            Action::Delete { .. } => Interaction::Delete,
            Action::Read { version: None, .. } => Interaction::Read,
            Action::Read { .. } => Interaction::Vread,
            Action::Search { .. } => Interaction::Search,
        }
    }

    /// Processing order within a transaction (http://hl7.org/fhir/R4/http.html#trules):
    /// deletes, creates, updates and patches, reads.
    pub fn rank(&self) -> u8 {
        match &self.action {
            Action::Delete { .. } => 0,
            Action::Create { .. } => 1,
            Action::Update { .. } | Action::Patch { .. } => 2,
            Action::Read { .. } | Action::Search { .. } => 3,
        }
    }

    /// True for GET entries.
    pub fn is_read(&self) -> bool {
        matches!(self.action, Action::Read { .. } | Action::Search { .. })
    }
}

/// Reads entry `index` of a Bundle. `base_url` is stripped from absolute request URLs.
pub fn parse(index: usize, entry: &Value, base_url: &str) -> Result<Entry, ApiError> {
    let request = entry
        .get("request")
        .filter(|r| r.is_object())
        .ok_or_else(|| ApiError::bad_request("the entry has no request"))?;
    let method = request["method"]
        .as_str()
        .ok_or_else(|| ApiError::bad_request("request.method is missing"))?
        .to_string();
    let raw_url = request["url"]
        .as_str()
        .filter(|u| !u.is_empty())
        .ok_or_else(|| ApiError::bad_request("request.url is missing"))?;
    let url = raw_url
        .strip_prefix(base_url)
        .unwrap_or(raw_url)
        .trim_start_matches('/')
        .to_string();
    let (path, query) = match url.split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q.to_string())),
        None => (url.clone(), None),
    };
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let res_type = segments.first().copied().unwrap_or_default().to_string();
    if !fhir_model::elements::is_resource_type(&res_type) {
        return Err(ApiError::bad_request(format!(
            "request.url '{raw_url}' does not name a resource type"
        )));
    }
    let id = match segments.get(1) {
        Some(id) if fhir_model::is_valid_id(id) => Some(id.to_string()),
        Some(id) => {
            return Err(ApiError::bad_request(format!(
                "'{id}' in request.url is not a valid id"
            )))
        }
        None => None,
    };
    let if_match = match request["ifMatch"].as_str() {
        None => None,
        Some(v) => Some(parse_etag(v).ok_or_else(|| {
            ApiError::bad_request("request.ifMatch must be a version ETag such as W/\"3\"")
        })?),
    };
    let target = || match (&id, &query) {
        (Some(id), None) => Ok(Target::Id(id.clone())),
        (None, Some(q)) if !q.is_empty() => Ok(Target::Query(q.clone())),
        _ => Err(ApiError::bad_request(format!(
            "{method} needs request.url of the form Type/id or Type?search, not '{raw_url}'"
        ))),
    };
    let resource = || {
        entry
            .get("resource")
            .cloned()
            .ok_or_else(|| ApiError::bad_request(format!("{method} needs an entry resource")))
    };
    let action = match method.as_str() {
        "POST" => {
            if id.is_some() || query.is_some() || segments.len() != 1 {
                return Err(ApiError::bad_request(format!(
                    "POST needs request.url of the form Type, not '{raw_url}'"
                )));
            }
            let resource = resource()?;
            check_resource(&resource, &res_type)?;
            Action::Create {
                resource,
                if_none_exist: request["ifNoneExist"]
                    .as_str()
                    .map(|q| strip_type(q, &res_type)),
            }
        }
        "PUT" => {
            let target = target()?;
            let resource = resource()?;
            check_resource(&resource, &res_type)?;
            if let Target::Id(id) = &target {
                if resource["id"].as_str() != Some(id.as_str()) {
                    return Err(ApiError::bad_request(format!(
                        "the resource's id must be '{id}', as in request.url"
                    )));
                }
            }
            Action::Update {
                target,
                resource,
                if_match,
            }
        }
        "PATCH" => {
            let target = target()?;
            let body = resource()?;
            let patch =
                match body["resourceType"].as_str() {
                    Some("Parameters") => PatchDoc::FhirPath(body),
                    Some("Binary") => PatchDoc::Json(binary_json_patch(&body)?),
                    _ => return Err(ApiError::bad_request(
                        "a PATCH entry carries a Parameters resource (FHIRPath Patch) or a Binary \
                         of content type application/json-patch+json (JSON Patch)",
                    )),
                };
            Action::Patch {
                target,
                patch,
                if_match,
            }
        }
        "DELETE" => Action::Delete { target: target()? },
        "GET" | "HEAD" => match (&id, segments.as_slice()) {
            (Some(id), [_, _]) => Action::Read {
                id: id.clone(),
                version: None,
            },
            (Some(id), [_, _, "_history", v]) => Action::Read {
                id: id.clone(),
                version: Some(v.parse().map_err(|_| {
                    ApiError::bad_request(format!("'{v}' is not a version number"))
                })?),
            },
            (None, [_]) => Action::Search {
                query: query.clone().unwrap_or_default(),
            },
            _ => {
                return Err(ApiError::bad_request(format!(
                    "GET of '{raw_url}' is not supported in a Bundle (read, vread and search are)"
                )))
            }
        },
        other => {
            return Err(ApiError::bad_request(format!(
                "request.method '{other}' is not one of GET, POST, PUT, PATCH, DELETE"
            )))
        }
    };
    Ok(Entry {
        index,
        full_url: entry["fullUrl"].as_str().map(str::to_string),
        res_type,
        action,
    })
}

/// `Patient?identifier=…` or `identifier=…` as the query alone.
fn strip_type(q: &str, res_type: &str) -> String {
    q.strip_prefix(res_type)
        .and_then(|r| r.strip_prefix('?'))
        .unwrap_or(q)
        .trim_start_matches('?')
        .to_string()
}

/// Validates an entry's resource like the body of a single create or update.
fn check_resource(resource: &Value, res_type: &str) -> Result<(), ApiError> {
    let found = resource["resourceType"].as_str().unwrap_or("");
    if found != res_type {
        return Err(ApiError::bad_request(format!(
            "the resource is a {found} but request.url is for {res_type}"
        )));
    }
    fhir_model::format::check_resource(resource.clone())?;
    fhir_model::format::check_business_rules(resource)?;
    Ok(())
}

/// The JSON Patch document inside a Binary (base64 `data`, content type json-patch+json).
fn binary_json_patch(binary: &Value) -> Result<Value, ApiError> {
    use base64::Engine;
    let ct = binary["contentType"].as_str().unwrap_or("");
    if !ct.starts_with("application/json-patch+json") {
        return Err(ApiError::bad_request(format!(
            "a Binary PATCH entry must have contentType application/json-patch+json, not '{ct}'"
        )));
    }
    let data = binary["data"]
        .as_str()
        .ok_or_else(|| ApiError::bad_request("the Binary PATCH entry has no data"))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|_| ApiError::bad_request("the Binary PATCH entry's data is not base64"))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("the JSON Patch is not valid JSON: {e}")))
}
