use super::*;

fn entry(attributes: &[(&str, &[u8])]) -> LdapEntry {
    LdapEntry::new(attributes.iter().map(|(n, v)| (*n, vec![v.to_vec()])))
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn mapping(id: IdAttribute, names: &str, inactive: &str) -> LdapMapping {
    LdapMapping {
        id,
        names: DisplayNamePolicy::parse(names).unwrap(),
        inactive: InactiveRule::parse(inactive).unwrap(),
    }
}

const USER: &str = "6f1c2a9e-5b7d-4e3f-8a1b-000000000001";

/// Published pairs of a GUID's bytes and its text. MS-DTYP 2.3.4 shows the GUID
/// `6B29FC40-CA47-1067-B31D-00DD010662DA`, and 2.3.4.2 says how it is laid out as bytes (Data1,
/// Data2, Data3 little-endian, Data4 as is); Atlassian Crowd's `GuidHelper` documents the bytes
/// `6797e1e5ecb5154f960f865c28c015fa` as AD's `e5e19767-b5ec-4f15-960f-865c28c015fa`.
#[test]
fn object_guid_bytes_read_as_ad_shows_them() {
    let pairs = [
        (
            "40fc296b47ca6710b31d00dd010662da",
            "6b29fc40-ca47-1067-b31d-00dd010662da",
        ),
        (
            "6797e1e5ecb5154f960f865c28c015fa",
            "e5e19767-b5ec-4f15-960f-865c28c015fa",
        ),
    ];
    for (bytes, text) in pairs {
        assert_eq!(object_guid_to_uuid(&hex(bytes)).unwrap(), text, "{bytes}");
        // The classic bug, bytes read in order, gives another id: the test can tell.
        assert_ne!(
            uuid::Uuid::from_slice(&hex(bytes)).unwrap().to_string(),
            text
        );
    }
}

#[test]
fn an_object_guid_of_another_length_is_refused_with_its_length() {
    assert_eq!(
        object_guid_to_uuid(&[0; 15]).unwrap_err(),
        "`objectGUID` is 15 bytes, not 16"
    );
}

#[test]
fn the_id_comes_from_entry_uuid_or_object_guid() {
    let openldap = entry(&[("entryUUID", USER.as_bytes())]);
    assert_eq!(
        IdAttribute::EntryUuid.read(&openldap).unwrap().as_str(),
        USER
    );
    let ad = entry(&[("objectGUID", &hex("40fc296b47ca6710b31d00dd010662da"))]);
    assert_eq!(
        IdAttribute::ObjectGuid.read(&ad).unwrap().as_str(),
        "6b29fc40-ca47-1067-b31d-00dd010662da"
    );
    assert_eq!(
        IdAttribute::ObjectGuid.read(&openldap).unwrap_err(),
        "missing attribute `objectGUID`"
    );
    let not_a_uuid = entry(&[("entryUUID", b"jsmith")]);
    assert!(
        IdAttribute::EntryUuid
            .read(&not_a_uuid)
            .unwrap_err()
            .starts_with("`entryUUID`: ")
    );
}

#[test]
fn id_attributes_and_inactive_rules_parse_any_case_and_refuse_the_rest() {
    assert_eq!(IdAttribute::parse("ENTRYUUID"), Ok(IdAttribute::EntryUuid));
    assert_eq!(
        IdAttribute::parse(" objectGUID "),
        Ok(IdAttribute::ObjectGuid)
    );
    assert!(matches!(
        IdAttribute::parse("uid"),
        Err(LdapMappingError::UnknownIdAttribute(_))
    ));
    assert_eq!(
        InactiveRule::parse("userAccountControl"),
        Ok(InactiveRule::AccountDisable)
    );
    assert_eq!(InactiveRule::parse("none"), Ok(InactiveRule::Never));
    assert_eq!(
        InactiveRule::parse("nsAccountLock = TRUE"),
        Ok(InactiveRule::AttributeEquals {
            name: "nsAccountLock".to_owned(),
            value: "TRUE".to_owned()
        })
    );
    for bad in ["", "disabled", "=TRUE", "nsAccountLock="] {
        assert!(
            matches!(
                InactiveRule::parse(bad),
                Err(LdapMappingError::UnknownInactiveRule(_))
            ),
            "{bad:?}"
        );
    }
}

/// AD's flags: 512 NORMAL_ACCOUNT, 514 = 512 | ACCOUNTDISABLE, 66050 = 514 |
/// DONT_EXPIRE_PASSWORD, 66048 = 512 | DONT_EXPIRE_PASSWORD.
#[test]
fn account_disable_is_bit_two_of_user_account_control() {
    let rule = InactiveRule::AccountDisable;
    for (flags, inactive) in [
        ("512", false),
        ("514", true),
        ("66050", true),
        ("66048", false),
    ] {
        let e = entry(&[("userAccountControl", flags.as_bytes())]);
        assert_eq!(rule.applies(&e), inactive, "userAccountControl {flags}");
    }
    // Missing or unreadable flags never make a user inactive (and so never delete it).
    assert!(!rule.applies(&entry(&[])));
    assert!(!rule.applies(&entry(&[("userAccountControl", b"disabled")])));
}

#[test]
fn an_attribute_rule_compares_without_case() {
    let rule = InactiveRule::parse("nsAccountLock=TRUE").unwrap();
    assert!(rule.applies(&entry(&[("nsaccountlock", b"true")])));
    assert!(!rule.applies(&entry(&[("nsAccountLock", b"FALSE")])));
    assert!(!rule.applies(&entry(&[])));
}

#[test]
fn entries_become_profiles_named_by_the_attribute_order() {
    let m = mapping(
        IdAttribute::EntryUuid,
        "displayName,cn,givenName sn",
        "userAccountControl",
    );
    let named = |attrs: &[(&str, &[u8])]| match m.classify(&entry(attrs)) {
        Verdict::Active(p) => p.name.as_str().to_owned(),
        other => panic!("{other:?}"),
    };
    let id: (&str, &[u8]) = ("entryUUID", USER.as_bytes());
    assert_eq!(
        named(&[id, ("displayName", b"Ada Lovelace"), ("cn", b"alovelace")]),
        "Ada Lovelace"
    );
    assert_eq!(named(&[id, ("CN", b"alovelace")]), "alovelace");
    assert_eq!(
        named(&[id, ("givenName", b"Ada"), ("sn", b"Lovelace")]),
        "Ada Lovelace"
    );
    assert_eq!(
        named(&[id]),
        USER,
        "no name attribute: the id names the user"
    );
    assert_eq!(
        m.classify(&entry(&[id, ("userAccountControl", b"514")])),
        Verdict::LeftOut(LeftOut::Disabled)
    );
    assert_eq!(
        m.classify(&entry(&[("cn", b"alovelace")])),
        Verdict::Unusable("missing attribute `entryUUID`".to_owned())
    );
}

#[test]
fn a_search_asks_for_every_attribute_the_mapping_reads_once() {
    let m = mapping(
        IdAttribute::ObjectGuid,
        "displayName,cn,givenName sn,CN",
        "userAccountControl",
    );
    assert_eq!(
        m.attributes(),
        [
            "cn",
            "displayName",
            "givenName",
            "modifyTimestamp",
            "objectGUID",
            "sn",
            "userAccountControl"
        ]
    );
}

#[test]
fn modify_timestamps_of_openldap_and_ad_date_a_change() {
    let at = |raw: &str| modified(&entry(&[("modifyTimestamp", raw.as_bytes())]));
    let expected = At::parse_rfc3339("2026-12-06T03:45:00Z").ok();
    assert_eq!(at("20261206034500Z"), expected);
    assert_eq!(at("20261206034500.0Z"), expected);
    for unknown in [
        "2026-12-06",
        "20261206034500",
        "2026120603450Z",
        "20261206034500.xZ",
    ] {
        assert_eq!(at(unknown), None, "{unknown}");
    }
}

#[test]
fn sorted_counts_entries_like_pool_users_and_names_the_unusable_by_place() {
    let m = mapping(IdAttribute::EntryUuid, "cn", "userAccountControl");
    let mut sorted = Sorted::default();
    sorted.add_entry(
        &entry(&[
            ("entryUUID", USER.as_bytes()),
            ("cn", b"Ada"),
            ("modifyTimestamp", b"20261206034500Z"),
        ]),
        &m,
        || "page 1, entry 1".to_owned(),
    );
    sorted.add_entry(&entry(&[("cn", b"Secret Name")]), &m, || {
        "page 1, entry 2".to_owned()
    });
    sorted.add_entry(
        &entry(&[
            ("entryUUID", b"6f1c2a9e-5b7d-4e3f-8a1b-000000000002"),
            ("userAccountControl", b"514"),
        ]),
        &m,
        || "page 1, entry 3".to_owned(),
    );
    assert_eq!(sorted.read, 3);
    assert_eq!(sorted.active.len(), 1);
    let id = UserId::parse(USER).unwrap();
    assert_eq!(
        sorted.modified_of(&id),
        At::parse_rfc3339("2026-12-06T03:45:00Z").ok()
    );
    assert_eq!(sorted.left_out.0.get("disabled"), Some(&1));
    assert_eq!(
        sorted.unusable,
        ["page 1, entry 2: missing attribute `entryUUID`"]
    );
    assert!(
        !sorted.unusable.concat().contains("Secret"),
        "no personal data in a reason"
    );
}
