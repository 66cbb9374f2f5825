//! `search` (http://hl7.org/fhir/R4/search.html): by type, in a Patient compartment, across
//! types (`_type`), and as a GET entry of a Bundle. Each is planned, run and answered by the same
//! functions here, so every one has the same paging links and the same notice when something
//! was withheld. The answer is a [`SearchSet`]: the rows as stored, written out by [`SearchSet::render`]
//! (which splices stored bodies in without parsing them when nothing asks to change them).

use search::text::encode;
use search::{Care, PlanOptions, SearchPlan, TotalMode};
use serde_json::json;
use store::{Access, ResourceQuery};

use authz::Interaction;

use crate::authorize::{authorize, Authorized};
use crate::caller::Caller;
use crate::error::{Error, Result};
use crate::outcome::Outcome;
use crate::pool::blocking;
use crate::render::Output;
use crate::searchset::searchset;
use crate::services::{Services, Settings};

/// A search as the caller asked it.
#[derive(Debug, Clone, Default)]
pub struct SearchRequest {
    /// Types searched (one, or several for a system search).
    pub types: Vec<String>,
    /// The Patient whose compartment is searched.
    pub compartment: Option<String>,
    /// Decoded query parameters (output parameters included).
    pub params: Vec<(String, String)>,
    /// The URL the paging links extend (`[base]/Type`, `[base]?_type=…`).
    pub self_base: String,
    /// Parameters the caller already set aside, reported with those the plan ignores.
    pub ignored: Vec<String>,
    /// `Prefer: handling=strict`.
    pub strict: bool,
    /// The request as the audit record names it.
    pub audit_query: String,
    /// Which compartment operation it serves (`$timeline`, `$everything`).
    pub care: Care,
    /// With `compartment`: also what the members of these types refer to (`$everything`).
    pub referenced_from: Option<Vec<String>>,
}

/// `GET [base]/Type`, `GET [base]/Patient/id/Type`, `POST …/_search`, `GET [base]?_type=`.
pub async fn search(
    services: &Services,
    auth: &Authorized,
    req: SearchRequest,
    output: &Output,
) -> Result<Outcome> {
    let settings = &services.settings;
    let explain = settings.search_explain
        && req
            .params
            .iter()
            .any(|(k, v)| k == "_explain" && v == "true");
    let params: Vec<(String, String)> = if settings.search_explain {
        req.params
            .into_iter()
            .filter(|(k, _)| k != "_explain")
            .collect()
    } else {
        req.params
    };
    auth.query(req.audit_query);
    let access = auth.access().map(|a| a.as_ref());
    let mut plan = plan(
        settings,
        access,
        &req.types,
        &params,
        req.strict,
        req.compartment.clone(),
        req.care,
    )?;
    plan.ignored.extend(req.ignored);
    let mut query = query(&plan, req.compartment, access, output);
    query.referenced_from = req.referenced_from;
    if explain {
        let store = services.store.clone();
        let (sql, plan_text, literal) = blocking(move || store.explain_query(&query)).await?;
        return Ok(Outcome::Json(
            json!({"resourceType": "Parameters", "parameter": [
                {"name": "sql", "valueString": sql},
                {"name": "binds", "valueString": "values are bound as parameters $1..$n"},
                {"name": "plan", "valueString": plan_text},
                {"name": "sql-with-values", "valueString": literal},
            ]}),
        ));
    }
    let store = services.reader(&auth.routing_key());
    let includes = plan.includes.clone();
    let include_limit = settings.search_max_count as usize;
    let include_access = auth.access().cloned();
    // Dropped with this future when the client goes away: the statement still running is
    // cancelled instead of holding its connection to the end.
    let guard = store.cancel_guard();
    let token = guard.token();
    let (page, included, cut) = blocking(move || {
        let mut session = store.session(&token)?;
        let page = session.query_resources(&query)?;
        let (included, cut) = if includes.is_empty() || page.rows.is_empty() {
            (Vec::new(), false)
        } else {
            session.include(
                &includes,
                &page.rows,
                include_limit,
                include_access.as_deref(),
            )?
        };
        Ok((page, included, cut))
    })
    .await?;
    guard.disarm();
    let routes = auth.access().map(|a| a.routes()).unwrap_or_default();
    let set = searchset(
        settings,
        &plan,
        routes,
        page,
        included,
        cut,
        &req.self_base,
        output,
    );
    auth.touched(set.touched());
    Ok(Outcome::SearchSet(set))
}

/// `GET [base]?_type=A,B&…`: the types named, or without `_type` every searchable type but the
/// audit trail (searched by naming it).
pub async fn system(
    services: &Services,
    caller: &Caller,
    params: Vec<(String, String)>,
    strict: bool,
    audit_query: String,
    output: &Output,
) -> Result<Outcome> {
    let types: Vec<String> = match params.iter().find(|(k, _)| k == "_type") {
        Some((_, v)) => {
            let mut types = Vec::new();
            for t in v.split(',').filter(|t| !t.is_empty()) {
                if !fhir_model::elements::is_resource_type(t) {
                    return Err(Error::invalid(format!(
                        "_type names an unknown resource type '{t}'"
                    )));
                }
                if !types.iter().any(|k| k == t) {
                    types.push(t.to_string());
                }
            }
            types
        }
        None => fhir_model::search_params::searchable_types()
            .iter()
            .filter(|t| **t != "AuditEvent")
            .map(|t| t.to_string())
            .collect(),
    };
    let mut self_base = services.settings.base_url.clone();
    if let Some((_, v)) = params.iter().find(|(k, _)| k == "_type") {
        self_base = format!("{self_base}?_type={}", encode(v));
    }
    let req = SearchRequest {
        types,
        compartment: None,
        params,
        self_base,
        ignored: Vec::new(),
        strict,
        audit_query,
        care: Care::Plain,
        referenced_from: None,
    };
    let auth = authorize_types(services, caller, &req.types)?;
    search(services, &auth, req, output).await
}

/// The decision to search `types`: about the one type when there is one (so a type the caller
/// may not search is a 403, not an empty page), else about none.
pub(crate) fn authorize_types(
    services: &Services,
    caller: &Caller,
    types: &[String],
) -> Result<Authorized> {
    let single = match types {
        [t] => Some(t.as_str()),
        _ => None,
    };
    authorize(services, caller, single, Interaction::Search)
}

/// Plans a search under the caller's rules.
pub(crate) fn plan(
    settings: &Settings,
    access: Option<&Access>,
    types: &[String],
    params: &[(String, String)],
    strict: bool,
    compartment: Option<String>,
    care: Care,
) -> Result<SearchPlan> {
    let options = PlanOptions {
        default_count: settings.search_default_count,
        max_count: settings.search_max_count,
        strict,
        base_url: settings.base_url.clone(),
        access: access.cloned(),
        cursor_key: settings.cursor_key.clone(),
        // A timeline's cursors serve no compartment search of the same patient, and back.
        scope: match (compartment, care) {
            (Some(c), Care::Timeline) => format!("timeline:{c}"),
            (c, _) => c.unwrap_or_default(),
        },
        care,
    };
    Ok(search::plan(types, params, &options)?)
}

/// The store query of a plan.
pub(crate) fn query(
    plan: &SearchPlan,
    compartment: Option<String>,
    access: Option<&Access>,
    output: &Output,
) -> ResourceQuery {
    let total_only = output.summary == Some(fhir_model::summary::SummaryMode::Count);
    ResourceQuery {
        types: plan.types.clone(),
        compartment,
        referenced_from: None,
        filter: plan.filter.clone(),
        sort: plan.sort.clone(),
        after: plan.cursor.clone(),
        backward: plan.backward,
        snapshot: plan.snapshot,
        limit: if total_only { 0 } else { plan.count },
        count_total: plan.total == TotalMode::Accurate || total_only,
        access: access.cloned(),
        stable_plan: plan.stable,
    }
}
