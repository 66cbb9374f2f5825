//! One Bundle entry's request, read and checked before anything is written: what it asks for,
//! on which type and resource, with which body.

use authz::Interaction;
use fhir_model::ModelError;
use serde_json::Value;

use crate::error::Error;
use crate::outcome::parse_etag;

/// Why an entry was refused before anything ran: the guard table. Every entry check names
/// one of these, and [`EntryError::diagnostics`] is the one place their wording lives.
#[derive(Debug, Clone)]
pub enum EntryError {
    /// `entry.request` is missing.
    NoRequest,
    /// `request.method` is missing.
    NoMethod,
    /// `request.url` is missing.
    NoUrl,
    /// `request.url` names no resource type.
    UnknownType(String),
    /// An id in `request.url` is malformed.
    BadId(String),
    /// `request.ifMatch` is not an ETag.
    BadIfMatch,
    /// A POST url other than `Type`.
    CreateUrl(String),
    /// A PUT, PATCH or DELETE url other than `Type/id` or `Type?search`.
    TargetUrl(String, String),
    /// A write without its resource.
    NoResource(String),
    /// The resource is of another type than the url.
    WrongType(String, String),
    /// A PUT whose resource id is not the url's.
    IdMismatch(String),
    /// A PATCH whose resource is neither Parameters nor a JSON Patch Binary.
    PatchResource,
    /// A Binary PATCH of another content type.
    PatchContentType(String),
    /// A Binary PATCH without data.
    PatchNoData,
    /// A Binary PATCH whose data is not base64.
    PatchNotBase64,
    /// A JSON Patch that is not JSON.
    PatchNotJson(String),
    /// A vread of something not a version number.
    BadVersion(String),
    /// A GET that is not a read, vread or search.
    UnsupportedGet(String),
    /// A method other than GET, HEAD, POST, PUT, PATCH, DELETE.
    UnknownMethod(String),
    /// The resource is not valid.
    Invalid(ModelError),
}

impl EntryError {
    /// What the client is told.
    pub fn diagnostics(&self) -> String {
        match self {
            EntryError::NoRequest => "the entry has no request".into(),
            EntryError::NoMethod => "request.method is missing".into(),
            EntryError::NoUrl => "request.url is missing".into(),
            EntryError::UnknownType(url) => {
                format!("request.url '{url}' does not name a resource type")
            }
            EntryError::BadId(id) => format!("'{id}' in request.url is not a valid id"),
            EntryError::BadIfMatch => {
                "request.ifMatch must be a version ETag such as W/\"3\"".into()
            }
            EntryError::CreateUrl(url) => {
                format!("POST needs request.url of the form Type, not '{url}'")
            }
            EntryError::TargetUrl(method, url) => format!(
                "{method} needs request.url of the form Type/id or Type?search, not '{url}'"
            ),
            EntryError::NoResource(method) => format!("{method} needs an entry resource"),
            EntryError::WrongType(found, wanted) => {
                format!("the resource is a {found} but request.url is for {wanted}")
            }
            EntryError::IdMismatch(id) => {
                format!("the resource's id must be '{id}', as in request.url")
            }
            EntryError::PatchResource => "a PATCH entry carries a Parameters resource (FHIRPath \
                 Patch) or a Binary of content type application/json-patch+json (JSON Patch)"
                .into(),
            EntryError::PatchContentType(ct) => format!(
                "a Binary PATCH entry must have contentType application/json-patch+json, not '{ct}'"
            ),
            EntryError::PatchNoData => "the Binary PATCH entry has no data".into(),
            EntryError::PatchNotBase64 => "the Binary PATCH entry's data is not base64".into(),
            EntryError::PatchNotJson(e) => format!("the JSON Patch is not valid JSON: {e}"),
            EntryError::BadVersion(v) => format!("'{v}' is not a version number"),
            EntryError::UnsupportedGet(url) => {
                format!("GET of '{url}' is not supported in a Bundle (read, vread and search are)")
            }
            EntryError::UnknownMethod(m) => {
                format!("request.method '{m}' is not one of GET, POST, PUT, PATCH, DELETE")
            }
            EntryError::Invalid(e) => e.to_string(),
        }
    }
}

impl From<EntryError> for Error {
    fn from(e: EntryError) -> Self {
        match e {
            EntryError::Invalid(m) => m.into(),
            other => Error::invalid(other.diagnostics()),
        }
    }
}

impl From<ModelError> for EntryError {
    fn from(e: ModelError) -> Self {
        EntryError::Invalid(e)
    }
}

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

/// Processing order within a transaction (http://hl7.org/fhir/R4/http.html#trules): deletes,
/// then creates, updates and patches (creates first among them), then reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// DELETE.
    Delete,
    /// POST, PUT, PATCH.
    Write,
    /// GET.
    Read,
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

    /// The phase of a transaction this entry runs in.
    pub fn phase(&self) -> Phase {
        match &self.action {
            Action::Delete { .. } => Phase::Delete,
            Action::Create { .. } | Action::Update { .. } | Action::Patch { .. } => Phase::Write,
            Action::Read { .. } | Action::Search { .. } => Phase::Read,
        }
    }

    /// True for GET entries.
    pub fn is_read(&self) -> bool {
        matches!(self.action, Action::Read { .. } | Action::Search { .. })
    }
}

/// Reads entry `index` of a Bundle. `base_url` is stripped from absolute request URLs.
pub fn parse(index: usize, entry: &Value, base_url: &str) -> Result<Entry, EntryError> {
    let request = entry
        .get("request")
        .filter(|r| r.is_object())
        .ok_or(EntryError::NoRequest)?;
    let method = request["method"]
        .as_str()
        .ok_or(EntryError::NoMethod)?
        .to_string();
    let raw_url = request["url"]
        .as_str()
        .filter(|u| !u.is_empty())
        .ok_or(EntryError::NoUrl)?;
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
        return Err(EntryError::UnknownType(raw_url.to_string()));
    }
    let id = match segments.get(1) {
        Some(id) if fhir_model::is_valid_id(id) => Some(id.to_string()),
        Some(id) => return Err(EntryError::BadId(id.to_string())),
        None => None,
    };
    let if_match = match request["ifMatch"].as_str() {
        None => None,
        Some(v) => Some(parse_etag(v).ok_or(EntryError::BadIfMatch)?),
    };
    let target = || match (&id, &query) {
        (Some(id), None) => Ok(Target::Id(id.clone())),
        (None, Some(q)) if !q.is_empty() => Ok(Target::Query(q.clone())),
        _ => Err(EntryError::TargetUrl(method.clone(), raw_url.to_string())),
    };
    let resource = || {
        entry
            .get("resource")
            .cloned()
            .ok_or_else(|| EntryError::NoResource(method.clone()))
    };
    let action = match method.as_str() {
        "POST" => {
            if id.is_some() || query.is_some() || segments.len() != 1 {
                return Err(EntryError::CreateUrl(raw_url.to_string()));
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
                    return Err(EntryError::IdMismatch(id.clone()));
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
            let patch = match body["resourceType"].as_str() {
                Some("Parameters") => PatchDoc::FhirPath(body),
                Some("Binary") => PatchDoc::Json(binary_json_patch(&body)?),
                _ => return Err(EntryError::PatchResource),
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
                version: Some(
                    v.parse()
                        .map_err(|_| EntryError::BadVersion(v.to_string()))?,
                ),
            },
            (None, [_]) => Action::Search {
                query: query.clone().unwrap_or_default(),
            },
            _ => return Err(EntryError::UnsupportedGet(raw_url.to_string())),
        },
        other => return Err(EntryError::UnknownMethod(other.to_string())),
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
fn check_resource(resource: &Value, res_type: &str) -> Result<(), EntryError> {
    let found = resource["resourceType"].as_str().unwrap_or("");
    if found != res_type {
        return Err(EntryError::WrongType(
            found.to_string(),
            res_type.to_string(),
        ));
    }
    fhir_model::format::check_resource(resource.clone())?;
    fhir_model::format::check_business_rules(resource)?;
    Ok(())
}

/// The JSON Patch document inside a Binary (base64 `data`, content type json-patch+json).
fn binary_json_patch(binary: &Value) -> Result<Value, EntryError> {
    use base64::Engine;
    let ct = binary["contentType"].as_str().unwrap_or("");
    if !ct.starts_with("application/json-patch+json") {
        return Err(EntryError::PatchContentType(ct.to_string()));
    }
    let data = binary["data"].as_str().ok_or(EntryError::PatchNoData)?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|_| EntryError::PatchNotBase64)?;
    serde_json::from_slice(&bytes).map_err(|e| EntryError::PatchNotJson(e.to_string()))
}
