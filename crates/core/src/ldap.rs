//! An LDAP directory (Active Directory, OpenLDAP, FreeIPA) as a source of who should have a
//! Chime user: how one directory entry becomes a Chime profile, is left out, or is unusable.
//!
//! Reading the directory (bind, paged search) is an adapter's job; this module holds the rules,
//! so the scheduled reconcile and the CLI's dry run sort entries the same way, through the same
//! [`Sorted`] the Cognito source fills, and the planner, breaker and grace deletions apply
//! unchanged.
//!
//! - **The user id** is the entry's stable UUID: OpenLDAP's `entryUUID` (RFC 4530, text) or
//!   Active Directory's `objectGUID` (16 bytes). AD stores a GUID in Microsoft's packet
//!   representation (MS-DTYP 2.3.4.2): its first three fields little-endian, the last eight
//!   bytes as they are. Reading the bytes in order, the classic mistake, gives a different,
//!   equally valid-looking UUID for every user, so the conversion is `uuid`'s
//!   `from_bytes_le`, tested against published pairs.
//! - **The display name** follows an attribute order (`displayName,cn,givenName sn`), with
//!   [`DisplayNamePolicy`]'s rules; LDAP attribute names match whatever their case.
//! - **Inactive** entries get no Chime user: AD's `userAccountControl` with ACCOUNTDISABLE
//!   (0x2) set, or an attribute holding a configured value (`nsAccountLock=TRUE` of 389-ds
//!   and FreeIPA).
//!
//! An entry is named in errors by its place in the read (`page 3, entry 17`), never by its
//! DN: a DN holds a person's name.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use thiserror::Error;

use crate::identity::UserId;
use crate::ledger::At;
use crate::profile::{DisplayName, DisplayNamePolicy, UserProfile};
use crate::user_pool::{LeftOut, Sorted, Verdict};

/// AD's `userAccountControl` flag ACCOUNTDISABLE.
pub const ACCOUNT_DISABLE: u32 = 0x2;

/// One entry as the search returned it: attribute names lower-cased (LDAP compares them
/// without case), each with its values as bytes (`objectGUID` is binary).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LdapEntry {
    attributes: BTreeMap<String, Vec<Vec<u8>>>,
}

impl LdapEntry {
    pub fn new<N: AsRef<str>>(attributes: impl IntoIterator<Item = (N, Vec<Vec<u8>>)>) -> Self {
        Self {
            attributes: attributes
                .into_iter()
                .map(|(name, values)| (name.as_ref().to_ascii_lowercase(), values))
                .collect(),
        }
    }

    /// The first value of `name`, any case.
    pub fn first(&self, name: &str) -> Option<&[u8]> {
        self.attributes
            .get(&name.to_ascii_lowercase())
            .and_then(|values| values.first())
            .map(Vec::as_slice)
    }

    /// The first value of `name` as text, when it is UTF-8 (LDAP's strings are).
    pub fn text(&self, name: &str) -> Option<&str> {
        self.first(name).and_then(|v| std::str::from_utf8(v).ok())
    }
}

/// Which attribute holds the user's UUID (`LDAP_ID_ATTRIBUTE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdAttribute {
    /// `entryUUID` (RFC 4530): OpenLDAP, 389-ds, FreeIPA; the UUID as text.
    EntryUuid,
    /// `objectGUID`: Active Directory; 16 bytes in Microsoft's packet representation.
    ObjectGuid,
}

/// A mapping setting this module cannot use.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LdapMappingError {
    #[error("`{0}` is not an id attribute this source reads (expected entryUUID or objectGUID)")]
    UnknownIdAttribute(String),
    #[error(
        "`{0}` is not an inactive rule (expected userAccountControl, none, or attribute=value)"
    )]
    UnknownInactiveRule(String),
}

impl IdAttribute {
    pub fn parse(name: &str) -> Result<Self, LdapMappingError> {
        match name.trim().to_ascii_lowercase().as_str() {
            "entryuuid" => Ok(Self::EntryUuid),
            "objectguid" => Ok(Self::ObjectGuid),
            _ => Err(LdapMappingError::UnknownIdAttribute(name.to_owned())),
        }
    }

    /// The attribute's name, as a search asks for it.
    pub fn attribute(self) -> &'static str {
        match self {
            Self::EntryUuid => "entryUUID",
            Self::ObjectGuid => "objectGUID",
        }
    }

    /// The user id of `entry`, or why it has none (no personal data in the reason).
    pub fn read(self, entry: &LdapEntry) -> Result<UserId, String> {
        let missing = || format!("missing attribute `{}`", self.attribute());
        let uuid = match self {
            Self::EntryUuid => entry.text(self.attribute()).ok_or_else(missing)?.to_owned(),
            Self::ObjectGuid => {
                object_guid_to_uuid(entry.first(self.attribute()).ok_or_else(missing)?)?
            }
        };
        UserId::parse(&uuid).map_err(|e| format!("`{}`: {e}", self.attribute()))
    }
}

/// An `objectGUID` value as the UUID text AD itself shows for it (and an IdP that reads AD
/// sends as the user's id): the first three fields are stored little-endian.
pub fn object_guid_to_uuid(bytes: &[u8]) -> Result<String, String> {
    let bytes: [u8; 16] = bytes
        .try_into()
        .map_err(|_| format!("`objectGUID` is {} bytes, not 16", bytes.len()))?;
    Ok(uuid::Uuid::from_bytes_le(bytes).hyphenated().to_string())
}

/// What makes an entry inactive (`LDAP_INACTIVE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InactiveRule {
    /// `userAccountControl` has ACCOUNTDISABLE (0x2) set: Active Directory.
    AccountDisable,
    /// `name` holds `value` (compared without case): `nsAccountLock=TRUE`.
    AttributeEquals { name: String, value: String },
    /// Every entry the search returns is active (the search filter leaves the others out).
    Never,
}

impl InactiveRule {
    pub fn parse(spec: &str) -> Result<Self, LdapMappingError> {
        let spec = spec.trim();
        match spec.to_ascii_lowercase().as_str() {
            "useraccountcontrol" => return Ok(Self::AccountDisable),
            "none" => return Ok(Self::Never),
            _ => {}
        }
        match spec.split_once('=') {
            Some((name, value)) if !name.trim().is_empty() && !value.trim().is_empty() => {
                Ok(Self::AttributeEquals {
                    name: name.trim().to_owned(),
                    value: value.trim().to_owned(),
                })
            }
            _ => Err(LdapMappingError::UnknownInactiveRule(spec.to_owned())),
        }
    }

    /// Whether `entry` is inactive. A `userAccountControl` that is missing or not a number
    /// reads as active: AD always writes it, and a reader that cannot parse it must not
    /// delete the user for that.
    pub fn applies(&self, entry: &LdapEntry) -> bool {
        match self {
            Self::AccountDisable => entry
                .text("userAccountControl")
                .and_then(|v| v.trim().parse::<i64>().ok())
                .is_some_and(|flags| flags & i64::from(ACCOUNT_DISABLE) != 0),
            Self::AttributeEquals { name, value } => entry
                .text(name)
                .is_some_and(|v| v.trim().eq_ignore_ascii_case(value)),
            Self::Never => false,
        }
    }

    /// The attribute the rule reads, if any.
    fn attribute(&self) -> Option<&str> {
        match self {
            Self::AccountDisable => Some("userAccountControl"),
            Self::AttributeEquals { name, .. } => Some(name),
            Self::Never => None,
        }
    }
}

/// How entries become Chime profiles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdapMapping {
    pub id: IdAttribute,
    pub names: DisplayNamePolicy,
    pub inactive: InactiveRule,
}

impl LdapMapping {
    /// The attributes a search must return for [`Self::classify`]: the id, the name's,
    /// the inactive rule's, and the modification time.
    pub fn attributes(&self) -> Vec<String> {
        let mut names = vec![self.id.attribute().to_owned()];
        names.extend(self.names.attribute_names().map(str::to_owned));
        names.extend(self.inactive.attribute().map(str::to_owned));
        names.push("modifyTimestamp".to_owned());
        names.sort_by_key(|n| n.to_ascii_lowercase());
        names.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
        names
    }

    /// What becomes of `entry`: a profile (named by the policy, else by its id), left out
    /// as disabled, or unusable with why.
    pub fn classify(&self, entry: &LdapEntry) -> Verdict {
        if self.inactive.applies(entry) {
            return Verdict::LeftOut(LeftOut::Disabled);
        }
        let id = match self.id.read(entry) {
            Ok(id) => id,
            Err(why) => return Verdict::Unusable(why),
        };
        let named: Map<String, Value> = self
            .names
            .attribute_names()
            .filter_map(|n| Some((n.to_owned(), Value::String(entry.text(n)?.to_owned()))))
            .collect();
        match self
            .names
            .derive(&named)
            .or_else(|| DisplayName::parse(id.as_str()).ok())
        {
            Some(name) => Verdict::Active(UserProfile {
                id,
                name,
                metadata: None,
            }),
            None => Verdict::Unusable("no display name".to_owned()),
        }
    }
}

/// When an entry last changed: `modifyTimestamp` (GeneralizedTime, `20261206034500Z`; AD
/// writes `20261206034500.0Z`). Anything else reads as unknown, which never makes a change
/// stale (the ledger keeps the user).
pub fn modified(entry: &LdapEntry) -> Option<At> {
    let raw = entry.text("modifyTimestamp")?.trim();
    let digits = raw.strip_suffix('Z')?;
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.len() != 14 || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let rfc3339 = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &whole[0..4],
        &whole[4..6],
        &whole[6..8],
        &whole[8..10],
        &whole[10..12],
        &whole[12..14]
    );
    At::parse_rfc3339(&rfc3339).ok()
}

impl Sorted {
    /// Sort one directory entry; an unusable one is noted as `place` and why.
    pub fn add_entry(
        &mut self,
        entry: &LdapEntry,
        mapping: &LdapMapping,
        place: impl FnOnce() -> String,
    ) {
        self.add_verdict(mapping.classify(entry), modified(entry), place);
    }
}

#[cfg(test)]
mod tests;
