//! Per-event handler cost with an in-memory directory: everything a function does for one
//! event except the network — reading the event from its JSON bytes (as `lambda_runtime`
//! does), validation, envelope unwrapping, display names, batch bookkeeping, the directory
//! calls against [`InMemoryDirectory`], and writing the response back to JSON bytes.
//!
//! Run with `cargo bench -p chime-sync-core --bench handlers`. `chime-sync-bench` reads
//! the results from `target/criterion/{group}/{bench}/new/` into BENCHMARKS.md.
//!
//! Two groups measure the same work:
//! - `per_event`: no tracing subscriber (the log macros cost a disabled-callsite check);
//! - `per_event_json_logs`: a JSON `tracing_subscriber::fmt` layer at INFO writing to a
//!   sink, as in Lambda with `AWS_LAMBDA_LOG_FORMAT=JSON` (minus the write to stdout).
//!
//! Each iteration gets a fresh, empty directory (set up outside the timed part), so every
//! user event takes the create path, the common one.
//!
//! credential-exchange is measured warm, as a sandbox serves its second request on: the
//! issuer's keys already cached and the caller's Chime user already there, STS left out (a
//! double that makes up credentials). `credential_exchange` is one `POST /credentials` through
//! the handler (event bytes in, response bytes out) for a user with no session kept, so it
//! reads the ledger, checks Chime and asks STS; `credential_exchange_session_reused` is the
//! same request once the sandbox holds that user's session (the token checked, no STS call);
//! `token_validate` is the token check alone (`token::validate`: header, claims, RS256
//! signature with ring, against the cached key set).

use std::hint::black_box;
use std::time::{Duration, SystemTime};

use chime_sync_core::credentials::memory::StaticJwks;
use chime_sync_core::credentials::{
    AssumeRoleRequest, CredentialIssuer, IssueError, KeyCache, TemporaryCredentials,
    TrustedIssuers, token,
};
use chime_sync_core::handlers::credential_exchange::{self, CredentialExchange};
use chime_sync_core::handlers::idp_sync::{self, IdpSync, SqsEvent};
use chime_sync_core::handlers::post_confirmation::{self, PostConfirmation};
use chime_sync_core::handlers::pre_signup::{self, SignUpPolicy};
use chime_sync_core::ledger::memory::InMemoryLedger;
use chime_sync_core::memory::{InMemoryDirectory, InMemoryQueue};
use chime_sync_core::{AppInstanceArn, DisplayNamePolicy};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};
use testkit::credentials::TestKey;
use testkit::credentials::keys::{jwks, now};
use tokio::runtime::Runtime;

const APP: &str = "arn:aws:chime:us-east-1:123456789012:app-instance/bench-0001";

fn sub(n: u32) -> String {
    format!("5b0e{n:04x}-7c1d-4e2f-9a3b-4c5d6e7f{n:04x}")
}

fn pre_signup_event() -> Vec<u8> {
    json!({
        "version": "1", "triggerSource": "PreSignUp_SignUp", "region": "us-east-1",
        "userPoolId": "us-east-1_aBcD3fGhI", "userName": "ada",
        "callerContext": {"awsSdkVersion": "aws-sdk-unknown-unknown", "clientId": "4example7k2m9q3r5t8v1w6x0y"},
        "request": {
            "userAttributes": {"name": "Ada Lovelace", "email": "ada.lovelace@example.com", "phone_number": "+15555550142"},
            "validationData": null, "clientMetadata": {"signupFlow": "web"}
        },
        "response": {"autoConfirmUser": false, "autoVerifyEmail": false, "autoVerifyPhone": false}
    })
    .to_string()
    .into_bytes()
}

/// A sign-in (pre token generation, `TokenGeneration_HostedAuth`) of a user whose status
/// is `status`: what the Cognito function adds to every sign-in.
fn sign_in_event(status: &str) -> Vec<u8> {
    json!({
        "version": "1", "triggerSource": "TokenGeneration_HostedAuth", "region": "us-east-1",
        "userPoolId": "us-east-1_aBcD3fGhI", "userName": "Google_1095",
        "callerContext": {"awsSdkVersion": "aws-sdk-unknown-unknown", "clientId": "4example7k2m9q3r5t8v1w6x0y"},
        "request": {"userAttributes": {"sub": sub(1), "cognito:user_status": status, "name": "Ada Lovelace"},
                    "groupConfiguration": {"groupsToOverride": [], "iamRolesToOverride": [], "preferredRole": null}},
        "response": {"claimsOverrideDetails": null}
    })
    .to_string()
    .into_bytes()
}

fn post_confirmation_event() -> Vec<u8> {
    json!({
        "version": "1", "triggerSource": "PostConfirmation_ConfirmSignUp", "region": "us-east-1",
        "userPoolId": "us-east-1_aBcD3fGhI", "userName": "ada",
        "callerContext": {"awsSdkVersion": "aws-sdk-unknown-unknown", "clientId": "4example7k2m9q3r5t8v1w6x0y"},
        "request": {"userAttributes": {
            "sub": sub(1), "cognito:user_status": "CONFIRMED", "email_verified": "true",
            "name": "Ada Lovelace", "email": "ada.lovelace@example.com", "phone_number": "+15555550142"
        }},
        "response": {}
    })
    .to_string()
    .into_bytes()
}

/// Ten messages in ten FIFO groups: raw, SNS- and EventBridge-wrapped creates and updates,
/// with metadata, as an IdP publisher sends them.
fn idp_batch() -> Vec<u8> {
    let records: Vec<Value> = (0..10u32)
        .map(|i| {
            let kind = if i % 3 == 2 {
                "user.updated"
            } else {
                "user.created"
            };
            let message = json!({
                "version": 1, "type": kind, "eventId": format!("hr-bench-{i}"),
                "occurredAt": "2026-11-20T10:00:00Z",
                "user": {"sub": sub(i), "displayName": format!("Bench User {i}"),
                         "metadata": {"department": "R&D", "costCenter": format!("cc-{i}")}}
            })
            .to_string();
            let body = match i % 3 {
                0 => message,
                1 => json!({"Type": "Notification", "MessageId": format!("sns-{i}"),
                            "TopicArn": "arn:aws:sns:us-east-1:123456789012:identity-events.fifo",
                            "Message": message, "Timestamp": "2026-11-20T10:00:00.123Z"})
                .to_string(),
                _ => json!({"version": "0", "id": format!("eb-{i}"), "detail-type": kind,
                            "source": "hr.connector", "account": "123456789012",
                            "time": "2026-11-20T10:00:00Z", "region": "us-east-1",
                            "resources": [], "detail": serde_json::from_str::<Value>(&message).unwrap()})
                .to_string(),
            };
            json!({
                "messageId": format!("c9f5e3a7-4b6d-4e8f-9a0b-2c3d4e5f{i:04x}"),
                "receiptHandle": "AQEBUCU7btn2czMJ9mMq4IjyvD8zgYBw6krb8WVz8238kt6FdyPKSimk9zRJwsxOVwhHg",
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1", "SentTimestamp": "1795168980000",
                    "SenderId": "AROAEXAMPLEHRPUBLISH:hr-connector",
                    "ApproximateFirstReceiveTimestamp": "1795168980042",
                    "SequenceNumber": format!("1884949646047069613{i}"),
                    "MessageGroupId": sub(i), "MessageDeduplicationId": format!("hr-bench-{i}")
                },
                "messageAttributes": {}, "md5OfBody": "ab796d95982efe0e830ef0c9437ef867",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:identity-sync.fifo",
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    json!({ "Records": records }).to_string().into_bytes()
}

const ISSUER: &str = "https://idp.example.com/tenant";
const JWKS: &str = "https://idp.example.com/tenant/keys";

/// STS left out: credentials made up on the spot, the calls counted.
#[derive(Default)]
struct NoSts(std::sync::atomic::AtomicU64);

impl CredentialIssuer for NoSts {
    async fn assume_role(
        &self,
        request: &AssumeRoleRequest,
    ) -> Result<TemporaryCredentials, IssueError> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(TemporaryCredentials {
            access_key_id: "ASIABENCHNOSTS".to_owned(),
            secret_access_key: "not-a-secret".to_owned(),
            session_token: "not-a-token".to_owned(),
            expiration: SystemTime::now() + request.duration,
        })
    }
}

/// The issuer's discovery document and JWKS (the demo RSA key, RS256 as Cognito signs).
fn static_jwks(key: &TestKey) -> StaticJwks {
    let documents = StaticJwks::new();
    documents.set(
        &format!("{ISSUER}/.well-known/openid-configuration"),
        json!({"issuer": ISSUER, "jwks_uri": JWKS}),
    );
    documents.set(JWKS, jwks(&[key]));
    documents
}

fn issuers() -> TrustedIssuers {
    TrustedIssuers::parse(&json!({ ISSUER: {"audiences": ["chat-app"]} }).to_string())
        .expect("valid TRUSTED_ISSUERS")
}

/// A token of user 1 from the issuer, valid for an hour.
fn token(key: &TestKey) -> String {
    key.sign(
        &json!({"iss": ISSUER, "aud": "chat-app", "sub": sub(1), "iat": now(),
                     "exp": now() + 3600, "name": "Ada Lovelace", "email": "ada@example.com"}),
    )
}

fn credentials_request(token: &str) -> Vec<u8> {
    json!({
        "version": "2.0", "routeKey": "$default", "rawPath": "/credentials", "rawQueryString": "",
        "headers": {"authorization": format!("Bearer {token}"), "content-type": "application/json",
                    "origin": "https://chat.example.com"},
        "isBase64Encoded": false,
        "requestContext": {"accountId": "anonymous", "apiId": "abc",
            "domainName": "abc.lambda-url.us-east-1.on.aws", "domainPrefix": "abc",
            "requestId": "r-1", "routeKey": "$default", "stage": "$default",
            "time": "20/Nov/2026:10:00:00 +0000", "timeEpoch": 1_795_168_800_000_i64,
            "http": {"method": "POST", "path": "/credentials", "protocol": "HTTP/1.1",
                     "sourceIp": "203.0.113.7", "userAgent": "bench"}}
    })
    .to_string()
    .into_bytes()
}

fn run_credential_exchange(
    rt: &Runtime,
    bytes: &[u8],
    deps: &CredentialExchange<InMemoryDirectory, StaticJwks, NoSts, InMemoryLedger>,
) -> Vec<u8> {
    let event: Value = serde_json::from_slice(black_box(bytes)).expect("JSON");
    let (response, outcome) = rt.block_on(credential_exchange::handle(event, deps));
    assert_eq!(outcome.status, 200, "{outcome:?}");
    serde_json::to_vec(&response).expect("serialises")
}

fn arn() -> AppInstanceArn {
    AppInstanceArn::parse(APP).expect("valid AppInstance ARN")
}

fn handlers(c: &mut Criterion, group_name: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread tokio runtime");
    let mut group = c.benchmark_group(group_name);
    group.measurement_time(Duration::from_secs(4));
    group.warm_up_time(Duration::from_secs(1));

    let pre = pre_signup_event();
    let policy = SignUpPolicy {
        names: DisplayNamePolicy::default(),
        allowed_email_domains: vec!["example.com".to_owned()],
        auto_confirm: false,
        auto_verify_email: true,
    };
    group.bench_function("pre_signup", |b| {
        b.iter(|| {
            let event: Value = serde_json::from_slice(black_box(&pre)).expect("JSON");
            let (response, decision) = pre_signup::handle(event, &policy).expect("allowed");
            black_box(decision);
            serde_json::to_vec(&response).expect("serialises")
        });
    });

    let post = post_confirmation_event();
    group.bench_function("post_confirmation", |b| {
        b.iter_batched(
            || {
                PostConfirmation::new(
                    InMemoryDirectory::new(arn()),
                    InMemoryQueue::new(),
                    InMemoryLedger::new(),
                )
            },
            |deps| run_post_confirmation(&rt, &post, deps),
            BatchSize::SmallInput,
        );
    });

    // A sign-in: of a user who is not federated (no call), and of a federated user whose
    // Chime user exists (one Describe).
    let local = sign_in_event("CONFIRMED");
    let signed_in = PostConfirmation::new(
        InMemoryDirectory::new(arn()),
        InMemoryQueue::new(),
        InMemoryLedger::new(),
    );
    group.bench_function("sign_in_not_federated", |b| {
        b.iter(|| run_sign_in(&rt, &local, &signed_in));
    });
    let federated = sign_in_event("EXTERNAL_PROVIDER");
    run_sign_in(&rt, &federated, &signed_in);
    group.bench_function("sign_in_federated_known", |b| {
        b.iter(|| run_sign_in(&rt, &federated, &signed_in));
    });

    let batch = idp_batch();
    group.bench_function("idp_sync_batch_of_10", |b| {
        b.iter_batched(
            || {
                IdpSync::new(
                    InMemoryDirectory::new(arn()),
                    InMemoryQueue::new(),
                    InMemoryLedger::new(),
                )
            },
            |deps| run_idp_sync(&rt, &batch, deps),
            BatchSize::SmallInput,
        );
    });

    let key = TestKey::demo_rsa();
    let token = token(&key);
    let request = credentials_request(&token);
    let mut exchange = CredentialExchange::new(
        InMemoryDirectory::new(arn()),
        InMemoryLedger::new(),
        static_jwks(&key),
        NoSts::default(),
        issuers(),
    );
    exchange.allowed_origins = vec!["https://chat.example.com".to_owned()];
    // The first request fetches the keys and creates the user; the measured ones find both.
    run_credential_exchange(&rt, &request, &exchange);
    group.bench_function("credential_exchange", |b| {
        b.iter(|| {
            exchange.sessions.clear();
            run_credential_exchange(&rt, &request, &exchange)
        });
    });
    run_credential_exchange(&rt, &request, &exchange);
    let sts_calls = || exchange.sts.0.load(std::sync::atomic::Ordering::Relaxed);
    let before = sts_calls();
    group.bench_function("credential_exchange_session_reused", |b| {
        b.iter(|| run_credential_exchange(&rt, &request, &exchange));
    });
    assert_eq!(sts_calls(), before, "a reused session calls no STS");

    let (issuers, keys) = (issuers(), KeyCache::new(static_jwks(&key)));
    let validate = || rt.block_on(token::validate(black_box(&token), &issuers, &keys));
    validate().expect("a valid token");
    group.bench_function("token_validate", |b| b.iter(validate));
    group.finish();
}

fn run_post_confirmation(
    rt: &Runtime,
    bytes: &[u8],
    deps: PostConfirmation<InMemoryDirectory, InMemoryQueue, InMemoryLedger>,
) -> Vec<u8> {
    let event: Value = serde_json::from_slice(black_box(bytes)).expect("JSON");
    let (response, outcome) = rt
        .block_on(post_confirmation::handle(event, &deps, None))
        .expect("provisioned");
    black_box(outcome);
    serde_json::to_vec(&response).expect("serialises")
}

fn run_sign_in(
    rt: &Runtime,
    bytes: &[u8],
    deps: &PostConfirmation<InMemoryDirectory, InMemoryQueue, InMemoryLedger>,
) -> Vec<u8> {
    let event: Value = serde_json::from_slice(black_box(bytes)).expect("JSON");
    let (response, outcome) = rt
        .block_on(post_confirmation::handle(event, deps, None))
        .expect("a sign-in is never refused");
    black_box(outcome);
    serde_json::to_vec(&response).expect("serialises")
}

fn run_idp_sync(
    rt: &Runtime,
    bytes: &[u8],
    deps: IdpSync<InMemoryDirectory, InMemoryQueue, InMemoryLedger>,
) -> Vec<u8> {
    let event: SqsEvent = serde_json::from_slice(black_box(bytes)).expect("an SQS event");
    let report = rt.block_on(idp_sync::handle(&event, &deps, None));
    assert!(report.response().batch_item_failures.is_empty());
    serde_json::to_vec(&report.response()).expect("serialises")
}

fn without_logs(c: &mut Criterion) {
    handlers(c, "per_event");
}

fn with_json_logs(c: &mut Criterion) {
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::INFO)
        .with_writer(std::io::sink)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    handlers(c, "per_event_json_logs");
}

criterion_group!(benches, without_logs, with_json_logs);
criterion_main!(benches);
