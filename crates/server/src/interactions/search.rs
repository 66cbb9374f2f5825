//! `search`: GET /fhir/{type}?…, POST /fhir/{type}/_search, compartment search
//! GET /fhir/Patient/{id}/{type}?…, and system search GET /fhir?_type=…
//! (http://hl7.org/fhir/R4/search.html). Results are searchset Bundles paged by a keyset cursor.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{SecondsFormat, Utc};
use futures_util::StreamExt;
use search::text::{encode, pairs};
use search::{PlanOptions, SearchPlan, TotalMode};
use serde_json::{json, Value};
use store::{Cursor, FoundResource, ResourceQuery};

use super::{blocking, logical_id, resource_type};
use crate::auth::authorize;
use crate::error::ApiError;
use crate::format::Output;
use crate::query::Params;
use crate::state::AppState;
use authz::Interaction;

/// Largest form body accepted by `POST _search`.
const MAX_FORM: usize = 64 * 1024;

/// `GET /fhir/{type}`.
pub async fn by_type(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let t = resource_type(&req)?;
    let params = pairs(req.query_string())?;
    run(
        &req,
        &state,
        vec![t.clone()],
        None,
        params,
        format!("{}/{t}", state.config.base_url),
        Vec::new(),
    )
    .await
}

/// `POST /fhir/{type}/_search` with a form body (and possibly a query string too).
pub async fn by_type_post(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let t = resource_type(&req)?;
    let params = form_params(&req, payload).await?;
    run(
        &req,
        &state,
        vec![t.clone()],
        None,
        params,
        format!("{}/{t}", state.config.base_url),
        Vec::new(),
    )
    .await
}

/// `GET /fhir/Patient/{id}/{type}`: the type's resources in that patient's compartment.
pub async fn compartment(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let owner = resource_type(&req)?;
    if owner != "Patient" {
        return Err(ApiError::not_found(format!(
            "Compartment search is supported for Patient, not {owner}"
        )));
    }
    let id = logical_id(&req)?;
    let t = req
        .match_info()
        .get("ctype")
        .unwrap_or_default()
        .to_string();
    if !fhir_model::elements::is_resource_type(&t) {
        return Err(ApiError::not_found(format!(
            "'{t}' is not a supported resource type"
        )));
    }
    let params = pairs(req.query_string())?;
    let base = format!("{}/Patient/{id}/{t}", state.config.base_url);
    run(&req, &state, vec![t], Some(id), params, base, Vec::new()).await
}

/// `GET /fhir?_type=A,B&…` (system search; without `_type`, every searchable type).
pub async fn system(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let params = pairs(req.query_string())?;
    system_search(req, state, params).await
}

/// `POST /fhir/_search`.
pub async fn system_post(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let params = form_params(&req, payload).await?;
    system_search(req, state, params).await
}

async fn system_search(
    req: HttpRequest,
    state: web::Data<AppState>,
    params: Vec<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let types: Vec<String> = match params.iter().find(|(k, _)| k == "_type") {
        Some((_, v)) => {
            let mut types = Vec::new();
            for t in v.split(',').filter(|t| !t.is_empty()) {
                if !fhir_model::elements::is_resource_type(t) {
                    return Err(ApiError::bad_request(format!(
                        "_type names an unknown resource type '{t}'"
                    )));
                }
                if !types.iter().any(|k| k == t) {
                    types.push(t.to_string());
                }
            }
            types
        }
        // Without _type, the record's types; the audit trail is searched by naming it.
        None => fhir_model::search_params::searchable_types()
            .iter()
            .filter(|t| **t != "AuditEvent")
            .map(|t| t.to_string())
            .collect(),
    };
    let mut base = state.config.base_url.clone();
    if let Some((_, v)) = params.iter().find(|(k, _)| k == "_type") {
        base = format!("{base}?_type={}", encode(v));
    }
    run(&req, &state, types, None, params, base, Vec::new()).await
}

async fn form_params(
    req: &HttpRequest,
    mut payload: web::Payload,
) -> Result<Vec<(String, String)>, ApiError> {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("application/x-www-form-urlencoded");
    if !ct.starts_with("application/x-www-form-urlencoded") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not-supported",
            format!("_search takes an application/x-www-form-urlencoded body, not '{ct}'"),
        ));
    }
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::bad_request(format!("Could not read the body: {e}")))?;
        if body.len() + chunk.len() > MAX_FORM {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-costly",
                format!("The search form is larger than {MAX_FORM} bytes"),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    let form = std::str::from_utf8(&body)
        .map_err(|_| ApiError::bad_request("The search form is not UTF-8"))?;
    let mut params = pairs(req.query_string())?;
    params.extend(pairs(form)?);
    Ok(params)
}

/// Runs a search and answers with its searchset Bundle. `ignored` names parameters the caller
/// already set aside, reported with those the plan ignores.
pub(crate) async fn run(
    req: &HttpRequest,
    state: &AppState,
    types: Vec<String>,
    compartment: Option<String>,
    params: Vec<(String, String)>,
    self_base: String,
    ignored: Vec<String>,
) -> Result<HttpResponse, ApiError> {
    let explain =
        state.config.search_explain && params.iter().any(|(k, v)| k == "_explain" && v == "true");
    let params: Vec<(String, String)> = if state.config.search_explain {
        params
            .into_iter()
            .filter(|(k, _)| k != "_explain")
            .collect()
    } else {
        params
    };
    let single = (types.len() == 1).then(|| types[0].clone());
    let auth = authorize(req, state, single.as_deref(), Interaction::Search)?;
    auth.query(req.uri().to_string());
    let output = Output::from_request(req, &Params::from_pairs(params.clone()))?;
    let options = PlanOptions {
        default_count: state.config.search_default_count,
        max_count: state.config.search_max_count,
        strict: prefers_strict(req),
        base_url: state.config.base_url.clone(),
        access: auth.access.as_deref().cloned(),
        cursor_key: state.config.cursor_key.clone(),
        scope: compartment.clone().unwrap_or_default(),
    };
    let mut plan = search::plan(&types, &params, &options)?;
    plan.ignored.extend(ignored);
    let total_only = output.summary == Some(fhir_model::summary::SummaryMode::Count);
    let query = ResourceQuery {
        types: plan.types.clone(),
        compartment,
        filter: plan.filter.clone(),
        sort: plan.sort.clone(),
        after: plan.cursor.clone(),
        backward: plan.backward,
        snapshot: plan.snapshot,
        limit: if total_only { 0 } else { plan.count },
        count_total: plan.total == TotalMode::Accurate || total_only,
        access: auth.access.as_deref().cloned(),
    };
    if explain {
        let store = state.store.clone();
        let (sql, plan_text) = blocking(move || store.explain_query(&query)).await?;
        let parameters = json!({"resourceType": "Parameters", "parameter": [
            {"name": "sql", "valueString": sql},
            {"name": "binds", "valueString": "values are bound as parameters $1..$n and not shown"},
            {"name": "plan", "valueString": plan_text},
        ]});
        return Ok(HttpResponse::Ok()
            .insert_header((header::CONTENT_TYPE, output.content_type()))
            .body(output.render(&parameters)?));
    }
    let store = state.store.clone();
    let includes = plan.includes.clone();
    let include_limit = state.config.search_max_count as usize;
    let include_access = auth.access.clone();
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
    for row in page.rows.iter().chain(included.iter()) {
        auth.touched(&row.compartments);
    }
    let links = links(&self_base, &plan, &page, &output);
    let base_url = &state.config.base_url;
    let mut bundle = json!({
        "resourceType": "Bundle",
        "id": uuid::Uuid::new_v4().to_string(),
        "meta": {"lastUpdated": Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)},
        "type": "searchset",
    });
    if let Some(total) = page.total {
        bundle["total"] = json!(total);
    }
    bundle["link"] = Value::Array(links);
    let mut warnings = Vec::new();
    if !plan.ignored.is_empty() {
        warnings.push(json!({"severity": "warning", "code": "not-supported",
            "diagnostics": format!("Parameters not supported and ignored: {}", plan.ignored.join(", "))}));
    }
    if page.withheld {
        warnings.push(json!({"severity": "information", "code": "suppressed",
            "diagnostics": "Some matching resources were withheld: your organisation has no legitimate relationship with their patient, or they are restricted. Claim a relationship (X-Relationship-Claim: <reason>) or, in an emergency, break glass (X-Purpose-Of-Use: BTG with X-Break-Glass-Reason: <reason>); both are audited and reviewed."}));
    }
    if cut {
        warnings.push(json!({"severity": "warning", "code": "too-costly",
            "diagnostics": format!("Only the first {include_limit} included resources are returned")}));
    }
    let outcome = (!warnings.is_empty()).then(|| {
        json!({
            "resource": {"resourceType": "OperationOutcome", "issue": warnings},
            "search": {"mode": "outcome"}
        })
    });
    let entries: Vec<(&FoundResource, &str)> = page
        .rows
        .iter()
        .map(|r| (r, "match"))
        .chain(included.iter().map(|r| (r, "include")))
        .collect();
    let body = if output.is_verbatim() {
        splice(bundle, &entries, outcome, base_url)?
    } else {
        let mut values = Vec::with_capacity(entries.len() + 1);
        for (row, mode) in &entries {
            let resource: Value =
                serde_json::from_slice(&row.body).map_err(crate::error::internal)?;
            values.push(json!({
                "fullUrl": format!("{base_url}/{}/{}", row.res_type, row.id),
                "resource": output.subset(&resource),
                "search": {"mode": mode},
            }));
        }
        values.extend(outcome);
        if !values.is_empty() {
            bundle["entry"] = Value::Array(values);
        }
        output.render(&bundle)?
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, output.content_type()))
        .body(body))
}

/// Writes the Bundle with each stored body copied in as it is, without parsing it again.
fn splice(
    bundle: Value,
    rows: &[(&FoundResource, &str)],
    outcome: Option<Value>,
    base_url: &str,
) -> Result<Vec<u8>, ApiError> {
    let mut out = serde_json::to_vec(&bundle).map_err(crate::error::internal)?;
    if rows.is_empty() && outcome.is_none() {
        return Ok(out);
    }
    out.pop(); // the closing brace
    out.extend_from_slice(b",\"entry\":[");
    for (i, (row, mode)) in rows.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let full_url = serde_json::to_string(&format!("{base_url}/{}/{}", row.res_type, row.id))
            .map_err(crate::error::internal)?;
        out.extend_from_slice(b"{\"fullUrl\":");
        out.extend_from_slice(full_url.as_bytes());
        out.extend_from_slice(b",\"resource\":");
        out.extend_from_slice(&row.body);
        out.extend_from_slice(b",\"search\":{\"mode\":\"");
        out.extend_from_slice(mode.as_bytes());
        out.extend_from_slice(b"\"}}");
    }
    if let Some(o) = outcome {
        if !rows.is_empty() {
            out.push(b',');
        }
        out.extend(serde_json::to_vec(&o).map_err(crate::error::internal)?);
    }
    out.extend_from_slice(b"]}");
    Ok(out)
}

fn links(
    self_base: &str,
    plan: &SearchPlan,
    page: &store::ResourcePage,
    output: &Output,
) -> Vec<Value> {
    let mut query: Vec<String> = plan
        .applied
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    query.push(format!("_count={}", plan.count));
    if output.summary == Some(fhir_model::summary::SummaryMode::Count) {
        query.push("_summary=count".into());
    }
    if let Some(e) = &output.elements {
        query.push(format!("_elements={}", encode(&e.join(","))));
    }
    let sep = if self_base.contains('?') { '&' } else { '?' };
    let link = |relation: &str, cursor: Option<(Cursor, bool)>| {
        let mut q = query.clone();
        if let Some((c, backward)) = cursor {
            q.push(format!(
                "_cursor={}",
                plan.cursor_token(page.snapshot, &c, backward)
            ));
        }
        json!({"relation": relation, "url": format!("{self_base}{sep}{}", q.join("&"))})
    };
    let at = |row: &FoundResource, backward: bool| {
        Some((
            Cursor {
                values: row.sort_values.clone(),
                rid: row.rid,
            },
            backward,
        ))
    };
    let here = plan.cursor.clone().map(|c| (c, plan.backward));
    let mut links = vec![link("self", here)];
    // Forward pages have more after them when `more`; backward pages have more before them.
    let (more_after, more_before) = if plan.backward {
        (true, page.more)
    } else {
        (page.more, plan.cursor.is_some())
    };
    if let (true, Some(first)) = (more_before, page.rows.first()) {
        links.push(link("previous", at(first, true)));
    }
    if let (true, Some(last)) = (more_after, page.rows.last()) {
        links.push(link("next", at(last, false)));
    }
    links
}

/// `Prefer: handling=strict`: unknown or unsupported parameters are errors.
pub(crate) fn prefers_strict(req: &HttpRequest) -> bool {
    req.headers()
        .get_all("prefer")
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split([',', ';']))
        .any(|p| p.trim() == "handling=strict")
}
