//! The layer in front of the API operations: counts attempts, applies injected faults, stamps
//! request ids and records each outcome.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::counters::Operation;
use crate::error::{ApiError, ERROR_TYPE_HEADER, ErrorKind, REQUEST_ID_HEADER};
use crate::faults::{Fault, IamDenial, iam_denial_message};
use crate::routes::{EXPIRATION_SUFFIX, USERS_PATH};
use crate::state::Shared;

/// Marks a response that must not be sent: the connection is closed instead (see
/// [`crate::server`]). A marker is needed because an axum handler cannot fail a connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DropConnection;

/// Which operation a request is, from its method and path.
pub(crate) fn classify(method: &Method, path: &str) -> Option<Operation> {
    let on_user = path
        .strip_prefix(USERS_PATH)
        .is_some_and(|rest| rest.len() > 1 && rest.starts_with('/'));
    if on_user && method == Method::PUT && path.ends_with(EXPIRATION_SUFFIX) {
        return Some(Operation::PutAppInstanceUserExpirationSettings);
    }
    match (method, path == USERS_PATH, on_user) {
        (&Method::POST, true, _) => Some(Operation::CreateAppInstanceUser),
        (&Method::GET, true, _) => Some(Operation::ListAppInstanceUsers),
        (&Method::GET, _, true) => Some(Operation::DescribeAppInstanceUser),
        (&Method::PUT, _, true) => Some(Operation::UpdateAppInstanceUser),
        (&Method::DELETE, _, true) => Some(Operation::DeleteAppInstanceUser),
        _ => None,
    }
}

/// A 400 as a proxy in front of Chime writes it: HTML, no `X-Amzn-Errortype`.
fn proxy_bad_request() -> Response {
    (
        axum::http::StatusCode::BAD_REQUEST,
        [(axum::http::header::CONTENT_TYPE, "text/html")],
        "<html><head><title>400 Bad Request</title></head><body><center><h1>400 Bad Request</h1></center><hr><center>proxy</center></body></html>",
    )
        .into_response()
}

/// A response that closes the connection instead of being sent.
fn dropped_connection() -> Response {
    let mut response = Response::new(Body::empty());
    response.extensions_mut().insert(DropConnection);
    response
}

fn injected(kind: ErrorKind) -> Response {
    let message = match kind {
        ErrorKind::ThrottledClient => "Rate exceeded (injected by the fake Chime server)",
        ErrorKind::ServiceFailure => "Service failure (injected by the fake Chime server)",
        ErrorKind::Forbidden => "Request refused (injected by the fake Chime server)",
        _ => "Service unavailable (injected by the fake Chime server)",
    };
    ApiError::new(kind, message).into_response()
}

/// The resource an IAM message names: the user ARN of a one-user request (percent-decoded
/// from its path), the AppInstances otherwise (create and list name theirs in the body or the
/// query, which this layer does not read).
fn denied_resource(path: &str) -> String {
    let Some(encoded) = path
        .strip_prefix(USERS_PATH)
        .and_then(|rest| rest.strip_prefix('/'))
        .map(|rest| rest.strip_suffix(EXPIRATION_SUFFIX).unwrap_or(rest))
    else {
        return "arn:aws:chime:*:123456789012:app-instance/*".to_owned();
    };
    let bytes = encoded.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = (bytes[i] == b'%')
            .then(|| encoded.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(byte) => {
                decoded.push(byte);
                i += 3;
            }
            None => {
                decoded.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

/// IAM's 403 for `op`.
fn denial(op: Operation, path: &str, as_kind: IamDenial) -> Response {
    let kind = match as_kind {
        IamDenial::Forbidden => ErrorKind::Forbidden,
        IamDenial::AccessDenied => ErrorKind::AccessDenied,
    };
    let action = format!("chime:{op:?}");
    ApiError::new(kind, iam_denial_message(&action, &denied_resource(path))).into_response()
}

/// Axum middleware for the API routes; see the module documentation.
pub(crate) async fn faults_and_counters(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(op) = classify(request.method(), request.uri().path()) else {
        return next.run(request).await;
    };
    let decision = shared.admit(op);
    if !decision.delay.is_zero() {
        tokio::time::sleep(decision.delay).await;
    }
    let path = request.uri().path().to_owned();
    let mut response = match (decision.fault, decision.denied) {
        (Some(Fault::Drop), _) => {
            tracing::debug!(?op, "dropping the connection (injected)");
            return dropped_connection();
        }
        (Some(Fault::ApplyThenDrop), _) => {
            let applied = next.run(request).await;
            tracing::debug!(
                ?op,
                status = applied.status().as_u16(),
                "applied; dropping the connection instead of answering (injected)"
            );
            return dropped_connection();
        }
        (Some(Fault::Throttle), _) => injected(ErrorKind::ThrottledClient),
        (Some(Fault::ServiceFailure), _) => injected(ErrorKind::ServiceFailure),
        (Some(Fault::ServiceUnavailable), _) => injected(ErrorKind::ServiceUnavailable),
        (Some(Fault::Forbidden), _) => injected(ErrorKind::Forbidden),
        (Some(Fault::ProxyBadRequest), _) => proxy_bad_request(),
        (None, Some(as_kind)) => denial(op, &path, as_kind),
        (None, None) => next.run(request).await,
    };
    let status = response.status();
    let error = response
        .headers()
        .get(ERROR_TYPE_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    shared.with_counters(|counters| {
        let entry = counters.entry(op);
        if status.is_success() {
            entry.succeeded += 1;
        } else {
            let name = error
                .clone()
                .unwrap_or_else(|| format!("HTTP {}", status.as_u16()));
            *entry.errors.entry(name).or_default() += 1;
        }
    });
    tracing::debug!(
        ?op,
        status = status.as_u16(),
        error = error.as_deref(),
        "answered"
    );
    if let Ok(id) = HeaderValue::from_str(&shared.next_request_id()) {
        response.headers_mut().insert(REQUEST_ID_HEADER, id);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_the_six_operations() {
        let user = "/app-instance-users/arn%3Aaws%3Achime%3Aus-east-1%3A123456789012%3Aapp-instance%2Fa%2Fuser%2Fb";
        assert_eq!(
            classify(&Method::POST, USERS_PATH),
            Some(Operation::CreateAppInstanceUser)
        );
        assert_eq!(
            classify(&Method::GET, USERS_PATH),
            Some(Operation::ListAppInstanceUsers)
        );
        assert_eq!(
            classify(&Method::GET, user),
            Some(Operation::DescribeAppInstanceUser)
        );
        assert_eq!(
            classify(&Method::PUT, user),
            Some(Operation::UpdateAppInstanceUser)
        );
        assert_eq!(
            classify(&Method::DELETE, user),
            Some(Operation::DeleteAppInstanceUser)
        );
        assert_eq!(
            classify(&Method::PUT, &format!("{user}/expiration-settings")),
            Some(Operation::PutAppInstanceUserExpirationSettings)
        );
        assert_eq!(classify(&Method::PATCH, user), None);
        assert_eq!(classify(&Method::GET, "/app-instance-users/"), None);
        assert_eq!(classify(&Method::GET, "/app-instance-usersx"), None);
        assert_eq!(classify(&Method::GET, "/_fake/state"), None);
    }

    #[test]
    fn denials_name_the_user_arn_of_one_user_requests() {
        assert_eq!(
            denied_resource(
                "/app-instance-users/arn%3Aaws%3Achime%3Aus-east-1%3A1%3Aapp-instance%2Fa%2Fuser%2Fb"
            ),
            "arn:aws:chime:us-east-1:1:app-instance/a/user/b"
        );
        assert_eq!(
            denied_resource("/app-instance-users/arn:aws:chime:x/user/b%zz"),
            "arn:aws:chime:x/user/b%zz"
        );
        assert_eq!(
            denied_resource("/app-instance-users/arn%3Ax%2Fuser%2Fb/expiration-settings"),
            "arn:x/user/b"
        );
        assert!(denied_resource(USERS_PATH).contains("app-instance/*"));
    }
}
