//! `POST [base]` with a batch or transaction Bundle.

use actix_web::{web, HttpRequest, HttpResponse};

use crate::error::ApiError;
use crate::format::{output_of, read_bundle};
use crate::guard::SelfDeciding;
use crate::respond::{prefer, respond};
use crate::state::AppState;

/// Handles `POST [base]`; each entry is authorised by the interaction layer.
pub async fn process(
    caller: SelfDeciding,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let output = output_of(&req)?;
    let bundle = read_bundle(&req, payload, state.config.bundle_max_bytes).await?;
    let outcome =
        interactions::transaction::process(&state.services, &caller.0, bundle, prefer(&req))
            .await?;
    respond(&req, outcome, &output, &state.config.base_url)
}
