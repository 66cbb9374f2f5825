//! The authorization server's HTTP face: `POST /auth/token`, `/auth/introspect`, `/auth/revoke`
//! and `GET /.well-known/jwks.json`. Each reads a size-limited form body, calls `auth_server`,
//! records the AuditEvents it returns (durably, before answering) and writes the JSON answer
//! with `Cache-Control: no-store` (RFC 6749 §5.1).

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use auth_server::form::MAX_FORM_BYTES;
use auth_server::{EndpointRequest, ErrorCode, OAuthError, Reply};
use futures_util::StreamExt as _;

use crate::request_id::RequestId;
use crate::state::AppState;

/// `POST /auth/token`.
pub async fn token(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    endpoint(req, body, state, |auth, r| {
        Box::pin(async move { auth.token(&r).await })
    })
    .await
}

/// `POST /auth/introspect`.
pub async fn introspect(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    endpoint(req, body, state, |auth, r| {
        Box::pin(async move { auth.introspect(&r).await })
    })
    .await
}

/// `POST /auth/revoke`.
pub async fn revoke(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    endpoint(req, body, state, |auth, r| {
        Box::pin(async move { auth.revoke(&r).await })
    })
    .await
}

/// `GET /.well-known/jwks.json`: every current public key of the server's tokens.
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=60"))
        .json(state.auth.jwks())
}

type Call = fn(
    auth_server::AuthServer,
    EndpointRequest,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Reply>>>;

async fn endpoint(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
    call: Call,
) -> HttpResponse {
    let reply = match read_request(&req, body).await {
        Ok(request) => call(state.auth.clone(), request).await,
        Err((request, e)) => state.auth.refuse(&request, e),
    };
    if !reply.events.is_empty() && state.security.audit.record(reply.events).await.is_err() {
        return answer(Err(OAuthError::new(
            ErrorCode::TemporarilyUnavailable,
            "the audit trail could not be written, so nothing is answered",
        )));
    }
    answer(reply.result)
}

/// The form body (refused unread past [`MAX_FORM_BYTES`]) and what else the endpoint needs.
async fn read_request(
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<EndpointRequest, (EndpointRequest, OAuthError)> {
    let mut request = EndpointRequest {
        body: Vec::new(),
        authorization: req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .map(str::to_string),
        address: req
            .connection_info()
            .realip_remote_addr()
            .map(str::to_string),
        request_id: req
            .extensions()
            .get::<RequestId>()
            .map(|r| r.0.clone())
            .unwrap_or_default(),
    };
    match read_form(req, payload).await {
        Ok(body) => {
            request.body = body;
            Ok(request)
        }
        Err(e) => Err((request, e)),
    }
}

async fn read_form(req: &HttpRequest, mut payload: web::Payload) -> Result<Vec<u8>, OAuthError> {
    let form_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|h| h.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form_type {
        return Err(OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let too_large = || {
        OAuthError::invalid_request(format!(
            "the request body is larger than {MAX_FORM_BYTES} bytes"
        ))
    };
    if req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|h| h.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|n| n > MAX_FORM_BYTES)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|_| OAuthError::invalid_request("the request body could not be read"))?;
        if body.len() + chunk.len() > MAX_FORM_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn answer(result: Result<serde_json::Value, OAuthError>) -> HttpResponse {
    let (status, body, challenge) = match result {
        Ok(body) => (StatusCode::OK, body, false),
        Err(e) => (
            StatusCode::from_u16(e.code.status()).unwrap_or(StatusCode::BAD_REQUEST),
            e.body(),
            e.basic_challenge,
        ),
    };
    let mut res = HttpResponse::build(status);
    res.insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"));
    if challenge {
        res.insert_header((
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"invicta\""),
        ));
    }
    res.json(body)
}
