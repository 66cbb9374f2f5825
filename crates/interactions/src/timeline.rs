//! `Patient/$timeline` (Invicta's own operation, `OperationDefinition/Patient-timeline`): every
//! event in the person's record the caller may see, across all sources, ordered by clinical
//! date (`fhir_model::timeline` holds the rule per type), newest first unless `_sort=date`.
//! It is a compartment search over the event types walked along the timeline index, so the
//! access rules apply inside the SQL as for any search, and a page costs the same however long
//! the record is. Each entry carries its event date, the element that gave it and its source
//! organisation (see `searchset`).

use crate::authorize::Authorized;
use crate::caller::Caller;
use crate::error::Result;
use crate::operation_params::sort_out;
use crate::outcome::Outcome;
use crate::read;
use crate::render::Output;
use crate::search::{authorize_types, search, SearchRequest};
use crate::services::Services;

/// The operation's canonical URL.
pub const DEFINITION: &str =
    "https://invicta.example.org/fhir/OperationDefinition/Patient-timeline";

/// Parameters passed on to the search as they are.
const PASSED_ON: &[&str] = &[
    "start",
    "end",
    "_sort",
    // The source organisation: the ODS tag every write carries in `meta.tag`.
    "_tag",
    "_count",
    "_cursor",
    "_total",
    "_format",
    "_pretty",
    "_summary",
    "_elements",
    // Honoured only when the server is started with INVICTA_SEARCH_EXPLAIN (operators).
    "_explain",
];

/// `GET [base]/Patient/{id}/$timeline`: `auth` is the caller's decision to read the Patient;
/// the search across the event types is decided for them.
#[allow(clippy::too_many_arguments)]
pub async fn timeline(
    services: &Services,
    auth: &Authorized,
    caller: &Caller,
    id: String,
    params: Vec<(String, String)>,
    strict: bool,
    audit_query: String,
    output: &Output,
) -> Result<Outcome> {
    auth.interaction(
        fhir_model::RestInteraction::Operation,
        fhir_model::AuditAction::Execute,
    );
    read::load(services, auth, "Patient", &id, None).await?;
    let types: Vec<String> = fhir_model::timeline::event_types()
        .into_iter()
        .map(str::to_string)
        .collect();
    let self_base = format!("{}/Patient/{id}/$timeline", services.settings.base_url);
    let p = sort_out("$timeline", params, types, PASSED_ON, strict, self_base)?;
    let req = SearchRequest {
        types: p.types,
        compartment: Some(id),
        params: p.passed,
        self_base: p.self_base,
        ignored: p.ignored,
        strict,
        audit_query,
        care: search::Care::Timeline,
        referenced_from: None,
    };
    let all = authorize_types(services, caller, &req.types)?;
    search(services, &all, req, output).await
}
