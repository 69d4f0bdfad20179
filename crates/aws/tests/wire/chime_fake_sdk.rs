//! Wire tests: the real `aws-sdk-chimesdkidentity` client against the fake, plus raw HTTP for
//! what the SDK never sends. No AWS credentials, no internet, ephemeral ports, bounded time.

use crate::{start, within};
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_chimesdkidentity::Client;
use aws_sdk_chimesdkidentity::config::retry::RetryConfig;
use aws_sdk_chimesdkidentity::config::timeout::TimeoutConfig;
use aws_sdk_chimesdkidentity::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_chimesdkidentity::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_chimesdkidentity::operation::create_app_instance_user::builders::CreateAppInstanceUserFluentBuilder;
use aws_sdk_chimesdkidentity::operation::delete_app_instance_user::{
    DeleteAppInstanceUserError, DeleteAppInstanceUserOutput,
};
use aws_sdk_chimesdkidentity::operation::describe_app_instance_user::{
    DescribeAppInstanceUserError, DescribeAppInstanceUserOutput,
};
use aws_sdk_chimesdkidentity::operation::list_app_instance_users::builders::ListAppInstanceUsersFluentBuilder;
use aws_sdk_chimesdkidentity::operation::update_app_instance_user::{
    UpdateAppInstanceUserError, UpdateAppInstanceUserOutput,
};
use aws_sdk_chimesdkidentity::types::{ExpirationCriterion, ExpirationSettings, Tag};
use chime_identity_fake::{
    FakeChimeHandle, FakeConfig, FaultConfig, IamDenial, MISSING_USER_MESSAGE, MissingAnswer,
    Operation, ScriptedFault, StateSnapshot, iam_denial_message,
};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const APP: &str =
    "arn:aws:chime:us-east-1:123456789012:app-instance/0a1b2c3d-4e5f-6789-abcd-ef0123456789";

/// A real SDK client pointed at the fake. `max_attempts == 1` disables retries.
fn sdk_client(fake: &FakeChimeHandle, max_attempts: u32) -> Client {
    let retry = if max_attempts <= 1 {
        RetryConfig::disabled()
    } else {
        RetryConfig::standard()
            .with_max_attempts(max_attempts)
            .with_initial_backoff(Duration::from_millis(5))
            .with_max_backoff(Duration::from_millis(20))
    };
    let config = aws_sdk_chimesdkidentity::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        // The workspace's one HTTPS stack (the SDK's default client is not compiled in).
        .http_client(
            chime_sync_aws::http::sdk_http_client(&chime_sync_aws::TrustRoots::Compiled).unwrap(),
        )
        .endpoint_url(fake.endpoint_url())
        .retry_config(retry)
        .timeout_config(
            TimeoutConfig::builder()
                .operation_timeout(Duration::from_secs(20))
                .build(),
        )
        .build();
    Client::from_conf(config)
}

fn user_arn(id: &str) -> String {
    format!("{APP}/user/{id}")
}

/// A `CreateAppInstanceUser` in [`APP`] with the three other required fields, ready to tweak
/// or send.
fn create_request(
    client: &Client,
    id: &str,
    name: &str,
    token: &str,
) -> CreateAppInstanceUserFluentBuilder {
    client
        .create_app_instance_user()
        .app_instance_arn(APP)
        .app_instance_user_id(id)
        .name(name)
        .client_request_token(token)
}

async fn create(client: &Client, id: &str, token: &str) -> Result<String, String> {
    create_request(client, id, &format!("User {id}"), token)
        .send()
        .await
        .map(|out| out.app_instance_user_arn().unwrap_or_default().to_owned())
        .map_err(|err| format!("{:?}", err.into_service_error()))
}

async fn describe(
    client: &Client,
    arn: impl Into<String>,
) -> Result<DescribeAppInstanceUserOutput, SdkError<DescribeAppInstanceUserError>> {
    client
        .describe_app_instance_user()
        .app_instance_user_arn(arn)
        .send()
        .await
}

/// An `UpdateAppInstanceUser`; `None` leaves the field out of the request.
async fn update(
    client: &Client,
    arn: impl Into<String>,
    name: Option<&str>,
    metadata: Option<&str>,
) -> Result<UpdateAppInstanceUserOutput, SdkError<UpdateAppInstanceUserError>> {
    client
        .update_app_instance_user()
        .app_instance_user_arn(arn)
        .set_name(name.map(str::to_owned))
        .set_metadata(metadata.map(str::to_owned))
        .send()
        .await
}

async fn delete(
    client: &Client,
    arn: impl Into<String>,
) -> Result<DeleteAppInstanceUserOutput, SdkError<DeleteAppInstanceUserError>> {
    client
        .delete_app_instance_user()
        .app_instance_user_arn(arn)
        .send()
        .await
}

/// A `ListAppInstanceUsers` of [`APP`], ready to page or send.
fn list_request(client: &Client) -> ListAppInstanceUsersFluentBuilder {
    client.list_app_instance_users().app_instance_arn(APP)
}

fn status_of<E>(err: &SdkError<E>) -> Option<u16> {
    err.raw_response()
        .map(|response| response.status().as_u16())
}

/// A response read off a raw socket.
struct Raw {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|err| panic!("not JSON ({err}): {}", self.body))
    }

    /// Asserts a Chime `BadRequestException` whose message names `field`.
    fn assert_bad_request(&self, field: &str) {
        assert_eq!(self.status, 400, "{}", self.body);
        assert_eq!(self.header("x-amzn-errortype"), Some("BadRequestException"));
        let body = self.json();
        assert_eq!(body["Code"], "BadRequest");
        let message = body["Message"].as_str().unwrap_or_default();
        assert!(
            message.contains(field),
            "message {message:?} should name {field}"
        );
    }
}

/// Sends one HTTP/1.1 request with `Connection: close` and reads the whole answer; `None` if the
/// server closed the connection without answering.
async fn raw(addr: SocketAddr, method: &str, path: &str, body: Option<&str>) -> Option<Raw> {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let body = body.unwrap_or("");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=garbage\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut bytes = Vec::new();
    // A reset connection is as much "no answer" as a clean close.
    let _ = stream.read_to_end(&mut bytes).await;
    if bytes.is_empty() {
        return None;
    }
    let text = String::from_utf8(bytes).expect("UTF-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("header/body separator");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Some(Raw {
        status,
        headers,
        body: body.to_owned(),
    })
}

fn encoded(arn: &str) -> String {
    arn.replace(':', "%3A")
        .replace('/', "%2F")
        .replace('@', "%40")
}

/// The path of one user, its ARN percent-encoded as the SDK sends it.
fn user_path(arn: &str) -> String {
    format!("/app-instance-users/{}", encoded(arn))
}

#[tokio::test]
async fn create_returns_201_with_the_user_arn() {
    within(async {
        let fake = start(FakeConfig::new()).await;
        let client = sdk_client(&fake, 1);
        assert_eq!(create(&client, "u-1", "token-1").await.unwrap(), user_arn("u-1"));

        let raw = raw(
            fake.addr(),
            "POST",
            "/app-instance-users",
            Some(&json!({"AppInstanceArn": APP, "AppInstanceUserId": "u-2", "Name": "Two", "ClientRequestToken": "tok-2"}).to_string()),
        )
        .await
        .unwrap();
        assert_eq!(raw.status, 201);
        assert_eq!(raw.json(), json!({"AppInstanceUserArn": user_arn("u-2")}));
        assert!(raw.header("x-amzn-requestid").is_some_and(|id| id.starts_with("fake-chime-")));

        let users = fake.users();
        assert_eq!(users.iter().map(|u| u.app_instance_user_id.as_str()).collect::<Vec<_>>(), ["u-1", "u-2"]);
        assert_eq!(users[0].client_request_token, "token-1");
        assert_eq!(fake.counters().get(Operation::CreateAppInstanceUser).succeeded, 2);
    })
    .await;
}

#[tokio::test]
async fn same_token_replays_and_other_token_conflicts() {
    within(async {
        let fake = start(FakeConfig::new()).await;
        let client = sdk_client(&fake, 3);
        let arn = create(&client, "sub-1", "idem-1").await.unwrap();
        assert_eq!(
            create(&client, "sub-1", "idem-1").await.unwrap(),
            arn,
            "a replay returns the original ARN"
        );

        let err = create_request(&client, "sub-1", "Other", "idem-2")
            .send()
            .await
            .unwrap_err();
        assert_eq!(status_of(&err), Some(409));
        let service = err.into_service_error();
        assert!(service.is_conflict_exception(), "{service:?}");
        assert_eq!(service.code(), Some("ConflictException"));
        assert!(service.message().is_some_and(|m| m.contains("sub-1")));

        let counts = fake.counters().get(Operation::CreateAppInstanceUser);
        assert_eq!(counts.attempts, 3, "a conflict is not retried");
        assert_eq!(counts.errors.get("ConflictException"), Some(&1));
        assert_eq!(fake.users().len(), 1);
    })
    .await;
}

#[tokio::test]
async fn describe_update_delete_round_trip() {
    within(async {
        let fake = start(FakeConfig::new()).await;
        let client = sdk_client(&fake, 1);
        let id = "ada@example.com:x_y.z";
        let arn = client
            .create_app_instance_user()
            .app_instance_arn(APP)
            .app_instance_user_id(id)
            .name("Ada")
            .metadata("{\"dept\":\"R&D\"}")
            .client_request_token("tok-ada")
            .expiration_settings(
                ExpirationSettings::builder()
                    .expiration_days(30)
                    .expiration_criterion(ExpirationCriterion::CreatedTimestamp)
                    .build()
                    .unwrap(),
            )
            .tags(Tag::builder().key("team").value("chat").build().unwrap())
            .send()
            .await
            .unwrap()
            .app_instance_user_arn
            .unwrap();
        assert_eq!(arn, user_arn(id));

        let described = describe(&client, &arn).await.unwrap();
        let user = described.app_instance_user().unwrap();
        assert_eq!(user.app_instance_user_arn(), Some(arn.as_str()));
        assert_eq!(user.name(), Some("Ada"));
        assert_eq!(user.metadata(), Some("{\"dept\":\"R&D\"}"));
        let expiration = user.expiration_settings().unwrap();
        assert_eq!(
            (
                expiration.expiration_days(),
                expiration.expiration_criterion()
            ),
            (30, &ExpirationCriterion::CreatedTimestamp)
        );
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let created = user.created_timestamp().unwrap().secs();
        assert!((now - created).abs() < 60, "created {created} vs now {now}");

        let updated = update(&client, &arn, Some("Ada Lovelace"), Some(""))
            .await
            .unwrap();
        assert_eq!(updated.app_instance_user_arn(), Some(arn.as_str()));
        let user = describe(&client, &arn).await.unwrap();
        let user = user.app_instance_user().unwrap();
        assert_eq!(
            (user.name(), user.metadata()),
            (Some("Ada Lovelace"), Some(""))
        );
        assert!(user.last_updated_timestamp().unwrap() >= user.created_timestamp().unwrap());

        delete(&client, &arn).await.unwrap();
        assert!(fake.users().is_empty());

        let raw_delete = raw(fake.addr(), "DELETE", &user_path(&arn), None)
            .await
            .unwrap();
        assert_eq!(
            raw_delete.status, 403,
            "the user is gone (the default answer)"
        );
        assert_eq!(
            raw_delete.header("x-amzn-errortype"),
            Some("ForbiddenException")
        );
        create(&client, "gone", "tok-g").await.unwrap();
        let raw_delete = raw(fake.addr(), "DELETE", &user_path(&user_arn("gone")), None)
            .await
            .unwrap();
        assert_eq!((raw_delete.status, raw_delete.body.as_str()), (204, ""));
    })
    .await;
}

#[tokio::test]
async fn missing_users_answer_forbidden_with_chimes_message_by_default() {
    within(async {
        let fake = start(FakeConfig::new()).await;
        let client = sdk_client(&fake, 3);
        let arn = user_arn("nobody");

        let err = describe(&client, &arn).await.unwrap_err();
        assert_eq!(status_of(&err), Some(403));
        let service = err.into_service_error();
        assert!(service.is_forbidden_exception(), "{service:?}");
        assert_eq!(service.message(), Some(MISSING_USER_MESSAGE));

        let err = delete(&client, &arn).await.unwrap_err();
        assert_eq!(status_of(&err), Some(403));
        assert!(err.into_service_error().is_forbidden_exception());
        let err = update(&client, &arn, Some("n"), Some("m"))
            .await
            .unwrap_err();
        assert!(err.into_service_error().is_forbidden_exception());
        assert_eq!(fake.counters().total_attempts(), 3, "a 403 is not retried");
    })
    .await;
}

#[tokio::test]
async fn missing_users_can_answer_not_found_which_the_sdk_leaves_unmodelled() {
    within(async {
        let fake = start(FakeConfig::new().with_missing_user(MissingAnswer::NotFound)).await;
        let client = sdk_client(&fake, 3);
        let arn = user_arn("nobody");

        let err = describe(&client, &arn).await.unwrap_err();
        assert_eq!(status_of(&err), Some(404));
        let service = err.into_service_error();
        assert_eq!(service.code(), Some("NotFoundException"));
        assert!(!service.is_bad_request_exception() && !service.is_forbidden_exception());

        let err = delete(&client, &arn).await.unwrap_err();
        assert_eq!(status_of(&err), Some(404));
        assert_eq!(err.into_service_error().code(), Some("NotFoundException"));

        let err = update(&client, &arn, Some("n"), Some("m"))
            .await
            .unwrap_err();
        assert_eq!(err.into_service_error().code(), Some("NotFoundException"));

        let counters = fake.counters();
        for op in [
            Operation::DescribeAppInstanceUser,
            Operation::DeleteAppInstanceUser,
            Operation::UpdateAppInstanceUser,
        ] {
            assert_eq!(counters.attempts(op), 1, "{op:?}: a 404 is not retried");
        }
    })
    .await;
}

#[tokio::test]
async fn iam_denials_answer_403_with_iams_message_per_operation() {
    within(async {
        let fake = start(FakeConfig::new().with_faults(
            FaultConfig::none().deny([Operation::DeleteAppInstanceUser]),
        ))
        .await;
        let client = sdk_client(&fake, 3);
        create(&client, "kept", "tok").await.unwrap();
        describe(&client, user_arn("kept")).await.unwrap();

        let err = delete(&client, user_arn("kept")).await.unwrap_err();
        assert_eq!(status_of(&err), Some(403));
        let service = err.into_service_error();
        assert!(service.is_forbidden_exception(), "{service:?}");
        assert_eq!(
            service.message(),
            Some(
                iam_denial_message("chime:DeleteAppInstanceUser", &user_arn("kept")).as_str()
            )
        );
        assert_eq!(fake.users().len(), 1, "a denied delete deletes nothing");
        let counts = fake.counters().get(Operation::DeleteAppInstanceUser);
        assert_eq!((counts.attempts, counts.injected.denied), (1, 1));

        // The other error type AWS uses for denials, on another operation.
        fake.set_faults(
            FaultConfig::none()
                .deny([Operation::CreateAppInstanceUser])
                .deny_as(IamDenial::AccessDenied),
        )
        .unwrap();
        let err = create_request(&client, "new", "New", "tok")
            .send()
            .await
            .unwrap_err();
        assert_eq!(status_of(&err), Some(403));
        let service = err.into_service_error();
        assert_eq!(service.code(), Some("AccessDeniedException"));
        assert!(
            service
                .message()
                .unwrap_or_default()
                .contains("is not authorized to perform: chime:CreateAppInstanceUser on resource: arn:aws:chime:"),
            "{service:?}"
        );
        // An injected fault answers first; the denial applies to what is left.
        fake.set_faults(
            FaultConfig::none()
                .deny([Operation::DescribeAppInstanceUser])
                .with_script([ScriptedFault::ServiceUnavailable]),
        )
        .unwrap();
        let err = describe(&sdk_client(&fake, 1), user_arn("kept"))
            .await
            .unwrap_err();
        assert_eq!(status_of(&err), Some(503));
        let err = describe(&client, user_arn("kept")).await.unwrap_err();
        assert_eq!(status_of(&err), Some(403));
    })
    .await;
}

#[tokio::test]
async fn scripted_refusals_and_proxy_pages_are_not_applied() {
    within(async {
        let fake = start(
            FakeConfig::new().with_faults(
                FaultConfig::none()
                    .with_script([ScriptedFault::Forbidden, ScriptedFault::ProxyBadRequest]),
            ),
        )
        .await;
        let client = sdk_client(&fake, 3);
        let err = create_request(&client, "r", "R", "tok")
            .send()
            .await
            .unwrap_err();
        assert_eq!(status_of(&err), Some(403));
        let service = err.into_service_error();
        assert!(service.is_forbidden_exception());
        assert!(
            !service
                .message()
                .unwrap_or_default()
                .contains("not authorized"),
            "not IAM's message: {service:?}"
        );
        let page = raw(fake.addr(), "GET", &user_path(&user_arn("r")), None)
            .await
            .unwrap();
        assert_eq!(page.status, 400);
        assert_eq!(page.header("x-amzn-errortype"), None);
        assert!(page.body.starts_with("<html>"), "{}", page.body);
        assert!(fake.users().is_empty());
        let refused: u64 = fake.counters().0.values().map(|c| c.injected.refused).sum();
        assert_eq!(refused, 2);
    })
    .await;
}

#[tokio::test]
async fn a_lost_response_was_applied_and_the_retry_finds_it_done() {
    within(async {
        let fake = start(FakeConfig::new()).await;
        let client = sdk_client(&fake, 3);
        fake.set_faults(FaultConfig::none().with_script([ScriptedFault::ApplyThenDrop]))
            .unwrap();
        // Applied, then no answer: the SDK retries the same request (same token), which
        // the fake answers as the idempotent replay it is.
        assert_eq!(
            create(&client, "lost", "tok-lost").await,
            Ok(user_arn("lost"))
        );
        let create_counts = fake.counters().get(Operation::CreateAppInstanceUser);
        assert_eq!(
            (
                create_counts.attempts,
                create_counts.injected.lost_responses,
                create_counts.succeeded
            ),
            (2, 1, 1)
        );
        assert_eq!(fake.users().len(), 1);

        // A delete applied and lost: the retry meets a missing user (403 by default).
        fake.set_faults(FaultConfig::none().with_script([ScriptedFault::ApplyThenDrop]))
            .unwrap();
        let err = delete(&client, user_arn("lost")).await.unwrap_err();
        assert!(err.into_service_error().is_forbidden_exception());
        assert!(fake.users().is_empty(), "the delete took effect");
        // Without retries the client sees only the dropped connection.
        fake.set_faults(FaultConfig::none().with_script([ScriptedFault::ApplyThenDrop]))
            .unwrap();
        let err = create_request(&sdk_client(&fake, 1), "again", "Again", "tok")
            .send()
            .await
            .unwrap_err();
        assert!(matches!(err, SdkError::DispatchFailure(_)), "{err:?}");
        assert_eq!(fake.users().len(), 1, "but the create took effect");
    })
    .await;
}

#[tokio::test]
async fn list_pages_through_users_in_id_order() {
    within(async {
        let fake = start(FakeConfig::new()).await;
        let client = sdk_client(&fake, 1);
        for id in ["g", "c", "a", "e", "b", "f", "d"] {
            create(&client, id, "tok").await.unwrap();
        }
        let other = "arn:aws:chime:us-east-1:123456789012:app-instance/other";
        // A user in another AppInstance: the later `app_instance_arn` replaces APP.
        create_request(&client, "zz", "Z", "tok")
            .app_instance_arn(other)
            .send()
            .await
            .unwrap();

        let mut pages = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = list_request(&client)
                .max_results(3)
                .set_next_token(token.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(page.app_instance_arn(), Some(APP));
            pages.push(
                page.app_instance_users()
                    .iter()
                    .filter_map(|u| u.name().map(str::to_owned))
                    .collect::<Vec<_>>(),
            );
            match page.next_token() {
                Some(next) => token = Some(next.to_owned()),
                None => break,
            }
        }
        assert_eq!(
            pages,
            [
                vec!["User a", "User b", "User c"],
                vec!["User d", "User e", "User f"],
                vec!["User g"]
            ]
        );

        let all: Vec<String> = list_request(&client)
            .max_results(2)
            .into_paginator()
            .send()
            .try_collect()
            .await
            .unwrap()
            .into_iter()
            .flat_map(|page| page.app_instance_users.unwrap_or_default())
            .filter_map(|u| u.app_instance_user_arn)
            .collect();
        assert_eq!(all, ["a", "b", "c", "d", "e", "f", "g"].map(user_arn));
        assert_eq!(
            fake.counters().attempts(Operation::ListAppInstanceUsers),
            3 + 4
        );

        for bad in [0, 51] {
            let err = list_request(&client)
                .max_results(bad)
                .send()
                .await
                .unwrap_err();
            let service = err.into_service_error();
            assert!(
                service.is_bad_request_exception(),
                "max-results {bad}: {service:?}"
            );
            assert!(
                service
                    .message()
                    .unwrap_or_default()
                    .contains("max-results")
            );
        }
        let err = list_request(&client)
            .next_token("forged")
            .send()
            .await
            .unwrap_err();
        assert!(err.into_service_error().is_bad_request_exception());
    })
    .await;
}

#[tokio::test]
async fn every_create_constraint_is_a_bad_request_naming_the_field() {
    within(async {
        let fake = start(FakeConfig::new()).await;
        let client = sdk_client(&fake, 3);
        type Tweak = fn(CreateAppInstanceUserFluentBuilder) -> CreateAppInstanceUserFluentBuilder;
        let cases: [(&str, Tweak); 14] = [
            ("AppInstanceUserId", |b| {
                b.app_instance_user_id("-leading-dash")
            }),
            ("AppInstanceUserId", |b| {
                b.app_instance_user_id("x".repeat(65))
            }),
            ("AppInstanceUserId", |b| b.app_instance_user_id("has space")),
            ("Name", |b| b.name("")),
            ("Name", |b| b.name("   ")),
            ("Name", |b| b.name("n".repeat(101))),
            ("Metadata", |b| b.metadata("m".repeat(1025))),
            ("ClientRequestToken", |b| b.client_request_token("a")),
            ("ClientRequestToken", |b| b.client_request_token("has.dot")),
            ("ClientRequestToken", |b| {
                b.client_request_token("t".repeat(65))
            }),
            ("AppInstanceArn", |b| {
                b.app_instance_arn("arn:aws:chime:us-east-1:123:app-instance/x")
            }),
            ("AppInstanceArn", |b| b.app_instance_arn("not-an-arn")),
            ("ExpirationDays", |b| {
                b.expiration_settings(
                    ExpirationSettings::builder()
                        .expiration_days(0)
                        .expiration_criterion(ExpirationCriterion::CreatedTimestamp)
                        .build()
                        .unwrap(),
                )
            }),
            ("Tags.Key", |b| {
                b.tags(Tag::builder().key("").value("v").build().unwrap())
            }),
        ];
        for (field, tweak) in cases {
            let builder = create_request(&client, "valid-id", "Valid", "valid-token");
            let err = tweak(builder).send().await.unwrap_err();
            assert_eq!(status_of(&err), Some(400), "{field}");
            let service = err.into_service_error();
            assert!(service.is_bad_request_exception(), "{field}: {service:?}");
            let message = service.message().unwrap_or_default();
            assert!(message.contains(field), "{field}: {message}");
        }
        assert!(fake.users().is_empty());
        assert_eq!(
            fake.counters().attempts(Operation::CreateAppInstanceUser),
            14,
            "a 400 is never retried"
        );

        create(&client, "valid-id", "tok").await.unwrap();
        for (name, metadata, field) in [
            (Some(""), Some("m"), "Name"),
            (Some("n"), None, "Metadata"),
            (None, Some("m"), "Name"),
        ] {
            let err = update(&client, user_arn("valid-id"), name, metadata)
                .await
                .unwrap_err();
            let service = err.into_service_error();
            assert!(service.is_bad_request_exception(), "{field}: {service:?}");
            assert!(service.message().unwrap_or_default().contains(field));
        }
        let err = describe(&client, format!("{APP}/bot/x")).await.unwrap_err();
        assert!(err.into_service_error().is_bad_request_exception());
    })
    .await;
}

#[tokio::test]
async fn server_rejects_what_the_sdk_never_sends() {
    within(async {
        let fake = start(FakeConfig::new()).await;
        let addr = fake.addr();
        let body = |value: Value| Some(value.to_string());

        raw(addr, "POST", "/app-instance-users", Some("{not json")).await.unwrap().assert_bad_request("body");
        raw(addr, "POST", "/app-instance-users", Some("[]")).await.unwrap().assert_bad_request("body");
        raw(addr, "POST", "/app-instance-users", None).await.unwrap().assert_bad_request("AppInstanceArn");
        let no_token = json!({"AppInstanceArn": APP, "AppInstanceUserId": "u", "Name": "N"});
        raw(addr, "POST", "/app-instance-users", body(no_token).as_deref()).await.unwrap().assert_bad_request("ClientRequestToken");
        let no_id = json!({"AppInstanceArn": APP, "Name": "N", "ClientRequestToken": "tok"});
        raw(addr, "POST", "/app-instance-users", body(no_id).as_deref()).await.unwrap().assert_bad_request("AppInstanceUserId");
        let wrong_type = json!({"AppInstanceArn": APP, "AppInstanceUserId": 5, "Name": "N", "ClientRequestToken": "tok"});
        raw(addr, "POST", "/app-instance-users", body(wrong_type).as_deref()).await.unwrap().assert_bad_request("body");
        raw(addr, "GET", "/app-instance-users", None).await.unwrap().assert_bad_request("app-instance-arn");
        raw(addr, "GET", &format!("/app-instance-users?app-instance-arn={}&max-results=ten", encoded(APP)), None)
            .await
            .unwrap()
            .assert_bad_request("max-results");
        raw(addr, "GET", "/app-instance-users/not-an-arn", None).await.unwrap().assert_bad_request("AppInstanceUserArn");
        raw(addr, "PUT", &user_path(&user_arn("u")), Some("{"))
            .await
            .unwrap()
            .assert_bad_request("body");

        let unknown = raw(addr, "GET", "/app-instances", None).await.unwrap();
        assert_eq!((unknown.status, unknown.header("x-amzn-errortype")), (404, Some("UnknownOperationException")));
        let patch = raw(addr, "PATCH", &user_path(&user_arn("u")), None).await.unwrap();
        assert_eq!((patch.status, patch.header("x-amzn-errortype")), (404, Some("UnknownOperationException")));

        // An unencoded ARN in the path is accepted too, and signatures are never checked.
        let created = json!({"AppInstanceArn": APP, "AppInstanceUserId": "plain", "Name": "P", "ClientRequestToken": "tok"});
        assert_eq!(raw(addr, "POST", "/app-instance-users", body(created).as_deref()).await.unwrap().status, 201);
        let described = raw(addr, "GET", &format!("/app-instance-users/{}", user_arn("plain")), None).await.unwrap();
        assert_eq!(described.status, 200);
        assert_eq!(described.json()["AppInstanceUser"]["Name"], "P");
        assert!(described.json()["AppInstanceUser"]["CreatedTimestamp"].is_f64());
    })
    .await;
}

#[tokio::test]
async fn user_limit_gives_resource_limit_exceeded() {
    within(async {
        let fake = start(FakeConfig::new().with_user_limit(2)).await;
        let client = sdk_client(&fake, 3);
        create(&client, "a", "tok").await.unwrap();
        create(&client, "b", "tok").await.unwrap();
        let err = create_request(&client, "c", "C", "tok")
            .send()
            .await
            .unwrap_err();
        assert_eq!(status_of(&err), Some(400));
        assert!(
            err.into_service_error()
                .is_resource_limit_exceeded_exception()
        );
    })
    .await;
}

#[tokio::test]
async fn throttling_is_a_typed_429_the_default_retry_does_not_retry() {
    within(async {
        let fake =
            start(FakeConfig::new().with_faults(FaultConfig::none().with_tps_limit(0.0))).await;
        let client = sdk_client(&fake, 3);
        let err = create_request(&client, "t", "T", "tok")
            .send()
            .await
            .unwrap_err();
        assert_eq!(status_of(&err), Some(429));
        let service = err.into_service_error();
        assert!(service.is_throttled_client_exception(), "{service:?}");
        let counts = fake.counters().get(Operation::CreateAppInstanceUser);
        // ThrottledClientException is not retryable for the SDK's standard retry
        // (docs/ARCHITECTURE.md, "Chime SDK Identity").
        assert_eq!((counts.attempts, counts.injected.throttled), (1, 1));
        assert!(fake.users().is_empty(), "a throttled request does nothing");
    })
    .await;
}

#[tokio::test]
async fn tps_quota_admits_the_burst_then_throttles() {
    within(async {
        let fake = start(
            FakeConfig::new().with_faults(FaultConfig::none().with_tps_limit(0.001).with_burst(3)),
        )
        .await;
        let client = sdk_client(&fake, 1);
        let mut outcomes = Vec::new();
        for i in 0..5 {
            outcomes.push(create(&client, &format!("u{i}"), "tok").await.is_ok());
        }
        assert_eq!(outcomes, [true, true, true, false, false]);
        assert_eq!(
            fake.counters()
                .get(Operation::CreateAppInstanceUser)
                .errors
                .get("ThrottledClientException"),
            Some(&2)
        );
    })
    .await;
}

#[tokio::test]
async fn a_503_burst_is_retried_and_counted() {
    within(async {
        let fake = start(FakeConfig::new()).await;
        fake.set_faults(FaultConfig::none().with_script([
            ScriptedFault::ServiceUnavailable,
            ScriptedFault::ServiceUnavailable,
        ]))
        .unwrap();
        let client = sdk_client(&fake, 3);
        assert_eq!(create(&client, "r", "tok").await.unwrap(), user_arn("r"));
        let counts = fake.counters().get(Operation::CreateAppInstanceUser);
        assert_eq!(
            (
                counts.attempts,
                counts.succeeded,
                counts.injected.service_unavailable
            ),
            (3, 1, 2)
        );
        assert_eq!(counts.errors.get("ServiceUnavailableException"), Some(&2));
        assert!(fake.faults().script.is_empty(), "the script is consumed");
    })
    .await;
}

#[tokio::test]
async fn injected_500_and_503_are_typed() {
    within(async {
        let fake = start(
            FakeConfig::new().with_faults(FaultConfig::none().with_service_unavailable_rate(1.0)),
        )
        .await;
        let client = sdk_client(&fake, 1);
        let err = describe(&client, user_arn("x")).await.unwrap_err();
        assert_eq!(status_of(&err), Some(503));
        assert!(err.into_service_error().is_service_unavailable_exception());

        fake.set_faults(FaultConfig::none().with_service_failure_rate(1.0))
            .unwrap();
        let err = list_request(&client).send().await.unwrap_err();
        assert_eq!(status_of(&err), Some(500));
        assert!(err.into_service_error().is_service_failure_exception());

        // With retries on, a persistent 5xx uses every attempt.
        let retrying = sdk_client(&fake, 3);
        assert!(list_request(&retrying).send().await.is_err());
        assert_eq!(
            fake.counters().attempts(Operation::ListAppInstanceUsers),
            1 + 3
        );
    })
    .await;
}

#[tokio::test]
async fn dropped_connections_surface_as_dispatch_failures() {
    within(async {
        let fake =
            start(FakeConfig::new().with_faults(FaultConfig::none().with_drop_rate(1.0))).await;
        let client = sdk_client(&fake, 1);
        let err = create_request(&client, "d", "D", "tok")
            .send()
            .await
            .unwrap_err();
        match &err {
            // hyper reports IncompleteMessage; the SDK files it as a transient connector error.
            SdkError::DispatchFailure(failure) => {
                assert_eq!(
                    format!("{:?}", failure.as_other()),
                    "Some(TransientError)",
                    "{failure:?}"
                );
            }
            other => panic!("expected a dispatch failure, got {other:?}"),
        }
        assert!(
            raw(fake.addr(), "GET", &user_path(&user_arn("d")), None)
                .await
                .is_none()
        );
        let counts = fake.counters().get(Operation::CreateAppInstanceUser);
        assert_eq!(
            (counts.attempts, counts.injected.dropped, counts.succeeded),
            (1, 1, 0)
        );
        assert!(
            fake.users().is_empty(),
            "the fake drops before handling, so nothing was created"
        );

        // The SDK treats a dropped connection as transient: one drop then success.
        fake.set_faults(FaultConfig::none().with_script([ScriptedFault::Drop]))
            .unwrap();
        assert!(create(&sdk_client(&fake, 3), "d", "tok").await.is_ok());
        assert_eq!(
            fake.counters().attempts(Operation::CreateAppInstanceUser),
            1 + 2
        );
    })
    .await;
}

#[tokio::test]
async fn latency_delays_only_the_targeted_operations() {
    within(async {
        let faults = FaultConfig::none()
            .with_latency(300, 300)
            .only_for([Operation::DescribeAppInstanceUser]);
        let fake = start(FakeConfig::new().with_faults(faults)).await;
        let client = sdk_client(&fake, 1);
        let started = Instant::now();
        create(&client, "l", "tok").await.unwrap();
        assert!(
            started.elapsed() < Duration::from_millis(300),
            "create is not delayed"
        );
        let started = Instant::now();
        describe(&client, user_arn("l")).await.unwrap();
        assert!(started.elapsed() >= Duration::from_millis(300));
        let counters = fake.counters();
        assert_eq!(
            counters
                .get(Operation::DescribeAppInstanceUser)
                .injected
                .delayed,
            1
        );
        assert_eq!(
            counters
                .get(Operation::CreateAppInstanceUser)
                .injected
                .delayed,
            0
        );
    })
    .await;
}

#[tokio::test]
async fn control_endpoints_read_reset_and_set_faults() {
    within(async {
        let fake = start(FakeConfig::new()).await;
        let addr = fake.addr();
        let client = sdk_client(&fake, 1);
        create(&client, "s1", "tok").await.unwrap();
        let _ = describe(&client, user_arn("missing")).await;

        assert_eq!(
            raw(addr, "GET", "/_fake/health", None).await.unwrap().body,
            "ok"
        );
        let state = raw(addr, "GET", "/_fake/state", None).await.unwrap();
        assert_eq!(state.status, 200);
        let snapshot: StateSnapshot = serde_json::from_str(&state.body).unwrap();
        assert_eq!(snapshot.users.len(), 1);
        assert_eq!(snapshot.users[0].app_instance_user_arn, user_arn("s1"));
        assert_eq!(
            snapshot.counters.attempts(Operation::CreateAppInstanceUser),
            1
        );
        assert_eq!(
            snapshot
                .counters
                .get(Operation::DescribeAppInstanceUser)
                .errors
                .get("ForbiddenException"),
            Some(&1)
        );
        let json = state.json();
        assert_eq!(json["counters"]["CreateAppInstanceUser"]["succeeded"], 1);
        assert!(json["faultSeed"].is_u64());
        assert_eq!(
            snapshot.counters.total_attempts(),
            2,
            "control requests are not counted"
        );

        let put = raw(
            addr,
            "PUT",
            "/_fake/faults",
            Some(r#"{"script":["throttle"],"seed":9}"#),
        )
        .await
        .unwrap();
        assert_eq!(put.status, 200);
        assert_eq!(put.json()["script"], json!(["throttle"]));
        let err = list_request(&client).send().await.unwrap_err();
        assert!(err.into_service_error().is_throttled_client_exception());
        assert_eq!(
            raw(addr, "GET", "/_fake/faults", None)
                .await
                .unwrap()
                .json()["script"],
            json!([])
        );

        let bad = raw(addr, "PUT", "/_fake/faults", Some(r#"{"dropRate":2}"#))
            .await
            .unwrap();
        assert_eq!(bad.status, 400);
        assert!(
            bad.json()["error"]
                .as_str()
                .unwrap_or_default()
                .contains("dropRate")
        );
        let typo = raw(addr, "PUT", "/_fake/faults", Some(r#"{"dropRatio":0.5}"#))
            .await
            .unwrap();
        assert_eq!(typo.status, 400);

        assert_eq!(
            raw(addr, "DELETE", "/_fake/state", None)
                .await
                .unwrap()
                .status,
            204
        );
        assert!(fake.users().is_empty());
        assert_eq!(fake.counters().total_attempts(), 0);
        fake.set_faults(FaultConfig::none().with_service_failure_rate(1.0))
            .unwrap();
        assert_eq!(
            raw(addr, "DELETE", "/_fake/faults", None)
                .await
                .unwrap()
                .status,
            204
        );
        assert_eq!(fake.faults(), FaultConfig::none());
        create(&client, "after-reset", "tok").await.unwrap();

        fake.reset();
        assert!(fake.users().is_empty());
        assert!(
            fake.set_faults(FaultConfig::none().with_latency(5, 1))
                .is_err()
        );
    })
    .await;
}

#[tokio::test]
async fn seeded_random_faults_replay_identically() {
    within(async {
        async fn run(seed: u64) -> Vec<bool> {
            let faults = FaultConfig::none()
                .with_service_failure_rate(0.5)
                .with_seed(seed);
            let fake = start(FakeConfig::new().with_faults(faults)).await;
            let client = sdk_client(&fake, 1);
            let mut outcomes = Vec::new();
            for _ in 0..20 {
                outcomes.push(list_request(&client).send().await.is_ok());
            }
            outcomes
        }
        let first = run(1234).await;
        assert_eq!(first, run(1234).await);
        assert!(first.contains(&true) && first.contains(&false), "{first:?}");
    })
    .await;
}

#[tokio::test]
async fn shutdown_stops_the_server_and_frees_the_port() {
    within(async {
        let fake = start(FakeConfig::new()).await;
        let addr = fake.addr();
        assert!(raw(addr, "GET", "/_fake/health", None).await.is_some());
        // An idle keep-alive connection must not hold shutdown up.
        let _idle = TcpStream::connect(addr).await.unwrap();
        fake.shutdown().await;
        assert!(
            TcpStream::connect(addr).await.is_err(),
            "nothing listens any more"
        );

        let again = start(FakeConfig::new().with_port(addr.port())).await;
        assert_eq!(again.addr(), addr, "the port is free again");
        drop(again);
        // The aborted server task is torn down on the runtime's next turns; give it a moment.
        let mut still_listening = true;
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            if TcpStream::connect(addr).await.is_err() {
                still_listening = false;
                break;
            }
        }
        assert!(!still_listening, "dropping the handle stops the server too");
    })
    .await;
}

#[tokio::test]
async fn parallel_clients_all_land() {
    within(async {
        let fake = start(FakeConfig::new()).await;
        let client = sdk_client(&fake, 1);
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let client = client.clone();
                tokio::spawn(async move { create(&client, &format!("p{i:02}"), "tok").await })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        assert_eq!(fake.users().len(), 50);
        assert_eq!(
            fake.counters()
                .get(Operation::CreateAppInstanceUser)
                .succeeded,
            50
        );
    })
    .await;
}
