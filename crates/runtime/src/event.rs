//! Reading an invocation's event without ever quoting it.
//!
//! `lambda_runtime` deserialises the payload into the handler's type itself,
//! and when that fails it logs serde's message at ERROR and reports it to
//! Lambda as `&lambda_runtime::deserializer::DeserializeError`. serde quotes
//! the offending value (`invalid type: string "alice@example.com", expected
//! …`), so a wrong-typed field put personal data into the log and into the
//! caller's error, in a format that is none of ours.
//!
//! [`Incoming`] is the payload type every function takes instead: its
//! deserialisation cannot fail, so `lambda_runtime` never sees an error. It
//! holds the event as JSON, or why the bytes are not JSON (invalid UTF-8, a
//! lone surrogate, nesting deeper than serde_json's limit of 128, …).
//! [`Incoming::typed`] then reads a typed event from the JSON with the path
//! of what is wrong. Every [`EventError`] names where and what was expected,
//! never the value.

use std::fmt;

use serde::de::{Deserialize, DeserializeOwned, Deserializer};
use serde_json::Value;

use chime_sync_core::error::ErrorCode;

/// Longest path quoted in an [`EventError`]: the path's map keys come from the
/// event, so they are bounded like any other input we repeat.
const MAX_PATH_CHARS: usize = 200;

/// An invocation's payload: the event as JSON, or why it is not JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct Incoming(Result<Value, EventError>);

impl<'de> Deserialize<'de> for Incoming {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Never an error: what lambda_runtime would report, we report ourselves.
        Ok(Self(Value::deserialize(deserializer).map_err(|e| {
            EventError::new(
                EventErrorKind::InvalidJson,
                None,
                syntax_detail(&e.to_string()),
            )
        })))
    }
}

impl Incoming {
    /// The event as JSON.
    pub fn json(self) -> Result<Value, EventError> {
        self.0
    }

    /// The event as `T`; an error says where it does not fit and what was
    /// expected there, without the value.
    pub fn typed<T: DeserializeOwned>(self) -> Result<T, EventError> {
        let value = self.0?;
        serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            EventError::new(
                EventErrorKind::InvalidEvent,
                Some(path),
                shape_detail(&e.into_inner().to_string()),
            )
        })
    }
}

impl From<Value> for Incoming {
    fn from(value: Value) -> Self {
        Self(Ok(value))
    }
}

/// Which way an event could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventErrorKind {
    /// The bytes are not JSON.
    InvalidJson,
    /// JSON, but not the event the function takes.
    InvalidEvent,
}

/// Why an event could not be read: where, and what was expected there.
/// Free of the event's values by construction, so it may be logged and
/// returned to the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventError {
    kind: EventErrorKind,
    path: Option<String>,
    detail: String,
}

impl EventError {
    fn new(kind: EventErrorKind, path: Option<String>, detail: String) -> Self {
        let path = path.filter(|p| !p.is_empty() && p != ".").map(|p| {
            p.chars()
                .map(|c| if c.is_control() { '\u{fffd}' } else { c })
                .take(MAX_PATH_CHARS)
                .collect()
        });
        Self { kind, path, detail }
    }

    pub fn kind(&self) -> EventErrorKind {
        self.kind
    }
}

impl ErrorCode for EventError {
    fn code(&self) -> &'static str {
        match self.kind {
            EventErrorKind::InvalidJson => "InvalidJson",
            EventErrorKind::InvalidEvent => "InvalidEvent",
        }
    }
}

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.kind, &self.path) {
            (EventErrorKind::InvalidJson, _) => {
                write!(f, "the event is not valid JSON: {}", self.detail)
            }
            (EventErrorKind::InvalidEvent, Some(path)) => {
                write!(
                    f,
                    "the event could not be read: at `{path}`: {}",
                    self.detail
                )
            }
            (EventErrorKind::InvalidEvent, None) => {
                write!(f, "the event could not be read: {}", self.detail)
            }
        }
    }
}

impl std::error::Error for EventError {}

/// serde_json's syntax errors ("EOF while parsing a string at line 1 column
/// 9", "recursion limit exceeded …", "lone leading surrogate in hex escape
/// …") name a position, never the text; anything else is not passed on.
fn syntax_detail(message: &str) -> String {
    const SYNTAX: [&str; 20] = [
        "EOF while parsing",
        "expected",
        "invalid escape",
        "invalid number",
        "number out of range",
        "invalid unicode code point",
        "control character",
        "key must be a string",
        "lone leading surrogate",
        "unexpected end of hex escape",
        "trailing comma",
        "trailing characters",
        "recursion limit exceeded",
        "unexpected end",
        "float key must be finite",
        "unexpected character",
        "invalid type",
        "invalid value",
        "unknown",
        "io error",
    ];
    let safe = SYNTAX.iter().any(|s| message.starts_with(s))
        && !message.contains('`')
        && !message.contains('"');
    if safe {
        message.to_owned()
    } else {
        "it is not well-formed".to_owned()
    }
}

/// serde's data errors, with the value left out: `invalid type: string
/// "alice@example.com", expected a string` becomes `expected a string,
/// found a string`-style text naming only the kinds.
fn shape_detail(message: &str) -> String {
    // Drop serde_json's position suffix; the path says where.
    let message = message
        .rsplit_once(" at line ")
        .map_or(message, |(head, _)| head);
    if let Some(rest) = message
        .strip_prefix("invalid type: ")
        .or_else(|| message.strip_prefix("invalid value: "))
    {
        let (found, expected) = rest.split_once(", expected ").unwrap_or((rest, "?"));
        return format!("expected {expected}, found {}", kind_of(found));
    }
    if let Some(rest) = message.strip_prefix("invalid length ") {
        let expected = rest.split_once(", expected ").map_or("?", |(_, e)| e);
        return format!("wrong number of elements, expected {expected}");
    }
    if message.starts_with("missing field `") || message.starts_with("duplicate field `") {
        // Field names from the event's schema, not from the event.
        return message.to_owned();
    }
    if let Some(rest) = message
        .strip_prefix("unknown variant ")
        .or_else(|| message.strip_prefix("unknown field "))
    {
        let expected = rest.split_once(", expected ").map_or("?", |(_, e)| e);
        let what = if message.starts_with("unknown variant") {
            "an unknown variant"
        } else {
            "an unknown field"
        };
        return format!("{what}, expected {expected}");
    }
    "it does not have the expected shape".to_owned()
}

/// What serde calls the unexpected value, without the value: `string
/// "alice@…"` → `a string`, ``integer `5` `` → `an integer`.
fn kind_of(unexpected: &str) -> &'static str {
    const KINDS: [(&str, &str); 12] = [
        ("string", "a string"),
        ("integer", "an integer"),
        ("floating point", "a number"),
        ("boolean", "a boolean"),
        ("map", "an object"),
        ("sequence", "an array"),
        ("null", "null"),
        ("unit", "null"),
        ("char", "a character"),
        ("byte array", "bytes"),
        ("Option value", "an optional value"),
        ("newtype struct", "a value"),
    ];
    KINDS
        .iter()
        .find(|(serde, _)| unexpected.starts_with(serde))
        .map_or("another kind of value", |(_, ours)| ours)
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    const PII: &str = "alice.wrongtype@example.com";

    /// What lambda_runtime 1.5.0 does with the body (`deserializer.rs`):
    /// `serde_path_to_error::deserialize` over `serde_json::Deserializer::from_slice`.
    fn incoming(bytes: &[u8]) -> Incoming {
        let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
        serde_path_to_error::deserialize(deserializer).expect("deserialising Incoming never fails")
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Record {
        #[serde(rename = "messageId")]
        message_id: String,
        attributes: Attributes,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Attributes {
        count: u64,
        kind: Kind,
    }

    #[derive(Debug, Deserialize)]
    enum Kind {
        Standard,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Batch {
        #[serde(rename = "Records")]
        records: Vec<Record>,
    }

    fn typed_error(event: Value) -> EventError {
        Incoming::from(event).typed::<Batch>().unwrap_err()
    }

    #[test]
    fn a_wrong_typed_field_is_reported_by_path_and_expected_type_only() {
        let event = json!({"Records": [{"messageId": "m1", "attributes": {"count": PII, "kind": "Standard"}}]});
        let err = typed_error(event);
        let text = err.to_string();
        assert_eq!(err.code(), "InvalidEvent");
        assert!(!text.contains(PII) && !text.contains("alice"), "{text}");
        assert_eq!(
            text,
            "the event could not be read: at `Records[0].attributes.count`: expected u64, found a string"
        );
    }

    #[test]
    fn no_data_error_quotes_the_value() {
        let cases = [
            json!({"Records": [{"messageId": 5, "attributes": {"count": 1, "kind": "Standard"}}]}),
            json!({"Records": [{"messageId": "m", "attributes": {"count": 1, "kind": PII}}]}),
            json!({"Records": [{"messageId": "m", "attributes": {"count": -1, "kind": "Standard"}}]}),
            json!({"Records": [{"messageId": "m", "attributes": {"count": 1.5, "kind": "Standard"}}]}),
            json!({"Records": [{"messageId": "m", "attributes": {"kind": "Standard"}}]}),
            json!({"Records": PII}),
            json!({"Records": [[PII, PII]]}),
            json!([PII]),
            json!(PII),
            json!({"Records": [{"messageId": true, "attributes": {"count": 1, "kind": "Standard"}}]}),
        ];
        for event in cases {
            let text = typed_error(event.clone()).to_string();
            assert!(!text.contains(PII), "{event}: {text}");
            assert!(
                !text.contains("-1") && !text.contains("1.5"),
                "{event}: {text}"
            );
            assert!(text.starts_with("the event could not be read"), "{text}");
        }
        assert!(
            typed_error(
                json!({"Records": [{"messageId": "m", "attributes": {"kind": "Standard"}}]})
            )
            .to_string()
            .ends_with("missing field `count`")
        );
    }

    #[test]
    fn bytes_that_are_not_json_get_our_own_error() {
        let mut deep = "[".repeat(10_000).into_bytes();
        deep.extend("]".repeat(10_000).bytes());
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (
                b"{\"email\": \"alice\xff@example.com\"}".to_vec(),
                "invalid unicode code point",
            ),
            (
                br#"{"email": "alice\ud800@example.com"}"#.to_vec(),
                "hex escape",
            ),
            (
                br#"{"email": "\ud800\u0041 alice"}"#.to_vec(),
                "lone leading surrogate",
            ),
            (deep, "recursion limit exceeded"),
            (b"alice@example.com".to_vec(), "expected value"),
            (b"".to_vec(), "EOF while parsing"),
            (
                b"{\"email\": \"alice@exa".to_vec(),
                "EOF while parsing a string",
            ),
        ];
        for (bytes, want) in cases {
            let err = incoming(&bytes).json().unwrap_err();
            let text = err.to_string();
            assert_eq!(err.code(), "InvalidJson");
            assert!(text.starts_with("the event is not valid JSON: "), "{text}");
            assert!(text.contains(want), "{text} should say {want}");
            assert!(!text.contains("alice"), "{text}");
        }
    }

    #[test]
    fn json_events_come_through_whole() {
        let event = json!({"triggerSource": "PreSignUp_SignUp", "request": {"userAttributes": {"email": PII}}});
        assert_eq!(
            incoming(event.to_string().as_bytes()).json(),
            Ok(event.clone())
        );
        // lambda_runtime reads one JSON value and ignores what follows it.
        assert_eq!(incoming(b"{} trailing").json(), Ok(json!({})));
    }

    #[test]
    fn unexpected_messages_are_never_passed_on() {
        let shapes = [
            (
                format!("custom failure for {PII}"),
                "it does not have the expected shape",
            ),
            (
                format!("unknown variant `{PII}`, expected `Standard`"),
                "an unknown variant, expected `Standard`",
            ),
            (
                format!("unknown field `{PII}`, expected `a` or `b`"),
                "an unknown field, expected `a` or `b`",
            ),
            (
                "invalid length 3, expected a tuple of size 2 at line 1 column 7".to_owned(),
                "wrong number of elements, expected a tuple of size 2",
            ),
        ];
        for (message, want) in shapes {
            assert_eq!(shape_detail(&message), want);
        }
        assert_eq!(
            syntax_detail(&format!("expected `{PII}`")),
            "it is not well-formed"
        );
        // Map keys in the path come from the event: bounded.
        let long_key = "k".repeat(1000);
        let err = Incoming::from(json!({ long_key: "x" }))
            .typed::<std::collections::HashMap<String, u64>>()
            .unwrap_err();
        assert!(err.to_string().len() < 300, "{err}");
    }
}
