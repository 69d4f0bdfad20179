//! A tolerant reading of Cognito trigger events.
//!
//! `aws_lambda_events`' Cognito types are strict: `"response": {}`, null
//! booleans or a trigger source they do not know make deserialisation fail,
//! and a trigger that cannot read its event fails every sign-up. So the
//! triggers take the event as JSON, read only what they need from it, and
//! return it with only what they mean to change changed — every field AWS
//! sends, known to us or not, goes back untouched.

use serde_json::{Map, Value};

/// The event's `triggerSource`, if it is a string.
pub fn trigger_source(event: &Value) -> Option<&str> {
    event.get("triggerSource").and_then(Value::as_str)
}

/// `request.userAttributes`, or an empty map when absent or not an object.
pub fn user_attributes(event: &Value) -> &Map<String, Value> {
    static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    event
        .pointer("/request/userAttributes")
        .and_then(Value::as_object)
        .unwrap_or_else(|| EMPTY.get_or_init(Map::new))
}

/// A string attribute, if present and not blank.
pub fn attribute<'a>(attributes: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    attributes
        .get(name)
        .and_then(Value::as_str)
        .filter(|v| !v.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_what_is_there_and_tolerates_what_is_not() {
        let e = json!({"triggerSource": "PreSignUp_SignUp", "request": {"userAttributes": {"email": "a@b", "name": " "}}});
        assert_eq!(trigger_source(&e), Some("PreSignUp_SignUp"));
        assert_eq!(attribute(user_attributes(&e), "email"), Some("a@b"));
        assert_eq!(attribute(user_attributes(&e), "name"), None);
        let odd = json!({"triggerSource": 5, "request": {"userAttributes": null}});
        assert_eq!(trigger_source(&odd), None);
        assert!(user_attributes(&odd).is_empty());
        assert!(user_attributes(&json!(null)).is_empty());
    }
}
