//! The authorization server's HTTP face. For clients: `POST /auth/token`, `/auth/introspect`,
//! `/auth/revoke`, `/auth/launch` and `GET /.well-known/jwks.json`, answered in JSON with
//! `Cache-Control: no-store` (RFC 6749 §5.1). For browsers: `/auth/authorize`, the sign-in
//! pages and the consent screen, answered with redirects or pages that may not be framed, and
//! the session cookie. Each reads a size-limited form (or query), calls `auth_server`, and
//! records the AuditEvents it returns (durably) before answering.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use auth_server::form::Form;
use auth_server::form::MAX_FORM_BYTES;
use auth_server::{Browser, EndpointRequest, ErrorCode, OAuthError, Reply};
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

/// `POST /auth/launch`.
pub async fn launch(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    endpoint(req, body, state, |auth, r| {
        Box::pin(async move { auth.create_launch(&r).await })
    })
    .await
}

/// `GET|POST /auth/authorize`.
pub async fn authorize(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let (request, form) = match browser_form(&req, body).await {
        Ok(x) => x,
        Err(html) => return html,
    };
    let signed_in = match session_of(&req) {
        Some(s) => state.auth.signed_in(&s).await.is_some(),
        None => false,
    };
    let reply = state.auth.authorize(&request, &form, signed_in).await;
    browser(&state, reply).await
}

/// `GET /auth/signin?request=…`.
pub async fn signin(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let form = Form::parse(req.query_string().as_bytes()).unwrap_or_default();
    let reply = state
        .auth
        .signin_page(form.get("request").unwrap_or_default())
        .await;
    browser(&state, reply).await
}

/// `POST /auth/signin/dev`.
pub async fn dev_signin(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let (request, form) = match browser_form(&req, body).await {
        Ok(x) => x,
        Err(html) => return html,
    };
    let reply = state.auth.dev_signin(&request, &form).await;
    browser(&state, reply).await
}

/// `GET /auth/consent?request=…` and `POST /auth/consent`.
pub async fn consent(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let (request, form) = match browser_form(&req, body).await {
        Ok(x) => x,
        Err(html) => return html,
    };
    let (session, person) =
        match signed_in(&req, &state, form.get("request").unwrap_or_default()).await {
            Ok(x) => x,
            Err(to_signin) => return to_signin,
        };
    let reply = if req.method() == actix_web::http::Method::POST {
        state.auth.consent(&request, &form, &session, &person).await
    } else {
        state
            .auth
            .consent_page(form.get("request").unwrap_or_default(), &session, &person)
            .await
    };
    browser(&state, reply).await
}

/// `GET /auth/idp/{provider}/start?request=…`: sign in through an identity provider.
pub async fn upstream_start(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let form = Form::parse(req.query_string().as_bytes()).unwrap_or_default();
    let provider = req.match_info().get("provider").unwrap_or_default();
    let reply = state
        .auth
        .upstream_start(provider, form.get("request").unwrap_or_default())
        .await;
    browser(&state, reply).await
}

/// `GET /auth/idp/{provider}/callback`: back from the identity provider.
pub async fn upstream_callback(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let (request, form) = match browser_form(&req, body).await {
        Ok(x) => x,
        Err(html) => return html,
    };
    let provider = req.match_info().get("provider").unwrap_or_default();
    let reply = state
        .auth
        .upstream_callback(&request, provider, &form)
        .await;
    browser(&state, reply).await
}

/// The signed-in person of the request's session with the session id; else the answer that
/// sends the browser to sign in for `request` first (and come back).
pub(crate) async fn signed_in(
    req: &HttpRequest,
    state: &AppState,
    request: &str,
) -> Result<(String, auth_server::Person), HttpResponse> {
    let session = session_of(req);
    let person = match &session {
        Some(s) => state.auth.signed_in(s).await,
        None => None,
    };
    match (session, person) {
        (Some(session), Some(person)) => Ok((session, person)),
        _ => {
            let to = auth_server::with_query(
                &format!("{}/signin", state.auth.settings().auth_base),
                &[("request", request)],
            );
            Err(browser(state, auth_server::BrowserReply::redirect_to(to)).await)
        }
    }
}

/// The session cookie's name.
const SESSION_COOKIE: &str = "invicta_session";

fn session_of(req: &HttpRequest) -> Option<String> {
    req.cookie(SESSION_COOKIE).map(|c| c.value().to_string())
}

/// A browser request's parameters: the query of a GET, the form body of a POST.
pub(crate) async fn browser_form(
    req: &HttpRequest,
    body: web::Payload,
) -> Result<(EndpointRequest, Form), HttpResponse> {
    let bad = |msg: &str| {
        page_response(
            400,
            auth_server::pages::refusal("This request is not valid", msg),
        )
    };
    if req.method() == actix_web::http::Method::GET {
        let request = match read_request(req, body, false).await {
            Ok(r) => r,
            Err((_, e)) => return Err(bad(&e.description)),
        };
        let form = Form::parse(req.query_string().as_bytes()).map_err(|e| bad(&e.description))?;
        return Ok((request, form));
    }
    match read_request(req, body, true).await {
        Ok(r) => {
            let form = Form::parse(&r.body).map_err(|e| bad(&e.description))?;
            Ok((r, form))
        }
        Err((_, e)) => Err(bad(&e.description)),
    }
}

/// Writes a browser reply: records its AuditEvents, sets the session cookie, redirects or shows
/// the page.
pub(crate) async fn browser(state: &AppState, reply: auth_server::BrowserReply) -> HttpResponse {
    if !reply.events.is_empty() && state.security.audit.record(reply.events).await.is_err() {
        return page_response(
            503,
            auth_server::pages::refusal(
                "Sign-in is not available",
                "The audit trail could not be written. Try again in a moment.",
            ),
        );
    }
    let mut res = match reply.answer {
        Browser::Redirect(to) => {
            let mut r = HttpResponse::SeeOther();
            r.insert_header((header::LOCATION, to))
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .insert_header((header::REFERRER_POLICY, "no-referrer"));
            r
        }
        Browser::Page(status, html) => {
            return with_cookie(page_response(status, html), state, reply.set_session)
        }
    };
    with_cookie(res.finish(), state, reply.set_session)
}

fn with_cookie(mut res: HttpResponse, state: &AppState, session: Option<String>) -> HttpResponse {
    if let Some(id) = session {
        let cookie = actix_web::cookie::Cookie::build(SESSION_COOKIE, id)
            .path("/auth")
            .http_only(true)
            .same_site(actix_web::cookie::SameSite::Lax)
            .secure(state.auth.settings().secure())
            .max_age(actix_web::cookie::time::Duration::hours(8))
            .finish();
        let _ = res.add_cookie(&cookie);
    }
    res
}

fn page_response(status: u16, html: String) -> HttpResponse {
    HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST))
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ))
        .body(html)
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
    let reply = match read_request(&req, body, true).await {
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
    with_body: bool,
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
    if !with_body {
        return Ok(request);
    }
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
