//! The functions as processes: each release bootstrap binary (and the Node.js 20
//! equivalents under `bench/node/`) behind its own mock Runtime API, with the environment
//! Lambda gives a function, talking to the in-process Chime fake over HTTPS (its TLS front,
//! trusted through a throw-away root CA) or plain HTTP.
//!
//! Every bootstrap measured is a row of [`BOOTSTRAPS`]: its binary, template.yaml's memory
//! and timeout, its own variables and the events it is served. Measuring a new function is
//! one more row (and, for a new kind of event, one more [`Workload`]).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::runtime_api::{Answer, AnswerKind, REGION, RuntimeApi};

use crate::child::FunctionProcess;
use crate::events::{self, APP_INSTANCE_ARN, Message};

/// What a bootstrap is served, and what answer is right.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// PreSignUp sign-ups; the answer sets `autoVerifyEmail`. No Chime call.
    SignUp,
    /// PostConfirmation events; the event comes back unchanged. The cold start confirms a new
    /// user's sign-up (DescribeAppInstanceUser answers 404, then CreateAppInstanceUser: two
    /// calls). A long run serves ConfirmForgotPassword events of one user, whom its first
    /// invocation creates: every warm invocation is exactly one DescribeAppInstanceUser, the
    /// one-call invocation the warm CPU target is about.
    Confirmation,
    /// ConfirmSignUp of a new user at every invocation, for the naive floor, which only
    /// creates (one CreateAppInstanceUser, no Describe).
    NewUsers,
    /// SQS batches of IdP messages; the answer has no `batchItemFailures`.
    IdpBatch,
    /// `POST /credentials` through a Function URL with a token of the local IdP; the answer is
    /// 200 with credentials. The cold start is a new user's: the issuer's discovery document
    /// and JWKS, Describe (404) and Create, then STS AssumeRole. A long run is one user's
    /// tokens: every warm request is a Describe and an AssumeRole (the keys are cached).
    CredentialExchange,
}

/// Why a bootstrap is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// One of ours: the targets apply to it.
    Function,
    /// The naive floor: lambda_runtime + aws-config + the Chime client with the SDK's
    /// defaults (bench/bare-trigger, its own workspace), the cold-start yardstick.
    NaiveFloor,
    /// The same call with no SDK, the yardstick for warm CPU per invocation.
    NoSdk,
}

/// A variable a bootstrap needs beyond what Lambda sets.
#[derive(Debug, Clone, Copy)]
pub enum Var {
    Value(&'static str, &'static str),
    /// A queue URL on the (closed) local SQS endpoint: the normal paths never call it.
    Queue(&'static str, &'static str),
    AppInstance,
    /// `TRUSTED_ISSUERS`: the local IdP, audience [`events::AUDIENCE`].
    Issuers,
    /// `AWS_ENDPOINT_URL_STS`: the local STS, over the run's transport.
    Sts,
}

/// One bootstrap under measurement.
#[derive(Debug)]
pub struct Bootstrap {
    /// The binary (and the Node.js equivalent's module, `bench/node/{name}.mjs`).
    pub name: &'static str,
    pub role: Role,
    /// template.yaml's MemorySize and Timeout (the references borrow post-confirmation's).
    pub memory_mb: u32,
    pub timeout: Duration,
    pub workload: Workload,
    pub vars: &'static [Var],
    /// Whether `bench/node` has a Node.js 20 equivalent.
    pub node: bool,
    /// Where the release binary is: the workspace's `target/release`, or the naive floor's
    /// own target directory.
    pub own_workspace: bool,
    /// template.yaml's logical id, for the `sam build` artifact (`.aws-sam/build/{id}`).
    pub sam_function: Option<&'static str>,
}

/// `LEDGER_TABLE=memory`: the functions refuse to start without a ledger, and these
/// measurements are of start-up and Chime calls, not of DynamoDB (bench-reconcile measures
/// the ledger's cost against a DynamoDB stand-in).
const LEDGER: Var = Var::Value("LEDGER_TABLE", "memory");

const CONFIRM_VARS: &[Var] = &[
    Var::AppInstance,
    Var::Queue("SYNC_QUEUE_URL", "identity-sync.fifo"),
    LEDGER,
];

/// Everything measured. Our functions first, then the yardsticks.
pub const BOOTSTRAPS: &[Bootstrap] = &[
    Bootstrap {
        name: "pre-signup",
        role: Role::Function,
        memory_mb: 128,
        timeout: Duration::from_secs(3),
        workload: Workload::SignUp,
        vars: &[
            Var::Value("ALLOWED_EMAIL_DOMAINS", "example.com"),
            Var::Value("AUTO_VERIFY_EMAIL", "true"),
        ],
        node: false,
        own_workspace: false,
        sam_function: Some("PreSignUpFunction"),
    },
    Bootstrap {
        name: "post-confirmation",
        role: Role::Function,
        memory_mb: 256,
        timeout: Duration::from_secs(4),
        workload: Workload::Confirmation,
        vars: CONFIRM_VARS,
        node: true,
        own_workspace: false,
        sam_function: Some("PostConfirmationFunction"),
    },
    Bootstrap {
        name: "idp-sync",
        role: Role::Function,
        memory_mb: 256,
        timeout: Duration::from_secs(30),
        workload: Workload::IdpBatch,
        vars: &[
            Var::AppInstance,
            Var::Queue("DLQ_URL", "identity-sync-dlq.fifo"),
            Var::Value("MAX_CONCURRENT_GROUPS", "10"),
            LEDGER,
        ],
        node: true,
        own_workspace: false,
        sam_function: Some("IdpSyncFunction"),
    },
    Bootstrap {
        name: "credential-exchange",
        role: Role::Function,
        memory_mb: 256,
        timeout: Duration::from_secs(10),
        workload: Workload::CredentialExchange,
        vars: &[
            Var::AppInstance,
            Var::Issuers,
            Var::Sts,
            Var::Value("CHAT_USER_ROLE_ARN", events::CHAT_USER_ROLE_ARN),
            LEDGER,
        ],
        node: false,
        own_workspace: false,
        sam_function: Some("CredentialExchangeFunction"),
    },
    Bootstrap {
        name: "bench-bare-trigger",
        role: Role::NaiveFloor,
        memory_mb: 256,
        timeout: Duration::from_secs(4),
        workload: Workload::NewUsers,
        vars: &[Var::AppInstance],
        node: false,
        own_workspace: true,
        sam_function: None,
    },
    Bootstrap {
        name: "bench-no-sdk-trigger",
        role: Role::NoSdk,
        memory_mb: 256,
        timeout: Duration::from_secs(4),
        workload: Workload::Confirmation,
        vars: &[Var::AppInstance],
        node: false,
        own_workspace: false,
        sam_function: None,
    },
];

impl Bootstrap {
    pub fn by_role(role: Role) -> impl Iterator<Item = &'static Bootstrap> {
        BOOTSTRAPS.iter().filter(move |b| b.role == role)
    }

    /// Whether its first event makes a Chime call (the cold starts TLS can change).
    pub fn calls_chime(&self) -> bool {
        self.workload != Workload::SignUp
    }

    /// Whether its cold start is also measured over plain HTTP: not credential-exchange's,
    /// whose issuer is HTTPS whatever the transport to Chime and STS.
    pub fn plain_http_too(&self) -> bool {
        self.workload != Workload::CredentialExchange
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Rust,
    Node,
}

/// How a subject reaches the Chime fake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// The fake's TLS front; the client trusts its throw-away root CA (`SSL_CERT_FILE`,
    /// `NODE_EXTRA_CA_CERTS`), as production clients reach Chime.
    Https,
    /// The fake itself, plain HTTP: no handshake, what the earlier figures measured.
    Http,
}

impl Transport {
    pub fn label(self) -> &'static str {
        match self {
            Transport::Https => "HTTPS",
            Transport::Http => "plain HTTP",
        }
    }
}

/// One bootstrap under measurement and how to start it.
#[derive(Debug, Clone)]
pub struct Subject {
    pub bootstrap: &'static Bootstrap,
    pub lang: Lang,
    /// A differently built copy of a Rust binary (`--variant`), e.g. `opt-level=3`.
    pub variant: Option<String>,
    program: PathBuf,
    args: Vec<String>,
    cwd: Option<PathBuf>,
    /// Started under a profiler (`--profile`): it gets time to write its output at the end.
    profiled: bool,
}

/// What every subject's environment points at.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// The in-process Chime fake, plain HTTP.
    pub chime_http: String,
    /// Its TLS front.
    pub chime_https: String,
    /// The local STS, plain HTTP, and its TLS front.
    pub sts_http: String,
    pub sts_https: String,
    /// The local IdP (HTTPS) and the key its tokens are signed with.
    pub idp: events::Idp,
    /// The throw-away roots, PEM: the TLS fronts' and the IdP's.
    pub ca_file: PathBuf,
    /// The system's CA bundle with the test root appended: what the naive floor, which reads
    /// the system store, is given as `SSL_CERT_FILE`.
    pub system_bundle_with_ca: PathBuf,
    /// A closed local port: the normal paths never call SQS.
    pub sqs: String,
    /// Where each subject's stdout and stderr go.
    pub log_dir: PathBuf,
}

impl Subject {
    pub fn rust(bootstrap: &'static Bootstrap, bin_dir: &Path) -> Subject {
        Subject {
            bootstrap,
            lang: Lang::Rust,
            variant: None,
            program: bin_dir.join(bootstrap.name),
            args: Vec::new(),
            cwd: None,
            profiled: false,
        }
    }

    /// The same, started under `profiler` (a command and its arguments, the bootstrap
    /// appended), e.g. `valgrind --tool=callgrind`.
    pub fn under(self, profiler: &[String]) -> Result<Subject, String> {
        let (program, options) = profiler
            .split_first()
            .ok_or("--profile needs the profiler command after `--`")?;
        let mut args = options.to_vec();
        args.push(self.program.display().to_string());
        args.extend(self.args);
        Ok(Subject {
            program: PathBuf::from(program),
            args,
            profiled: true,
            ..self
        })
    }

    /// `node node_modules/aws-lambda-ric/bin/index.mjs {name}.handler` in `bench/node`:
    /// the official runtime interface client loads the handler module from its cwd.
    pub fn node(bootstrap: &'static Bootstrap, node: &Path, node_dir: &Path) -> Subject {
        Subject {
            bootstrap,
            lang: Lang::Node,
            variant: None,
            program: node.to_owned(),
            args: vec![
                node_dir
                    .join("node_modules/aws-lambda-ric/bin/index.mjs")
                    .display()
                    .to_string(),
                format!("{}.handler", bootstrap.name),
            ],
            cwd: Some(node_dir.to_owned()),
            profiled: false,
        }
    }

    /// The same function built another way, from `bin_dir`.
    pub fn rust_variant(bootstrap: &'static Bootstrap, variant: &str, bin_dir: &Path) -> Subject {
        Subject {
            variant: Some(variant.to_owned()),
            ..Subject::rust(bootstrap, bin_dir)
        }
    }

    pub fn program(&self) -> &Path {
        &self.program
    }

    pub fn name(&self) -> &'static str {
        self.bootstrap.name
    }

    pub fn label(&self) -> String {
        let name = self.bootstrap.name;
        if let Some(variant) = &self.variant {
            return format!("{name} (Rust, {variant})");
        }
        match (self.lang, self.bootstrap.role) {
            (Lang::Rust, Role::NaiveFloor) => "naive floor (bench-bare-trigger)".to_owned(),
            (Lang::Rust, Role::NoSdk) => "no-SDK reference (bench-no-sdk-trigger)".to_owned(),
            (Lang::Rust, Role::Function) => format!("{name} (Rust)"),
            (Lang::Node, _) => format!("{name} (Node.js 20)"),
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
        format!("{}-{lang}{variant}", self.bootstrap.name)
    }

    pub fn log_path(&self, endpoints: &Endpoints) -> PathBuf {
        endpoints.log_dir.join(format!("{}.log", self.slug()))
    }

    /// The environment Lambda sets for a function (provided.al2023 or nodejs20.x), with
    /// every other source of AWS configuration switched off, plus the function's own
    /// variables, the endpoint overrides and, over HTTPS, the trust of the test root.
    fn command(&self, runtime_api: &str, endpoints: &Endpoints, transport: Transport) -> Command {
        let b = self.bootstrap;
        let name = b.name;
        let mut command = Command::new(&self.program);
        command.args(&self.args).env_clear();
        if let Some(cwd) = &self.cwd {
            command.current_dir(cwd);
        }
        let execution_env = match self.lang {
            Lang::Rust => "AWS_Lambda_provided.al2023",
            Lang::Node => "AWS_Lambda_nodejs20.x",
        };
        let (chime, sts) = match transport {
            Transport::Https => (&endpoints.chime_https, &endpoints.sts_https),
            Transport::Http => (&endpoints.chime_http, &endpoints.sts_http),
        };
        let common = [
            ("AWS_LAMBDA_RUNTIME_API", runtime_api.to_owned()),
            ("AWS_LAMBDA_FUNCTION_NAME", name.to_owned()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", b.memory_mb.to_string()),
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
            ("AWS_ENDPOINT_URL_CHIME_SDK_IDENTITY", chime.clone()),
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
        if transport == Transport::Https {
            let (key, file) = match (self.lang, b.role) {
                (Lang::Node, _) => ("NODE_EXTRA_CA_CERTS", &endpoints.ca_file),
                (Lang::Rust, Role::NaiveFloor) => {
                    ("SSL_CERT_FILE", &endpoints.system_bundle_with_ca)
                }
                (Lang::Rust, _) => ("SSL_CERT_FILE", &endpoints.ca_file),
            };
            command.env(key, file);
        }
        for var in b.vars {
            match *var {
                Var::Value(key, value) => command.env(key, value),
                Var::Queue(key, queue) => {
                    command.env(key, format!("{}/123456789012/{queue}", endpoints.sqs))
                }
                Var::AppInstance => command.env("APP_INSTANCE_ARN", APP_INSTANCE_ARN),
                Var::Issuers => command.env("TRUSTED_ISSUERS", endpoints.idp.trusted_issuers()),
                Var::Sts => command.env("AWS_ENDPOINT_URL_STS", sts),
            };
        }
        command
    }

    /// The cold-start event, about a new user `n`: a sign-up, a confirmed sign-up, a batch of
    /// one `user.created` message (Describe and Create, like post-confirmation), or a token.
    pub fn first_event(&self, endpoints: &Endpoints, n: u64) -> Value {
        match self.bootstrap.workload {
            Workload::SignUp => events::pre_signup(n),
            Workload::Confirmation | Workload::NewUsers => events::confirm_sign_up(n),
            Workload::IdpBatch => events::sqs_event([&Message::idp(
                &format!("cold{n}"),
                "user.created",
                n,
                &format!("Bench User {n}"),
                None,
            )]),
            Workload::CredentialExchange => endpoints.idp.credentials_request(n),
        }
    }

    /// The events of a long run; `base` keeps users of different runs apart.
    pub fn steady_events(&self, endpoints: &Endpoints, base: u64, count: usize) -> Vec<Value> {
        let count = count as u64;
        match self.bootstrap.workload {
            Workload::SignUp => (0..count).map(|i| events::pre_signup(base + i)).collect(),
            Workload::NewUsers => (0..count)
                .map(|i| events::confirm_sign_up(base + i))
                .collect(),
            Workload::Confirmation => {
                let event = events::confirm_forgot_password(base);
                vec![event; count as usize]
            }
            Workload::IdpBatch => (0..count)
                .map(|i| events::idp_workload_batch(base, i))
                .collect(),
            Workload::CredentialExchange => {
                let event = endpoints.idp.credentials_request(base);
                vec![event; count as usize]
            }
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
        let ok = match self.bootstrap.workload {
            Workload::SignUp => {
                body.pointer("/response/autoVerifyEmail") == Some(&Value::Bool(true))
            }
            Workload::Confirmation | Workload::NewUsers => &body == event,
            Workload::IdpBatch => body
                .get("batchItemFailures")
                .and_then(Value::as_array)
                .is_some_and(Vec::is_empty),
            Workload::CredentialExchange => events::issued_credentials(&body),
        };
        if ok {
            Ok(())
        } else {
            Err(format!("{} answered unexpectedly: {text}", self.label()))
        }
    }

    fn timeout(&self) -> Duration {
        self.bootstrap.timeout
    }

    fn spawn(&self, command: Command, endpoints: &Endpoints) -> Result<FunctionProcess, String> {
        let grace = if self.profiled {
            PROFILER_GRACE
        } else {
            Duration::ZERO
        };
        FunctionProcess::spawn(command, &self.log_path(endpoints), grace)
            .map_err(|e| format!("cannot start {}: {e}", self.label()))
    }
}

/// How long a profiler may take to write its output once the run is over.
const PROFILER_GRACE: Duration = Duration::from_secs(120);

/// How long to wait for any one answer before calling the run failed.
const ANSWER_WAIT: Duration = Duration::from_secs(30);

/// One cold start: exec → the first response POSTed to the Runtime API, and the CPU time the
/// process had used when that response arrived (all its threads; it goes on running until it
/// is killed, so the reading can include a little of what it does after answering).
#[derive(Debug, Clone, Copy)]
pub struct ColdStart {
    pub wall: Duration,
    pub cpu: Duration,
}

/// A mock Runtime API for `s`, with its function's name and timeout.
async fn runtime_api(s: &Subject) -> Result<RuntimeApi, String> {
    RuntimeApi::try_start(s.name(), s.timeout())
        .await
        .map_err(|e| format!("mock Runtime API: {e}"))
}

/// A cold start for event number `n`.
pub async fn cold_start(
    s: &Subject,
    endpoints: &Endpoints,
    transport: Transport,
    n: u64,
) -> Result<ColdStart, String> {
    let api = runtime_api(s).await?;
    let event = s.first_event(endpoints, n);
    api.enqueue(&event);
    let command = s.command(&api.host_port(), endpoints, transport);
    let started = Instant::now();
    let mut process = s.spawn(command, endpoints)?;
    let Some(answer) = api.next_answer(ANSWER_WAIT).await else {
        return Err(format!(
            "{} over {} gave no answer within {ANSWER_WAIT:?} (exit: {:?}); see {}",
            s.label(),
            transport.label(),
            process.exited(),
            s.log_path(endpoints).display()
        ));
    };
    let cpu = process
        .cpu_ns()
        .map(Duration::from_nanos)
        .unwrap_or_default();
    let wall = answer.at.duration_since(started);
    s.check(&answer, &event)?;
    drop(process);
    Ok(ColdStart { wall, cpu })
}

/// What one process looked like after serving many invocations.
#[derive(Debug, Clone, Copy)]
pub struct LongRun {
    /// `VmHWM`: the peak resident set over the process's life, KiB.
    pub peak_kib: u64,
    /// `VmRSS` at the end, KiB, and its anonymous (heap, stacks) and file-backed (code) parts.
    pub rss_kib: u64,
    pub anon_kib: u64,
    pub file_kib: u64,
    /// From the first answer to the last: the warm invocations.
    pub warm: Duration,
    /// CPU time the process used over the same span (all its threads), ns.
    pub warm_cpu_ns: u64,
    pub invocations: usize,
}

/// Serve `count` invocations to one process over `transport`, then read its memory before
/// killing it. Its CPU time is read when the first answer arrives and after the last one.
pub async fn long_run(
    s: &Subject,
    endpoints: &Endpoints,
    transport: Transport,
    base: u64,
    count: usize,
) -> Result<LongRun, String> {
    let api = runtime_api(s).await?;
    let events = s.steady_events(endpoints, base, count);
    for event in &events {
        api.enqueue(event);
    }
    let command = s.command(&api.host_port(), endpoints, transport);
    let mut process = s.spawn(command, endpoints)?;
    let cpu = |process: &FunctionProcess| {
        process
            .cpu_ns()
            .map_err(|e| format!("{}: CPU time: {e}", s.label()))
    };
    let mut first: Option<(Instant, u64)> = None;
    let mut last = Instant::now();
    for (i, event) in events.iter().enumerate() {
        let Some(answer) = api.next_answer(ANSWER_WAIT).await else {
            return Err(format!(
                "{}: no answer to invocation {i} within {ANSWER_WAIT:?} (exit: {:?})",
                s.label(),
                process.exited()
            ));
        };
        let checked = s.check(&answer, event);
        // Under a profiler the first invocation can outlast the Chime budget (valgrind
        // translates all the code it meets for the first time), and the function then hands
        // the user off instead. It is a warm-up there: the next invocation finds or creates
        // the user, and the difference of two run lengths cancels it.
        if !(s.profiled && i == 0) {
            checked.map_err(|e| format!("invocation {i}: {e}"))?;
        }
        if first.is_none() {
            first = Some((answer.at, cpu(&process)?));
        }
        last = answer.at;
    }
    let cpu_end = cpu(&process)?;
    let memory = process
        .memory_kib()
        .map_err(|e| format!("{}: {e}", s.label()))?;
    drop(process);
    let (first_at, cpu_start) = first.unwrap_or((last, cpu_end));
    Ok(LongRun {
        peak_kib: memory.peak,
        rss_kib: memory.rss,
        anon_kib: memory.anon,
        file_kib: memory.file,
        warm: last.duration_since(first_at),
        warm_cpu_ns: cpu_end.saturating_sub(cpu_start),
        invocations: count,
    })
}
