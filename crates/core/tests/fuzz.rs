//! Property tests ("fuzzing") over everything that reaches the handlers from
//! outside: SQS bodies and their SNS / EventBridge envelopes, Cognito trigger
//! events, and the validated identity types. Each property holds for every
//! input, not just the examples in the unit tests:
//!
//! - nothing panics;
//! - malformed input is refused as a permanent error that names its reason
//!   (an [`InputError`] with a known code and a non-empty message), never as a
//!   retry;
//! - valid input is accepted, and means exactly what was generated;
//! - whatever is accepted satisfies Chime's documented constraints
//!   (docs/ARCHITECTURE.md, "Identity"), and whatever goes to SQS satisfies SQS's.
//!
//! Expected results come from small reference models written here from the
//! spec (docs/ARCHITECTURE.md: "Identity", "Cognito triggers", "IdP messages", "SQS";
//! and the schema in docs/SCHEMA.md), not from the code under test.
//!
//! # Running
//!
//! The test command runs 256 cases per property (a few seconds in debug):
//!
//! ```text
//! cargo test -p chime-sync-core --test fuzz
//! ```
//!
//! `PROPTEST_CASES` sets the case count of every property; the one built from
//! 100 KB strings runs a sixteenth of it. The long run (recorded in
//! `docs/fuzz-results.md`):
//!
//! ```text
//! PROPTEST_CASES=100000 cargo test --release -p chime-sync-core --test fuzz
//! ```
//!
//! A failure prints the shrunk input and the seed; keep it as a unit test
//! (see the `regressions` module at the end). Regression files are not
//! written (`failure_persistence: None`), so a run leaves the tree clean.

use std::collections::{BTreeMap, HashMap, HashSet};

use chime_sync_core::directory::{Applied, Directory};
use chime_sync_core::error::{DirectoryError, ErrorCode, InputError, QueueError};
use chime_sync_core::handlers::idp_sync::{
    self, CODE_ATTRIBUTE, IdpSync, MessageOutcome, REASON_ATTRIBUTE, SOURCE_MESSAGE_ATTRIBUTE,
    SqsEvent,
};
use chime_sync_core::handlers::post_confirmation::{
    self, ConfirmationError, ConfirmationOutcome, PostConfirmation,
};
use chime_sync_core::handlers::pre_signup::{self, SignUpDecision, SignUpPolicy, SignUpRejected};
use chime_sync_core::identity::{AppInstanceArn, UserId};
use chime_sync_core::ledger::memory::InMemoryLedger;
use chime_sync_core::memory::{InMemoryDirectory, InMemoryQueue};
use chime_sync_core::profile::{
    DisplayName, DisplayNamePolicy, Metadata, UserProfile, is_invisible, strip_invisible,
};
use chime_sync_core::schema::{Envelope, IdentityEvent, IdpMessage, parse_body, sub_hint};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::{TestCaseError, TestRunner};
use serde_json::{Map, Value, json};
use unicode_properties::UnicodeEmoji;

// ---------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------

/// `PROPTEST_CASES` (default 256) cases; no regression files.
fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// For the property over 100 KB inputs: a sixteenth of the cases (at least 8).
fn config_huge() -> ProptestConfig {
    let base = config();
    ProptestConfig {
        cases: (base.cases / 16).max(8),
        ..base
    }
}

const ARN: &str =
    "arn:aws:chime:us-east-1:123456789012:app-instance/0e6c1b8f-2f4a-4c1e-9a55-8d1f0c2b3a4d";

/// Every code an [`InputError`] may carry.
const INPUT_CODES: &[&str] = &[
    "InvalidJson",
    "MissingField",
    "WrongType",
    "UnsupportedVersion",
    "UnknownType",
    "InvalidUserId",
    "InvalidDisplayName",
    "MetadataTooLong",
    "InvalidAppInstanceArn",
    "InvalidSource",
    "InvalidTimestamp",
];

thread_local! {
    /// One current-thread runtime per test thread, reused across cases.
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio runtime");
}

fn block_on<F: Future>(future: F) -> F::Output {
    RUNTIME.with(|rt| rt.block_on(future))
}

fn directory() -> InMemoryDirectory {
    InMemoryDirectory::new(AppInstanceArn::parse(ARN).expect("test ARN"))
}

// ---------------------------------------------------------------------------
// Reference models, written from the spec
// ---------------------------------------------------------------------------

/// The display-name rule (docs/ARCHITECTURE.md, "Identity"; profile.rs): invisible characters
/// go (but a joiner between two emoji and an emoji's presentation selector), runs of whitespace
/// and control characters become one space, the ends are trimmed, the result is cut to 100
/// UTF-16 units on a character boundary (a joiner or selector the cut parted from what it shapes
/// goes too, then trimmed again), and a result with nothing to show is no name.
fn model_name(raw: &str) -> Option<String> {
    let mut folded = String::new();
    let mut gap = false;
    for c in model_strip(raw).chars() {
        if c.is_whitespace() || c.is_control() {
            gap = !folded.is_empty();
            continue;
        }
        if gap {
            folded.push(' ');
            gap = false;
        }
        folded.push(c);
    }
    let mut units = 0;
    let mut cut = String::new();
    for c in folded.chars() {
        units += c.len_utf16();
        if units > 100 {
            break;
        }
        cut.push(c);
    }
    let cut = model_strip(&cut);
    let cut = cut.trim_end();
    // Something must show: not only joiners, selectors or blanks.
    let shows = |c: char| c != ' ' && c != '\u{2800}' && !is_invisible(c);
    cut.chars().any(shows).then(|| cut.to_owned())
}

/// `raw` without invisible characters (`Cf` and default-ignorable), but for
/// a joiner after an emoji (or its U+FE0F) when an emoji follows, and a
/// presentation selector after an emoji or between a keycap base and U+20E3.
fn model_strip(raw: &str) -> String {
    let emoji = |c: char| !c.is_ascii() && c.is_emoji_char();
    let chars: Vec<char> = raw.chars().collect();
    let mut out: Vec<char> = Vec::new();
    for (i, &c) in chars.iter().enumerate() {
        let (before, after) = (out.last().copied(), chars.get(i + 1).copied());
        let keep = !is_invisible(c)
            || match c {
                '\u{200d}' => {
                    before.is_some_and(|b| emoji(b) || b == '\u{fe0f}') && after.is_some_and(emoji)
                }
                '\u{fe0e}' | '\u{fe0f}' => {
                    before.is_some_and(emoji)
                        || (before.is_some_and(|b| "0123456789#*".contains(b))
                            && after == Some('\u{20e3}'))
                }
                _ => false,
            };
        if keep {
            out.push(c);
        }
    }
    out.into_iter().collect()
}

/// Java's `\s` (Chime validates with Java regexes, without UNICODE_CHARACTER_CLASS).
fn java_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\u{b}' | '\u{c}' | '\r')
}

/// Characters Java's `.` does not match (line terminators).
fn java_line_terminator(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// Chime `Name`: 1–100 characters (UTF-16 units), pattern `.*\S.*`.
/// Ours are stricter still: folded, trimmed, free of control characters.
fn check_chime_name(name: &str) -> Result<(), TestCaseError> {
    let units = name.encode_utf16().count();
    prop_assert!((1..=100).contains(&units), "name of {} units", units);
    prop_assert!(name.chars().any(|c| !java_space(c)), "no visible char");
    prop_assert!(!name.chars().any(java_line_terminator), "line terminator");
    prop_assert!(!name.chars().any(char::is_control), "control char");
    prop_assert_eq!(name.trim(), name, "untrimmed");
    prop_assert!(
        !name.contains("  ") && !name.chars().any(|c| c.is_whitespace() && c != ' '),
        "unfolded whitespace in {:?}",
        name
    );
    Ok(())
}

/// A Cognito sub: a UUID, any case (docs/ARCHITECTURE.md, "Identity").
fn model_is_sub(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// Chime `AppInstanceUserId`: 1–64 of `[A-Za-z0-9]([A-Za-z0-9:\-_.@]{0,62}[A-Za-z0-9])?`.
fn chime_user_id_ok(s: &str) -> bool {
    let edge = |b: u8| b.is_ascii_alphanumeric();
    let inner = |b: &u8| b.is_ascii_alphanumeric() || b":-_.@".contains(b);
    let b = s.as_bytes();
    match b {
        [] => false,
        [one] => edge(*one),
        [first, mid @ .., last] => {
            b.len() <= 64 && s.is_ascii() && edge(*first) && edge(*last) && mid.iter().all(inner)
        }
    }
}

/// Chime's ARN shape (`ChimeArn`): length 5–1600, pattern
/// `arn:[a-z0-9-\.]{1,63}:[a-z0-9-\.]{0,63}:[a-z0-9-\.]{0,63}:[a-z0-9-\.]{0,63}:[^/].{0,1023}`.
fn chime_arn_ok(s: &str) -> bool {
    let part = |p: &str, min: usize| {
        (min..=63).contains(&p.len())
            && p.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
    };
    let units = s.encode_utf16().count();
    let fields: Vec<&str> = s.splitn(6, ':').collect();
    let [arn, partition, service, region, account, resource] = fields[..] else {
        return false;
    };
    (5..=1600).contains(&units)
        && arn == "arn"
        && part(partition, 1)
        && part(service, 0)
        && part(region, 0)
        && part(account, 0)
        && !resource.starts_with('/')
        && (1..=1024).contains(&resource.chars().count())
        && !resource.chars().any(java_line_terminator)
}

/// Characters SQS accepts in a message body and in String attribute values:
/// `#x9 | #xA | #xD | #x20–#xD7FF | #xE000–#xFFFD | #x10000–#x10FFFF`.
fn sqs_char(c: char) -> bool {
    matches!(c, '\u{9}' | '\u{a}' | '\u{d}' | '\u{20}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}')
        || c >= '\u{10000}'
}

/// A FIFO group or deduplication id: 1–128 ASCII alphanumerics and punctuation.
fn sqs_id_ok(s: &str) -> bool {
    (1..=128).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_graphic())
}

fn check_input_error(e: &InputError) -> Result<(), TestCaseError> {
    prop_assert!(INPUT_CODES.contains(&e.code()), "unknown code {}", e.code());
    prop_assert!(!e.to_string().trim().is_empty(), "empty reason for {:?}", e);
    Ok(())
}

/// What a schema-v1 message means, in plain values.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Meaning {
    kind: &'static str,
    sub: String,
    name: Option<String>,
    /// `None`: no `metadata` field (keep what the user has).
    metadata: Option<String>,
    event_id: Option<String>,
}

fn meaning_of(m: &IdpMessage) -> (Envelope, Meaning) {
    let (kind, sub, profile) = match &m.event {
        IdentityEvent::Provision(p) => ("user.created", &p.id, Some(p)),
        IdentityEvent::Update(p) => ("user.updated", &p.id, Some(p)),
        IdentityEvent::Deprovision(id) => ("user.deleted", id, None),
    };
    let meaning = Meaning {
        kind,
        sub: sub.as_str().to_owned(),
        name: profile.map(|p| p.name.as_str().to_owned()),
        metadata: profile.and_then(|p| p.metadata.as_ref().map(|m| m.as_str().to_owned())),
        event_id: m.event_id.clone(),
    };
    (m.envelope, meaning)
}

/// Schema v1 (docs/ARCHITECTURE.md, "IdP messages"; schema.rs): `version` must be the integer 1 and is
/// read first; `type`, `user` and `user.sub` are required; `eventId` is an
/// optional string; created/updated need a `displayName` string that yields
/// a name; `metadata` is any JSON (strings as they are, the rest as compact
/// JSON, null as empty) of at most 1024 UTF-16 units. Then the origin
/// fields ([`model_origin`]). Returns the meaning or the error code.
fn model_message(message: &Value) -> Result<Meaning, &'static str> {
    let meaning = model_event(message)?;
    model_origin(message.as_object().ok_or("WrongType")?, meaning.kind)?;
    Ok(meaning)
}

/// The optional origin fields, in the order schema.rs reads them: `source`
/// (pool, feed, scim, ldap, feed:NAME or issuer:NAME, NAME 1-40 of
/// a-z 0-9 . _ -), `occurredAt` (RFC 3339, as the humantime library reads
/// it), `reason` ("absent", on user.deleted only, with `occurredAt`),
/// `released` (a boolean; true on user.deleted only).
fn model_origin(obj: &Map<String, Value>, kind: &str) -> Result<(), &'static str> {
    let text = |key: &str| match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err("WrongType"),
    };
    if let Some(source) = text("source")? {
        let named = |name: &str| {
            (1..=40).contains(&name.len())
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b".-_".contains(&b))
        };
        let ok = matches!(source, "pool" | "feed" | "scim" | "ldap")
            || source.strip_prefix("feed:").is_some_and(named)
            || source.strip_prefix("issuer:").is_some_and(named);
        if !ok {
            return Err("InvalidSource");
        }
    }
    let at = text("occurredAt")?;
    if at.is_some_and(|a| humantime::parse_rfc3339_weak(a).is_err()) {
        return Err("InvalidTimestamp");
    }
    let deleted = kind == "user.deleted";
    match text("reason")? {
        None => {}
        Some("absent") if deleted && at.is_none() => return Err("MissingField"),
        Some("absent") if deleted => {}
        Some(_) => return Err("WrongType"),
    }
    match obj.get("released") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => Ok(()),
        Some(Value::Bool(true)) if deleted => Ok(()),
        Some(_) => Err("WrongType"),
    }
}

/// The event part of a message: everything but the origin fields.
fn model_event(message: &Value) -> Result<Meaning, &'static str> {
    fn string<'a>(obj: &'a Map<String, Value>, key: &str) -> Result<&'a str, &'static str> {
        match obj.get(key) {
            None | Some(Value::Null) => Err("MissingField"),
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err("WrongType"),
        }
    }
    fn optional<'a>(
        obj: &'a Map<String, Value>,
        key: &str,
    ) -> Result<Option<&'a str>, &'static str> {
        match obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err("WrongType"),
        }
    }
    let obj = message.as_object().ok_or("WrongType")?;
    match obj.get("version") {
        None => return Err("MissingField"),
        Some(v) if v.as_u64() == Some(1) => {}
        Some(_) => return Err("UnsupportedVersion"),
    }
    let kind = string(obj, "type")?;
    let event_id = optional(obj, "eventId")?.map(str::to_owned);
    let user = match obj.get("user") {
        None | Some(Value::Null) => return Err("MissingField"),
        Some(Value::Object(u)) => u,
        Some(_) => return Err("WrongType"),
    };
    let sub = string(user, "sub")?;
    if !model_is_sub(sub) {
        return Err("InvalidUserId");
    }
    let sub = sub.to_ascii_lowercase();
    let kind = match kind {
        "user.deleted" => {
            return Ok(Meaning {
                kind: "user.deleted",
                sub,
                name: None,
                metadata: None,
                event_id,
            });
        }
        "user.created" => "user.created",
        "user.updated" => "user.updated",
        _ => return Err("UnknownType"),
    };
    let name = model_name(string(user, "displayName")?).ok_or("InvalidDisplayName")?;
    let metadata = match user.get("metadata") {
        None => None,
        Some(Value::Null) => Some(String::new()),
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => Some(other.to_string()),
    };
    if metadata
        .as_ref()
        .is_some_and(|m| m.encode_utf16().count() > 1024)
    {
        return Err("MetadataTooLong");
    }
    Ok(Meaning {
        kind,
        sub,
        name: Some(name),
        metadata,
        event_id,
    })
}

/// Whatever `parse_body` accepts is something Chime accepts.
fn check_accepted(m: &IdpMessage) -> Result<(), TestCaseError> {
    let (_, meaning) = meaning_of(m);
    prop_assert!(model_is_sub(&meaning.sub) && chime_user_id_ok(&meaning.sub));
    prop_assert_eq!(&meaning.sub, &meaning.sub.to_ascii_lowercase());
    if let Some(name) = &meaning.name {
        check_chime_name(name)?;
    }
    if let Some(metadata) = &meaning.metadata {
        prop_assert!(metadata.encode_utf16().count() <= 1024);
    }
    Ok(())
}

/// The one check every `parse_body` result must pass: a message Chime
/// accepts, or an [`InputError`] with a known code and a reason. `sub_hint`
/// only ever names a valid sub.
fn check_parse_result(body: &str) -> Result<(), TestCaseError> {
    match parse_body(body) {
        Ok(m) => check_accepted(&m)?,
        Err(e) => check_input_error(&e)?,
    }
    if let Some(hint) = sub_hint(body) {
        prop_assert!(model_is_sub(hint.as_str()));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------

const WHITESPACE: &[char] = &[
    ' ', ' ', '\t', '\n', '\r', '\u{b}', '\u{c}', '\u{85}', '\u{a0}', '\u{1680}', '\u{2000}',
    '\u{2007}', '\u{200a}', '\u{2028}', '\u{2029}', '\u{202f}', '\u{205f}', '\u{3000}',
];
const CONTROLS: &[char] = &[
    '\0', '\u{1}', '\u{7}', '\u{8}', '\u{1b}', '\u{1f}', '\u{7f}', '\u{80}', '\u{9f}',
];
const COMBINING: &[char] = &[
    '\u{300}',
    '\u{301}',
    '\u{308}',
    '\u{327}',
    '\u{20dd}',
    '\u{fe0f}',
    '\u{200d}',
    '\u{1f3fd}',
];
/// Right-to-left letters and the bidi controls (format characters, not controls).
const RTL: &[char] = &[
    '\u{5d0}', '\u{5e9}', '\u{627}', '\u{644}', '\u{200e}', '\u{200f}', '\u{202a}', '\u{202b}',
    '\u{202e}', '\u{2066}', '\u{2069}', '\u{61c}',
];
/// Characters outside the BMP: two UTF-16 units each.
const ASTRAL: &[char] = &[
    '😀',
    '👩',
    '𝔸',
    '𠜎',
    '\u{1f1fa}',
    '\u{e0041}',
    '\u{1fffe}',
    '\u{10ffff}',
];
const ODD: &[char] = &[
    '\u{200b}',
    '\u{feff}',
    '\u{fffd}',
    '\u{fffe}',
    '\u{ffff}',
    '\u{ad}',
    '"',
    '\\',
    '/',
    '@',
    '{',
    '}',
    '[',
    ']',
    ':',
    ',',
    '\'',
    '<',
    '&',
    '\u{fff9}',
    '\u{1d173}',
    '\u{e0001}',
    '\u{180b}',
    '\u{3164}',
    '\u{fe0e}',
    '\u{20e3}',
    '\u{600}',
];

/// A character, from a `u32`: the top six bits pick a class (weighted by how
/// many of the 64 values map to it), the rest pick within it. Cheap to
/// generate in debug builds (a `prop_oneof!` per character is ~100x slower),
/// and shrinks to `'a'`.
fn char_from(n: u32) -> char {
    let i = (n & 0x03ff_ffff) as usize;
    let pick = |set: &[char]| set[i % set.len()];
    let from = |base: u32, span: usize| char::from_u32(base + (i % span) as u32).unwrap_or('?');
    match n >> 26 {
        0..=19 => from('a' as u32, 26),
        20..=24 => from('A' as u32, 26),
        25..=31 => pick(WHITESPACE),
        32..=34 => pick(CONTROLS),
        35..=37 => pick(COMBINING),
        38..=40 => pick(RTL),
        41..=46 => pick(ASTRAL),
        47..=49 => pick(ODD),
        // Noncharacters: valid in Rust strings and in Chime names, refused by SQS.
        50..=51 => pick(&['\u{fffe}', '\u{ffff}']),
        52..=55 => from(0xc0, 0xc0),
        56..=59 => from(0x4e00, 0x1000),
        _ => char::from_u32((i % 0x11_0000) as u32).unwrap_or('\u{fffd}'),
    }
}

fn name_char() -> impl Strategy<Value = char> {
    any::<u32>().prop_map(char_from)
}

fn text(len: std::ops::Range<usize>) -> impl Strategy<Value = String> {
    vec(any::<u32>(), len).prop_map(|units| units.into_iter().map(char_from).collect())
}

/// Units of filler that land a name's 100-unit cut on different characters.
const FILLERS: &[&str] = &[
    "a",
    "é",
    "中",
    "😀",
    "e\u{301}",
    "ab ",
    "\u{5d0}",
    "a\u{200d}",
    "a\t\t",
    "👩\u{1f3fd}",
    "👨\u{200d}👩",
    "1\u{fe0f}\u{20e3}",
];

/// A name whose folded form reaches 94–104 UTF-16 units, then odd characters
/// exactly at the limit: astral pairs, combining marks, spaces, controls.
fn near_limit_name() -> impl Strategy<Value = String> {
    (
        text(0..3),
        select(FILLERS),
        94usize..=104,
        vec(name_char(), 0..6),
        text(0..12),
    )
        .prop_map(|(lead, filler, target, boundary, tail)| {
            let mut s = lead;
            // Units one more filler adds once folded ("ab " adds 3, "a\t\t" adds 2).
            let units_of = |s: &str| model_name(s).map_or(0, |n| n.encode_utf16().count());
            let step = (units_of(&filler.repeat(2)) - units_of(filler)).max(1);
            let mut units = 0;
            while units + step <= target {
                s.push_str(filler);
                units += step;
            }
            s.extend(boundary);
            s.push_str(&tail);
            s
        })
}

/// Any raw display name, valid or not.
fn raw_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => text(0..30),
        4 => near_limit_name(),
        1 => text(0..250),
        1 => select(&["", " ", "\u{0}", "\t\n", "\u{3000}\u{a0}", "\u{200b}", "\u{feff}",
                      "\u{200f}\u{200e}\u{202e}", "\u{202e}evoL adA", "\u{3164}", "❤\u{fe0f}"][..])
            .prop_map(str::to_owned),
    ]
}

/// A raw display name that holds at least one visible character, so that it
/// must be accepted.
fn valid_raw_name() -> impl Strategy<Value = String> {
    (raw_name(), prop::char::range('A', 'z'), any::<Index>()).prop_map(|(raw, c, at)| {
        let c = if c.is_alphanumeric() { c } else { 'x' };
        let mut chars: Vec<char> = raw.chars().collect();
        let at = at.index(chars.len() + 1);
        chars.insert(at, c);
        chars.into_iter().collect()
    })
}

/// A Cognito sub in any letter case.
fn sub() -> impl Strategy<Value = String> {
    (any::<u128>(), any::<u32>()).prop_map(|(n, case)| uuid_text(n, case))
}

fn uuid_text(n: u128, case: u32) -> String {
    let hex = format!("{n:032x}");
    let mut out = String::with_capacity(36);
    for (i, c) in hex.chars().enumerate() {
        if matches!(i, 8 | 12 | 16 | 20) {
            out.push('-');
        }
        if case >> (i % 32) & 1 == 1 {
            out.push(c.to_ascii_uppercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Strings that are almost, or not at all, subs.
fn not_quite_sub() -> impl Strategy<Value = String> {
    prop_oneof![
        (sub(), any::<Index>(), name_char()).prop_map(|(s, at, c)| {
            let mut chars: Vec<char> = s.chars().collect();
            let i = at.index(chars.len());
            chars[i] = c;
            chars.into_iter().collect()
        }),
        sub().prop_map(|s| s[1..].to_owned()),
        sub().prop_map(|s| format!("{s}0")),
        sub().prop_map(|s| s.replace('-', "")),
        sub().prop_map(|s| format!(" {s}")),
        sub().prop_map(|s| format!("{{{s}}}")),
        text(0..70),
        select(
            &[
                "",
                "a",
                "ada@example.com",
                "EMP-1",
                "6f1c2d3e-0b4a-4c5d-8e9f"
            ][..]
        )
        .prop_map(str::to_owned),
    ]
}

/// Keys for arbitrary JSON objects: mostly the ones our code reads.
const JSON_KEYS: &[&str] = &[
    "version",
    "type",
    "eventId",
    "occurredAt",
    "source",
    "reason",
    "released",
    "user",
    "sub",
    "displayName",
    "metadata",
    "Type",
    "Message",
    "detail",
    "detail-type",
    "triggerSource",
    "request",
    "userAttributes",
    "response",
    "autoConfirmUser",
    "email",
    "name",
];
/// Strings that mean something to our code.
const JSON_STRINGS: &[&str] = &[
    "Notification",
    "user.created",
    "user.updated",
    "user.deleted",
    "1",
    "6f1c2d3e-0b4a-4c5d-8e9f-a0b1c2d3e4f5",
    "PreSignUp_SignUp",
    "PostConfirmation_ConfirmSignUp",
    "{}",
    "{\"version\":1}",
];

/// Arbitrary JSON decoded from a stream of numbers (as the `arbitrary` crate
/// does): fast to generate, and shrinking the numbers simplifies the value
/// (an exhausted stream reads as zeros: `null`, empty arrays and objects).
struct JsonDecoder<'a>(std::slice::Iter<'a, u32>);

impl JsonDecoder<'_> {
    fn next(&mut self) -> u32 {
        self.0.next().copied().unwrap_or(0)
    }

    fn string(&mut self) -> String {
        let n = self.next();
        if n.is_multiple_of(3) {
            return JSON_STRINGS[(n as usize >> 2) % JSON_STRINGS.len()].to_owned();
        }
        (0..n % 17).map(|_| char_from(self.next())).collect()
    }

    fn value(&mut self, depth: u32) -> Value {
        let n = self.next();
        match n % 16 {
            1 => Value::Bool(n & 16 != 0),
            2 => Value::from(i64::from(n as i32 >> 4)),
            3 => Value::from(u64::from(n) << 32 | u64::from(self.next())),
            4 => {
                let bits = u64::from(n) << 32 | u64::from(self.next());
                serde_json::Number::from_f64(f64::from_bits(bits))
                    .map_or(Value::Null, Value::Number)
            }
            5 => Value::from([0i64, 1, 2, -1][(n as usize >> 4) % 4]),
            6..=8 => Value::String(self.string()),
            9..=11 if depth < 4 => Value::Array(
                (0..self.next() % 5)
                    .map(|_| self.value(depth + 1))
                    .collect(),
            ),
            12..=15 if depth < 4 => {
                let mut obj = Map::new();
                for _ in 0..self.next() % 6 {
                    let k = self.next();
                    let key = if k.is_multiple_of(4) {
                        (0..k % 9).map(|_| char_from(self.next())).collect()
                    } else {
                        JSON_KEYS[(k as usize >> 2) % JSON_KEYS.len()].to_owned()
                    };
                    let value = self.value(depth + 1);
                    obj.insert(key, value);
                }
                Value::Object(obj)
            }
            _ => Value::Null,
        }
    }
}

/// A JSON scalar.
fn json_leaf() -> impl Strategy<Value = Value> {
    vec(any::<u32>(), 1..18).prop_map(|n| JsonDecoder(n.iter()).value(4))
}

/// Arbitrary JSON, up to four levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    vec(any::<u32>(), 0..64).prop_map(|n| JsonDecoder(n.iter()).value(0))
}

/// A value of the wrong type for a string or object field.
fn wrong_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        Just(json!(1.0)),
        Just(json!(1e300)),
        Just(json!([])),
        vec(json_leaf(), 1..3).prop_map(Value::Array),
        Just(json!({})),
        json_value(),
        sub().prop_map(|s| json!({"sub": s})),
    ]
}

/// Metadata: absent, null, strings (some at and past 1024 units), any JSON.
fn metadata() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        3 => Just(None),
        1 => Just(Some(Value::Null)),
        3 => text(0..40).prop_map(|s| Some(Value::String(s))),
        1 => (select(&["m", "é", "😀", "\n"][..]), 1000usize..=1030).prop_map(|(unit, units)| {
            let n = units / unit.encode_utf16().count();
            Some(Value::String(unit.repeat(n)))
        }),
        2 => json_value().prop_map(Some),
    ]
}

/// A schema-v1 message the spec says is valid.
fn valid_message() -> impl Strategy<Value = Value> {
    let kind = select(&["user.created", "user.updated", "user.deleted"][..]);
    let event_id = prop_oneof![
        Just(None),
        Just(Some(Value::Null)),
        text(0..20).prop_map(|s| Some(Value::String(s)))
    ];
    let occurred = prop_oneof![
        Just(None),
        Just(Some(json!("2026-11-20T10:00:00Z"))),
        Just(Some(Value::Null))
    ];
    let small_metadata = metadata().prop_filter("metadata fits", |m| {
        m.as_ref().is_none_or(|v| {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            text.encode_utf16().count() <= 1024
        })
    });
    let extra_key = select(&["x-trace", "x-source", "x-Ünïcode", "x-"][..]).prop_map(str::to_owned);
    let extra = btree_map(extra_key, json_value(), 0..3);
    (
        kind,
        sub(),
        valid_raw_name(),
        small_metadata,
        event_id,
        occurred,
        extra,
        any::<bool>(),
    )
        .prop_map(
            |(kind, sub, name, metadata, event_id, occurred, extra, deleted_has_name)| {
                let mut user = Map::new();
                user.insert("sub".into(), json!(sub));
                if kind != "user.deleted" || deleted_has_name {
                    user.insert("displayName".into(), json!(name));
                    if let Some(m) = metadata {
                        user.insert("metadata".into(), m);
                    }
                }
                let mut msg = Map::new();
                msg.insert("version".into(), json!(1));
                msg.insert("type".into(), json!(kind));
                if let Some(e) = event_id {
                    msg.insert("eventId".into(), e);
                }
                if let Some(o) = occurred {
                    msg.insert("occurredAt".into(), o);
                }
                msg.insert("user".into(), Value::Object(user));
                for (k, v) in extra {
                    msg.insert(k, v);
                }
                Value::Object(msg)
            },
        )
}

/// A field of a message, by path.
const FIELDS: &[&[&str]] = &[
    &["version"],
    &["type"],
    &["eventId"],
    &["occurredAt"],
    &["user"],
    &["user", "sub"],
    &["user", "displayName"],
    &["user", "metadata"],
];

/// A valid message with one field replaced by a wrong-typed or odd value, or removed.
fn mutated_message() -> impl Strategy<Value = Value> {
    let replacement = prop_oneof![
        4 => wrong_value().prop_map(Some),
        2 => raw_name().prop_map(|s| Some(Value::String(s))),
        1 => not_quite_sub().prop_map(|s| Some(Value::String(s))),
        1 => select(&[
            "user.frozen", "USER.CREATED", "user.created ", "user.\u{0}", "\u{ffff}", "\u{1b}[31m",
        ][..])
            .prop_map(|s| Some(Value::String(s.to_owned()))),
        1 => Just(None),
    ];
    (valid_message(), select(FIELDS), replacement).prop_map(|(mut msg, path, value)| {
        set_field(&mut msg, path, value);
        msg
    })
}

fn set_field(msg: &mut Value, path: &[&str], value: Option<Value>) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut at = msg;
    for p in parents {
        match at.get_mut(*p) {
            Some(next) => at = next,
            None => return,
        }
    }
    if let Value::Object(obj) = at {
        match value {
            Some(v) => {
                obj.insert((*last).to_owned(), v);
            }
            None => {
                obj.remove(*last);
            }
        }
    }
}

/// How a message body is wrapped.
#[derive(Debug, Clone)]
enum Wrap {
    Raw {
        pretty: bool,
    },
    Sns,
    EventBridge,
    /// `detail` as a JSON text (double-encoded).
    EventBridgeString,
    /// SNS `Message` holding a JSON string that holds the message.
    SnsDoubleEncoded,
    EventBridgeDoubleEncoded,
    SnsWrongType(Value),
    EventBridgeWrongType(Value),
    SnsTruncated(Index),
    EventBridgeTruncated(Index),
    /// Not a notification: read as a raw message, which has no `version`.
    SnsOtherType,
    /// No `detail-type`: read as a raw message whose `version` is `"0"`.
    EventBridgeWithoutDetailType,
    /// `detail-type` but no `detail`: the missing field is named.
    EventBridgeWithoutDetail,
}

fn wrap() -> impl Strategy<Value = Wrap> {
    prop_oneof![
        3 => any::<bool>().prop_map(|pretty| Wrap::Raw { pretty }),
        3 => Just(Wrap::Sns),
        2 => Just(Wrap::EventBridge),
        2 => Just(Wrap::EventBridgeString),
        1 => Just(Wrap::SnsDoubleEncoded),
        1 => Just(Wrap::EventBridgeDoubleEncoded),
        1 => wrong_value()
            .prop_filter("not a string", |v| !v.is_string())
            .prop_map(Wrap::SnsWrongType),
        1 => wrong_value()
            .prop_filter("neither string nor object", |v| !v.is_string() && !v.is_object())
            .prop_map(Wrap::EventBridgeWrongType),
        1 => any::<Index>().prop_map(Wrap::SnsTruncated),
        1 => any::<Index>().prop_map(Wrap::EventBridgeTruncated),
        1 => Just(Wrap::SnsOtherType),
        1 => Just(Wrap::EventBridgeWithoutDetailType),
        1 => Just(Wrap::EventBridgeWithoutDetail),
    ]
}

fn sns(message: Value) -> Value {
    json!({"Type": "Notification", "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
           "TopicArn": "arn:aws:sns:us-east-1:123456789012:idp", "Subject": null,
           "Message": message, "Timestamp": "2026-11-20T10:00:00.000Z",
           "SignatureVersion": "1", "Signature": "c2ln",
           "SigningCertURL": "https://sns.us-east-1.amazonaws.com/x.pem",
           "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe"})
}

fn eventbridge(detail: Value) -> Value {
    json!({"version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
           "detail-type": "user.updated", "source": "hr.directory", "account": "123456789012",
           "time": "2026-11-20T10:00:00Z",
           "region": "us-east-1", "resources": [], "detail": detail})
}

/// A proper prefix of `text`, cut on a character boundary.
fn proper_prefix<'a>(text: &'a str, at: &Index) -> &'a str {
    let mut cut = at.index(text.len().max(1));
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    &text[..cut]
}

type Expect = Result<(Envelope, Meaning), &'static str>;

/// The body for a message in a wrapping, and what it must parse to.
fn wrapped(message: &Value, wrap: &Wrap) -> (String, Expect) {
    let text = message.to_string();
    // The model reads the message as the parser will: after a trip through JSON text.
    let model = || model_message(&serde_json::from_str(&text).expect("round trip"));
    let as_json_string = |s: &str| Value::String(Value::String(s.to_owned()).to_string());
    match wrap {
        Wrap::Raw { pretty } => {
            let body = if *pretty {
                serde_json::to_string_pretty(message).expect("serialise")
            } else {
                text.clone()
            };
            (body, model().map(|m| (Envelope::Raw, m)))
        }
        Wrap::Sns => (
            sns(Value::String(text.clone())).to_string(),
            model().map(|m| (Envelope::Sns, m)),
        ),
        Wrap::EventBridge => (
            eventbridge(message.clone()).to_string(),
            model().map(|m| (Envelope::EventBridge, m)),
        ),
        Wrap::EventBridgeString => (
            eventbridge(Value::String(text.clone())).to_string(),
            model().map(|m| (Envelope::EventBridge, m)),
        ),
        Wrap::SnsDoubleEncoded => (sns(as_json_string(&text)).to_string(), Err("WrongType")),
        Wrap::EventBridgeDoubleEncoded => (
            eventbridge(as_json_string(&text)).to_string(),
            Err("WrongType"),
        ),
        Wrap::SnsWrongType(v) => (sns(v.clone()).to_string(), Err("WrongType")),
        Wrap::EventBridgeWrongType(v) => (eventbridge(v.clone()).to_string(), Err("WrongType")),
        Wrap::SnsTruncated(at) => (
            sns(json!(proper_prefix(&text, at))).to_string(),
            Err("InvalidJson"),
        ),
        Wrap::EventBridgeTruncated(at) => (
            eventbridge(json!(proper_prefix(&text, at))).to_string(),
            Err("InvalidJson"),
        ),
        Wrap::SnsOtherType => {
            let mut envelope = sns(Value::String(text.clone()));
            envelope["Type"] = json!("SubscriptionConfirmation");
            (envelope.to_string(), Err("MissingField"))
        }
        Wrap::EventBridgeWithoutDetailType => {
            let mut envelope = eventbridge(message.clone());
            if let Some(o) = envelope.as_object_mut() {
                o.remove("detail-type");
            }
            (envelope.to_string(), Err("UnsupportedVersion"))
        }
        Wrap::EventBridgeWithoutDetail => {
            let mut envelope = eventbridge(message.clone());
            if let Some(o) = envelope.as_object_mut() {
                o.remove("detail");
            }
            (envelope.to_string(), Err("MissingField"))
        }
    }
}

/// `parse_body(body)` gives exactly `expect`, and passes the general checks.
fn check_parse_exact(body: &str, expect: &Expect) -> Result<(), TestCaseError> {
    check_parse_result(body)?;
    match (parse_body(body), expect) {
        (Ok(m), Ok(want)) => prop_assert_eq!(&meaning_of(&m), want),
        (Err(e), Err(code)) => prop_assert_eq!(e.code(), *code, "{}", e),
        (got, want) => prop_assert!(false, "got {:?}, want {:?}", got, want),
    }
    Ok(())
}

/// JSON-looking token soup, to get past the first byte of the parser.
fn json_soup() -> impl Strategy<Value = String> {
    const TOKENS: &[&str] = &[
        "{",
        "}",
        "[",
        "]",
        ":",
        ",",
        " ",
        "\n",
        "\"version\"",
        "1",
        "1.0",
        "-0",
        "1e999",
        "2",
        "\"type\"",
        "\"user.created\"",
        "\"user.deleted\"",
        "\"user\"",
        "\"sub\"",
        "\"6f1c2d3e-0b4a-4c5d-8e9f-a0b1c2d3e4f5\"",
        "\"displayName\"",
        "\"metadata\"",
        "\"Type\"",
        "\"Notification\"",
        "\"Message\"",
        "\"detail\"",
        "\"detail-type\"",
        "null",
        "true",
        "\"\\u0000\"",
        "\"\\ud800\"",
        "\"\\udc00\\ud800\"",
        "\"\\\"",
        "\"x\"",
        "\"\\\\\"",
        "\u{feff}",
        "\"{\\\"version\\\":1}\"",
        "\"\u{1}\"",
    ];
    vec(select(TOKENS), 0..40).prop_map(|t| t.concat())
}

// ---------------------------------------------------------------------------
// parse_body
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    /// Arbitrary bytes (as the lossy UTF-8 a Lambda would see) never panic.
    #[test]
    fn parse_body_survives_arbitrary_bytes(bytes in vec(any::<u8>(), 0..300)) {
        check_parse_result(&String::from_utf8_lossy(&bytes))?;
    }

    #[test]
    fn parse_body_survives_arbitrary_strings(s in any::<String>()) {
        check_parse_result(&s)?;
    }

    #[test]
    fn parse_body_survives_json_soup(s in json_soup()) {
        check_parse_result(&s)?;
    }

    /// Arbitrary JSON, bare and inside both envelopes.
    #[test]
    fn parse_body_survives_arbitrary_json(v in json_value()) {
        check_parse_result(&v.to_string())?;
        check_parse_result(&sns(Value::String(v.to_string())).to_string())?;
        check_parse_result(&sns(v.clone()).to_string())?;
        check_parse_result(&eventbridge(v.clone()).to_string())?;
        check_parse_result(&eventbridge(Value::String(v.to_string())).to_string())?;
    }

    /// Valid messages, in every envelope, mean exactly what was generated.
    #[test]
    fn valid_messages_parse_to_what_was_sent(msg in valid_message(), wrap in wrap()) {
        let text = msg.to_string();
        prop_assert!(model_message(&serde_json::from_str(&text).expect("json")).is_ok(),
            "generator made an invalid message: {}", text);
        let (body, expect) = wrapped(&msg, &wrap);
        check_parse_exact(&body, &expect)?;
        let unwrappable = matches!(
            wrap,
            Wrap::Raw { .. } | Wrap::Sns | Wrap::EventBridge | Wrap::EventBridgeString
        );
        if unwrappable {
            prop_assert!(expect.is_ok() && parse_body(&body).is_ok());
        }
    }

    /// One field wrong-typed, odd or missing: the error the spec names, or
    /// (where the field does not matter or the value is still valid) acceptance.
    #[test]
    fn mutated_messages_are_classified(msg in mutated_message(), wrap in wrap()) {
        let (body, expect) = wrapped(&msg, &wrap);
        check_parse_exact(&body, &expect)?;
    }

    /// Every proper prefix of a valid body — raw, SNS or EventBridge, cut at
    /// any byte — is invalid JSON. (Messages up to 700 bytes: the check
    /// parses every prefix, so its cost grows with the square of the size.)
    #[test]
    fn truncated_bodies_are_invalid_json(
        msg in valid_message().prop_filter("short", |m| m.to_string().len() <= 700),
        wrap in wrap(),
    ) {
        let (body, _) = wrapped(&msg, &wrap);
        let bytes = body.as_bytes();
        for cut in 0..bytes.len() {
            let prefix = String::from_utf8_lossy(&bytes[..cut]);
            match parse_body(&prefix) {
                Err(InputError::InvalidJson(reason)) => prop_assert!(!reason.is_empty()),
                other => prop_assert!(false, "prefix {:?} gave {:?}", prefix, other),
            }
        }
    }
}

/// One 100 KB field in an otherwise valid message.
fn huge_message() -> impl Strategy<Value = Value> {
    let filler = select(
        &[
            "a",
            "é ",
            "😀",
            "\u{5d0}\u{301}",
            " ",
            "\u{0}",
            "{\"k\":[1,",
            "\\\"",
        ][..],
    );
    (
        valid_message(),
        select(FIELDS),
        filler,
        100_000usize..=120_000,
        any::<bool>(),
    )
        .prop_map(|(mut msg, path, filler, bytes, as_extra)| {
            let huge = Value::String(filler.repeat(bytes / filler.len()));
            if as_extra {
                set_field(&mut msg, &["user", "x-huge"], Some(huge));
            } else {
                set_field(&mut msg, path, Some(huge));
            }
            msg
        })
}

/// 100 KB names, metadata, types, ids, versions: classified as the spec says.
/// A plain test with its own runner: the `proptest!` macro re-reads
/// `PROPTEST_CASES` over the config it is given, which would undo the
/// reduced count.
#[test]
fn huge_fields_are_classified() {
    let mut runner = TestRunner::new(config_huge());
    let result = runner.run(&(huge_message(), wrap()), |(msg, wrap)| {
        let (body, expect) = wrapped(&msg, &wrap);
        check_parse_exact(&body, &expect)
    });
    if let Err(e) = result {
        panic!("{e}\n{runner}");
    }
}

// ---------------------------------------------------------------------------
// Identity types
// ---------------------------------------------------------------------------

fn arn_candidate() -> impl Strategy<Value = String> {
    let partition = prop_oneof![
        4 => select(&["aws", "aws-cn", "aws-us-gov", "aws-iso-b"][..]).prop_map(str::to_owned),
        1 => text(0..6).prop_map(|s| format!("aws{s}")),
        1 => text(0..6),
    ];
    let service = prop_oneof![4 => Just("chime".to_owned()), 1 => text(0..6)];
    let region = prop_oneof![
        4 => select(&["us-east-1", "eu-central-1", "ap-southeast-2"][..]).prop_map(str::to_owned),
        1 => "[a-z0-9-]{60,70}",
        1 => text(0..12),
    ];
    let account = prop_oneof![4 => "[0-9]{12}", 1 => "[0-9]{10,14}", 1 => text(0..14)];
    let id = prop_oneof![
        4 => sub(),
        1 => "[a-zA-Z0-9-]{900,1100}",
        1 => text(0..20),
    ];
    let resource = prop_oneof![
        6 => id.prop_map(|id| format!("app-instance/{id}")),
        1 => text(0..30),
    ];
    let space = prop_oneof![
        4 => Just(String::new()),
        1 => vec(select(WHITESPACE), 0..3).prop_map(String::from_iter),
    ];
    prop_oneof![
        6 => (space.clone(), partition, service, region, account, resource, space)
            .prop_map(|(a, p, s, r, n, res, b)| format!("{a}arn:{p}:{s}:{r}:{n}:{res}{b}")),
        1 => text(0..80),
        1 => vec(select(&["arn", ":", "aws", "chime", "app-instance/", "/", "1"][..]), 0..12)
            .prop_map(|t| t.concat()),
    ]
}

proptest! {
    #![proptest_config(config())]

    /// A sub is accepted exactly when it is a UUID, folded to lower case, and
    /// is then a valid Chime AppInstanceUserId and ClientRequestToken source.
    #[test]
    fn user_ids_are_subs_and_valid_for_chime(
        raw in prop_oneof![sub(), not_quite_sub(), any::<String>()],
    ) {
        match UserId::parse(&raw) {
            Ok(id) => {
                prop_assert!(model_is_sub(&raw), "accepted {:?}", raw);
                prop_assert_eq!(id.as_str(), raw.to_ascii_lowercase());
                prop_assert!(chime_user_id_ok(id.as_str()));
                let token = id.client_request_token();
                prop_assert!((2..=64).contains(&token.len()));
                let token_char = |b: u8| b.is_ascii_alphanumeric() || b"-_".contains(&b);
                prop_assert!(token.bytes().all(token_char));
                prop_assert_eq!(UserId::parse(id.as_str()), Ok(id.clone()));
            }
            Err(e) => {
                prop_assert!(!model_is_sub(&raw), "refused {:?}: {}", raw, e);
                prop_assert_eq!(e.code(), "InvalidUserId");
                check_input_error(&e)?;
            }
        }
    }

    /// The display-name rule, for names of every kind, at and around the limit.
    #[test]
    fn display_names_follow_the_rule(raw in prop_oneof![raw_name(), any::<String>()]) {
        match (DisplayName::parse(&raw), model_name(&raw)) {
            (Ok(name), Some(want)) => {
                check_chime_name(name.as_str())?;
                prop_assert_eq!(name.as_str(), want.as_str());
                // Prefix-compatible: the name starts the folded input, and is
                // all of it whenever that fits.
                let visible = strip_invisible(&raw);
                let folded = visible
                    .split(|c: char| c.is_whitespace() || c.is_control())
                    .filter(|w| !w.is_empty())
                    .collect::<Vec<_>>()
                    .join(" ");
                prop_assert!(folded.starts_with(name.as_str()));
                if folded.encode_utf16().count() <= 100 {
                    prop_assert_eq!(name.as_str(), folded.as_str());
                } else {
                    // Maximal: the next visible character would not have fitted (with the
                    // joiner or selector before it, which the cut dropped).
                    let rest = folded[name.as_str().len()..].trim_start();
                    let mut next = 0;
                    for c in rest.chars() {
                        next += c.len_utf16();
                        if !is_invisible(c) {
                            break;
                        }
                    }
                    let gap = folded.len() - name.as_str().len() - rest.len();
                    prop_assert!(name.as_str().encode_utf16().count() + gap + next > 100);
                }
                // Idempotent: a name is its own display name.
                prop_assert_eq!(DisplayName::parse(name.as_str()), Ok(name.clone()));
            }
            (Err(e), None) => {
                prop_assert_eq!(e.code(), "InvalidDisplayName");
                check_input_error(&e)?;
            }
            (got, want) => prop_assert!(false, "{:?}: got {:?}, want {:?}", raw, got, want),
        }
    }

    /// Metadata: at most 1024 UTF-16 units, kept exactly.
    #[test]
    fn metadata_is_at_most_1024_units(raw in prop_oneof![
        text(0..100),
        (select(&["m", "é", "😀", "\u{0}"][..]), 1000usize..=1030)
            .prop_map(|(unit, units)| unit.repeat(units / unit.encode_utf16().count())),
        any::<String>(),
    ], value in json_value()) {
        let units = raw.encode_utf16().count();
        match Metadata::parse(&raw) {
            Ok(m) => {
                prop_assert!(units <= 1024);
                prop_assert_eq!(m.as_str(), raw.as_str());
            }
            Err(e) => {
                prop_assert_eq!(e, InputError::MetadataTooLong(units));
                prop_assert!(units > 1024);
            }
        }
        match Metadata::from_json(&value) {
            Ok(m) => prop_assert!(m.as_str().encode_utf16().count() <= 1024),
            Err(e) => prop_assert_eq!(e.code(), "MetadataTooLong"),
        }
    }

    /// An accepted AppInstance ARN is one Chime accepts, and so is every user
    /// ARN built from it.
    #[test]
    fn app_instance_arns_are_valid_for_chime(raw in arn_candidate(), sub in sub()) {
        match AppInstanceArn::parse(&raw) {
            Ok(arn) => {
                prop_assert_eq!(arn.as_str(), raw.trim());
                prop_assert!(chime_arn_ok(arn.as_str()), "accepted {:?}", arn.as_str());
                prop_assert!(arn.as_str().split(':').nth(2) == Some("chime"));
                let resource = arn.as_str().split(':').nth(5);
                prop_assert!(resource.is_some_and(|r| r.starts_with("app-instance/")));
                prop_assert_eq!(Some(arn.region()), arn.as_str().split(':').nth(3));
                let id = UserId::parse(&sub).expect("generated sub");
                let user_arn = arn.user_arn(&id);
                prop_assert!(chime_arn_ok(&user_arn), "user ARN {:?}", user_arn);
                prop_assert_eq!(arn.user_id_from_arn(&user_arn), Some(id));
            }
            Err(e) => {
                prop_assert_eq!(e.code(), "InvalidAppInstanceArn");
                check_input_error(&e)?;
            }
        }
    }
}

// ---------------------------------------------------------------------------
// idp-sync batches
// ---------------------------------------------------------------------------

/// A few users, so batches hold several messages per user.
fn pooled_sub() -> impl Strategy<Value = String> {
    (0u128..4, any::<u32>())
        .prop_map(|(n, case)| uuid_text(0x6f1c_2d3e_0b4a_4c5d_8e9f_a0b1_c2d3_e400 + n, case))
}

fn pooled_message() -> impl Strategy<Value = Value> {
    (valid_message(), pooled_sub()).prop_map(|(mut msg, sub)| {
        set_field(&mut msg, &["user", "sub"], Some(json!(sub)));
        msg
    })
}

/// Bodies mixing valid and invalid messages.
fn batch_body() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        6 => (pooled_message(), wrap()).prop_map(|(m, w)| Some(wrapped(&m, &w).0)),
        2 => (pooled_message(), wrap(), select(FIELDS), wrong_value()).prop_map(
            |(mut m, w, path, v)| {
                set_field(&mut m, path, Some(v));
                Some(wrapped(&m, &w).0)
            }
        ),
        1 => (pooled_sub(), select(&["user.frozen", "x\u{1}y", "\u{ffff}", "\u{1b}[2J"][..]))
            .prop_map(|(s, t)| {
                Some(json!({"version": 1, "type": t, "user": {"sub": s}}).to_string())
            }),
        1 => (pooled_sub(), select(&["2", "\"\u{fffe}\"", "1.0", "null"][..])).prop_map(|(s, v)| {
            Some(format!(r#"{{"version": {v}, "type": "user.created", "user": {{"sub": "{s}"}}}}"#))
        }),
        1 => json_soup().prop_map(Some),
        1 => text(0..40).prop_map(Some),
        1 => (pooled_message(), any::<Index>()).prop_map(|(m, at)| {
            let t = m.to_string();
            Some(proper_prefix(&t, &at).to_owned())
        }),
        1 => Just(None),
    ]
}

#[derive(Debug, Clone)]
struct Record {
    message_id: Option<String>,
    group: Option<String>,
    body: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GroupMode {
    /// FIFO: every record has a MessageGroupId (mostly its sub).
    Fifo,
    /// Standard: none has one.
    Standard,
    /// Some have, some have not.
    Mixed,
}

fn record(mode: GroupMode) -> impl Strategy<Value = Record> {
    let id = prop_oneof![
        8 => Just(Some(String::new())), // filled in with a unique id below
        1 => select(&["dup-a", "dup-b"][..]).prop_map(|s| Some(s.to_owned())),
        1 => Just(None),
    ];
    let group = prop_oneof![
        3 => Just(GroupChoice::Sub),
        2 => select(&["g0", "g1", "g2"][..]).prop_map(|g| GroupChoice::Named(g.to_owned())),
        1 => text(1..10).prop_map(GroupChoice::Named),
    ];
    (id, group, batch_body(), any::<bool>()).prop_map(
        move |(message_id, group, body, has_group)| {
            let has_group = match mode {
                GroupMode::Fifo => true,
                GroupMode::Standard => false,
                GroupMode::Mixed => has_group,
            };
            let group = has_group.then(|| match group {
                GroupChoice::Sub => body
                    .as_deref()
                    .and_then(|b| parse_body(b).ok())
                    .map(|m| m.event.user_id().to_string())
                    .unwrap_or_else(|| "poison".to_owned()),
                GroupChoice::Named(g) => g,
            });
            Record {
                message_id,
                group,
                body,
            }
        },
    )
}

#[derive(Debug, Clone)]
enum GroupChoice {
    Sub,
    Named(String),
}

fn directory_error() -> impl Strategy<Value = DirectoryError> {
    prop_oneof![
        3 => Just(DirectoryError::Throttled("429".into())),
        2 => Just(DirectoryError::Unavailable("503".into())),
        1 => Just(DirectoryError::Timeout),
        1 => Just(DirectoryError::Transport("connection reset".into())),
        1 => Just(DirectoryError::AccessDenied("403".into())),
        1 => Just(DirectoryError::Rejected("400".into())),
        1 => Just(DirectoryError::LimitExceeded("users".into())),
    ]
}

#[derive(Debug, Clone)]
struct BatchCase {
    records: Vec<Record>,
    /// Users there before the batch: (pool index, name, metadata).
    existing: Vec<(u128, String, String)>,
    failures: Vec<DirectoryError>,
    dlq_failing: bool,
    concurrency: usize,
    deadline_passed: bool,
}

fn batch_case() -> impl Strategy<Value = BatchCase> {
    let mode = prop_oneof![
        Just(GroupMode::Fifo),
        Just(GroupMode::Standard),
        Just(GroupMode::Mixed)
    ];
    let existing = vec((0u128..4, valid_raw_name(), text(0..10)), 0..3);
    let failures = prop_oneof![2 => Just(Vec::new()), 3 => vec(directory_error(), 1..5)];
    (
        mode.prop_flat_map(|m| vec(record(m), 0..=12)),
        existing,
        failures,
        prop::bool::weighted(0.25),
        1usize..=4,
        prop::bool::weighted(0.1),
    )
        .prop_map(
            |(mut records, existing, failures, dlq_failing, concurrency, deadline_passed)| {
                for (i, r) in records.iter_mut().enumerate() {
                    if r.message_id.as_deref() == Some("") {
                        r.message_id = Some(format!("{i:08}-5b1a-4f2e-9c3d-message00000"));
                    }
                }
                BatchCase {
                    records,
                    existing,
                    failures,
                    dlq_failing,
                    concurrency,
                    deadline_passed,
                }
            },
        )
}

fn sqs_event(records: &[Record]) -> SqsEvent {
    let records: Vec<Value> = records
        .iter()
        .map(|r| {
            let mut attributes = json!({"ApproximateReceiveCount": "1", "SentTimestamp": "1"});
            if let Some(g) = &r.group {
                attributes["MessageGroupId"] = json!(g);
            }
            let mut record = json!({"attributes": attributes, "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:idp.fifo",
                "awsRegion": "us-east-1"});
            if let Some(id) = &r.message_id {
                record["messageId"] = json!(id);
            }
            if let Some(body) = &r.body {
                record["body"] = json!(body);
            }
            record
        })
        .collect();
    serde_json::from_value(json!({ "Records": records })).expect("SqsEvent")
}

const RETRYABLE_CODES: &[&str] = &[
    "Throttled",
    "Unavailable",
    "Timeout",
    "Transport",
    "AccessDenied",
];
const PERMANENT_DIRECTORY_CODES: &[&str] = &["Rejected", "LimitExceeded"];

/// The directory as a map: sub → (name, metadata).
type Users = BTreeMap<String, (String, String)>;

/// Apply one accepted message to the model and say what Chime would report
/// (docs/ARCHITECTURE.md, "IdP messages": create heals, update upserts, delete of a gone
/// user succeeds).
fn model_apply(users: &mut Users, m: &Meaning) -> Applied {
    match m.kind {
        "user.deleted" => match users.remove(&m.sub) {
            Some(_) => Applied::Deleted,
            None => Applied::AlreadyGone,
        },
        _ => {
            let name = m.name.clone().unwrap_or_default();
            match users.get_mut(&m.sub) {
                None => {
                    users.insert(
                        m.sub.clone(),
                        (name, m.metadata.clone().unwrap_or_default()),
                    );
                    Applied::Created
                }
                Some(have) => {
                    let metadata = m.metadata.clone().unwrap_or_else(|| have.1.clone());
                    if have.0 == name && have.1 == metadata {
                        Applied::AlreadyProvisioned
                    } else {
                        *have = (name, metadata);
                        Applied::Updated
                    }
                }
            }
        }
    }
}

fn check_batch(case: &BatchCase) -> Result<(), TestCaseError> {
    let event = sqs_event(&case.records);
    let mut deps = IdpSync::new(directory(), InMemoryQueue::new(), InMemoryLedger::new());
    deps.max_concurrent_groups = case.concurrency;
    let mut before = Users::new();
    block_on(async {
        for (n, name, metadata) in &case.existing {
            let id = UserId::parse(&uuid_text(0x6f1c_2d3e_0b4a_4c5d_8e9f_a0b1_c2d3_e400 + n, 0))
                .expect("pool sub");
            let profile = UserProfile {
                id: id.clone(),
                name: DisplayName::parse(name).expect("valid name"),
                metadata: Some(Metadata::parse(metadata).expect("short metadata")),
            };
            if deps.directory.create(&profile).await.is_ok() {
                before.insert(
                    id.to_string(),
                    (profile.name.as_str().to_owned(), metadata.clone()),
                );
            }
        }
    });
    deps.directory.fail_next(case.failures.clone());
    if case.dlq_failing {
        deps.dlq
            .set_failing(Some(QueueError::permanent("InvalidMessageContents")));
    }
    let report = block_on(async {
        let deadline = case.deadline_passed.then(tokio::time::Instant::now);
        idp_sync::handle(&event, &deps, deadline).await
    });

    // Exactly one report per record, in batch order.
    prop_assert_eq!(report.messages.len(), case.records.len());
    let real_ids: HashSet<&str> = case
        .records
        .iter()
        .filter_map(|r| r.message_id.as_deref())
        .collect();
    let mut placeholders = HashSet::new();
    for (r, m) in case.records.iter().zip(&report.messages) {
        match &r.message_id {
            Some(id) => prop_assert_eq!(&m.message_id, id),
            None => {
                // A record without an id cannot be reported on its own: its
                // placeholder is no id of the batch, so reporting it failed
                // makes Lambda retry the whole batch (docs/ARCHITECTURE.md, "SQS") — never
                // another message in its place.
                prop_assert!(!real_ids.contains(m.message_id.as_str()));
                placeholders.insert(m.message_id.as_str());
            }
        }
    }

    // The partial batch response lists only ids of this batch (or the
    // placeholder of an id-less record that failed), exactly the failures.
    let failures: Vec<String> = report
        .response()
        .batch_item_failures
        .into_iter()
        .map(|f| f.item_identifier)
        .collect();
    let failed: Vec<&str> = report
        .messages
        .iter()
        .filter(|m| m.outcome.is_failure())
        .map(|m| m.message_id.as_str())
        .collect();
    prop_assert_eq!(&failures, &failed);
    for id in &failures {
        prop_assert!(
            real_ids.contains(id.as_str()) || placeholders.contains(id.as_str()),
            "stray id {}",
            id
        );
    }

    // Per group (MessageGroupId, else the sub, else the message), once one
    // message fails every later one is blocked.
    let parsed: Vec<Result<IdpMessage, InputError>> = case
        .records
        .iter()
        .map(|r| parse_body(r.body.as_deref().unwrap_or("")))
        .collect();
    let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
    for (i, r) in case.records.iter().enumerate() {
        let body = r.body.as_deref().unwrap_or("");
        let key = r
            .group
            .clone()
            .or_else(|| match &parsed[i] {
                Ok(m) => Some(m.event.user_id().to_string()),
                Err(_) => sub_hint(body).map(|s| s.to_string()),
            })
            .unwrap_or_else(|| report.messages[i].message_id.clone());
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, members)) => members.push(i),
            None => groups.push((key, vec![i])),
        }
    }
    for (key, members) in &groups {
        let mut failed = false;
        for &i in members {
            let outcome = &report.messages[i].outcome;
            if failed {
                prop_assert_eq!(
                    outcome,
                    &MessageOutcome::Blocked,
                    "group {} message {}",
                    key,
                    i
                );
            }
            prop_assert!(
                failed || *outcome != MessageOutcome::Blocked,
                "blocked without cause"
            );
            failed |= outcome.is_failure();
        }
    }

    // Each message's outcome fits what it is and what was injected.
    let faults = !case.failures.is_empty() || case.deadline_passed;
    for (i, m) in report.messages.iter().enumerate() {
        match (&parsed[i], &m.outcome) {
            (_, MessageOutcome::Blocked) => {}
            (Err(e), MessageOutcome::DeadLettered { code }) => prop_assert_eq!(*code, e.code()),
            (Ok(msg), MessageOutcome::Applied(_)) => {
                prop_assert_eq!(m.sub.as_ref(), Some(msg.event.user_id()))
            }
            (Ok(_), MessageOutcome::Failed { code }) if RETRYABLE_CODES.contains(code) => {
                prop_assert!(faults)
            }
            (Ok(_), MessageOutcome::DeadLettered { code })
                if PERMANENT_DIRECTORY_CODES.contains(code) =>
            {
                prop_assert!(!case.failures.is_empty());
            }
            (
                _,
                MessageOutcome::Failed {
                    code: "DlqSendFailed",
                },
            ) => prop_assert!(case.dlq_failing),
            (p, o) => prop_assert!(false, "message {} ({:?}) ended {:?}", i, p, o),
        }
        // Valid input is accepted: without injected faults nothing fails.
        if !faults && !case.dlq_failing {
            prop_assert!(
                !m.outcome.is_failure(),
                "message {} failed with no fault: {:?}",
                i,
                m.outcome
            );
        }
    }

    // Every dead-lettered message is in the DLQ once, with its body and a
    // reason SQS accepts.
    let sent = deps.dlq.sent();
    let mut dead: Vec<(String, String, &'static str)> = report
        .messages
        .iter()
        .zip(&case.records)
        .filter_map(|(m, r)| match m.outcome {
            MessageOutcome::DeadLettered { code } => Some((
                m.message_id.clone(),
                // SQS refuses empty bodies: those are forwarded as a placeholder.
                r.body
                    .clone()
                    .filter(|b| !b.is_empty())
                    .unwrap_or_else(|| idp_sync::EMPTY_BODY.to_owned()),
                code,
            )),
            _ => None,
        })
        .collect();
    prop_assert_eq!(sent.len(), dead.len());
    for s in &sent {
        let reason = &s.attributes[REASON_ATTRIBUTE];
        prop_assert!(!reason.trim().is_empty());
        prop_assert!(reason.chars().count() <= 1000);
        prop_assert!(
            reason.chars().all(sqs_char),
            "FailureReason SQS would refuse: {:?}",
            reason
        );
        prop_assert!(sqs_id_ok(&s.group_id) && sqs_id_ok(&s.deduplication_id));
        let key = (
            s.attributes[SOURCE_MESSAGE_ATTRIBUTE].clone(),
            s.body.clone(),
        );
        let at = dead
            .iter()
            .position(|(id, body, _)| (id, body) == (&key.0, &key.1));
        prop_assert!(
            at.is_some(),
            "DLQ message for no dead-lettered record: {:?}",
            s
        );
        let (_, _, code) = dead.swap_remove(at.unwrap_or_default());
        prop_assert_eq!(s.attributes[CODE_ATTRIBUTE].as_str(), code);
    }

    // The directory ends as the spec says: the applied messages, per user in
    // the order they ran (batch order within a group; groups one after the
    // other when run one at a time). Failed, blocked and dead-lettered
    // messages change nothing.
    let mut groups_of_sub: HashMap<String, HashSet<&str>> = HashMap::new();
    for (key, members) in &groups {
        for &i in members {
            if let Ok(m) = &parsed[i] {
                groups_of_sub
                    .entry(m.event.user_id().to_string())
                    .or_default()
                    .insert(key);
            }
        }
    }
    let order: Vec<usize> = groups
        .iter()
        .flat_map(|(_, members)| members.iter().copied())
        .collect();
    let ordered = case.concurrency == 1 || groups_of_sub.values().all(|g| g.len() == 1);
    if ordered {
        let mut users = before.clone();
        for i in order {
            if let (Ok(msg), MessageOutcome::Applied(applied)) =
                (&parsed[i], &report.messages[i].outcome)
            {
                let want = model_apply(&mut users, &meaning_of(msg).1);
                prop_assert_eq!(*applied, want, "message {}", i);
            }
        }
        let have: Users = deps
            .directory
            .users()
            .into_iter()
            .map(|u| (u.id.to_string(), (u.name, u.metadata)))
            .collect();
        prop_assert_eq!(have, users);
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn idp_sync_batches_are_reported_exactly(case in batch_case()) {
        check_batch(&case)?;
    }
}

// ---------------------------------------------------------------------------
// Cognito triggers
// ---------------------------------------------------------------------------

const PRE_SIGNUP_SOURCES: &[&str] = &[
    "PreSignUp_SignUp",
    "PreSignUp_AdminCreateUser",
    "PreSignUp_ExternalProvider",
];
const POST_CONFIRMATION_SOURCES: &[&str] = &[
    "PostConfirmation_ConfirmSignUp",
    "PostConfirmation_ConfirmForgotPassword",
];
/// The sign-in sources the Cognito function also handles (for federated users).
const SIGN_IN_SOURCES: &[&str] = &[
    "TokenGeneration_HostedAuth",
    "TokenGeneration_Authentication",
    "PostAuthentication_Authentication",
];
const NAME_POLICIES: &[&str] = &[
    DisplayNamePolicy::DEFAULT,
    "name",
    "custom:display, email:local",
    "given_name family_name",
    "email:local",
];
const ATTRIBUTES: &[&str] = &[
    "email",
    "name",
    "preferred_username",
    "given_name",
    "family_name",
    "phone_number",
    "custom:display",
    "cognito:user_status",
    "email_verified",
];

fn email() -> impl Strategy<Value = String> {
    let domain = select(
        &[
            "example.com",
            "EXAMPLE.com",
            " example.org ",
            "example.com.",
            "evil-example.com",
            "sub.example.com",
            "exam\u{212a}ple.com",
            "",
            "example.com@example.org",
        ][..],
    );
    prop_oneof![
        4 => (text(0..12), domain).prop_map(|(local, d)| format!("{local}@{d}")),
        1 => text(0..20),
    ]
}

fn attribute_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => raw_name().prop_map(Value::String),
        2 => email().prop_map(Value::String),
        1 => sub().prop_map(Value::String),
        1 => wrong_value(),
    ]
}

fn attributes() -> impl Strategy<Value = Value> {
    let name = prop_oneof![4 => select(ATTRIBUTES).prop_map(str::to_owned), 1 => text(0..8)];
    prop_oneof![
        8 => btree_map(name, attribute_value(), 0..7)
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        1 => wrong_value(),
    ]
}

fn trigger_source(known: &'static [&'static str]) -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        6 => select(known).prop_map(|s| Some(json!(s))),
        1 => select(&[
            "PreSignUp_Future", "PostConfirmation_Future", "TokenGeneration_HostedAuth", "",
        ][..])
            .prop_map(|s| Some(json!(s))),
        1 => select(if known.len() == 3 { POST_CONFIRMATION_SOURCES } else { PRE_SIGNUP_SOURCES })
            .prop_map(|s| Some(json!(s))),
        1 => text(0..20).prop_map(|s| Some(json!(s))),
        1 => wrong_value().prop_map(Some),
        1 => Just(None),
    ]
}

fn response() -> impl Strategy<Value = Option<Value>> {
    let extra = btree_map(
        select(&["x", "challengeName", ""][..]).prop_map(str::to_owned),
        json_leaf(),
        0..2,
    );
    let flag = prop_oneof![
        Just(None),
        any::<bool>().prop_map(|b| Some(json!(b))),
        Just(Some(Value::Null)),
        wrong_value().prop_map(Some)
    ];
    prop_oneof![
        1 => Just(None),
        1 => Just(Some(Value::Null)),
        1 => Just(Some(json!({}))),
        4 => (flag.clone(), flag.clone(), flag, extra).prop_map(|(c, e, p, extra)| {
            let mut r: Map<String, Value> = extra.into_iter().collect();
            for (k, v) in [("autoConfirmUser", c), ("autoVerifyEmail", e), ("autoVerifyPhone", p)] {
                if let Some(v) = v {
                    r.insert(k.into(), v);
                }
            }
            Some(Value::Object(r))
        }),
        1 => wrong_value().prop_map(Some),
    ]
}

/// A Cognito trigger event: the documented shape with every part varied,
/// some parts missing, unknown top-level keys added.
fn cognito_event(
    sources: &'static [&'static str],
    attributes: BoxedStrategy<Value>,
) -> impl Strategy<Value = Value> {
    let extra_key = select(
        &[
            "clientMetadata",
            "extra",
            "triggerSource",
            "response",
            "Ünï",
        ][..],
    )
    .prop_map(str::to_owned);
    let extra = btree_map(extra_key, json_value(), 0..2);
    let drop = vec(
        select(
            &[
                "version",
                "region",
                "userPoolId",
                "userName",
                "callerContext",
                "request",
            ][..],
        ),
        0..2,
    );
    (
        trigger_source(sources),
        attributes,
        response(),
        extra,
        drop,
        text(0..10),
    )
        .prop_map(|(source, attributes, response, extra, drop, user_name)| {
            let mut e = json!({
                "version": "1", "region": "us-east-1", "userPoolId": "us-east-1_Ab12Cd34E",
                "userName": user_name,
                "callerContext": {"awsSdkVersion": "aws-sdk-unknown-unknown",
                                  "clientId": "1example23456789"},
                "request": {"userAttributes": attributes, "validationData": null,
                            "clientMetadata": {}},
            });
            let obj = e.as_object_mut().expect("object");
            for k in drop {
                obj.remove(k);
            }
            for (k, v) in extra {
                obj.entry(k).or_insert(v);
            }
            if let Some(s) = source {
                obj.insert("triggerSource".into(), s);
            }
            if let Some(r) = response {
                obj.insert("response".into(), r);
            }
            e
        })
}

#[derive(Debug, Clone)]
struct PolicySpec {
    names: &'static str,
    domains: &'static str,
    auto_confirm: bool,
    auto_verify_email: bool,
}

fn policy_spec() -> impl Strategy<Value = PolicySpec> {
    (
        select(NAME_POLICIES),
        select(&["", "example.com", "example.com, @Example.org"][..]),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(names, domains, auto_confirm, auto_verify_email)| PolicySpec {
                names,
                domains,
                auto_confirm,
                auto_verify_email,
            },
        )
}

/// A non-blank string attribute (the tolerant reading of Cognito attributes,
/// docs/ARCHITECTURE.md, "Cognito triggers").
fn model_attribute<'a>(attrs: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    attrs
        .get(name)
        .and_then(Value::as_str)
        .filter(|v| !v.trim().is_empty())
}

/// The display name a policy derives (docs/ARCHITECTURE.md, "Identity"): the first entry whose
/// attributes (string ones, joined by a space) or email local part give a name.
fn model_derive(spec: &str, attrs: &Map<String, Value>) -> Option<String> {
    spec.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .find_map(|entry| {
            let raw = if entry == "email:local" {
                attrs
                    .get("email")
                    .and_then(Value::as_str)
                    .and_then(|e| e.split_once('@'))
                    .map(|(local, _)| local.to_owned())
                    .unwrap_or_default()
            } else {
                entry
                    .split_whitespace()
                    .filter_map(|a| attrs.get(a).and_then(Value::as_str))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            model_name(&raw)
        })
}

fn empty_map() -> &'static Map<String, Value> {
    static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    EMPTY.get_or_init(Map::new)
}

fn event_attributes(event: &Value) -> &Map<String, Value> {
    event
        .pointer("/request/userAttributes")
        .and_then(Value::as_object)
        .unwrap_or_else(|| empty_map())
}

fn check_pre_signup(event: &Value, spec: &PolicySpec) -> Result<(), TestCaseError> {
    let policy = SignUpPolicy {
        names: DisplayNamePolicy::parse(spec.names).expect("policy"),
        allowed_email_domains: SignUpPolicy::parse_domains(spec.domains),
        auto_confirm: spec.auto_confirm,
        auto_verify_email: spec.auto_verify_email,
    };
    let result = pre_signup::handle(event.clone(), &policy);
    let Some(input) = event.as_object() else {
        prop_assert!(
            matches!(result, Err(SignUpRejected::InvalidEvent(_))),
            "{:?}",
            result
        );
        return Ok(());
    };
    let Some(source) = event.get("triggerSource").and_then(Value::as_str) else {
        // Not a Cognito event: refused (fail closed).
        prop_assert!(
            matches!(result, Err(SignUpRejected::InvalidEvent(_))),
            "{:?}",
            result
        );
        return Ok(());
    };
    if !source.starts_with("PreSignUp_") {
        // Another trigger's event comes back unchanged.
        prop_assert_eq!(result, Ok((event.clone(), SignUpDecision::PassedThrough)));
        return Ok(());
    }
    // Known or not, a PreSignUp source gets the checks (fail closed).
    let attrs = event_attributes(event);
    let email = model_attribute(attrs, "email");
    let expected = if !policy.allowed_email_domains.is_empty() && email.is_none() {
        Err("EmailRequired")
    } else if !policy.allowed_email_domains.is_empty()
        && !policy.allowed_email_domains.contains(
            &email
                .and_then(|e| e.rsplit_once('@'))
                .map(|(_, d)| d.trim().to_ascii_lowercase())
                .unwrap_or_default(),
        )
    {
        Err("EmailDomainNotAllowed")
    } else if model_derive(spec.names, attrs).is_none() {
        Err("NoDisplayName")
    } else {
        Ok(())
    };
    match (result, expected) {
        (Err(rejection), Err(code)) => {
            prop_assert_eq!(rejection.code(), code);
            prop_assert!(!rejection.to_string().trim().is_empty());
        }
        (
            Ok((
                out,
                SignUpDecision::Allowed {
                    auto_confirmed,
                    email_verified,
                },
            )),
            Ok(()),
        ) => {
            // Cognito ignores the flags for AdminCreateUser: they stay as sent.
            let decides = source != "PreSignUp_AdminCreateUser";
            prop_assert_eq!(auto_confirmed, decides && spec.auto_confirm);
            prop_assert_eq!(
                email_verified,
                decides && spec.auto_verify_email && email.is_some()
            );
            // Only `response` changes.
            let out = out.as_object().expect("object out");
            let mut others_in = input.clone();
            let mut others_out = out.clone();
            let response_in = others_in.remove("response");
            let response_out = others_out.remove("response");
            prop_assert_eq!(others_out, others_in);
            let Some(Value::Object(response_out)) = response_out else {
                return Err(TestCaseError::fail("response is not an object"));
            };
            let response_in = match response_in {
                Some(Value::Object(r)) => r,
                _ => Map::new(),
            };
            let flag = |key: &str| {
                response_in
                    .get(key)
                    .and_then(Value::as_bool)
                    .unwrap_or(false)
            };
            prop_assert_eq!(
                response_out.get("autoConfirmUser"),
                Some(&json!(flag("autoConfirmUser") || auto_confirmed))
            );
            prop_assert_eq!(
                response_out.get("autoVerifyEmail"),
                Some(&json!(flag("autoVerifyEmail") || email_verified))
            );
            prop_assert_eq!(
                response_out.get("autoVerifyPhone"),
                Some(&json!(flag("autoVerifyPhone")))
            );
            for (k, v) in &response_in {
                if !["autoConfirmUser", "autoVerifyEmail", "autoVerifyPhone"].contains(&k.as_str())
                {
                    prop_assert_eq!(response_out.get(k), Some(v));
                }
            }
            prop_assert_eq!(
                response_out.len(),
                response_in.len()
                    + ["autoConfirmUser", "autoVerifyEmail", "autoVerifyPhone"]
                        .iter()
                        .filter(|k| !response_in.contains_key(**k))
                        .count()
            );
        }
        (got, want) => prop_assert!(false, "got {:?}, want {:?}", got, want),
    }
    Ok(())
}

fn post_confirmation_attributes() -> impl Strategy<Value = Value> {
    let attribute_name = select(ATTRIBUTES).prop_map(str::to_owned);
    let sub = prop_oneof![
        6 => sub().prop_map(|s| Some(json!(s))),
        1 => not_quite_sub().prop_map(|s| Some(json!(s))),
        1 => wrong_value().prop_map(Some),
        1 => Just(None),
    ];
    prop_oneof![
        8 => (btree_map(attribute_name, attribute_value(), 0..6), sub).prop_map(|(m, sub)| {
            let mut m: Map<String, Value> = m.into_iter().collect();
            if let Some(s) = sub {
                m.insert("sub".into(), s);
            }
            Value::Object(m)
        }),
        1 => wrong_value(),
    ]
}

#[derive(Debug, Clone)]
struct ConfirmationCase {
    event: Value,
    names: &'static str,
    /// The user is in Chime already, with this name.
    existing: Option<String>,
    failures: Vec<DirectoryError>,
    queue_failing: bool,
}

fn confirmation_case() -> impl Strategy<Value = ConfirmationCase> {
    let event = prop_oneof![
        8 => cognito_event(POST_CONFIRMATION_SOURCES, post_confirmation_attributes().boxed()),
        1 => json_value(),
    ];
    (
        event,
        select(NAME_POLICIES),
        prop::option::weighted(0.3, valid_raw_name()),
        prop_oneof![1 => Just(Vec::new()), 1 => vec(directory_error(), 1..3)],
        prop::bool::weighted(0.25),
    )
        .prop_map(
            |(event, names, existing, failures, queue_failing)| ConfirmationCase {
                event,
                names,
                existing,
                failures,
                queue_failing,
            },
        )
}

fn check_post_confirmation(case: &ConfirmationCase) -> Result<(), TestCaseError> {
    let mut deps = PostConfirmation::new(directory(), InMemoryQueue::new(), InMemoryLedger::new());
    deps.names = DisplayNamePolicy::parse(case.names).expect("policy");
    let attrs = event_attributes(&case.event);
    let sub = attrs.get("sub").and_then(Value::as_str);
    let source = case
        .event
        .get("triggerSource")
        .and_then(Value::as_str)
        .filter(|s| POST_CONFIRMATION_SOURCES.contains(s));
    let existing_name = case
        .existing
        .as_ref()
        .map(|n| DisplayName::parse(n).expect("valid name"));
    let result = block_on(async {
        if let (Some(s), Some(name)) = (sub.filter(|s| model_is_sub(s)), &existing_name) {
            let profile = UserProfile {
                id: UserId::parse(s).expect("sub"),
                name: name.clone(),
                metadata: None,
            };
            deps.directory.create(&profile).await.expect("seed");
        }
        deps.directory.fail_next(case.failures.clone());
        if case.queue_failing {
            deps.sync_queue
                .set_failing(Some(QueueError::retryable("503")));
        }
        post_confirmation::handle(case.event.clone(), &deps, None).await
    });
    let calls_before = usize::from(existing_name.is_some() && sub.is_some_and(model_is_sub));

    let trigger = case.event.get("triggerSource").and_then(Value::as_str);
    if trigger.is_some_and(|t| SIGN_IN_SOURCES.contains(&t)) {
        // A sign-in is never refused on our account; a user who is not
        // federated costs no call.
        let federated = attrs.get("cognito:user_status").and_then(Value::as_str)
            == Some("EXTERNAL_PROVIDER")
            || attrs
                .get("identities")
                .and_then(Value::as_str)
                .is_some_and(|i| !i.trim().is_empty());
        let Ok((out, outcome)) = result else {
            return Err(TestCaseError::fail(format!(
                "a sign-in was refused: {result:?}"
            )));
        };
        prop_assert_eq!(out, case.event.clone());
        if !federated {
            prop_assert_eq!(outcome, ConfirmationOutcome::NotFederated);
            prop_assert_eq!(deps.directory.calls(), calls_before);
        }
        return Ok(());
    }

    let Some(source) = source else {
        // Unknown trigger source (or not an event at all): unchanged, no calls.
        prop_assert_eq!(
            result,
            Ok((case.event.clone(), ConfirmationOutcome::PassedThrough))
        );
        prop_assert_eq!(deps.directory.calls(), calls_before);
        return Ok(());
    };
    let Some(sub) = sub.filter(|s| model_is_sub(s)) else {
        let want = match attrs.get("sub") {
            None | Some(Value::Null) => "MissingField",
            Some(Value::String(_)) => "InvalidUserId",
            Some(_) => "WrongType",
        };
        match result {
            Err(ConfirmationError::InvalidEvent(e)) => {
                prop_assert_eq!(e.code(), want);
                check_input_error(&e)?;
            }
            other => prop_assert!(false, "got {:?}, want InvalidEvent({})", other, want),
        }
        prop_assert_eq!(deps.directory.calls(), calls_before);
        prop_assert!(deps.sync_queue.sent().is_empty());
        return Ok(());
    };
    let sub = sub.to_ascii_lowercase();
    let name = model_derive(case.names, attrs).unwrap_or_else(|| sub.clone());
    let users = deps.directory.users();
    match (result, case.failures.first()) {
        (Ok((out, ConfirmationOutcome::Provisioned(applied))), None) => {
            prop_assert_eq!(out, case.event.clone());
            prop_assert_eq!(users.len(), 1);
            prop_assert_eq!(users[0].id.as_str(), sub.as_str());
            check_chime_name(&users[0].name)?;
            let kept = source == "PostConfirmation_ConfirmForgotPassword";
            let want = match &existing_name {
                None => (Applied::Created, name.as_str()),
                Some(old) if kept => (Applied::AlreadyProvisioned, old.as_str()),
                Some(old) if old.as_str() == name => (Applied::AlreadyProvisioned, old.as_str()),
                Some(_) => (Applied::Updated, name.as_str()),
            };
            prop_assert_eq!((applied, users[0].name.as_str()), want);
            prop_assert!(deps.sync_queue.sent().is_empty());
        }
        (Ok((out, ConfirmationOutcome::HandedOff { chime_error })), Some(first)) => {
            prop_assert!(!case.queue_failing);
            prop_assert_eq!(out, case.event.clone());
            prop_assert_eq!(chime_error, first.code());
            // The hand-off is a schema-v1 message the queue consumer reads
            // back as this user, and a body SQS accepts.
            let sent = deps.sync_queue.sent();
            prop_assert_eq!(sent.len(), 1);
            prop_assert!(
                sent[0].body.chars().all(sqs_char),
                "hand-off body SQS would refuse: {:?}",
                sent[0].body
            );
            prop_assert!(sqs_id_ok(&sent[0].group_id) && sqs_id_ok(&sent[0].deduplication_id));
            let m = parse_body(&sent[0].body);
            let Ok(m) = m else {
                return Err(TestCaseError::fail(format!(
                    "hand-off does not parse: {m:?}"
                )));
            };
            let (_, meaning) = meaning_of(&m);
            prop_assert_eq!(meaning.kind, "user.created");
            prop_assert_eq!(&meaning.sub, &sub);
            prop_assert_eq!(meaning.name.as_deref(), Some(name.as_str()));
        }
        (Err(e @ ConfirmationError::HandOffFailed { .. }), Some(_)) => {
            prop_assert!(case.queue_failing);
            prop_assert!(!e.to_string().trim().is_empty());
        }
        (got, first_failure) => {
            prop_assert!(false, "got {:?} with injected {:?}", got, first_failure)
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    /// Arbitrary JSON as a PreSignUp event: never a panic.
    #[test]
    fn pre_signup_survives_arbitrary_json(event in json_value(), spec in policy_spec()) {
        check_pre_signup(&event, &spec)?;
    }

    /// PreSignUp events of every shape: the documented decision, and the event
    /// back with only `response` changed.
    #[test]
    fn pre_signup_decides_by_policy(
        event in cognito_event(PRE_SIGNUP_SOURCES, attributes().boxed()),
        spec in policy_spec(),
    ) {
        check_pre_signup(&event, &spec)?;
    }

    /// PostConfirmation events of every shape, with Chime and the queue
    /// failing or not: the event back unchanged, or a typed error.
    #[test]
    fn post_confirmation_returns_the_event_or_a_typed_error(case in confirmation_case()) {
        check_post_confirmation(&case)?;
    }
}

// ---------------------------------------------------------------------------
// Regressions: minimal cases the properties found, kept as plain tests.
// ---------------------------------------------------------------------------

mod regressions {
    use super::*;

    /// Accepted, then refused by Chime on every call: the partition is not
    /// `[a-z0-9-.]`. Likewise a 64-character region, and an AppInstance id
    /// that leaves no room for `/user/{sub}` within Chime's 1024.
    #[test]
    fn app_instance_arns_chime_refuses() {
        for raw in [
            "arn:awsA:chime:us-east-1:000000000000:app-instance/00000000-0000-0000-0000-000000000000"
                .to_owned(),
            format!("arn:aws:chime:{}:123456789012:app-instance/a", "r".repeat(64)),
            format!("arn:aws:chime:us-east-1:123456789012:app-instance/{}", "a".repeat(970)),
        ] {
            let err = AppInstanceArn::parse(&raw).expect_err(&raw);
            assert_eq!(err.code(), "InvalidAppInstanceArn");
        }
    }

    /// The DLQ reason quoted the unknown `type` with its control character;
    /// SQS refuses such an attribute, so the poison message was retried (and
    /// blocked its group) instead of dead-lettered.
    #[test]
    fn dlq_reason_with_a_control_character() {
        check_batch(&BatchCase {
            records: vec![Record {
                message_id: Some("00000000-5b1a-4f2e-9c3d-message00000".into()),
                group: Some("poison".into()),
                body: Some(
                    r#"{"type":"x\u0001y","user":{"sub":"6f1c2d3e-0b4a-4c5d-8e9f-a0b1c2d3e400"},"version":1}"#
                        .into(),
                ),
            }],
            existing: vec![],
            failures: vec![],
            dlq_failing: false,
            concurrency: 1,
            deadline_passed: false,
        })
        .expect("property holds");
    }

    /// The hand-off body carried a name's U+FFFE raw; SQS refuses such a
    /// body, so with Chime down the confirmation could never be handed off.
    #[test]
    fn hand_off_of_a_name_with_a_noncharacter() {
        check_post_confirmation(&ConfirmationCase {
            event: json!({"triggerSource": "PostConfirmation_ConfirmSignUp",
                          "request": {"userAttributes": {
                              "sub": "00000000-0000-0000-0000-000000000000", "name": "\u{fffe}"}}}),
            names: DisplayNamePolicy::DEFAULT,
            existing: None,
            failures: vec![DirectoryError::Unavailable("503".into())],
            queue_failing: false,
        })
        .expect("property holds");
    }
}
