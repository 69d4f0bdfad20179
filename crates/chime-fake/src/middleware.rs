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
use crate::faults::Fault;
use crate::routes::USERS_PATH;
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
    match (method, path == USERS_PATH, on_user) {
        (&Method::POST, true, _) => Some(Operation::CreateAppInstanceUser),
        (&Method::GET, true, _) => Some(Operation::ListAppInstanceUsers),
        (&Method::GET, _, true) => Some(Operation::DescribeAppInstanceUser),
        (&Method::PUT, _, true) => Some(Operation::UpdateAppInstanceUser),
        (&Method::DELETE, _, true) => Some(Operation::DeleteAppInstanceUser),
        _ => None,
    }
}

fn injected(kind: ErrorKind) -> Response {
    let message = match kind {
        ErrorKind::ThrottledClient => "Rate exceeded (injected by the fake Chime server)",
        ErrorKind::ServiceFailure => "Service failure (injected by the fake Chime server)",
        _ => "Service unavailable (injected by the fake Chime server)",
    };
    ApiError::new(kind, message).into_response()
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
    let mut response = match decision.fault {
        Some(Fault::Drop) => {
            tracing::debug!(?op, "dropping the connection (injected)");
            let mut response = Response::new(Body::empty());
            response.extensions_mut().insert(DropConnection);
            return response;
        }
        Some(Fault::Throttle) => injected(ErrorKind::ThrottledClient),
        Some(Fault::ServiceFailure) => injected(ErrorKind::ServiceFailure),
        Some(Fault::ServiceUnavailable) => injected(ErrorKind::ServiceUnavailable),
        None => next.run(request).await,
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
    fn classifies_the_five_operations() {
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
        assert_eq!(classify(&Method::PATCH, user), None);
        assert_eq!(classify(&Method::GET, "/app-instance-users/"), None);
        assert_eq!(classify(&Method::GET, "/app-instance-usersx"), None);
        assert_eq!(classify(&Method::GET, "/_fake/state"), None);
    }
}
