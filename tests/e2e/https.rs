//! The compiled functions over HTTPS, as in production: the Chime fake behind a TLS front
//! whose throw-away root CA the function trusts only through `SSL_CERT_FILE`.
//!
//! Both trust paths of `chime_sync_aws::http` are proven end to end:
//! - with `SSL_CERT_FILE` naming the test root, the functions reach the fake over TLS;
//! - without it, the compiled-in roots are in force: the handshake with the test CA's
//!   certificate fails, no request reaches the fake (nothing was read from the system's
//!   store, which could not trust the test CA either), and post-confirmation hands off;
//! - a bad `SSL_CERT_FILE` stops the function at init, naming the variable.
//!
//! Needs `cargo build --workspace --bins` first (scripts/test.sh does it).

use std::path::PathBuf;
use std::time::Duration;

use chime_identity_fake::{FakeChime, FakeChimeHandle, FakeConfig, TestCa, TlsFront};
use chime_sync_core::replay::{DEMO_APP_INSTANCE_ARN, DEMO_DISPLAY_NAME_ATTRIBUTES};
use serde_json::json;
use testkit::lambda::{Function, IDP_SYNC, Lambda, POST_CONFIRMATION, RECONCILE};
use testkit::moto::{Moto, create_fifo_with_dlq, depth};
use testkit::read_event;
use testkit::runtime_api::Outcome;
use testkit::samples::ADA;

const QUEUE: &str = "http://127.0.0.1:9/123456789012/identity-sync.fifo";
const DLQ: &str = "http://127.0.0.1:9/123456789012/identity-sync-dlq.fifo";

/// The Chime fake, an HTTPS front for it, and the front's root CA written to a file.
struct HttpsFake {
    fake: FakeChimeHandle,
    front: TlsFront,
    ca_file: PathBuf,
}

impl HttpsFake {
    async fn start(name: &str) -> HttpsFake {
        let fake = FakeChime::start(FakeConfig::new()).await.unwrap();
        let ca = TestCa::generate().unwrap();
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("e2e-https");
        std::fs::create_dir_all(&dir).unwrap();
        let ca_file = dir.join(format!("{name}-{}-ca.pem", std::process::id()));
        ca.write_pem(&ca_file).unwrap();
        let front = TlsFront::start(fake.addr(), &ca).await.unwrap();
        HttpsFake {
            fake,
            front,
            ca_file,
        }
    }

    fn ca(&self) -> &str {
        self.ca_file.to_str().unwrap()
    }

    fn attempts(&self) -> u64 {
        self.fake.counters().total_attempts()
    }
}

/// Serves the sample confirmation of a new user (Ada) and expects the event back unchanged:
/// post-confirmation's answer whether it created her or handed her off.
async fn confirm_new_user(lambda: &Lambda) {
    let event = read_event("post-confirmation/confirm-sign-up-new-user.json");
    assert_eq!(
        lambda.invoke(&event).await,
        Outcome::Response(event.clone())
    );
}

async fn start(function: Function, https: &HttpsFake, extra: &[(&str, &str)]) -> Lambda {
    let endpoint = https.front.endpoint_url();
    let mut env = vec![
        ("APP_INSTANCE_ARN", DEMO_APP_INSTANCE_ARN),
        ("AWS_ENDPOINT_URL_CHIME_SDK_IDENTITY", endpoint.as_str()),
    ];
    env.extend_from_slice(extra);
    Lambda::start(function, &env).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn functions_reach_chime_over_tls_when_ssl_cert_file_names_its_root() {
    let https = HttpsFake::start("trusted").await;
    let lambda = start(
        POST_CONFIRMATION,
        &https,
        &[
            ("SSL_CERT_FILE", https.ca()),
            ("SYNC_QUEUE_URL", QUEUE),
            ("DISPLAY_NAME_ATTRIBUTES", DEMO_DISPLAY_NAME_ATTRIBUTES),
        ],
    )
    .await;
    confirm_new_user(&lambda).await;
    let users: Vec<String> = https
        .fake
        .users()
        .into_iter()
        .map(|u| u.app_instance_user_id)
        .collect();
    assert_eq!(users, [ADA]);
    lambda.stop();

    let lambda = start(
        IDP_SYNC,
        &https,
        &[("SSL_CERT_FILE", https.ca()), ("DLQ_URL", DLQ)],
    )
    .await;
    let batch = read_event("idp-sync/sns-wrapped-user-created.json");
    let answer = lambda.invoke(&batch).await;
    assert_eq!(answer, Outcome::Response(json!({"batchItemFailures": []})));
    assert_eq!(
        https.fake.users().len(),
        2,
        "one more user, created over TLS"
    );
    lambda.stop();
}

/// Without `SSL_CERT_FILE` the compiled-in roots apply, and they do not include a private
/// CA: the TLS handshake fails before any request, and post-confirmation hands the user to
/// the queue (here moto, over plain HTTP) as it does for any Chime outage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_ssl_cert_file_a_private_ca_is_not_trusted() {
    let https = HttpsFake::start("untrusted").await;
    let moto = Moto::start().await;
    let sqs = moto.sqs();
    let queues = create_fifo_with_dlq(&sqs, "https-untrusted", 30, 5).await;
    let lambda = start(
        POST_CONFIRMATION,
        &https,
        &[
            ("SYNC_QUEUE_URL", &queues.queue_url),
            ("AWS_ENDPOINT_URL_SQS", moto.endpoint_url()),
            ("DISPLAY_NAME_ATTRIBUTES", DEMO_DISPLAY_NAME_ATTRIBUTES),
        ],
    )
    .await;
    confirm_new_user(&lambda).await;
    assert_eq!(
        https.attempts(),
        0,
        "no request may pass an untrusted handshake"
    );
    assert!(https.fake.users().is_empty());
    assert_eq!(
        depth(&sqs, &queues.queue_url).await,
        1,
        "handed off instead"
    );
    lambda.stop();
    let log = lambda.log();
    assert!(log.contains("handed-off"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_ssl_cert_file_is_an_init_error_naming_it() {
    let https = HttpsFake::start("bad").await;
    let not_pem = https.ca_file.with_extension("txt");
    std::fs::write(&not_pem, "not a certificate\n").unwrap();
    let cases = [
        ("/nonexistent/ca.pem".to_owned(), "cannot read it"),
        (not_pem.display().to_string(), "holds no PEM certificate"),
    ];
    for (value, reason) in &cases {
        for (function, own) in [
            (POST_CONFIRMATION, &[("SYNC_QUEUE_URL", QUEUE)][..]),
            (IDP_SYNC, &[("DLQ_URL", DLQ)]),
            (
                RECONCILE,
                &[
                    ("SYNC_QUEUE_URL", QUEUE),
                    ("USER_POOL_ID", "us-east-1_AbCdEf123"),
                ],
            ),
        ] {
            let mut env = vec![("SSL_CERT_FILE", value.as_str())];
            env.extend_from_slice(own);
            let lambda = start(function, &https, &env).await;
            let report = lambda.api.init_error(Duration::from_secs(10)).await;
            assert_eq!(report.error_type, "Runtime.ConfigError");
            assert!(
                report
                    .error_message
                    .starts_with(&format!("SSL_CERT_FILE={value}: {reason}")),
                "{}: {:?}",
                function.binary,
                report.error_message
            );
            lambda.stop();
        }
    }
    assert_eq!(https.attempts(), 0);
}

/// The functions read credentials and region from the environment only: with no static
/// credentials set but a container-credentials endpoint and an IMDS endpoint offered (both
/// a local listener that counts connections), the default chains would call them; ours never
/// do. The Chime call and the hand-off both fail for want of credentials, and the function
/// says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_come_from_the_environment_only() {
    let https = HttpsFake::start("env-only").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let decoy = format!("http://{}", listener.local_addr().unwrap());
    let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = connections.clone();
    let server = tokio::spawn(async move {
        while let Ok((_stream, _)) = listener.accept().await {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    let creds_uri = format!("{decoy}/credentials");
    let lambda = start(
        POST_CONFIRMATION,
        &https,
        &[
            ("SSL_CERT_FILE", https.ca()),
            ("SYNC_QUEUE_URL", QUEUE),
            // Lambda always sets these three; without them the default chain goes on to the
            // container endpoint and IMDS.
            ("AWS_ACCESS_KEY_ID", ""),
            ("AWS_SECRET_ACCESS_KEY", ""),
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", &creds_uri),
            ("AWS_EC2_METADATA_DISABLED", "false"),
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT", &decoy),
        ],
    )
    .await;
    let event = read_event("post-confirmation/confirm-sign-up-new-user.json");
    let report = lambda.invoke(&event).await.error().clone();
    assert_eq!(report.error_type, "ConfirmationFailed.HandOffFailed");
    assert_eq!(
        connections.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "a credentials provider other than the environment's was called"
    );
    assert!(https.fake.users().is_empty());
    lambda.stop();
    server.abort();
}
