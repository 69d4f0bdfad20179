//! Wire tests: `ChimeDirectory` (the real `aws-sdk-chimesdkidentity` client,
//! our retry classifier and error mapping) against the local fake Chime SDK
//! Identity server. Static test credentials, no internet, ephemeral ports;
//! every test is bounded in time.
//!
//! Attempt counts come from the fake's per-operation counters, so each retry
//! assertion is about HTTP requests that really crossed the wire.

use crate::{sdk_config, start, within};
use std::time::{Duration, Instant};

use aws_sdk_chimesdkidentity::config::retry::RetryConfig;
use aws_sdk_chimesdkidentity::error::ProvideErrorMetadata;
use aws_sdk_chimesdkidentity::operation::create_app_instance_user::builders::CreateAppInstanceUserFluentBuilder;
use chime_identity_fake::{
    FakeChimeHandle, FakeConfig, FaultConfig, IamDenial, MissingAnswer, Operation, ScriptedFault,
};
use chime_sync_aws::{ChimeConfig, ChimeDirectory};
use chime_sync_core::Provisioning;
use chime_sync_core::metrics::CallStats;
use chime_sync_core::{
    AppInstanceArn, Applied, Directory, DirectoryError, DisplayName, ErrorClass, Metadata, UserId,
    UserProfile,
};

const APP: &str =
    "arn:aws:chime:eu-west-1:123456789012:app-instance/0a1b2c3d-4e5f-6789-abcd-ef0123456789";
const SUB: &str = "6f1c2d3e-0b4a-4c5d-8e9f-a0b1c2d3e4f5";

/// A wire test run once per missing-user answer of the fake, as
/// `name::missing_user_404` and `name::missing_user_403`: everything here must
/// hold whichever Chime really answers.
macro_rules! in_both_modes {
    ($(#[doc = $doc:expr])* async fn $name:ident($mode:ident) $body:block) => {
        $(#[doc = $doc])*
        mod $name {
            use super::*;

            async fn run($mode: MissingAnswer) $body

            #[tokio::test]
            async fn missing_user_404() {
                run(MissingAnswer::NotFound).await
            }

            #[tokio::test]
            async fn missing_user_403() {
                run(MissingAnswer::Forbidden).await
            }
        }
    };
}

fn chime_config(fake: &FakeChimeHandle) -> ChimeConfig {
    let mut cfg = ChimeConfig::new(AppInstanceArn::parse(APP).unwrap());
    cfg.endpoint_url = Some(fake.endpoint_url());
    cfg.initial_backoff = Duration::from_millis(20);
    cfg
}

fn directory(fake: &FakeChimeHandle) -> ChimeDirectory {
    directory_with(fake, |_| {})
}

/// [`directory`], with `tune` applied to the test configuration first.
fn directory_with(fake: &FakeChimeHandle, tune: impl FnOnce(&mut ChimeConfig)) -> ChimeDirectory {
    let mut cfg = chime_config(fake);
    tune(&mut cfg);
    ChimeDirectory::new(&sdk_config(), cfg)
}

/// A fake that throttles everything: no tokens, no refill.
async fn start_always_throttling(mode: MissingAnswer) -> FakeChimeHandle {
    start(
        FakeConfig::new()
            .with_missing_user(mode)
            .with_faults(FaultConfig::none().with_tps_limit(0.0).with_burst(0)),
    )
    .await
}

fn sub(n: u32) -> UserId {
    UserId::parse(&format!("{n:08x}-0000-4000-8000-{n:012x}")).unwrap()
}

fn profile(id: &UserId, name: &str) -> UserProfile {
    UserProfile {
        id: id.clone(),
        name: DisplayName::parse(name).unwrap(),
        metadata: None,
    }
}

fn ada() -> UserProfile {
    profile(&UserId::parse(SUB).unwrap(), "Ada Lovelace")
}

fn attempts(fake: &FakeChimeHandle, op: Operation) -> u64 {
    fake.counters().attempts(op)
}

/// A user made by someone else (another request token), as a hand-made or
/// half-provisioned user would be.
async fn create_by_hand(dir: &ChimeDirectory, user_id: &str, name: &str) {
    create_request(dir.client(), user_id, name, "made-by-hand")
        .send()
        .await
        .expect("hand-made user is created");
}

/// A `CreateAppInstanceUser` in [`APP`] straight through an SDK client, past our adapter.
fn create_request(
    client: &aws_sdk_chimesdkidentity::Client,
    user_id: &str,
    name: &str,
    token: impl Into<String>,
) -> CreateAppInstanceUserFluentBuilder {
    client
        .create_app_instance_user()
        .app_instance_arn(APP)
        .app_instance_user_id(user_id)
        .name(name)
        .client_request_token(token)
}

in_both_modes! {
async fn create_sends_the_sub_the_name_and_a_deterministic_token(mode) {
    within(async {
        let fake = start(FakeConfig::new().with_missing_user(mode)).await;
        let dir = directory(&fake);
        let user = ada();

        assert_eq!(dir.create_or_resolve(&user).await, Ok(Applied::Created));

        let users = fake.users();
        assert_eq!(users.len(), 1);
        let record = &users[0];
        assert_eq!(record.app_instance_user_id, SUB);
        assert_eq!(record.app_instance_user_arn, format!("{APP}/user/{SUB}"));
        assert_eq!(record.name, "Ada Lovelace");
        assert_eq!(
            record.metadata, None,
            "no metadata unless the profile has some"
        );
        assert_eq!(record.client_request_token, user.client_request_token());
        assert!(
            record
                .client_request_token
                .starts_with(&format!("sync-{SUB}-"))
        );

        let described = dir.describe(&user.id).await.unwrap().unwrap();
        assert_eq!(described.id, user.id);
        assert_eq!(described.arn, format!("{APP}/user/{SUB}"));
        assert_eq!(described.name, "Ada Lovelace");
        assert_eq!(described.metadata, "");
    })
    .await;
}
}

in_both_modes! {
async fn create_with_metadata_stores_it(mode) {
    within(async {
        let fake = start(FakeConfig::new().with_missing_user(mode)).await;
        let dir = directory(&fake);
        let mut user = ada();
        user.metadata = Some(Metadata::parse(r#"{"department":"R&D"}"#).unwrap());
        assert_eq!(dir.create(&user).await, Ok(()));
        assert_eq!(
            fake.users()[0].metadata.as_deref(),
            Some(r#"{"department":"R&D"}"#)
        );
    })
    .await;
}
}

in_both_modes! {
async fn a_create_asking_for_a_new_name_renames_the_existing_user(mode) {
    within(async {
        let fake = start(FakeConfig::new().with_missing_user(mode)).await;
        let dir = directory(&fake);
        let id = UserId::parse(SUB).unwrap();
        assert_eq!(
            dir.create_or_resolve(&profile(&id, "Ada")).await,
            Ok(Applied::Created)
        );
        // A different request gets a different token, so Chime answers
        // Conflict instead of replaying the first create, and the name follows.
        assert_eq!(
            dir.create_or_resolve(&profile(&id, "Ada Lovelace")).await,
            Ok(Applied::Updated)
        );
        let users = fake.users();
        assert_eq!(users.len(), 1);
        assert_eq!(users[0].name, "Ada Lovelace");
        assert_eq!(attempts(&fake, Operation::CreateAppInstanceUser), 2);
        assert_eq!(attempts(&fake, Operation::UpdateAppInstanceUser), 1);
    })
    .await;
}
}

in_both_modes! {
async fn re_creating_with_the_same_token_is_an_idempotent_replay(mode) {
    within(async {
        let fake = start(FakeConfig::new().with_missing_user(mode)).await;
        let dir = directory(&fake);
        let user = ada();

        assert_eq!(dir.create(&user).await, Ok(()));
        // Cognito's retry, SQS's redelivery or the SDK's own retry: same request.
        assert_eq!(dir.create(&user).await, Ok(()));
        assert_eq!(dir.create_or_resolve(&user).await, Ok(Applied::Created));

        assert_eq!(fake.users().len(), 1);
        assert_eq!(attempts(&fake, Operation::CreateAppInstanceUser), 3);
        assert_eq!(attempts(&fake, Operation::DescribeAppInstanceUser), 0);
    })
    .await;
}
}

in_both_modes! {
async fn a_conflict_resolves_to_updated_then_already_provisioned(mode) {
    within(async {
        let fake = start(FakeConfig::new().with_missing_user(mode)).await;
        let dir = directory(&fake);
        let user = ada();
        create_by_hand(&dir, SUB, "A. Lovelace").await;

        // Create → Conflict → Describe → Update (the name differs).
        assert_eq!(dir.create_or_resolve(&user).await, Ok(Applied::Updated));
        assert_eq!(fake.users()[0].name, "Ada Lovelace");

        // Create → Conflict → Describe: nothing left to change.
        assert_eq!(
            dir.create_or_resolve(&user).await,
            Ok(Applied::AlreadyProvisioned)
        );

        let counters = fake.counters();
        assert_eq!(counters.attempts(Operation::CreateAppInstanceUser), 3);
        assert_eq!(
            counters
                .get(Operation::CreateAppInstanceUser)
                .errors
                .get("ConflictException"),
            Some(&2)
        );
        assert_eq!(counters.attempts(Operation::DescribeAppInstanceUser), 2);
        assert_eq!(counters.attempts(Operation::UpdateAppInstanceUser), 1);
        assert_eq!(fake.users().len(), 1);
    })
    .await;
}
}

in_both_modes! {
async fn update_replaces_name_and_metadata(mode) {
    within(async {
        let fake = start(FakeConfig::new().with_missing_user(mode)).await;
        let dir = directory(&fake);
        let user = ada();
        dir.create(&user).await.unwrap();

        assert_eq!(
            dir.update(&user.id, "Countess of Lovelace", r#"{"team":"engines"}"#)
                .await,
            Ok(())
        );
        let described = dir.describe(&user.id).await.unwrap().unwrap();
        assert_eq!(described.name, "Countess of Lovelace");
        assert_eq!(described.metadata, r#"{"team":"engines"}"#);

        // upsert with the same state writes nothing.
        let mut same = profile(&user.id, "Countess of Lovelace");
        same.metadata = Some(Metadata::parse(r#"{"team":"engines"}"#).unwrap());
        assert_eq!(dir.upsert(&same).await, Ok(Applied::AlreadyProvisioned));
        assert_eq!(attempts(&fake, Operation::UpdateAppInstanceUser), 1);
    })
    .await;
}
}

in_both_modes! {
async fn list_pages_through_every_user_and_skips_non_subs(mode) {
    within(async {
        let fake = start(FakeConfig::new().with_missing_user(mode)).await;
        let dir = directory(&fake);
        let mut expected: Vec<UserId> = (0..120).map(sub).collect();
        for id in &expected {
            dir.create(&profile(id, "User")).await.unwrap();
        }
        // Not ours: a back-end user whose id is no Cognito sub.
        create_by_hand(&dir, "back-end-worker", "Worker").await;

        let mut seen = Vec::new();
        let mut pages = Vec::new();
        let mut token = None;
        loop {
            let page = dir.list(token.take()).await.unwrap();
            pages.push(page.users.len());
            seen.extend(page.users.into_iter().map(|u| {
                assert_eq!(u.name, "User");
                assert_eq!(u.arn, format!("{APP}/user/{}", u.id));
                u.id
            }));
            match page.next_token {
                Some(next) => token = Some(next),
                None => break,
            }
        }

        // 121 users in pages of 50: 50 + 50 + 21, less the one that is not a sub.
        assert_eq!(pages.len(), 3, "{pages:?}");
        assert_eq!(pages.iter().sum::<usize>(), 120);
        seen.sort();
        expected.sort();
        assert_eq!(seen, expected);
        assert_eq!(attempts(&fake, Operation::ListAppInstanceUsers), 3);
    })
    .await;
}
}

in_both_modes! {
async fn a_429_burst_is_retried_and_succeeds(mode) {
    within(async {
        let fake = start(FakeConfig::new().with_missing_user(mode)).await;
        let dir = directory(&fake);
        fake.set_faults(
            FaultConfig::none().with_script([ScriptedFault::Throttle, ScriptedFault::Throttle]),
        )
        .unwrap();

        assert_eq!(dir.create_or_resolve(&ada()).await, Ok(Applied::Created));

        let create = fake.counters().get(Operation::CreateAppInstanceUser);
        assert_eq!(create.attempts, 3, "two 429s, then success");
        assert_eq!(create.injected.throttled, 2);
        assert_eq!(create.succeeded, 1);
        assert_eq!(fake.users().len(), 1);
        // The ThrottledRetries metric: both 429s were retried, inside one call.
        let stats = dir.take_call_stats();
        assert_eq!(stats.throttled_retries, 2);
        assert_eq!(stats.latencies.len(), 1, "one SDK call, retries included");
        assert_eq!(dir.take_call_stats(), CallStats::default(), "taking resets");
    })
    .await;
}
}

in_both_modes! {
/// The ChimeCallLatency metric: every call is timed, at least as long as
/// Chime took (only a lower bound: a loaded machine makes it longer).
async fn each_call_is_timed_as_long_as_chime_takes(mode) {
    within(async {
        let fake = start(
            FakeConfig::new()
                .with_missing_user(mode)
                .with_faults(FaultConfig::none().with_latency(60, 60)),
        )
        .await;
        let dir = directory(&fake);
        assert_eq!(dir.upsert(&ada()).await, Ok(Applied::Created));
        let stats = dir.take_call_stats();
        let made = fake.counters().total_attempts();
        assert_eq!(stats.latencies.len() as u64, made, "{stats:?}");
        assert!(made >= 2, "a describe and a create");
        for took in &stats.latencies {
            assert!(*took >= Duration::from_millis(60), "{took:?}");
        }
        assert_eq!(stats.throttled_retries, 0);
    })
    .await;
}
}

in_both_modes! {
async fn a_503_burst_is_retried_and_succeeds(mode) {
    within(async {
        let fake = start(FakeConfig::new().with_missing_user(mode)).await;
        let dir = directory(&fake);
        fake.set_faults(FaultConfig::none().with_script([
            ScriptedFault::ServiceUnavailable,
            ScriptedFault::ServiceUnavailable,
        ]))
        .unwrap();

        assert_eq!(dir.create_or_resolve(&ada()).await, Ok(Applied::Created));

        let create = fake.counters().get(Operation::CreateAppInstanceUser);
        assert_eq!(create.attempts, 3, "two 503s, then success");
        assert_eq!(create.injected.service_unavailable, 2);
        assert_eq!(dir.take_call_stats().throttled_retries, 0, "503 is not throttling");
    })
    .await;
}
}

in_both_modes! {
async fn a_500_and_a_dropped_connection_are_retried(mode) {
    within(async {
        let fake = start(FakeConfig::new().with_missing_user(mode)).await;
        let dir = directory(&fake);
        dir.create(&ada()).await.unwrap();
        fake.set_faults(
            FaultConfig::none().with_script([ScriptedFault::ServiceFailure, ScriptedFault::Drop]),
        )
        .unwrap();

        let found = dir.describe(&ada().id).await.unwrap();
        assert!(found.is_some());

        let describe = fake.counters().get(Operation::DescribeAppInstanceUser);
        assert_eq!(
            describe.attempts, 3,
            "500, dropped connection, then success"
        );
        assert_eq!(describe.injected.service_failures, 1);
        assert_eq!(describe.injected.dropped, 1);
    })
    .await;
}
}

in_both_modes! {
async fn persistent_throttling_gives_up_after_max_attempts_within_the_budget(mode) {
    within(async {
        let fake = start_always_throttling(mode).await;
        let budget = Duration::from_millis(1500);
        let dir = directory_with(&fake, |cfg| {
            cfg.operation_timeout = budget;
            cfg.max_attempts = 4;
        });

        let started = Instant::now();
        let err = dir.create_or_resolve(&ada()).await.unwrap_err();
        let elapsed = started.elapsed();

        assert!(
            matches!(err, DirectoryError::Throttled(_) | DirectoryError::Timeout),
            "{err:?}"
        );
        assert_eq!(err.class(), ErrorClass::Retryable);
        eprintln!("persistent 429, 4 attempts: {err:?} after {elapsed:?}");
        assert!(elapsed < budget + Duration::from_millis(500), "{elapsed:?}");
        assert_eq!(attempts(&fake, Operation::CreateAppInstanceUser), 4);
        assert!(fake.users().is_empty());
        // Four throttled attempts, three of them retried: the last one ended the call.
        assert_eq!(dir.take_call_stats().throttled_retries, 3);
    })
    .await;
}
}

in_both_modes! {
async fn persistent_throttling_stops_at_the_deadline_when_attempts_would_outlast_it(mode) {
    within(async {
        let fake = start_always_throttling(mode).await;
        let budget = Duration::from_millis(600);
        let dir = directory_with(&fake, |cfg| {
            cfg.operation_timeout = budget;
            cfg.max_attempts = 10;
            // Slow backoff (up to 0.3 s, 0.6 s, 1.2 s, ... before jitter): ten
            // attempts cannot fit in 600 ms, so the operation timeout must end it.
            cfg.initial_backoff = Duration::from_millis(300);
        });

        let started = Instant::now();
        let err = dir.create(&ada()).await.unwrap_err();
        let elapsed = started.elapsed();

        assert!(
            matches!(err, DirectoryError::Throttled(_) | DirectoryError::Timeout),
            "{err:?}"
        );
        assert_eq!(err.class(), ErrorClass::Retryable);
        assert!(elapsed < budget + Duration::from_millis(500), "{elapsed:?}");
        let made = attempts(&fake, Operation::CreateAppInstanceUser);
        eprintln!("persistent 429, deadline: {err:?} after {elapsed:?}, {made} attempts");
        assert!((1..10).contains(&made), "{made} attempts");
    })
    .await;
}
}

in_both_modes! {
async fn slow_chime_is_a_timeout_within_the_budget(mode) {
    within(async {
        let fake =
            start(FakeConfig::new().with_missing_user(mode).with_faults(FaultConfig::none().with_latency(2000, 2000)))
                .await;
        let budget = Duration::from_millis(400);
        let dir = directory_with(&fake, |cfg| cfg.operation_timeout = budget);

        let started = Instant::now();
        let err = dir.create(&ada()).await.unwrap_err();
        assert_eq!(err, DirectoryError::Timeout);
        assert!(
            started.elapsed() < budget + Duration::from_millis(500),
            "{:?}",
            started.elapsed()
        );
    })
    .await;
}
}

in_both_modes! {
async fn a_400_is_never_retried(mode) {
    within(async {
        let fake = start(FakeConfig::new().with_missing_user(mode)).await;
        let dir = directory(&fake);
        dir.create(&ada()).await.unwrap();

        // 101 characters: Chime's Name limit is 100, so BadRequestException.
        let err = dir
            .update(&ada().id, &"x".repeat(101), "")
            .await
            .unwrap_err();

        assert!(
            matches!(&err, DirectoryError::Rejected(m) if m.contains("BadRequestException")),
            "{err:?}"
        );
        assert_eq!(err.class(), ErrorClass::Permanent);
        assert_eq!(attempts(&fake, Operation::UpdateAppInstanceUser), 1);
    })
    .await;
}
}

in_both_modes! {
async fn the_user_limit_is_limit_exceeded_and_not_retried(mode) {
    within(async {
        let fake = start(FakeConfig::new().with_missing_user(mode).with_user_limit(1)).await;
        let dir = directory(&fake);
        dir.create(&profile(&sub(1), "One")).await.unwrap();

        let err = dir.create(&profile(&sub(2), "Two")).await.unwrap_err();

        assert!(matches!(err, DirectoryError::LimitExceeded(_)), "{err:?}");
        assert_eq!(attempts(&fake, Operation::CreateAppInstanceUser), 2);
    })
    .await;
}
}

#[tokio::test]
async fn an_unreachable_endpoint_is_a_retryable_transport_error() {
    within(async {
        // Bind, learn the port, stop: nothing listens there any more.
        let fake = start(FakeConfig::new()).await;
        let mut cfg = chime_config(&fake);
        cfg.max_attempts = 2;
        fake.shutdown().await;
        let dir = ChimeDirectory::new(&sdk_config(), cfg);

        let err = dir.describe(&ada().id).await.unwrap_err();
        assert!(
            matches!(err, DirectoryError::Transport(_) | DirectoryError::Timeout),
            "{err:?}"
        );
        assert_eq!(err.class(), ErrorClass::Retryable);
    })
    .await;
}

/// The reason the classifier exists (docs/ARCHITECTURE.md, "Chime SDK
/// Identity", throttling): the SDK's standard retry,
/// left alone, gives up on Chime's 429 after one attempt — while it does
/// retry a 503. If an SDK upgrade starts retrying 429 by itself, this test
/// says so, and the classifier can go.
#[tokio::test]
async fn without_our_classifier_the_sdk_does_not_retry_a_429() {
    within(async {
        let fake = start(FakeConfig::new()).await;
        let plain = aws_sdk_chimesdkidentity::Client::from_conf(
            aws_sdk_chimesdkidentity::config::Builder::from(&sdk_config())
                .region(aws_sdk_chimesdkidentity::config::Region::new("eu-west-1"))
                .endpoint_url(fake.endpoint_url())
                .retry_config(
                    RetryConfig::standard()
                        .with_max_attempts(4)
                        .with_initial_backoff(Duration::from_millis(10)),
                )
                .build(),
        );
        let create =
            |id: &'static str| create_request(&plain, id, "Plain", format!("plain-{id}")).send();

        fake.set_faults(FaultConfig::none().with_script([ScriptedFault::Throttle]))
            .unwrap();
        let err = create(SUB).await.unwrap_err();
        assert_eq!(
            err.as_service_error().and_then(|e| e.code()),
            Some("ThrottledClientException")
        );
        assert_eq!(attempts(&fake, Operation::CreateAppInstanceUser), 1);

        fake.reset();
        fake.set_faults(FaultConfig::none().with_script([ScriptedFault::ServiceUnavailable]))
            .unwrap();
        create(SUB).await.unwrap();
        assert_eq!(attempts(&fake, Operation::CreateAppInstanceUser), 2);
    })
    .await;
}

// ---------------------------------------------------------------------------
// The missing-or-denied table of `chime.rs`, row by row, in both modes
// ---------------------------------------------------------------------------

/// A fake answering missing users with `mode`, with `faults` from the start.
async fn start_with(mode: MissingAnswer, faults: FaultConfig) -> FakeChimeHandle {
    start(
        FakeConfig::new()
            .with_missing_user(mode)
            .with_faults(faults),
    )
    .await
}

/// The next request of `op` (only) meets `fault`.
fn next_of(fake: &FakeChimeHandle, op: Operation, fault: ScriptedFault) {
    fake.set_faults(FaultConfig::none().only_for([op]).with_script([fault]))
        .unwrap();
}

/// [`start_with`] and the directory over it.
async fn fake_and_directory(
    mode: MissingAnswer,
    faults: FaultConfig,
) -> (FakeChimeHandle, ChimeDirectory) {
    let fake = start_with(mode, faults).await;
    let dir = directory(&fake);
    (fake, dir)
}

fn counts(fake: &FakeChimeHandle, op: Operation) -> (u64, u64) {
    let c = fake.counters().get(op);
    (c.attempts, c.succeeded)
}

fn assert_denied(result: Result<impl std::fmt::Debug, DirectoryError>, action: &str) {
    match result {
        Err(e @ DirectoryError::AccessDenied(_)) => {
            assert_eq!(e.class(), ErrorClass::Retryable);
            assert!(e.to_string().contains(action), "{e}");
        }
        other => panic!("expected {action} denied, got {other:?}"),
    }
}

fn assert_refused(result: Result<Applied, DirectoryError>) {
    match &result {
        Err(e @ DirectoryError::AccessDenied(why)) if why.contains("refused") => {
            assert_eq!(e.class(), ErrorClass::Retryable)
        }
        other => panic!("expected a retryable refusal, got {other:?}"),
    }
}

in_both_modes! {
/// Row "404" and row "other 403" of the first table, on the raw calls.
async fn a_missing_user_is_missing_or_possibly_missing_and_never_retried(mode) {
    within(async {
        let (fake, dir) = fake_and_directory(mode, FaultConfig::none()).await;
        let id = sub(1);
        let (described, updated, deleted) = (
            dir.describe(&id).await,
            dir.update(&id, "Nobody", "").await,
            dir.delete(&id).await,
        );
        match mode {
            MissingAnswer::NotFound => {
                assert_eq!(described, Ok(None));
                assert_eq!(updated, Err(DirectoryError::NotFound));
                assert_eq!(deleted, Err(DirectoryError::NotFound));
            }
            MissingAnswer::Forbidden => {
                for e in [described.map(|_| ()), updated, deleted] {
                    assert!(
                        matches!(&e, Err(DirectoryError::PossiblyMissing(m)) if m.contains("invalid app instance user ARN")),
                        "{e:?}"
                    );
                }
            }
        }
        assert_eq!(fake.counters().total_attempts(), 3, "answers, not failures");
    })
    .await;
}
}

in_both_modes! {
/// Delete: 204, then 404 (or 403 settled by a describe that cannot find it either).
async fn delete_of_a_user_already_gone_succeeds(mode) {
    within(async {
        let (fake, dir) = fake_and_directory(mode, FaultConfig::none()).await;
        let user = ada();
        dir.create(&user).await.unwrap();
        assert_eq!(dir.delete_if_present(&user.id).await, Ok(Applied::Deleted));
        assert!(fake.users().is_empty());
        assert_eq!(
            dir.delete_if_present(&user.id).await,
            Ok(Applied::AlreadyGone)
        );
        let describes = attempts(&fake, Operation::DescribeAppInstanceUser);
        match mode {
            MissingAnswer::NotFound => assert_eq!(describes, 0, "a 404 settles it"),
            MissingAnswer::Forbidden => assert_eq!(describes, 1, "one describe settles it"),
        }
        assert_eq!(attempts(&fake, Operation::DeleteAppInstanceUser), 2);
    })
    .await;
}
}

in_both_modes! {
/// Delete: a non-IAM 403 for a user that exists is a refusal, never a success.
async fn a_refused_delete_of_an_existing_user_is_retryable_and_the_user_stays(mode) {
    within(async {
        let (fake, dir) = fake_and_directory(mode, FaultConfig::none()).await;
        dir.create(&ada()).await.unwrap();
        next_of(&fake, Operation::DeleteAppInstanceUser, ScriptedFault::Forbidden);
        assert_refused(dir.delete_if_present(&ada().id).await);
        assert_eq!(fake.users().len(), 1, "the user stays");
        assert_eq!(counts(&fake, Operation::DescribeAppInstanceUser), (1, 1));
    })
    .await;
}
}

in_both_modes! {
/// Any call IAM denies (as ForbiddenException or AccessDeniedException) is
/// denied: retryable, not retried by the SDK, naming the action, and a
/// denied delete leaves the user.
async fn iam_denials_are_denied_on_every_call_and_never_a_success(mode) {
    within(async {
        for denial in [IamDenial::Forbidden, IamDenial::AccessDenied] {
            let (fake, dir) = fake_and_directory(mode, FaultConfig::none()).await;
            let user = ada();
            dir.create(&user).await.unwrap();
            let deny = |op| {
                fake.reset_counters();
                fake.set_faults(FaultConfig::none().deny([op]).deny_as(denial))
                    .unwrap();
            };
            deny(Operation::DeleteAppInstanceUser);
            assert_denied(dir.delete_if_present(&user.id).await, "chime:DeleteAppInstanceUser");
            assert_eq!(fake.users().len(), 1, "{denial:?}: the user stays");
            assert_eq!(counts(&fake, Operation::DeleteAppInstanceUser), (1, 0));
            assert_eq!(attempts(&fake, Operation::DescribeAppInstanceUser), 0, "no settling a denial");
            deny(Operation::DescribeAppInstanceUser);
            assert_denied(dir.upsert(&user).await, "chime:DescribeAppInstanceUser");
            assert_denied(dir.ensure_exists(&user).await, "chime:DescribeAppInstanceUser");
            assert_eq!(attempts(&fake, Operation::CreateAppInstanceUser), 0);
            deny(Operation::UpdateAppInstanceUser);
            assert_denied(
                dir.upsert(&profile(&user.id, "Renamed")).await,
                "chime:UpdateAppInstanceUser",
            );
            deny(Operation::CreateAppInstanceUser);
            assert_denied(dir.upsert(&profile(&sub(2), "Bob")).await, "chime:CreateAppInstanceUser");
            deny(Operation::ListAppInstanceUsers);
            assert_denied(dir.list(None).await, "chime:ListAppInstanceUsers");
            assert_eq!(fake.users().len(), 1);
            assert_eq!(fake.users()[0].name, "Ada Lovelace");
        }
    })
    .await;
}
}

in_both_modes! {
/// Delete: a possibly-missing answer whose settling describe is denied stays denied.
async fn a_possibly_missing_delete_whose_describe_is_denied_is_denied(mode) {
    within(async {
        let fake = start_with(
            mode,
            FaultConfig::none()
                .deny([Operation::DescribeAppInstanceUser])
                .only_for([Operation::DeleteAppInstanceUser])
                .with_script([ScriptedFault::Forbidden]),
        )
        .await;
        let dir = directory(&fake);
        assert_denied(dir.delete_if_present(&sub(3)).await, "chime:DescribeAppInstanceUser");
    })
    .await;
}
}

in_both_modes! {
/// Describe (upsert): a missing user is created; its replay reports `already-exists`.
async fn update_of_a_missing_user_creates_it_and_a_replay_finds_it(mode) {
    within(async {
        let (fake, dir) = fake_and_directory(mode, FaultConfig::none()).await;
        let user = ada();
        assert_eq!(dir.upsert(&user).await, Ok(Applied::Created));
        assert_eq!(counts(&fake, Operation::DescribeAppInstanceUser), (1, 0));
        assert_eq!(counts(&fake, Operation::CreateAppInstanceUser), (1, 1));
        // The same message again (SQS redelivery, a replay): it reads first.
        assert_eq!(dir.upsert(&user).await, Ok(Applied::AlreadyProvisioned));
        assert_eq!(Applied::AlreadyProvisioned.as_str(), "already-exists");
        assert_eq!(attempts(&fake, Operation::CreateAppInstanceUser), 1);
        assert_eq!(fake.users().len(), 1);
    })
    .await;
}
}

in_both_modes! {
/// Describe (heal): a missing user is created directly, an existing one is left alone.
async fn the_heal_creates_a_missing_user_directly(mode) {
    within(async {
        let (fake, dir) = fake_and_directory(mode, FaultConfig::none()).await;
        assert_eq!(dir.ensure_exists(&ada()).await, Ok(Applied::Created));
        assert_eq!(
            (
                attempts(&fake, Operation::DescribeAppInstanceUser),
                attempts(&fake, Operation::CreateAppInstanceUser)
            ),
            (1, 1)
        );
        assert_eq!(
            dir.ensure_exists(&profile(&ada().id, "Other")).await,
            Ok(Applied::AlreadyProvisioned)
        );
        assert_eq!(fake.users()[0].name, "Ada Lovelace");
    })
    .await;
}
}

in_both_modes! {
/// Describe: a non-IAM 403 for a user that exists (made by another request):
/// the create conflicts. The upsert cannot read it: refused, retryable; the
/// heal only needed it to exist: already-exists.
async fn a_refused_describe_of_an_existing_user_is_settled_by_the_conflict(mode) {
    within(async {
        let (fake, dir) = fake_and_directory(mode, FaultConfig::none()).await;
        create_by_hand(&dir, SUB, "A. Lovelace").await;
        let refuse_describe =
            || next_of(&fake, Operation::DescribeAppInstanceUser, ScriptedFault::Forbidden);
        refuse_describe();
        assert_refused(dir.upsert(&ada()).await);
        refuse_describe();
        assert_eq!(dir.ensure_exists(&ada()).await, Ok(Applied::AlreadyProvisioned));
        assert_eq!(
            fake.counters()
                .get(Operation::CreateAppInstanceUser)
                .errors
                .get("ConflictException"),
            Some(&2)
        );
        assert_eq!(fake.users()[0].name, "A. Lovelace", "untouched");
    })
    .await;
}
}

in_both_modes! {
/// Describe: possibly missing (or missing), and the create that settles it is
/// denied: the denial stands, nothing is created.
async fn a_missing_user_whose_create_is_denied_is_denied(mode) {
    within(async {
        let fake = start_with(mode, FaultConfig::none().deny([Operation::CreateAppInstanceUser])).await;
        let dir = directory(&fake);
        assert_denied(dir.upsert(&ada()).await, "chime:CreateAppInstanceUser");
        assert_denied(dir.ensure_exists(&ada()).await, "chime:CreateAppInstanceUser");
        assert!(fake.users().is_empty());
    })
    .await;
}
}

/// Deletes the user through the SDK right before forwarding `update`: the
/// update then meets a user that a describe found a moment ago.
struct DeletedBeforeUpdate<'a>(&'a ChimeDirectory);

impl Directory for DeletedBeforeUpdate<'_> {
    fn app_instance_arn(&self) -> &AppInstanceArn {
        self.0.app_instance_arn()
    }
    async fn create(&self, user: &UserProfile) -> Result<(), DirectoryError> {
        self.0.create(user).await
    }
    async fn describe(
        &self,
        id: &UserId,
    ) -> Result<Option<chime_sync_core::DirectoryUser>, DirectoryError> {
        self.0.describe(id).await
    }
    async fn update(&self, id: &UserId, name: &str, metadata: &str) -> Result<(), DirectoryError> {
        self.0.delete(id).await?;
        self.0.update(id, name, metadata).await
    }
    async fn delete(&self, id: &UserId) -> Result<(), DirectoryError> {
        self.0.delete(id).await
    }
    async fn list(
        &self,
        next_token: Option<String>,
    ) -> Result<chime_sync_core::DirectoryPage, DirectoryError> {
        self.0.list(next_token).await
    }
    async fn put_expiration(
        &self,
        id: &UserId,
        expiration: Option<chime_sync_core::directory::Expiration>,
    ) -> Result<Option<chime_sync_core::directory::Expiration>, DirectoryError> {
        self.0.put_expiration(id, expiration).await
    }
    fn take_call_stats(&self) -> chime_sync_core::metrics::CallStats {
        self.0.take_call_stats()
    }
}

in_both_modes! {
/// Update: the user vanished after the describe (404 or 403): the create makes it.
async fn an_update_of_a_user_deleted_meanwhile_creates_it(mode) {
    within(async {
        let (fake, dir) = fake_and_directory(mode, FaultConfig::none()).await;
        dir.create(&profile(&ada().id, "Ada")).await.unwrap();
        let racing = DeletedBeforeUpdate(&dir);
        assert_eq!(racing.upsert(&ada()).await, Ok(Applied::Created));
        let users = fake.users();
        assert_eq!((users.len(), users[0].name.as_str()), (1, "Ada Lovelace"));
        let update = fake.counters().get(Operation::UpdateAppInstanceUser);
        assert_eq!((update.attempts, update.succeeded), (1, 0));
    })
    .await;
}
}

in_both_modes! {
/// Update: a non-IAM 403 for a user that exists: the create conflicts, refused.
async fn a_refused_update_of_an_existing_user_is_retryable(mode) {
    within(async {
        let (fake, dir) = fake_and_directory(mode, FaultConfig::none()).await;
        dir.create(&profile(&ada().id, "Ada")).await.unwrap();
        next_of(&fake, Operation::UpdateAppInstanceUser, ScriptedFault::Forbidden);
        assert_refused(dir.upsert(&ada()).await);
        assert_eq!(fake.users()[0].name, "Ada", "unchanged");
    })
    .await;
}
}

in_both_modes! {
/// Create and list: a non-IAM 403 cannot mean "no such user": denied.
async fn a_forbidden_create_or_list_is_denied(mode) {
    within(async {
        let fake = start_with(
            mode,
            FaultConfig::none().with_script([ScriptedFault::Forbidden, ScriptedFault::Forbidden]),
        )
        .await;
        let dir = directory(&fake);
        assert_denied(dir.create(&ada()).await, "chime:CreateAppInstanceUser");
        assert_denied(dir.list(None).await, "chime:ListAppInstanceUsers");
    })
    .await;
}
}

in_both_modes! {
/// A 400 without X-Amzn-Errortype (a proxy's HTML page) is not the message's
/// fault: retryable, on every call, and the next attempt goes through.
async fn an_html_400_from_a_proxy_is_retryable(mode) {
    within(async {
        let (fake, dir) = fake_and_directory(mode, FaultConfig::none()).await;
        let user = ada();
        for call in 0..3 {
            fake.set_faults(FaultConfig::none().with_script([ScriptedFault::ProxyBadRequest]))
                .unwrap();
            let err = match call {
                0 => dir.upsert(&user).await.unwrap_err(),
                1 => dir.create(&user).await.unwrap_err(),
                _ => dir.delete_if_present(&user.id).await.unwrap_err(),
            };
            assert!(matches!(err, DirectoryError::Transport(_)), "{err:?}");
            assert_eq!(err.class(), ErrorClass::Retryable, "{err:?}");
        }
        assert_eq!(dir.upsert(&user).await, Ok(Applied::Created));
    })
    .await;
}
}

in_both_modes! {
/// Applied, then the response lost: the SDK's retry meets the result and each
/// call still ends in the right state.
async fn a_lost_response_is_settled_by_the_retry(mode) {
    within(async {
        let (fake, dir) = fake_and_directory(mode, FaultConfig::none()).await;
        let user = ada();
        let lose_next = |op| next_of(&fake, op, ScriptedFault::ApplyThenDrop);
        lose_next(Operation::CreateAppInstanceUser);
        // Describe, create (applied, lost), the same create again (Chime's replay).
        assert_eq!(dir.upsert(&user).await, Ok(Applied::Created));
        lose_next(Operation::UpdateAppInstanceUser);
        assert_eq!(
            dir.upsert(&profile(&user.id, "Countess")).await,
            Ok(Applied::Updated)
        );
        assert_eq!(fake.users()[0].name, "Countess");
        lose_next(Operation::DeleteAppInstanceUser);
        // The retried delete finds the user gone: the desired state holds.
        assert_eq!(dir.delete_if_present(&user.id).await, Ok(Applied::AlreadyGone));
        assert!(fake.users().is_empty());
        let injected: u64 = fake
            .counters()
            .0
            .values()
            .map(|c| c.injected.lost_responses)
            .sum();
        assert_eq!(injected, 3);
    })
    .await;
}
}

// ---------------------------------------------------------------------------
// Grace deletions: PutAppInstanceUserExpirationSettings
// ---------------------------------------------------------------------------

const GRACE: u16 = 7;
const DAY: Duration = Duration::from_secs(86_400);

in_both_modes! {
    /// A grace deletion sets the expiration Describe then shows (List does not), a repeat
    /// changes nothing, Chime (the fake's clock) deletes the user after the grace, and a
    /// deletion of a user already gone succeeds.
    async fn a_grace_deletion_expires_on_the_fakes_clock(mode) {
        within(async {
            let fake = start(FakeConfig::new().with_missing_user(mode)).await;
            let d = directory(&fake);
            let ada = ada();
            d.create(&ada).await.unwrap();
            let created = d.describe(&ada.id).await.unwrap().unwrap().created_at.unwrap();
            let now = created + Duration::from_secs(1);
            assert_eq!(
                d.schedule_deletion(&ada.id, GRACE, now).await,
                Ok(Applied::DeletionScheduled)
            );
            let described = d.describe(&ada.id).await.unwrap().unwrap();
            let expiration = described.expiration.expect("Describe shows the settings");
            assert_eq!(expiration.days, GRACE + 1, "age rounded up, plus the grace");
            assert!(described.created_at.is_some());
            let listed = d.list(None).await.unwrap().users;
            assert_eq!((listed[0].expiration, listed[0].created_at), (None, None));
            assert_eq!(
                d.schedule_deletion(&ada.id, GRACE, now + DAY).await,
                Ok(Applied::AlreadyScheduled)
            );
            assert!(fake.advance_clock(DAY * u32::from(GRACE)).is_empty(), "within the grace");
            assert_eq!(fake.advance_clock(DAY * 2).len(), 1, "expired");
            let gone = d.describe(&ada.id).await;
            assert!(
                matches!(gone, Ok(None) | Err(DirectoryError::PossiblyMissing(_))),
                "{gone:?}"
            );
            assert_eq!(
                d.schedule_deletion(&ada.id, GRACE, now).await,
                Ok(Applied::AlreadyGone)
            );
            let counts = fake.counters().get(Operation::PutAppInstanceUserExpirationSettings);
            assert_eq!(counts.succeeded, 1, "{counts:?}");
            fake.shutdown().await;
        })
        .await
    }
}

/// Whichever way Chime answers a request without settings (removes them, refuses with 400,
/// keeps them), a cancelled deletion is cancelled: the user survives a long time on the clock.
#[tokio::test]
async fn a_cancelled_deletion_stays_cancelled_whatever_chime_answers_an_empty_request() {
    use chime_identity_fake::ClearAnswer;
    within(async {
        for clear in [
            ClearAnswer::Removes,
            ClearAnswer::Rejects,
            ClearAnswer::Ignores,
        ] {
            let fake = start(FakeConfig::new().with_expiration_clear(clear)).await;
            let d = directory(&fake);
            let ada = ada();
            d.create(&ada).await.unwrap();
            d.schedule_deletion(&ada.id, GRACE, std::time::SystemTime::now())
                .await
                .unwrap();
            // user.created again (the rehire): describe, then the clear.
            assert_eq!(d.upsert(&ada).await, Ok(Applied::Restored), "{clear:?}");
            let kept = d.describe(&ada.id).await.unwrap().unwrap();
            assert!(!kept.deletion_pending(), "{clear:?}: {kept:?}");
            assert!(
                fake.advance_clock(DAY * 3650).is_empty(),
                "{clear:?}: the user survives ten years"
            );
            fake.shutdown().await;
        }
    })
    .await
}

/// IAM denying the expiration call is a denial naming the action, never a success: the
/// user is not deleted, and the error is retryable.
#[tokio::test]
async fn a_denied_expiration_call_is_denied_and_deletes_nobody() {
    within(async {
        let fake = start(FakeConfig::new().with_faults(
            FaultConfig::none().deny([Operation::PutAppInstanceUserExpirationSettings]),
        ))
        .await;
        let d = directory(&fake);
        let ada = ada();
        d.create(&ada).await.unwrap();
        let result = d
            .schedule_deletion(&ada.id, GRACE, std::time::SystemTime::now())
            .await;
        match &result {
            Err(e @ DirectoryError::AccessDenied(why)) => {
                assert!(
                    why.contains("chime:PutAppInstanceUserExpirationSettings"),
                    "{why}"
                );
                assert_eq!(e.class(), ErrorClass::Retryable);
            }
            other => panic!("{other:?}"),
        }
        assert!(fake.advance_clock(DAY * 365).is_empty());
        assert_eq!(fake.users().len(), 1);
        fake.shutdown().await;
    })
    .await
}
