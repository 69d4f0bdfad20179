//! The local loop of docs/LOCAL.md, command by command: `chime-sync serve-fake` (the
//! compiled CLI), the environment file it writes, and every `cargo lambda
//! invoke` and `curl` of the document's block, with the real bootstraps behind the
//! mock Runtime API standing in for `cargo lambda watch` (one process per
//! function, as `watch` keeps them). A line the test does not know
//! fails it, so the document cannot drift from what was run.
//!
//! Needs `cargo build --workspace --bins` first (scripts/test.sh does it).

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::bins;
use testkit::lambda::{
    CREDENTIAL_EXCHANGE, Function, IDP_SYNC, Lambda, POST_CONFIRMATION, PRE_SIGNUP, RECONCILE,
};
use testkit::net::{http_get, http_post};
use testkit::process::ChildGuard;
use testkit::workspace_root;

/// the document's port; the test serves on a free one and reads every URL with it.
const DOC_ORIGIN: &str = "http://127.0.0.1:4566";
/// Where the document's files are; the test keeps them in a temporary folder.
const DOC_FILES: &str = "target/local-loop/";

/// The shell block of the document's "Local development" section, one command a
/// line, comments dropped.
fn documented_commands() -> Vec<(String, String)> {
    let text =
        std::fs::read_to_string(workspace_root().join("docs/LOCAL.md")).expect("docs/LOCAL.md");
    let section = text
        .split("\n## Local development\n")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("docs/LOCAL.md has a Local development section");
    let block = section
        .split("```sh\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the section has a sh block");
    block
        .lines()
        .filter(|line| !line.trim_start().starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let (command, comment) = line.split_once(" #").unwrap_or((line, ""));
            (command.trim().to_owned(), comment.trim().to_owned())
        })
        .collect()
}

/// `serve-fake` on a free port, its files in `files`: the process and its origin.
async fn serve_fake(files: &Path) -> (ChildGuard, String) {
    let mut command = bins::cli();
    command
        .args(["serve-fake", "--port", "0", "--files"])
        .arg(files);
    let process = ChildGuard::spawn("chime-sync serve-fake", command).expect("spawn serve-fake");
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let banner = process.stdout();
        if let Some(origin) = banner
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("Serving on "))
            .and_then(|l| l.strip_suffix(" until Ctrl-C:"))
            && files.join("credential-exchange.json").exists()
        {
            return (process, origin.to_owned());
        }
        assert!(
            process.try_status().is_none() && Instant::now() < until,
            "serve-fake did not start:\n{}",
            process.output()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `NAME=value` lines, a value in single quotes taken literally.
fn read_env_file(path: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(name, value)| {
            let value = value
                .strip_prefix('\'')
                .and_then(|v| v.strip_suffix('\''))
                .unwrap_or(value);
            (name.to_owned(), value.to_owned())
        })
        .collect()
}

fn function(name: &str) -> Function {
    [
        PRE_SIGNUP,
        POST_CONFIRMATION,
        IDP_SYNC,
        CREDENTIAL_EXCHANGE,
        RECONCILE,
    ]
    .into_iter()
    .find(|f| f.binary == name)
    .unwrap_or_else(|| {
        panic!("the document invokes {name}, which is not one of the five functions")
    })
}

/// What each function's answer must show in the loop.
fn check_answer(name: &str, answer: &Value) {
    match name {
        "pre-signup" => assert_eq!(answer["response"]["autoConfirmUser"], false, "{answer}"),
        "post-confirmation" => {
            assert_eq!(answer["triggerSource"], "PostConfirmation_ConfirmSignUp")
        }
        "idp-sync" => assert_eq!(
            answer["batchItemFailures"],
            serde_json::json!([]),
            "{answer}"
        ),
        "credential-exchange" => {
            assert_eq!(answer["statusCode"], 200, "{answer}");
            let body: Value =
                serde_json::from_str(answer["body"].as_str().expect("a body")).expect("JSON");
            assert!(
                body["credentials"]["accessKeyId"]
                    .as_str()
                    .is_some_and(|k| k.starts_with("ASIALOCALSTS")),
                "the local STS's credentials: {body}"
            );
        }
        "reconcile" => {
            assert_eq!(answer["done"], true, "{answer}");
            assert_eq!(
                answer["totals"]["creates"], 2,
                "Radia and Dorothy: {answer}"
            );
        }
        other => panic!("no check for {other}"),
    }
}

/// The names a comment lists: "Ada, Grace and Alan".
fn names_in(comment: &str) -> BTreeSet<String> {
    comment
        .replace(" and ", ", ")
        .split(", ")
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
        .collect()
}

struct Loop {
    files: PathBuf,
    port: u16,
    env: Vec<(String, String)>,
    functions: HashMap<String, Lambda>,
    invoked: BTreeSet<String>,
    final_state: Option<(Value, String)>,
}

impl Loop {
    fn path(&self, doc_path: &str) -> PathBuf {
        match doc_path.strip_prefix(DOC_FILES) {
            Some(file) => self.files.join(file),
            None => workspace_root().join(doc_path),
        }
    }

    fn url_path(url: &str) -> &str {
        url.strip_prefix(DOC_ORIGIN)
            .unwrap_or_else(|| panic!("the document's URL {url} is not on {DOC_ORIGIN}"))
    }

    async fn invoke(&mut self, name: &str, data_file: &str) {
        let event: Value = serde_json::from_str(
            &std::fs::read_to_string(self.path(data_file)).expect("the data file"),
        )
        .expect("the data file is JSON");
        if !self.functions.contains_key(name) {
            let env: Vec<(&str, &str)> = self
                .env
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let lambda = Lambda::start(function(name), &env).await;
            self.functions.insert(name.to_owned(), lambda);
        }
        let outcome = self.functions[name].invoke(&event).await;
        check_answer(name, outcome.response());
        self.invoked.insert(name.to_owned());
    }

    async fn run(&mut self, command: &str, comment: &str) {
        let words: Vec<&str> = command.split_whitespace().collect();
        match words.as_slice() {
            ["cargo", "run", "-p", "chime-sync", "--", "serve-fake"] => {}
            ["cargo", "lambda", "watch", "--env-file", file] => {
                self.env = read_env_file(&self.path(file));
            }
            ["cargo", "lambda", "invoke", name, "--data-file", file] => {
                assert!(
                    !self.env.is_empty(),
                    "the document starts watch before invoking"
                );
                self.invoke(name, file).await;
            }
            ["curl", "-s", "-X", "POST", url, ">", file] => {
                let (status, body) = http_post(self.port, Self::url_path(url))
                    .await
                    .expect("POST");
                assert_eq!(status, 200, "{body}");
                std::fs::write(self.path(file), body).expect("write the batch");
            }
            ["curl", "-s", url] => {
                let (status, body) = http_get(self.port, Self::url_path(url)).await.expect("GET");
                assert_eq!(status, 200, "{body}");
                let state = serde_json::from_str(&body).expect("the fake's state");
                self.final_state = Some((state, comment.to_owned()));
            }
            _ => {
                panic!("the document's local loop runs `{command}`, which this test does not know")
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_local_loop_runs_all_five_functions() {
    let temp = std::env::temp_dir().join(format!("chime-sync-local-loop-{}", std::process::id()));
    let (serve, origin) = serve_fake(&temp).await;
    let port: u16 = origin
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a port");
    let mut local = Loop {
        files: temp.clone(),
        port,
        env: Vec::new(),
        functions: HashMap::new(),
        invoked: BTreeSet::new(),
        final_state: None,
    };
    // The files name the port actually served; the document names 4566.
    for (command, comment) in documented_commands() {
        local.run(&command, &comment).await;
    }
    assert_eq!(
        local.invoked,
        [
            "credential-exchange",
            "idp-sync",
            "post-confirmation",
            "pre-signup",
            "reconcile"
        ]
        .map(String::from)
        .into(),
        "the document invokes all five functions"
    );
    let (state, comment) = local
        .final_state
        .expect("the document shows the fake's state");
    let names: BTreeSet<String> = state["users"]
        .as_array()
        .expect("users")
        .iter()
        .filter_map(|u| u["name"].as_str())
        .map(|n| n.split_whitespace().next().unwrap_or(n).to_owned())
        .collect();
    assert_eq!(
        names,
        names_in(&comment),
        "the document's comment names who is there"
    );
    drop(local.functions);
    serve.kill();
    let _ = std::fs::remove_dir_all(&temp);
}
