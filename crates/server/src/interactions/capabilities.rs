//! `capabilities`: GET /fhir/metadata, a CapabilityStatement generated from the same tables the
//! server runs on (resource types, search parameters), so it cannot drift from behaviour.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use fhir_model::search_params;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::format::Output;
use crate::query::Params;
use crate::state::AppState;

/// Handles `GET /fhir/metadata`.
pub async fn metadata(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let output = Output::from_request(&req, &Params::parse(req.query_string())?)?;
    let statement = capability_statement(&state.config.base_url);
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, output.content_type()))
        .body(output.render(&output.subset(&statement))?))
}

fn reference_params(t: &str) -> impl Iterator<Item = &'static search_params::SearchParamDef> {
    search_params::params_for(t)
        .into_iter()
        .filter(|p| p.kind == search_params::ParamType::Reference)
}

/// Builds the CapabilityStatement.
pub fn capability_statement(base_url: &str) -> Value {
    let searchable = search_params::searchable_types();
    let resources: Vec<Value> = fhir_model::elements::resource_types()
        .into_iter()
        .map(|t| {
            let interactions: Vec<Value> = [
                "read",
                "vread",
                "update",
                "delete",
                "history-instance",
                "history-type",
                "create",
            ]
            .iter()
            .map(|c| json!({"code": c}))
            .collect();
            let mut r = json!({
                "type": t,
                "interaction": interactions,
                "versioning": "versioned-update",
                "readHistory": true,
                "updateCreate": true,
                "conditionalCreate": true,
                "conditionalRead": "full-support",
                "conditionalUpdate": false,
                "conditionalDelete": "not-supported",
            });
            if searchable.contains(&t) {
                if let Some(list) = r["interaction"].as_array_mut() {
                    list.push(json!({"code": "search-type"}));
                }
                let params: Vec<Value> = search_params::params_for(t)
                    .into_iter()
                    .map(|p| {
                        json!({
                            "name": p.code,
                            "definition": p.url,
                            "type": p.kind.as_str(),
                            "documentation": p.description,
                        })
                    })
                    .collect();
                r["searchParam"] = Value::Array(params);
                let mut includes = vec![Value::from("*")];
                includes
                    .extend(reference_params(t).map(|p| Value::from(format!("{t}:{}", p.code))));
                r["searchInclude"] = Value::Array(includes);
            }
            let revincludes: Vec<Value> = searchable
                .iter()
                .flat_map(|source| {
                    reference_params(source)
                        .filter(|p| p.targets.iter().any(|target| target == t))
                        .map(move |p| Value::from(format!("{source}:{}", p.code)))
                })
                .collect();
            if !revincludes.is_empty() {
                r["searchRevInclude"] = Value::Array(revincludes);
            }
            r
        })
        .collect();
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": chrono::Utc::now().format("%Y-%m-%d").to_string(),
        "publisher": "Invicta",
        "kind": "instance",
        "software": {"name": "Invicta", "version": env!("CARGO_PKG_VERSION")},
        "implementation": {"description": "Invicta shared care record FHIR server", "url": base_url},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "application/fhir+xml", "json", "xml"],
        "rest": [{
            "mode": "server",
            "documentation": "Search supports string, token, date, reference, quantity, number, uri and composite parameters with their modifiers (:missing, :exact, :contains, :not, :text, :Type, :identifier, :below, :above) and prefixes; chains and _has are supported; _include and _revinclude (with :iterate) and composite parameters are supported and are ignored (or refused under Prefer: handling=strict).",
            "resource": resources,
            "interaction": [{"code": "history-system"}, {"code": "search-system"}],
            "searchParam": [
                {"name": "_count", "type": "number", "documentation": "Page size (default and maximum configurable)."},
                {"name": "_total", "type": "token", "documentation": "none | estimate | accurate (estimate is served as accurate)."},
                {"name": "_sort", "type": "string", "documentation": "Up to three keys: _lastUpdated, _id, or any string, token, date, number or quantity parameter; '-' for descending."},
                {"name": "_type", "type": "token", "documentation": "Resource types of a system search."}
            ],
        }],
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_statement_is_a_valid_resource() {
        let cs = super::capability_statement("http://localhost/fhir");
        fhir_model::format::check_resource(cs.clone()).unwrap();
        fhir_model::format::to_xml(&cs).unwrap();
    }
}
