//! The model's rules, written once for both Chime doubles.

use super::*;

const APP: &str = "arn:aws:chime:us-east-1:123456789012:app-instance/app";
const OTHER: &str = "arn:aws:chime:us-east-1:123456789012:app-instance/other";

fn new_user(app: &str, id: &str, token: &str) -> NewUser {
    NewUser {
        app_instance_arn: app.to_owned(),
        user_id: id.to_owned(),
        name: format!("name of {id}"),
        metadata: None,
        client_request_token: token.to_owned(),
        tags: Vec::new(),
        expiration: None,
    }
}

/// The status each double reports a [`ChimeError`] as, so the rules read as Chime's answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ErrorKind {
    Conflict,
    ResourceLimitExceeded,
    NotFound,
    Forbidden,
    BadRequest,
}

impl ChimeError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Conflict { .. } => ErrorKind::Conflict,
            Self::LimitExceeded { .. } => ErrorKind::ResourceLimitExceeded,
            Self::Missing {
                answer: MissingAnswer::NotFound,
                ..
            } => ErrorKind::NotFound,
            Self::Missing {
                answer: MissingAnswer::Forbidden,
                ..
            } => ErrorKind::Forbidden,
            Self::ExpirationRequired | Self::InvalidNextToken => ErrorKind::BadRequest,
        }
    }
}

#[test]
fn create_replay_conflict_and_recreate_after_delete() {
    let mut dir = ChimeModel::new(10, MissingAnswer::NotFound);
    let created = dir.create(new_user(APP, "u1", "tok-1"), 1.0).unwrap();
    assert_eq!(created, format!("{APP}/user/u1"));

    let mut renamed = new_user(APP, "u1", "tok-1");
    renamed.name = "changed".into();
    assert_eq!(
        dir.create(renamed, 2.0).unwrap(),
        created,
        "same token replays"
    );
    assert_eq!(
        dir.describe(APP, "u1").unwrap().name,
        "name of u1",
        "a replay changes nothing"
    );

    let conflict = dir.create(new_user(APP, "u1", "tok-2"), 3.0).unwrap_err();
    assert_eq!(conflict.kind(), ErrorKind::Conflict);

    dir.delete(APP, "u1").unwrap();
    assert_eq!(
        dir.create(new_user(APP, "u1", "tok-2"), 4.0).unwrap(),
        created
    );
    assert_eq!(dir.describe(APP, "u1").unwrap().created_timestamp, 4.0);
}

#[test]
fn missing_user_answers_with_the_configured_error() {
    assert_eq!(MissingAnswer::default(), MissingAnswer::Forbidden);
    assert_eq!("404".parse(), Ok(MissingAnswer::NotFound));
    assert_eq!("Forbidden".parse(), Ok(MissingAnswer::Forbidden));
    assert!("400".parse::<MissingAnswer>().is_err());
    for (missing, kind) in [
        (MissingAnswer::NotFound, ErrorKind::NotFound),
        (MissingAnswer::Forbidden, ErrorKind::Forbidden),
    ] {
        let mut dir = ChimeModel::new(10, missing);
        assert_eq!(dir.describe(APP, "nope").unwrap_err().kind(), kind);
        assert_eq!(
            dir.update(APP, "nope", "n".into(), "m".into(), 1.0)
                .unwrap_err()
                .kind(),
            kind
        );
        assert_eq!(dir.delete(APP, "nope").unwrap_err().kind(), kind);
    }
}

#[test]
fn update_replaces_name_and_metadata() {
    let mut dir = ChimeModel::new(10, MissingAnswer::NotFound);
    dir.create(new_user(APP, "u1", "tok-1"), 10.0).unwrap();
    dir.update(APP, "u1", "New".into(), "{\"a\":1}".into(), 20.0)
        .unwrap();
    let user = dir.describe(APP, "u1").unwrap();
    assert_eq!(
        (user.name.as_str(), user.metadata.as_deref()),
        ("New", Some("{\"a\":1}"))
    );
    assert_eq!(
        (user.created_timestamp, user.last_updated_timestamp),
        (10.0, 20.0)
    );
}

#[test]
fn limit_is_per_app_instance_and_freed_by_delete() {
    let mut dir = ChimeModel::new(2, MissingAnswer::NotFound);
    dir.create(new_user(APP, "a", "tok"), 1.0).unwrap();
    dir.create(new_user(APP, "b", "tok"), 1.0).unwrap();
    assert_eq!(
        dir.create(new_user(APP, "c", "tok"), 1.0)
            .unwrap_err()
            .kind(),
        ErrorKind::ResourceLimitExceeded
    );
    assert!(
        dir.create(new_user(APP, "a", "tok"), 1.0).is_ok(),
        "a replay is not a new user"
    );
    assert!(dir.create(new_user(OTHER, "c", "tok"), 1.0).is_ok());
    dir.delete(APP, "a").unwrap();
    assert!(dir.create(new_user(APP, "c", "tok"), 1.0).is_ok());
}

#[test]
fn list_pages_in_id_order_within_one_app_instance() {
    let mut dir = ChimeModel::new(100, MissingAnswer::NotFound);
    for id in ["c", "a", "e", "b", "d"] {
        dir.create(new_user(APP, id, "tok"), 1.0).unwrap();
    }
    dir.create(new_user(OTHER, "zzz", "tok"), 1.0).unwrap();

    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = dir.list(APP, 2, token.as_deref()).unwrap();
        pages += 1;
        seen.extend(page.users.iter().map(|u| u.app_instance_user_id.clone()));
        match page.next_token {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, ["a", "b", "c", "d", "e"]);
    assert_eq!(pages, 3);

    let exact = dir.list(APP, 5, None).unwrap();
    assert_eq!(
        (exact.users.len(), exact.next_token),
        (5, None),
        "no empty trailing page"
    );
    assert!(
        dir.list(
            "arn:aws:chime:us-east-1:123456789012:app-instance/none",
            5,
            None
        )
        .unwrap()
        .users
        .is_empty()
    );
}

#[test]
fn list_tokens_are_checked() {
    let mut dir = ChimeModel::new(100, MissingAnswer::NotFound);
    for id in ["a", "b"] {
        dir.create(new_user(APP, id, "tok"), 1.0).unwrap();
    }
    let token = dir.list(APP, 1, None).unwrap().next_token.unwrap();
    assert_eq!(
        dir.list(OTHER, 1, Some(&token)).unwrap_err().kind(),
        ErrorKind::BadRequest
    );
    for bad in ["", "garbage", "fake1.zz", "fake1.6"] {
        assert_eq!(
            dir.list(APP, 1, Some(bad)).unwrap_err().kind(),
            ErrorKind::BadRequest,
            "{bad}"
        );
    }
    // A deleted anchor still works: the token holds the id, not a position.
    dir.delete(APP, "a").unwrap();
    let rest = dir.list(APP, 1, Some(&token)).unwrap();
    assert_eq!(
        rest.users
            .iter()
            .map(|u| u.app_instance_user_id.as_str())
            .collect::<Vec<_>>(),
        ["b"]
    );
}

#[test]
fn expiration_is_put_cleared_as_configured_and_purged_when_due() {
    let week = Expiration {
        days: 7,
        criterion: "CREATED_TIMESTAMP".into(),
    };
    for (clear, after_clear) in [
        (ClearAnswer::Removes, Ok(None)),
        (ClearAnswer::Ignores, Ok(Some(week.clone()))),
        (ClearAnswer::Rejects, Err(ErrorKind::BadRequest)),
    ] {
        let mut dir = ChimeModel::new(10, MissingAnswer::Forbidden);
        dir.create(new_user(APP, "u1", "tok"), 1_000.0).unwrap();
        dir.create(new_user(APP, "u2", "tok"), 1_000.0).unwrap();
        let (user_arn, set) = dir
            .put_expiration(APP, "u1", Some(week.clone()), clear)
            .unwrap();
        assert_eq!(user_arn, format!("{APP}/user/u1"));
        assert_eq!(set, Some(week.clone()));
        assert_eq!(
            dir.describe(APP, "u1").unwrap().expiration,
            Some(week.clone())
        );
        let cleared = dir
            .put_expiration(APP, "u1", None, clear)
            .map(|(_, e)| e)
            .map_err(|e| e.kind());
        assert_eq!(cleared, after_clear, "{clear:?}");
        // Due 7 days after creation: not a second before.
        dir.put_expiration(APP, "u1", Some(week.clone()), clear)
            .unwrap();
        let due = 1_000.0 + 7.0 * 86_400.0;
        assert!(dir.purge_expired(due - 1.0).is_empty());
        let gone = dir.purge_expired(due);
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].app_instance_user_id, "u1");
        assert_eq!(dir.all().len(), 1, "u2 has no expiration");
        assert_eq!(
            dir.put_expiration(APP, "u1", None, clear)
                .unwrap_err()
                .kind(),
            ErrorKind::Forbidden,
            "a missing user is answered as configured"
        );
    }
    assert_eq!("Rejects".parse(), Ok(ClearAnswer::Rejects));
    assert!("maybe".parse::<ClearAnswer>().is_err());
}
