//! Why a request was not let through. A rejection is always a response (see [`crate::reject`]),
//! never the inner service's error.

use std::fmt;

use http::StatusCode;

/// What a guard found missing.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Forbidden {
    /// A role requirement was not met.
    Role,
    /// An attribute requirement was not met.
    Attribute,
    /// A scope requirement was not met; carries the scope that was needed.
    Scope(String),
}

/// The outcome of authentication or authorization that stops a request.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthError {
    /// No credential was presented (401, challenge without `error=`).
    Missing,
    /// The credentials were ambiguous or malformed (401 `invalid_request`, or 400 if asked).
    Malformed(&'static str),
    /// Every eligible provider refused the credentials (401 `invalid_token`).
    Invalid,
    /// Some eligible provider could not decide (down, timed out, garbage answer): fail closed.
    Unavailable,
    /// Authenticated, but a guard denied the request (403).
    Forbidden(Forbidden),
    /// A guard ([`RequireLayer`](crate::guard::RequireLayer), an extractor) found no
    /// [`AuthLayer`](crate::AuthLayer) before it: a programming error, answered with 500 (see
    /// [the order of layers](mod@crate::guard#order-of-layers)).
    NoAuthLayer,
}

impl AuthError {
    /// The HTTP status of this rejection.
    pub fn status(&self) -> StatusCode {
        match self {
            AuthError::Missing | AuthError::Malformed(_) | AuthError::Invalid => {
                StatusCode::UNAUTHORIZED
            }
            AuthError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            AuthError::Forbidden(_) => StatusCode::FORBIDDEN,
            AuthError::NoAuthLayer => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The RFC 6750 `error` code, if any.
    pub fn error_code(&self) -> Option<&'static str> {
        match self {
            AuthError::Missing | AuthError::Unavailable | AuthError::NoAuthLayer => None,
            AuthError::Malformed(_) => Some("invalid_request"),
            AuthError::Invalid => Some("invalid_token"),
            AuthError::Forbidden(_) => Some("insufficient_scope"),
        }
    }

    /// The gRPC status code (as a number) matching this rejection.
    pub fn grpc_code(&self) -> u8 {
        match self {
            AuthError::Missing | AuthError::Malformed(_) | AuthError::Invalid => 16, // UNAUTHENTICATED
            AuthError::Unavailable => 14,                                            // UNAVAILABLE
            AuthError::Forbidden(_) => 7, // PERMISSION_DENIED
            AuthError::NoAuthLayer => 13, // INTERNAL
        }
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::Missing => f.write_str("Unauthorized access"),
            AuthError::Malformed(why) => write!(f, "Malformed credentials: {why}"),
            AuthError::Invalid => f.write_str("Unauthorized access"),
            AuthError::Unavailable => f.write_str("Authentication service unavailable"),
            AuthError::Forbidden(Forbidden::Role) => f.write_str("Forbidden: missing role"),
            AuthError::Forbidden(Forbidden::Attribute) => {
                f.write_str("Forbidden: missing attribute")
            }
            AuthError::Forbidden(Forbidden::Scope(s)) => write!(f, "Forbidden: missing scope {s}"),
            // The fix goes to the log, not to the client.
            AuthError::NoAuthLayer => f.write_str("Internal server error"),
        }
    }
}

impl std::error::Error for AuthError {}

#[cfg(feature = "tonic")]
impl From<AuthError> for tonic::Status {
    fn from(e: AuthError) -> Self {
        match &e {
            AuthError::Unavailable => tonic::Status::unavailable(e.to_string()),
            AuthError::Forbidden(_) => tonic::Status::permission_denied(e.to_string()),
            AuthError::NoAuthLayer => tonic::Status::internal(e.to_string()),
            _ => tonic::Status::unauthenticated(e.to_string()),
        }
    }
}
