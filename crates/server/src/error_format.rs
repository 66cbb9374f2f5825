//! Error bodies in the format the client asked for: an OperationOutcome is built as JSON where
//! the error happens and rewritten as FHIR XML here when the request wanted XML.

use actix_web::body::{to_bytes, BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderValue, CONTENT_TYPE};
use actix_web::middleware::Next;
use actix_web::HttpResponse;

use crate::format::prefers_xml;
use interactions::render::{FHIR_JSON, FHIR_XML};

/// Rewrites JSON OperationOutcome error bodies as XML for clients that asked for XML.
pub async fn xml_errors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let wants_xml = prefers_xml(req.request());
    let res = next.call(req).await?.map_into_boxed_body();
    let is_error = res.status().is_client_error() || res.status().is_server_error();
    let is_json = res
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|ct| ct.as_bytes() == FHIR_JSON.as_bytes());
    if !(wants_xml && is_error && is_json) {
        return Ok(res);
    }
    let (request, response) = res.into_parts();
    let (mut head, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body).await else {
        return Ok(ServiceResponse::new(
            request,
            HttpResponse::InternalServerError().finish(),
        ));
    };
    let xml = serde_json::from_slice(&bytes)
        .ok()
        .and_then(|v| fhir_model::format::to_xml(&v).ok());
    let response = match xml {
        Some(xml) => {
            head.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(FHIR_XML));
            head.set_body(BoxBody::new(xml))
        }
        None => head.set_body(BoxBody::new(bytes)),
    };
    Ok(ServiceResponse::new(request, response))
}
