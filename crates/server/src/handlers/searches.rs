//! Searches: by type (GET and POST `_search`), in a Patient's compartment, across types, and
//! `Patient/$everything` and `Patient/$timeline`.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use interactions::search::SearchRequest;
use interactions::{everything, timeline, ErrorKind, Params};
use search::text::pairs;

use super::logical_id;
use crate::error::ApiError;
use crate::format::{output, output_of, read_limited};
use crate::guard::{perm, Guarded, SelfDeciding};
use crate::respond::{prefer, respond};
use crate::state::AppState;

/// Largest form body accepted by `POST _search`.
const MAX_FORM: usize = 64 * 1024;

/// `GET [base]/Type`, and `POST [base]/Type/_search` with a form body (and possibly a query
/// string too).
pub async fn by_type(
    auth: Guarded<perm::Search>,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let params = search_params(&req, payload).await?;
    of_type(&auth, &req, &state, params).await
}

async fn of_type(
    auth: &Guarded<perm::Search>,
    req: &HttpRequest,
    state: &AppState,
    params: Vec<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let t = auth.res_type().to_string();
    let self_base = format!("{}/{t}", state.config.base_url);
    run(auth, req, state, vec![t], None, params, self_base).await
}

/// `GET [base]/Patient/id/Type`: the type's resources in that patient's compartment.
pub async fn compartment(
    auth: Guarded<perm::CompartmentSearch>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let owner = req.match_info().get("type").unwrap_or_default();
    if owner != "Patient" {
        interactions::resource_type(owner)?;
        return Err(ApiError::not_found(format!(
            "Compartment search is supported for Patient, not {owner}"
        )));
    }
    let id = logical_id(&req)?;
    let t = auth.res_type().to_string();
    let params = pairs(req.query_string())?;
    let self_base = format!("{}/Patient/{id}/{t}", state.config.base_url);
    run(&auth, &req, &state, vec![t], Some(id), params, self_base).await
}

async fn run(
    auth: &interactions::Authorized,
    req: &HttpRequest,
    state: &AppState,
    types: Vec<String>,
    compartment: Option<String>,
    params: Vec<(String, String)>,
    self_base: String,
) -> Result<HttpResponse, ApiError> {
    let output = output(req, &Params::from_pairs(params.clone()))?;
    let request = SearchRequest {
        types,
        compartment,
        params,
        self_base,
        ignored: Vec::new(),
        strict: prefer(req).strict,
        audit_query: req.uri().to_string(),
        care: search::Care::Plain,
        referenced_from: None,
    };
    let outcome = interactions::search::search(&state.services, auth, request, &output).await?;
    respond(req, outcome, &output, &state.config.base_url)
}

/// `GET [base]?_type=A,B&…` (without `_type`, every searchable type), and `POST [base]/_search`.
pub async fn system(
    caller: SelfDeciding,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let params = search_params(&req, payload).await?;
    system_search(&caller.0, &req, &state, params).await
}

/// The query of a GET, or the query and form of a POST `_search`.
async fn search_params(
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<Vec<(String, String)>, ApiError> {
    if req.method() == actix_web::http::Method::POST {
        form_params(req, payload).await
    } else {
        Ok(pairs(req.query_string())?)
    }
}

async fn system_search(
    caller: &interactions::Caller,
    req: &HttpRequest,
    state: &AppState,
    params: Vec<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let output = output(req, &Params::from_pairs(params.clone()))?;
    let outcome = interactions::search::system(
        &state.services,
        caller,
        params,
        prefer(req).strict,
        req.uri().to_string(),
        &output,
    )
    .await?;
    respond(req, outcome, &output, &state.config.base_url)
}

async fn form_params(
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<Vec<(String, String)>, ApiError> {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("application/x-www-form-urlencoded");
    if !ct.starts_with("application/x-www-form-urlencoded") {
        return Err(ApiError::new(
            ErrorKind::UnsupportedMediaType,
            format!("_search takes an application/x-www-form-urlencoded body, not '{ct}'"),
        ));
    }
    let body = read_limited(payload, MAX_FORM, || {
        ApiError::new(
            ErrorKind::PayloadTooLarge,
            format!("The search form is larger than {MAX_FORM} bytes"),
        )
    })
    .await?;
    let form = std::str::from_utf8(&body)
        .map_err(|_| ApiError::bad_request("The search form is not UTF-8"))?;
    let mut params = pairs(req.query_string())?;
    params.extend(pairs(form)?);
    Ok(params)
}

/// `GET [base]/Patient/id/$everything`, and `GET [base]/Patient/$everything`, which serves a
/// token confined to one patient (a `patient/` scope, such as a citizen's) that patient's record.
pub async fn everything(
    auth: Guarded<perm::Read>,
    all: SelfDeciding,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    only_patient(&auth)?;
    let id = match req.match_info().get("id") {
        Some(_) => Some(logical_id(&req)?),
        None => None,
    };
    everything_of(&auth, &all, &req, &state, id).await
}

/// `GET [base]/Patient/id/$timeline`, and `GET [base]/Patient/$timeline` for a token confined
/// to one patient, as for `$everything`.
pub async fn timeline(
    auth: Guarded<perm::Read>,
    all: SelfDeciding,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    if auth.res_type() != "Patient" {
        return Err(ApiError::not_found(format!(
            "$timeline is defined on Patient, not on {}",
            auth.res_type()
        )));
    }
    let id = match req.match_info().get("id") {
        Some(_) => Some(logical_id(&req)?),
        None => None,
    };
    let id = everything::which_patient(&auth, id)?;
    let output = output_of(&req)?;
    let outcome = timeline::timeline(
        &state.services,
        &auth,
        &all.0,
        id,
        pairs(req.query_string())?,
        prefer(&req).strict,
        req.uri().to_string(),
        &output,
    )
    .await?;
    respond(&req, outcome, &output, &state.config.base_url)
}

fn only_patient(auth: &Guarded<perm::Read>) -> Result<(), ApiError> {
    match auth.res_type() {
        "Patient" => Ok(()),
        t => Err(ApiError::not_found(format!(
            "$everything is defined on Patient, not on {t}"
        ))),
    }
}

async fn everything_of(
    auth: &interactions::Authorized,
    all: &SelfDeciding,
    req: &HttpRequest,
    state: &AppState,
    id: Option<String>,
) -> Result<HttpResponse, ApiError> {
    let id = everything::patient_of(auth, id);
    let output = output_of(req)?;
    let outcome = everything::everything(
        &state.services,
        auth,
        &all.0,
        id,
        pairs(req.query_string())?,
        prefer(req).strict,
        req.uri().to_string(),
        &output,
    )
    .await?;
    respond(req, outcome, &output, &state.config.base_url)
}
