//! Error types: the Chime wire errors the fake answers with, and the errors its own API returns.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

/// The name of the header the AWS SDKs read the error code from for restJson1 services.
///
/// The Rust SDK (`json_errors::parse_error_metadata`) prefers this header over the body's
/// `code`/`__type`, and Chime's error bodies carry `Code` (capital C), which the generic parser
/// ignores, so without this header no SDK would produce a typed error.
pub const ERROR_TYPE_HEADER: &str = "x-amzn-errortype";

/// The header carrying the request id, read by the SDK into `request_id()`.
pub const REQUEST_ID_HEADER: &str = "x-amzn-requestid";

/// The Chime SDK Identity errors the fake can answer with.
///
/// Each maps to the HTTP status, `X-Amzn-Errortype` value and body `Code` of the real service
/// (from the Smithy model `chime-sdk-identity.json`: `smithy.api#httpError` and the `ErrorCode`
/// enum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ErrorKind {
    /// 403 `AccessDeniedException`: not in Chime's model, but what AWS's authorization layer
    /// may answer when IAM denies a call (see [`crate::IamDenial`]).
    AccessDenied,
    /// 400: input fails the service's constraints.
    BadRequest,
    /// 409: the resource exists in a conflicting state (e.g. same id, different request token).
    Conflict,
    /// 403: the client is permanently forbidden from making the request.
    Forbidden,
    /// 404: the resource does not exist (not in the model for user operations; see
    /// [`crate::MissingAnswer`]).
    NotFound,
    /// 400: a per-AppInstance limit was reached.
    ResourceLimitExceeded,
    /// 500: unexpected service error.
    ServiceFailure,
    /// 503: the service is unavailable.
    ServiceUnavailable,
    /// 429: the client exceeded its request rate.
    ThrottledClient,
    /// 401: the client is not authorized.
    UnauthorizedClient,
}

impl ErrorKind {
    /// The HTTP status the real service uses for this error.
    pub fn status(self) -> StatusCode {
        match self {
            Self::BadRequest | Self::ResourceLimitExceeded => StatusCode::BAD_REQUEST,
            Self::Conflict => StatusCode::CONFLICT,
            Self::Forbidden | Self::AccessDenied => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::ServiceFailure => StatusCode::INTERNAL_SERVER_ERROR,
            Self::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::ThrottledClient => StatusCode::TOO_MANY_REQUESTS,
            Self::UnauthorizedClient => StatusCode::UNAUTHORIZED,
        }
    }

    /// The Smithy shape name, sent in `X-Amzn-Errortype`; the SDK matches on it.
    pub fn exception_name(self) -> &'static str {
        match self {
            Self::AccessDenied => "AccessDeniedException",
            Self::BadRequest => "BadRequestException",
            Self::Conflict => "ConflictException",
            Self::Forbidden => "ForbiddenException",
            Self::NotFound => "NotFoundException",
            Self::ResourceLimitExceeded => "ResourceLimitExceededException",
            Self::ServiceFailure => "ServiceFailureException",
            Self::ServiceUnavailable => "ServiceUnavailableException",
            Self::ThrottledClient => "ThrottledClientException",
            Self::UnauthorizedClient => "UnauthorizedClientException",
        }
    }

    /// The `ErrorCode` enum value the real service puts in the body's `Code` member.
    pub fn code(self) -> &'static str {
        match self {
            Self::AccessDenied => "AccessDenied",
            Self::BadRequest => "BadRequest",
            Self::Conflict => "Conflict",
            Self::Forbidden => "Forbidden",
            Self::NotFound => "NotFound",
            Self::ResourceLimitExceeded => "ResourceLimitExceeded",
            Self::ServiceFailure => "ServiceFailure",
            Self::ServiceUnavailable => "ServiceUnavailable",
            Self::ThrottledClient => "Throttled",
            Self::UnauthorizedClient => "Unauthorized",
        }
    }
}

/// An error answered on the wire in the Chime restJson1 shape:
/// status, `X-Amzn-Errortype: <Name>Exception` and body `{"Code": "...", "Message": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", kind.exception_name())]
pub struct ApiError {
    /// Which error.
    pub kind: ErrorKind,
    /// Human-readable message; for constraint violations it names the offending field.
    pub message: String,
}

impl ApiError {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// A `BadRequestException`, the answer to every input constraint violation.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, message)
    }
}

/// The JSON body of a Chime error.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ErrorBody<'a> {
    code: &'a str,
    message: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&ErrorBody {
            code: self.kind.code(),
            message: &self.message,
        })
        .unwrap_or_else(|_| b"{}".to_vec());
        let mut response = (self.kind.status(), body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(
            ERROR_TYPE_HEADER,
            HeaderValue::from_static(self.kind.exception_name()),
        );
        response
    }
}

/// Errors from starting or configuring the fake itself (not wire errors).
#[derive(Debug, thiserror::Error)]
pub enum FakeError {
    /// The listening socket could not be bound (port in use, no permission, ...).
    #[error("cannot bind the fake Chime server to {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The bound socket's local address could not be read.
    #[error("cannot read the fake Chime server's local address: {0}")]
    LocalAddr(#[source] std::io::Error),
    /// A fault configuration was rejected (a rate outside 0..=1, min latency above max, ...).
    #[error("invalid fault configuration: {0}")]
    InvalidFaults(String),
    /// Waiting for Ctrl-C failed in [`crate::serve`].
    #[error("cannot listen for Ctrl-C: {0}")]
    Signal(#[source] std::io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn error_response_has_status_header_and_body() {
        let response = ApiError::new(ErrorKind::ThrottledClient, "slow down").into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            response
                .headers()
                .get(ERROR_TYPE_HEADER)
                .and_then(|v| v.to_str().ok()),
            Some("ThrottledClientException")
        );
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"Code": "Throttled", "Message": "slow down"})
        );
    }

    #[test]
    fn statuses_match_the_model() {
        let expected = [
            (ErrorKind::BadRequest, 400),
            (ErrorKind::ResourceLimitExceeded, 400),
            (ErrorKind::UnauthorizedClient, 401),
            (ErrorKind::Forbidden, 403),
            (ErrorKind::AccessDenied, 403),
            (ErrorKind::NotFound, 404),
            (ErrorKind::Conflict, 409),
            (ErrorKind::ThrottledClient, 429),
            (ErrorKind::ServiceFailure, 500),
            (ErrorKind::ServiceUnavailable, 503),
        ];
        for (kind, status) in expected {
            assert_eq!(kind.status().as_u16(), status, "{kind:?}");
            assert!(kind.exception_name().ends_with("Exception"));
        }
    }
}
