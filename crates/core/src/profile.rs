//! What a Chime user looks like: [`DisplayName`], [`Metadata`], [`UserProfile`],
//! and the [`DisplayNamePolicy`] that derives a name from Cognito attributes.

use std::fmt;

use serde_json::{Map, Value};

use crate::error::InputError;
use crate::identity::UserId;

pub mod invisible;

pub use invisible::{is_invisible, strip_invisible};

/// Chime's limit for `Name`, counted in UTF-16 code units as the service
/// (Java) counts string length; a cut that satisfies that also satisfies a
/// count in characters.
pub const MAX_NAME_UNITS: usize = 100;
/// Chime's limit for `Metadata`.
pub const MAX_METADATA_UNITS: usize = 1024;

/// A Chime display name: invisible characters removed (see [`invisible`]),
/// whitespace runs folded to one space, control characters dropped, trimmed,
/// cut to 100 units on a character boundary, and never without a visible
/// character (Chime requires a non-space one; a chat UI needs one to show).
///
/// In a chat UI an invisible name impersonates nobody in particular and a
/// right-to-left override (`"\u{202e}evoL adA"` shows as "Ada Love") or a
/// zero-width character (`"Ad\u{200b}a"`) impersonates someone in particular,
/// so neither survives parsing; emoji sequences (👨‍👩‍👧, ❤️) do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

/// Whether `c` shows anything on its own: a joiner or presentation selector
/// kept in an emoji sequence only shapes the emoji, and a name made only of
/// blanks (U+2800) or of whitespace shows nothing.
fn is_visible(c: char) -> bool {
    !(c.is_whitespace() || c.is_control() || is_invisible(c) || c == '\u{2800}')
}

impl DisplayName {
    pub fn parse(raw: &str) -> Result<Self, InputError> {
        let visible = strip_invisible(raw);
        let cleaned: String = visible
            .split(|c: char| c.is_whitespace() || c.is_control())
            .filter(|w| !w.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        let mut units = 0;
        let mut cut = String::with_capacity(cleaned.len().min(4 * MAX_NAME_UNITS));
        for c in cleaned.chars() {
            units += c.len_utf16();
            if units > MAX_NAME_UNITS {
                break;
            }
            cut.push(c);
        }
        // A cut inside an emoji sequence can leave a joiner with nothing to join (or a keycap's
        // selector without its keycap): stripped as parsing the name again would strip it, so a
        // name is its own display name.
        let cut = strip_invisible(&cut);
        let trimmed = cut.trim_end();
        if !trimmed.chars().any(is_visible) {
            return Err(InputError::InvalidDisplayName(
                "it has no visible character; Chime needs at least one",
            ));
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DisplayName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Chime `Metadata` (at most 1024 characters). Empty means none.
///
/// Cognito-sourced users get no metadata: it would be visible to every chat
/// participant, so nothing personal goes there by default.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Metadata(String);

impl Metadata {
    pub fn parse(raw: &str) -> Result<Self, InputError> {
        let units = raw.encode_utf16().count();
        if units > MAX_METADATA_UNITS {
            return Err(InputError::MetadataTooLong(units));
        }
        Ok(Self(raw.to_owned()))
    }

    /// Metadata from a JSON value: strings as they are, anything else as compact JSON.
    pub fn from_json(value: &Value) -> Result<Self, InputError> {
        match value {
            Value::Null => Ok(Self::default()),
            Value::String(s) => Self::parse(s),
            other => Self::parse(&other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The desired state of one Chime user.
///
/// `metadata: None` means "leave whatever metadata the user has"; it is what
/// the Cognito triggers send. `Some` replaces it (an empty one clears it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserProfile {
    pub id: UserId,
    pub name: DisplayName,
    pub metadata: Option<Metadata>,
}

impl UserProfile {
    /// The `ClientRequestToken` of the create for this profile: `sync-{sub}-`
    /// plus a stable 64-bit FNV-1a digest of the name and metadata (58
    /// characters of `[-a-z0-9]`).
    ///
    /// Derived, not random (the SDK's default), so every retry of the same
    /// create — Cognito's, SQS's, the SDK's — is the same request and Chime
    /// answers it idempotently. The digest matters because Chime answers a
    /// repeated token with the original ARN even when the user has been renamed
    /// since: with a token from the sub alone, a create asking for a new name
    /// would "succeed" and leave the old name. With the digest, a different
    /// request gets Chime's Conflict, which `create_or_resolve` resolves by
    /// updating the user.
    pub fn client_request_token(&self) -> String {
        let metadata: &[u8] = match &self.metadata {
            None => b"\x00",
            Some(m) => m.as_str().as_bytes(),
        };
        let marker: &[u8] = if self.metadata.is_some() {
            b"\x01"
        } else {
            b""
        };
        let digest =
            crate::queue::fnv1a64(&[self.name.as_str().as_bytes(), b"\xff", marker, metadata]);
        format!("{}-{digest:016x}", self.id.client_request_token())
    }
}

/// Where a display name comes from, tried in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum NameSource {
    /// One or more attributes joined by a space (`given_name family_name`);
    /// yields a value when at least one of them is present and not blank.
    Attributes(Vec<String>),
    /// The part of `email` before the `@`.
    EmailLocalPart,
}

/// The configurable order of Cognito attributes a display name is taken from
/// (`DISPLAY_NAME_ATTRIBUTES`).
///
/// Syntax: comma-separated entries; an entry is attribute names separated by
/// spaces, or `email:local`. Default: `name,given_name family_name,email:local`.
///
/// `preferred_username` is not in the default: it is a handle users pick and
/// change as they please, the first place a name like "IT Helpdesk" would
/// come from. A pool that wants it lists it (`preferred_username,name,...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayNamePolicy {
    sources: Vec<NameSource>,
}

impl Default for DisplayNamePolicy {
    fn default() -> Self {
        Self::parse(Self::DEFAULT).unwrap_or(Self {
            sources: vec![NameSource::EmailLocalPart],
        })
    }
}

/// A `DISPLAY_NAME_ATTRIBUTES` value that lists no attribute.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "DISPLAY_NAME_ATTRIBUTES lists no attribute (example: `{}`)",
    DisplayNamePolicy::DEFAULT
)]
pub struct EmptyNamePolicy;

impl DisplayNamePolicy {
    pub const DEFAULT: &'static str = "name,given_name family_name,email:local";

    pub fn parse(spec: &str) -> Result<Self, EmptyNamePolicy> {
        let sources: Vec<NameSource> = spec
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(|entry| match entry {
                "email:local" => NameSource::EmailLocalPart,
                attrs => {
                    NameSource::Attributes(attrs.split_whitespace().map(str::to_owned).collect())
                }
            })
            .collect();
        if sources.is_empty() {
            return Err(EmptyNamePolicy);
        }
        Ok(Self { sources })
    }

    /// The sources in words, for the message a rejected sign-up sees.
    pub fn describe(&self) -> String {
        let names: Vec<String> = self
            .sources
            .iter()
            .map(|s| match s {
                NameSource::Attributes(names) => names.join(" + "),
                NameSource::EmailLocalPart => "an email address".to_owned(),
            })
            .collect();
        match names.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
            _ => names.concat(),
        }
    }

    /// The attributes the sources read, in order (`email` for `email:local`): what a
    /// source that is asked for attributes by name (an LDAP search) must fetch.
    pub fn attribute_names(&self) -> impl Iterator<Item = &str> {
        self.sources.iter().flat_map(|s| match s {
            NameSource::Attributes(names) => names.iter().map(String::as_str).collect::<Vec<_>>(),
            NameSource::EmailLocalPart => vec!["email"],
        })
    }

    /// The first source that yields a valid display name, or `None`.
    pub fn derive(&self, attributes: &Map<String, Value>) -> Option<DisplayName> {
        let get = |name: &str| attributes.get(name).and_then(Value::as_str);
        self.sources.iter().find_map(|source| {
            let raw = match source {
                NameSource::Attributes(names) => names
                    .iter()
                    .filter_map(|n| get(n))
                    .collect::<Vec<_>>()
                    .join(" "),
                NameSource::EmailLocalPart => get("email")
                    .and_then(|e| e.split_once('@'))
                    .map(|(local, _)| local.to_owned())
                    .unwrap_or_default(),
            };
            DisplayName::parse(&raw).ok()
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn attrs(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn display_name_is_trimmed_and_whitespace_folded() {
        let n = DisplayName::parse("  Ada \n\t Lovelace\u{7}  ").unwrap();
        assert_eq!(n.as_str(), "Ada Lovelace");
    }

    #[test]
    fn blank_display_names_are_rejected() {
        for raw in ["", "   ", "\n\t", "\u{0}\u{1}"] {
            assert!(matches!(
                DisplayName::parse(raw),
                Err(InputError::InvalidDisplayName(_))
            ));
        }
    }

    #[test]
    fn bidi_controls_and_zero_width_characters_are_stripped() {
        let cases = [
            ("\u{202e}evoL adA", "evoL adA"),
            ("Ada\u{2066} Lovelace\u{2069}", "Ada Lovelace"),
            ("A\u{200b}d\u{200c}a\u{200d}", "Ada"),
            ("\u{200f}Ada\u{200e}\u{061c}", "Ada"),
            ("\u{feff}Ada\u{2060}", "Ada"),
            ("Ad\u{00ad}a", "Ada"),
            (
                "Ada \u{202a}\u{202b}\u{202c}\u{202d} Lovelace",
                "Ada Lovelace",
            ),
            // What is visible stays: emoji with their variation selector.
            ("Ada ❤\u{fe0f}", "Ada ❤\u{fe0f}"),
            ("李 小龙", "李 小龙"),
        ];
        for (raw, want) in cases {
            assert_eq!(DisplayName::parse(raw).unwrap().as_str(), want, "{raw:?}");
        }
    }

    #[test]
    fn a_name_with_nothing_visible_left_is_no_name() {
        for raw in [
            "\u{200f}\u{200e}\u{202e}",
            "\u{200b}\u{200b}",
            " \u{2066}\u{2069} ",
            "\u{3164}",
            "\u{115f}\u{1160}",
            "\u{ffa0}",
            "\u{fe0f}",
            "\u{2800}\u{2800}",
            "\u{e0041}\u{e0064}",
            "\u{fff9}\u{fffb}",
            "\u{1d173}\u{1d17a}",
            "\u{180b}\u{180f}",
            "\u{200d}\u{fe0f}\u{e0001}",
        ] {
            assert!(
                matches!(
                    DisplayName::parse(raw),
                    Err(InputError::InvalidDisplayName(_))
                ),
                "{raw:?}"
            );
        }
        // From Cognito: an invisible name is no name, so the next source is used.
        let p = DisplayNamePolicy::default();
        let a = attrs(json!({"name": "\u{200f}\u{200e}\u{202e}", "given_name": "Ada"}));
        assert_eq!(p.derive(&a).unwrap().as_str(), "Ada");
        let none = attrs(json!({"name": "\u{202e}\u{200b}"}));
        assert_eq!(p.derive(&none), None);
    }

    #[test]
    fn long_names_are_cut_to_100_on_a_char_boundary() {
        let n = DisplayName::parse(&"é".repeat(150)).unwrap();
        assert_eq!(n.as_str().chars().count(), 100);
        // Astral characters count two units each, as Chime counts them.
        let n = DisplayName::parse(&"😀".repeat(80)).unwrap();
        assert_eq!(n.as_str().chars().count(), 50);
        assert_eq!(n.as_str().encode_utf16().count(), 100);
        // A cut that ends on a space leaves no trailing space.
        let n = DisplayName::parse(&format!("{} b", "a".repeat(99))).unwrap();
        assert_eq!(n.as_str(), "a".repeat(99));
    }

    #[test]
    fn a_cut_inside_an_emoji_sequence_leaves_no_lone_joiner_or_selector() {
        // The joiner fits in 100 units, the emoji it joins does not.
        let family = format!("{}👨\u{200d}👩", "a".repeat(97));
        let n = DisplayName::parse(&family).unwrap();
        assert_eq!(n.as_str(), format!("{}👨", "a".repeat(97)));
        // A keycap's selector fits, its keycap mark does not.
        let keycap = format!("{}1\u{fe0f}\u{20e3}", "a".repeat(98));
        let n = DisplayName::parse(&keycap).unwrap();
        assert_eq!(n.as_str(), format!("{}1", "a".repeat(98)));
        for raw in [family, keycap] {
            let n = DisplayName::parse(&raw).unwrap();
            assert_eq!(DisplayName::parse(n.as_str()), Ok(n.clone()), "{raw:?}");
        }
    }

    #[test]
    fn metadata_limit_is_1024() {
        assert!(Metadata::parse(&"m".repeat(1024)).is_ok());
        assert_eq!(
            Metadata::parse(&"m".repeat(1025)),
            Err(InputError::MetadataTooLong(1025))
        );
        assert_eq!(
            Metadata::from_json(&json!({"department": "R&D"}))
                .unwrap()
                .as_str(),
            r#"{"department":"R&D"}"#
        );
        assert!(Metadata::from_json(&Value::Null).unwrap().is_empty());
    }

    #[test]
    fn default_policy_prefers_name_then_given_family_and_never_preferred_username() {
        let p = DisplayNamePolicy::default();
        let all = attrs(
            json!({"preferred_username": "IT Helpdesk", "name": "Ada L", "given_name": "Ada",
            "family_name": "Lovelace", "email": "ada@example.com"}),
        );
        assert_eq!(p.derive(&all).unwrap().as_str(), "Ada L");
        // A handle the user picked is no name by default, however it reads ...
        let handle_only = attrs(json!({"preferred_username": "IT Helpdesk"}));
        assert_eq!(p.derive(&handle_only), None);
        // ... unless the pool lists it.
        let explicit = DisplayNamePolicy::parse("preferred_username,name").unwrap();
        assert_eq!(
            explicit.derive(&handle_only).unwrap().as_str(),
            "IT Helpdesk"
        );
        let no_pref = attrs(json!({"name": " ", "given_name": "Ada", "family_name": "Lovelace"}));
        assert_eq!(p.derive(&no_pref).unwrap().as_str(), "Ada Lovelace");
        let given_only = attrs(json!({"given_name": "Ada"}));
        assert_eq!(p.derive(&given_only).unwrap().as_str(), "Ada");
        let email_only = attrs(json!({"email": "ada.l@example.com"}));
        assert_eq!(p.derive(&email_only).unwrap().as_str(), "ada.l");
        assert_eq!(
            p.derive(&attrs(json!({"phone_number": "+15555550100"}))),
            None
        );
    }

    #[test]
    fn policy_is_configurable_and_never_empty() {
        let p = DisplayNamePolicy::parse(" custom:display , email:local ").unwrap();
        let a = attrs(json!({"custom:display": "Countess", "email": "ada@example.com"}));
        assert_eq!(p.derive(&a).unwrap().as_str(), "Countess");
        assert_eq!(DisplayNamePolicy::parse(" , ,"), Err(EmptyNamePolicy));
        assert_eq!(
            DisplayNamePolicy::default().describe(),
            "name, given_name + family_name or an email address"
        );
        assert_eq!(DisplayNamePolicy::parse("name").unwrap().describe(), "name");
    }

    fn profile(name: &str, metadata: Option<&str>) -> UserProfile {
        UserProfile {
            id: UserId::parse("6f1c2d3e-0b4a-4c5d-8e9f-a0b1c2d3e4f5").unwrap(),
            name: DisplayName::parse(name).unwrap(),
            metadata: metadata.map(|m| Metadata::parse(m).unwrap()),
        }
    }

    #[test]
    fn request_tokens_are_stable_per_request_and_differ_between_requests() {
        let token = profile("Ada", None).client_request_token();
        // Pinned: the token must not change between releases, or a retry
        // across a deployment would create a Conflict instead of a replay.
        assert_eq!(
            token,
            "sync-6f1c2d3e-0b4a-4c5d-8e9f-a0b1c2d3e4f5-cd57b50e2a022004"
        );
        assert_eq!(token, profile("Ada", None).client_request_token());
        let others = [
            profile("Ada L", None).client_request_token(),
            profile("Ada", Some("")).client_request_token(),
            profile("Ada", Some("{}")).client_request_token(),
        ];
        for other in &others {
            assert_ne!(&token, other);
        }
        assert_ne!(others[1], others[2]);
        for t in others.iter().chain([&token]) {
            assert!((2..=64).contains(&t.len()), "{t}");
            assert!(
                t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                "{t}"
            );
        }
    }

    #[test]
    fn non_string_attributes_are_ignored() {
        let p = DisplayNamePolicy::parse("name,email:local").unwrap();
        let a = attrs(json!({"name": 42, "email": "x@y"}));
        assert_eq!(p.derive(&a).unwrap().as_str(), "x");
    }
}
