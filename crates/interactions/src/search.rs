//! `search` (http://hl7.org/fhir/R4/search.html): by type, in a Patient compartment, across
//! types (`_type`), and as a GET entry of a Bundle. Each is planned, run and answered by the same
//! functions here, so every one has the same paging links and the same notice when something
//! was withheld. The answer is a [`SearchSet`]: the rows as stored, written out by [`SearchSet::render`]
//! (which splices stored bodies in without parsing them when nothing asks to change them).

use chrono::{SecondsFormat, Utc};
use search::text::encode;
use search::{PlanOptions, SearchPlan, TotalMode};
use serde_json::{json, Value};
use store::{Access, Cursor, FoundResource, ResourcePage, ResourceQuery};

use crate::authorize::Authorized;
use crate::blocking;
use crate::error::{internal, Error, Result};
use crate::outcome::Outcome;
use crate::render::Output;
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
}

/// Why an entry is in a searchset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// It matched.
    Match,
    /// An `_include`/`_revinclude` brought it.
    Include,
}

impl Mode {
    fn as_str(self) -> &'static str {
        match self {
            Mode::Match => "match",
            Mode::Include => "include",
        }
    }
}

/// A searchset Bundle before it is written out.
pub struct SearchSet {
    /// The Bundle without entries (type, total, links, meta).
    head: Value,
    /// The rows, as stored.
    rows: Vec<(FoundResource, Mode)>,
    /// The `outcome` entry: ignored parameters, withheld matches, cut includes.
    outcome: Option<Value>,
    /// Base URL for `fullUrl`.
    base_url: String,
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
    )?;
    plan.ignored.extend(req.ignored);
    let query = query(&plan, req.compartment, access, output);
    if explain {
        let store = services.store.clone();
        let (sql, plan_text) = blocking(move || store.explain_query(&query)).await?;
        return Ok(Outcome::Json(
            json!({"resourceType": "Parameters", "parameter": [
                {"name": "sql", "valueString": sql},
                {"name": "binds", "valueString": "values are bound as parameters $1..$n and not shown"},
                {"name": "plan", "valueString": plan_text},
            ]}),
        ));
    }
    let store = services.store.clone();
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
    let set = searchset(settings, &plan, page, included, cut, &req.self_base, output);
    auth.touched(set.touched());
    Ok(Outcome::SearchSet(set))
}

/// `GET [base]?_type=A,B&…`: the types named, or without `_type` every searchable type but the
/// audit trail (searched by naming it).
pub async fn system(
    services: &Services,
    auth: &Authorized,
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
    };
    search(services, auth, req, output).await
}

/// Plans a search under the caller's rules.
pub(crate) fn plan(
    settings: &Settings,
    access: Option<&Access>,
    types: &[String],
    params: &[(String, String)],
    strict: bool,
    compartment: Option<String>,
) -> Result<SearchPlan> {
    let options = PlanOptions {
        default_count: settings.search_default_count,
        max_count: settings.search_max_count,
        strict,
        base_url: settings.base_url.clone(),
        access: access.cloned(),
        cursor_key: settings.cursor_key.clone(),
        scope: compartment.unwrap_or_default(),
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
        filter: plan.filter.clone(),
        sort: plan.sort.clone(),
        after: plan.cursor.clone(),
        backward: plan.backward,
        snapshot: plan.snapshot,
        limit: if total_only { 0 } else { plan.count },
        count_total: plan.total == TotalMode::Accurate || total_only,
        access: access.cloned(),
    }
}

/// The searchset of a page: links, total, entries and the notices the caller needs.
pub(crate) fn searchset(
    settings: &Settings,
    plan: &SearchPlan,
    page: ResourcePage,
    included: Vec<FoundResource>,
    cut: bool,
    self_base: &str,
    output: &Output,
) -> SearchSet {
    let mut head = json!({
        "resourceType": "Bundle",
        "id": uuid::Uuid::new_v4().to_string(),
        "meta": {"lastUpdated": Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)},
        "type": "searchset",
    });
    if let Some(total) = page.total {
        head["total"] = json!(total);
    }
    head["link"] = Value::Array(links(self_base, plan, &page, output));
    let include_limit = settings.search_max_count;
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
    let rows = page
        .rows
        .into_iter()
        .map(|r| (r, Mode::Match))
        .chain(included.into_iter().map(|r| (r, Mode::Include)))
        .collect();
    SearchSet {
        head,
        rows,
        outcome,
        base_url: settings.base_url.clone(),
    }
}

impl SearchSet {
    /// The patients whose data the entries hold.
    pub fn touched(&self) -> impl Iterator<Item = &String> {
        self.rows.iter().flat_map(|(r, _)| r.compartments.iter())
    }

    /// The Bundle as a value, each resource subset as `output` asks.
    pub fn to_value(&self, output: &Output) -> Result<Value> {
        let mut bundle = self.head.clone();
        let mut values = Vec::with_capacity(self.rows.len() + 1);
        for (row, mode) in &self.rows {
            let resource: Value = serde_json::from_slice(&row.body).map_err(internal)?;
            values.push(json!({
                "fullUrl": format!("{}/{}/{}", self.base_url, row.res_type, row.id),
                "resource": output.subset(&resource),
                "search": {"mode": mode.as_str()},
            }));
        }
        values.extend(self.outcome.clone());
        if !values.is_empty() {
            bundle["entry"] = Value::Array(values);
        }
        Ok(bundle)
    }

    /// The Bundle written out; stored bodies are copied in as they are when `output` allows.
    pub fn render(&self, output: &Output) -> Result<Vec<u8>> {
        if !output.is_verbatim() {
            return output.render(&self.to_value(output)?);
        }
        let mut out = serde_json::to_vec(&self.head).map_err(internal)?;
        if self.rows.is_empty() && self.outcome.is_none() {
            return Ok(out);
        }
        out.pop(); // the closing brace
        out.extend_from_slice(b",\"entry\":[");
        for (i, (row, mode)) in self.rows.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let full_url =
                serde_json::to_string(&format!("{}/{}/{}", self.base_url, row.res_type, row.id))
                    .map_err(internal)?;
            out.extend_from_slice(b"{\"fullUrl\":");
            out.extend_from_slice(full_url.as_bytes());
            out.extend_from_slice(b",\"resource\":");
            out.extend_from_slice(&row.body);
            out.extend_from_slice(b",\"search\":{\"mode\":\"");
            out.extend_from_slice(mode.as_str().as_bytes());
            out.extend_from_slice(b"\"}}");
        }
        if let Some(o) = &self.outcome {
            if !self.rows.is_empty() {
                out.push(b',');
            }
            out.extend(serde_json::to_vec(o).map_err(internal)?);
        }
        out.extend_from_slice(b"]}");
        Ok(out)
    }
}

fn links(self_base: &str, plan: &SearchPlan, page: &ResourcePage, output: &Output) -> Vec<Value> {
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
