//! A compiled bootstrap binary running behind the mock Runtime API, with the
//! environment Lambda gives a `provided.al2023` function and nothing else.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::bins::bootstrap;
use crate::process::ChildGuard;
use crate::runtime_api::{Outcome, REGION, RuntimeApi};

/// Static credentials, as Lambda puts the execution role's in the environment.
pub const ACCESS_KEY_ID: &str = "AKIDTESTCHIMESYNC";
pub const SECRET_ACCESS_KEY: &str = "test-secret-not-a-real-key";

/// One of the workspace's Lambda functions: its binary and its template.yaml
/// memory size and timeout.
#[derive(Debug, Clone, Copy)]
pub struct Function {
    pub binary: &'static str,
    pub memory_mb: u32,
    pub timeout: Duration,
}

impl Function {
    /// A function as template.yaml declares it: binary, memory (MB), timeout (s).
    const fn new(binary: &'static str, memory_mb: u32, timeout_secs: u64) -> Self {
        Function {
            binary,
            memory_mb,
            timeout: Duration::from_secs(timeout_secs),
        }
    }
}

pub const PRE_SIGNUP: Function = Function::new("pre-signup", 128, 3);
pub const POST_CONFIRMATION: Function = Function::new("post-confirmation", 256, 4);
pub const CREDENTIAL_EXCHANGE: Function = Function::new("credential-exchange", 256, 10);
pub const IDP_SYNC: Function = Function::new("idp-sync", 256, 30);
pub const RECONCILE: Function = Function::new("reconcile", 512, 900);

/// A running function: its process and its Runtime API. The process is
/// declared first so it is killed before the API goes away.
pub struct Lambda {
    pub process: ChildGuard,
    pub api: RuntimeApi,
    pub function: Function,
}

impl Lambda {
    /// Start the mock Runtime API and spawn `function`'s binary against it.
    ///
    /// The process environment is cleared, then gets what Lambda sets
    /// (`AWS_LAMBDA_RUNTIME_API`, `AWS_LAMBDA_FUNCTION_NAME`,
    /// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`, `AWS_LAMBDA_FUNCTION_VERSION`,
    /// `AWS_REGION`, `AWS_LAMBDA_LOG_FORMAT=JSON`, static credentials, …),
    /// with every other source of AWS configuration switched off
    /// (`AWS_CONFIG_FILE` and `AWS_SHARED_CREDENTIALS_FILE` empty,
    /// `AWS_EC2_METADATA_DISABLED=true`), `LEDGER_TABLE=memory`, then `env`:
    /// the function's own variables and endpoint overrides.
    pub async fn start(function: Function, env: &[(&str, &str)]) -> Lambda {
        let api = RuntimeApi::start(function.binary, function.timeout).await;
        let path = bootstrap(function.binary);
        let mut command = Command::new(&path);
        command.env_clear();
        let log_stream = "2026/11/20/[$LATEST]0123456789abcdef0123456789abcdef";
        for (key, value) in [
            ("AWS_LAMBDA_RUNTIME_API", api.host_port().as_str()),
            ("AWS_LAMBDA_FUNCTION_NAME", function.binary),
            (
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                function.memory_mb.to_string().as_str(),
            ),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
            (
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{}", function.binary).as_str(),
            ),
            ("AWS_LAMBDA_LOG_STREAM_NAME", log_stream),
            ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
            ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"),
            ("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023"),
            ("AWS_REGION", REGION),
            ("AWS_DEFAULT_REGION", REGION),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID),
            ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY),
            ("AWS_CONFIG_FILE", "/dev/null"),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("_HANDLER", "bootstrap"),
            ("LAMBDA_TASK_ROOT", "/var/task"),
            ("TZ", ":UTC"),
            ("LANG", "en_US.UTF-8"),
            ("PATH", "/usr/local/bin:/usr/bin:/bin"),
            // Each bootstrap keeps its ledger in memory unless the test gives it
            // a table (the ownership scenarios run moto's DynamoDB).
            ("LEDGER_TABLE", "memory"),
        ] {
            command.env(key, value);
        }
        for (key, value) in env {
            command.env(key, value);
        }
        let process = ChildGuard::spawn(function.binary, command)
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", path.display()));
        Lambda {
            process,
            api,
            function,
        }
    }

    /// Serve `event` and wait (up to the function timeout plus a second) for
    /// the answer.
    pub async fn invoke(&self, event: &Value) -> Outcome {
        self.invoke_within(event, self.function.timeout + Duration::from_secs(1))
            .await
    }

    /// Serve `event` and wait up to `within` for the answer; fails at once
    /// (with the process's output) if the process exits first.
    pub async fn invoke_within(&self, event: &Value, within: Duration) -> Outcome {
        self.answer(self.api.enqueue(event), within).await
    }

    /// Serve a raw payload (which need not be JSON, or even UTF-8) and wait
    /// for the answer as [`Lambda::invoke`] does.
    pub async fn invoke_bytes(&self, payload: Vec<u8>) -> Outcome {
        let id = self.api.enqueue_raw(payload.into());
        self.answer(id, self.function.timeout + Duration::from_secs(1))
            .await
    }

    async fn answer(&self, id: String, within: Duration) -> Outcome {
        tokio::select! {
            outcome = self.api.outcome(&id, within) => outcome,
            // The guard prints the process's output as the panic unwinds.
            status = self.process.exited() => panic!(
                "{} exited ({status}) before answering invocation {id}",
                self.function.binary
            ),
        }
    }

    /// Stop the function (its process group gets `SIGKILL`) and read its
    /// output to the end. Call it before asserting on the log: the function
    /// writes a decision's log line before it answers, but the reader thread
    /// may not have copied that line out of the pipe yet when the answer
    /// arrives.
    pub fn stop(&self) {
        self.process.kill();
    }

    /// The function's log: its stdout, where `lambda_runtime`'s subscriber
    /// writes. Complete only after [`Lambda::stop`] (or the process's exit).
    pub fn log(&self) -> String {
        self.process.stdout()
    }

    /// Every log line as JSON; panics on a line that is not a JSON object
    /// (`AWS_LAMBDA_LOG_FORMAT=JSON` must hold for every line). Complete
    /// only after [`Lambda::stop`].
    pub fn log_lines(&self) -> Vec<Value> {
        self.log()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|line| match serde_json::from_str::<Value>(line) {
                Ok(v) if v.is_object() => v,
                _ => panic!(
                    "{}: a log line is not a JSON object although AWS_LAMBDA_LOG_FORMAT=JSON: {line}",
                    self.function.binary
                ),
            })
            .collect()
    }
}
