//! Wire tests: `ChimeDirectory` (the real `aws-sdk-chimesdkidentity` client,
//! our retry classifier and error mapping) against the local fake Chime SDK
//! Identity server. Static test credentials, no internet, ephemeral ports;
//! every test is bounded in time.
//!
//! Attempt counts come from the fake's per-operation counters, so each retry
//! assertion is about HTTP requests that really crossed the wire.

use std::future::Future;
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_chimesdkidentity::config::retry::RetryConfig;
use aws_sdk_chimesdkidentity::config::{Credentials, Region, SharedCredentialsProvider};
use aws_sdk_chimesdkidentity::error::ProvideErrorMetadata;
use aws_sdk_chimesdkidentity::operation::create_app_instance_user::builders::CreateAppInstanceUserFluentBuilder;
use chime_identity_fake::{
    FakeChime, FakeChimeHandle, FakeConfig, FaultConfig, MissingUserError, Operation, ScriptedFault,
};
use chime_sync_aws::{ChimeConfig, ChimeDirectory, TrustRoots};
use chime_sync_core::{
    AppInstanceArn, Applied, Directory, DirectoryError, DisplayName, ErrorClass, Metadata, UserId,
    UserProfile,
};

const APP: &str =
    "arn:aws:chime:eu-west-1:123456789012:app-instance/0a1b2c3d-4e5f-6789-abcd-ef0123456789";
const SUB: &str = "6f1c2d3e-0b4a-4c5d-8e9f-a0b1c2d3e4f5";

/// Bounds every test so a regression fails instead of hanging CI.
async fn within<F: Future>(test: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(60), test)
        .await
        .expect("test exceeded 60 s")
}

async fn start(config: FakeConfig) -> FakeChimeHandle {
    FakeChime::start(config)
        .await
        .expect("fake starts on an ephemeral port")
}

/// What a Lambda would have: static credentials and a region that is *not*
/// the AppInstance's, to prove the adapter overrides it.
fn sdk_config() -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "AKIDTEST", "secret", None, None, "test",
        )))
        .http_client(chime_sync_aws::http::sdk_http_client(&TrustRoots::Compiled).unwrap())
        .build()
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
async fn start_always_throttling() -> FakeChimeHandle {
    start(FakeConfig::new().with_faults(FaultConfig::none().with_tps_limit(0.0).with_burst(0)))
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

#[tokio::test]
async fn create_sends_the_sub_the_name_and_a_deterministic_token() {
    within(async {
        let fake = start(FakeConfig::new()).await;
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

#[tokio::test]
async fn create_with_metadata_stores_it() {
    within(async {
        let fake = start(FakeConfig::new()).await;
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

#[tokio::test]
async fn a_create_asking_for_a_new_name_renames_the_existing_user() {
    within(async {
        let fake = start(FakeConfig::new()).await;
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

#[tokio::test]
async fn re_creating_with_the_same_token_is_an_idempotent_replay() {
    within(async {
        let fake = start(FakeConfig::new()).await;
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

#[tokio::test]
async fn a_conflict_resolves_to_updated_then_already_provisioned() {
    within(async {
        let fake = start(FakeConfig::new()).await;
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

#[tokio::test]
async fn update_replaces_name_and_metadata() {
    within(async {
        let fake = start(FakeConfig::new()).await;
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

#[tokio::test]
async fn update_of_a_missing_user_is_not_found() {
    within(async {
        let fake = start(FakeConfig::new()).await;
        let dir = directory(&fake);
        assert_eq!(
            dir.update(&sub(1), "Nobody", "").await,
            Err(DirectoryError::NotFound)
        );
    })
    .await;
}

#[tokio::test]
async fn delete_then_delete_again_is_already_gone() {
    within(async {
        let fake = start(FakeConfig::new()).await;
        let dir = directory(&fake);
        let user = ada();
        dir.create(&user).await.unwrap();

        assert_eq!(dir.delete_if_present(&user.id).await, Ok(Applied::Deleted));
        assert!(fake.users().is_empty());
        assert_eq!(dir.describe(&user.id).await, Ok(None));

        // The fake answers 404 NotFoundException (unmodelled for these calls).
        assert_eq!(dir.delete(&user.id).await, Err(DirectoryError::NotFound));
        assert_eq!(
            dir.delete_if_present(&user.id).await,
            Ok(Applied::AlreadyGone)
        );
        // 404s are answers, not failures: never retried.
        assert_eq!(attempts(&fake, Operation::DeleteAppInstanceUser), 3);
        assert_eq!(attempts(&fake, Operation::DescribeAppInstanceUser), 1);
    })
    .await;
}

#[tokio::test]
async fn forbidden_for_a_missing_user_stays_access_denied() {
    // If Chime answered 403 for a missing user, we would rather keep the
    // message (retryable AccessDenied, DLQ by redrive) than acknowledge a
    // deletion an IAM denial could equally have caused. See `chime.rs`.
    within(async {
        let fake = start(FakeConfig::new().with_missing_user(MissingUserError::Forbidden)).await;
        let dir = directory(&fake);
        let err = dir.delete_if_present(&sub(7)).await.unwrap_err();
        assert!(matches!(err, DirectoryError::AccessDenied(_)), "{err:?}");
        assert_eq!(err.class(), ErrorClass::Retryable);
        assert_eq!(attempts(&fake, Operation::DeleteAppInstanceUser), 1);
    })
    .await;
}

#[tokio::test]
async fn list_pages_through_every_user_and_skips_non_subs() {
    within(async {
        let fake = start(FakeConfig::new()).await;
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

#[tokio::test]
async fn a_429_burst_is_retried_and_succeeds() {
    within(async {
        let fake = start(FakeConfig::new()).await;
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
    })
    .await;
}

#[tokio::test]
async fn a_503_burst_is_retried_and_succeeds() {
    within(async {
        let fake = start(FakeConfig::new()).await;
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
    })
    .await;
}

#[tokio::test]
async fn a_500_and_a_dropped_connection_are_retried() {
    within(async {
        let fake = start(FakeConfig::new()).await;
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

#[tokio::test]
async fn persistent_throttling_gives_up_after_max_attempts_within_the_budget() {
    within(async {
        let fake = start_always_throttling().await;
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
    })
    .await;
}

#[tokio::test]
async fn persistent_throttling_stops_at_the_deadline_when_attempts_would_outlast_it() {
    within(async {
        let fake = start_always_throttling().await;
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

#[tokio::test]
async fn slow_chime_is_a_timeout_within_the_budget() {
    within(async {
        let fake =
            start(FakeConfig::new().with_faults(FaultConfig::none().with_latency(2000, 2000)))
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

#[tokio::test]
async fn a_400_is_never_retried() {
    within(async {
        let fake = start(FakeConfig::new()).await;
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

#[tokio::test]
async fn the_user_limit_is_limit_exceeded_and_not_retried() {
    within(async {
        let fake = start(FakeConfig::new().with_user_limit(1)).await;
        let dir = directory(&fake);
        dir.create(&profile(&sub(1), "One")).await.unwrap();

        let err = dir.create(&profile(&sub(2), "Two")).await.unwrap_err();

        assert!(matches!(err, DirectoryError::LimitExceeded(_)), "{err:?}");
        assert_eq!(attempts(&fake, Operation::CreateAppInstanceUser), 2);
    })
    .await;
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

/// The reason the classifier exists: the SDK's standard retry,
/// left alone, gives up on Chime's 429 after one attempt — while it does
/// retry a 503. If an SDK upgrade starts retrying 429 by itself, this test
/// says so, and the classifier can go.
#[tokio::test]
async fn without_our_classifier_the_sdk_does_not_retry_a_429() {
    within(async {
        let fake = start(FakeConfig::new()).await;
        let plain = aws_sdk_chimesdkidentity::Client::from_conf(
            aws_sdk_chimesdkidentity::config::Builder::from(&sdk_config())
                .region(Region::new("eu-west-1"))
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
