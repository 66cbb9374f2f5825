//! OAuth 2.0 error responses (RFC 6749 §5.2, RFC 7009 §2.2.1, RFC 7662): the error code a
//! client reads, a description safe to show it, and the HTTP status.

/// The `error` codes this server answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// A parameter is missing, repeated, malformed or unsupported.
    InvalidRequest,
    /// Client authentication failed (unknown client, wrong secret, bad or replayed assertion).
    InvalidClient,
    /// The grant (code, refresh token) is invalid, expired, used or not this client's.
    InvalidGrant,
    /// The client may not use this grant type.
    UnauthorizedClient,
    /// The grant type is not supported.
    UnsupportedGrantType,
    /// The requested scope is invalid or exceeds what may be granted.
    InvalidScope,
    /// The user or the server refused.
    AccessDenied,
    /// Something failed on the server.
    ServerError,
    /// A dependency (database) is unavailable for now.
    TemporarilyUnavailable,
}

impl ErrorCode {
    /// The code as RFC 6749 spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::ServerError => "server_error",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
        }
    }

    /// The HTTP status of a token-endpoint answer with this code.
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::InvalidClient => 401,
            ErrorCode::ServerError => 500,
            ErrorCode::TemporarilyUnavailable => 503,
            _ => 400,
        }
    }
}

/// An OAuth error answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {description}", code.as_str())]
pub struct OAuthError {
    /// The code.
    pub code: ErrorCode,
    /// `error_description`: says what was wrong, never echoes a secret.
    pub description: String,
    /// The client used HTTP Basic authentication (a 401 then challenges with Basic).
    pub basic_challenge: bool,
}

impl OAuthError {
    /// An error with `code` and `description`.
    pub fn new(code: ErrorCode, description: impl Into<String>) -> OAuthError {
        OAuthError {
            code,
            description: description.into(),
            basic_challenge: false,
        }
    }

    /// `invalid_request`.
    pub fn invalid_request(description: impl Into<String>) -> OAuthError {
        Self::new(ErrorCode::InvalidRequest, description)
    }

    /// `invalid_client`.
    pub fn invalid_client(description: impl Into<String>) -> OAuthError {
        Self::new(ErrorCode::InvalidClient, description)
    }

    /// `invalid_grant`.
    pub fn invalid_grant(description: impl Into<String>) -> OAuthError {
        Self::new(ErrorCode::InvalidGrant, description)
    }

    /// `invalid_scope`.
    pub fn invalid_scope(description: impl Into<String>) -> OAuthError {
        Self::new(ErrorCode::InvalidScope, description)
    }

    /// `unauthorized_client`.
    pub fn unauthorized_client(description: impl Into<String>) -> OAuthError {
        Self::new(ErrorCode::UnauthorizedClient, description)
    }

    /// A database failure: logged, and answered without its details.
    pub fn store(e: store::StoreError) -> OAuthError {
        tracing::error!(error = %e, "authorization server storage failed");
        match e {
            store::StoreError::Unavailable(_) => Self::new(
                ErrorCode::TemporarilyUnavailable,
                "the authorization server's database is unavailable; retry later",
            ),
            _ => Self::new(ErrorCode::ServerError, "the request could not be completed"),
        }
    }

    /// The JSON body of the answer.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({"error": self.code.as_str(), "error_description": self.description})
    }
}
