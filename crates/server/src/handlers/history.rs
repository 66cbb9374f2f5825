//! History at instance, type and system level.

use actix_web::{web, HttpRequest, HttpResponse};
use interactions::Params;
use store::HistoryScope;

use super::logical_id;
use crate::error::ApiError;
use crate::format::output;
use crate::guard::{perm, Guarded};
use crate::respond::respond;
use crate::state::AppState;

/// `GET [base]/_history`.
pub async fn system(
    auth: Guarded<perm::HistorySystem>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    history(&auth, &req, &state, HistoryScope::System).await
}

/// `GET [base]/Type/_history`.
pub async fn by_type(
    auth: Guarded<perm::HistoryType>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let scope = HistoryScope::Type(auth.res_type().to_string());
    history(&auth, &req, &state, scope).await
}

/// `GET [base]/Type/id/_history`.
pub async fn instance(
    auth: Guarded<perm::HistoryInstance>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let scope = HistoryScope::Instance(auth.res_type().to_string(), logical_id(&req)?);
    history(&auth, &req, &state, scope).await
}

async fn history(
    auth: &interactions::Authorized,
    req: &HttpRequest,
    state: &AppState,
    scope: HistoryScope,
) -> Result<HttpResponse, ApiError> {
    let params = Params::parse(req.query_string())?;
    let output = output(req, &params)?;
    let outcome = interactions::history::history(
        &state.services,
        auth,
        scope,
        &params,
        req.uri().to_string(),
        &output,
    )
    .await?;
    respond(req, outcome, &output, &state.config.base_url)
}
