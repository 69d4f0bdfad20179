//! moto's server as the tests' SQS (and, for reconcile, Cognito user pools):
//! started on a free port, killed on drop.
//!
//! scripts/test.sh installs `moto[server]` (pinned in
//! scripts/test-requirements.txt) into `target/venv` and exports its path as
//! `CHIME_SYNC_VENV`. moto speaks SQS's wire protocols (the SDK's JSON one
//! included), FIFO deduplication and redrive; its FIFO *ordering* is not
//! strict (docs/ARCHITECTURE.md, "Testing"), so tests here never assert order from it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::net::{free_port, http_get};
use crate::process::ChildGuard;
use crate::workspace_root;
use aws_config::SdkConfig;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region, SharedCredentialsProvider};
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName, QueueAttributeName};

/// moto's default account: queue URLs are `{endpoint}/123456789012/{name}`.
pub const ACCOUNT: &str = "123456789012";
/// The region every client here uses (queue ARNs are `arn:aws:sqs:us-east-1:…`).
pub const REGION: &str = "us-east-1";
/// Static test credentials (moto checks none).
pub const ACCESS_KEY_ID: &str = "AKIDTESTCHIMESYNC";
pub const SECRET_ACCESS_KEY: &str = "test-secret-not-a-real-key";

/// How long moto may take to answer its first request (a cold Python start
/// on a loaded 2-core machine takes a few seconds).
const READY_WITHIN: Duration = Duration::from_secs(45);

/// The venv that holds moto: `$CHIME_SYNC_VENV`, else `target/venv` of the
/// workspace. Panics with the command to run when it has no moto.
pub fn venv() -> PathBuf {
    let venv = std::env::var_os("CHIME_SYNC_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target").join("venv"));
    let python = venv.join("bin").join("python");
    let moto = venv.join("bin").join("moto_server");
    if !python.is_file() || !moto.is_file() {
        panic!(
            "moto's server is not installed: expected {} and {}.\n\
             Run the tests with scripts/test.sh (it installs scripts/test-requirements.txt into \
             target/venv and exports CHIME_SYNC_VENV), or install it by hand:\n  \
             python3 -m venv target/venv && target/venv/bin/pip install -r scripts/test-requirements.txt",
            python.display(),
            moto.display()
        );
    }
    venv
}

/// A running moto server; dropping it kills the server.
pub struct Moto {
    endpoint: String,
    process: ChildGuard,
}

impl Moto {
    /// Start moto on a free port and wait until it answers HTTP.
    pub async fn start() -> Moto {
        Self::start_with(&["-m", "moto.server"], &[]).await
    }

    /// [`Moto::start`] through `moto_cognito.py` (beside this file), which makes users
    /// created with AdminCreateUser under a federated name (`Google_…`) EXTERNAL_PROVIDER:
    /// moto has no such status of its own.
    pub async fn start_with_federated_users() -> Moto {
        let launcher = workspace_root().join("crates/testkit/src/moto_cognito.py");
        Self::start_with(&[launcher.to_string_lossy().as_ref()], &[]).await
    }

    /// [`Moto::start_with_federated_users`], with the user pools of `seed` (a JSON file,
    /// see `moto_cognito.py`) created before it serves.
    pub async fn start_with_seeded_pools(seed: &std::path::Path) -> Moto {
        let launcher = workspace_root().join("crates/testkit/src/moto_cognito.py");
        Self::start_with(
            &[launcher.to_string_lossy().as_ref()],
            &[("CHIME_SYNC_MOTO_SEED", seed.to_string_lossy().as_ref())],
        )
        .await
    }

    async fn start_with(launch: &[&str], env: &[(&str, &str)]) -> Moto {
        let python = venv().join("bin").join("python");
        let mut last_failure = String::new();
        // A port found free can be taken before moto binds it: try a few.
        for _ in 0..3 {
            let port = free_port();
            let mut command = Command::new(&python);
            command
                .args(launch)
                .args(["-H", "127.0.0.1", "-p"])
                .arg(port.to_string())
                // No `.pyc` writes into the shared venv from parallel tests.
                .envs(env.iter().copied())
                .env("PYTHONDONTWRITEBYTECODE", "1")
                .env("PYTHONUNBUFFERED", "1");
            let process = ChildGuard::spawn(format!("moto_server :{port}"), command)
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", python.display()));
            let mut moto = Moto {
                endpoint: format!("http://127.0.0.1:{port}"),
                process,
            };
            match moto.wait_ready(port).await {
                Ok(()) => return moto,
                Err(why) => last_failure = format!("{why}\n{}", moto.process.output()),
            }
        }
        panic!("moto's server did not start: {last_failure}");
    }

    async fn wait_ready(&mut self, port: u16) -> Result<(), String> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.process.try_status() {
                return Err(format!("moto exited before answering ({status})"));
            }
            if probe(port).await {
                return Ok(());
            }
            if started.elapsed() > READY_WITHIN {
                return Err(format!(
                    "moto did not answer on port {port} within {READY_WITHIN:?}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `http://127.0.0.1:{port}`.
    pub fn endpoint_url(&self) -> &str {
        &self.endpoint
    }

    /// What moto logged (its request log is on stderr).
    pub fn output(&self) -> String {
        self.process.output()
    }

    /// An AWS configuration for moto built from nothing but constants:
    /// region, static credentials and moto's endpoint. It reads no
    /// environment, profile or instance metadata.
    pub fn sdk_config(&self) -> SdkConfig {
        SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                ACCESS_KEY_ID,
                SECRET_ACCESS_KEY,
                None,
                None,
                "chime-sync-tests",
            )))
            .endpoint_url(&self.endpoint)
            // The workspace's one HTTPS stack (the SDK's default client is not compiled in).
            .http_client(http_client())
            .build()
    }

    /// The real SQS client, pointed at moto.
    pub fn sqs(&self) -> Client {
        Client::new(&self.sdk_config())
    }
}

/// `GET /moto-api/` answered with any HTTP status.
async fn probe(port: u16) -> bool {
    http_get(port, "/moto-api/").await.is_ok()
}

/// A FIFO queue and its FIFO dead-letter queue.
#[derive(Debug, Clone)]
pub struct FifoQueues {
    pub queue_url: String,
    pub queue_arn: String,
    pub dlq_url: String,
    pub dlq_arn: String,
}

/// Create `{name}.fifo` with a redrive policy to `{name}-dlq.fifo`
/// (`maxReceiveCount`), as template.yaml does, with a short visibility
/// timeout so redelivery is quick. Content-based deduplication is off: every
/// sender must give a deduplication id.
pub async fn create_fifo_with_dlq(
    sqs: &Client,
    name: &str,
    visibility_timeout_secs: u32,
    max_receive_count: u32,
) -> FifoQueues {
    let dlq_url = create_fifo(sqs, &format!("{name}-dlq.fifo"), &[]).await;
    let dlq_arn = queue_arn(sqs, &dlq_url).await;
    let redrive = serde_json::json!({
        "deadLetterTargetArn": dlq_arn,
        "maxReceiveCount": max_receive_count.to_string(),
    })
    .to_string();
    let queue_url = create_fifo(
        sqs,
        &format!("{name}.fifo"),
        &[
            (
                QueueAttributeName::VisibilityTimeout,
                visibility_timeout_secs.to_string(),
            ),
            (QueueAttributeName::RedrivePolicy, redrive),
        ],
    )
    .await;
    let queue_arn = queue_arn(sqs, &queue_url).await;
    FifoQueues {
        queue_url,
        queue_arn,
        dlq_url,
        dlq_arn,
    }
}

/// Create a FIFO queue (`name` must end in `.fifo`); returns its URL.
pub async fn create_fifo(
    sqs: &Client,
    name: &str,
    attributes: &[(QueueAttributeName, String)],
) -> String {
    let mut request = sqs
        .create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::FifoQueue, "true")
        .attributes(QueueAttributeName::ContentBasedDeduplication, "false");
    for (key, value) in attributes {
        request = request.attributes(key.clone(), value);
    }
    let created = request
        .send()
        .await
        .unwrap_or_else(sdk_panic(format!("CreateQueue {name}")));
    created
        .queue_url()
        .unwrap_or_else(|| panic!("CreateQueue {name} returned no QueueUrl"))
        .to_owned()
}

/// For `unwrap_or_else` on an SDK call: a panic naming the call, with the SDK's whole error
/// chain (its `Display` alone says only "service error").
pub fn sdk_panic<T, E: std::error::Error>(call: impl std::fmt::Display) -> impl FnOnce(E) -> T {
    move |e| panic!("{call}: {}", aws_sdk_sqs::error::DisplayErrorContext(&e))
}

/// A queue's ARN (`GetQueueAttributes QueueArn`).
pub async fn queue_arn(sqs: &Client, url: &str) -> String {
    queue_attributes(sqs, url, &[QueueAttributeName::QueueArn])
        .await
        .remove(&QueueAttributeName::QueueArn)
        .unwrap_or_else(|| panic!("{url} has no QueueArn"))
}

/// `GetQueueAttributes` of these names; panics, naming the queue, if the call fails.
async fn queue_attributes(
    sqs: &Client,
    url: &str,
    names: &[QueueAttributeName],
) -> HashMap<QueueAttributeName, String> {
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(url)
        .set_attribute_names(Some(names.to_vec()))
        .send()
        .await
        .unwrap_or_else(sdk_panic(format!("GetQueueAttributes {url}")));
    attributes.attributes().cloned().unwrap_or_default()
}

/// One `ReceiveMessage` of up to `max` messages (1–10), long-polling up to
/// `wait_secs`, with every system attribute (MessageGroupId,
/// MessageDeduplicationId, ApproximateReceiveCount, …) and every message
/// attribute.
pub async fn receive(sqs: &Client, url: &str, max: i32, wait_secs: i32) -> Vec<Message> {
    sqs.receive_message()
        .queue_url(url)
        .max_number_of_messages(max)
        .wait_time_seconds(wait_secs)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .message_attribute_names("All")
        .send()
        .await
        .unwrap_or_else(sdk_panic(format!("ReceiveMessage {url}")))
        .messages
        .unwrap_or_default()
}

/// Receive until `expected` messages have arrived (without deleting them:
/// they stay in flight for the queue's visibility timeout) or `within` has
/// passed; returns what arrived. Callers assert on the count.
pub async fn receive_n(sqs: &Client, url: &str, expected: usize, within: Duration) -> Vec<Message> {
    let until = Instant::now() + within;
    let mut got: Vec<Message> = Vec::new();
    while got.len() < expected && Instant::now() < until {
        let want = i32::try_from((expected - got.len()).min(10)).unwrap_or(10);
        got.extend(receive(sqs, url, want, 1).await);
    }
    got
}

/// `ApproximateNumberOfMessages` + `…NotVisible` (+ `…Delayed`): every
/// message the queue holds.
pub async fn depth(sqs: &Client, url: &str) -> u64 {
    let names = [
        QueueAttributeName::ApproximateNumberOfMessages,
        QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
        QueueAttributeName::ApproximateNumberOfMessagesDelayed,
    ];
    let map = queue_attributes(sqs, url, &names).await;
    names
        .iter()
        .filter_map(|k| map.get(k))
        .map(|v| {
            v.parse::<u64>()
                .unwrap_or_else(|_| panic!("{url}: depth `{v}` is not a number"))
        })
        .sum()
}

/// A system attribute of a received message (`MessageGroupId`, …).
pub fn system_attribute(message: &Message, name: MessageSystemAttributeName) -> Option<&str> {
    message
        .attributes()
        .and_then(|a| a.get(&name))
        .map(String::as_str)
}

/// A String message attribute of a received message (`FailureReason`, …).
pub fn string_attribute<'m>(message: &'m Message, name: &str) -> Option<&'m str> {
    message
        .message_attributes()
        .and_then(|a| a.get(name))
        .and_then(|v| v.string_value())
}

/// A received message's system attributes by name, as the simulator and Lambda's records
/// carry them.
pub fn attribute_map(message: &Message) -> HashMap<String, String> {
    message
        .attributes()
        .map(|a| {
            a.iter()
                .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// post-confirmation's hand-off of `sub` to the sync queue, as SQS delivered it: grouped by
/// the sub, deduplicated by `cognito-confirm-{sub}`, marked as post-confirmation's. Answers
/// the body, for the caller's checks of the event.
pub fn hand_off_body(message: &Message, sub: &str) -> serde_json::Value {
    assert_eq!(
        system_attribute(message, MessageSystemAttributeName::MessageGroupId),
        Some(sub)
    );
    let dedup = format!("cognito-confirm-{sub}");
    assert_eq!(
        system_attribute(message, MessageSystemAttributeName::MessageDeduplicationId),
        Some(dedup.as_str())
    );
    assert_eq!(
        string_attribute(message, "Source"),
        Some("post-confirmation")
    );
    let body = message.body().expect("a hand-off has a body");
    serde_json::from_str(body).expect("a hand-off's body is JSON")
}

/// The SDK HTTP client the functions use (`chime_sync_aws::http`), with the compiled-in roots.
pub fn http_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    chime_sync_aws::http::sdk_http_client(&chime_sync_aws::TrustRoots::Compiled)
        .expect("the compiled-in roots make a valid TLS configuration")
}
