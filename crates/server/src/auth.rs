//! Authentication, authorisation and audit at the HTTP edge. The `gate` middleware verifies
//! the bearer token of every `/fhir` request (except `metadata` and the SMART configuration),
//! hands the [`Principal`] to the handler, and after the handler has answered, writes the
//! request's AuditEvents and waits for them to commit before the response leaves. Handlers
//! ask [`authorize`] for the request's rules, which crate `authz` decides.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpRequest, ResponseError};
use authz::audit::{AuditRecord, ChangedResource};
use authz::cache::{unix_now, AsDecisionQuery, BoundedCache, DecisionKey, DecisionQuery};
use authz::{Emergency, Interaction, Policy, Principal, Rules, TypeSet};
use chrono::{SecondsFormat, Utc};
use fhir_model::{AuditAction, RestInteraction};
use search::text::encode;
use store::{Access, Filter, RelationshipRule, TypeRule};

use crate::audit_sink::AuditSink;
use crate::error::ApiError;
use crate::state::AppState;

/// What the gate leaves for the handler: the caller (none when auth is off) and the audit record
/// the handler fills in.
#[derive(Clone)]
pub struct RequestAuth {
    /// The verified caller; `None` only with `INVICTA_AUTH=off`.
    pub principal: Option<Arc<Principal>>,
    /// A fingerprint of the token, keying the decision cache.
    pub token: u64,
    /// The token's `exp`: no decision about it is cached past that.
    pub token_exp: Option<i64>,
    /// The request's audit record, completed by the handler and written by the gate.
    pub audit: Rc<RefCell<AuditState>>,
}

/// The audit record in progress.
#[derive(Default)]
pub struct AuditState {
    /// What will be written.
    pub record: AuditRecord,
    /// The handler already stored the record (in the transaction of a write).
    pub recorded: bool,
    /// A relationship claim to record for the patients touched.
    pub claim: Option<String>,
}

/// The security services shared by every request.
#[derive(Clone)]
pub struct Security {
    /// Token verifier (own key and external issuers).
    pub verifier: authz::token::Verifier,
    /// The role policy.
    pub policy: Arc<Policy>,
    /// Tokens required.
    pub enabled: bool,
    /// Where audit records go.
    pub audit: AuditSink,
    /// Claim naming the role.
    pub role_claim: String,
    /// The public keys of the server's own tokens (JWKS `keys`).
    pub jwks: Vec<serde_json::Value>,
    /// Principals and decisions already made for a token: the same token asks the same
    /// questions on every request, and a decision walks every resource type (~20 µs).
    pub cache: Arc<DecisionCache>,
}

/// Principals by token, and decisions by token and question, none kept past the token's `exp`.
pub struct DecisionCache {
    /// Keys of the token fingerprints, random per process so no one can craft a collision.
    keys: std::collections::hash_map::RandomState,
    principals: BoundedCache<u64, Arc<Principal>>,
    decisions: BoundedCache<DecisionKey, Arc<Allowed>>,
}

impl Default for DecisionCache {
    fn default() -> Self {
        DecisionCache {
            keys: Default::default(),
            principals: BoundedCache::new(CACHE_LIMIT),
            decisions: BoundedCache::new(CACHE_LIMIT),
        }
    }
}

/// What an allowed decision hands the handler.
struct Allowed {
    access: Arc<Access>,
    break_glass: Option<authz::BreakGlass>,
    claim: Option<String>,
}

/// Entries kept per cache.
const CACHE_LIMIT: usize = 20_000;

fn fingerprint(cache: &DecisionCache, token: &str) -> u64 {
    use std::hash::BuildHasher;
    cache.keys.hash_one(token)
}

fn open_path(path: &str) -> bool {
    path == "/fhir/metadata" || path.starts_with("/fhir/.well-known/")
}

/// The middleware: authenticate, run the handler, audit, answer.
pub async fn gate(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let path = req.path().to_string();
    if !path.starts_with("/fhir") || open_path(&path) {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let sec = &state.security;
    let request_id = req
        .extensions()
        .get::<crate::app::RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    let mut record = AuditRecord {
        interaction: guess_interaction(req.method().as_str(), &path),
        action: match req.method().as_str() {
            "POST" => AuditAction::Create,
            "PUT" | "PATCH" => AuditAction::Update,
            "DELETE" => AuditAction::Delete,
            _ => AuditAction::Read,
        },
        request_id,
        ..AuditRecord::default()
    };
    // Only an audit trail reads these, and formatting them shows in a read's profile.
    if sec.audit.enabled() {
        record.address = req
            .connection_info()
            .realip_remote_addr()
            .map(str::to_string);
        record.recorded = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
    }
    let (principal, token, token_exp) = if sec.enabled {
        match authenticate(&req, sec).await {
            Ok((p, t, exp)) => (Some(p), t, exp),
            Err(e) => {
                record.status = 401;
                record.outcome_desc = Some(e.to_string());
                let events = if sec.audit.enabled() {
                    record.events()
                } else {
                    Vec::new()
                };
                if let Err(a) = sec.audit.record(events).await {
                    return Ok(req.into_response(a.error_response()).map_into_right_body());
                }
                return Ok(req.into_response(e.error_response()).map_into_right_body());
            }
        }
    } else {
        (None, 0, None)
    };
    record.principal = principal.clone();
    let audit = Rc::new(RefCell::new(AuditState {
        record,
        ..AuditState::default()
    }));
    req.extensions_mut().insert(RequestAuth {
        principal: principal.clone(),
        token,
        token_exp,
        audit: audit.clone(),
    });
    if reads_audit_trail(req.method().as_str(), &path, req.query_string()) {
        // AuditEvents reach the resource table behind the responses; a reader of the trail
        // first drains the journal, so it sees every event committed before it.
        let store = state.store.clone();
        if !matches!(
            web::block(move || store.project_audit_all()).await,
            Ok(Ok(_))
        ) {
            let e = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "transient",
                "The audit trail could not be brought up to date; try again",
            );
            return Ok(req.into_response(e.error_response()).map_into_right_body());
        }
    }
    let (http_req, res) = next.call(req).await?.into_parts();
    let status = res.status();
    let (events, claim) = {
        let mut a = audit.borrow_mut();
        a.record.status = status.as_u16();
        if status.is_client_error() || status.is_server_error() {
            a.record.patients.clear();
        }
        let claim = a
            .claim
            .clone()
            .filter(|_| status.is_success() && !a.record.patients.is_empty())
            .map(|c| (c, a.record.patients.clone()));
        (
            (!a.recorded && sec.audit.enabled()).then(|| a.record.events()),
            claim,
        )
    };
    if let (Some((reason, patients)), Some(org)) =
        (claim, principal.as_ref().and_then(|p| p.org.clone()))
    {
        let store = state.store.clone();
        let days = sec.policy.relationship_claim_days;
        let done =
            web::block(move || store.claim_relationship(&patients, &org, &reason, days)).await;
        if !matches!(done, Ok(Ok(()))) {
            let e = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "transient",
                "The relationship claim could not be recorded; nothing was returned",
            );
            return Ok(ServiceResponse::new(http_req, e.error_response()).map_into_right_body());
        }
    }
    if let Some(events) = events {
        if let Err(e) = sec.audit.record(events).await {
            // Nothing leaves without its audit record.
            return Ok(ServiceResponse::new(http_req, e.error_response()).map_into_right_body());
        }
    }
    Ok(ServiceResponse::new(http_req, res).map_into_left_body())
}

async fn authenticate(
    req: &ServiceRequest,
    sec: &Security,
) -> Result<(Arc<Principal>, u64, Option<i64>), ApiError> {
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .ok_or_else(|| unauthorized(None, "An Authorization: Bearer token is required"))?;
    let token = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            unauthorized(Some("invalid_request"), "Use Authorization: Bearer <token>")
        })?;
    let claims = sec.verifier.verify(token).await.map_err(|e| {
        unauthorized(
            Some("invalid_token"),
            &format!("The token was refused: {e}"),
        )
    })?;
    let print = fingerprint(&sec.cache, token);
    let exp = authz::token::expiry(&claims);
    let principal = sec
        .cache
        .principals
        .get_or_try_insert(&print, unix_now(), || {
            authz::from_claims(&claims, &sec.policy, &sec.role_claim)
                .map(|p| (print, Arc::new(p), exp))
                .map_err(|e| {
                    unauthorized(
                        Some("invalid_token"),
                        &format!("The token was refused: {e}"),
                    )
                })
        })?;
    Ok((principal, print, exp))
}

fn unauthorized(error: Option<&str>, msg: &str) -> ApiError {
    let mut e = ApiError::new(StatusCode::UNAUTHORIZED, "login", msg);
    let mut challenge = "Bearer realm=\"invicta\"".to_string();
    if let Some(code) = error {
        let desc = msg.replace(['"', '\\'], "'");
        challenge.push_str(&format!(", error=\"{code}\", error_description=\"{desc}\""));
    }
    e.www_authenticate = Some(challenge);
    e
}

/// True when a request may read AuditEvents: it names them in its path or query, or is a POST
/// search (whose form may name them). System history leaves AuditEvents out.
pub fn reads_audit_trail(method: &str, path: &str, query: &str) -> bool {
    match method {
        "GET" => path.contains("AuditEvent") || query.contains("AuditEvent"),
        "POST" => path.ends_with("/_search"),
        _ => false,
    }
}

fn guess_interaction(method: &str, path: &str) -> RestInteraction {
    let segments: Vec<&str> = path
        .trim_start_matches("/fhir")
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let history = segments.contains(&"_history");
    match (method, segments.len(), history) {
        ("GET", 0, _) => RestInteraction::SearchSystem,
        ("POST", 0, _) => RestInteraction::Batch,
        ("GET", 1, false) => RestInteraction::SearchType,
        ("GET", 1, true) => RestInteraction::HistorySystem,
        ("GET", 2, true) => RestInteraction::HistoryType,
        ("GET", 3, true) => RestInteraction::HistoryInstance,
        ("GET", 4, true) => RestInteraction::Vread,
        ("GET", 2, false) => RestInteraction::Read,
        ("GET", 3, false) => RestInteraction::SearchType,
        ("POST", _, _) if path.ends_with("_search") => RestInteraction::SearchType,
        ("POST", _, _) => RestInteraction::Create,
        ("PUT", _, _) => RestInteraction::Update,
        ("PATCH", _, _) => RestInteraction::Patch,
        ("DELETE", _, _) => RestInteraction::Delete,
        _ => RestInteraction::Operation,
    }
}

/// `meta.source` of versions written by an OAuth client: this prefix and the client id.
pub const SOURCE_CLIENT_PREFIX: &str = "https://invicta.example.org/fhir/source/client/";
/// `meta.source` of versions written by a user token without a client id.
pub const SOURCE_USER_PREFIX: &str = "https://invicta.example.org/fhir/source/user/";

/// An authorised request: the rules to apply (`None` when auth is off) and the decision.
pub struct Authorized {
    /// The rules as the store and search apply them.
    pub access: Option<Arc<Access>>,
    /// The caller.
    pub principal: Option<Arc<Principal>>,
    audit: Option<Rc<RefCell<AuditState>>>,
}

impl Authorized {
    /// Notes in the audit record what the request touched.
    pub fn touched<'a>(&self, patients: impl IntoIterator<Item = &'a String>) {
        if let Some(a) = &self.audit {
            let mut a = a.borrow_mut();
            for p in patients {
                if !a.record.patients.contains(p) {
                    a.record.patients.push(p.clone());
                }
            }
        }
    }

    /// Names the resource read or written in the audit record.
    pub fn resource(&self, reference: String, sensitive: bool) {
        if let Some(a) = &self.audit {
            let mut a = a.borrow_mut();
            a.record.resource = Some(reference);
            a.record.sensitive |= sensitive;
        }
    }

    /// Names the interaction in the audit record (`transaction` or `batch` for a Bundle).
    pub fn interaction(&self, name: RestInteraction, action: AuditAction) {
        if let Some(a) = &self.audit {
            let mut a = a.borrow_mut();
            a.record.interaction = name;
            a.record.action = action;
        }
    }

    /// Records the query of a search or history.
    pub fn query(&self, q: String) {
        if let Some(a) = &self.audit {
            a.borrow_mut().record.query = Some(q);
        }
    }

    /// The audit record as it stands (for a write, which stores it in its own transaction).
    pub fn record(&self) -> Option<AuditRecord> {
        self.audit.as_ref().map(|a| a.borrow().record.clone())
    }

    /// Marks the audit record as stored by the handler.
    pub fn recorded(&self) {
        if let Some(a) = &self.audit {
            a.borrow_mut().recorded = true;
        }
    }

    /// The context of a write: the caller's organisation, the rules old and new versions must
    /// meet, and the audit record, stored in the write's own transaction.
    pub fn write_context(&self, state: &AppState) -> store::WriteContext {
        let policy = state.security.policy.clone();
        let audit = match (self.record(), state.config.audit) {
            (Some(base), true) => Some(audit_hook(base, policy)),
            _ => None,
        };
        store::WriteContext {
            org: self.org(),
            source: self.source(),
            access: self.access.clone(),
            record_source: self.is_feed(state),
            audit,
        }
    }

    /// The writing system as a URI for `meta.source`: the OAuth client, else the user.
    pub fn source(&self) -> Option<String> {
        self.principal.as_ref().map(|p| match &p.client_id {
            Some(c) => format!("{SOURCE_CLIENT_PREFIX}{c}"),
            None => format!("{SOURCE_USER_PREFIX}{}", p.subject),
        })
    }

    /// The organisation of the caller.
    pub fn org(&self) -> Option<String> {
        self.principal.as_ref().and_then(|p| p.org.clone())
    }

    /// True when the caller is a feed (writes record it as a source of the patients' data).
    fn is_feed(&self, state: &AppState) -> bool {
        self.principal.as_ref().is_some_and(|p| {
            state
                .security
                .policy
                .role(&p.role)
                .is_some_and(|r| r.own_source_only)
        })
    }
}

/// The audit hook of a request's writes: its record, completed per change. Changes with the same
/// action about the same patients share their AuditEvents (`authz::audit::change_events`).
pub fn audit_hook(base: AuditRecord, policy: Arc<Policy>) -> store::AuditHook {
    Arc::new(move |changes: &[store::Change]| {
        let changed: Vec<ChangedResource<'_>> = changes
            .iter()
            .map(|c| ChangedResource {
                action: c.action,
                patients: &c.compartments,
                reference: format!("{}/{}/_history/{}", c.res_type, c.id, c.version),
                labels: &c.labels,
                alerts: &c.alerts,
            })
            .collect();
        authz::audit::change_events(&base, &changed, &policy)
    })
}

/// Decides the request: 403 when the interaction is not allowed, else its rules.
pub fn authorize(
    req: &HttpRequest,
    state: &AppState,
    res_type: Option<&str>,
    interaction: Interaction,
) -> Result<Authorized, ApiError> {
    let auth = req.extensions().get::<RequestAuth>().cloned();
    let Some(RequestAuth {
        principal: Some(principal),
        token,
        token_exp,
        audit,
    }) = auth
    else {
        return Ok(Authorized {
            access: None,
            principal: None,
            audit: req
                .extensions()
                .get::<RequestAuth>()
                .map(|a| a.audit.clone()),
        });
    };
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|h| h.to_str().ok())
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let emergency = Emergency {
        purpose_of_use: header("x-purpose-of-use"),
        reason: header("x-break-glass-reason"),
        relationship_claim: header("x-relationship-claim"),
    };
    let query = DecisionQuery {
        token,
        res_type,
        interaction,
        emergency: &emergency,
    };
    let decisions = &state.security.cache.decisions;
    let allowed = decisions
        .get_or_try_insert(&query as &dyn AsDecisionQuery, unix_now(), || {
            let decision = authz::decide(
                &state.security.policy,
                &principal,
                res_type,
                interaction,
                &emergency,
            )
            .map_err(|d| ApiError::new(StatusCode::FORBIDDEN, "forbidden", d.0))?;
            let allowed = Arc::new(Allowed {
                access: Arc::new(to_access(&decision.rules)?),
                break_glass: decision.break_glass,
                claim: decision.relationship_claim,
            });
            Ok((query.to_key(), allowed, token_exp))
        })
        .inspect_err(|e: &ApiError| {
            audit.borrow_mut().record.outcome_desc = e.issues.first().map(|i| i.1.clone());
        })?;
    {
        let mut a = audit.borrow_mut();
        if let Some(bg) = &allowed.break_glass {
            a.record.purpose = Some(bg.purpose.clone());
            a.record.review_reason = Some(format!("break-glass: {}", bg.reason));
        }
        if let Some(c) = &allowed.claim {
            a.record.purpose = Some("TREAT".into());
            a.record.review_reason = Some(format!("self-claimed relationship: {c}"));
            a.claim = Some(c.clone());
        }
    }
    Ok(Authorized {
        access: Some(allowed.access.clone()),
        principal: Some(principal),
        audit: Some(audit),
    })
}

/// The rules in the store's terms, with scope restrictions compiled by the search crate.
fn to_access(rules: &Rules) -> Result<Access, ApiError> {
    let mut restrictions = Vec::new();
    let mut restriction_params: Vec<String> = Vec::new();
    for (t, sides) in &rules.restrictions {
        let mut all = Vec::new();
        for alternatives in sides {
            let mut any = Vec::new();
            for conds in alternatives {
                for (k, _) in conds {
                    let code = k.split([':', '.']).next().unwrap_or(k).to_string();
                    if !restriction_params.contains(&code) {
                        restriction_params.push(code);
                    }
                }
                let q: Vec<String> = conds
                    .iter()
                    .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
                    .collect();
                any.push(search::compile_condition(t, &q.join("&")).map_err(|e| {
                    ApiError::new(
                        StatusCode::FORBIDDEN,
                        "forbidden",
                        format!("a scope restriction on {t} cannot be applied: {e}"),
                    )
                })?);
            }
            all.push(Filter::any(any));
        }
        restrictions.push((t.clone(), Filter::all(all)));
    }
    Ok(Access {
        types: match &rules.types {
            TypeSet::All => TypeRule::All,
            TypeSet::AllExcept(v) => TypeRule::AllExcept(v.clone()),
            TypeSet::Only(v) => TypeRule::Only(v.clone()),
        },
        restrictions,
        compartment: rules.compartment.clone(),
        visible_labels: Some(rules.visible_labels.clone()),
        own_org: rules.own_org.clone(),
        hidden_alerts: rules.hidden_alerts.clone(),
        relationship: rules
            .relationship
            .as_ref()
            .map(|(org, launch)| RelationshipRule {
                org: org.clone(),
                launch_patient: launch.clone(),
            }),
        only_org: rules.only_org.clone(),
        liftable_labels: rules.liftable_labels.clone(),
        restriction_params,
    })
}

/// The 403 for a resource hidden only by limits a relationship claim or break-glass lifts.
pub fn withheld(reference: &str) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        format!(
            "{reference} is withheld: your organisation has no legitimate relationship with this \
             patient, or the record is restricted. To see it, claim a relationship with the header \
             'X-Relationship-Claim: <reason>', or in an emergency break glass with \
             'X-Purpose-Of-Use: BTG' and 'X-Break-Glass-Reason: <reason>'. Both are audited and \
             reviewed."
        ),
    )
}

/// [`Policy::hidden_from_patients`], under the name `interactions::read` still calls.
pub fn hidden_from_patients(policy: &Policy, labels: &[String], alerts: &[String]) -> bool {
    policy.hidden_from_patients(labels, alerts)
}
