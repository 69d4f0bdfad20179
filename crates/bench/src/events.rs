//! The events the benchmarks serve, shaped like the samples in `events/`.

use std::sync::Arc;

use serde_json::{Value, json};
use testkit::credentials::TestKey;

pub const APP_INSTANCE_ARN: &str =
    "arn:aws:chime:us-east-1:123456789012:app-instance/0a1b2c3d-4e5f-6789-abcd-ef0123456789";
pub const SYNC_QUEUE_ARN: &str = "arn:aws:sqs:us-east-1:123456789012:identity-sync.fifo";

/// A Cognito sub (a lower-case UUID) unique for `n`.
pub fn sub(n: u64) -> String {
    format!("b3e7c0de-0000-4000-8000-{:012x}", n & 0xffff_ffff_ffff)
}

pub fn pre_signup(n: u64) -> Value {
    json!({
        "version": "1", "triggerSource": "PreSignUp_SignUp", "region": "us-east-1",
        "userPoolId": "us-east-1_aBcD3fGhI", "userName": format!("user{n}"),
        "callerContext": {"awsSdkVersion": "aws-sdk-unknown-unknown", "clientId": "4example7k2m9q3r5t8v1w6x0y"},
        "request": {
            "userAttributes": {"name": format!("Bench User {n}"), "email": format!("user{n}@example.com"),
                               "phone_number": "+15555550142"},
            "validationData": null, "clientMetadata": {"signupFlow": "web"}
        },
        "response": {"autoConfirmUser": false, "autoVerifyEmail": false, "autoVerifyPhone": false}
    })
}

/// A `PostConfirmation_ConfirmSignUp` of user `n`, new: a Describe (404) and a Create.
pub fn confirm_sign_up(n: u64) -> Value {
    post_confirmation("PostConfirmation_ConfirmSignUp", n)
}

/// A `PostConfirmation_ConfirmForgotPassword` of user `n`: one Describe when the user exists.
pub fn confirm_forgot_password(n: u64) -> Value {
    post_confirmation("PostConfirmation_ConfirmForgotPassword", n)
}

fn post_confirmation(trigger: &str, n: u64) -> Value {
    json!({
        "version": "1", "triggerSource": trigger, "region": "us-east-1",
        "userPoolId": "us-east-1_aBcD3fGhI", "userName": format!("user{n}"),
        "callerContext": {"awsSdkVersion": "aws-sdk-unknown-unknown", "clientId": "4example7k2m9q3r5t8v1w6x0y"},
        "request": {"userAttributes": {
            "sub": sub(n), "cognito:user_status": "CONFIRMED", "email_verified": "true",
            "phone_number_verified": "false", "name": format!("Bench User {n}"),
            "email": format!("user{n}@example.com"), "phone_number": "+15555550142"
        }},
        "response": {}
    })
}

/// The role credential-exchange hands out sessions of (`CHAT_USER_ROLE_ARN`).
pub const CHAT_USER_ROLE_ARN: &str =
    "arn:aws:iam::123456789012:role/chime-identity-sync-ChatUserRole-BENCH";
/// The audience of the local IdP's tokens.
pub const AUDIENCE: &str = "chat-web";

/// The local IdP credential-exchange trusts: its issuer URL and the key that signs its
/// tokens (the fixed demo RSA key, RS256 like Cognito's).
#[derive(Clone)]
pub struct Idp {
    pub issuer: String,
    pub key: Arc<TestKey>,
}

impl std::fmt::Debug for Idp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Idp")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl Idp {
    /// `TRUSTED_ISSUERS` for this issuer.
    pub fn trusted_issuers(&self) -> String {
        json!({ self.issuer.as_str(): {"audiences": [AUDIENCE]} }).to_string()
    }

    /// A Function URL request (payload format 2.0) `POST /credentials` with a token of user
    /// `n`, valid for an hour from now.
    pub fn credentials_request(&self, n: u64) -> Value {
        let now = testkit::credentials::keys::now();
        let token = self.key.sign(&json!({
            "iss": self.issuer, "aud": AUDIENCE, "sub": sub(n), "iat": now, "exp": now + 3600,
            "name": format!("Bench User {n}"), "email": format!("user{n}@example.com"),
        }));
        json!({
            "version": "2.0", "routeKey": "$default", "rawPath": "/credentials", "rawQueryString": "",
            "headers": {"authorization": format!("Bearer {token}"), "content-type": "application/json"},
            "isBase64Encoded": false,
            "requestContext": {
                "accountId": "anonymous", "apiId": "a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6",
                "domainName": "a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6.lambda-url.us-east-1.on.aws",
                "domainPrefix": "a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6", "requestId": format!("bench-{n}"),
                "routeKey": "$default", "stage": "$default", "time": "20/Nov/2026:10:00:00 +0000",
                "timeEpoch": 1_795_168_800_000_i64,
                "http": {"method": "POST", "path": "/credentials", "protocol": "HTTP/1.1",
                         "sourceIp": "203.0.113.7", "userAgent": "chime-sync-bench"}
            }
        })
    }
}

/// Whether a Function URL response is a 200 carrying credentials.
pub fn issued_credentials(response: &Value) -> bool {
    let body = response["body"]
        .as_str()
        .and_then(|b| serde_json::from_str::<Value>(b).ok());
    response["statusCode"] == 200
        && body.is_some_and(|b| {
            b.pointer("/credentials/accessKeyId")
                .is_some_and(Value::is_string)
        })
}

/// One IdP message as SQS delivers it.
pub struct Message {
    pub message_id: String,
    pub group: String,
    pub body: String,
    pub receive_count: u32,
}

impl Message {
    /// A schema-v1 message about user `n`, in the FIFO group `group` (usually the sub).
    pub fn idp(id: &str, kind: &str, n: u64, name: &str, group: Option<&str>) -> Message {
        let body = json!({
            "version": 1, "type": kind, "eventId": format!("hr-{id}"),
            "occurredAt": "2026-11-20T10:00:00Z",
            "user": {"sub": sub(n), "displayName": name, "metadata": {"department": "R&D"}}
        })
        .to_string();
        Message {
            message_id: format!("c9f5e3a7-4b6d-4e8f-9a0b-{id:0>12}"),
            group: group.map_or_else(|| sub(n), str::to_owned),
            body,
            receive_count: 1,
        }
    }

    pub fn record(&self) -> Value {
        json!({
            "messageId": self.message_id,
            "receiptHandle": "AQEBUCU7btn2czMJ9mMq4IjyvD8zgYBw6krb8WVz8238kt6FdyPKSimk9zRJwsxOVwhHg",
            "body": self.body,
            "attributes": {
                "ApproximateReceiveCount": self.receive_count.to_string(),
                "SentTimestamp": "1795168980000",
                "SenderId": "AROAEXAMPLEHRPUBLISH:hr-connector",
                "ApproximateFirstReceiveTimestamp": "1795168980042",
                "SequenceNumber": "18849496460470696137",
                "MessageGroupId": self.group,
                "MessageDeduplicationId": self.message_id
            },
            "messageAttributes": {},
            "md5OfBody": "ab796d95982efe0e830ef0c9437ef867",
            "eventSource": "aws:sqs",
            "eventSourceARN": SYNC_QUEUE_ARN,
            "awsRegion": "us-east-1"
        })
    }
}

/// An SQS event (`{"Records": [...]}`) of these messages.
pub fn sqs_event<'a>(messages: impl IntoIterator<Item = &'a Message>) -> Value {
    json!({ "Records": messages.into_iter().map(Message::record).collect::<Vec<_>>() })
}

/// Batch `i` of the steady idp-sync workload, ten messages in ten FIFO groups: five
/// creates of new users, three renames and two deletes of users batch `i - 1` created.
/// At steady state that is 13 Chime calls: 5 Create, 3 Describe + 3 Update, 2 Delete
/// (batch 0's renames and deletes find nobody: Describe + Create, and a 404 Delete).
/// `base` keeps users of different runs apart.
pub fn idp_workload_batch(base: u64, i: u64) -> Value {
    // Batch i creates users base + 5(i+1) + j; its renames and deletes are about
    // base + 5i + j: batch i-1's users, or for batch 0 users nobody created.
    let created = |j: u64| base + 5 * (i + 1) + j;
    let earlier = |j: u64| base + 5 * i + j;
    let mut messages = Vec::with_capacity(10);
    for j in 0..5 {
        let n = created(j);
        messages.push(Message::idp(
            &format!("{i}c{j}"),
            "user.created",
            n,
            &format!("Bench User {n}"),
            None,
        ));
    }
    for j in 0..3 {
        let n = earlier(j);
        messages.push(Message::idp(
            &format!("{i}u{j}"),
            "user.updated",
            n,
            &format!("Renamed User {n}"),
            None,
        ));
    }
    for j in 3..5 {
        let n = earlier(j);
        messages.push(Message::idp(
            &format!("{i}d{j}"),
            "user.deleted",
            n,
            "-",
            None,
        ));
    }
    sqs_event(&messages)
}
