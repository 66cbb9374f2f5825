//! `capabilities`: GET /fhir/metadata, a CapabilityStatement generated from the same tables the
//! server runs on (resource types, search parameters), so it cannot drift from behaviour.

use fhir_model::{search_params, RestInteraction};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use crate::outcome::Outcome;
use crate::render::Output;
use crate::services::Services;

/// `GET [base]/metadata`: the CapabilityStatement, subset as asked.
pub fn metadata(services: &Services, output: &Output) -> Outcome {
    let settings = &services.settings;
    let mut statement = cached_statement(&settings.base_url, settings.delete_multiple);
    statement["rest"][0]["security"] = security(&settings.auth_base);
    Outcome::Json(output.subset(&statement))
}

/// The definition of `Patient/$timeline`.
pub fn timeline_definition(output: &Output) -> Outcome {
    let definition: Value = serde_json::from_str(include_str!(
        "../../../profiles/OperationDefinition-Patient-timeline.json"
    ))
    .unwrap_or(Value::Null);
    Outcome::Json(output.subset(&definition))
}

/// The CapabilityStatement, built once per base URL: with every R4 type searchable it lists
/// thousands of parameters, too many to gather on every request.
fn cached_statement(base_url: &str, delete_multiple: bool) -> Value {
    type Built = HashMap<(String, bool), Value>;
    static BUILT: OnceLock<Mutex<Built>> = OnceLock::new();
    let mut built = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    built
        .entry((base_url.to_string(), delete_multiple))
        .or_insert_with(|| capability_statement(base_url, delete_multiple))
        .clone()
}

/// The authorization server's endpoints.
struct Endpoints {
    authorize: String,
    token: String,
    introspect: String,
    revoke: String,
    jwks: String,
}

fn endpoints(auth_base: &str) -> Endpoints {
    let root = auth_base.strip_suffix("/auth").unwrap_or(auth_base);
    Endpoints {
        authorize: format!("{auth_base}/authorize"),
        token: format!("{auth_base}/token"),
        introspect: format!("{auth_base}/introspect"),
        revoke: format!("{auth_base}/revoke"),
        jwks: format!("{root}/.well-known/jwks.json"),
    }
}

/// `rest.security`: SMART-on-FHIR with the oauth-uris extension, naming the same endpoints as
/// the SMART configuration.
fn security(auth_base: &str) -> Value {
    let e = endpoints(auth_base);
    json!({
        "extension": [{
            "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
            "extension": [
                {"url": "authorize", "valueUri": e.authorize},
                {"url": "token", "valueUri": e.token},
                {"url": "introspect", "valueUri": e.introspect},
                {"url": "revoke", "valueUri": e.revoke}
            ]
        }],
        "cors": false,
        "service": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
            "code": "SMART-on-FHIR"
        }]}],
        "description": "SMART App Launch 2 authorization server (authorization code with PKCE S256 for EHR and standalone launch, refresh tokens, client credentials with private_key_jwt for backend services, introspection and revocation); bearer tokens (JWT, RS256/RS384/ES256/ES384) from the server's own keys or trusted OpenID Connect issuers; SMART App Launch v1 and v2 scopes intersected with the care-record role policy; security labels, legitimate relationships, break-glass (X-Purpose-Of-Use, X-Break-Glass-Reason) and relationship claims (X-Relationship-Claim); every access audited as AuditEvent."
    })
}

/// The grant types the token endpoint serves.
const GRANT_TYPES: &[&str] = &["authorization_code", "client_credentials", "refresh_token"];

/// SMART capabilities served: each one listed here works end to end.
const CAPABILITIES: &[&str] = &[
    "launch-ehr",
    "launch-standalone",
    "authorize-post",
    "client-public",
    "client-confidential-asymmetric",
    "client-confidential-symmetric",
    "sso-openid-connect",
    "context-banner",
    "context-style",
    "context-ehr-patient",
    "context-ehr-encounter",
    "context-standalone-patient",
    "permission-offline",
    "permission-online",
    "permission-patient",
    "permission-user",
    "permission-v1",
    "permission-v2",
];

/// The SMART configuration (`[base]/.well-known/smart-configuration`, SMART App Launch 2).
pub fn smart_configuration(services: &Services) -> Value {
    let settings = &services.settings;
    let e = endpoints(&settings.auth_base);
    json!({
        "issuer": settings.issuer,
        "jwks_uri": e.jwks,
        "authorization_endpoint": e.authorize,
        "token_endpoint": e.token,
        "introspection_endpoint": e.introspect,
        "revocation_endpoint": e.revoke,
        "grant_types_supported": GRANT_TYPES,
        "token_endpoint_auth_methods_supported": ["private_key_jwt", "client_secret_basic", "none"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
        "scopes_supported": [
            "openid", "fhirUser", "profile", "launch", "launch/patient", "launch/encounter",
            "offline_access", "online_access",
            "patient/*.rs", "patient/*.read", "user/*.rs", "user/*.read", "user/*.cruds",
            "user/*.*", "system/*.rs", "system/*.crus", "system/*.read"
        ],
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "capabilities": CAPABILITIES
    })
}

/// The OpenID Connect discovery document (`[issuer]/.well-known/openid-configuration`): the
/// authorization server signs ID tokens for apps granted `openid fhirUser`.
pub fn openid_configuration(services: &Services) -> Value {
    let settings = &services.settings;
    let e = endpoints(&settings.auth_base);
    json!({
        "issuer": settings.issuer,
        "authorization_endpoint": e.authorize,
        "token_endpoint": e.token,
        "jwks_uri": e.jwks,
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "scopes_supported": ["openid", "fhirUser", "profile", "offline_access", "online_access"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "fhirUser", "name"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt", "client_secret_basic", "none"],
        "code_challenge_methods_supported": ["S256"],
        "grant_types_supported": GRANT_TYPES
    })
}

fn reference_params(t: &str) -> impl Iterator<Item = &'static search_params::SearchParamDef> {
    search_params::params_for(t)
        .into_iter()
        .filter(|p| p.kind == search_params::ParamType::Reference)
}

/// Builds the CapabilityStatement.
pub fn capability_statement(base_url: &str, delete_multiple: bool) -> Value {
    let searchable = search_params::searchable_types();
    let resources: Vec<Value> = fhir_model::elements::resource_types()
        .into_iter()
        .map(|t| {
            use RestInteraction::*;
            let interactions: Vec<Value> = [
                Read,
                Vread,
                Update,
                Patch,
                Delete,
                HistoryInstance,
                HistoryType,
                Create,
            ]
            .iter()
            .map(|i| json!({"code": i.code()}))
            .collect();
            let mut r = json!({
                "type": t,
                "interaction": interactions,
                "versioning": "versioned-update",
                "readHistory": true,
                "updateCreate": true,
                "conditionalCreate": true,
                "conditionalRead": "full-support",
                "conditionalUpdate": true,
                "conditionalDelete": if delete_multiple { "multiple" } else { "single" },
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
            let validate = json!({
                "name": "validate",
                "definition": "http://hl7.org/fhir/OperationDefinition/Resource-validate",
                "documentation": "POST [base]/{type}/$validate (or /{type}/{id}/$validate): an OperationOutcome of the findings against R4 and the type's profile (or the one named by 'profile'); nothing is stored"
            });
            r["operation"] = json!([validate.clone()]);
            if let Some(p) = fhir_model::profile::ProfileSet::shipped().profile_for_type(t) {
                r["supportedProfile"] = json!([p.url()]);
            }
            if t == "Patient" {
                r["operation"] = json!([validate, {
                    "name": "everything",
                    "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
                    "documentation": "The patient and every resource of their compartment the caller may see (access rules apply as for searches). Supports _since, _type, _count and paging; start and end are not supported and are reported as ignored. Patient/$everything without an id serves a token confined to one patient."
                }, {
                    "name": "timeline",
                    "definition": crate::timeline::DEFINITION,
                    "documentation": "Every event in the patient's record the caller may see, across all sources, in order of clinical date (newest first; _sort=date for oldest first), with start, end, _type, _count and paging. Each entry is labelled with its event date and source organisation."
                }]);
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
            "interaction": [
                {"code": "transaction", "documentation": "All or nothing in one database transaction; urn:uuid and conditional references are resolved; entry and size limits are configurable."},
                {"code": "batch", "documentation": "Each entry in a transaction of its own."},
                {"code": "history-system"},
                {"code": "search-system"}
            ],
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
        let mut cs = super::capability_statement("http://localhost/fhir", false);
        cs["rest"][0]["security"] = serde_json::json!({"service": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/restful-security-service", "code": "SMART-on-FHIR"}]}]});
        fhir_model::format::check_resource(cs.clone()).unwrap();
        fhir_model::format::to_xml(&cs).unwrap();
    }
}
