//! Instance and type-level writes and reads: read, vread, create, update, patch, delete, and
//! their conditional forms.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use interactions::read::ReadRequest;
use interactions::transaction::Target;
use interactions::{write, ErrorKind};

use super::{header, if_match, logical_id};
use crate::error::ApiError;
use crate::format::{check_charset, output_of, read_for_validation, read_limited, read_resource};
use crate::guard::{perm, Guarded};
use crate::respond::respond;
use crate::state::AppState;
use search::text::pairs;

/// `GET [base]/Type/id`.
pub async fn read(
    auth: Guarded<perm::Read>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    read_version(&auth, &req, &state, None).await
}

/// `GET [base]/Type/id/_history/vid`.
pub async fn vread(
    auth: Guarded<perm::Vread>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let vid = req.match_info().get("vid").unwrap_or_default();
    let version: i32 = vid.parse().ok().filter(|v| *v > 0).ok_or_else(|| {
        ApiError::not_found(format!(
            "'{vid}' is not a version of {}/{}",
            auth.res_type(),
            req.match_info().get("id").unwrap_or_default()
        ))
    })?;
    read_version(&auth, &req, &state, Some(version)).await
}

async fn read_version(
    auth: &interactions::Authorized,
    req: &HttpRequest,
    state: &AppState,
    version: Option<i32>,
) -> Result<HttpResponse, ApiError> {
    let request = ReadRequest {
        res_type: interactions::resource_type(req.match_info().get("type").unwrap_or_default())?,
        id: logical_id(req)?,
        version,
        if_none_match: header(req, "if-none-match").map(str::to_string),
        if_modified_since: header(req, "if-modified-since")
            .and_then(|s| DateTime::parse_from_rfc2822(s).ok())
            .map(|d| d.with_timezone(&Utc)),
    };
    let output = output_of(req)?;
    let outcome = interactions::read::read(&state.services, auth, &request).await?;
    respond(req, outcome, &output, &state.config.base_url)
}

/// `POST [base]/Type`, conditional with `If-None-Exist`.
pub async fn create(
    auth: Guarded<perm::Create>,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let output = output_of(&req)?;
    let body = read_resource(&req, payload, state.config.max_body).await?;
    let if_none_exist = match req.headers().get("if-none-exist") {
        None => None,
        Some(h) => Some(
            h.to_str()
                .map_err(|_| ApiError::bad_request("If-None-Exist is not valid text"))?,
        ),
    };
    let outcome =
        write::create(&state.services, &auth, auth.res_type(), body, if_none_exist).await?;
    respond(&req, outcome, &output, &state.config.base_url)
}

/// `PUT [base]/Type/id`, or with a query and no id, a conditional update.
pub async fn update(
    auth: Guarded<perm::Update>,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let target = target(&req, "PUT")?;
    let output = output_of(&req)?;
    let if_match = if_match(&req)?;
    let body = read_resource(&req, payload, state.config.max_body).await?;
    let (services, t) = (&state.services, auth.res_type());
    let outcome = match target {
        Target::Id(id) => write::update(services, &auth, t, &id, body, if_match).await?,
        Target::Query(q) => {
            write::conditional_update(services, &auth, t, &q, body, if_match).await?
        }
    };
    respond(&req, outcome, &output, &state.config.base_url)
}

/// What a PUT, PATCH or DELETE addresses: the path's id, else (on `[base]/Type`) its query.
fn target(req: &HttpRequest, method: &str) -> Result<Target, ApiError> {
    match req.match_info().get("id") {
        Some(_) => Ok(Target::Id(logical_id(req)?)),
        None if !req.query_string().is_empty() => Ok(Target::Query(req.query_string().to_string())),
        None => Err(ApiError::new(
            ErrorKind::MethodNotAllowed,
            format!(
                "{method} needs an id ({method} /fhir/Type/id) or a search ({method} /fhir/Type?identifier=…)"
            ),
        )),
    }
}

/// `PATCH [base]/Type/id`, or with a query and no id, a conditional patch.
pub async fn patch(
    auth: Guarded<perm::Update>,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let target = match req.match_info().get("id") {
        Some(_) => Target::Id(logical_id(&req)?),
        None if !req.query_string().is_empty() => Target::Query(req.query_string().to_string()),
        None => return Err(ApiError::new(
            ErrorKind::MethodNotAllowed,
            "PATCH needs an id (PATCH /fhir/Type/id) or a search (PATCH /fhir/Type?identifier=…)",
        )),
    };
    let output = output_of(&req)?;
    let content_type = header(&req, "content-type")
        .unwrap_or("")
        .to_ascii_lowercase();
    check_charset(&content_type)?;
    let limit = state.config.max_body;
    let body = read_limited(payload, limit, || {
        ApiError::new(
            ErrorKind::PayloadTooLarge,
            format!("The body is larger than the limit of {limit} bytes"),
        )
    })
    .await?;
    let doc = interactions::patch::document(&content_type, &body)?;
    let if_match = if_match(&req)?;
    let (services, t) = (&state.services, auth.res_type());
    let outcome = write::patch(services, &auth, t, target, doc, if_match).await?;
    respond(&req, outcome, &output, &state.config.base_url)
}

/// `DELETE [base]/Type/id`, or with a query and no id, a conditional delete.
pub async fn delete(
    auth: Guarded<perm::Delete>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (services, t) = (&state.services, auth.res_type());
    let outcome = match target(&req, "DELETE")? {
        Target::Id(id) => write::delete(services, &auth, t, &id).await?,
        Target::Query(q) => write::conditional_delete(services, &auth, t, &q).await?,
    };
    respond(&req, outcome, &Default::default(), &state.config.base_url)
}

/// `POST [base]/Type/$validate` and `POST [base]/Type/id/$validate`: an OperationOutcome of the
/// resource's findings against R4 and its profile; nothing is stored.
pub async fn validate(
    auth: Guarded<perm::Create>,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = match req.match_info().get("id") {
        Some(_) => Some(logical_id(&req)?),
        None => None,
    };
    let output = output_of(&req)?;
    let query = pairs(req.query_string())?;
    let outcome = match read_for_validation(&req, payload, state.config.max_body).await? {
        Ok(body) => interactions::conformance::validate(
            &auth,
            auth.res_type(),
            id.as_deref(),
            body,
            &query,
        )?,
        Err(unreadable) => interactions::conformance::unreadable(&auth, unreadable),
    };
    respond(&req, outcome, &output, &state.config.base_url)
}
