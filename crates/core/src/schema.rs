//! The IdP message schema, version 1, and the envelopes it may arrive in.
//!
//! ```json
//! {"version": 1, "type": "user.created", "eventId": "8d0c…", "occurredAt": "2026-11-20T10:00:00Z",
//!  "user": {"sub": "6f1c…", "displayName": "Ada Lovelace", "metadata": {"department": "R&D"}}}
//! ```
//! Bodies arrive raw, inside an SNS notification (`Type: Notification`,
//! `Message` a JSON string) or inside an EventBridge event (`detail`).
//! `version` is read first so a future version is refused as such, not as a
//! pile of missing fields. Unknown extra fields are ignored (forward-compatible).
//!
//! Optional fields that say where and when a change comes from ([`Origin`]),
//! read by the ownership and time rules ([`crate::ledger`]):
//! - `occurredAt` (RFC 3339): when the change happened at its source; a
//!   change older than the last one applied to the user is refused as stale.
//!   Without it the event is never stale (and moves no clock).
//! - `source`: who publishes it (`feed` unless said: `feed:<publisher>`,
//!   `pool`, `scim`, `ldap`); a `user.created` makes that source the owner.
//! - `reason: "absent"` on `user.deleted`: the source no longer lists the
//!   user; it deletes only a user that source owns, and needs `occurredAt`
//!   (when the absence was observed).
//! - `released: true` on `user.deleted`: an operator released it past the
//!   feed's breaker (`chime-sync held release`).

use serde_json::{Map, Value, json};

use crate::error::InputError;
use crate::identity::UserId;
use crate::ledger::{At, Change, ChangeKind, Source};
use crate::profile::{DisplayName, Metadata, UserProfile};
use crate::queue::sqs_json;

/// The only schema version this consumer understands.
pub const SCHEMA_VERSION: u64 = 1;

/// What an identity event asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentityEvent {
    /// `user.created`: create, or heal a user that exists already.
    Provision(UserProfile),
    /// `user.updated`: create if missing, else update name and metadata.
    Update(UserProfile),
    /// `user.deleted`: delete; gone already is a success.
    Deprovision(UserId),
}

impl IdentityEvent {
    pub fn user_id(&self) -> &UserId {
        match self {
            Self::Provision(p) | Self::Update(p) => &p.id,
            Self::Deprovision(id) => id,
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Provision(_) => "user.created",
            Self::Update(_) => "user.updated",
            Self::Deprovision(_) => "user.deleted",
        }
    }
}

/// How the message reached us; logged with every decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Envelope {
    Raw,
    Sns,
    EventBridge,
}

impl Envelope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Raw => "raw",
            Self::Sns => "sns",
            Self::EventBridge => "eventbridge",
        }
    }
}

/// Where and when a change comes from (the optional fields above).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub source: Source,
    pub at: Option<At>,
    /// `reason: "absent"`: a deletion because the source no longer lists
    /// the user.
    pub absent: bool,
    /// Released past the feed's breaker by an operator.
    pub released: bool,
}

impl Origin {
    /// A change from `source` at `at` (what the stack's own publishers send).
    pub fn from(source: Source, at: Option<At>) -> Self {
        Self {
            source,
            at,
            absent: false,
            released: false,
        }
    }
}

/// A parsed, validated message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdpMessage {
    pub event: IdentityEvent,
    pub event_id: Option<String>,
    pub envelope: Envelope,
    pub origin: Origin,
}

impl IdpMessage {
    /// The change the message asks the ledger for.
    pub fn change(&self) -> Change {
        let kind = match (&self.event, self.origin.absent) {
            (IdentityEvent::Provision(_), _) => ChangeKind::Create,
            (IdentityEvent::Update(_), _) => ChangeKind::Update,
            (IdentityEvent::Deprovision(_), false) => ChangeKind::Delete,
            (IdentityEvent::Deprovision(_), true) => ChangeKind::Absent,
        };
        Change {
            id: self.event.user_id().clone(),
            source: self.origin.source.clone(),
            kind,
            at: self.origin.at,
        }
    }
}

/// Parse an SQS message body into a validated identity event.
pub fn parse_body(body: &str) -> Result<IdpMessage, InputError> {
    let outer: Value =
        serde_json::from_str(body).map_err(|e| InputError::InvalidJson(e.to_string()))?;
    let (envelope, message) = unwrap_envelope(outer)?;
    let (event, event_id) = parse_message(&message)?;
    let origin = parse_origin(&message, &event)?;
    Ok(IdpMessage {
        event,
        event_id,
        envelope,
        origin,
    })
}

/// The sub of a message that failed validation, when one can still be read
/// from it, so logs and the replay can name whose message was dead-lettered.
pub fn sub_hint(body: &str) -> Option<UserId> {
    let outer: Value = serde_json::from_str(body).ok()?;
    let (_, message) = unwrap_envelope(outer).ok()?;
    UserId::parse(message.pointer("/user/sub")?.as_str()?).ok()
}

fn unwrap_envelope(outer: Value) -> Result<(Envelope, Value), InputError> {
    let Value::Object(mut obj) = outer else {
        return Err(InputError::WrongType {
            field: "body",
            expected: "a JSON object",
        });
    };
    if obj.get("Type").and_then(Value::as_str) == Some("Notification")
        && obj.contains_key("Message")
    {
        let inner = match obj.remove("Message") {
            Some(Value::String(s)) => s,
            _ => {
                return Err(InputError::WrongType {
                    field: "Message",
                    expected: "a string holding the JSON message",
                });
            }
        };
        let value = serde_json::from_str(&inner)
            .map_err(|e| InputError::InvalidJson(format!("in SNS Message: {e}")))?;
        return Ok((Envelope::Sns, value));
    }
    // EventBridge always sends `detail-type`; an envelope with it but without
    // `detail` has lost its message, which is what the error must say (read
    // as a raw message it would be "unsupported schema version 0").
    if obj.contains_key("detail-type") {
        let detail = obj
            .remove("detail")
            .ok_or(InputError::MissingField("detail"))?;
        // EventBridge keeps `detail` an object; a string detail is a JSON text.
        let detail = match detail {
            Value::String(s) => serde_json::from_str(&s)
                .map_err(|e| InputError::InvalidJson(format!("in EventBridge detail: {e}")))?,
            other => other,
        };
        return Ok((Envelope::EventBridge, detail));
    }
    Ok((Envelope::Raw, Value::Object(obj)))
}

fn parse_message(message: &Value) -> Result<(IdentityEvent, Option<String>), InputError> {
    let obj = message.as_object().ok_or(InputError::WrongType {
        field: "message",
        expected: "a JSON object",
    })?;
    match obj.get("version") {
        None => return Err(InputError::MissingField("version")),
        Some(v) if v.as_u64() == Some(SCHEMA_VERSION) => {}
        // Quote at most 64 characters: the value ends up in logs and DLQ attributes.
        Some(v) => {
            return Err(InputError::UnsupportedVersion(
                v.to_string().chars().take(64).collect(),
            ));
        }
    }
    let kind = required_str(obj, "type", "type")?;
    let event_id = optional_str(obj, "eventId")?;
    let user = match obj.get("user") {
        None | Some(Value::Null) => return Err(InputError::MissingField("user")),
        Some(Value::Object(u)) => u,
        Some(_) => {
            return Err(InputError::WrongType {
                field: "user",
                expected: "an object",
            });
        }
    };
    let id = UserId::parse(required_str(user, "sub", "user.sub")?)?;
    let profile = |id: UserId| -> Result<UserProfile, InputError> {
        let name = DisplayName::parse(required_str(user, "displayName", "user.displayName")?)?;
        let metadata = user.get("metadata").map(Metadata::from_json).transpose()?;
        Ok(UserProfile { id, name, metadata })
    };
    let event = match kind {
        "user.created" => IdentityEvent::Provision(profile(id)?),
        "user.updated" => IdentityEvent::Update(profile(id)?),
        "user.deleted" => IdentityEvent::Deprovision(id),
        other => return Err(InputError::UnknownType(other.chars().take(64).collect())),
    };
    Ok((event, event_id.map(str::to_owned)))
}

/// The optional `source`, `occurredAt`, `reason` and `released` fields.
fn parse_origin(message: &Value, event: &IdentityEvent) -> Result<Origin, InputError> {
    let Some(obj) = message.as_object() else {
        return Err(InputError::WrongType {
            field: "message",
            expected: "a JSON object",
        });
    };
    let source = match optional_str(obj, "source")? {
        None => Source::feed(None)?,
        Some(raw) => Source::parse(raw)?,
    };
    let at = optional_str(obj, "occurredAt")?
        .map(At::parse_rfc3339)
        .transpose()?;
    let absent = match optional_str(obj, "reason")? {
        None => false,
        Some("absent") if matches!(event, IdentityEvent::Deprovision(_)) => true,
        Some(_) => {
            return Err(InputError::WrongType {
                field: "reason",
                expected: "\"absent\", on user.deleted only",
            });
        }
    };
    if absent && at.is_none() {
        return Err(InputError::MissingField("occurredAt"));
    }
    let released = match obj.get("released") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::Bool(true)) if matches!(event, IdentityEvent::Deprovision(_)) => true,
        Some(_) => {
            return Err(InputError::WrongType {
                field: "released",
                expected: "true, on user.deleted only",
            });
        }
    };
    Ok(Origin {
        source,
        at,
        absent,
        released,
    })
}

fn required_str<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    field: &'static str,
) -> Result<&'a str, InputError> {
    match obj.get(key) {
        None | Some(Value::Null) => Err(InputError::MissingField(field)),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(InputError::WrongType {
            field,
            expected: "a string",
        }),
    }
}

fn optional_str<'a>(
    obj: &'a Map<String, Value>,
    key: &'static str,
) -> Result<Option<&'a str>, InputError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(InputError::WrongType {
            field: key,
            expected: "a string",
        }),
    }
}

/// The schema-v1 `user.created` message post-confirmation hands to the sync
/// queue when Chime is down or slow. Metadata is left out: absent metadata
/// means "keep what the user has".
pub fn provision_message(profile: &UserProfile, event_id: &str, origin: &Origin) -> String {
    event_message(&IdentityEvent::Provision(profile.clone()), event_id, origin)
}

/// `event` as a schema-v1 message body (what the reconcile function
/// publishes, and the hand-off above), with its origin's fields. Metadata is
/// written only when the profile carries some. Written so SQS accepts it: a
/// name may hold U+FFFE or U+FFFF, which SQS refuses raw, so those are `\u`
/// escapes.
pub fn event_message(event: &IdentityEvent, event_id: &str, origin: &Origin) -> String {
    let user = match event {
        IdentityEvent::Provision(p) | IdentityEvent::Update(p) => {
            let mut user = json!({"sub": p.id.as_str(), "displayName": p.name.as_str()});
            if let Some(metadata) = &p.metadata {
                user["metadata"] = json!(metadata.as_str());
            }
            user
        }
        IdentityEvent::Deprovision(id) => json!({"sub": id.as_str()}),
    };
    let mut message = json!({
        "version": SCHEMA_VERSION,
        "type": event.type_name(),
        "eventId": event_id,
        "source": origin.source.as_str(),
        "user": user,
    });
    if let Some(at) = origin.at {
        message["occurredAt"] = json!(at.rfc3339());
    }
    if origin.absent {
        message["reason"] = json!("absent");
    }
    if origin.released {
        message["released"] = json!(true);
    }
    sqs_json(message.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUB: &str = "6f1c2d3e-0b4a-4c5d-8e9f-a0b1c2d3e4f5";

    fn body(kind: &str) -> Value {
        json!({"version": 1, "type": kind, "eventId": "e-1", "occurredAt": "2026-11-20T10:00:00Z",
               "user": {"sub": SUB, "displayName": "Ada Lovelace", "metadata": {"department": "R&D"}}})
    }

    #[test]
    fn parses_each_type_raw() {
        let m = parse_body(&body("user.created").to_string()).unwrap();
        assert_eq!(m.envelope, Envelope::Raw);
        assert_eq!(m.event_id.as_deref(), Some("e-1"));
        let IdentityEvent::Provision(p) = m.event else {
            panic!("{m:?}")
        };
        assert_eq!(p.id.as_str(), SUB);
        assert_eq!(p.name.as_str(), "Ada Lovelace");
        assert_eq!(p.metadata.unwrap().as_str(), r#"{"department":"R&D"}"#);
        assert!(matches!(
            parse_body(&body("user.updated").to_string()).unwrap().event,
            IdentityEvent::Update(_)
        ));
        let deleted = json!({"version": 1, "type": "user.deleted", "user": {"sub": SUB}});
        assert_eq!(
            parse_body(&deleted.to_string()).unwrap().event,
            IdentityEvent::Deprovision(UserId::parse(SUB).unwrap())
        );
    }

    #[test]
    fn unwraps_sns_and_eventbridge() {
        let inner = body("user.updated").to_string();
        let sns = json!({"Type": "Notification", "MessageId": "m", "TopicArn": "arn:aws:sns:us-east-1:123456789012:t", "Message": inner});
        let m = parse_body(&sns.to_string()).unwrap();
        assert_eq!(m.envelope, Envelope::Sns);
        assert!(matches!(m.event, IdentityEvent::Update(_)));
        let eb = json!({"version": "0", "id": "x", "detail-type": "user.updated", "source": "hr",
                        "detail": body("user.updated")});
        let m = parse_body(&eb.to_string()).unwrap();
        assert_eq!(m.envelope, Envelope::EventBridge);
        assert!(matches!(m.event, IdentityEvent::Update(_)));
    }

    #[test]
    fn each_malformed_input_names_what_is_wrong() {
        let mut no_sub = body("user.created");
        no_sub["user"].as_object_mut().unwrap().remove("sub");
        let mut bad_sub = body("user.created");
        bad_sub["user"]["sub"] = json!("not-a-uuid");
        let mut blank_name = body("user.updated");
        blank_name["user"]["displayName"] = json!("   ");
        let mut long_meta = body("user.created");
        long_meta["user"]["metadata"] = json!("m".repeat(1100));
        let cases: Vec<(String, &str)> = vec![
            ("{not json".into(), "InvalidJson"),
            ("[1,2]".into(), "WrongType"),
            (json!({"type": "user.created"}).to_string(), "MissingField"),
            (
                json!({"version": 2, "type": "user.created"}).to_string(),
                "UnsupportedVersion",
            ),
            (
                json!({"version": "1", "type": "user.created"}).to_string(),
                "UnsupportedVersion",
            ),
            (body("user.frozen").to_string(), "UnknownType"),
            (
                json!({"version": 1, "type": "user.created"}).to_string(),
                "MissingField",
            ),
            (
                json!({"version": 1, "type": "user.created", "user": "x"}).to_string(),
                "WrongType",
            ),
            (
                json!({"version": 1, "type": 7, "user": {}}).to_string(),
                "WrongType",
            ),
            (no_sub.to_string(), "MissingField"),
            (bad_sub.to_string(), "InvalidUserId"),
            (blank_name.to_string(), "InvalidDisplayName"),
            (long_meta.to_string(), "MetadataTooLong"),
            (
                json!({"Type": "Notification", "Message": "{oops"}).to_string(),
                "InvalidJson",
            ),
            (
                json!({"Type": "Notification", "Message": 5}).to_string(),
                "WrongType",
            ),
            (
                json!({"version": "0", "detail-type": "user.created", "source": "hr"}).to_string(),
                "MissingField",
            ),
        ];
        for (input, code) in cases {
            let err = parse_body(&input).expect_err(&input);
            assert_eq!(err.code(), code, "{input}: {err}");
            assert!(!err.to_string().is_empty());
        }
    }

    #[test]
    fn origin_fields_are_read_and_checked() {
        let plain = parse_body(&body("user.created").to_string()).unwrap();
        assert_eq!(plain.origin.source, Source::feed(None).unwrap());
        assert_eq!(
            plain.origin.at,
            Some(At::parse_rfc3339("2026-11-20T10:00:00Z").unwrap())
        );
        assert_eq!(plain.change().kind, ChangeKind::Create);
        let mut absent = json!({"version": 1, "type": "user.deleted", "source": "feed:workday",
            "reason": "absent", "occurredAt": "2026-11-20T10:00:00Z", "user": {"sub": SUB}});
        let m = parse_body(&absent.to_string()).unwrap();
        assert_eq!(m.change().kind, ChangeKind::Absent);
        assert_eq!(m.change().source.as_str(), "feed:workday");
        absent.as_object_mut().unwrap().remove("occurredAt");
        let bad = |v: Value| parse_body(&v.to_string()).unwrap_err().code();
        assert_eq!(
            bad(absent),
            "MissingField",
            "an absence says when it was seen"
        );
        let mut created = body("user.created");
        created["reason"] = json!("absent");
        assert_eq!(bad(created.clone()), "WrongType");
        created["reason"] = Value::Null;
        created["released"] = json!(true);
        assert_eq!(bad(created.clone()), "WrongType");
        created["released"] = Value::Null;
        created["source"] = json!("hr-system");
        assert_eq!(bad(created.clone()), "InvalidSource");
        created["source"] = json!("feed:workday");
        created["occurredAt"] = json!("last tuesday");
        assert_eq!(bad(created), "InvalidTimestamp");
    }

    #[test]
    fn sub_hint_reads_the_sub_of_invalid_messages_where_it_can() {
        let unknown =
            json!({"version": 1, "type": "user.frozen", "user": {"sub": SUB}}).to_string();
        assert!(parse_body(&unknown).is_err());
        assert_eq!(
            sub_hint(&unknown).map(|u| u.to_string()),
            Some(SUB.to_owned())
        );
        let sns = json!({"Type": "Notification", "Message": unknown}).to_string();
        assert_eq!(sub_hint(&sns).map(|u| u.to_string()), Some(SUB.to_owned()));
        assert_eq!(sub_hint("{oops"), None);
        assert_eq!(
            sub_hint(&json!({"user": {"sub": "EMP-1"}}).to_string()),
            None
        );
    }

    #[test]
    fn an_unsupported_version_is_quoted_short() {
        let huge = json!({"version": "9".repeat(10_000), "type": "user.created"}).to_string();
        match parse_body(&huge) {
            Err(InputError::UnsupportedVersion(v)) => assert_eq!(v.chars().count(), 64),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_eventbridge_envelope_without_detail_names_the_field() {
        let eb = json!({"version": "0", "id": "x", "detail-type": "user.updated", "source": "hr",
                        "account": "123456789012", "time": "2026-11-20T10:00:00Z"});
        assert_eq!(
            parse_body(&eb.to_string()),
            Err(InputError::MissingField("detail"))
        );
    }

    #[test]
    fn missing_display_name_is_named() {
        let m = json!({"version": 1, "type": "user.created", "user": {"sub": SUB}});
        assert_eq!(
            parse_body(&m.to_string()),
            Err(InputError::MissingField("user.displayName"))
        );
    }

    /// A profile of the user `SUB` with this name and no metadata.
    fn named(name: &str) -> UserProfile {
        UserProfile {
            id: UserId::parse(SUB).unwrap(),
            name: DisplayName::parse(name).unwrap(),
            metadata: None,
        }
    }

    #[test]
    fn hand_off_message_round_trips_through_the_parser() {
        let profile = named("Ada");
        let origin = Origin::from(Source::pool(), Some(At(0)));
        let text = provision_message(&profile, "signup-x", &origin);
        let m = parse_body(&text).unwrap();
        assert_eq!(m.event, IdentityEvent::Provision(profile));
        assert_eq!(m.event_id.as_deref(), Some("signup-x"));
        assert_eq!(m.origin, origin);
        assert!(text.contains("\"occurredAt\":\"1970-01-01T00:00:00.000Z\""));
    }

    #[test]
    fn every_event_round_trips_through_the_parser() {
        let id = UserId::parse(SUB).unwrap();
        let with_metadata = UserProfile {
            id: id.clone(),
            name: DisplayName::parse("Ada").unwrap(),
            metadata: Some(Metadata::parse("{\"d\":1}").unwrap()),
        };
        for event in [
            IdentityEvent::Update(with_metadata.clone()),
            IdentityEvent::Provision(UserProfile {
                metadata: None,
                ..with_metadata
            }),
            IdentityEvent::Deprovision(id),
        ] {
            let deletion = matches!(event, IdentityEvent::Deprovision(_));
            let origin = Origin {
                absent: deletion,
                released: deletion,
                ..Origin::from(Source::ldap(), Some(At(1_234)))
            };
            let text = event_message(&event, "reconcile-1-d", &origin);
            let parsed = parse_body(&text).unwrap();
            assert_eq!(parsed.event, event);
            assert_eq!(parsed.event_id.as_deref(), Some("reconcile-1-d"));
            assert_eq!(parsed.origin, origin);
        }
    }

    #[test]
    fn hand_off_message_is_a_body_sqs_accepts() {
        // Found by tests/fuzz.rs: a name with U+FFFE went into the body raw,
        // and SQS refuses such a body, so the hand-off could never succeed.
        let profile = named("a\u{fffe}b\u{ffff}");
        let text = provision_message(&profile, "e", &Origin::from(Source::pool(), None));
        assert!(text.chars().all(crate::queue::is_sqs_char), "{text:?}");
        assert_eq!(
            parse_body(&text).unwrap().event,
            IdentityEvent::Provision(profile)
        );
    }
}
