//! Replay tests: every sample in `events/` through its real handler against the
//! embedded in-memory setup (`Replay::embedded()`), three times over on the same
//! directory and queues.
//!
//! The samples are one small story, replayed in sorted path order
//! (`credential-exchange/` < `idp-sync/` < `post-confirmation/` < `pre-signup/`):
//!
//! 0. Chat clients exchange tokens for credentials (`credential-exchange/`),
//!    checked against the embedded JWKS and answered by the STS double: Annie
//!    (Cognito ID token, RS256) and Mary (OIDC, ES256) get credentials and
//!    their Chime users are created; expired, wrong-audience, access-instead-
//!    of-ID, `alg: none`, missing and duplicate `Authorization` are refused;
//!    Hedy's token is fine but Chime is down for her (503); a CORS preflight.
//! 1. The HR connector's messages arrive first (`idp-sync/`): Grace, Alan,
//!    Edsger (who joins and leaves in the same batch) and Frances (deleted,
//!    never existed) on a standard queue; Margaret through SNS; Barbara through
//!    EventBridge; Donald on the FIFO queue next to the outage user (Hedy,
//!    [`OUTAGE_SUB`]), whose messages fail and block their group; and poison
//!    messages, dead-lettered without blocking Katherine's valid one in the
//!    same group.
//! 2. Cognito confirmations (`post-confirmation/`): Radia heals through
//!    ConfirmForgotPassword, Hedy's confirmation is handed off to the sync
//!    queue, a hand-made event without sub is refused, Ada is created, and
//!    Grace (already created from HR) is resolved as already provisioned.
//! 3. Sign-up gatekeeping (`pre-signup/`) for the three trigger sources, the
//!    tolerant cases, and no directory change at all.
//!
//! Expectations live in [`CASES`], keyed by path relative to `events/`; a
//! sample without an expectation, or an expectation without a sample, fails.
//! The first replay creates what the story creates; the second and third find
//! the same final directory (rows say `already-exists` where the first
//! said `created`, except where the story itself creates and deletes).
//!
//! The in-memory queues record every send. Real SQS FIFO queues drop a
//! message whose deduplication id was seen in the last five minutes; the test
//! asserts the ids are the same in every replay, so a real replay would not
//! double them.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use std::time::Duration;
use testkit::samples::{
    ADA, ALAN, ANNIE, BARBARA, DONALD, DOROTHY, EDSGER, FRANCES, GRACE, HEDY, KATHERINE, MARGARET,
    MARY, RADIA,
};
use testkit::{events_dir, events_relative};

use chime_sync_core::credentials::AssumeRoleRequest;
use chime_sync_core::handlers::idp_sync::dead_letter_deduplication_id;
use chime_sync_core::memory::InMemoryDirectory;
use chime_sync_core::replay::{
    DEMO_APP_INSTANCE_ARN, Function, OUTAGE_SUB, Replay, Replayed, Row, collect_files,
};
use chime_sync_core::{OutgoingMessage, UserId};
use serde_json::{Value, json};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::util::SubscriberInitExt;

// The people of the story are `testkit::samples` (lower-case UUID subs, as Cognito
// writes them); Hedy is the sub whose every Chime call fails in the embedded directory.

const FIFO_QUEUE_ARN: &str = "arn:aws:sqs:us-east-1:123456789012:identity-sync.fifo";

/// The directory after the first replay, and after every later one: (id, name, metadata).
const FINAL_DIRECTORY: &[(&str, &str, &str)] = &[
    (ADA, "Ada Lovelace", ""),
    (DONALD, "Donald Knuth", r#"{"team":"TAOCP"}"#),
    (ALAN, "Alan Turing", r#"{"department":"Cryptanalysis"}"#),
    (
        MARGARET,
        "Margaret Hamilton",
        r#"{"department":"Apollo Guidance"}"#,
    ),
    (GRACE, "Grace Hopper", r#"{"department":"Engineering"}"#),
    (
        BARBARA,
        "Barbara Liskov",
        r#"{"department":"Programming Methodology"}"#,
    ),
    (KATHERINE, "Katherine Johnson", ""),
    (RADIA, "Radia Perlman", ""),
    (ANNIE, "Annie Easley", ""),
    (MARY, "Mary Jackson", ""),
];

// ---------------------------------------------------------------------------
// Expectations
// ---------------------------------------------------------------------------

struct Case {
    /// Relative to `events/`.
    path: &'static str,
    expect: Expect,
}

enum Expect {
    PreSignUp {
        trigger: &'static str,
        answer: SignUp,
    },
    PostConfirmation {
        trigger: &'static str,
        /// `Ok(())`: the event comes back unchanged; `Err`: the exact error text.
        answer: Result<(), &'static str>,
        user: Option<&'static str>,
        /// The row outcome in the first replay, and in the second and third.
        first: &'static str,
        later: &'static str,
        /// Whether the user is handed off to the sync queue (every replay).
        hands_off: bool,
    },
    CredentialExchange {
        /// The HTTP status and, for a refusal, the body's `error`.
        status: i64,
        error: Option<&'static str>,
        /// The precise reason of an `invalid_token` refusal (log and metric only).
        reason: Option<&'static str>,
        user: Option<&'static str>,
        /// The row outcome in the first replay, and in the second and third.
        first: &'static str,
        later: &'static str,
        /// Whether the STS double received an AssumeRole for `user`.
        assumes_role: bool,
    },
    IdpSync {
        /// `batchItemFailures` item identifiers, in batch order (every replay).
        failures: &'static [&'static str],
        messages: &'static [Msg],
        dlq: &'static [DeadLetter],
    },
    /// A scheduled event: one cycle over the demo pool.
    Reconcile {
        /// The row's outcome (every replay: what a cycle publishes is applied
        /// only when idp-sync reads it, which the replay leaves to the queue).
        outcome: &'static str,
        /// The sync queue's new messages: (message group = user, deduplication id).
        published: &'static [(&'static str, &'static str)],
    },
}

enum SignUp {
    /// The event comes back with exactly these `response` flags.
    Allowed {
        auto_confirm: bool,
        verify_email: bool,
        verify_phone: bool,
    },
    /// The exact message Cognito shows inside `UserLambdaValidationException`.
    Rejected(&'static str),
}

/// One SQS record's row: `source` is `sqs/{envelope} {type}` or `sqs` when unparseable.
struct Msg {
    id: &'static str,
    source: &'static str,
    user: Option<&'static str>,
    first: &'static str,
    later: &'static str,
}

const fn msg(
    id: &'static str,
    source: &'static str,
    user: Option<&'static str>,
    first: &'static str,
    later: &'static str,
) -> Msg {
    Msg {
        id,
        source,
        user,
        first,
        later,
    }
}

/// One DLQ send: group = the record's `MessageGroupId`, dedup id = its `messageId`,
/// body = its body, attributes `FailureReason`, `ErrorCode`, `SourceMessageId`, `SourceQueueArn`.
struct DeadLetter {
    message_id: &'static str,
    group: &'static str,
    code: &'static str,
    reason: &'static str,
}

const NO_NAME: &str = "We need a name to show in chat. Please provide preferred_username, name or given_name + family_name.";
const DOMAIN: &str = "Sign-ups with this email domain are not allowed.";
const VERIFY_EMAIL: SignUp = SignUp::Allowed {
    auto_confirm: false,
    verify_email: true,
    verify_phone: false,
};
const NO_FLAGS: SignUp = SignUp::Allowed {
    auto_confirm: false,
    verify_email: false,
    verify_phone: false,
};

/// A credential-exchange sample that is refused before STS: the body's
/// `error` and, for a token that fails authentication (whose body says only
/// `invalid_token`), the precise reason the replay row adds.
const fn refused_exchange(
    file: &'static str,
    status: i64,
    error: &'static str,
    reason: Option<&'static str>,
) -> Case {
    // Its row says `{status} {error} ({reason})` in every replay (built by `check`).
    Case {
        path: file,
        expect: Expect::CredentialExchange {
            status,
            error: Some(error),
            reason,
            user: None,
            first: "",
            later: "",
            assumes_role: false,
        },
    }
}

/// A credential-exchange sample that gets credentials for `user`.
const fn issued(file: &'static str, user: &'static str) -> Case {
    Case {
        path: file,
        expect: Expect::CredentialExchange {
            status: 200,
            error: None,
            reason: None,
            user: Some(user),
            first: "200 credentials-issued (chat user created; STS double: 3600 s session tagged UserUUID and Issuer)",
            later: "200 credentials-issued (chat user already-exists; STS double: 3600 s session tagged UserUUID and Issuer)",
            assumes_role: true,
        },
    }
}

const CREATED: &str = "created";
const PROVISIONED: &str = "already-exists";
/// A replayed event older than the last change applied to its user.
const STALE: &str = "stale";

const CASES: &[Case] = &[
    // --- credential-exchange (embedded JWKS, STS double) ----------------------
    refused_exchange(
        "credential-exchange/alg-none.json",
        401,
        "invalid_token",
        Some("algorithm_not_allowed"),
    ),
    Case {
        path: "credential-exchange/chime-outage-user.json",
        expect: Expect::CredentialExchange {
            status: 503,
            error: Some("chime_unavailable"),
            reason: None,
            user: Some(HEDY),
            first: "503 chime_unavailable",
            later: "503 chime_unavailable",
            assumes_role: false,
        },
    },
    refused_exchange(
        "credential-exchange/cognito-access-token-where-id-token-expected.json",
        401,
        "invalid_token",
        Some("wrong_token_use"),
    ),
    issued("credential-exchange/cognito-id-token-rs256.json", ANNIE),
    refused_exchange(
        "credential-exchange/duplicate-authorization.json",
        400,
        "duplicate_authorization",
        None,
    ),
    refused_exchange(
        "credential-exchange/expired-token.json",
        401,
        "token_expired",
        None,
    ),
    refused_exchange(
        "credential-exchange/missing-authorization.json",
        401,
        "missing_token",
        None,
    ),
    issued("credential-exchange/oidc-token-es256.json", MARY),
    Case {
        path: "credential-exchange/preflight-allowed-origin.json",
        expect: Expect::CredentialExchange {
            status: 204,
            error: None,
            reason: None,
            user: None,
            first: "204 preflight",
            later: "204 preflight",
            assumes_role: false,
        },
    },
    refused_exchange(
        "credential-exchange/wrong-audience.json",
        401,
        "invalid_token",
        Some("wrong_audience"),
    ),
    // --- idp-sync -----------------------------------------------------------
    Case {
        path: "idp-sync/empty-batch.json",
        expect: Expect::IdpSync {
            failures: &[],
            messages: &[],
            dlq: &[],
        },
    },
    Case {
        // user.updated of a user who does not exist yet creates her.
        path: "idp-sync/eventbridge-wrapped-user-updated.json",
        expect: Expect::IdpSync {
            failures: &[],
            messages: &[msg(
                "b8e4d2f6-3a5c-4d7e-8f9a-1b2c3d4e5f60",
                "sqs/eventbridge user.updated",
                Some(BARBARA),
                CREATED,
                PROVISIONED,
            )],
            dlq: &[],
        },
    },
    Case {
        // Hedy's group: her hand-off fails (Chime outage) and her later update is
        // reported failed too, so SQS redelivers both in order. Donald's group runs.
        path: "idp-sync/fifo-two-groups-one-failing.json",
        expect: Expect::IdpSync {
            failures: &[
                "c9f5e3a7-4b6d-4e8f-9a0b-2c3d4e5f6a71",
                "c9f5e3a7-4b6d-4e8f-9a0b-2c3d4e5f6a73",
            ],
            messages: &[
                msg(
                    "c9f5e3a7-4b6d-4e8f-9a0b-2c3d4e5f6a71",
                    "sqs/raw user.created",
                    Some(HEDY),
                    "failed, will retry (Unavailable)",
                    "failed, will retry (Unavailable)",
                ),
                msg(
                    "c9f5e3a7-4b6d-4e8f-9a0b-2c3d4e5f6a72",
                    "sqs/raw user.created",
                    Some(DONALD),
                    CREATED,
                    STALE,
                ),
                msg(
                    "c9f5e3a7-4b6d-4e8f-9a0b-2c3d4e5f6a73",
                    "sqs/raw user.updated",
                    Some(HEDY),
                    "blocked behind its group",
                    "blocked behind its group",
                ),
                msg(
                    "c9f5e3a7-4b6d-4e8f-9a0b-2c3d4e5f6a74",
                    "sqs/raw user.updated",
                    Some(DONALD),
                    "updated",
                    PROVISIONED,
                ),
            ],
            dlq: &[],
        },
    },
    Case {
        // Five poison messages go to the DLQ with their reason and are reported
        // handled; Katherine's valid message, in the same group as two of them, applies.
        path: "idp-sync/poison-messages-dead-lettered.json",
        expect: Expect::IdpSync {
            failures: &[],
            messages: &[
                msg(
                    "d0a6f4b8-5c7e-4f9a-8b1c-3d4e5f6a7b81",
                    "sqs",
                    None,
                    "dead-lettered (InvalidJson)",
                    "dead-lettered (InvalidJson)",
                ),
                msg(
                    "d0a6f4b8-5c7e-4f9a-8b1c-3d4e5f6a7b82",
                    "sqs",
                    None,
                    "dead-lettered (UnsupportedVersion)",
                    "dead-lettered (UnsupportedVersion)",
                ),
                msg(
                    "d0a6f4b8-5c7e-4f9a-8b1c-3d4e5f6a7b83",
                    "sqs/raw user.created",
                    Some(KATHERINE),
                    CREATED,
                    PROVISIONED,
                ),
                msg(
                    "d0a6f4b8-5c7e-4f9a-8b1c-3d4e5f6a7b84",
                    "sqs",
                    // Invalid, but its body still names whose it was.
                    Some(GRACE),
                    "dead-lettered (UnknownType)",
                    "dead-lettered (UnknownType)",
                ),
                msg(
                    "d0a6f4b8-5c7e-4f9a-8b1c-3d4e5f6a7b85",
                    "sqs",
                    None,
                    "dead-lettered (InvalidUserId)",
                    "dead-lettered (InvalidUserId)",
                ),
                msg(
                    "d0a6f4b8-5c7e-4f9a-8b1c-3d4e5f6a7b86",
                    "sqs",
                    None,
                    "dead-lettered (MissingField)",
                    "dead-lettered (MissingField)",
                ),
            ],
            dlq: &[
                DeadLetter {
                    message_id: "d0a6f4b8-5c7e-4f9a-8b1c-3d4e5f6a7b81",
                    group: KATHERINE,
                    code: "InvalidJson",
                    reason: "invalid JSON: EOF while parsing a string at line 1 column 115",
                },
                DeadLetter {
                    message_id: "d0a6f4b8-5c7e-4f9a-8b1c-3d4e5f6a7b82",
                    group: KATHERINE,
                    code: "UnsupportedVersion",
                    reason: "unsupported schema version 2: this consumer reads version 1",
                },
                DeadLetter {
                    message_id: "d0a6f4b8-5c7e-4f9a-8b1c-3d4e5f6a7b84",
                    group: GRACE,
                    code: "UnknownType",
                    reason: "unknown event type `user.suspended`: expected user.created, user.updated or user.deleted",
                },
                DeadLetter {
                    message_id: "d0a6f4b8-5c7e-4f9a-8b1c-3d4e5f6a7b85",
                    group: "EMP-004711",
                    code: "InvalidUserId",
                    reason: "invalid user id (sub): it is not a Cognito sub (a UUID like 6f1c2d3e-0b4a-4c5d-8e9f-a0b1c2d3e4f5)",
                },
                DeadLetter {
                    message_id: "d0a6f4b8-5c7e-4f9a-8b1c-3d4e5f6a7b86",
                    group: "hr-batch-20261120",
                    code: "MissingField",
                    reason: "missing field `user`",
                },
            ],
        },
    },
    Case {
        path: "idp-sync/sns-wrapped-user-created.json",
        expect: Expect::IdpSync {
            failures: &[],
            messages: &[msg(
                "a7d3c1e5-2f4b-4c6d-9e8f-0a1b2c3d4e5f",
                "sqs/sns user.created",
                Some(MARGARET),
                CREATED,
                PROVISIONED,
            )],
            dlq: &[],
        },
    },
    Case {
        // Standard queue: grouped by sub, so Alan's and Edsger's events apply in
        // order. Edsger joins and leaves in the batch (every replay); Frances was
        // never there (deleting her is a success).
        path: "idp-sync/standard-batch-created-updated-deleted.json",
        expect: Expect::IdpSync {
            failures: &[],
            messages: &[
                msg(
                    "6c0e2f6e-1d7b-4b8e-9a51-0f3c2a7d9e11",
                    "sqs/raw user.created",
                    Some(GRACE),
                    CREATED,
                    PROVISIONED,
                ),
                msg(
                    "6c0e2f6e-1d7b-4b8e-9a51-0f3c2a7d9e12",
                    "sqs/raw user.created",
                    Some(ALAN),
                    CREATED,
                    STALE,
                ),
                msg(
                    "6c0e2f6e-1d7b-4b8e-9a51-0f3c2a7d9e13",
                    "sqs/raw user.created",
                    Some(EDSGER),
                    CREATED,
                    STALE,
                ),
                msg(
                    "6c0e2f6e-1d7b-4b8e-9a51-0f3c2a7d9e14",
                    "sqs/raw user.updated",
                    Some(ALAN),
                    "updated",
                    PROVISIONED,
                ),
                msg(
                    "6c0e2f6e-1d7b-4b8e-9a51-0f3c2a7d9e15",
                    "sqs/raw user.deleted",
                    Some(EDSGER),
                    "deleted",
                    "already-gone",
                ),
                msg(
                    "6c0e2f6e-1d7b-4b8e-9a51-0f3c2a7d9e16",
                    "sqs/raw user.deleted",
                    Some(FRANCES),
                    "already-gone",
                    "already-gone",
                ),
            ],
            dlq: &[],
        },
    },
    // --- post-confirmation --------------------------------------------------
    Case {
        path: "post-confirmation/confirm-forgot-password-heals-missing-user.json",
        expect: Expect::PostConfirmation {
            trigger: "PostConfirmation_ConfirmForgotPassword",
            answer: Ok(()),
            user: Some(RADIA),
            first: CREATED,
            later: PROVISIONED,
            hands_off: false,
        },
    },
    Case {
        path: "post-confirmation/confirm-sign-up-chime-outage-hands-off.json",
        expect: Expect::PostConfirmation {
            trigger: "PostConfirmation_ConfirmSignUp",
            answer: Ok(()),
            user: Some(HEDY),
            first: "handed off to the sync queue (Unavailable)",
            later: "handed off to the sync queue (Unavailable)",
            hands_off: true,
        },
    },
    Case {
        path: "post-confirmation/confirm-sign-up-missing-sub.json",
        expect: Expect::PostConfirmation {
            trigger: "PostConfirmation_ConfirmSignUp",
            answer: Err(
                "the confirmation event could not be read: missing field `request.userAttributes.sub`",
            ),
            user: None,
            first: "error: the confirmation event could not be read: missing field `request.userAttributes.sub`",
            later: "error: the confirmation event could not be read: missing field `request.userAttributes.sub`",
            hands_off: false,
        },
    },
    Case {
        path: "post-confirmation/confirm-sign-up-new-user.json",
        expect: Expect::PostConfirmation {
            trigger: "PostConfirmation_ConfirmSignUp",
            answer: Ok(()),
            user: Some(ADA),
            first: CREATED,
            later: PROVISIONED,
            hands_off: false,
        },
    },
    Case {
        // Grace was created from HR (idp-sync, earlier in the replay) with the
        // same name; her metadata is kept (the trigger sends none).
        path: "post-confirmation/confirm-sign-up-user-from-idp.json",
        expect: Expect::PostConfirmation {
            trigger: "PostConfirmation_ConfirmSignUp",
            answer: Ok(()),
            user: Some(GRACE),
            first: PROVISIONED,
            later: PROVISIONED,
            hands_off: false,
        },
    },
    // --- pre-signup (replay policy: example.com/example.org, auto-verify email) ---
    Case {
        // Cognito ignores the flags for AdminCreateUser: they stay false.
        path: "pre-signup/admin-create-user-allowed.json",
        expect: Expect::PreSignUp {
            trigger: "PreSignUp_AdminCreateUser",
            answer: NO_FLAGS,
        },
    },
    Case {
        path: "pre-signup/admin-create-user-rejected-email-domain.json",
        expect: Expect::PreSignUp {
            trigger: "PreSignUp_AdminCreateUser",
            answer: SignUp::Rejected(DOMAIN),
        },
    },
    Case {
        path: "pre-signup/admin-create-user-rejected-no-display-name.json",
        expect: Expect::PreSignUp {
            trigger: "PreSignUp_AdminCreateUser",
            answer: SignUp::Rejected(NO_NAME),
        },
    },
    Case {
        // `"response": {}` (aws_lambda_events refuses it): read as all false, then policy.
        path: "pre-signup/empty-response.json",
        expect: Expect::PreSignUp {
            trigger: "PreSignUp_SignUp",
            answer: VERIFY_EMAIL,
        },
    },
    Case {
        path: "pre-signup/external-provider-allowed.json",
        expect: Expect::PreSignUp {
            trigger: "PreSignUp_ExternalProvider",
            answer: VERIFY_EMAIL,
        },
    },
    Case {
        path: "pre-signup/external-provider-rejected-email-domain.json",
        expect: Expect::PreSignUp {
            trigger: "PreSignUp_ExternalProvider",
            answer: SignUp::Rejected(DOMAIN),
        },
    },
    Case {
        path: "pre-signup/external-provider-rejected-no-display-name.json",
        expect: Expect::PreSignUp {
            trigger: "PreSignUp_ExternalProvider",
            answer: SignUp::Rejected(NO_NAME),
        },
    },
    Case {
        path: "pre-signup/sign-up-allowed.json",
        expect: Expect::PreSignUp {
            trigger: "PreSignUp_SignUp",
            answer: VERIFY_EMAIL,
        },
    },
    Case {
        path: "pre-signup/sign-up-rejected-email-domain.json",
        expect: Expect::PreSignUp {
            trigger: "PreSignUp_SignUp",
            answer: SignUp::Rejected(DOMAIN),
        },
    },
    Case {
        path: "pre-signup/sign-up-rejected-no-display-name.json",
        expect: Expect::PreSignUp {
            trigger: "PreSignUp_SignUp",
            answer: SignUp::Rejected(NO_NAME),
        },
    },
    Case {
        // A source AWS might add (aws_lambda_events refuses it): checked and
        // answered like a sign-up (fail closed).
        path: "pre-signup/unknown-trigger-source.json",
        expect: Expect::PreSignUp {
            trigger: "PreSignUp_PasswordlessSignUp",
            answer: VERIFY_EMAIL,
        },
    },
    Case {
        // The same unknown source with a domain the policy forbids: refused.
        path: "pre-signup/unknown-trigger-source-rejected-email-domain.json",
        expect: Expect::PreSignUp {
            trigger: "PreSignUp_PasswordlessSignUp",
            answer: SignUp::Rejected(DOMAIN),
        },
    },
    Case {
        // The schedule's event: Dorothy, in the pool but in no trigger's sample,
        // is planned for creation; nobody else the samples made is deleted,
        // since the pool's absence deletes only what the pool owns.
        path: "reconcile/scheduled-event.json",
        expect: Expect::Reconcile {
            outcome: "4 pool users read; published 1 creates, 0 updates, 0 deletions",
            published: &[(
                DOROTHY,
                "reconcile-74b6536da474-c-f3a9c5e1-7b2d-4c8e-9a6f-1d3b5e7c9a20",
            )],
        },
    },
];

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[test]
fn every_sample_has_an_expectation_and_every_expectation_a_sample() {
    let samples: BTreeSet<String> = samples().into_iter().map(|(rel, _)| rel).collect();
    let mut expected = BTreeSet::new();
    for case in CASES {
        assert!(
            expected.insert(case.path.to_owned()),
            "{} has two expectations",
            case.path
        );
    }
    let unexpected: Vec<_> = samples.difference(&expected).collect();
    let missing: Vec<_> = expected.difference(&samples).collect();
    assert!(
        unexpected.is_empty(),
        "samples in events/ without an expectation in tests/e2e/replay.rs CASES: {unexpected:?}"
    );
    assert!(
        missing.is_empty(),
        "expectations in tests/e2e/replay.rs CASES naming no file in events/: {missing:?}"
    );
}

/// Three replays of every sample on one `Replay`: exact answers, rows, queue
/// sends per sample and replay, the exact final directory after each replay,
/// and no email address or phone number in any log line.
#[tokio::test] // current-thread: the log capture below is this thread's default
async fn three_replays_give_the_expected_answers_and_the_same_final_directory() {
    let logs = LogCapture::default();
    let _log_guard = tracing_subscriber::fmt()
        .json()
        .with_ansi(false)
        .with_max_level(LevelFilter::TRACE)
        .with_writer(logs.clone())
        .finish()
        .set_default();

    let samples = samples();
    let replay = Replay::embedded().expect("the embedded replay setup");
    let mut directories = Vec::new();
    let mut dlq_dedup_ids: Vec<Vec<String>> = Vec::new();
    let mut sync_dedup_ids: Vec<Vec<String>> = Vec::new();
    let mut rows_replayed = 0;

    for round in 0..3 {
        let (dlq_start, sync_start) = (replay.dlq.sent().len(), replay.sync_queue.sent().len());
        for (rel, path) in &samples {
            let case = case(rel);
            let event: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap())
                .unwrap_or_else(|e| panic!("{rel}: {e}"));
            let (dlq_before, sync_before, sts_before) = (
                replay.dlq.sent().len(),
                replay.sync_queue.sent().len(),
                replay.sts.requests().len(),
            );
            let replayed = replay
                .file(path)
                .await
                .unwrap_or_else(|e| panic!("{rel} (replay {}): {e}", round + 1));
            // Every row is a logged decision, except the empty batch's (nothing to decide).
            rows_replayed += replayed
                .rows
                .iter()
                .filter(|r| r.outcome != "empty batch, nothing to do")
                .count();
            let seen = Observed {
                context: format!("{rel} (replay {})", round + 1),
                file: path.file_name().unwrap().to_string_lossy().into_owned(),
                first_replay: round == 0,
                event,
                replayed,
                dlq: replay.dlq.sent()[dlq_before..].to_vec(),
                sync: replay.sync_queue.sent()[sync_before..].to_vec(),
                sts: replay.sts.requests()[sts_before..].to_vec(),
            };
            check(&case.expect, seen);
        }
        directories.push(directory(&replay));
        dlq_dedup_ids.push(dedup_ids(&replay.dlq.sent()[dlq_start..]));
        sync_dedup_ids.push(dedup_ids(&replay.sync_queue.sent()[sync_start..]));
    }

    // The exact final directory after the first replay, unchanged by the next two.
    let mut expected: Vec<(String, String, String, String)> = FINAL_DIRECTORY
        .iter()
        .map(|(id, name, metadata)| {
            (
                (*id).to_owned(),
                format!("{DEMO_APP_INSTANCE_ARN}/user/{id}"),
                (*name).to_owned(),
                (*metadata).to_owned(),
            )
        })
        .collect();
    expected.sort();
    assert_eq!(
        directories[0], expected,
        "final directory after the first replay"
    );
    assert_eq!(
        directories[1], directories[0],
        "the second replay changed the final directory"
    );
    assert_eq!(
        directories[2], directories[0],
        "the third replay changed the final directory"
    );

    // Queue sends: the same deduplication ids every replay, so SQS FIFO would
    // drop the repeats (the in-memory queues keep them all).
    let dlq_per_replay: usize = CASES
        .iter()
        .map(|c| match &c.expect {
            Expect::IdpSync { dlq, .. } => dlq.len(),
            _ => 0,
        })
        .sum();
    let hand_offs_per_replay: usize = CASES
        .iter()
        .map(|c| match c.expect {
            Expect::PostConfirmation {
                hands_off: true, ..
            } => 1,
            Expect::Reconcile { published, .. } => published.len(),
            _ => 0,
        })
        .sum();
    assert_eq!(replay.dlq.sent().len(), 3 * dlq_per_replay, "DLQ sends");
    assert_eq!(
        replay.sync_queue.sent().len(),
        3 * hand_offs_per_replay,
        "sync-queue hand-offs"
    );
    for round in 1..3 {
        assert_eq!(
            dlq_dedup_ids[round],
            dlq_dedup_ids[0],
            "DLQ deduplication ids differ in replay {}",
            round + 1
        );
        assert_eq!(
            sync_dedup_ids[round],
            sync_dedup_ids[0],
            "sync-queue deduplication ids differ in replay {}",
            round + 1
        );
    }
    assert_eq!(
        sync_dedup_ids[0],
        vec![
            format!("cognito-confirm-{HEDY}"),
            format!("reconcile-74b6536da474-c-{DOROTHY}")
        ]
    );

    // No personal data in the logs. The check is not vacuous: the samples hold
    // emails and phone numbers, and every decision logged a line.
    let text = logs.text();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines.len() >= rows_replayed,
        "{} log lines for {rows_replayed} decisions: is the capture working?",
        lines.len()
    );
    for line in &lines {
        serde_json::from_str::<Value>(line)
            .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"));
    }
    let pii = personal_data(&samples);
    let emails = pii.iter().filter(|p| p.contains('@')).count();
    let phones = pii.iter().filter(|p| p.starts_with('+')).count();
    assert!(
        emails >= 10 && phones >= 3,
        "the samples should hold emails and phone numbers for this check to mean anything: {pii:?}"
    );
    for line in &lines {
        for needle in &pii {
            assert!(
                !line.contains(needle.as_str()),
                "a log line contains {needle:?}: {line}"
            );
        }
        assert!(
            !line.contains("@example."),
            "a log line contains an email address: {line}"
        );
    }
}

// ---------------------------------------------------------------------------
// Checking one replayed sample
// ---------------------------------------------------------------------------

/// What replaying one sample did.
struct Observed {
    /// `{path} (replay n)`, for failure messages.
    context: String,
    /// The file name, as the rows name the event.
    file: String,
    first_replay: bool,
    /// The sample as read.
    event: Value,
    replayed: Replayed,
    /// What this sample sent to the DLQ and to the sync queue.
    dlq: Vec<OutgoingMessage>,
    sync: Vec<OutgoingMessage>,
    /// The AssumeRole requests the STS double received for this sample.
    sts: Vec<AssumeRoleRequest>,
}

fn check(expect: &Expect, seen: Observed) {
    let Observed {
        context,
        file,
        first_replay,
        event,
        replayed,
        dlq: mut new_dlq,
        sync: new_sync,
        sts,
    } = seen;
    let file = file.as_str();
    match expect {
        Expect::PreSignUp { trigger, answer } => {
            assert_eq!(replayed.function, Function::PreSignUp, "{context}");
            let (response, outcome) = match answer {
                SignUp::Allowed {
                    auto_confirm,
                    verify_email,
                    verify_phone,
                } => {
                    let mut out = event.clone();
                    out["response"] = json!({
                        "autoConfirmUser": auto_confirm,
                        "autoVerifyEmail": verify_email,
                        "autoVerifyPhone": verify_phone,
                    });
                    (
                        Ok(out),
                        format!(
                            "allowed (auto-confirm {auto_confirm}, email verified {verify_email})"
                        ),
                    )
                }
                SignUp::Rejected(message) => {
                    (Err((*message).to_owned()), format!("rejected: {message}"))
                }
            };
            assert_eq!(replayed.response, response, "{context}: response");
            assert_eq!(
                replayed.rows,
                vec![row(file, trigger, &outcome, None)],
                "{context}: rows"
            );
            assert!(
                new_dlq.is_empty() && new_sync.is_empty(),
                "{context}: sends"
            );
        }
        Expect::CredentialExchange {
            status,
            error,
            reason,
            user,
            first,
            later,
            assumes_role,
        } => {
            assert_eq!(replayed.function, Function::CredentialExchange, "{context}");
            let response = replayed.response.as_ref().expect("a Function URL response");
            assert_eq!(
                response["statusCode"],
                json!(status),
                "{context}: {response}"
            );
            assert_eq!(
                response["headers"]["cache-control"], "no-store",
                "{context}: {response}"
            );
            let body: Value = response["body"]
                .as_str()
                .map(|b| serde_json::from_str(b).expect("JSON body"))
                .unwrap_or(Value::Null);
            match error {
                Some(code) => {
                    assert_eq!(body["error"], json!(code), "{context}: {body}");
                    assert!(body["message"].is_string(), "{context}: {body}");
                }
                None if *status == 200 => {
                    let user = user.expect("credentials are for a user");
                    assert_eq!(
                        body["appInstanceUserArn"],
                        json!(format!("{DEMO_APP_INSTANCE_ARN}/user/{user}")),
                        "{context}"
                    );
                    assert!(
                        body["credentials"]["accessKeyId"]
                            .as_str()
                            .is_some_and(|k| k.starts_with("ASIASTSDOUBLE")),
                        "{context}: {body}"
                    );
                }
                None => {}
            }
            let outcome = match (first.is_empty(), first_replay) {
                (true, _) => match reason {
                    Some(reason) => format!("{status} {} ({reason})", error.unwrap_or_default()),
                    None => format!("{status} {}", error.unwrap_or_default()),
                },
                (false, true) => (*first).to_owned(),
                (false, false) => (*later).to_owned(),
            };
            assert_eq!(
                replayed.rows,
                vec![row(file, "function-url", &outcome, *user)],
                "{context}: rows"
            );
            // Each event is replayed as a new sandbox's first request: no
            // session is kept from one to the next.
            if *assumes_role {
                let user = UserId::parse(user.expect("a user")).unwrap();
                let issuer_key = if user.as_str() == ANNIE {
                    "pool"
                } else {
                    "demo-oidc"
                };
                assert_eq!(
                    sts,
                    vec![AssumeRoleRequest::for_user(
                        &user,
                        issuer_key,
                        Duration::from_secs(3600)
                    )],
                    "{context}: the STS request (tag UserUUID = sub)"
                );
            } else {
                assert!(sts.is_empty(), "{context}: STS must not be called: {sts:?}");
            }
            assert!(
                new_dlq.is_empty() && new_sync.is_empty(),
                "{context}: queue sends"
            );
        }
        Expect::PostConfirmation {
            trigger,
            answer,
            user,
            first,
            later,
            hands_off,
        } => {
            assert_eq!(replayed.function, Function::PostConfirmation, "{context}");
            let response = match answer {
                Ok(()) => Ok(event.clone()),
                Err(message) => Err((*message).to_owned()),
            };
            assert_eq!(replayed.response, response, "{context}: response");
            let outcome = if first_replay { first } else { later };
            assert_eq!(
                replayed.rows,
                vec![row(file, trigger, outcome, *user)],
                "{context}: rows"
            );
            assert!(new_dlq.is_empty(), "{context}: DLQ sends {new_dlq:?}");
            if *hands_off {
                let sub = user.expect("a hand-off is for a user");
                assert_eq!(new_sync.len(), 1, "{context}: hand-offs {new_sync:?}");
                check_hand_off(&context, sub, &event, &new_sync[0]);
            } else {
                assert!(new_sync.is_empty(), "{context}: hand-offs {new_sync:?}");
            }
        }
        Expect::IdpSync {
            failures,
            messages,
            dlq,
        } => {
            assert_eq!(replayed.function, Function::IdpSync, "{context}");
            let items: Vec<Value> = failures
                .iter()
                .map(|id| json!({ "itemIdentifier": id }))
                .collect();
            assert_eq!(
                replayed.response,
                Ok(json!({ "batchItemFailures": items })),
                "{context}: response"
            );
            let mut rows: Vec<Row> = messages
                .iter()
                .map(|m| {
                    let outcome = if first_replay { m.first } else { m.later };
                    row(&format!("{file}#{}", m.id), m.source, outcome, m.user)
                })
                .collect();
            if rows.is_empty() {
                // An empty batch still gets a line in the replay, so every sample shows.
                rows.push(row(file, "sqs", "empty batch, nothing to do", None));
            }
            assert_eq!(replayed.rows, rows, "{context}: rows");
            assert!(new_sync.is_empty(), "{context}: hand-offs {new_sync:?}");
            let bodies = record_bodies(&event);
            let mut expected: Vec<OutgoingMessage> = dlq
                .iter()
                .map(|d| OutgoingMessage {
                    body: bodies[d.message_id].clone(),
                    group_id: d.group.to_owned(),
                    deduplication_id: dead_letter_deduplication_id(
                        d.message_id,
                        &bodies[d.message_id],
                    ),
                    attributes: BTreeMap::from([
                        ("FailureReason".to_owned(), d.reason.to_owned()),
                        ("ErrorCode".to_owned(), d.code.to_owned()),
                        ("SourceMessageId".to_owned(), d.message_id.to_owned()),
                        ("SourceQueueArn".to_owned(), FIFO_QUEUE_ARN.to_owned()),
                    ]),
                })
                .collect();
            // Groups run concurrently: compare the sends, not their order.
            expected.sort_by(|a, b| a.deduplication_id.cmp(&b.deduplication_id));
            new_dlq.sort_by(|a, b| a.deduplication_id.cmp(&b.deduplication_id));
            assert_eq!(new_dlq, expected, "{context}: DLQ sends");
        }
        Expect::Reconcile { outcome, published } => {
            assert_eq!(replayed.function, Function::Reconcile, "{context}");
            assert_eq!(
                replayed.rows,
                vec![row(file, "-", outcome, None)],
                "{context}: rows"
            );
            let sent: Vec<(&str, &str)> = new_sync
                .iter()
                .map(|m| (m.group_id.as_str(), m.deduplication_id.as_str()))
                .collect();
            assert_eq!(sent, *published, "{context}: published");
            assert!(new_dlq.is_empty(), "{context}: DLQ sends {new_dlq:?}");
        }
    }
}

/// The hand-off is a schema-v1 `user.created` for the sub, grouped by sub and
/// deduplicated by `cognito-confirm-{sub}`, and carries no email. Its body is
/// (but for `occurredAt`) the first message of the FIFO sample, which shows
/// what the sync queue later delivers.
fn check_hand_off(context: &str, sub: &str, event: &Value, sent: &OutgoingMessage) {
    assert_eq!(sent.group_id, sub, "{context}: hand-off group id");
    assert_eq!(
        sent.deduplication_id,
        format!("cognito-confirm-{sub}"),
        "{context}: hand-off deduplication id"
    );
    assert_eq!(
        sent.attributes,
        BTreeMap::from([("Source".to_owned(), "post-confirmation".to_owned())]),
        "{context}: hand-off attributes"
    );
    let mut body: Value = serde_json::from_str(&sent.body).expect("hand-off body is JSON");
    let occurred_at = body
        .as_object_mut()
        .and_then(|b| b.remove("occurredAt"))
        .expect("hand-off has occurredAt");
    assert!(
        occurred_at.as_str().is_some_and(|t| t.ends_with('Z')),
        "{context}: occurredAt {occurred_at}"
    );
    let name = event["request"]["userAttributes"]["name"].clone();
    assert_eq!(
        body,
        json!({"version": 1, "type": "user.created", "eventId": format!("cognito-confirm-{sub}"),
               "source": "pool", "user": {"sub": sub, "displayName": name}}),
        "{context}: hand-off body"
    );
    let email = event["request"]["userAttributes"]["email"]
        .as_str()
        .expect("the sample has an email");
    assert!(!sent.body.contains(email), "{context}: email in hand-off");

    let fifo = read_sample("idp-sync/fifo-two-groups-one-failing.json");
    let mut queued: Value =
        serde_json::from_str(fifo["Records"][0]["body"].as_str().unwrap()).unwrap();
    queued.as_object_mut().unwrap().remove("occurredAt");
    assert_eq!(
        body, queued,
        "{context}: the FIFO sample's first message should be this hand-off"
    );
}

fn row(event: &str, source: &str, outcome: &str, user: Option<&str>) -> Row {
    Row {
        event: event.to_owned(),
        source: source.to_owned(),
        outcome: outcome.to_owned(),
        user: user.map(str::to_owned),
    }
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// The samples in replay order (`collect_files` sorts), with their relative paths.
fn samples() -> Vec<(String, PathBuf)> {
    collect_files(&[events_dir()])
        .expect("events/ is readable")
        .into_iter()
        .map(|path| (events_relative(&path), path))
        .collect()
}

fn case(rel: &str) -> &'static Case {
    CASES.iter().find(|c| c.path == rel).unwrap_or_else(|| {
        panic!("events/{rel} has no expectation: add it to CASES in tests/e2e/replay.rs")
    })
}

fn read_sample(rel: &str) -> Value {
    let path = events_dir().join(rel);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// `messageId` → `body` of an SQS event's records.
fn record_bodies(event: &Value) -> BTreeMap<&str, String> {
    event["Records"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            (
                r["messageId"].as_str().unwrap_or_default(),
                r["body"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// The directory as (id, arn, name, metadata), ordered by id.
fn directory(replay: &Replay<InMemoryDirectory>) -> Vec<(String, String, String, String)> {
    let mut users: Vec<_> = replay
        .directory
        .users()
        .into_iter()
        .map(|u| (u.id.to_string(), u.arn, u.name, u.metadata))
        .collect();
    users.sort();
    users
}

fn dedup_ids(sent: &[OutgoingMessage]) -> Vec<String> {
    let mut ids: Vec<String> = sent.iter().map(|m| m.deduplication_id.clone()).collect();
    ids.sort();
    ids
}

/// Every email address and phone number in the samples: string values that
/// look like one, anywhere, including inside JSON-encoded bodies.
fn personal_data(samples: &[(String, PathBuf)]) -> BTreeSet<String> {
    fn walk(value: &Value, found: &mut BTreeSet<String>) {
        match value {
            Value::String(s) => {
                if let Ok(inner @ (Value::Object(_) | Value::Array(_))) =
                    serde_json::from_str::<Value>(s)
                {
                    walk(&inner, found);
                } else if looks_like_email(s) || looks_like_phone(s) {
                    found.insert(s.clone());
                }
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, found)),
            Value::Object(map) => map.values().for_each(|v| walk(v, found)),
            _ => {}
        }
    }
    let mut found = BTreeSet::new();
    for (rel, _) in samples {
        walk(&read_sample(rel), &mut found);
    }
    found
}

fn looks_like_email(s: &str) -> bool {
    s.rsplit_once('@').is_some_and(|(local, domain)| {
        !local.trim().is_empty() && domain.contains('.') && !s.contains(char::is_whitespace)
    })
}

fn looks_like_phone(s: &str) -> bool {
    s.strip_prefix('+')
        .is_some_and(|digits| digits.len() >= 8 && digits.bytes().all(|b| b.is_ascii_digit()))
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl LogCapture {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).expect("logs are UTF-8")
    }
}

impl io::Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogCapture {
    type Writer = LogCapture;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// The replay's Chime outage hits Hedy, the user the samples and tests know by that `sub`.
#[test]
fn the_outage_hits_the_samples_hedy() {
    assert_eq!(OUTAGE_SUB, HEDY);
}
