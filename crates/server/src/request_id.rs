//! The request's id: set by the request span (`app::RequestSpan`) from `X-Request-Id` or a new
//! UUID, read by the gate and the authorization endpoints for the audit trail.

/// The request's id, kept in the request's extensions.
#[derive(Clone)]
pub struct RequestId(pub String);
