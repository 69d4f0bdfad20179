//! The errors the simulator answers with, named after SQS's error codes so a
//! test can compare them with what the real service (or moto) says.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SimError {
    /// `QueueDoesNotExist` (`AWS.SimpleQueueService.NonExistentQueue`).
    #[error("QueueDoesNotExist: the queue `{0}` does not exist")]
    QueueDoesNotExist(String),
    /// `QueueAlreadyExists`: a queue of that name exists with other attributes.
    #[error("QueueAlreadyExists: `{0}` exists with different attributes")]
    QueueAlreadyExists(String),
    /// `InvalidAttributeValue`: a queue attribute SQS would refuse (a FIFO
    /// queue whose name lacks `.fifo`, a FIFO queue redriving to a standard
    /// queue, a visibility timeout above 12 hours, …).
    #[error("InvalidAttributeValue: {0}")]
    InvalidAttributeValue(String),
    /// `MissingParameter`: e.g. `MessageGroupId` on a FIFO send, or
    /// `MessageDeduplicationId` without content-based deduplication.
    #[error("MissingParameter: {0}")]
    MissingParameter(String),
    /// `InvalidParameterValue`: e.g. `MaxNumberOfMessages` outside 1..=10,
    /// a `MessageDeduplicationId` on a standard queue, an empty body.
    #[error("InvalidParameterValue: {0}")]
    InvalidParameterValue(String),
    /// `ReceiptHandleIsInvalid`: not a receipt handle of this queue.
    #[error("ReceiptHandleIsInvalid: the receipt handle `{0}` is not valid for this queue")]
    ReceiptHandleIsInvalid(String),
    /// FIFO queues refuse a receipt handle whose visibility timeout has
    /// expired: `InvalidParameterValue … Reason: The receipt handle has expired.`
    #[error(
        "InvalidParameterValue: value `{0}` for parameter ReceiptHandle is invalid. Reason: The receipt handle has expired."
    )]
    ReceiptHandleExpired(String),
    /// `MessageNotInflight` (`AWS.SimpleQueueService.MessageNotInflight`):
    /// ChangeMessageVisibility on a message that is not in flight.
    #[error("MessageNotInflight: the message is not in flight")]
    MessageNotInflight,
}

impl SimError {
    /// The SQS error code (the `Code` of the wire error, as the SDKs report it).
    pub fn code(&self) -> &'static str {
        match self {
            Self::QueueDoesNotExist(_) => "QueueDoesNotExist",
            Self::QueueAlreadyExists(_) => "QueueAlreadyExists",
            Self::InvalidAttributeValue(_) => "InvalidAttributeValue",
            Self::MissingParameter(_) => "MissingParameter",
            Self::InvalidParameterValue(_) | Self::ReceiptHandleExpired(_) => {
                "InvalidParameterValue"
            }
            Self::ReceiptHandleIsInvalid(_) => "ReceiptHandleIsInvalid",
            Self::MessageNotInflight => "MessageNotInflight",
        }
    }
}
