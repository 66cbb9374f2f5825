//! Authorization as part of a handler's signature, in the manner of meilisearch's
//! `GuardedData`: a handler that reads or writes data takes a [`Guarded<P>`], whose extraction
//! decides the permission `P` for the request's resource type. The interactions it calls take
//! the [`Authorized`] inside, which nothing else in this crate can make, so a handler without a
//! guard cannot reach data. Interactions that decide their parts themselves (Bundles, system
//! search, `$everything`'s search) take a [`SelfDeciding`] caller.

use std::future::{ready, Ready};
use std::marker::PhantomData;
use std::ops::Deref;

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use authz::Interaction;
use interactions::{authorize, Authorized, Caller};

use crate::error::ApiError;
use crate::state::AppState;

/// A permission a route asks for: an interaction, on the type its path names (or on none).
pub trait Permission {
    /// The interaction decided.
    const INTERACTION: Interaction;
    /// The path segment naming the type (`None`: the decision is about no one type).
    const TYPE_SEGMENT: Option<&'static str> = Some("type");
}

/// Permission markers, one per kind of route.
pub mod perm {
    use super::{Interaction, Permission};

    macro_rules! permission {
        ($(#[$doc:meta])* $name:ident, $interaction:ident, $segment:expr) => {
            $(#[$doc])*
            pub struct $name;
            impl Permission for $name {
                const INTERACTION: Interaction = Interaction::$interaction;
                const TYPE_SEGMENT: Option<&'static str> = $segment;
            }
        };
    }

    permission!(/// Read the type's resources.
        Read, Read, Some("type"));
    permission!(/// Read past versions of the type's resources.
        Vread, Vread, Some("type"));
    permission!(/// Search the type.
        Search, Search, Some("type"));
    permission!(/// Search a type in a Patient's compartment (`{ctype}`).
        CompartmentSearch, Search, Some("ctype"));
    permission!(/// Read a resource's history.
        HistoryInstance, HistoryInstance, Some("type"));
    permission!(/// Read a type's history.
        HistoryType, HistoryType, Some("type"));
    permission!(/// Read the whole server's history.
        HistorySystem, HistoryType, None);
    permission!(/// Create resources of the type.
        Create, Create, Some("type"));
    permission!(/// Update or patch resources of the type.
        Update, Update, Some("type"));
    permission!(/// Delete resources of the type.
        Delete, Delete, Some("type"));
}

/// The caller's decision for permission `P`: extracting it is deciding it (403 when refused).
pub struct Guarded<P> {
    auth: Authorized,
    res_type: Option<String>,
    _permission: PhantomData<P>,
}

impl<P> Guarded<P> {
    /// The resource type the decision is about.
    pub fn res_type(&self) -> &str {
        self.res_type.as_deref().unwrap_or_default()
    }
}

impl<P> Deref for Guarded<P> {
    type Target = Authorized;

    fn deref(&self) -> &Authorized {
        &self.auth
    }
}

/// The caller the gate verified.
fn caller(req: &HttpRequest) -> Result<Caller, ApiError> {
    req.extensions()
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| ApiError(interactions::internal("a /fhir route ran without the gate")))
}

fn state(req: &HttpRequest) -> Result<web::Data<AppState>, ApiError> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError(interactions::internal("no application state")))
}

impl<P: Permission> FromRequest for Guarded<P> {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready((|| {
            let res_type = match P::TYPE_SEGMENT {
                Some(segment) => Some(interactions::resource_type(
                    req.match_info().get(segment).unwrap_or_default(),
                )?),
                None => None,
            };
            let state = state(req)?;
            let auth = authorize(
                &state.services,
                &caller(req)?,
                res_type.as_deref(),
                P::INTERACTION,
            )?;
            Ok(Guarded {
                auth,
                res_type,
                _permission: PhantomData,
            })
        })())
    }
}

/// The caller of an interaction that decides its parts itself: a batch or transaction (each
/// entry), a system search and `$everything` (the types searched, known once the query is read).
pub struct SelfDeciding(pub Caller);

impl FromRequest for SelfDeciding {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(caller(req).map(SelfDeciding))
    }
}
