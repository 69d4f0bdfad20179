//! The functions as processes: each release bootstrap binary (and the Node.js 20
//! equivalents under `bench/node/`) behind its own mock Runtime API, with the environment
//! Lambda gives a function, talking to the in-process Chime fake.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::child::FunctionProcess;
use crate::events::{self, APP_INSTANCE_ARN, Message};
use crate::runtime_api::{Answer, AnswerKind, MockRuntime, REGION};

/// Which function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    PreSignup,
    PostConfirmation,
    IdpSync,
    /// `bench-bare-trigger`: DESIGN.md §8's reference point.
    Bare,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::PreSignup => "pre-signup",
            Kind::PostConfirmation => "post-confirmation",
            Kind::IdpSync => "idp-sync",
            Kind::Bare => "bench-bare-trigger",
        }
    }

    /// template.yaml's memory size and timeout (the bare trigger borrows
    /// post-confirmation's).
    fn memory_and_timeout(self) -> (u32, Duration) {
        match self {
            Kind::PreSignup => (128, Duration::from_secs(3)),
            Kind::PostConfirmation | Kind::Bare => (256, Duration::from_secs(4)),
            Kind::IdpSync => (256, Duration::from_secs(30)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Rust,
    Node,
}

/// One function under measurement and how to start it.
#[derive(Debug, Clone)]
pub struct Subject {
    pub kind: Kind,
    pub lang: Lang,
    /// A differently built copy of a Rust binary (`--variant`), e.g. `panic=abort`.
    pub variant: Option<String>,
    program: PathBuf,
    args: Vec<String>,
    cwd: Option<PathBuf>,
}

/// What every subject's environment points at.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// The in-process Chime fake.
    pub chime: String,
    /// A closed local port: the normal paths never call SQS.
    pub sqs: String,
    /// Where each subject's stdout and stderr go.
    pub log_dir: PathBuf,
}

impl Subject {
    pub fn rust(kind: Kind, bin_dir: &Path) -> Subject {
        Subject {
            kind,
            lang: Lang::Rust,
            variant: None,
            program: bin_dir.join(kind.name()),
            args: Vec::new(),
            cwd: None,
        }
    }

    /// `node node_modules/aws-lambda-ric/bin/index.mjs {name}.handler` in `bench/node`:
    /// the official runtime interface client loads the handler module from its cwd.
    pub fn node(kind: Kind, node: &Path, node_dir: &Path) -> Subject {
        Subject {
            kind,
            lang: Lang::Node,
            variant: None,
            program: node.to_owned(),
            args: vec![
                node_dir
                    .join("node_modules/aws-lambda-ric/bin/index.mjs")
                    .display()
                    .to_string(),
                format!("{}.handler", kind.name()),
            ],
            cwd: Some(node_dir.to_owned()),
        }
    }

    /// The same function built another way, from `bin_dir`.
    pub fn rust_variant(kind: Kind, variant: &str, bin_dir: &Path) -> Subject {
        Subject {
            variant: Some(variant.to_owned()),
            ..Subject::rust(kind, bin_dir)
        }
    }

    pub fn program(&self) -> &Path {
        &self.program
    }

    pub fn label(&self) -> String {
        if let Some(variant) = &self.variant {
            return format!("{} (Rust, {variant})", self.kind.name());
        }
        match self.lang {
            Lang::Rust if self.kind == Kind::Bare => "bare Rust trigger (reference)".to_owned(),
            Lang::Rust => format!("{} (Rust)", self.kind.name()),
            Lang::Node => format!("{} (Node.js 20)", self.kind.name()),
        }
    }

    fn slug(&self) -> String {
        let lang = match self.lang {
            Lang::Rust => "rust",
            Lang::Node => "node",
        };
        let variant: String = self
            .variant
            .iter()
            .flat_map(|v| std::iter::once('-').chain(v.chars()))
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        format!("{}-{lang}{variant}", self.kind.name())
    }

    pub fn log_path(&self, endpoints: &Endpoints) -> PathBuf {
        endpoints.log_dir.join(format!("{}.log", self.slug()))
    }

    /// The environment Lambda sets for a function (provided.al2023 or nodejs20.x), with
    /// every other source of AWS configuration switched off, plus the function's own
    /// variables and the endpoint overrides.
    fn command(&self, runtime_api: &str, endpoints: &Endpoints) -> Command {
        let (memory, _) = self.kind.memory_and_timeout();
        let name = self.kind.name();
        let mut command = Command::new(&self.program);
        command.args(&self.args).env_clear();
        if let Some(cwd) = &self.cwd {
            command.current_dir(cwd);
        }
        let execution_env = match self.lang {
            Lang::Rust => "AWS_Lambda_provided.al2023",
            Lang::Node => "AWS_Lambda_nodejs20.x",
        };
        let common = [
            ("AWS_LAMBDA_RUNTIME_API", runtime_api.to_owned()),
            ("AWS_LAMBDA_FUNCTION_NAME", name.to_owned()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", memory.to_string()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
            ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}")),
            (
                "AWS_LAMBDA_LOG_STREAM_NAME",
                "2026/11/20/[$LATEST]0123456789abcdef0123456789abcdef".to_owned(),
            ),
            ("AWS_LAMBDA_LOG_FORMAT", "JSON".to_owned()),
            ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".to_owned()),
            ("AWS_EXECUTION_ENV", execution_env.to_owned()),
            ("AWS_REGION", REGION.to_owned()),
            ("AWS_DEFAULT_REGION", REGION.to_owned()),
            ("AWS_ACCESS_KEY_ID", "AKIDBENCHCHIMESYNC".to_owned()),
            (
                "AWS_SECRET_ACCESS_KEY",
                "bench-secret-not-a-real-key".to_owned(),
            ),
            ("AWS_SESSION_TOKEN", "bench-session-token".to_owned()),
            ("AWS_CONFIG_FILE", "/dev/null".to_owned()),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".to_owned()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
            (
                "AWS_ENDPOINT_URL_CHIME_SDK_IDENTITY",
                endpoints.chime.clone(),
            ),
            ("AWS_ENDPOINT_URL_SQS", endpoints.sqs.clone()),
            ("_HANDLER", format!("{name}.handler")),
            ("LAMBDA_TASK_ROOT", "/var/task".to_owned()),
            ("TZ", ":UTC".to_owned()),
            ("LANG", "en_US.UTF-8".to_owned()),
            ("PATH", "/usr/local/bin:/usr/bin:/bin".to_owned()),
        ];
        for (key, value) in common {
            command.env(key, value);
        }
        let queue = |name: &str| format!("{}/123456789012/{name}", endpoints.sqs);
        let own: Vec<(&str, String)> = match self.kind {
            Kind::PreSignup => vec![
                ("ALLOWED_EMAIL_DOMAINS", "example.com".to_owned()),
                ("AUTO_VERIFY_EMAIL", "true".to_owned()),
            ],
            Kind::PostConfirmation => vec![
                ("APP_INSTANCE_ARN", APP_INSTANCE_ARN.to_owned()),
                ("SYNC_QUEUE_URL", queue("identity-sync.fifo")),
            ],
            Kind::IdpSync => vec![
                ("APP_INSTANCE_ARN", APP_INSTANCE_ARN.to_owned()),
                ("DLQ_URL", queue("identity-sync-dlq.fifo")),
                ("MAX_CONCURRENT_GROUPS", "10".to_owned()),
            ],
            Kind::Bare => vec![("APP_INSTANCE_ARN", APP_INSTANCE_ARN.to_owned())],
        };
        for (key, value) in own {
            command.env(key, value);
        }
        command
    }

    /// The cold-start event: one sign-up, one confirmation of a new user, or a batch of
    /// one `user.created` message (one Chime call, like post-confirmation).
    pub fn first_event(&self, n: u64) -> Value {
        match self.kind {
            Kind::PreSignup => events::pre_signup(n),
            Kind::PostConfirmation | Kind::Bare => events::post_confirmation(n),
            Kind::IdpSync => events::sqs_event([&Message::idp(
                &format!("cold{n}"),
                "user.created",
                n,
                &format!("Bench User {n}"),
                None,
            )]),
        }
    }

    /// Event `i` of a long run; `base` keeps users of different runs apart.
    pub fn steady_event(&self, base: u64, i: u64) -> Value {
        match self.kind {
            Kind::PreSignup => events::pre_signup(base + i),
            Kind::PostConfirmation | Kind::Bare => events::post_confirmation(base + i),
            Kind::IdpSync => events::idp_workload_batch(base, i),
        }
    }

    /// Whether `answer` is the right answer to `event`.
    fn check(&self, answer: &Answer, event: &Value) -> Result<(), String> {
        let text = String::from_utf8_lossy(&answer.body);
        if answer.kind != AnswerKind::Response {
            return Err(format!(
                "{} answered {:?}: {text}",
                self.label(),
                answer.kind
            ));
        }
        let body: Value = serde_json::from_slice(&answer.body)
            .map_err(|e| format!("{} answered non-JSON ({e}): {text}", self.label()))?;
        let ok = match self.kind {
            Kind::PreSignup => {
                body.pointer("/response/autoVerifyEmail") == Some(&Value::Bool(true))
            }
            Kind::PostConfirmation | Kind::Bare => &body == event,
            Kind::IdpSync => body
                .get("batchItemFailures")
                .and_then(Value::as_array)
                .is_some_and(Vec::is_empty),
        };
        if ok {
            Ok(())
        } else {
            Err(format!("{} answered unexpectedly: {text}", self.label()))
        }
    }

    fn timeout(&self) -> Duration {
        self.kind.memory_and_timeout().1
    }
}

/// How long to wait for any one answer before calling the run failed.
const ANSWER_WAIT: Duration = Duration::from_secs(30);

/// Exec → the first response POSTed to the Runtime API, for event number `n`.
pub async fn cold_start(s: &Subject, endpoints: &Endpoints, n: u64) -> Result<Duration, String> {
    let mut api = MockRuntime::start(s.kind.name(), s.timeout())
        .await
        .map_err(|e| format!("mock Runtime API: {e}"))?;
    let event = s.first_event(n);
    api.enqueue(event.to_string());
    let command = s.command(&api.host_port(), endpoints);
    let started = Instant::now();
    let mut process = FunctionProcess::spawn(command, &s.log_path(endpoints))
        .map_err(|e| format!("cannot start {}: {e}", s.label()))?;
    let Some(answer) = api.answer(ANSWER_WAIT).await else {
        return Err(format!(
            "{} gave no answer within {ANSWER_WAIT:?} (exit: {:?}); see {}",
            s.label(),
            process.exited(),
            s.log_path(endpoints).display()
        ));
    };
    let elapsed = answer.at.duration_since(started);
    s.check(&answer, &event)?;
    drop(process);
    Ok(elapsed)
}

/// What one process looked like after serving many invocations.
#[derive(Debug, Clone, Copy)]
pub struct LongRun {
    /// `VmHWM`: the peak resident set over the process's life, KiB.
    pub peak_kib: u64,
    /// `VmRSS` at the end, KiB.
    pub rss_kib: u64,
    /// From the first answer to the last: the warm invocations.
    pub warm: Duration,
    pub invocations: usize,
}

/// Serve `count` invocations to one process, then read its memory before killing it.
pub async fn long_run(
    s: &Subject,
    endpoints: &Endpoints,
    base: u64,
    count: usize,
) -> Result<LongRun, String> {
    let mut api = MockRuntime::start(s.kind.name(), s.timeout())
        .await
        .map_err(|e| format!("mock Runtime API: {e}"))?;
    let events: Vec<Value> = (0..count as u64).map(|i| s.steady_event(base, i)).collect();
    for event in &events {
        api.enqueue(event.to_string());
    }
    let command = s.command(&api.host_port(), endpoints);
    let mut process = FunctionProcess::spawn(command, &s.log_path(endpoints))
        .map_err(|e| format!("cannot start {}: {e}", s.label()))?;
    let mut first = None;
    let mut last = Instant::now();
    for (i, event) in events.iter().enumerate() {
        let Some(answer) = api.answer(ANSWER_WAIT).await else {
            return Err(format!(
                "{}: no answer to invocation {i} within {ANSWER_WAIT:?} (exit: {:?})",
                s.label(),
                process.exited()
            ));
        };
        s.check(&answer, event)
            .map_err(|e| format!("invocation {i}: {e}"))?;
        first.get_or_insert(answer.at);
        last = answer.at;
    }
    let (peak_kib, rss_kib) = process
        .memory_kib()
        .map_err(|e| format!("{}: {e}", s.label()))?;
    drop(process);
    Ok(LongRun {
        peak_kib,
        rss_kib,
        warm: last.duration_since(first.unwrap_or(last)),
        invocations: count,
    })
}
