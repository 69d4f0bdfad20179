//! Wire tests: `StsCredentialIssuer` (the real `aws-sdk-sts` client and our
//! error mapping) against a local STS endpoint that records each request and
//! answers in STS's XML (credential-testkit's `LocalSts`). moto's STS ignores
//! `Tags`, so it could not prove the session tag is sent; this can.

use std::time::{Duration, SystemTime};

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_sts::config::{Credentials, Region, SharedCredentialsProvider};
use chime_sync_aws::StsCredentialIssuer;
use chime_sync_core::UserId;
use chime_sync_core::credentials::{AssumeRoleRequest, CredentialIssuer, IssueError};
use testkit::credentials::{LocalSts, StsAnswer};

const ROLE: &str = "arn:aws:iam::123456789012:role/chime-identity-sync-ChatUserRole";
const SUB: &str = "6f1c2d3e-0b4a-4c5d-8e9f-a0b1c2d3e4f5";

fn issuer(endpoint: &str) -> StsCredentialIssuer {
    let sdk = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "AKIDEXCHANGEFUNCTION",
            "function-role-secret",
            Some("function-role-session-token".into()),
            None,
            "test",
        )))
        .endpoint_url(endpoint)
        .build();
    StsCredentialIssuer::new(&sdk, ROLE, Duration::from_secs(20))
}

fn request(seconds: u64) -> AssumeRoleRequest {
    AssumeRoleRequest::for_user(
        &UserId::parse(SUB).unwrap(),
        "okta",
        Duration::from_secs(seconds),
    )
}

#[tokio::test]
async fn assume_role_sends_the_tag_source_identity_and_duration() {
    let sts = LocalSts::start().await;
    let before = SystemTime::now();
    let creds = issuer(&sts.endpoint_url())
        .assume_role(&request(1200))
        .await
        .unwrap();
    assert!(creds.access_key_id.starts_with("ASIALOCALSTS"));
    assert_eq!(creds.secret_access_key, "local-sts-secret-access-key-1");
    assert!(creds.session_token.starts_with("local-sts-session-token-1"));
    let lasts = creds.expiration.duration_since(before).unwrap().as_secs();
    assert!((1190..=1201).contains(&lasts), "{lasts}");

    let sent = sts.requests();
    assert_eq!(sent.len(), 1);
    let p = &sent[0].params;
    let param = |k: &str| p.get(k).map(String::as_str);
    assert_eq!(param("Action"), Some("AssumeRole"));
    assert_eq!(param("Version"), Some("2011-06-15"));
    assert_eq!(param("RoleArn"), Some(ROLE));
    assert_eq!(param("RoleSessionName"), Some(SUB));
    assert_eq!(param("Tags.member.1.Key"), Some("UserUUID"));
    assert_eq!(param("Tags.member.1.Value"), Some(SUB));
    assert_eq!(param("Tags.member.2.Key"), Some("Issuer"));
    assert_eq!(param("Tags.member.2.Value"), Some("okta"));
    assert_eq!(param("Tags.member.3.Key"), None, "exactly two tags");
    assert_eq!(param("SourceIdentity"), Some(SUB));
    assert_eq!(param("DurationSeconds"), Some("1200"));
    assert!(
        sent[0].signed,
        "SigV4-signed with the function's credentials"
    );
}

#[tokio::test]
async fn throttling_is_retried_by_the_sdk() {
    let sts = LocalSts::start().await;
    sts.script([StsAnswer::Throttling]);
    let creds = issuer(&sts.endpoint_url()).assume_role(&request(900)).await;
    assert!(creds.is_ok(), "{creds:?}");
    assert_eq!(sts.requests().len(), 2, "one throttled attempt, one retry");

    sts.script([StsAnswer::Throttling; 3]);
    let err = issuer(&sts.endpoint_url())
        .assume_role(&request(900))
        .await
        .unwrap_err();
    assert!(
        matches!(err, IssueError::Throttled(ref m) if m.contains("Throttling")),
        "{err:?}"
    );
    assert_eq!(
        sts.requests().len(),
        2 + StsCredentialIssuer::MAX_ATTEMPTS as usize
    );
}

#[tokio::test]
async fn access_denied_is_a_denial_and_not_retried() {
    let sts = LocalSts::start().await;
    sts.script([StsAnswer::AccessDenied]);
    let err = issuer(&sts.endpoint_url())
        .assume_role(&request(900))
        .await
        .unwrap_err();
    match &err {
        IssueError::Denied(m) => {
            assert!(
                m.contains("AccessDenied") && m.contains("sts:TagSession"),
                "{m}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(sts.requests().len(), 1);
}

#[tokio::test]
async fn an_unreachable_sts_is_unavailable() {
    let port = testkit::credentials::serve::closed_port().await;
    let err = issuer(&format!("http://{port}"))
        .assume_role(&request(900))
        .await
        .unwrap_err();
    assert!(matches!(err, IssueError::Unavailable(_)), "{err:?}");
}
