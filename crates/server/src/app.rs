//! The route table and middleware: one `configure` used by `main` and by every test server.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use tracing::Span;
use tracing_actix_web::RootSpanBuilder;

use crate::error::ApiError;
use crate::handlers::{apps, bundle, discovery, history, oauth, picker, resources, searches};
use crate::request_id::RequestId;
use crate::state::AppState;
use interactions::ErrorKind;

/// Registers every route. `$`-operations and `_history` come before `{type}/{id}` so that
/// they are never taken for ids.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/health", web::get().to(health))
        .route("/ready", web::get().to(ready))
        .service(
            web::resource("/apps/viewer")
                .route(web::get().to(apps::root))
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::resource("/apps/viewer/config.json")
                .route(web::get().to(apps::config))
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::resource(["/apps/viewer/", "/apps/viewer/{name}"])
                .route(web::get().to(apps::file))
                .route(web::head().to(apps::file))
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::resource("/.well-known/jwks.json")
                .route(web::get().to(oauth::jwks))
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::scope("/auth")
                .service(
                    web::resource("/token")
                        .route(web::post().to(oauth::token))
                        .default_service(web::to(method_not_allowed)),
                )
                .service(
                    web::resource("/authorize")
                        .route(web::get().to(oauth::authorize))
                        .route(web::post().to(oauth::authorize))
                        .default_service(web::to(method_not_allowed)),
                )
                .service(
                    web::resource("/signin")
                        .route(web::get().to(oauth::signin))
                        .default_service(web::to(method_not_allowed)),
                )
                .service(
                    web::resource("/idp/{provider}/start")
                        .route(web::get().to(oauth::upstream_start))
                        .default_service(web::to(method_not_allowed)),
                )
                .service(
                    web::resource("/idp/{provider}/callback")
                        .route(web::get().to(oauth::upstream_callback))
                        .default_service(web::to(method_not_allowed)),
                )
                .service(
                    web::resource("/signin/dev")
                        .route(web::post().to(oauth::dev_signin))
                        .default_service(web::to(method_not_allowed)),
                )
                .service(
                    web::resource("/consent")
                        .route(web::get().to(oauth::consent))
                        .route(web::post().to(oauth::consent))
                        .default_service(web::to(method_not_allowed)),
                )
                .service(
                    web::resource("/pick")
                        .route(web::get().to(picker::pick))
                        .route(web::post().to(picker::pick))
                        .default_service(web::to(method_not_allowed)),
                )
                .service(
                    web::resource("/launch")
                        .route(web::post().to(oauth::launch))
                        .default_service(web::to(method_not_allowed)),
                )
                .service(
                    web::resource("/introspect")
                        .route(web::post().to(oauth::introspect))
                        .default_service(web::to(method_not_allowed)),
                )
                .service(
                    web::resource("/revoke")
                        .route(web::post().to(oauth::revoke))
                        .default_service(web::to(method_not_allowed)),
                )
                .default_service(web::to(not_found)),
        )
        .service(
            web::scope("/fhir")
                .service(
                    web::resource(["", "/"])
                        .route(web::get().to(searches::system))
                        .route(web::post().to(bundle::process))
                        .default_service(web::to(method_not_allowed)),
                )
                .service(
                    web::resource("/_search")
                        .route(web::post().to(searches::system))
                        .default_service(web::to(method_not_allowed)),
                )
                .service(
                    web::resource("/.well-known/smart-configuration")
                        .route(web::get().to(discovery::smart_configuration))
                        .default_service(web::to(method_not_allowed)),
                )
                .service(
                    web::resource("/.well-known/openid-configuration")
                        .route(web::get().to(discovery::openid_configuration))
                        .default_service(web::to(method_not_allowed)),
                )
                .service(
                    web::resource("/.well-known/jwks.json")
                        .route(web::get().to(discovery::jwks))
                        .default_service(web::to(method_not_allowed)),
                )
                .service(
                    web::resource("/metadata")
                        .route(web::get().to(discovery::metadata))
                        .default_service(web::to(method_not_allowed)),
                )
                .service(
                    web::resource("/_history")
                        .route(web::get().to(history::system))
                        .default_service(web::to(method_not_allowed)),
                )
                .service(
                    web::resource("/{type}/_history")
                        .route(web::get().to(history::by_type))
                        .default_service(web::to(method_not_allowed)),
                )
                .service(
                    web::resource("/{type}/{id}/_history")
                        .route(web::get().to(history::instance))
                        .default_service(web::to(method_not_allowed)),
                )
                .service(
                    web::resource("/{type}/_search")
                        .route(web::post().to(searches::by_type))
                        .default_service(web::to(method_not_allowed)),
                )
                .service(
                    web::resource("/{type}/{id}/_history/{vid}")
                        .route(web::get().to(resources::vread))
                        .default_service(web::to(method_not_allowed)),
                )
                .service(
                    web::resource("/OperationDefinition/Patient-timeline")
                        .route(web::get().to(discovery::timeline_definition))
                        .default_service(web::to(method_not_allowed)),
                )
                .service(
                    web::resource("/{type}/$validate")
                        .route(web::post().to(resources::validate))
                        .default_service(web::to(method_not_allowed)),
                )
                .service(
                    web::resource("/{type}/{id}/$validate")
                        .route(web::post().to(resources::validate))
                        .default_service(web::to(method_not_allowed)),
                )
                .service(
                    web::resource("/{type}/$timeline")
                        .route(web::get().to(searches::timeline))
                        .default_service(web::to(method_not_allowed)),
                )
                .service(
                    web::resource("/{type}/{id}/$timeline")
                        .route(web::get().to(searches::timeline))
                        .default_service(web::to(method_not_allowed)),
                )
                .service(
                    web::resource("/{type}/$everything")
                        .route(web::get().to(searches::everything))
                        .default_service(web::to(method_not_allowed)),
                )
                .service(
                    web::resource("/{type}/{id}/$everything")
                        .route(web::get().to(searches::everything))
                        .default_service(web::to(method_not_allowed)),
                )
                .service(
                    web::resource("/{type}/{id}/{ctype}")
                        .route(web::get().to(searches::compartment))
                        .default_service(web::to(method_not_allowed)),
                )
                .service(
                    web::resource("/{type}/{id}")
                        .route(web::get().to(resources::read))
                        .route(web::put().to(resources::update))
                        .route(web::patch().to(resources::patch))
                        .route(web::delete().to(resources::delete))
                        .default_service(web::to(method_not_allowed)),
                )
                .service(
                    web::resource("/{type}")
                        .route(web::get().to(searches::by_type))
                        .route(web::post().to(resources::create))
                        .route(web::put().to(resources::update))
                        .route(web::patch().to(resources::patch))
                        .route(web::delete().to(resources::delete))
                        .default_service(web::to(method_not_allowed)),
                )
                .default_service(web::to(not_found)),
        )
        .default_service(web::to(not_found));
}

async fn health() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "up"}))
}

async fn ready(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let store = state.services.store.clone();
    let ready = web::block(move || store.ready())
        .await
        .map_err(crate::error::blocking_failed)?;
    match ready {
        Ok(true) => Ok(HttpResponse::Ok().json(serde_json::json!({"status": "ready"}))),
        Ok(false) => Err(ApiError::new(
            ErrorKind::Unavailable,
            "Database migrations are pending",
        )),
        Err(e) => Err(e.into()),
    }
}

async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found(format!(
        "No route for {} {}",
        req.method(),
        req.path()
    )))
}

async fn method_not_allowed(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        ErrorKind::MethodNotAllowed,
        format!("{} is not supported on {}", req.method(), req.path()),
    ))
}

/// The span of each request (with `tracing_actix_web::TracingLogger`), so that every event logged
/// while the request is handled, its body streamed included, carries the request's id.
pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(req: &ServiceRequest) -> Span {
        let request_id = req
            .headers()
            .get("x-request-id")
            .and_then(|h| h.to_str().ok())
            .filter(|s| !s.is_empty() && s.len() <= 128 && s.is_ascii())
            .map(str::to_string)
            // Time-ordered, so the audit trail's index entries of request ids land together
            // instead of on a random page each (a full page image per page after a checkpoint).
            .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
        // At ERROR level so that the span is kept whatever the log filter lets through: an
        // error logged under `INVICTA_LOG=error` still names its request.
        let span = tracing::error_span!("request", request_id = %request_id);
        req.extensions_mut().insert(RequestId(request_id));
        span
    }

    fn on_request_end<B: MessageBody>(
        _span: Span,
        _outcome: &Result<ServiceResponse<B>, actix_web::Error>,
    ) {
        // `request_log` writes the request's line.
    }
}

/// Echoes the request's id (set by [`RequestSpan`]) and logs one line per request with method,
/// path, status and duration; runs inside the request's span, which gives the line its id.
pub async fn request_log(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let request_id = req.extensions().get::<RequestId>().map(|r| r.0.clone());
    let method = req.method().to_string();
    let path = req.path().to_string();
    let result = next.call(req).await;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    match result {
        Ok(mut res) => {
            if let Some(v) = request_id.and_then(|id| HeaderValue::from_str(&id).ok()) {
                res.headers_mut()
                    .insert(HeaderName::from_static("x-request-id"), v);
            }
            tracing::info!(
                method = %method,
                path = %path,
                status = res.status().as_u16(),
                duration_ms = format_args!("{ms:.2}"),
                "response"
            );
            Ok(res)
        }
        Err(e) => {
            tracing::warn!(method = %method, path = %path, error = %e, "request failed");
            Err(e)
        }
    }
}
