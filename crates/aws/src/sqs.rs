//! [`SqsQueue`]: the `Queue` port over `aws-sdk-sqs`, for one queue URL.
//!
//! Used for post-confirmation's hand-off to the sync queue and for idp-sync's
//! dead-lettering. The queue kind is read from the URL once: SQS names every
//! FIFO queue `….fifo`, and it rejects a deduplication id on a standard queue,
//! so the FIFO fields are sent only where they belong.

use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::config::Builder as ClientConfigBuilder;
use aws_sdk_sqs::config::timeout::TimeoutConfig;
use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use chime_sync_core::{OutgoingMessage, Queue, QueueError};
use tracing::debug;

/// Sends to one SQS queue, FIFO or standard.
#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: Client,
    queue_url: String,
    fifo: bool,
}

impl SqsQueue {
    /// A queue client for `queue_url`. `operation_timeout` bounds each send,
    /// SDK retries included, so a slow SQS cannot eat a caller's deadline
    /// (post-confirmation has what is left of Cognito's 5 s).
    ///
    /// The endpoint comes from the `SdkConfig`, which honours
    /// `AWS_ENDPOINT_URL_SQS` and `AWS_ENDPOINT_URL` (used by tests against a
    /// local SQS server).
    pub fn new(
        sdk_config: &SdkConfig,
        queue_url: impl Into<String>,
        operation_timeout: Option<Duration>,
    ) -> Self {
        let mut builder = ClientConfigBuilder::from(sdk_config);
        builder.set_http_client(crate::http::http_client_for(sdk_config));
        if let Some(timeout) = operation_timeout {
            builder =
                builder.timeout_config(TimeoutConfig::builder().operation_timeout(timeout).build());
        }
        Self::from_client(Client::from_conf(builder.build()), queue_url)
    }

    /// Wrap an already configured client (the CLI, tests).
    pub fn from_client(client: Client, queue_url: impl Into<String>) -> Self {
        let queue_url = queue_url.into();
        Self {
            client,
            fifo: is_fifo(&queue_url),
            queue_url,
        }
    }

    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }

    /// Whether this is a FIFO queue (its URL ends in `.fifo`).
    pub fn is_fifo(&self) -> bool {
        self.fifo
    }
}

/// SQS requires the `.fifo` suffix on every FIFO queue's name.
fn is_fifo(queue_url: &str) -> bool {
    queue_url.trim_end_matches('/').ends_with(".fifo")
}

/// String message attributes as SQS takes them; SQS rejects an empty value,
/// so those are dropped.
fn attributes(
    attributes: std::collections::BTreeMap<String, String>,
) -> Result<Vec<(String, MessageAttributeValue)>, QueueError> {
    let mut out = Vec::with_capacity(attributes.len());
    for (name, value) in attributes {
        if value.is_empty() {
            debug!(attribute = %name, "dropping an empty message attribute");
            continue;
        }
        let value = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(value)
            .build()
            .map_err(|e| QueueError::permanent(format!("message attribute {name}: {e}")))?;
        out.push((name, value));
    }
    Ok(out)
}

impl Queue for SqsQueue {
    async fn send(&self, message: OutgoingMessage) -> Result<(), QueueError> {
        let mut request = self
            .client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(message.body);
        if self.fifo {
            request = request
                .message_group_id(message.group_id)
                .message_deduplication_id(message.deduplication_id);
        }
        for (name, value) in attributes(message.attributes)? {
            request = request.message_attributes(name, value);
        }
        request.send().await.map_err(|e| map_error(&e))?;
        Ok(())
    }

    /// `SendMessageBatch`: one request for up to ten messages. An entry SQS
    /// reports failed is permanent when SQS says it was the sender's fault
    /// (`SenderFault`), retryable otherwise; a failed request fails every
    /// entry with its error.
    async fn send_batch(&self, messages: Vec<OutgoingMessage>) -> Vec<Result<(), QueueError>> {
        let count = messages.len();
        let mut entries = Vec::with_capacity(count);
        let mut results: Vec<Result<(), QueueError>> = vec![Ok(()); count];
        for (index, message) in messages.into_iter().enumerate() {
            let mut entry = SendMessageBatchRequestEntry::builder()
                .id(index.to_string())
                .message_body(message.body);
            if self.fifo {
                entry = entry
                    .message_group_id(message.group_id)
                    .message_deduplication_id(message.deduplication_id);
            }
            let built = attributes(message.attributes).and_then(|attrs| {
                attrs
                    .into_iter()
                    .fold(entry, |e, (name, value)| e.message_attributes(name, value))
                    .build()
                    .map_err(|e| QueueError::permanent(format!("batch entry: {e}")))
            });
            match built {
                Ok(entry) => entries.push(entry),
                Err(e) => results[index] = Err(e),
            }
        }
        if entries.is_empty() {
            return results;
        }
        let sent: Vec<usize> = entries.iter().filter_map(|e| e.id().parse().ok()).collect();
        match self
            .client
            .send_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
        {
            Ok(output) => {
                for failed in output.failed() {
                    if let Some(slot) = failed
                        .id()
                        .parse::<usize>()
                        .ok()
                        .and_then(|i| results.get_mut(i))
                    {
                        let why = format!(
                            "{}: {}",
                            failed.code(),
                            failed.message().unwrap_or_default()
                        );
                        *slot = Err(if failed.sender_fault() {
                            QueueError::permanent(why)
                        } else {
                            QueueError::retryable(why)
                        });
                    }
                }
            }
            Err(e) => {
                let error = map_error(&e);
                for index in sent {
                    results[index] = Err(error.clone());
                }
            }
        }
        results
    }
}

/// The one place an SQS SDK error becomes a [`QueueError`].
///
/// Retryable: throttling (`RequestThrottled`, `ThrottlingException`,
/// `KmsThrottled`, 429), 5xx, timeouts, connection failures, a request that
/// could not be signed (credentials), and access denials — the last because
/// they are a deployment fault, not the message's, as for Chime. Permanent:
/// every other 4xx (`QueueDoesNotExist`, `InvalidParameterValue`,
/// `InvalidMessageContents`, …), where the same send would fail the same way.
pub(crate) fn map_error<E>(err: &SdkError<E, HttpResponse>) -> QueueError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let detail = || DisplayErrorContext(err).to_string();
    match err {
        SdkError::TimeoutError(_) => QueueError::retryable(format!("timed out: {}", detail())),
        SdkError::DispatchFailure(_)
        | SdkError::ConstructionFailure(_)
        | SdkError::ResponseError(_) => QueueError::retryable(detail()),
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let code = service.err().code().unwrap_or("");
            let why = crate::service_error_text(Some(code), status, service.err().message());
            if is_retryable_code(code) || status == 429 || status >= 500 || status == 403 {
                QueueError::retryable(why)
            } else {
                QueueError::permanent(why)
            }
        }
        _ => QueueError::retryable(detail()),
    }
}

fn is_retryable_code(code: &str) -> bool {
    matches!(
        code,
        "RequestThrottled"
            | "ThrottlingException"
            | "Throttling"
            | "KmsThrottled"
            | "ServiceUnavailable"
            | "InternalError"
            | "InternalFailure"
            | "AccessDenied"
            | "AccessDeniedException"
            | "KmsAccessDenied"
    )
}

#[cfg(test)]
mod tests {
    use aws_sdk_sqs::error::{ConnectorError, ErrorMetadata};
    use aws_sdk_sqs::operation::send_message::SendMessageError;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use chime_sync_core::ErrorClass;

    use super::*;

    fn service(status: u16, code: &str) -> QueueError {
        let err = SendMessageError::generic(ErrorMetadata::builder().code(code).build());
        let raw = HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::empty());
        map_error(&SdkError::service_error(err, raw))
    }

    #[test]
    fn fifo_is_read_from_the_url() {
        assert!(is_fifo(
            "https://sqs.eu-west-1.amazonaws.com/123456789012/sync.fifo"
        ));
        assert!(is_fifo("http://127.0.0.1:5000/123456789012/sync.fifo/"));
        assert!(!is_fifo(
            "https://sqs.eu-west-1.amazonaws.com/123456789012/sync"
        ));
        assert!(!is_fifo(
            "https://sqs.eu-west-1.amazonaws.com/123456789012/fifo"
        ));
    }

    #[test]
    fn throttling_5xx_and_access_are_retryable() {
        for (status, code) in [
            (400, "RequestThrottled"),
            (400, "ThrottlingException"),
            (400, "KmsThrottled"),
            (429, "Whatever"),
            (500, "InternalError"),
            (503, "ServiceUnavailable"),
            (403, "AccessDenied"),
        ] {
            assert_eq!(service(status, code).class, ErrorClass::Retryable, "{code}");
        }
    }

    #[test]
    fn other_client_errors_are_permanent() {
        for code in [
            "AWS.SimpleQueueService.NonExistentQueue",
            "QueueDoesNotExist",
            "InvalidParameterValue",
            "InvalidMessageContents",
            "MissingParameter",
        ] {
            let e = service(400, code);
            assert_eq!(e.class, ErrorClass::Permanent, "{code}");
            assert!(e.message.contains(code));
        }
    }

    #[test]
    fn transport_failures_are_retryable() {
        type E = SdkError<SendMessageError, HttpResponse>;
        let timeout: E = SdkError::timeout_error("operation timeout");
        assert_eq!(map_error(&timeout).class, ErrorClass::Retryable);
        let io: E = SdkError::dispatch_failure(ConnectorError::io("reset".into()));
        assert_eq!(map_error(&io).class, ErrorClass::Retryable);
    }
}
